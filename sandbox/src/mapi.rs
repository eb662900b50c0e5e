//! The Global MAPI dialect: checks partner, sign type and signature as Alipay's MAPI gateway does
//! (`is_success=F` with `ILLEGAL_*` when it refuses), runs the service against the ledger and
//! writes the signed XML answer.
//!
//! MAPI has no documented call-limit or buyer-paying codes; the sandbox answers scenario 67 (and
//! 63) with `is_success=F` `SYSTEM_ERROR`, and a buyer still paying with `UNKNOW`
//! `ORDER_SUCCESS_PAY_INPROCESS`.

use std::sync::Arc;

use alipay::charset::Charset;
use alipay::mapi::services::{
    AcquireCancelAnswer, AcquirePrecreateAnswer, OverseasQueryAnswer, ResultCode, SpotPayAnswer, SpotRefundAnswer,
};
use alipay::mapi::{write_answer, write_rejection};
use alipay::openapi::trade::YesNo;
use alipay::time_text::beijing_compact;
use alipay::{
    Amount, AuthCode, Currency, Decimal, MerchantRef, MoneyError, OutRequestNo, OutTradeNo, Partner, SignType, Subject,
};
use serde::Serialize;

use crate::app::{Answer, App};
use crate::ledger::{CancelOutcome, Lookup, NewOrder, NewPay, PayOutcome, PrecreateOutcome, RefundOutcome};
use crate::merchants::{Dialect, Merchant, corrupt_signature, valid_notify_url};
use crate::scenario::{SLOW_ANSWER, Scenario};
use crate::trade::{Origin, Place, Status as TradeState, Trade};
use alipay::server::GatewayRequest;
use alipay::server::mapi::{self as server, Refusal};

const PAYING: &str = "ORDER_SUCCESS_PAY_INPROCESS";

/// `is_success=F` with `error`.
pub fn reject(error: &str, charset: Charset) -> Answer {
    Answer::mapi(write_rejection(error, charset), charset)
}

struct Ctx<'a> {
    app: &'a App,
    req: &'a GatewayRequest,
    merchant: Arc<Merchant>,
}

impl Ctx<'_> {
    fn answer(&self, answer: &impl Serialize) -> Answer {
        let echo: Vec<(&str, &str)> = self.req.params.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        let signer = self.app.platform.signer_for(&self.merchant);
        match write_answer(answer, &echo, signer, self.req.charset) {
            Ok(body) => Answer::mapi(body, self.req.charset),
            Err(_) => reject("SYSTEM_ERROR", self.req.charset),
        }
    }

    fn reject(&self, error: &str) -> Answer {
        reject(error, self.req.charset)
    }

    /// A well-formed answer whose signature does not verify (scenario 66).
    fn wrongly_signed(&self, answer: &impl Serialize) -> Answer {
        self.app.stats.wrong_signatures.inc();
        let mut good = self.answer(answer);
        let body = String::from_utf8_lossy(&good.body).into_owned();
        if let (Some(start), Some(end)) = (body.find("<sign>"), body.find("</sign>")) {
            let sign = &body[start + 6..end];
            let damaged = format!("{}<sign>{}{}", &body[..start], corrupt_signature(sign), &body[end..]);
            good.body = self.req.charset.encode(&damaged).unwrap_or_default().into_owned().into();
        }
        good
    }
}

/// Handles one MAPI request.
pub fn handle(app: &App, req: &GatewayRequest) -> Answer {
    let Some(service) = req.value("service") else {
        return reject("ILLEGAL_SERVICE", req.charset);
    };
    let merchant = match req.value("partner").and_then(|p| app.merchants.get(p)) {
        Some(m) if m.dialect == Dialect::Mapi => m,
        _ => return reject("ILLEGAL_PARTNER", req.charset),
    };
    let Some(Ok(sign_type)) = req.value("sign_type").map(str::parse::<SignType>) else {
        app.stats.rejected.inc();
        return reject("ILLEGAL_SIGN_TYPE", req.charset);
    };
    let verified = sign_type == merchant.sign_type
        && alipay::mapi::verify_request(&req.params, req.charset, &merchant.verifier).is_ok();
    if !verified {
        app.stats.rejected.inc();
        return reject("ILLEGAL_SIGN", req.charset);
    }
    if req.value("notify_url").is_some_and(|url| !valid_notify_url(url)) {
        app.stats.rejected.inc();
        return reject("ILLEGAL_ARGUMENT", req.charset);
    }
    let ctx = Ctx { app, req, merchant };
    let answer = match service {
        "alipay.acquire.overseas.spot.pay" => spot_pay(&ctx),
        "alipay.acquire.overseas.query" => query(&ctx),
        "alipay.acquire.cancel" => cancel(&ctx),
        "alipay.acquire.overseas.spot.refund" => refund(&ctx),
        "alipay.acquire.precreate" => precreate(&ctx),
        _ => Err("ILLEGAL_SERVICE"),
    };
    answer.unwrap_or_else(|error| {
        app.stats.rejected.inc();
        ctx.reject(error)
    })
}

