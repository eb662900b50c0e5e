//! The one HTTP server every listener runs (the gateway's partner API, which also takes Alipay's
//! notifications, the admin listeners, `tenants admin-serve`, the sandbox): an accept loop with a
//! global and a per-peer connection cap, deadlines on every connection, and a graceful drain.
//!
//! A connection's life, each phase bounded ([`ConnectionLimits`]):
//! ```text
//! accept ─(global cap: wait in the backlog; per-peer cap: closed at once)
//!   ─▶ first byte  (first_byte_timeout)
//!   ─▶ request head, protocol detection included  (header_timeout, from its first byte)
//!   ─▶ in service: the handler reads the body within its own deadline (BodyReader)
//!   ─▶ idle: no request in flight  (idle_timeout; HTTP/2 also pings, keep_alive_*)
//!   ─▶ next head … or closed
//! ```
//! A connection past a deadline is closed (an idle one gracefully: HTTP/2 gets a GOAWAY) and
//! counted in `listener_connections_closed_total{listener, reason}`.
//!
//! # Layout
//! - `mod.rs`: [`bind`], [`ConnectionLimits`] and [`serve`], the accept loop and the drain.
//! - `peers`: the per-peer connection count.
//! - `clock`: a connection's phases and the watchdog that enforces their deadlines.
//! - `connection`: one connection driven to its end.
//! - `body`: [`BodyReader`], request bodies read within a size, a deadline and a byte budget.
//! - `counters`: the listener's metrics.

mod body;
mod clock;
mod connection;
mod counters;
mod peers;

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::{Request, Response};
use http_body_util::Full;
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioTimer};
use hyper_util::server::conn::auto;
use tokio::net::{TcpListener, TcpSocket};
use tokio::sync::{Semaphore, watch};

pub use body::{BodyError, BodyReader, BudgetHold, ReadBody};

use connection::{Builders, Stop};
use counters::Counters;
use peers::Peers;

/// What one listener allows: how many connections, from one peer and in all, and how long each
/// phase of a connection may last.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConnectionLimits {
    /// Connections served at once; past it, clients wait in the listen backlog.
    pub max_connections: usize,
    /// Connections one peer (an IPv4 address; an IPv6 /64) may hold at once; more are closed as
    /// soon as they are accepted. Behind a proxy that hides client addresses, set it to
    /// `max_connections`.
    pub max_connections_per_peer: usize,
    /// From accept to the connection's first byte.
    pub first_byte_timeout: Duration,
    /// From a request's first byte to the end of its head (for the first request, the protocol
    /// detection included).
    pub header_timeout: Duration,
    /// How long a connection with no request in flight stays open (HTTP/1 keep-alive; HTTP/2).
    pub idle_timeout: Duration,
    /// HTTP/2: a PING this long after the last frame received…
    pub keep_alive_interval: Duration,
    /// …and the connection closed if its answer takes longer than this.
    pub keep_alive_timeout: Duration,
    /// When the listener stops: how long open connections get to finish.
    pub drain_grace: Duration,
    /// HTTP/2 (cleartext, prior knowledge) next to HTTP/1.1.
    pub http2: bool,
}

impl ConnectionLimits {
    /// An admin listener's (probes, scrapes, the admin API): 256 connections, 64 per peer,
    /// HTTP/1.1 only, 10 s deadlines, a minute's keep-alive, 5 s to drain.
    pub const fn admin() -> ConnectionLimits {
        ConnectionLimits {
            max_connections: 256,
            max_connections_per_peer: 64,
            first_byte_timeout: Duration::from_secs(10),
            header_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(60),
            keep_alive_interval: Duration::from_secs(20),
            keep_alive_timeout: Duration::from_secs(10),
            drain_grace: Duration::from_secs(5),
            http2: false,
        }
    }

    /// Every value usable; the error names the first that is not.
    pub fn validate(&self) -> Result<(), String> {
        if self.max_connections == 0 || self.max_connections > Semaphore::MAX_PERMITS.min(1 << 24) {
            return Err("max_connections must be 1 to 16,777,216".into());
        }
        if self.max_connections_per_peer == 0 {
            return Err("max_connections_per_peer must be positive".into());
        }
        let timeouts = [
            ("first_byte_timeout", self.first_byte_timeout),
            ("header_timeout", self.header_timeout),
            ("idle_timeout", self.idle_timeout),
            ("keep_alive_interval", self.keep_alive_interval),
            ("keep_alive_timeout", self.keep_alive_timeout),
        ];
        for (name, timeout) in timeouts {
            if timeout.is_zero() || timeout > Duration::from_secs(3600) {
                return Err(format!("{name} must be more than 0 and at most an hour"));
            }
        }
        Ok(())
    }
}

/// HTTP/1: the most a connection buffers of a request head (bigger heads get 431) and of body
/// bytes not yet taken by the handler.
const HTTP1_MAX_BUFFER: usize = 16 * 1024;
/// HTTP/2: request bytes a client may send before the handler reads them, per stream and per
/// connection (flow-control windows; the protocol's own default is 64 KiB).
const HTTP2_STREAM_WINDOW: u32 = 64 * 1024;
const HTTP2_CONNECTION_WINDOW: u32 = 256 * 1024;
/// HTTP/2: requests in flight on one connection, and the size of one request's headers.
const HTTP2_MAX_STREAMS: u32 = 64;
const HTTP2_MAX_HEADER_LIST: u32 = 16 * 1024;
/// Pause after a failed `accept` (e.g. out of file descriptors) so the loop does not spin.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(50);
/// After the drain grace, how long closing the remaining connections may take.
const CLOSE_GRACE: Duration = Duration::from_secs(1);

