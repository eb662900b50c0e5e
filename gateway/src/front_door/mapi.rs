//! The Global MAPI front door (`/alipay/mapi/gateway.do`): Alipay's MAPI checks (partner, sign
//! type, signature, answered `is_success=F` with `ILLEGAL_*`, unsigned, as Alipay's are), the
//! in-store services through the partner API's path, and Alipay's signed XML answers, built from
//! the ledger's rows. A payment not known yet is `UNKNOW` `ORDER_SUCCESS_PAY_INPROCESS`; the POS
//! queries, then cancels, as Alipay's Global documentation prescribes.

use std::sync::Arc;

use alipay::mapi::services::{
    AcquireCancelAnswer, AcquirePrecreateAnswer, OverseasQueryAnswer, ResultCode, SpotPayAnswer, SpotRefundAnswer,
};
use alipay::mapi::{write_answer, write_rejection};
use alipay::openapi::trade::YesNo;
use alipay::server::GatewayRequest;
use alipay::server::mapi::{self as server, Refusal};
use alipay::time_text::beijing_compact;
use alipay::{Amount, AuthCode, Charset, Currency, Decimal, OutRequestNo, OutTradeNo, SignType, Signer, Subject};
use bytes::Bytes;
use http::{Response, StatusCode, header};
use http_body_util::Full;
use ledger::{RefundState, Trade, TradeState};
use serde::Serialize;
use telemetry::server::BudgetHold;
use tenants::model::Dialect;
use time::OffsetDateTime;

use super::{admit, answers, budget_of};
use crate::api::calls::{NUMBER_TAKEN, OrderFields, Ordered};
use crate::api::payments::{make_cancel, make_order};
use crate::api::refunds::{REFUND_NUMBER_TAKEN, make_refund};
use crate::api::{Ctx, Made};
use crate::problem::ApiError;
use crate::state::AppState;

const PAYING: &str = "ORDER_SUCCESS_PAY_INPROCESS";

/// Answers one MAPI front-door request.
pub async fn answer(
    state: &Arc<AppState>,
    decoded: Result<GatewayRequest, alipay::server::RequestError>,
    unverified: BudgetHold,
) -> Response<Full<Bytes>> {
    let req = match decoded {
        Ok(req) => req,
        Err(alipay::server::RequestError::BadCharset | alipay::server::RequestError::BadEncoding) => {
            return reject("ILLEGAL_CHARSET", Charset::Utf8);
        }
        Err(_) => return reject("ILLEGAL_ARGUMENT", Charset::Utf8),
    };
    let Some(service) = req.value("service").map(str::to_owned) else {
        return reject("ILLEGAL_SERVICE", req.charset);
    };
    let snapshot = state.snapshots.current();
    let tenant = req.value("partner").and_then(|p| snapshot.by_front_door(Dialect::Mapi, p)).cloned();
    drop(snapshot);
    let Some(tenant) = tenant.filter(|t| t.front_door.is_some()) else {
        return refused("ILLEGAL_PARTNER", req.charset);
    };
    let Some(door) = tenant.front_door.as_ref() else { return refused("ILLEGAL_PARTNER", req.charset) };
    let now = OffsetDateTime::now_utc();
    let Some(Ok(sign_type)) = req.value("sign_type").map(str::parse::<SignType>) else {
        return refused("ILLEGAL_SIGN_TYPE", req.charset);
    };
    let verified = door.verify(now, |v| alipay::mapi::verify_request(&req.params, req.charset, v).is_ok());
    let Some(signer) = verified.filter(|_| sign_type == door.sign_type) else {
        return refused("ILLEGAL_SIGN", req.charset);
    };
    if let Err(status) = admit(state, &tenant, &req, budget_of(Some(&service))).await {
        let error = match status.code.as_str() {
            "40006" => "ILLEGAL_PARTNER",
            "40005" => "SYSTEM_ERROR",
            _ => "ILLEGAL_ARGUMENT",
        };
        return refused(error, req.charset);
    }
    drop(unverified);
    let ctx = Ctx { state: state.clone(), tenant: tenant.clone(), query: None };
    let call = Call { ctx: &ctx, req: &req, signer };
    let result = match service.as_str() {
        "alipay.acquire.overseas.spot.pay" => call.spot_pay().await,
        "alipay.acquire.overseas.query" => call.query().await,
        "alipay.acquire.cancel" => call.cancel().await,
        "alipay.acquire.overseas.spot.refund" => call.refund().await,
        "alipay.acquire.precreate" => call.precreate().await,
        _ => Err("ILLEGAL_SERVICE"),
    };
    match result {
        Ok(body) => respond(body, req.charset),
        Err(error) => refused(error, req.charset),
    }
}