fn required<T: std::str::FromStr>(ctx: &Ctx<'_>, field: &str) -> Result<T, Refusal> {
    server::required(ctx.req, field)
}

fn currency(ctx: &Ctx<'_>, field: &str) -> Result<Currency, Refusal> {
    server::currency(ctx.req, field)
}

fn spot_answer(result_code: ResultCode, error: Option<&str>, trade: Option<&Trade>) -> SpotPayAnswer {
    SpotPayAnswer {
        result_code,
        error: error.map(str::to_owned),
        partner_trans_id: trade.and_then(|t| t.out_trade_no.parse().ok()),
        alipay_trans_id: trade.and_then(|t| t.trade_no.parse().ok()),
        alipay_buyer_login_id: trade.and_then(|t| t.buyer.as_ref()).map(|b| b.logon_id.clone()),
        alipay_buyer_user_id: trade.and_then(|t| t.buyer.as_ref()).and_then(|b| b.user_id.parse().ok()),
        alipay_pay_time: trade.and_then(|t| t.paid_at).map(beijing_compact),
        currency: trade.map(|t| t.total.currency()),
        trans_amount: trade.map(|t| Decimal::from(t.total)),
        trans_amount_cny: None,
        exchange_rate: None,
        payment_inst: trade.filter(|t| t.was_paid()).map(|_| "ALIPAYCN".to_owned()),
    }
}

/// The `store_id` of a spot pay's `extend_info` (a JSON object), if it holds a well-formed one.
fn extend_info_store(extend_info: Option<&str>) -> Option<MerchantRef> {
    let info: serde_json::Value = serde_json::from_str(extend_info?).ok()?;
    info.get("store_id")?.as_str()?.parse().ok()
}

fn spot_pay(ctx: &Ctx<'_>) -> Result<Answer, Refusal> {
    let seller: Partner = required(ctx, "alipay_seller_id")?;
    let out_trade_no: OutTradeNo = required(ctx, "partner_trans_id")?;
    let subject: Subject = required(ctx, "trans_name")?;
    let currency = currency(ctx, "currency")?;
    let amount_text = ctx.req.value("trans_amount").ok_or("ILLEGAL_ARGUMENT")?;
    let create_time = ctx.req.value("trans_create_time").ok_or("ILLEGAL_ARGUMENT")?;
    if create_time.len() != 14 || !create_time.bytes().all(|b| b.is_ascii_digit()) {
        return Err("ILLEGAL_ARGUMENT");
    }
    ctx.req.value("biz_product").ok_or("ILLEGAL_ARGUMENT")?;
    ctx.req.value("identity_code_type").ok_or("ILLEGAL_ARGUMENT")?;
    if seller.as_str() != ctx.merchant.id {
        return Ok(ctx.answer(&spot_answer(ResultCode::Failed, Some("SELLER_NOT_EXIST"), None)));
    }
    let total = match Amount::parse_positive(amount_text, currency) {
        Ok(total) => total,
        Err(MoneyError::NotPositive | MoneyError::OutOfRange) => {
            return Ok(ctx.answer(&spot_answer(ResultCode::Failed, Some("TOTAL_FEE_EXCEED"), None)));
        }
        Err(_) => return Err("ILLEGAL_ARGUMENT"),
    };
    let Some(code) = ctx.req.value("buyer_identity_code").and_then(|c| c.parse::<AuthCode>().ok()) else {
        return Ok(ctx.answer(&spot_answer(ResultCode::Failed, Some("SOUNDWAVE_PARSER_FAIL"), None)));
    };
    let place = Place { store_id: extend_info_store(ctx.req.value("extend_info")), ..Place::default() };
    let outcome = ctx.app.ledger.pay_in_store(
        NewPay {
            merchant: ctx.merchant.clone(),
            out_trade_no: out_trade_no.to_string(),
            buyer_code: code.to_string(),
            subject: subject.to_string(),
            total,
            notify_url: ctx.req.value("notify_url").map(str::to_owned),
            charset: ctx.req.charset,
        },
        place,
    );
    let failed = |error: &str| ctx.answer(&spot_answer(ResultCode::Failed, Some(error), None));
    Ok(match outcome {
        PayOutcome::Created(trade) => {
            let paid = spot_answer(ResultCode::Success, None, Some(&trade));
            match trade.scenario {
                Scenario::SystemErrorPaid => {
                    ctx.answer(&spot_answer(ResultCode::Unknow, Some("SYSTEM_ERROR"), Some(&trade)))
                }
                Scenario::SlowAnswer => ctx.answer(&paid).delayed(ctx.app.clock.scaled(SLOW_ANSWER)),
                Scenario::BadGateway => Answer::bad_gateway(),
                Scenario::WrongSignature => ctx.wrongly_signed(&paid),
                _ if trade.status == TradeState::Paid => ctx.answer(&paid),
                _ => ctx.answer(&spot_answer(ResultCode::Unknow, Some(PAYING), Some(&trade))),
            }
        }
        PayOutcome::NotCreated(Scenario::BalanceNotEnough) => failed("BUYER_BALANCE_NOT_ENOUGH"),
        PayOutcome::NotCreated(Scenario::AuthCodeInvalid) => failed("SOUNDWAVE_PARSER_FAIL"),
        PayOutcome::NotCreated(_) => ctx.reject("SYSTEM_ERROR"),
        PayOutcome::Repeat(trade) => match trade.status {
            TradeState::Waiting { .. } => ctx.answer(&spot_answer(ResultCode::Unknow, Some(PAYING), Some(&trade))),
            TradeState::Paid => ctx.answer(&spot_answer(ResultCode::Failed, Some("TRADE_HAS_SUCCESS"), Some(&trade))),
            TradeState::Closed => failed("TRADE_HAS_CLOSE"),
        },
        PayOutcome::BuyerNotMatch => failed("TRADE_BUYER_NOT_MATCH"),
        PayOutcome::ContextInconsistent => failed("CONTEXT_INCONSISTENT"),
    })
}

