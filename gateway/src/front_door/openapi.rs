//! The OpenAPI methods of the front door, each through the partner API's own path
//! (`api::payments::make_order`, `make_cancel`, `api::refunds::make_refund`, the ledger), each
//! answered as Alipay answers it.

use std::time::Duration;

use alipay::openapi::Status;
use alipay::openapi::oauth::OauthTokenAnswer;
use alipay::openapi::trade::TradeCloseAnswer;
use alipay::server::GatewayRequest;
use alipay::server::openapi::{
    amount, biz, business, currency, invalid, invalid_method, member, missing, not_exist, optional, required,
    system_error, text, trade_ref,
};
use alipay::unified::Request;
use alipay::{AuthCode, OutRequestNo, OutTradeNo, Outcome, Subject};
use ledger::Trade;
use serde_json::{Map, Value};

use super::answers;
use crate::api::calls::{NUMBER_TAKEN, OrderFields, Ordered};
use crate::api::payments::{make_cancel, make_order};
use crate::api::refunds::{REFUND_NUMBER_TAKEN, make_refund};
use crate::api::{Ctx, Made};
use crate::problem::ApiError;

pub const OAUTH_TOKEN: &str = "alipay.system.oauth.token";

/// Runs `method`; answers the member to send and the key to send it under (oauth.token's
/// refusals go under `error_response`, as Alipay's do).
pub async fn dispatch(ctx: &Ctx, method: &str, req: &GatewayRequest, key: String) -> (String, Result<String, Status>) {
    let result = match method {
        "alipay.trade.pay" => pay(ctx, req).await,
        "alipay.trade.precreate" => precreate(ctx, req).await,
        "alipay.trade.query" => query(ctx, req).await,
        "alipay.trade.cancel" => cancel(ctx, req).await,
        "alipay.trade.close" => close(ctx, req).await,
        "alipay.trade.refund" => refund(ctx, req).await,
        "alipay.trade.fastpay.refund.query" => refund_query(ctx, req).await,
        OAUTH_TOKEN => {
            let result = oauth_token(ctx, req).await;
            let key = if result.is_err() { "error_response".to_owned() } else { key };
            return (key, result);
        }
        _ => Err(invalid_method()),
    };
    (key, result)
}

/// What the POS hears for an error of the shared path.
fn status_of(error: ApiError) -> Status {
    match error {
        ApiError::NotFound => not_exist(),
        ApiError::Conflict(text) if text == REFUND_NUMBER_TAKEN => {
            business("ACQ.DISCORDANT_REPEAT_REQUEST", "out_request_no was used with other details")
        }
        ApiError::Conflict(_) => business("ACQ.CONTEXT_INCONSISTENT", "trade details differ from the earlier request"),
        ApiError::NotRefundable(text) => business("ACQ.TRADE_STATUS_ERROR", &text),
        ApiError::RefundExceeds { .. } => {
            business("ACQ.REFUND_AMT_NOT_EQUAL_TOTAL", "refund amount exceeds what is left")
        }
        ApiError::Refused { code, message } => business(&code, &message),
        ApiError::Invalid(_) | ApiError::BadJson(_) => business("ACQ.INVALID_PARAMETER", "invalid parameter"),
        ApiError::NotSupported(text) => invalid("isv.invalid-method", &text),
        ApiError::TenantNotReady => {
            Status::error("20000", "Service Currently Unavailable", "isp.unknow-error", "not ready")
        }
        error => {
            tracing::warn!(%error, "front door call not completed; the POS hears SYSTEM_ERROR");
            system_error()
        }
    }
}

/// The number of the trade a call is about (the ledger keeps trades by the POS's number).
fn out_trade_no(biz: &Map<String, Value>) -> Result<OutTradeNo, Status> {
    match trade_ref(biz)? {
        (Some(no), _) => no.parse().map_err(|_| business("ACQ.INVALID_PARAMETER", "invalid out_trade_no")),
        (None, Some(_)) => {
            Err(business("ACQ.INVALID_PARAMETER", "give out_trade_no (trade_no alone is not kept here)"))
        }
        (None, None) => Err(not_exist()),
    }
}

async fn trade(ctx: &Ctx, out_trade_no: &OutTradeNo) -> Result<Trade, Status> {
    ctx.state.store.get(&ctx.key(out_trade_no.as_str())).await.map_err(|e| status_of(e.into()))?.ok_or_else(not_exist)
}

