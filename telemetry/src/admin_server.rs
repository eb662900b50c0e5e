//! The admin listener: a bounded HTTP/1.1 accept loop that drains gracefully on shutdown.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;

use crate::Metrics;
use crate::endpoints::{AdminRoutes, Endpoints, Readiness};

/// Most admin connections served at once; further clients wait in the listen backlog.
const MAX_CONNECTIONS: usize = 256;
/// How long a client may take to send its request headers, idle keep-alive included.
const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);
/// How long open connections get to finish once `shutdown` resolves.
const DRAIN_GRACE: Duration = Duration::from_secs(5);
/// Pause after a failed `accept` (e.g. out of file descriptors) so the loop does not spin.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(50);

/// Serves the admin listener until `shutdown` resolves, then gives open connections up to 5 s to
/// finish. Answers `/live`, `/ready` (asking `readiness`), `/metrics` (rendering `metrics`) and,
/// when `admin` is given, everything under `/admin/`; see the `endpoints` module for the table.
/// At most 256 connections at once; each must send its headers within 10 s.
pub async fn serve_admin(
    listener: TcpListener,
    metrics: Metrics,
    readiness: Readiness,
    admin: Option<AdminRoutes>,
    shutdown: impl Future<Output = ()>,
) {
    let endpoints = Endpoints { metrics, readiness, admin };
    serve_bounded(listener, endpoints, MAX_CONNECTIONS, shutdown).await;
}

/// The accept loop, with the connection cap as a parameter so tests can reach it.
async fn serve_bounded(
    listener: TcpListener,
    endpoints: Endpoints,
    max_connections: usize,
    shutdown: impl Future<Output = ()>,
) {
    let graceful = GracefulShutdown::new();
    let slots = Arc::new(Semaphore::new(max_connections));
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        let permit = tokio::select! {
            permit = slots.clone().acquire_owned() => match permit {
                Ok(permit) => permit,
                Err(_) => break,
            },
            () = &mut shutdown => break,
        };
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(error) => {
                    tracing::warn!(%error, "admin accept failed");
                    tokio::time::sleep(ACCEPT_BACKOFF).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let _ = stream.set_nodelay(true);
        let endpoints = endpoints.clone();
        let service = service_fn(move |mut request: hyper::Request<hyper::body::Incoming>| {
            // The peer, for the admin routes' log and audit trail.
            request.extensions_mut().insert(peer);
            let endpoints = endpoints.clone();
            async move { Ok::<_, Infallible>(endpoints.answer(request).await) }
        });
        let connection = hyper::server::conn::http1::Builder::new()
            .timer(TokioTimer::new())
            .header_read_timeout(HEADER_READ_TIMEOUT)
            .serve_connection(TokioIo::new(stream), service);
        let connection = graceful.watch(connection);
        tokio::spawn(async move {
            let _permit = permit;
            if let Err(error) = connection.await {
                tracing::debug!(%error, "admin connection ended with an error");
            }
        });
    }
    if tokio::time::timeout(DRAIN_GRACE, graceful.shutdown()).await.is_err() {
        tracing::warn!("admin connections still open after the drain grace period; dropping them");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::TcpStream;

    const LIVE: &[u8] = b"GET /live HTTP/1.1\r\nhost: admin\r\n\r\n";

    async fn ask_live(stream: &mut TcpStream) -> String {
        stream.write_all(LIVE).await.unwrap();
        let mut answer = vec![0; 1024];
        let read = stream.read(&mut answer).await.unwrap();
        String::from_utf8_lossy(&answer[..read]).into_owned()
    }

    #[tokio::test]
    async fn connections_beyond_the_cap_wait_for_a_free_slot() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        let endpoints = Endpoints {
            metrics: crate::metrics().unwrap(),
            readiness: Arc::new(|| Box::pin(async { Ok(()) })),
            admin: None,
        };
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let server = tokio::spawn(serve_bounded(listener, endpoints, 1, async {
            let _ = stopped.await;
        }));

        let mut first = TcpStream::connect(address).await.unwrap();
        assert!(ask_live(&mut first).await.starts_with("HTTP/1.1 200"));
        let mut second = TcpStream::connect(address).await.unwrap();
        second.write_all(LIVE).await.unwrap();
        // A full round trip on the first connection: had the second been served, its answer
        // would be waiting by now.
        assert!(ask_live(&mut first).await.starts_with("HTTP/1.1 200"));
        let mut probe = [0; 16];
        let early = second.try_read(&mut probe).map_err(|e| e.kind());
        assert_eq!(early, Err(std::io::ErrorKind::WouldBlock), "the second connection was served past the cap");

        drop(first);
        let mut answer = vec![0; 1024];
        let read = second.read(&mut answer).await.unwrap();
        assert!(answer[..read].starts_with(b"HTTP/1.1 200"));

        drop(second);
        stop.send(()).unwrap();
        server.await.unwrap();
    }
}
