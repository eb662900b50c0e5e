//! Alipay's host names, resolved once per [`NAME_TTL`] however many connections open at once.
//!
//! hyper-util's connector resolves a host name for every new connection (`getaddrinfo` on tokio's
//! blocking pool; only IP literals skip it). When Alipay slows down, thousands of pays wait at
//! once, each on a connection of its own, and the pool opens one for each: without this, a DNS
//! query (and, under Kubernetes' `ndots:5`, several) and a blocking thread per connection, a storm
//! on the cluster's resolver at the moment Alipay is already in trouble. Here the first caller
//! resolves the name; the others opening connections at the same time wait for its answer, and
//! callers in the next [`NAME_TTL`] take it as it is. A failed lookup fails the connections
//! waiting on it (with the last answer, out of date, when there is one) and stands for
//! [`FAILURE_KEPT`]; the next connection after that asks again.

use std::collections::HashMap;
use std::error::Error;
use std::net::SocketAddr;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use hyper_util::client::legacy::connect::dns::Name;
use parking_lot::Mutex;
use tokio::time::Instant;
use tower_service::Service;

/// How long a host's addresses are used before it is resolved again (`getaddrinfo` gives no TTL;
/// Alipay's records live minutes).
pub const NAME_TTL: Duration = Duration::from_secs(30);
/// How long a failed lookup stands for the connections that follow it.
pub const FAILURE_KEPT: Duration = Duration::from_secs(1);
/// Names kept at most: Alipay's few hosts and the gateways tenants name (sandboxes); past it, those
/// out of date are forgotten.
const MAX_NAMES: usize = 1_024;

type BoxError = Box<dyn Error + Send + Sync>;
type Future = std::pin::Pin<Box<dyn std::future::Future<Output = Result<Addrs, BoxError>> + Send>>;
/// A host's addresses, in the order the connector tries them.
#[derive(Debug)]
pub struct Addrs {
    addrs: Arc<[SocketAddr]>,
    next: usize,
}

impl From<&Arc<[SocketAddr]>> for Addrs {
    fn from(addrs: &Arc<[SocketAddr]>) -> Self {
        Addrs { addrs: addrs.clone(), next: 0 }
    }
}

impl Iterator for Addrs {
    type Item = SocketAddr;

    fn next(&mut self) -> Option<SocketAddr> {
        let addr = self.addrs.get(self.next).copied();
        self.next += 1;
        addr
    }
}

/// A resolver (`R`: hyper-util's `GaiResolver` in service) behind a cache of what it answered.
pub struct CachedNames<R> {
    inner: R,
    names: Arc<Mutex<HashMap<Name, Entry>>>,
}

impl<R: Clone> Clone for CachedNames<R> {
    fn clone(&self) -> Self {
        CachedNames { inner: self.inner.clone(), names: self.names.clone() }
    }
}

#[derive(Default)]
struct Entry {
    /// The last answer and until when it stands.
    answer: Option<(Arc<[SocketAddr]>, Instant)>,
    /// Until when the last failed lookup stands, and what it said.
    failed: Option<(Instant, String)>,
    /// Held by the caller resolving the name; the others wait on it for its answer.
    lookup: Arc<tokio::sync::Mutex<()>>,
}

impl<R> CachedNames<R> {
    pub fn new(inner: R) -> Self {
        CachedNames { inner, names: Arc::default() }
    }
}

/// What stands for `name` at `now`: its answer, or its failed lookup (with its last answer, out
/// of date, if any); `None`: ask the resolver.
fn standing(names: &HashMap<Name, Entry>, name: &Name, now: Instant) -> Option<Result<Addrs, BoxError>> {
    let entry = names.get(name)?;
    if let Some((addrs, until)) = &entry.answer
        && now < *until
    {
        return Some(Ok(addrs.into()));
    }
    let (until, why) = entry.failed.as_ref()?;
    (now < *until).then(|| stale_or(entry, why))
}

/// The last answer for the entry, out of date, or the lookup's failure.
fn stale_or(entry: &Entry, why: &str) -> Result<Addrs, BoxError> {
    match &entry.answer {
        Some((addrs, _)) => Ok(addrs.into()),
        None => Err(why.into()),
    }
}

