//! The partner API's handlers (design §3). Each reads and validates its body field by field,
//! works through the ledger and Alipay, and answers a view; errors go to [`crate::problem`].
//!
//! # Layout
//! - [`mod@self`]: the request context, `?wait=`, the one wait for a trade, the request
//!   fingerprint, and the lead-or-follow step shared by payments, QR orders, cancels and refunds.
//! - [`calls`]: what each of them sends to Alipay and records, as [`upstream::call::Call`]s
//!   (the order calls pay and precreate, cancel, refund).
//! - [`fields`]: field-by-field body reading.
//! - [`views`]: the JSON answers.
//! - [`payments`]: pay, read, cancel. [`refunds`], [`qr_orders`], [`oauth`], [`reports`].

pub mod calls;
pub mod fields;
pub mod oauth;
pub mod payments;
pub mod qr_orders;
pub mod refunds;
pub mod reports;
pub mod views;

use std::future::Future;
use std::hash::Hash;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use ledger::{Trade, TradeKey};
use tenants::snapshot::Tenant;
use tokio::task::JoinHandle;
use tokio::time::Instant;

use crate::inflight::{Inflight, Lead, Role};
use crate::problem::ApiError;
use crate::state::AppState;
use upstream::call::Call;
pub use upstream::call::{Made, Timing};

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
        let max = self.state.config.max_wait.as_secs();
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

/// What a wait for a trade waits for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Until {
    /// The trade is final (`?wait=`). Its finish is announced, so reads are few.
    Final,
    /// The trade has left PAYING (held by another gateway, or a crashed one). PAYING → UNKNOWN is
    /// not announced, so the trade is read more often.
    PastPaying,
}

impl Until {
    fn reached(self, trade: &Trade) -> bool {
        match self {
            Until::Final => trade.state.is_final(),
            Until::PastPaying => trade.state != ledger::TradeState::Paying,
        }
    }

    /// How long to wait for an announcement (a hint, which may be lost) before reading again.
    fn reread(self) -> Duration {
        match self {
            Until::Final => Duration::from_secs(1),
            Until::PastPaying => Duration::from_millis(250),
        }
    }
}

/// The one wait for a trade: reads it, and until it reaches `until` or `wait` is over, waits for
/// its announcement (or a while) and reads it again. `None` when there is no such trade.
///
/// Boxed: a read's future is large, and a request's future is as large as the largest thing it
/// ever awaits, so inline it would be carried by every payment waiting on Alipay.
pub fn wait_for_trade<'a>(
    state: &'a AppState,
    key: &'a TradeKey,
    until: Until,
    wait: Duration,
) -> Pin<Box<dyn Future<Output = Result<Option<Trade>, ApiError>> + Send + 'a>> {
    Box::pin(async move {
        let deadline = Instant::now() + wait;
        loop {
            let mut waiting = state.finals.wait_for(key);
            let Some(trade) = state.store.get(key).await? else { return Ok(None) };
            if until.reached(&trade) || Instant::now() >= deadline {
                return Ok(Some(trade));
            }
            let _ = tokio::time::timeout_at(deadline.min(Instant::now() + until.reread()), waiting.finished()).await;
        }
    })
}

/// A trade another gateway (or a crashed one) holds in PAYING: waits for it to move on, a bit
/// longer than our own call to Alipay could take.
pub async fn wait_out_paying(ctx: &Ctx, trade: Trade) -> Result<Trade, ApiError> {
    if Until::PastPaying.reached(&trade) {
        return Ok(trade);
    }
    let wait = ctx.state.config.upstream_timeout + Duration::from_secs(2);
    Ok(wait_for_trade(&ctx.state, &trade.key, Until::PastPaying, wait).await?.unwrap_or(trade))
}

/// The digest that makes two requests "the same": the request's kind and every field, in a fixed
/// order, one per line.
pub fn fingerprint(kind: &str, fields: &[&str]) -> Vec<u8> {
    let mut text = String::from(kind);
    for field in fields {
        text.push('\n');
        text.push_str(field);
    }
    aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, text.as_bytes()).as_ref().to_vec()
}

/// Makes `call` unless an identical call (same key in `calls`) is under way in this process,
/// whose result it then shares. The call runs detached from the POS connection, so a hang-up
/// never stops a payment, a cancel or a refund half-way; shutdown waits for it.
pub async fn lead_or_follow<K, T, C>(
    ctx: &Ctx,
    calls: &Inflight<K, Result<Made<T>, ApiError>>,
    key: &K,
    call: C,
) -> Result<Made<T>, ApiError>
where
    K: Hash + Eq + Clone + Send + Sync + 'static,
    T: Clone + Send + Sync + 'static,
    C: Call<Done = Result<T, ApiError>> + Send + 'static,
{
    match calls.join(key) {
        Role::Lead(lead) => {
            let task = spawn_call(ctx, lead, call);
            task.await.map_err(|_| ApiError::Unavailable("the call to Alipay stopped".into()))?
        }
        Role::Follow(follow) => follow
            .result()
            .await
            .unwrap_or_else(|| Err(ApiError::Unavailable("the identical call this one joined stopped".into()))),
    }
}

/// Starts `call`, led by `lead`, detached from the request. Not async: built in an async fn, the
/// task's future would also be kept in the caller's, through the whole wait for it.
fn spawn_call<K, T, C>(
    ctx: &Ctx,
    lead: Lead<K, Result<Made<T>, ApiError>>,
    call: C,
) -> JoinHandle<Result<Made<T>, ApiError>>
where
    K: Hash + Eq + Clone + Send + Sync + 'static,
    T: Clone + Send + Sync + 'static,
    C: Call<Done = Result<T, ApiError>> + Send + 'static,
{
    let (state, tenant) = (ctx.state.clone(), ctx.tenant.clone());
    ctx.state.tasks.spawn(async move {
        let result = state.upstream.make(&tenant, &call).await.transpose();
        lead.publish(&result);
        result
    })
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
