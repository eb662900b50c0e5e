//! `POST /v1/payments`, `GET /v1/payments/{out_trade_no}`, `POST /v1/payments/{out_trade_no}/cancel`.
//!
//! A payment's life:
//! ```text
//! validate → join in-flight call ─┬─ lead: record intent (PAYING) → sign → Alipay → classify → CAS outcome → arm if UNKNOWN
//!                                  └─ follow: the leader's trade
//! → same fingerprint? (else 409) → PAYING elsewhere? wait → ?wait= → answer
//! ```

use std::sync::Arc;

use alipay::unified::{Answer, Order, Request};
use alipay::{AuthCode, Currency, MerchantRef, OutTradeNo, Outcome, Subject};
use aws_lc_rs::digest;
use bytes::Bytes;
use http::{Response, StatusCode};
use http_body_util::Full;
use ledger::{Begin, CancelAction, NewTrade, Recorded, Settlement, Trade, TradeKind, TradeState};
use tenants::model::Dialect;
use tenants::snapshot::Tenant;
use time::OffsetDateTime;

use super::fields::Fields;
use super::{Called, Ctx, Timing, lead_or_follow, read_waiting, views, wait_out_paying, with_timing};
use crate::problem::{ApiError, json_response};
use crate::state::AppState;

/// A validated payment request.
#[derive(Debug, Clone)]
pub struct PayRequest {
    pub out_trade_no: OutTradeNo,
    pub auth_code: AuthCode,
    pub amount: alipay::Amount,
    pub subject: Subject,
    pub store_id: Option<MerchantRef>,
    pub terminal_id: Option<MerchantRef>,
    pub operator_id: Option<MerchantRef>,
}

pub const ID_RULE: &str = "1 to 64 letters, digits, '_' or '-'";
/// The answer to a trade number used before, by this tenant for another payment or by another
/// tenant of the same Alipay account (which is not said).
pub const NUMBER_TAKEN: &str = "out_trade_no was used for another payment; use a new one";
pub const REF_RULE: &str = "1 to 32 letters, digits, '_' or '-'";
pub const SUBJECT_RULE: &str = "1 to 256 characters without control characters";

/// The currency of a request: given, or CNY for OpenAPI tenants (Global ones must say).
pub fn currency(fields: &mut Fields, tenant: &Tenant) -> Option<Currency> {
    match fields.optional::<Currency>("currency", "an ISO 4217 code Alipay settles in (CNY, HKD, USD, ...)") {
        Some(currency) => Some(currency),
        None if tenant.dialect == Dialect::Openapi => Some(Currency::CNY),
        None => {
            fields.reject("currency", "is required for Global (MAPI) tenants");
            None
        }
    }
}

impl PayRequest {
    pub fn parse(body: &[u8], tenant: &Tenant) -> Result<Self, ApiError> {
        let allowed =
            ["out_trade_no", "auth_code", "amount", "currency", "subject", "store_id", "terminal_id", "operator_id"];
        let mut fields = Fields::parse(body, &allowed)?;
        let out_trade_no = fields.required("out_trade_no", ID_RULE);
        let auth_code = fields.required("auth_code", "the buyer's payment code: 16 to 24 digits beginning 25 to 30");
        let currency = currency(&mut fields, tenant);
        let amount = fields.amount("amount", currency);
        let subject = fields.required("subject", SUBJECT_RULE);
        let store_id = fields.optional("store_id", REF_RULE);
        let terminal_id = fields.optional("terminal_id", REF_RULE);
        let operator_id = fields.optional("operator_id", REF_RULE);
        fields.finish()?;
        match (out_trade_no, auth_code, amount, subject) {
            (Some(out_trade_no), Some(auth_code), Some(amount), Some(subject)) => {
                Ok(PayRequest { out_trade_no, auth_code, amount, subject, store_id, terminal_id, operator_id })
            }
            _ => Err(ApiError::Invalid(Vec::new())),
        }
    }

    /// What makes two requests "the same": every field, in a fixed order.
    pub fn fingerprint(&self) -> Vec<u8> {
        let text = format!(
            "pay\n{}\n{}\n{}\n{}\n{}\n{}\n{}\n{}",
            self.out_trade_no,
            self.auth_code,
            self.amount,
            self.amount.currency(),
            self.subject,
            self.store_id.as_ref().map_or("", |s| s.as_str()),
            self.terminal_id.as_ref().map_or("", |s| s.as_str()),
            self.operator_id.as_ref().map_or("", |s| s.as_str()),
        );
        digest::digest(&digest::SHA256, text.as_bytes()).as_ref().to_vec()
    }

    pub fn order(&self) -> Order<'_> {
        Order {
            out_trade_no: &self.out_trade_no,
            subject: &self.subject,
            amount: self.amount,
            store_id: self.store_id.as_ref(),
            terminal_id: self.terminal_id.as_ref(),
            operator_id: self.operator_id.as_ref(),
        }
    }
}