fn lookup(ctx: &Ctx<'_>, out_field: &str, no_field: &str) -> Result<Lookup, Refusal> {
    let lookup = Lookup {
        out_trade_no: ctx.req.value(out_field).map(str::to_owned),
        trade_no: ctx.req.value(no_field).map(str::to_owned),
    };
    if lookup.out_trade_no.is_none() && lookup.trade_no.is_none() {
        return Err("ILLEGAL_ARGUMENT");
    }
    Ok(lookup)
}

fn query(ctx: &Ctx<'_>) -> Result<Answer, Refusal> {
    let lookup = lookup(ctx, "partner_trans_id", "alipay_trans_id")?;
    let Some(trade) = ctx.app.ledger.query(&ctx.merchant.id, &lookup) else {
        return Ok(ctx.answer(&OverseasQueryAnswer::not_exist()));
    };
    Ok(ctx.answer(&OverseasQueryAnswer {
        alipay_trans_status: Some(trade.trade_status()),
        partner_trans_id: trade.out_trade_no.parse().ok(),
        out_trade_no: trade.out_trade_no.parse().ok(),
        alipay_trans_id: trade.trade_no.parse().ok(),
        alipay_buyer_login_id: trade.buyer.as_ref().map(|b| b.logon_id.clone()),
        alipay_buyer_user_id: trade.buyer.as_ref().and_then(|b| b.user_id.parse().ok()),
        alipay_pay_time: trade.paid_at.map(beijing_compact),
        currency: Some(trade.total.currency()),
        trans_amount: Some(Decimal::from(trade.total)),
        trans_amount_cny: None,
        exchange_rate: None,
        payment_inst: trade.was_paid().then(|| "ALIPAYCN".to_owned()),
        ..OverseasQueryAnswer::empty(ResultCode::Success)
    }))
}

fn cancel(ctx: &Ctx<'_>) -> Result<Answer, Refusal> {
    let lookup = lookup(ctx, "out_trade_no", "trade_no")?;
    ctx.req.value("timestamp").ok_or("ILLEGAL_ARGUMENT")?;
    let answer = match ctx.app.ledger.cancel(&ctx.merchant.id, &lookup) {
        CancelOutcome::Done(trade) => AcquireCancelAnswer {
            result_code: ResultCode::Success,
            trade_no: trade.trade_no.parse().ok(),
            out_trade_no: trade.out_trade_no.parse().ok(),
            retry_flag: Some(YesNo::N),
            action: trade.cancel_action,
            detail_error_code: None,
            detail_error_des: None,
        },
        CancelOutcome::NotFound => AcquireCancelAnswer {
            result_code: ResultCode::Success,
            trade_no: None,
            out_trade_no: lookup.out_trade_no.and_then(|o| o.parse().ok()),
            retry_flag: Some(YesNo::N),
            action: None,
            detail_error_code: None,
            detail_error_des: None,
        },
        CancelOutcome::RetryLater(trade) => AcquireCancelAnswer {
            result_code: ResultCode::Fail,
            trade_no: trade.trade_no.parse().ok(),
            out_trade_no: trade.out_trade_no.parse().ok(),
            retry_flag: Some(YesNo::Y),
            action: None,
            detail_error_code: Some("SYSTEM_ERROR".into()),
            detail_error_des: Some("system busy, cancel again".into()),
        },
    };
    Ok(ctx.answer(&answer))
}

