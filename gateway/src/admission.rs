//! Admitting an authenticated partner API request: its nonce claimed in the seen-set every
//! replica shares (replays) and one call taken from its budgets, in one Redis round trip when
//! both need Redis (a pipeline: `SET NX` and the budgets' script), none when this process decides
//! both (a nonce seen here; calls claimed ahead).
//!
//! A pipelined call is taken from the budgets even when the nonce turns out replayed: a captured
//! request costs its tenant at most one call per gateway (each gateway remembers the nonce after).

use budgets::Prepared;
use redis::{RedisResult, Value};
use tenants::snapshot::Tenant;

use crate::limits::{Budget, borrowed};
use crate::problem::ApiError;
use crate::replay::{RedisSaid, Verdict};
use crate::state::AppState;

/// Who signed the request, as authentication found it.
pub struct Signed<'a> {
    pub key_id: &'a str,
    pub nonce: &'a str,
    /// The request's `Timestamp` and the gateway's clock, Unix seconds.
    pub timestamp: i64,
    pub now: i64,
}

pub async fn admit(state: &AppState, tenant: &Tenant, signed: &Signed<'_>, budget: Budget) -> Result<(), ApiError> {
    let replays = &state.replays;
    if replays.seen_here(signed.key_id, signed.nonce, signed.now) {
        return Err(ApiError::Unauthorized);
    }
    if !tenant.is_active() {
        return Err(ApiError::Suspended);
    }
    let draw = state.budgets.draw(tenant, budget);
    let draw = borrowed(&draw);
    let shared = state.budgets.shared();
    let claim = (!replays.resting()).then(|| replays.claim_command(signed.key_id, signed.nonce));
    let mut connection = state.due_index.connection();
    let (said, taken) = match (claim, shared.prepare(&draw)) {
        (Some(claim), Prepared::Ask(ask)) => {
            let mut pipe = redis::pipe();
            pipe.ignore_errors().add_command(claim).add_command(ask.command.clone());
            let answers =
                tokio::time::timeout(replays.wait(), pipe.query_async::<Vec<RedisResult<Value>>>(&mut connection));
            match answers.await {
                Ok(Ok(answers)) => {
                    let mut answers = answers.into_iter();
                    match (answers.next(), answers.next()) {
                        (Some(claimed), Some(budgets)) => {
                            (RedisSaid::Answered(claimed), shared.finish(&draw, ask, Some(budgets)).await)
                        }
                        _ => (RedisSaid::Late, shared.finish(&draw, ask, None).await),
                    }
                }
                Ok(Err(error)) => (RedisSaid::Answered(Err(error)), shared.finish(&draw, ask, None).await),
                Err(_) => (RedisSaid::Late, shared.finish(&draw, ask, None).await),
            }
        }
        (Some(claim), Prepared::Decided(taken)) => {
            let answer = tokio::time::timeout(replays.wait(), claim.query_async::<Value>(&mut connection)).await;
            (answer.map_or(RedisSaid::Late, RedisSaid::Answered), taken)
        }
        (None, Prepared::Ask(ask)) => (RedisSaid::Resting, shared.send(&draw, ask).await),
        (None, Prepared::Decided(taken)) => (RedisSaid::Resting, taken),
    };
    match replays.judge(said, signed.timestamp) {
        Verdict::First => {}
        Verdict::Replayed => return Err(ApiError::Unauthorized),
        Verdict::Undecided => {
            return Err(ApiError::Busy {
                what: "the request's nonce cannot be checked yet; sign it again",
                retry_after_secs: 1,
            });
        }
    }
    taken.map(drop).map_err(|wait| ApiError::RateLimited { retry_after_secs: wait.as_secs_f64().ceil() as u64 })
}
