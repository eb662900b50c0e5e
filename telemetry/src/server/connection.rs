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
    pub(crate) builders: Arc<Builders>,
}

/// HTTP/2's connection preface (RFC 9113 §3.4): a client speaking HTTP/2 over plain TCP opens
/// with it.
const HTTP2_PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

/// The listener's protocols, each as hyper serves it.
pub(crate) struct Builders {
    /// HTTP/1 alone, read from the first byte.
    pub(crate) http1: auto::Builder<TokioExecutor>,
    /// HTTP/2 alone, from its preface (`None` when the listener takes HTTP/1 only).
    pub(crate) http2: Option<auto::Builder<TokioExecutor>>,
    /// Either, told apart by reading the first bytes.
    pub(crate) detect: auto::Builder<TokioExecutor>,
}

impl Builders {
    /// The builder for a client whose first bytes (peeked, still in the socket) are `first`.
    /// Told apart here, hyper reads from the first byte into its own buffer: telling them apart
    /// by reading (hyper-util's detection) replays those bytes into it and grows each
    /// connection's read buffer from 8 to 16 KiB for its whole life.
    pub(crate) fn for_opening(&self, first: &[u8]) -> &auto::Builder<TokioExecutor> {
        match &self.http2 {
            None => &self.http1,
            Some(http2) if first.len() >= HTTP2_PREFACE.len() && first.starts_with(HTTP2_PREFACE) => http2,
            // Not a preface: HTTP/1. Only the start of one so far (a preface split across
            // segments, rare): read and tell, as hyper-util does.
            Some(_) if !HTTP2_PREFACE.starts_with(first) => &self.http1,
            Some(_) => &self.detect,
        }
    }
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
        let counters = self.counters.clone();
        let _open = Open::new(counters.clone());
        let mut watchdog = Watchdog::new(clock.clone());
        // The first bytes, peeked: they stay in the socket. Bounded by the first-byte deadline,
        // then (bytes seen) by the header's.
        let mut first = [0; HTTP2_PREFACE.len()];
        let peeked = match &self.builders.http2 {
            None => Ok(0),
            Some(_) => tokio::select! {
                biased;
                peeked = stream.peek(&mut first) => peeked,
                expiry = &mut watchdog => {
                    counters.closed(Reason::from(expiry));
                    return;
                }
                // Nothing sent yet, nothing in flight: closed as hyper closes an idle one.
                _ = self.stopping.wait_for(|stop| *stop != Stop::Serving) => return,
            },
        };
        let Ok(peeked) = peeked else { return };
        if peeked > 0 {
            clock.bytes_read();
        }
        let builder = self.builders.for_opening(&first[..peeked]);
        let io = TokioIo::new(Watched { stream, clock });
        let connection = builder.serve_connection(io, service);
        let mut connection = std::pin::pin!(connection);
        let closing = tokio::select! {
            biased;
            ended = connection.as_mut() => {
                count_end(&counters, ended);
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
    }
}

/// The connection counted open for as long as it is served.
struct Open(Arc<Counters>);

impl Open {
    fn new(counters: Arc<Counters>) -> Open {
        counters.open.increment(1.0);
        Open(counters)
    }
}

impl Drop for Open {
    fn drop(&mut self) {
        self.0.open.decrement(1.0);
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