fn order(biz: &Map<String, Value>) -> Result<OrderFields, Status> {
    let out_trade_no = required(biz, "out_trade_no")?;
    let subject: Subject = required(biz, "subject")?;
    let amount = amount(biz, "total_amount", currency(biz)?)?;
    Ok(OrderFields {
        out_trade_no,
        amount,
        subject,
        store_id: optional(biz, "store_id")?,
        terminal_id: optional(biz, "terminal_id")?,
        operator_id: optional(biz, "operator_id")?,
    })
}

async fn pay(ctx: &Ctx, req: &GatewayRequest) -> Result<String, Status> {
    let biz = biz(req)?;
    if let Some(scene) = text(&biz, "scene")
        && !matches!(scene.as_ref(), "bar_code" | "wave_code" | "security_code")
    {
        return Err(business("ACQ.INVALID_PARAMETER", "invalid scene"));
    }
    let auth_code: AuthCode = text(&biz, "auth_code")
        .and_then(|c| c.parse().ok())
        .ok_or_else(|| business("ACQ.PAYMENT_AUTH_CODE_INVALID", "invalid auth_code"))?;
    let fields = order(&biz)?;
    let notify_url = req.value("notify_url").map(str::to_owned);
    let made = make_order(ctx, fields, Ordered::Pay { auth_code }, notify_url, NUMBER_TAKEN).await;
    Ok(answers::pay(&made.map_err(status_of)?.done))
}

/// `timeout_express` (`90m`, `2h`, `1d`; `1c` is the end of the day, taken as a day), within
/// the gateway's QR expiry.
fn expiry(biz: &Map<String, Value>, max: Duration) -> Result<Duration, Status> {
    let Some(text) = text(biz, "timeout_express") else { return Ok(max) };
    let bad = || business("ACQ.INVALID_PARAMETER", "invalid timeout_express");
    let (number, unit) = text.split_at(text.len().saturating_sub(1));
    let n: u64 = if unit == "c" { 1 } else { number.parse().map_err(|_| bad())? };
    let seconds = match unit {
        "m" => n * 60,
        "h" => n * 3600,
        "d" | "c" => n * 86_400,
        _ => return Err(bad()),
    };
    if n == 0 {
        return Err(bad());
    }
    Ok(Duration::from_secs(seconds.max(60)).min(max))
}

async fn precreate(ctx: &Ctx, req: &GatewayRequest) -> Result<String, Status> {
    let biz = biz(req)?;
    let fields = order(&biz)?;
    let expires_in = expiry(&biz, ctx.state.config.qr_expiry)?;
    let notify_url = req.value("notify_url").map(str::to_owned);
    let Made { done: trade, .. } = make_order(ctx, fields, Ordered::Precreate { expires_in }, notify_url, NUMBER_TAKEN)
        .await
        .map_err(status_of)?;
    match (trade.state, trade.qr_code.as_deref()) {
        (ledger::TradeState::Waiting, Some(qr_code)) => Ok(member(&alipay::openapi::trade::TradePrecreateAnswer {
            status: Status::success(),
            out_trade_no: trade.key.out_trade_no.parse().ok(),
            qr_code: Some(qr_code.to_owned()),
        })),
        (ledger::TradeState::Failed, _) => {
            Err(answers::refusal(trade.failure_code.as_deref(), trade.failure_message.as_deref()))
        }
        (state, _) if state.is_paid() => Err(business("ACQ.TRADE_HAS_SUCCESS", "trade has been paid")),
        (ledger::TradeState::Cancelled, _) => Err(business("ACQ.TRADE_HAS_CLOSE", "trade has been closed")),
        _ => Err(system_error()),
    }
}

async fn query(ctx: &Ctx, req: &GatewayRequest) -> Result<String, Status> {
    let biz = biz(req)?;
    let trade = trade(ctx, &out_trade_no(&biz)?).await?;
    Ok(answers::query(&trade))
}

async fn cancel(ctx: &Ctx, req: &GatewayRequest) -> Result<String, Status> {
    let biz = biz(req)?;
    let out_trade_no = out_trade_no(&biz)?;
    match make_cancel(ctx, out_trade_no.clone()).await {
        Ok(Made { done: trade, .. }) => Ok(answers::cancel(&trade)),
        // A trade that never reached us is not paid: nothing to reverse (as Alipay answers).
        Err(ApiError::NotFound) => Ok(member(&alipay::openapi::trade::TradeCancelAnswer {
            status: Status::success(),
            out_trade_no: Some(out_trade_no),
            retry_flag: Some(alipay::openapi::trade::YesNo::N),
            ..Default::default()
        })),
        Err(error) => Err(status_of(error)),
    }
}