/// The ledger's intent row for an order.
pub fn intent(state: &AppState, tenant: &Tenant, order: &Order<'_>, kind: TradeKind, fingerprint: Vec<u8>) -> NewTrade {
    NewTrade {
        key: ledger::TradeKey::new(tenant.id, order.out_trade_no.as_str()),
        kind,
        fingerprint,
        amount: order.amount,
        subject: order.subject.to_string(),
        store_id: order.store_id.map(|s| s.to_string()),
        terminal_id: order.terminal_id.map(|s| s.to_string()),
        operator_id: order.operator_id.map(|s| s.to_string()),
        check_at: OffsetDateTime::now_utc() + state.config.intent_check_after(),
        alipay_account: tenant.alipay_account(),
    }
}

/// Refuses calls a tenant cannot make now; nothing has been written or sent.
pub fn ready(tenant: &Tenant) -> Result<(), ApiError> {
    if !tenant.is_ready() { Err(ApiError::TenantNotReady) } else { Ok(()) }
}

pub async fn pay(ctx: Ctx, body: &[u8]) -> Result<Response<Full<Bytes>>, ApiError> {
    let request = PayRequest::parse(body, &ctx.tenant)?;
    let wait = ctx.wait()?;
    ready(&ctx.tenant)?;
    let fingerprint = request.fingerprint();
    let key = ctx.key(request.out_trade_no.as_str());
    let expected = fingerprint.clone();
    let Called { trade, timing } = lead_or_follow(&ctx, &ctx.state.payments, &key, move |state, tenant| {
        run_pay(state, tenant, request, fingerprint)
    })
    .await?;
    if trade.fingerprint != expected {
        return Err(ApiError::Conflict(NUMBER_TAKEN.into()));
    }
    let trade = wait_out_paying(&ctx, trade).await?;
    let trade = if trade.state.is_final() || wait.is_zero() {
        trade
    } else {
        read_waiting(&ctx.state, &key, wait).await?.unwrap_or(trade)
    };
    Ok(with_timing(json_response(StatusCode::OK, &views::payment(&trade)), timing))
}

/// What a payment answer proves, as a ledger settlement.
pub fn settlement(state: &AppState, trade: &Trade, answer: &alipay::unified::Answer) -> Settlement {
    let unknown = |reason: String| Settlement::Unknown {
        reason,
        next_check_at: trade.created_at + state.first_check(),
        deadline: trade.created_at + state.deadline(),
    };
    match &answer.outcome {
        Outcome::Success => {
            if !trade.matches(&answer.facts) {
                return unknown("the answer does not match the trade".into());
            }
            Settlement::Paid {
                trade_no: answer.facts.trade_no.clone(),
                buyer_user_id: answer.facts.buyer_user_id.clone(),
                paid_at: OffsetDateTime::now_utc(),
            }
        }
        Outcome::Failed(failure) => {
            Settlement::Failed { code: failure.reason_code().to_owned(), message: failure.message.clone() }
        }
        Outcome::Unknown(reason) => unknown(reason.to_string()),
    }
}

/// Records what `settlement` proved; if the write fails the trade stays as it was in the
/// ledger (PAYING) for the reconciler, and the POS hears UNKNOWN.
pub async fn record_outcome(state: &AppState, trade: &Trade, settlement: &Settlement) -> Trade {
    match state.store.record(trade, settlement).await {
        Ok(Recorded::Applied(updated)) => updated,
        Ok(Recorded::Stale(current)) => {
            metrics::counter!("gateway_stale_writes_total").increment(1);
            tracing::info!(trade = %trade.key.out_trade_no, state = %current.state, "outcome arrived after another writer moved the trade");
            current
        }
        Err(error) => {
            tracing::error!(%error, trade = %trade.key.out_trade_no, "outcome not recorded; the reconciler will settle the trade");
            Trade { state: TradeState::Unknown, ..trade.clone() }
        }
    }
}

async fn run_pay(
    state: Arc<AppState>,
    tenant: Arc<Tenant>,
    request: PayRequest,
    fingerprint: Vec<u8>,
) -> Result<Called, ApiError> {
    let order = request.order();
    let begun = std::time::Instant::now();
    let trade = match state.store.begin(&intent(&state, &tenant, &order, TradeKind::Barcode, fingerprint)).await? {
        Begin::Existing(existing) => return Ok(Called { trade: existing, timing: None }),
        Begin::Taken => return Err(ApiError::Conflict(NUMBER_TAKEN.into())),
        Begin::Started(trade) => trade,
    };
    let intent_took = begun.elapsed();
    fail::fail_point!("pay::after_intent");
    metrics::gauge!("gateway_in_flight").increment(1.0);
    let notify_url = state.notify_url(&tenant);
    let call = Request::Pay { order, auth_code: &request.auth_code };
    let started = std::time::Instant::now();
    let answer = state.upstream.call_for(&tenant, notify_url.as_deref(), &call).await;
    let upstream = started.elapsed();
    fail::fail_point!("pay::after_call");
    let settlement = match answer {
        Ok(answer) => settlement(&state, &trade, &answer),
        Err(not_sent) => Settlement::Failed { code: "REQUEST_NOT_SENT".into(), message: Some(not_sent.to_string()) },
    };
    let answered = std::time::Instant::now();
    let recorded = record_outcome(&state, &trade, &settlement).await;
    let outcome_took = answered.elapsed();
    fail::fail_point!("pay::after_outcome");
    metrics::gauge!("gateway_in_flight").decrement(1.0);
    let outcome = match recorded.state {
        TradeState::Success => "success",
        TradeState::Failed => "failed",
        _ => "unknown",
    };
    metrics::counter!("gateway_payments_total", "outcome" => outcome).increment(1);
    state.after_recording(&recorded).await;
    Ok(Called { trade: recorded, timing: Some(Timing { intent: intent_took, upstream, outcome: outcome_took }) })
}