fn refused(error: Refusal, charset: Charset) -> Response<Full<Bytes>> {
    metrics::counter!("gateway_front_door_refused_total", "reason" => mapi_label(error)).increment(1);
    reject(error, charset)
}

fn mapi_label(error: Refusal) -> &'static str {
    match error {
        "ILLEGAL_SIGN" => "signature",
        "SYSTEM_ERROR" => "rate_limited",
        "ILLEGAL_PARTNER" => "partner",
        _ => "invalid",
    }
}

fn reject(error: &str, charset: Charset) -> Response<Full<Bytes>> {
    respond(write_rejection(error, charset), charset)
}

fn respond(body: Vec<u8>, charset: Charset) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from(body)));
    *response.status_mut() = StatusCode::OK;
    let content_type = match charset {
        Charset::Utf8 => "text/xml;charset=UTF-8",
        Charset::Gbk => "text/xml;charset=GBK",
    };
    response.headers_mut().insert(header::CONTENT_TYPE, header::HeaderValue::from_static(content_type));
    response
}

/// One verified call of one tenant.
struct Call<'a> {
    ctx: &'a Ctx,
    req: &'a GatewayRequest,
    /// Signs the answer (for MD5, the key that verified the request).
    signer: &'a Signer,
}

fn dec(amount: Amount) -> Option<Decimal> {
    Some(Decimal::from(amount))
}

