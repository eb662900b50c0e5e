//! The partner API's handlers (design §3). Each reads and validates its body field by field,
//! works through the ledger and Alipay, and answers a view; errors go to [`crate::problem`].
//!
//! # Layout
//! - [`mod@self`]: the request context, `?wait=` and the lead-or-follow step shared by
//!   payments, QR orders, cancels and refunds.
//! - [`fields`]: field-by-field body reading.
//! - [`views`]: the JSON answers.
//! - [`payments`]: pay, read, cancel. [`refunds`], [`qr_orders`], [`oauth`], [`reports`].

pub mod fields;
pub mod oauth;
pub mod payments;
pub mod qr_orders;
pub mod refunds;
pub mod reports;
pub mod views;

use std::future::Future;
use std::hash::Hash;
use std::sync::Arc;
use std::time::Duration;

use ledger::{Trade, TradeKey};
use tenants::snapshot::Tenant;
use tokio::time::Instant;

use crate::inflight::{Inflight, Role};
use crate::problem::ApiError;
use crate::state::AppState;

/// One authenticated request.
pub struct Ctx {
    pub state: Arc<AppState>,
    pub tenant: Arc<Tenant>,
    pub query: Option<String>,
}

impl Ctx {
    /// `?wait=N` (seconds, at most the configured maximum); zero when absent.
    pub fn wait(&self) -> Result<Duration, ApiError> {
        let Some(value) = query_value(self.query.as_deref(), "wait") else {
            return Ok(Duration::ZERO);
        };
        let max = self.state.config.max_wait_secs;
        match value.parse::<u64>() {
            Ok(seconds) if seconds <= max => Ok(Duration::from_secs(seconds)),
            _ => Err(ApiError::Invalid(vec![crate::problem::FieldError::new(
                "wait",
                format!("must be a whole number of seconds from 0 to {max}"),
            )])),
        }
    }

    pub fn key(&self, out_trade_no: &str) -> TradeKey {
        TradeKey::new(self.tenant.id, out_trade_no)
    }
}

/// The value of `name` in a query string (no decoding needed for the values we read).
pub fn query_value<'a>(query: Option<&'a str>, name: &str) -> Option<&'a str> {
    query?.split('&').find_map(|pair| pair.split_once('=').filter(|(k, _)| *k == name).map(|(_, v)| v))
}

/// Reads a trade; if it is not final, waits up to `wait` for it to become final.
pub async fn read_waiting(state: &AppState, key: &TradeKey, wait: Duration) -> Result<Option<Trade>, ApiError> {
    let deadline = Instant::now() + wait;
    loop {
        let mut waiting = state.settlements.wait_for(key);
        let Some(trade) = state.store.get(key).await? else { return Ok(None) };
        if trade.state.is_final() || Instant::now() >= deadline {
            return Ok(Some(trade));
        }
        // Woken by the settlement's announcement, or after a while anyway (an announcement is
        // a hint and may be lost), then read again.
        let _ = tokio::time::timeout_at(deadline.min(Instant::now() + REREAD), waiting.finished()).await;
    }
}

/// How long a `?wait=` waits for an announcement before reading the trade again anyway.
const REREAD: Duration = Duration::from_secs(1);

/// A trade as a call left it, and where the time went (when a request, this one or the one it
/// followed, made the call).
#[derive(Clone)]
pub struct Called {
    pub trade: Trade,
    pub timing: Option<Timing>,
}

/// How long a call's three steps took: the intent's commit, Alipay, the outcome's commit.
#[derive(Debug, Clone, Copy)]
pub struct Timing {
    pub intent: Duration,
    pub upstream: Duration,
    pub outcome: Duration,
}

/// Runs `call` unless an identical call (same key in `calls`) is under way in this process, whose
/// result it then shares. `call` runs detached from the POS connection, so a hang-up never stops
/// a payment, a cancel or a refund half-way; shutdown waits for it.
pub async fn lead_or_follow<K, T, F, Fut>(
    ctx: &Ctx,
    calls: &Inflight<K, Result<T, ApiError>>,
    key: &K,
    call: F,
) -> Result<T, ApiError>
where
    K: Hash + Eq + Clone + Send + Sync + 'static,
    T: Clone + Send + Sync + 'static,
    F: FnOnce(Arc<AppState>, Arc<Tenant>) -> Fut,
    Fut: Future<Output = Result<T, ApiError>> + Send + 'static,
{
    match calls.join(key) {
        Role::Lead(lead) => {
            let running = call(ctx.state.clone(), ctx.tenant.clone());
            let task = ctx.state.tasks.spawn(async move {
                let result = running.await;
                lead.publish(&result);
                result
            });
            task.await.map_err(|_| ApiError::Unavailable("the call to Alipay stopped".into()))?
        }
        Role::Follow(follow) => follow
            .result()
            .await
            .unwrap_or_else(|| Err(ApiError::Unavailable("the identical call this one joined stopped".into()))),
    }
}

/// Attaches `timing`, when the call was made here, to the answer; `routes` writes it out as
/// `Server-Timing`.
pub fn with_timing(
    mut response: http::Response<http_body_util::Full<bytes::Bytes>>,
    timing: Option<Timing>,
) -> http::Response<http_body_util::Full<bytes::Bytes>> {
    if let Some(timing) = timing {
        response.extensions_mut().insert(timing);
    }
    response
}

/// A trade another gateway (or a crashed one) holds in PAYING: wait for it to move on, a bit
/// longer than our own call to Alipay could take.
pub async fn wait_out_paying(ctx: &Ctx, trade: Trade) -> Result<Trade, ApiError> {
    if trade.state != ledger::TradeState::Paying {
        return Ok(trade);
    }
    let wait = ctx.state.config.upstream_timeout() + Duration::from_secs(2);
    let mut waiting = ctx.state.settlements.wait_for(&trade.key);
    let _ = tokio::time::timeout(wait, async {
        loop {
            match ctx.state.store.get(&trade.key).await {
                Ok(Some(current)) if current.state != ledger::TradeState::Paying => return,
                Err(_) => return,
                // PAYING → UNKNOWN is not a settlement, so look again now and then.
                _ => {
                    let _ = tokio::time::timeout(Duration::from_millis(250), waiting.finished()).await;
                }
            }
        }
    })
    .await;
    Ok(ctx.state.store.get(&trade.key).await?.unwrap_or(trade))
}
