//! One connection, driven to its end: hyper serves it while the watchdog keeps its deadlines and
//! the listener may ask it to drain.

use std::convert::Infallible;
use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::Bytes;
use http::{Request, Response, Version};
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio::sync::watch;

use super::clock::{Clock, Deadlines, Expiry, Watchdog};
use super::counters::{Counters, Reason};
use super::{CLOSE_GRACE, ConnectionLimits};

/// What the listener asks of its open connections.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Stop {
    Serving,
    /// Finish what is in flight, take nothing new.
    Draining,
    /// Close now.
    Closing,
}

/// What one connection needs from its listener.
pub(crate) struct Connection {
    pub(crate) limits: ConnectionLimits,
    pub(crate) counters: Arc<Counters>,
    pub(crate) stopping: watch::Receiver<Stop>,
    pub(crate) builder: Arc<auto::Builder<TokioExecutor>>,
}

impl Connection {
    /// Serves `stream` from `peer` (each request carries the peer's address in its extensions,
    /// for handlers that log or audit who called).
    pub(crate) async fn run<H, F>(mut self, stream: TcpStream, peer: SocketAddr, handler: H)
    where
        H: Fn(Request<Incoming>) -> F + Send + Sync + 'static,
        F: Future<Output = Response<Full<Bytes>>> + Send + 'static,
    {
        let limits = &self.limits;
        let deadlines = Deadlines {
            first_byte: limits.first_byte_timeout,
            header: limits.header_timeout,
            idle: limits.idle_timeout,
        };
        let clock = Clock::new(deadlines);
        let service = {
            let clock = clock.clone();
            service_fn(move |mut request: Request<Incoming>| {
                request.extensions_mut().insert(peer);
                clock.request_started(request.version() == Version::HTTP_2);
                let in_flight = InFlight(clock.clone());
                let answer = handler(request);
                async move {
                    let response = answer.await;
                    drop(in_flight);
                    Ok::<_, Infallible>(response)
                }
            })
        };
        let io = TokioIo::new(Watched { stream, clock: clock.clone() });
        let counters = self.counters.clone();
        self.counters.open.increment(1.0);
        let connection = self.builder.serve_connection(io, service);
        let mut connection = std::pin::pin!(connection);
        let mut watchdog = Watchdog::new(clock);
        let closing = tokio::select! {
            biased;
            ended = connection.as_mut() => {
                count_end(&counters, ended);
                counters.open.decrement(1.0);
                return;
            }
            expiry = &mut watchdog => Some(expiry),
            _ = self.stopping.wait_for(|stop| *stop != Stop::Serving) => None,
        };
        match closing {
            Some(expiry @ (Expiry::FirstByte | Expiry::Header)) => counters.closed(Reason::from(expiry)),
            Some(Expiry::Idle) => {
                // Nothing in flight: HTTP/1 closes at once, HTTP/2 says GOAWAY first.
                counters.closed(Reason::Idle);
                connection.as_mut().graceful_shutdown();
                let _ = tokio::time::timeout(CLOSE_GRACE, connection.as_mut()).await;
            }
            None => {
                // Draining: finish what is in flight (a head or a body still within its deadline).
                connection.as_mut().graceful_shutdown();
                tokio::select! {
                    biased;
                    ended = connection.as_mut() => count_end(&counters, ended),
                    expiry = &mut watchdog => counters.closed(Reason::from(expiry)),
                    _ = self.stopping.wait_for(|stop| *stop == Stop::Closing) => counters.closed(Reason::Drain),
                }
            }
        }
        counters.open.decrement(1.0);
    }
}

/// Counts a connection hyper ended: only HTTP/2 keep-alive timeouts (no answer to a PING) are
/// deadlines; anything else is the client's doing.
fn count_end(counters: &Counters, ended: Result<(), Box<dyn std::error::Error + Send + Sync>>) {
    if let Err(error) = ended {
        if error.downcast_ref::<hyper::Error>().is_some_and(hyper::Error::is_timeout) {
            counters.closed(Reason::KeepAlive);
        } else {
            tracing::debug!(%error, "connection ended with an error");
        }
    }
}

/// A request in the handler; ends when dropped (answered, or abandoned with its connection).
struct InFlight(Arc<Clock>);

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.request_ended();
    }
}

/// The connection's socket, telling its clock when bytes arrive.
struct Watched {
    stream: TcpStream,
    clock: Arc<Clock>,
}

impl AsyncRead for Watched {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let read = Pin::new(&mut self.stream).poll_read(cx, buf);
        if buf.filled().len() > before {
            self.clock.bytes_read();
        }
        read
    }
}

impl AsyncWrite for Watched {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.stream).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.stream).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_shutdown(cx)
    }
}