impl Call<'_> {
    /// The signed XML answer (Alipay echoes the request's parameters in `<request>`).
    fn answer(&self, answer: &impl Serialize) -> Result<Vec<u8>, Refusal> {
        let echo: Vec<(&str, &str)> = self.req.params.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        write_answer(answer, &echo, self.signer, self.req.charset).map_err(|_| "SYSTEM_ERROR")
    }

    fn required<T: std::str::FromStr>(&self, field: &str) -> Result<T, Refusal> {
        server::required(self.req, field)
    }

    fn currency(&self, field: &str) -> Result<Currency, Refusal> {
        server::currency(self.req, field)
    }

    async fn trade(&self, out_trade_no: &OutTradeNo) -> Result<Option<Trade>, Refusal> {
        self.ctx.state.store.get(&self.ctx.key(out_trade_no.as_str())).await.map_err(|_| "SYSTEM_ERROR")
    }

    async fn spot_pay(&self) -> Result<Vec<u8>, Refusal> {
        let seller: String = self.required("alipay_seller_id")?;
        let out_trade_no: OutTradeNo = self.required("partner_trans_id")?;
        let subject: Subject = self.required("trans_name")?;
        let currency = self.currency("currency")?;
        let failed = |error: &str| spot_answer(ResultCode::Failed, Some(error), None);
        if Some(seller.as_str()) != self.ctx.tenant.front_door.as_ref().map(|d| d.id.as_str()) {
            return self.answer(&failed("SELLER_NOT_EXIST"));
        }
        let amount = match server::amount(self.req, "trans_amount", currency)? {
            Ok(amount) => amount,
            Err(code) => return self.answer(&failed(code)),
        };
        let Some(auth_code) = self.req.value("buyer_identity_code").and_then(|c| c.parse::<AuthCode>().ok()) else {
            return self.answer(&failed("SOUNDWAVE_PARSER_FAIL"));
        };
        let fields =
            OrderFields { out_trade_no, amount, subject, store_id: None, terminal_id: None, operator_id: None };
        let notify_url = self.req.value("notify_url").map(str::to_owned);
        let trade = match make_order(self.ctx, fields, Ordered::Pay { auth_code }, notify_url, NUMBER_TAKEN).await {
            Ok(Made { done, .. }) => done,
            Err(ApiError::Conflict(_)) => return self.answer(&failed("CONTEXT_INCONSISTENT")),
            Err(error) => return Err(system_error(error)),
        };
        let answer = match trade.state {
            TradeState::Success | TradeState::PartiallyRefunded | TradeState::Refunded => {
                spot_answer(ResultCode::Success, None, Some(&trade))
            }
            TradeState::Failed => spot_answer(ResultCode::Failed, trade.failure_code.as_deref(), Some(&trade)),
            TradeState::Cancelled => failed("TRADE_HAS_CLOSE"),
            TradeState::Paying | TradeState::Unknown | TradeState::Waiting => {
                spot_answer(ResultCode::Unknow, Some(PAYING), Some(&trade))
            }
        };
        self.answer(&answer)
    }

    async fn query(&self) -> Result<Vec<u8>, Refusal> {
        let out_trade_no: OutTradeNo = self.required("partner_trans_id")?;
        let Some(trade) = self.trade(&out_trade_no).await? else {
            return self.answer(&OverseasQueryAnswer::not_exist());
        };
        let currency = trade.amount.currency();
        self.answer(&OverseasQueryAnswer {
            alipay_trans_status: Some(answers::trade_status(trade.state)),
            partner_trans_id: trade.key.out_trade_no.parse().ok(),
            out_trade_no: trade.key.out_trade_no.parse().ok(),
            alipay_trans_id: trade.trade_no.as_deref().and_then(|t| t.parse().ok()),
            alipay_buyer_user_id: trade.buyer_user_id.as_deref().and_then(|b| b.parse().ok()),
            alipay_pay_time: trade.paid_at.map(beijing_compact),
            currency: Some(currency),
            trans_amount: dec(trade.amount),
            payment_inst: trade.paid_at.map(|_| "ALIPAYCN".to_owned()),
            ..OverseasQueryAnswer::empty(ResultCode::Success)
        })
    }

    async fn cancel(&self) -> Result<Vec<u8>, Refusal> {
        let out_trade_no: OutTradeNo = self.required("out_trade_no")?;
        self.req.value("timestamp").ok_or("ILLEGAL_ARGUMENT")?;
        let answer = match make_cancel(self.ctx, out_trade_no.clone()).await {
            Ok(Made { done: trade, .. }) => cancel_answer(&trade),
            Err(ApiError::NotFound) => AcquireCancelAnswer {
                result_code: ResultCode::Success,
                trade_no: None,
                out_trade_no: Some(out_trade_no),
                retry_flag: Some(YesNo::N),
                action: None,
                detail_error_code: None,
                detail_error_des: None,
            },
            Err(ApiError::Refused { code, message }) => AcquireCancelAnswer {
                result_code: ResultCode::Fail,
                trade_no: None,
                out_trade_no: Some(out_trade_no),
                retry_flag: Some(YesNo::N),
                action: None,
                detail_error_code: Some(code),
                detail_error_des: Some(message),
            },
            Err(error) => return Err(system_error(error)),
        };
        self.answer(&answer)
    }

    async fn refund(&self) -> Result<Vec<u8>, Refusal> {
        let out_trade_no: OutTradeNo = self.required("partner_trans_id")?;
        let refund_id: OutRequestNo = self.required("partner_refund_id")?;
        let amount_text = self.req.value("refund_amount").ok_or("ILLEGAL_ARGUMENT")?;
        let currency = self.currency("currency")?;
        let failed = |error: &str| SpotRefundAnswer::failed(Some(out_trade_no.clone()), &refund_id, error);
        let Some(trade) = self.trade(&out_trade_no).await? else { return self.answer(&failed("TRADE_NOT_EXIST")) };
        if trade.amount.currency() != currency {
            return self.answer(&failed("CURRENCY_NOT_SAME"));
        }
        let amount = Amount::parse_positive(amount_text, currency).map_err(|_| "ILLEGAL_ARGUMENT")?;
        let reason = self.req.value("refund_reason").map(|r| r.chars().take(256).collect());
        let made = make_refund(self.ctx, out_trade_no.clone(), refund_id.clone(), amount, reason).await;
        let answer = match made {
            Ok(Made { done, .. }) => match done.refund.state {
                RefundState::Success => SpotRefundAnswer {
                    result_code: ResultCode::Success,
                    error: None,
                    alipay_trans_id: done.trade.trade_no.as_deref().and_then(|t| t.parse().ok()),
                    refund_amount: dec(done.refund.amount),
                    currency: Some(currency),
                    ..failed("")
                },
                RefundState::Failed => failed(done.refund.failure_code.as_deref().unwrap_or("SYSTEM_ERROR")),
                // Not known yet: SYSTEM_ERROR, which a POS repeats (same partner_refund_id).
                RefundState::Pending | RefundState::Unknown => failed("SYSTEM_ERROR"),
            },
            Err(ApiError::NotFound) => failed("TRADE_NOT_EXIST"),
            Err(ApiError::NotRefundable(_)) => failed("TRADE_STATUS_ERROR"),
            Err(ApiError::RefundExceeds { .. }) => failed("RETURN_AMOUNT_EXCEED"),
            Err(ApiError::Conflict(text)) if text == REFUND_NUMBER_TAKEN => failed("REPEATED_REFUNDMENT_REQUEST"),
            Err(ApiError::Refused { code, .. }) => failed(&code),
            Err(error) => return Err(system_error(error)),
        };
        self.answer(&answer)
    }

    async fn precreate(&self) -> Result<Vec<u8>, Refusal> {
        let out_trade_no: OutTradeNo = self.required("out_trade_no")?;
        let subject: Subject = self.required("subject")?;
        let field = if self.req.value("trans_currency").is_some() { "trans_currency" } else { "currency" };
        let currency = self.currency(field)?;
        let fail = |code: &str| AcquirePrecreateAnswer::failed(&out_trade_no, code);
        let amount = match server::amount(self.req, "total_fee", currency)? {
            Ok(amount) => amount,
            Err(code) => return self.answer(&fail(code)),
        };
        let fields = OrderFields {
            out_trade_no: out_trade_no.clone(),
            amount,
            subject,
            store_id: None,
            terminal_id: None,
            operator_id: None,
        };
        let expires_in = self.ctx.state.config.qr_expiry;
        let notify_url = self.req.value("notify_url").map(str::to_owned);
        let trade =
            match make_order(self.ctx, fields, Ordered::Precreate { expires_in }, notify_url, NUMBER_TAKEN).await {
                Ok(Made { done, .. }) => done,
                Err(ApiError::Conflict(_)) => return self.answer(&fail("CONTEXT_INCONSISTENT")),
                Err(error) => return Err(system_error(error)),
            };
        let answer = match (trade.state, trade.qr_code.as_deref()) {
            (TradeState::Waiting, Some(qr_code)) => AcquirePrecreateAnswer {
                result_code: ResultCode::Success,
                trade_no: trade.trade_no.as_deref().and_then(|t| t.parse().ok()),
                qr_code: Some(qr_code.to_owned()),
                voucher_type: Some("qrcode".into()),
                detail_error_code: None,
                ..fail("")
            },
            (TradeState::Failed, _) => fail(trade.failure_code.as_deref().unwrap_or("SYSTEM_ERROR")),
            (state, _) if state.is_paid() => fail("TRADE_HAS_SUCCESS"),
            (TradeState::Cancelled, _) => fail("TRADE_HAS_CLOSE"),
            _ => fail("SYSTEM_ERROR"),
        };
        self.answer(&answer)
    }
}