/// Closes an unpaid trade (a paid one is refused, as Alipay refuses it).
async fn close(ctx: &Ctx, req: &GatewayRequest) -> Result<String, Status> {
    let biz = biz(req)?;
    let out_trade_no = out_trade_no(&biz)?;
    let current = trade(ctx, &out_trade_no).await?;
    if current.state.is_paid() {
        return Err(business("ACQ.TRADE_STATUS_ERROR", "only unpaid trades can be closed"));
    }
    let Made { done: trade, .. } = make_cancel(ctx, out_trade_no).await.map_err(status_of)?;
    match trade.state {
        ledger::TradeState::Cancelled | ledger::TradeState::Failed => Ok(member(&TradeCloseAnswer {
            status: Status::success(),
            trade_no: trade.trade_no.as_deref().and_then(|t| t.parse().ok()),
            out_trade_no: trade.key.out_trade_no.parse().ok(),
        })),
        state if state.is_paid() => Err(business("ACQ.TRADE_STATUS_ERROR", "the trade was paid")),
        _ => Err(system_error()),
    }
}

async fn refund(ctx: &Ctx, req: &GatewayRequest) -> Result<String, Status> {
    let biz = biz(req)?;
    let out_trade_no = out_trade_no(&biz)?;
    // Without out_request_no, Alipay takes the trade's number: one refund per trade.
    let out_request_no: OutRequestNo = match optional(&biz, "out_request_no")? {
        Some(no) => no,
        None => {
            out_trade_no.as_str().parse().map_err(|_| business("ACQ.INVALID_PARAMETER", "invalid out_request_no"))?
        }
    };
    let current = trade(ctx, &out_trade_no).await?;
    let amount = amount(&biz, "refund_amount", current.amount.currency())?;
    let reason = text(&biz, "refund_reason").map(|r| r.chars().take(256).collect());
    let made = make_refund(ctx, out_trade_no, out_request_no, amount, reason).await.map_err(status_of)?;
    answers::refund(&made.done.refund, &made.done.trade, made.timing.is_some())
}

async fn refund_query(ctx: &Ctx, req: &GatewayRequest) -> Result<String, Status> {
    let biz = biz(req)?;
    let out_trade_no = out_trade_no(&biz)?;
    let out_request_no: OutRequestNo = required(&biz, "out_request_no")?;
    let trade = trade(ctx, &out_trade_no).await?;
    let refund =
        ctx.state.store.get_refund(&trade.key, out_request_no.as_str()).await.map_err(|e| status_of(e.into()))?;
    Ok(answers::refund_query(&trade, out_request_no.as_str(), refund.as_ref()))
}

/// Exchanges the buyer's auth code at Alipay for the tenant's real app (nothing is recorded).
async fn oauth_token(ctx: &Ctx, req: &GatewayRequest) -> Result<String, Status> {
    let code = match req.value("grant_type") {
        Some("authorization_code") => req.value("code").ok_or_else(|| missing("code"))?,
        Some(_) => return Err(invalid("isv.invalid-parameter", "grant_type must be authorization_code")),
        None => return Err(missing("grant-type")),
    };
    if code.len() > 128 || !code.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(invalid("isv.code-invalid", "invalid auth code"));
    }
    let tenant = &ctx.tenant;
    if !tenant.is_ready() {
        return Err(status_of(ApiError::TenantNotReady));
    }
    let answer = ctx.state.upstream.call_for(tenant, None, &Request::OauthToken { code }).await.map_err(|error| {
        tracing::warn!(%error, "oauth token not sent");
        system_error()
    })?;
    match answer.outcome {
        Outcome::Success => Ok(member(&OauthTokenAnswer {
            user_id: answer.facts.user_id.as_deref().and_then(|u| u.parse().ok()),
            access_token: answer.facts.access_token,
            expires_in: answer.facts.expires_in,
            ..OauthTokenAnswer::default()
        })),
        Outcome::Failed(failure) => Err(invalid(
            failure.sub_code.as_deref().unwrap_or("isv.code-invalid"),
            failure.message.as_deref().unwrap_or("invalid auth code"),
        )),
        Outcome::Unknown(_) => Err(system_error()),
    }
}