/// Connections the kernel completes and queues before the accept loop takes them (it caps this
/// at `net.core.somaxconn`): a burst of clients (all POS terminals reconnecting after a restart)
/// waits there instead of being dropped and retrying a second later.
const LISTEN_BACKLOG: u32 = 4096;

/// A listener on `address` with a deep accept queue ([`LISTEN_BACKLOG`]); port 0 picks a free
/// port.
pub fn bind(address: SocketAddr) -> std::io::Result<TcpListener> {
    let socket = if address.is_ipv4() { TcpSocket::new_v4()? } else { TcpSocket::new_v6()? };
    socket.set_reuseaddr(true)?;
    socket.bind(address)?;
    socket.listen(LISTEN_BACKLOG)
}

/// Serves `listener` until `shutdown` resolves, answering every request with `handler`; then
/// stops accepting, lets open connections finish for up to [`ConnectionLimits::drain_grace`] and closes
/// what is left. `name` labels the listener's metrics (a fixed set: `partner`, `admin`, …).
pub async fn serve<H, F>(
    listener: TcpListener,
    name: &'static str,
    limits: ConnectionLimits,
    handler: H,
    shutdown: impl Future<Output = ()>,
) where
    H: Fn(Request<Incoming>) -> F + Clone + Send + Sync + 'static,
    F: Future<Output = Response<Full<Bytes>>> + Send + 'static,
{
    let counters = Arc::new(Counters::new(name));
    let slots = Arc::new(Semaphore::new(limits.max_connections));
    let peers = Peers::new(limits.max_connections_per_peer, limits.max_connections);
    let builders = Arc::new(builders(&limits));
    let (stop, stopping) = watch::channel(Stop::Serving);
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        let slot = match slots.clone().try_acquire_owned() {
            Ok(slot) => slot,
            Err(_) => {
                counters.cap_reached.increment(1);
                tokio::select! {
                    slot = slots.clone().acquire_owned() => match slot {
                        Ok(slot) => slot,
                        Err(_) => break,
                    },
                    () = &mut shutdown => break,
                }
            }
        };
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(error) => {
                    tracing::warn!(%error, listener = name, "accept failed");
                    tokio::time::sleep(ACCEPT_BACKOFF).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let Some(peer_slot) = peers.admit(peer.ip()) else {
            counters.closed(counters::Reason::PeerCap);
            continue;
        };
        let _ = stream.set_nodelay(true);
        let connection = connection::Connection {
            limits,
            counters: counters.clone(),
            stopping: stopping.clone(),
            builders: builders.clone(),
        };
        let handler = handler.clone();
        tokio::spawn(async move {
            let _slots = (slot, peer_slot);
            connection.run(stream, peer, handler).await;
        });
    }
    // New clients are refused at once (and try another replica) rather than queued unanswered.
    drop(listener);
    drain(&slots, &stop, &limits, name).await;
}

/// Every connection finishes within the grace, or is closed.
async fn drain(slots: &Semaphore, stop: &watch::Sender<Stop>, limits: &ConnectionLimits, name: &'static str) {
    stop.send_replace(Stop::Draining);
    let everyone = u32::try_from(limits.max_connections).unwrap_or(u32::MAX);
    if tokio::time::timeout(limits.drain_grace, slots.acquire_many(everyone)).await.is_ok() {
        return;
    }
    tracing::warn!(listener = name, "connections still open after the drain grace period; closing them");
    stop.send_replace(Stop::Closing);
    let _ = tokio::time::timeout(CLOSE_GRACE, slots.acquire_many(everyone)).await;
}

fn builders(limits: &ConnectionLimits) -> Builders {
    let detect = builder(limits);
    let http2 = limits.http2.then(|| detect.clone().http2_only());
    Builders { http1: detect.clone().http1_only(), http2, detect }
}

fn builder(limits: &ConnectionLimits) -> auto::Builder<TokioExecutor> {
    let mut builder = auto::Builder::new(TokioExecutor::new());
    // Heads are timed by the connection's watchdog (`clock`), which also covers the protocol
    // detection and tells idle from slow; hyper's own timer would start at idle.
    // Half-closed: once a request has been read whole, hyper does not read on to notice the
    // client leaving. That read takes a second buffer (the first still holds the request being
    // answered) for every request in flight: ~15 KiB each, 85 MiB with 5,500 pays waiting on a
    // slow Alipay. A client gone is found when its answer is written; what it asked is bounded.
    builder.http1().timer(TokioTimer::new()).header_read_timeout(None).max_buf_size(HTTP1_MAX_BUFFER).half_close(true);
    builder
        .http2()
        .timer(TokioTimer::new())
        .max_concurrent_streams(HTTP2_MAX_STREAMS)
        .max_header_list_size(HTTP2_MAX_HEADER_LIST)
        .initial_stream_window_size(HTTP2_STREAM_WINDOW)
        .initial_connection_window_size(HTTP2_CONNECTION_WINDOW)
        .keep_alive_interval(limits.keep_alive_interval)
        .keep_alive_timeout(limits.keep_alive_timeout);
    builder
}

#[cfg(test)]
mod tests;