impl<R> Service<Name> for CachedNames<R>
where
    R: Service<Name> + Clone + Send + 'static,
    R::Response: Iterator<Item = SocketAddr>,
    R::Error: Into<BoxError>,
    R::Future: Send,
{
    type Response = Addrs;
    type Error = BoxError;
    type Future = Future;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, name: Name) -> Future {
        let (mut inner, names) = (self.inner.clone(), self.names.clone());
        Box::pin(async move {
            let lookup = {
                let mut names = names.lock();
                if let Some(standing) = standing(&names, &name, Instant::now()) {
                    return standing;
                }
                names.entry(name.clone()).or_default().lookup.clone()
            };
            let _turn = lookup.lock().await;
            if let Some(standing) = standing(&names.lock(), &name, Instant::now()) {
                return standing;
            }
            let answer: Result<Arc<[SocketAddr]>, String> = async {
                std::future::poll_fn(|cx| inner.poll_ready(cx)).await.map_err(|e| e.into().to_string())?;
                let addrs: Arc<[SocketAddr]> =
                    inner.call(name.clone()).await.map_err(|e| e.into().to_string())?.collect();
                if addrs.is_empty() {
                    return Err("the name has no address".to_owned());
                }
                Ok(addrs)
            }
            .await;
            let now = Instant::now();
            let mut names = names.lock();
            if names.len() >= MAX_NAMES {
                names.retain(|_, entry| entry.answer.as_ref().is_some_and(|(_, until)| now < *until));
            }
            let entry = names.entry(name).or_default();
            match answer {
                Ok(addrs) => {
                    entry.answer = Some((addrs.clone(), now + NAME_TTL));
                    entry.failed = None;
                    Ok((&addrs).into())
                }
                Err(why) => {
                    let answer = stale_or(entry, &why);
                    entry.failed = Some((now + FAILURE_KEPT, why));
                    answer
                }
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::*;

    /// A resolver that takes 5 ms, counts its lookups, and fails those `fail` says.
    #[derive(Clone)]
    struct Counting {
        lookups: Arc<AtomicUsize>,
        fail: fn(usize) -> bool,
    }

    impl Service<Name> for Counting {
        type Response = std::vec::IntoIter<SocketAddr>;
        type Error = std::io::Error;
        type Future = std::pin::Pin<Box<dyn std::future::Future<Output = std::io::Result<Self::Response>> + Send>>;

        fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<std::io::Result<()>> {
            Poll::Ready(Ok(()))
        }

        fn call(&mut self, _: Name) -> Self::Future {
            let (lookup, fail) = (self.lookups.fetch_add(1, Ordering::SeqCst) + 1, self.fail);
            Box::pin(async move {
                tokio::time::sleep(Duration::from_millis(5)).await;
                if fail(lookup) {
                    return Err(std::io::Error::other("no answer"));
                }
                Ok(vec![SocketAddr::from(([203, 0, 113, 7], 0))].into_iter())
            })
        }
    }

    fn names(fail: fn(usize) -> bool) -> (CachedNames<Counting>, Arc<AtomicUsize>) {
        let lookups = Arc::new(AtomicUsize::new(0));
        (CachedNames::new(Counting { lookups: lookups.clone(), fail }), lookups)
    }

    fn alipay() -> Name {
        "openapi.alipay.com".parse().unwrap_or_else(|_| unreachable!())
    }

    #[tokio::test(start_paused = true)]
    async fn a_thousand_connections_opened_at_once_resolve_the_host_once_until_its_answer_is_old() {
        let (names, lookups) = names(|_| false);
        let opening: Vec<_> = (0..1_000).map(|_| tokio::spawn(names.clone().call(alipay()))).collect();
        for connection in opening {
            let addrs: Vec<SocketAddr> = connection.await.unwrap().unwrap().collect();
            assert_eq!(addrs, [SocketAddr::from(([203, 0, 113, 7], 0))]);
        }
        assert_eq!(lookups.load(Ordering::SeqCst), 1);
        tokio::time::advance(NAME_TTL - Duration::from_secs(1)).await;
        names.clone().call(alipay()).await.unwrap();
        assert_eq!(lookups.load(Ordering::SeqCst), 1, "still within its time");
        tokio::time::advance(Duration::from_secs(2)).await;
        names.clone().call(alipay()).await.unwrap();
        assert_eq!(lookups.load(Ordering::SeqCst), 2, "resolved again once out of date");
    }

    #[tokio::test(start_paused = true)]
    async fn a_failed_lookup_fails_the_connections_waiting_on_it_and_is_asked_again_a_second_later() {
        let (names, lookups) = names(|lookup| lookup == 1);
        let opening: Vec<_> = (0..100).map(|_| tokio::spawn(names.clone().call(alipay()))).collect();
        for connection in opening {
            let error = connection.await.unwrap().unwrap_err();
            assert_eq!(error.to_string(), "no answer");
        }
        assert_eq!(lookups.load(Ordering::SeqCst), 1, "one lookup failed them all");
        tokio::time::advance(FAILURE_KEPT).await;
        assert_eq!(names.clone().call(alipay()).await.unwrap().count(), 1);
        assert_eq!(lookups.load(Ordering::SeqCst), 2);
    }

    #[tokio::test(start_paused = true)]
    async fn when_the_resolver_fails_the_last_answer_serves_out_of_date() {
        let (names, lookups) = names(|lookup| lookup >= 2);
        names.clone().call(alipay()).await.unwrap();
        tokio::time::advance(NAME_TTL).await;
        let addrs: Vec<SocketAddr> = names.clone().call(alipay()).await.unwrap().collect();
        assert_eq!(addrs, [SocketAddr::from(([203, 0, 113, 7], 0))]);
        assert_eq!(lookups.load(Ordering::SeqCst), 2);
    }
}