/// What a MAPI POS hears where our own path failed: `SYSTEM_ERROR` (it queries, or repeats).
fn system_error(error: ApiError) -> Refusal {
    tracing::warn!(%error, "front door (MAPI) call not completed; the POS hears SYSTEM_ERROR");
    "SYSTEM_ERROR"
}

fn spot_answer(result_code: ResultCode, error: Option<&str>, trade: Option<&Trade>) -> SpotPayAnswer {
    SpotPayAnswer {
        result_code,
        error: error.map(str::to_owned),
        partner_trans_id: trade.and_then(|t| t.key.out_trade_no.parse().ok()),
        alipay_trans_id: trade.and_then(|t| t.trade_no.as_deref()).and_then(|t| t.parse().ok()),
        alipay_buyer_login_id: None,
        alipay_buyer_user_id: trade.and_then(|t| t.buyer_user_id.as_deref()).and_then(|b| b.parse().ok()),
        alipay_pay_time: trade.and_then(|t| t.paid_at).map(beijing_compact),
        currency: trade.map(|t| t.amount.currency()),
        trans_amount: trade.map(|t| Decimal::from(t.amount)),
        trans_amount_cny: None,
        exchange_rate: None,
        payment_inst: trade.and_then(|t| t.paid_at).map(|_| "ALIPAYCN".to_owned()),
    }
}

/// A cancel as it left the trade: done (what it did), or not confirmed yet (`retry_flag=Y`).
fn cancel_answer(trade: &Trade) -> AcquireCancelAnswer {
    let done = matches!(trade.state, TradeState::Cancelled | TradeState::Failed);
    let action = match trade.cancel_action {
        Some(ledger::CancelAction::Refund) => Some(alipay::openapi::trade::CancelAction::Refund),
        Some(ledger::CancelAction::Close) => Some(alipay::openapi::trade::CancelAction::Close),
        None => done.then_some(alipay::openapi::trade::CancelAction::Close),
    };
    AcquireCancelAnswer {
        result_code: if done { ResultCode::Success } else { ResultCode::Fail },
        trade_no: trade.trade_no.as_deref().and_then(|t| t.parse().ok()),
        out_trade_no: trade.key.out_trade_no.parse().ok(),
        retry_flag: Some(if done { YesNo::N } else { YesNo::Y }),
        action: if done { action } else { None },
        detail_error_code: (!done).then(|| "SYSTEM_ERROR".to_owned()),
        detail_error_des: None,
    }
}