pub async fn get(ctx: Ctx, out_trade_no: &str) -> Result<Response<Full<Bytes>>, ApiError> {
    let wait = ctx.wait()?;
    let trade = read_waiting(&ctx.state, &ctx.key(out_trade_no), wait).await?.ok_or(ApiError::NotFound)?;
    Ok(json_response(StatusCode::OK, &views::payment(&trade)))
}

/// Cancels: closes an unpaid trade, reverses a paid one. The cancel runs detached from the POS
/// connection; when Alipay does not confirm it at once (no answer, `retry_flag=Y`), the reconciler
/// carries it on to the end and the POS hears 202 with `cancel_pending`.
pub async fn cancel(ctx: Ctx, out_trade_no: &str) -> Result<Response<Full<Bytes>>, ApiError> {
    let out_trade_no: OutTradeNo = out_trade_no.parse().map_err(|_| ApiError::NotFound)?;
    ready(&ctx.tenant)?;
    let key = ctx.key(out_trade_no.as_str());
    let trade =
        lead_or_follow(&ctx, &ctx.state.cancels, &key, move |state, tenant| run_cancel(state, tenant, out_trade_no))
            .await?;
    let status = if trade.cancel_requested && trade.is_open() { StatusCode::ACCEPTED } else { StatusCode::OK };
    Ok(json_response(status, &views::payment(&trade)))
}

async fn run_cancel(state: Arc<AppState>, tenant: Arc<Tenant>, out_trade_no: OutTradeNo) -> Result<Trade, ApiError> {
    let key = ledger::TradeKey::new(tenant.id, out_trade_no.as_str());
    let now = OffsetDateTime::now_utc();
    let takeover_at = now + state.config.intent_check_after();
    let trade = state.store.request_cancel(&key, takeover_at).await?.ok_or(ApiError::NotFound)?;
    if !trade.is_open() {
        return Ok(trade);
    }
    let answer = state.upstream.call_for(&tenant, None, &Request::Cancel { out_trade_no: &out_trade_no }).await;
    metrics::counter!("gateway_cancels_total", "outcome" => match &answer {
        Ok(Answer { outcome: Outcome::Success, .. }) => "success",
        Ok(Answer { outcome: Outcome::Failed(_), .. }) => "refused",
        _ => "unknown",
    })
    .increment(1);
    match answer {
        Ok(Answer { outcome: Outcome::Success, facts }) => {
            let action = match facts.action {
                Some(alipay::openapi::trade::CancelAction::Refund) => CancelAction::Refund,
                Some(alipay::openapi::trade::CancelAction::Close) => CancelAction::Close,
                None if trade.state.is_paid() => CancelAction::Refund,
                None => CancelAction::Close,
            };
            let cancelled = cancel_recorded(&state, trade, action).await?;
            state.after_recording(&cancelled).await;
            Ok(cancelled)
        }
        // Alipay will not reverse the payment (e.g. past its cancel window): the trade stays paid.
        Ok(Answer { outcome: Outcome::Failed(failure), .. }) if trade.state.is_paid() => {
            tracing::warn!(trade = %key.out_trade_no, %failure, "Alipay refused to reverse a paid trade");
            state.store.cancel_refused(&trade).await?;
            Err(ApiError::Refused {
                code: failure.reason_code().to_owned(),
                message: failure.message.clone().unwrap_or_else(|| "Alipay refused the cancel".into()),
            })
        }
        // Not confirmed: the reconciler asks what happened and carries the cancel on, from now.
        _ => {
            state.arm(&key, now).await;
            Ok(state.store.get(&key).await?.unwrap_or(trade))
        }
    }
}

/// Writes the confirmed cancel, re-reading once if a concurrent writer moved the trade.
async fn cancel_recorded(state: &AppState, trade: Trade, action: CancelAction) -> Result<Trade, ApiError> {
    let settlement = Settlement::Cancelled { action };
    let mut current = trade;
    for _ in 0..3 {
        if current.state == TradeState::Cancelled || !current.state.can_become(TradeState::Cancelled) {
            return Ok(current);
        }
        match state.store.record(&current, &settlement).await? {
            Recorded::Applied(done) => return Ok(done),
            Recorded::Stale(now) => current = now,
        }
    }
    Ok(current)
}
