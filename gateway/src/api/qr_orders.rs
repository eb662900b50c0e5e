//! `POST /v1/qr-orders`: an order QR code (C-scan-B) the customer scans and pays. The trade waits
//! (WAITING) until paid, or until it expires and the reconciler closes it.

use std::sync::Arc;
use std::time::Duration;

use alipay::unified::Request;
use alipay::{MerchantRef, OutTradeNo, Outcome, Subject};
use aws_lc_rs::digest;
use bytes::Bytes;
use http::{Response, StatusCode};
use http_body_util::Full;
use ledger::{Begin, Settlement, TradeKind};
use tenants::snapshot::Tenant;
use time::OffsetDateTime;

use super::fields::Fields;
use super::payments::{ID_RULE, NUMBER_TAKEN, REF_RULE, SUBJECT_RULE, currency, intent, ready, record_outcome};
use super::{Called, Ctx, Timing, lead_or_follow, views, wait_out_paying, with_timing};
use crate::problem::{ApiError, json_response};
use crate::state::AppState;

#[derive(Debug, Clone)]
struct OrderRequest {
    out_trade_no: OutTradeNo,
    amount: alipay::Amount,
    subject: Subject,
    store_id: Option<MerchantRef>,
    terminal_id: Option<MerchantRef>,
    operator_id: Option<MerchantRef>,
    /// How long the code stays payable.
    expires_in: Duration,
}

impl OrderRequest {
    fn order(&self) -> alipay::unified::Order<'_> {
        alipay::unified::Order {
            out_trade_no: &self.out_trade_no,
            subject: &self.subject,
            amount: self.amount,
            store_id: self.store_id.as_ref(),
            terminal_id: self.terminal_id.as_ref(),
            operator_id: self.operator_id.as_ref(),
        }
    }

    fn fingerprint(&self) -> Vec<u8> {
        let text = format!(
            "qr\n{}\n{}\n{}\n{}\n{}\n{}\n{}\n{}",
            self.out_trade_no,
            self.amount,
            self.amount.currency(),
            self.subject,
            self.store_id.as_ref().map_or("", |s| s.as_str()),
            self.terminal_id.as_ref().map_or("", |s| s.as_str()),
            self.operator_id.as_ref().map_or("", |s| s.as_str()),
            self.expires_in.as_secs(),
        );
        digest::digest(&digest::SHA256, text.as_bytes()).as_ref().to_vec()
    }
}

pub async fn create(ctx: Ctx, body: &[u8]) -> Result<Response<Full<Bytes>>, ApiError> {
    let allowed =
        ["out_trade_no", "amount", "currency", "subject", "store_id", "terminal_id", "operator_id", "expires_in"];
    let mut fields = Fields::parse(body, &allowed)?;
    let out_trade_no = fields.required("out_trade_no", ID_RULE);
    let currency = currency(&mut fields, &ctx.tenant);
    let amount = fields.amount("amount", currency);
    let subject = fields.required("subject", SUBJECT_RULE);
    let store_id = fields.optional("store_id", REF_RULE);
    let terminal_id = fields.optional("terminal_id", REF_RULE);
    let operator_id = fields.optional("operator_id", REF_RULE);
    let max = ctx.state.config.qr_expiry_secs;
    let expires_in = fields.optional_count("expires_in", &format!("a whole number of seconds from 60 to {max}"));
    if expires_in.is_some_and(|s| !(60..=max).contains(&s)) {
        fields.reject("expires_in", format!("must be from 60 to {max} seconds"));
    }
    fields.finish()?;
    let (Some(out_trade_no), Some(amount), Some(subject)) = (out_trade_no, amount, subject) else {
        return Err(ApiError::Invalid(Vec::new()));
    };
    ready(&ctx.tenant)?;
    let expires_in = Duration::from_secs(expires_in.unwrap_or(max));
    let request = OrderRequest { out_trade_no, amount, subject, store_id, terminal_id, operator_id, expires_in };
    let fingerprint = request.fingerprint();
    let key = ctx.key(request.out_trade_no.as_str());
    let Called { trade, timing } = lead_or_follow(&ctx, &ctx.state.payments, &key, {
        let fingerprint = fingerprint.clone();
        move |state, tenant| run_precreate(state, tenant, request, fingerprint)
    })
    .await?;
    if trade.fingerprint != fingerprint {
        return Err(ApiError::Conflict("out_trade_no was used for another order; use a new one".into()));
    }
    let trade = wait_out_paying(&ctx, trade).await?;
    Ok(with_timing(json_response(StatusCode::OK, &views::payment(&trade)), timing))
}

async fn run_precreate(
    state: Arc<AppState>,
    tenant: Arc<Tenant>,
    request: OrderRequest,
    fingerprint: Vec<u8>,
) -> Result<Called, ApiError> {
    let order = request.order();
    let begun = std::time::Instant::now();
    let trade = match state.store.begin(&intent(&state, &tenant, &order, TradeKind::Qr, fingerprint)).await? {
        Begin::Existing(existing) => return Ok(Called { trade: existing, timing: None }),
        Begin::Taken => return Err(ApiError::Conflict(NUMBER_TAKEN.into())),
        Begin::Started(trade) => trade,
    };
    let intent_took = begun.elapsed();
    let notify_url = state.notify_url(&tenant);
    let minutes = u32::try_from(request.expires_in.as_secs().div_ceil(60)).unwrap_or(u32::MAX);
    let call = Request::Precreate { order, timeout_minutes: Some(minutes) };
    let now = OffsetDateTime::now_utc();
    let started = std::time::Instant::now();
    let answer = state.upstream.call_for(&tenant, notify_url.as_deref(), &call).await;
    let upstream = started.elapsed();
    let settlement = match answer {
        Ok(answer) => match (&answer.outcome, &answer.facts.qr_code) {
            (Outcome::Success, Some(qr_code)) => Settlement::Waiting {
                qr_code: qr_code.clone(),
                next_check_at: now + Duration::from_millis(state.config.qr_check_ms),
                deadline: now + request.expires_in,
            },
            (Outcome::Failed(failure), _) => {
                Settlement::Failed { code: failure.reason_code().to_owned(), message: failure.message.clone() }
            }
            (outcome, _) => Settlement::Unknown {
                reason: match outcome {
                    Outcome::Unknown(reason) => reason.to_string(),
                    _ => "no QR code in the answer".into(),
                },
                next_check_at: trade.created_at + state.first_check(),
                deadline: trade.created_at + state.deadline(),
            },
        },
        Err(not_sent) => Settlement::Failed { code: "REQUEST_NOT_SENT".into(), message: Some(not_sent.to_string()) },
    };
    let answered = std::time::Instant::now();
    let recorded = record_outcome(&state, &trade, &settlement).await;
    let outcome_took = answered.elapsed();
    state.after_recording(&recorded).await;
    Ok(Called { trade: recorded, timing: Some(Timing { intent: intent_took, upstream, outcome: outcome_took }) })
}