fn refund(ctx: &Ctx<'_>) -> Result<Answer, Refusal> {
    let lookup = lookup(ctx, "partner_trans_id", "alipay_trans_id")?;
    let refund_id: OutRequestNo = required(ctx, "partner_refund_id")?;
    let amount = ctx.req.value("refund_amount").ok_or("ILLEGAL_ARGUMENT")?;
    let currency = currency(ctx, "currency")?;
    let failed = |error: &str| {
        SpotRefundAnswer::failed(lookup.out_trade_no.as_ref().and_then(|o| o.parse().ok()), &refund_id, error)
    };
    if let Some(trade) = ctx.app.ledger.query(&ctx.merchant.id, &lookup)
        && trade.total.currency() != currency
    {
        return Ok(ctx.answer(&failed("CURRENCY_NOT_SAME")));
    }
    // Partner + partner_refund_id names one refund (G-REFUND): used before, on whichever trade,
    // the request is a repeat of that refund.
    let outcome = match ctx.app.ledger.refund_by_number(&ctx.merchant.id, refund_id.as_str()) {
        Some((trade, refund))
            if lookup.out_trade_no.as_ref() != Some(&trade.out_trade_no)
                && lookup.trade_no.as_ref() != Some(&trade.trade_no) =>
        {
            match Amount::parse_positive(amount, trade.total.currency()) {
                Ok(asked) if asked == refund.amount => RefundOutcome::Done { trade, refund, fund_change: false },
                _ => RefundOutcome::Discordant(trade),
            }
        }
        _ => ctx.app.ledger.refund(&ctx.merchant.id, &lookup, Some(refund_id.as_str()), amount),
    };
    let answer = match outcome {
        RefundOutcome::Done { trade, refund, .. } => SpotRefundAnswer {
            result_code: ResultCode::Success,
            error: None,
            partner_trans_id: trade.out_trade_no.parse().ok(),
            alipay_trans_id: trade.trade_no.parse().ok(),
            partner_refund_id: Some(refund_id.clone()),
            refund_amount: Some(Decimal::from(refund.amount)),
            currency: Some(refund.amount.currency()),
            exchange_rate: None,
            refund_amount_cny: None,
        },
        RefundOutcome::NotFound => failed("TRADE_NOT_EXIST"),
        RefundOutcome::NotPaid(_) => failed("TRADE_STATUS_ERROR"),
        RefundOutcome::BadAmount => return Err("ILLEGAL_ARGUMENT"),
        RefundOutcome::Exceeds(_) => failed("RETURN_AMOUNT_EXCEED"),
        RefundOutcome::Discordant(_) => failed("REPEATED_REFUNDMENT_REQUEST"),
        RefundOutcome::TooMany(_) => failed("REFUND_AMT_RESTRICTION"),
    };
    Ok(ctx.answer(&answer))
}

fn precreate(ctx: &Ctx<'_>) -> Result<Answer, Refusal> {
    let out_trade_no: OutTradeNo = required(ctx, "out_trade_no")?;
    let subject: Subject = required(ctx, "subject")?;
    let currency =
        currency(ctx, if ctx.req.value("trans_currency").is_some() { "trans_currency" } else { "currency" })?;
    let fail = |code: &str| AcquirePrecreateAnswer::failed(&out_trade_no, code);
    let total = match server::amount(ctx.req, "total_fee", currency)? {
        Ok(total) => total,
        Err(code) => return Ok(ctx.answer(&fail(code))),
    };
    let outcome = ctx.app.ledger.precreate(NewOrder {
        merchant: ctx.merchant.clone(),
        out_trade_no: out_trade_no.to_string(),
        subject: subject.to_string(),
        total,
        notify_url: ctx.req.value("notify_url").map(str::to_owned),
        charset: ctx.req.charset,
        place: Place::default(),
    });
    let answer = match outcome {
        PrecreateOutcome::Code(trade) => AcquirePrecreateAnswer {
            result_code: ResultCode::Success,
            trade_no: trade.trade_no.parse().ok(),
            out_trade_no: Some(out_trade_no.clone()),
            qr_code: match &trade.origin {
                Origin::Precreate { qr_code, .. } => Some(qr_code.clone()),
                _ => None,
            },
            voucher_type: Some("qrcode".into()),
            detail_error_code: None,
            detail_error_des: None,
        },
        PrecreateOutcome::ContextInconsistent => fail("CONTEXT_INCONSISTENT"),
        PrecreateOutcome::HasSuccess(_) => fail("TRADE_HAS_SUCCESS"),
        PrecreateOutcome::HasClosed(_) => fail("TRADE_HAS_CLOSE"),
    };
    Ok(ctx.answer(&answer))
}
