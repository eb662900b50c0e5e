//! Request bodies read before anyone knows who sent them: within a size limit, a deadline for the
//! whole body, and a byte budget every body being read shares, so what strangers make the process
//! hold is bounded by a number (the budget) however many connections they open.
//!
//! A body over the limit is refused (413) before it is read when its `Content-Length` says so,
//! else as soon as it crosses the limit. On HTTP/1 the rest is then read and thrown away, up to
//! [`DISCARD_BYTES`] and for at most the body deadline, while the answer goes out with
//! `Connection: close`: closing a socket with unread data makes the kernel reset the connection,
//! and the reset destroys the answer the client has not read yet (a POS still sending would see a
//! broken pipe instead of the 413). HTTP/2 needs none of this: the stream is reset on its own.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::{HeaderValue, Version, header};
use http_body_util::BodyExt;
use hyper::body::Body;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use super::counters::{BodyCounters, BodyRefusal};

/// The most read and thrown away after refusing a body, so the client can read the answer.
pub const DISCARD_BYTES: usize = 16 * 1024 * 1024;

/// Why a body was not read. Every one of them ends the connection: answer with
/// `Connection: close` (the rest of the body is not a next request).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum BodyError {
    #[error("the body is larger than the limit")]
    TooLarge,
    #[error("the body did not arrive in time")]
    TimedOut,
    /// The byte budget of bodies being read is spent; a retry a moment later is safe.
    #[error("too many request bodies are being read; retry")]
    OverBudget,
    /// The client broke off, or sent a body that is not valid HTTP framing.
    #[error("the body could not be read")]
    Unreadable,
}

/// Reads request bodies for one listener.
#[derive(Clone)]
pub struct BodyReader {
    max_bytes: usize,
    timeout: Duration,
    budget: Option<Arc<Semaphore>>,
    counters: BodyCounters,
}

/// A body read, and its bytes counted against the budget until `hold` is dropped (once the
/// request is authenticated).
#[derive(Debug)]
pub struct ReadBody {
    pub bytes: Bytes,
    pub hold: BudgetHold,
}

/// Bytes of the budget held by one body.
#[derive(Debug)]
pub struct BudgetHold(Option<OwnedSemaphorePermit>);

impl BudgetHold {
    fn take(&mut self, budget: Option<&Arc<Semaphore>>, bytes: usize) -> Result<(), BodyError> {
        let Some(budget) = budget else { return Ok(()) };
        let bytes = u32::try_from(bytes).map_err(|_| BodyError::OverBudget)?;
        let permit = budget.clone().try_acquire_many_owned(bytes).map_err(|_| BodyError::OverBudget)?;
        match &mut self.0 {
            Some(held) => held.merge(permit),
            None => self.0 = Some(permit),
        }
        Ok(())
    }
}

impl BodyReader {
    /// Bodies of at most `max_bytes`, each whole within `timeout` of the handler asking for it.
    /// `listener` labels `listener_bodies_refused_total`.
    pub fn new(listener: &'static str, max_bytes: usize, timeout: Duration) -> BodyReader {
        BodyReader { max_bytes, timeout, budget: None, counters: BodyCounters::new(listener) }
    }

    /// Every body being read holds its bytes (as they arrive, not as declared) from one budget of
    /// `bytes`; a chunk that does not fit refuses its body ([`BodyError::OverBudget`]).
    pub fn with_budget(mut self, bytes: usize) -> BodyReader {
        self.budget = Some(Arc::new(Semaphore::new(bytes.min(Semaphore::MAX_PERMITS))));
        self
    }

    /// Reads the body of the request whose head is `head`.
    pub async fn read<B>(&self, head: &http::request::Parts, mut body: B) -> Result<ReadBody, BodyError>
    where
        B: Body<Data = Bytes> + Send + Unpin + 'static,
    {
        let declared = body.size_hint().exact();
        if declared.is_some_and(|length| length > self.max_bytes as u64) {
            self.counters.refused(BodyRefusal::TooLarge);
            // hyper sends `100 Continue` only once the body is polled: a client waiting for it
            // sends nothing more, so there is nothing to discard.
            if !expects_continue(head.headers.get(header::EXPECT)) {
                self.discard(head.version, body);
            }
            return Err(BodyError::TooLarge);
        }
        match tokio::time::timeout(self.timeout, self.collect(&mut body, declared)).await {
            Ok(Ok(read)) => Ok(read),
            Ok(Err(error)) => {
                let refusal = match error {
                    BodyError::TooLarge => BodyRefusal::TooLarge,
                    BodyError::OverBudget => BodyRefusal::Budget,
                    BodyError::TimedOut | BodyError::Unreadable => return Err(error),
                };
                self.counters.refused(refusal);
                self.discard(head.version, body);
                Err(error)
            }
            Err(_) => {
                // Dropping the body stops reading it; a client this slow gets what it can.
                self.counters.refused(BodyRefusal::Deadline);
                Err(BodyError::TimedOut)
            }
        }
    }

    async fn collect<B>(&self, body: &mut B, declared: Option<u64>) -> Result<ReadBody, BodyError>
    where
        B: Body<Data = Bytes> + Unpin,
    {
        let mut hold = BudgetHold(None);
        let mut first = Bytes::new();
        let mut joined: Vec<u8> = Vec::new();
        let mut total = 0usize;
        while let Some(frame) = body.frame().await {
            let Ok(chunk) = frame.map_err(|_| BodyError::Unreadable)?.into_data() else { continue };
            if chunk.is_empty() {
                continue;
            }
            total = total.saturating_add(chunk.len());
            if total > self.max_bytes {
                return Err(BodyError::TooLarge);
            }
            hold.take(self.budget.as_ref(), chunk.len())?;
            if first.is_empty() {
                first = chunk;
            } else {
                if joined.is_empty() {
                    let expected = declared.and_then(|n| usize::try_from(n).ok()).unwrap_or(2 * total);
                    joined.reserve(expected.min(self.max_bytes));
                    joined.extend_from_slice(&first);
                }
                joined.extend_from_slice(&chunk);
            }
        }
        let bytes = if joined.is_empty() { first } else { Bytes::from(joined) };
        Ok(ReadBody { bytes, hold })
    }

    /// Reads and throws away what is left of a refused HTTP/1 body, bounded in bytes and time.
    fn discard<B>(&self, version: Version, mut body: B)
    where
        B: Body<Data = Bytes> + Send + Unpin + 'static,
    {
        if version != Version::HTTP_11 && version != Version::HTTP_10 {
            return;
        }
        let within = self.timeout;
        tokio::spawn(async move {
            let mut left = DISCARD_BYTES;
            let rest = async {
                while let Some(Ok(frame)) = body.frame().await {
                    let Some(chunk) = frame.data_ref() else { continue };
                    let Some(after) = left.checked_sub(chunk.len()) else { break };
                    left = after;
                }
            };
            let _ = tokio::time::timeout(within, rest).await;
        });
    }
}

fn expects_continue(expect: Option<&HeaderValue>) -> bool {
    expect.is_some_and(|value| value.as_bytes().eq_ignore_ascii_case(b"100-continue"))
}
