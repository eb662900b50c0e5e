//! The claim loop: takes due trades from the Redis due-index with a lease (one atomic script),
//! reads them from Postgres in one statement (marking those past their deadline as being
//! cancelled, in the same statement), checks each in a task of its own (at most
//! `max_in_flight` at once), and queues its follow-up. While Redis is away it claims straight
//! from Postgres (`FOR UPDATE SKIP LOCKED`, the lease written into `next_check_at`); when Redis
//! answers again it asks the sweeper to re-seed it.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use ledger::due_index::{Claim, Rearm, due_score, score, time_of};
use ledger::{Trade, TradeKey};
use time::OffsetDateTime;
use tokio::sync::{OwnedSemaphorePermit, Semaphore, watch};

use crate::app::Shared;
use crate::check::Next;
use crate::writer::{Followup, Writer};

/// How long the Postgres claim waits between empty claims (it spares Postgres the 10 ms poll).
const POSTGRES_POLL: Duration = Duration::from_millis(200);
/// How soon trades whose rows could not be read are tried again.
const UNREAD_RETRY: Duration = Duration::from_secs(1);

/// Runs until `stop`, then waits for the checks under way.
pub async fn run(shared: Arc<Shared>, writer: Writer, mut stop: watch::Receiver<bool>) {
    let config = &shared.config;
    let slots = Arc::new(Semaphore::new(config.max_in_flight));
    let mut redis_up = true;
    metrics::gauge!("reconciler_redis_up").set(1.0);
    while !*stop.borrow() {
        let free = slots.available_permits().min(config.claim_batch);
        if free == 0 {
            tokio::select! {
                slot = slots.clone().acquire_owned() => drop(slot),
                _ = stop.changed() => {}
            }
            continue;
        }
        let now = OffsetDateTime::now_utc();
        let lease = now + config.lease;
        let wait = match shared.due_index.claim(score(now), score(lease), free).await {
            Ok(claim) => {
                if !redis_up {
                    redis_up = true;
                    metrics::gauge!("reconciler_redis_up").set(1.0);
                    tracing::info!("Redis answers again: re-seeding the due-index from Postgres");
                    shared.sweep_now.notify_one();
                }
                claimed_from_redis(&shared, &writer, &slots, claim, now).await
            }
            Err(error) => {
                if redis_up {
                    redis_up = false;
                    metrics::gauge!("reconciler_redis_up").set(0.0);
                    tracing::warn!(%error, "Redis is away: settling trades from Postgres alone");
                }
                claimed_from_postgres(&shared, &slots, now, lease, free).await
            }
        };
        if let Some(wait) = wait {
            tokio::select! {
                () = tokio::time::sleep(wait) => {}
                _ = stop.changed() => {}
            }
        }
    }
    let _ = slots.acquire_many(u32::try_from(config.max_in_flight).unwrap_or(u32::MAX)).await;
}

/// Dispatches a Redis claim; answers how long to sleep when there was nothing to do.
async fn claimed_from_redis(
    shared: &Arc<Shared>,
    writer: &Writer,
    slots: &Arc<Semaphore>,
    claim: Claim,
    now: OffsetDateTime,
) -> Option<Duration> {
    if !claim.unreadable.is_empty() {
        tracing::warn!(count = claim.unreadable.len(), "removing due-index members that name no trade");
        let _ = shared.due_index.disarm_members(&claim.unreadable).await;
    }
    if claim.due.is_empty() {
        let until_next = claim.next_due.map_or(i64::MAX, |next| next - score(now));
        let until_next = Duration::from_millis(u64::try_from(until_next).unwrap_or(0));
        return Some(until_next.clamp(Duration::from_millis(1), shared.config.poll));
    }
    let now_score = score(now);
    for (_, due) in &claim.due {
        metrics::histogram!("reconciler_claim_lag_seconds").record((now_score - due).max(0) as f64 / 1000.0);
    }
    metrics::counter!("reconciler_claimed_total", "from" => "redis").increment(claim.due.len() as u64);
    let keys: Vec<TradeKey> = claim.due.iter().map(|(key, _)| key.clone()).collect();
    let trades = match shared.store.get_many_marking_expired(&keys, now, shared.checker.schedule.deadline).await {
        Ok(trades) => trades,
        Err(error) => {
            tracing::warn!(%error, count = keys.len(), "claimed trades could not be read; retrying them shortly");
            let retry = due_score(now + UNREAD_RETRY);
            for key in keys {
                writer.send(Followup::Rearm(Rearm { key, lease: claim.lease, next: retry })).await;
            }
            return Some(shared.config.poll);
        }
    };
    let mut by_key: HashMap<TradeKey, Trade> = trades.into_iter().map(|t| (t.key.clone(), t)).collect();
    for (key, due) in claim.due {
        let Some(trade) = by_key.remove(&key) else {
            writer.send(Followup::Disarm(key.encode())).await;
            continue;
        };
        let Ok(slot) = slots.clone().try_acquire_owned() else {
            // Cannot happen (the claim took no more than the free slots); the lease covers it.
            continue;
        };
        let (shared, writer, lease) = (shared.clone(), writer.clone(), claim.lease);
        tokio::spawn(async move {
            let next = shared.checker.check(trade, Some(time_of(due))).await;
            let followup = match next {
                Next::Final => Followup::Disarm(key.encode()),
                Next::At(at) => Followup::Rearm(Rearm { key, lease, next: due_score(at) }),
            };
            writer.send(followup).await;
            drop(slot);
        });
    }
    None
}

/// Claims and dispatches from Postgres; answers how long to sleep when there was nothing to do.
async fn claimed_from_postgres(
    shared: &Arc<Shared>,
    slots: &Arc<Semaphore>,
    now: OffsetDateTime,
    lease: OffsetDateTime,
    free: usize,
) -> Option<Duration> {
    let trades = match shared.store.claim_due(now, lease, i64::try_from(free).unwrap_or(i64::MAX)).await {
        Ok(trades) if trades.is_empty() => return Some(POSTGRES_POLL),
        Ok(trades) => trades,
        Err(error) => {
            tracing::warn!(%error, "Postgres claim failed");
            return Some(POSTGRES_POLL);
        }
    };
    metrics::counter!("reconciler_claimed_total", "from" => "postgres").increment(trades.len() as u64);
    for trade in trades {
        let Ok(slot) = slots.clone().try_acquire_owned() else { continue };
        tokio::spawn(check_claimed_in_postgres(shared.clone(), trade, slot));
    }
    None
}

async fn check_claimed_in_postgres(shared: Arc<Shared>, claimed: Trade, slot: OwnedSemaphorePermit) {
    let next = shared.checker.check(claimed.clone(), None).await;
    if let Next::At(at) = next
        && let Err(error) = shared.store.reschedule(&claimed, at).await
    {
        tracing::warn!(%error, "could not reschedule in Postgres; the lease brings the trade back");
    }
    drop(slot);
}
