//! The due-index writes that follow checks — re-arm a trade for its next time, or remove it once
//! final — batched: one script call and one ZREM per round trip, however many checks finished.
//! A write lost to a crash or to Redis being away loses nothing: the trade's lease runs out and
//! it is claimed again.

use ledger::DueIndex;
use ledger::due_index::Rearm;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

/// Writes sent per round trip at most.
const BATCH: usize = 512;

/// A follow-up of one check.
#[derive(Debug)]
pub enum Followup {
    Rearm(Rearm),
    /// The member of a trade now final (or of none).
    Disarm(String),
}

/// Queues follow-ups; the writer task sends them. Dropping every clone ends the task once the
/// queue is drained.
#[derive(Clone)]
pub struct Writer {
    queue: mpsc::Sender<Followup>,
}

impl Writer {
    pub fn start(index: DueIndex, capacity: usize) -> (Writer, JoinHandle<()>) {
        let (queue, receiver) = mpsc::channel(capacity);
        (Writer { queue }, tokio::spawn(run(index, receiver)))
    }

    /// Queues a follow-up (waits while the queue is full).
    pub async fn send(&self, followup: Followup) {
        // Fails only once the writer task is gone, at shutdown: the lease covers it.
        let _ = self.queue.send(followup).await;
    }
}

async fn run(index: DueIndex, mut receiver: mpsc::Receiver<Followup>) {
    let (mut rearms, mut disarms) = (Vec::new(), Vec::new());
    while let Some(first) = receiver.recv().await {
        let mut next = Some(first);
        while let Some(followup) = next {
            match followup {
                Followup::Rearm(rearm) => rearms.push(rearm),
                Followup::Disarm(member) => disarms.push(member),
            }
            next = if rearms.len() + disarms.len() < BATCH { receiver.try_recv().ok() } else { None };
        }
        if !rearms.is_empty() {
            match index.rearm(&rearms).await {
                Ok(moved) => {
                    let lost = rearms.len().saturating_sub(moved);
                    metrics::counter!("reconciler_leases_lost_total").increment(lost as u64);
                }
                Err(error) => {
                    metrics::counter!("reconciler_due_index_errors_total").increment(1);
                    tracing::warn!(%error, count = rearms.len(), "re-arm failed; the leases will bring the trades back");
                }
            }
            rearms.clear();
        }
        if !disarms.is_empty() {
            if let Err(error) = index.disarm_members(&disarms).await {
                metrics::counter!("reconciler_due_index_errors_total").increment(1);
                tracing::warn!(%error, "disarm failed; the trades will be found final when they come due");
            }
            disarms.clear();
        }
    }
}
