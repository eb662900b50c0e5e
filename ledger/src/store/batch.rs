//! Group writes: the intents and outcomes that arrive while earlier ones are being written go to
//! Postgres together, as one statement and one commit.
//!
//! Each kind of write has a [`Lane`]: callers queue their item and wait for its own result; a
//! dispatcher takes everything queued as soon as a write slot is free (the store gives each lane
//! one: a batch in flight, the next one growing). An idle lane writes a lone item at once (no
//! timer, no added latency); a busy one writes bigger batches, which is what saves the round
//! trips, the commits and the system calls. Every item still gets what a single write would have
//! given it: the statements are the single-row ones over arrays, and a batch that fails is
//! retried item by item, so one bad item never fails its neighbours.

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, OnceLock};

use deadpool_postgres::{Client, Pool};
use tokio::sync::{Semaphore, mpsc, oneshot};

use super::StoreError;

/// Items one statement carries at most.
const MAX_BATCH: usize = 256;
/// Items waiting for a slot at most; callers beyond wait to queue.
const QUEUE: usize = 4096;

pub(crate) type Written<'a, O> = Pin<Box<dyn Future<Output = Result<Vec<O>, StoreError>> + Send + 'a>>;

/// A write that can carry many items in one statement.
pub(crate) trait Batched: Send + Sync + Sized + 'static {
    type Out: Send + 'static;
    /// Writes `items` in one statement; answers one result per item, in order.
    fn write<'a>(client: &'a Client, items: &'a [Self]) -> Written<'a, Self::Out>;
}

type Reply<O> = oneshot::Sender<Result<O, StoreError>>;

/// One kind of write, batched; its dispatcher starts with the first item (inside the runtime)
/// and stops when the lane is dropped.
pub(crate) struct Lane<I: Batched> {
    queue: OnceLock<mpsc::Sender<(I, Reply<I::Out>)>>,
    pool: Pool,
    slots: usize,
}

impl<I: Batched> Lane<I> {
    /// A lane writing at most `slots` batches at a time.
    pub(crate) fn new(pool: Pool, slots: usize) -> Self {
        Lane { queue: OnceLock::new(), pool, slots: slots.max(1) }
    }

    /// Writes `item` with whatever else is waiting; answers its own result.
    pub(crate) async fn submit(&self, item: I) -> Result<I::Out, StoreError> {
        let queue = self.queue.get_or_init(|| self.start());
        let (reply, answer) = oneshot::channel();
        queue.send((item, reply)).await.map_err(|_| StoreError::Pool("the write queue is closed".into()))?;
        answer.await.map_err(|_| StoreError::Pool("the write was dropped".into()))?
    }

    fn start(&self) -> mpsc::Sender<(I, Reply<I::Out>)> {
        let (sender, mut receiver) = mpsc::channel(QUEUE);
        let (pool, slots) = (self.pool.clone(), Arc::new(Semaphore::new(self.slots)));
        tokio::spawn(async move {
            loop {
                let Ok(slot) = slots.clone().acquire_owned().await else { return };
                let mut batch = Vec::new();
                if receiver.recv_many(&mut batch, MAX_BATCH).await == 0 {
                    return;
                }
                let pool = pool.clone();
                tokio::spawn(async move {
                    let (items, replies): (Vec<I>, Vec<Reply<I::Out>>) = batch.into_iter().unzip();
                    for (reply, result) in replies.into_iter().zip(write(&pool, &items).await) {
                        let _ = reply.send(result);
                    }
                    drop(slot);
                });
            }
        });
        sender
    }
}

/// Writes `items` together; if that fails, each alone, so each gets its own error.
async fn write<I: Batched>(pool: &Pool, items: &[I]) -> Vec<Result<I::Out, StoreError>> {
    let client = match pool.get().await {
        Ok(client) => client,
        Err(error) => {
            let error = StoreError::from(error);
            return items.iter().map(|_| Err(error.duplicate())).collect();
        }
    };
    match I::write(&client, items).await {
        Ok(outs) if outs.len() == items.len() => return outs.into_iter().map(Ok).collect(),
        Ok(_) => tracing::error!("a batched write answered the wrong number of results"),
        Err(error) if items.len() > 1 => {
            tracing::warn!(%error, items = items.len(), "batched write failed; writing its items one by one")
        }
        Err(error) => return vec![Err(error)],
    }
    let mut results = Vec::with_capacity(items.len());
    for item in items {
        let one = I::write(&client, std::slice::from_ref(item)).await;
        results.push(
            one.and_then(|mut outs| outs.pop().ok_or_else(|| StoreError::Corrupt("a write answered nothing".into()))),
        );
    }
    results
}
