//! The sweeper: Postgres is the truth, Redis only an index of it. On start, every few seconds,
//! and whenever Redis answers again, it pages through every open trade of the last day (Alipay's
//! cancel window) and arms, at its Postgres `next_check_at`, each one missing from the due-index
//! (an arm the gateway lost, a PAYING intent whose gateway died, everything after Redis lost its
//! data). An armed trade keeps its time. It also keeps the due-index gauges current.

use std::sync::Arc;

use ledger::TradeKey;
use ledger::due_index::score;
use time::OffsetDateTime;
use tokio::sync::watch;

use crate::app::Shared;

/// Open trades read per page.
const PAGE: i64 = 1000;

#[derive(Debug, thiserror::Error)]
pub enum SweepError {
    #[error(transparent)]
    Store(#[from] ledger::StoreError),
    #[error(transparent)]
    DueIndex(#[from] ledger::due_index::DueIndexError),
}

/// What one sweep found.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Swept {
    /// Open trades in the window.
    pub open: usize,
    /// Of them, armed by this sweep (they were missing).
    pub armed: usize,
}

pub async fn run(shared: Arc<Shared>, mut stop: watch::Receiver<bool>) {
    let interval = shared.config.sweep_interval;
    while !*stop.borrow() {
        match sweep(&shared).await {
            Ok(swept) if swept.armed > 0 => {
                tracing::info!(armed = swept.armed, open = swept.open, "re-armed from Postgres")
            }
            Ok(_) => {}
            Err(error) => tracing::debug!(%error, "sweep skipped"),
        }
        tokio::select! {
            () = tokio::time::sleep(interval) => {}
            () = shared.sweep_now.notified() => {}
            _ = stop.changed() => {}
        }
    }
}

/// One pass over the open trades of the window.
pub async fn sweep(shared: &Shared) -> Result<Swept, SweepError> {
    let now = OffsetDateTime::now_utc();
    if let (Ok(depth), Ok(due)) = (shared.due_index.depth().await, shared.due_index.due_count(score(now)).await) {
        metrics::gauge!("reconciler_due_index_depth").set(depth as f64);
        metrics::gauge!("reconciler_due_now").set(due as f64);
    }
    let since = now - shared.config.sweep_window;
    let mut swept = Swept::default();
    let mut after: Option<TradeKey> = None;
    loop {
        let page = shared.store.open_trades(since, after.as_ref(), PAGE).await?;
        let batch: Vec<_> = page.iter().map(|open| (open.key.clone(), open.next_check_at)).collect();
        swept.armed += shared.due_index.arm_missing(&batch).await?;
        swept.open += page.len();
        after = page.last().map(|open| open.key.clone());
        if page.len() < PAGE as usize {
            break;
        }
    }
    metrics::gauge!("reconciler_open_trades").set(swept.open as f64);
    metrics::counter!("reconciler_sweeper_armed_total").increment(swept.armed as u64);
    Ok(swept)
}
