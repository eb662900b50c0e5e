//! `POST /v1/payments`, `GET /v1/payments/{out_trade_no}`, `POST /v1/payments/{out_trade_no}/cancel`.
//!
//! A payment's life:
//! ```text
//! validate → join in-flight call ─┬─ lead: the order call (calls::OrderCall through upstream::call:
//!                                  │        intent (PAYING) → sign → Alipay → what it proved → CAS → arm if UNKNOWN)
//!                                  └─ follow: the leader's trade
//! → same fingerprint? (else 409) → PAYING elsewhere? wait → ?wait= → answer
//! ```

use alipay::{AuthCode, Currency, OutTradeNo};
use bytes::Bytes;
use http::{Response, StatusCode};
use http_body_util::Full;
use ledger::Trade;
use tenants::model::Dialect;
use tenants::snapshot::Tenant;

use super::calls::{CancelCall, OrderCall, OrderFields, Ordered};
use super::fields::Fields;
use super::{Ctx, Made, Until, lead_or_follow, views, wait_for_trade, wait_out_paying, with_timing};
use crate::problem::{ApiError, json_response};

/// A validated payment request.
#[derive(Debug, Clone)]
pub struct PayRequest {
    pub fields: OrderFields,
    pub auth_code: AuthCode,
}

pub const ID_RULE: &str = "1 to 64 letters, digits, '_' or '-'";
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
                let fields = OrderFields { out_trade_no, amount, subject, store_id, terminal_id, operator_id };
                Ok(PayRequest { fields, auth_code })
            }
            _ => Err(ApiError::Invalid(Vec::new())),
        }
    }
}

/// Refuses calls a tenant cannot make now; nothing has been written or sent.
pub fn ready(tenant: &Tenant) -> Result<(), ApiError> {
    if !tenant.is_ready() { Err(ApiError::TenantNotReady) } else { Ok(()) }
}

pub async fn pay(ctx: Ctx, body: &[u8]) -> Result<Response<Full<Bytes>>, ApiError> {
    let PayRequest { fields, auth_code } = PayRequest::parse(body, &ctx.tenant)?;
    let wait = ctx.wait()?;
    let key = ctx.key(fields.out_trade_no.as_str());
    let ordered = Ordered::Pay { auth_code };
    let Made { done: trade, timing } = make_order(&ctx, fields, ordered, None, super::calls::NUMBER_TAKEN).await?;
    let trade = if trade.state.is_final() || wait.is_zero() {
        trade
    } else {
        wait_for_trade(&ctx.state, &key, Until::Final, wait).await?.unwrap_or(trade)
    };
    Ok(with_timing(json_response(StatusCode::OK, &views::payment(&trade)), timing))
}

/// Makes a payment or QR order (or joins, or repeats, an identical one) and waits out another
/// gateway's PAYING: the trade as the POS is told it. A number used for another order is a
/// conflict (`taken`). `notify_url` is the POS's own (front door), told of the payment.
pub async fn make_order(
    ctx: &Ctx,
    fields: OrderFields,
    ordered: Ordered,
    notify_url: Option<String>,
    taken: &str,
) -> Result<Made<Trade>, ApiError> {
    ready(&ctx.tenant)?;
    let key = ctx.key(fields.out_trade_no.as_str());
    let mut call = OrderCall::new(ctx.state.clone(), ctx.tenant.clone(), fields, ordered);
    call.pos_notify_url = notify_url;
    let fingerprint = call.fingerprint.clone();
    let Made { done: trade, timing } = lead_or_follow(ctx, &ctx.state.payments, &key, call).await?;
    if trade.fingerprint != fingerprint {
        return Err(ApiError::Conflict(taken.into()));
    }
    let trade = wait_out_paying(ctx, trade).await?;
    Ok(Made { done: trade, timing })
}

pub async fn get(ctx: Ctx, out_trade_no: &str) -> Result<Response<Full<Bytes>>, ApiError> {
    let wait = ctx.wait()?;
    let trade =
        wait_for_trade(&ctx.state, &ctx.key(out_trade_no), Until::Final, wait).await?.ok_or(ApiError::NotFound)?;
    Ok(json_response(StatusCode::OK, &views::payment(&trade)))
}

/// Cancels: closes an unpaid trade, reverses a paid one. The cancel runs detached from the POS
/// connection; when Alipay does not confirm it at once (no answer, `retry_flag=Y`), the reconciler
/// carries it on to the end and the POS hears 202 with `cancel_pending`.
pub async fn cancel(ctx: Ctx, out_trade_no: &str) -> Result<Response<Full<Bytes>>, ApiError> {
    let out_trade_no: OutTradeNo = out_trade_no.parse().map_err(|_| ApiError::NotFound)?;
    let Made { done: trade, timing } = make_cancel(&ctx, out_trade_no).await?;
    let status = if trade.cancel_requested && trade.is_open() { StatusCode::ACCEPTED } else { StatusCode::OK };
    Ok(with_timing(json_response(status, &views::payment(&trade)), timing))
}

/// Cancels (or joins an identical cancel under way here): the trade as the cancel left it.
pub async fn make_cancel(ctx: &Ctx, out_trade_no: OutTradeNo) -> Result<Made<Trade>, ApiError> {
    ready(&ctx.tenant)?;
    let key = ctx.key(out_trade_no.as_str());
    let call = CancelCall { state: ctx.state.clone(), key: key.clone(), out_trade_no };
    lead_or_follow(ctx, &ctx.state.cancels, &key, call).await
}
