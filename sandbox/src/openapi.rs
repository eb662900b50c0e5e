//! The OpenAPI dialect: checks a request as Alipay's gateway does (app, sign type, signature,
//! timestamp, version), runs the method against the ledger and writes the signed JSON answer.
//!
//! Gateway errors come before the app is known unsigned, after it signed (as Alipay does).

use std::sync::Arc;

use alipay::charset::Charset;
use alipay::openapi::Status;
use alipay::openapi::oauth::OauthTokenAnswer;
use alipay::openapi::trade::{
    CancelAction, FundBill, RefundQueryAnswer, TradeCancelAnswer, TradeCloseAnswer, TradePayAnswer,
    TradePrecreateAnswer, TradeQueryAnswer, TradeRefundAnswer, YesNo,
};
use alipay::time_text::beijing_datetime;
use alipay::{Amount, AuthCode, Currency, Decimal, OutRequestNo, OutTradeNo, Subject};
use serde_json::{Map, Value};

use crate::app::{Answer, App};
use crate::ledger::{
    CancelOutcome, CloseOutcome, Lookup, NewOrder, NewPay, PayOutcome, PrecreateOutcome, RefundOutcome,
};
use crate::merchants::{Dialect, Merchant, corrupt_signature, valid_notify_url};
use crate::scenario::{SLOW_ANSWER, Scenario};
use crate::trade::{Place, Status as TradeState, Trade};
use alipay::server::openapi::{
    self as server, amount, business, currency, invalid, member, missing, not_exist, optional, paying, required,
    response_key, system_error, text,
};
use alipay::server::{GatewayRequest, RequestError};

fn unsigned(key: &str, status: &Status, charset: Charset) -> Answer {
    Answer::openapi(server::answer(key, &member(status), None, charset), charset)
}

/// Answers a request whose parameters could not be read.
pub fn refuse_unreadable(method: Option<&str>, error: &RequestError) -> Answer {
    unsigned(&response_key(method), &server::unreadable(error), Charset::Utf8)
}

/// One request to one known merchant.
struct Ctx<'a> {
    app: &'a App,
    req: &'a GatewayRequest,
    merchant: Arc<Merchant>,
    key: String,
}

impl Ctx<'_> {
    fn answer(&self, member: String) -> Answer {
        let signer = self.app.platform.signer_for(&self.merchant);
        let body = server::answer(&self.key, &member, Some(signer), self.req.charset);
        Answer::openapi(body, self.req.charset)
    }

    fn status(&self, status: Status) -> Answer {
        self.answer(member(&status))
    }

    /// A well-formed answer whose signature does not verify (scenario 66).
    fn wrongly_signed(&self, member: String) -> Answer {
        self.app.stats.wrong_signatures.inc();
        let signer = self.app.platform.signer_for(&self.merchant);
        let sign = signer.sign(self.req.charset.encode(&member).unwrap_or_default().as_ref()).unwrap_or_default();
        let body = format!("{{\"{}\":{member},\"sign\":\"{}\"}}", self.key, corrupt_signature(&sign));
        Answer::openapi(self.req.charset.encode(&body).unwrap_or_default().into_owned(), self.req.charset)
    }
}

/// Handles one OpenAPI request.
pub fn handle(app: &App, req: &GatewayRequest) -> Answer {
    let method = req.value("method");
    let key = response_key(method);
    let Some(method) = method else {
        return unsigned(&key, &missing("method"), req.charset);
    };
    let Some(app_id) = req.value("app_id") else {
        return unsigned(&key, &missing("app-id"), req.charset);
    };
    let merchant = match app.merchants.get(app_id) {
        Some(m) if m.dialect == Dialect::Openapi => m,
        _ => return unsigned(&key, &invalid("isv.invalid-app-id", "invalid app_id"), req.charset),
    };
    let ctx = Ctx { app, req, merchant, key };
    if let Err(status) = check_common(&ctx) {
        app.stats.rejected.inc();
        return ctx.status(status);
    }
    match method {
        "alipay.trade.pay" => pay(&ctx),
        "alipay.trade.query" => query(&ctx),
        "alipay.trade.cancel" => cancel(&ctx),
        "alipay.trade.refund" => refund(&ctx),
        "alipay.trade.fastpay.refund.query" => refund_query(&ctx),
        "alipay.trade.precreate" => precreate(&ctx),
        "alipay.trade.close" => close(&ctx),
        "alipay.system.oauth.token" => oauth_token(&ctx),
        "alipay.data.dataservice.bill.downloadurl.query" => {
            let answer = crate::billing::query::bill_url(app, &ctx.merchant, server::biz(req));
            ctx.answer(member(&answer))
        }
        _ => {
            app.stats.rejected.inc();
            ctx.status(server::invalid_method())
        }
    }
}

/// The gateway's checks, in Alipay's order, after the app is known.
fn check_common(ctx: &Ctx<'_>) -> Result<(), Status> {
    let req = ctx.req;
    server::check_common(req, ctx.merchant.sign_type, [&ctx.merchant.verifier])?;
    if req.value("notify_url").is_some_and(|url| !valid_notify_url(url)) {
        return Err(invalid("isv.invalid-parameter", "invalid notify_url"));
    }
    Ok(())
}

fn lookup(biz: &Map<String, Value>) -> Result<Lookup, Status> {
    let (out_trade_no, trade_no) = server::trade_ref(biz)?;
    Ok(Lookup { out_trade_no, trade_no })
}

fn run(ctx: &Ctx<'_>, f: impl FnOnce(&Map<String, Value>) -> Result<Answer, Status>) -> Answer {
    match server::biz(ctx.req).and_then(|biz| f(&biz)) {
        Ok(answer) => answer,
        Err(status) => ctx.status(status),
    }
}

fn dec(amount: Amount) -> Option<Decimal> {
    Some(Decimal::from(amount))
}

fn pay_answer(status: Status, trade: &Trade) -> TradePayAnswer {
    let paid = trade.was_paid();
    let zero = Amount::zero(trade.total.currency());
    let paid_amount = if paid { trade.total } else { zero };
    TradePayAnswer {
        status,
        trade_no: trade.trade_no.parse().ok(),
        out_trade_no: trade.out_trade_no.parse().ok(),
        buyer_logon_id: trade.buyer.as_ref().map(|b| b.logon_id.clone()),
        buyer_user_id: trade.buyer.as_ref().and_then(|b| b.user_id.parse().ok()),
        total_amount: dec(trade.total),
        receipt_amount: dec(paid_amount),
        buyer_pay_amount: dec(paid_amount),
        point_amount: dec(zero),
        invoice_amount: dec(paid_amount),
        gmt_payment: trade.paid_at.map(beijing_datetime),
        fund_bill_list: paid.then(|| {
            vec![FundBill {
                fund_channel: "ALIPAYACCOUNT".into(),
                amount: Decimal::from(trade.total),
                real_amount: None,
            }]
        }),
    }
}

/// The store, terminal and operator a pay or precreate names.
fn place(biz: &Map<String, Value>) -> Result<Place, Status> {
    Ok(Place {
        store_id: optional(biz, "store_id")?,
        terminal_id: optional(biz, "terminal_id")?,
        operator_id: optional(biz, "operator_id")?,
    })
}

fn pay(ctx: &Ctx<'_>) -> Answer {
    run(ctx, |biz| {
        let out_trade_no: OutTradeNo = required(biz, "out_trade_no")?;
        if let Some(scene) = text(biz, "scene")
            && !matches!(scene.as_ref(), "bar_code" | "wave_code" | "security_code")
        {
            return Err(business("ACQ.INVALID_PARAMETER", "invalid scene"));
        }
        let auth_code: AuthCode = text(biz, "auth_code")
            .and_then(|c| c.parse().ok())
            .ok_or_else(|| business("ACQ.PAYMENT_AUTH_CODE_INVALID", "invalid auth_code [SOUNDWAVE_PARSER_FAIL]"))?;
        let subject: Subject = required(biz, "subject")?;
        let total = amount(biz, "total_amount", currency(biz)?)?;
        let place = place(biz)?;
        let outcome = ctx.app.ledger.pay_in_store(
            NewPay {
                merchant: ctx.merchant.clone(),
                out_trade_no: out_trade_no.to_string(),
                buyer_code: auth_code.to_string(),
                subject: subject.to_string(),
                total,
                notify_url: ctx.req.value("notify_url").map(str::to_owned),
                charset: ctx.req.charset,
            },
            place,
        );
        Ok(match outcome {
            PayOutcome::Created(trade) => pay_created(ctx, &trade),
            PayOutcome::NotCreated(scenario) => ctx.status(match scenario {
                Scenario::BalanceNotEnough => business("ACQ.BUYER_BALANCE_NOT_ENOUGH", "buyer balance is not enough"),
                Scenario::AuthCodeInvalid => {
                    business("ACQ.PAYMENT_AUTH_CODE_INVALID", "invalid auth_code [SOUNDWAVE_PARSER_FAIL]")
                }
                Scenario::CallLimited => Status::error("40005", "Call Limited", "isv.app-call-limited", "call limited"),
                _ => system_error(),
            }),
            PayOutcome::Repeat(trade) => match trade.status {
                TradeState::Waiting { .. } => ctx.answer(member(&pay_answer(paying(), &trade))),
                TradeState::Paid => {
                    ctx.answer(member(&pay_answer(business("ACQ.TRADE_HAS_SUCCESS", "trade has been paid"), &trade)))
                }
                TradeState::Closed => ctx.status(business("ACQ.TRADE_HAS_CLOSE", "trade has been closed")),
            },
            PayOutcome::BuyerNotMatch => ctx.status(business("ACQ.TRADE_BUYER_NOT_MATCH", "buyer does not match")),
            PayOutcome::ContextInconsistent => {
                ctx.status(business("ACQ.CONTEXT_INCONSISTENT", "trade details differ from the earlier request"))
            }
        })
    })
}

fn pay_created(ctx: &Ctx<'_>, trade: &Trade) -> Answer {
    let paid = || member(&pay_answer(Status::success(), trade));
    match trade.scenario {
        Scenario::SystemErrorPaid => ctx.status(system_error()),
        Scenario::SlowAnswer => ctx.answer(paid()).delayed(ctx.app.clock.scaled(SLOW_ANSWER)),
        Scenario::BadGateway => Answer::bad_gateway(),
        Scenario::WrongSignature => ctx.wrongly_signed(paid()),
        _ if trade.status == TradeState::Paid => ctx.answer(paid()),
        _ => ctx.answer(member(&pay_answer(paying(), trade))),
    }
}

fn query(ctx: &Ctx<'_>) -> Answer {
    run(ctx, |biz| {
        let Some(trade) = ctx.app.ledger.query(&ctx.merchant.id, &lookup(biz)?) else {
            return Err(not_exist());
        };
        let paid = if trade.was_paid() { trade.total } else { Amount::zero(trade.total.currency()) };
        let answer = TradeQueryAnswer {
            status: Status::success(),
            trade_no: trade.trade_no.parse().ok(),
            out_trade_no: trade.out_trade_no.parse().ok(),
            buyer_logon_id: trade.buyer.as_ref().map(|b| b.logon_id.clone()),
            buyer_user_id: trade.buyer.as_ref().and_then(|b| b.user_id.parse().ok()),
            trade_status: Some(trade.trade_status()),
            total_amount: dec(trade.total),
            buyer_pay_amount: dec(paid),
            receipt_amount: dec(paid),
            send_pay_date: trade.paid_at.map(beijing_datetime),
            store_id: trade.place.store_id.as_ref().map(|s| s.to_string()),
            terminal_id: trade.place.terminal_id.as_ref().map(|s| s.to_string()),
            trans_currency: (trade.total.currency() != Currency::CNY).then_some(trade.total.currency()),
        };
        Ok(ctx.answer(member(&answer)))
    })
}

fn cancel(ctx: &Ctx<'_>) -> Answer {
    run(ctx, |biz| {
        let lookup = lookup(biz)?;
        let answer = match ctx.app.ledger.cancel(&ctx.merchant.id, &lookup) {
            CancelOutcome::Done(trade) => TradeCancelAnswer {
                status: Status::success(),
                trade_no: trade.trade_no.parse().ok(),
                out_trade_no: trade.out_trade_no.parse().ok(),
                retry_flag: Some(YesNo::N),
                action: trade.cancel_action,
                gmt_refund_pay: (trade.cancel_action == Some(CancelAction::Refund))
                    .then(|| trade.closed_at.map(beijing_datetime))
                    .flatten(),
            },
            CancelOutcome::NotFound => TradeCancelAnswer {
                status: Status::success(),
                out_trade_no: lookup.out_trade_no.and_then(|o| o.parse().ok()),
                retry_flag: Some(YesNo::N),
                ..TradeCancelAnswer::default()
            },
            CancelOutcome::RetryLater(trade) => TradeCancelAnswer {
                status: system_error(),
                trade_no: trade.trade_no.parse().ok(),
                out_trade_no: trade.out_trade_no.parse().ok(),
                retry_flag: Some(YesNo::Y),
                ..TradeCancelAnswer::default()
            },
        };
        Ok(ctx.answer(member(&answer)))
    })
}

fn refund(ctx: &Ctx<'_>) -> Answer {
    run(ctx, |biz| {
        let lookup = lookup(biz)?;
        let out_request_no: Option<OutRequestNo> = match text(biz, "out_request_no") {
            None => None,
            Some(v) => Some(v.parse().map_err(|_| business("ACQ.INVALID_PARAMETER", "invalid out_request_no"))?),
        };
        let amount =
            text(biz, "refund_amount").ok_or_else(|| business("ACQ.INVALID_PARAMETER", "missing refund_amount"))?;
        let outcome =
            ctx.app.ledger.refund(&ctx.merchant.id, &lookup, out_request_no.as_ref().map(|o| o.as_str()), &amount);
        let (trade, fund_change) = match outcome {
            RefundOutcome::Done { trade, fund_change, .. } => (trade, fund_change),
            RefundOutcome::NotFound => return Err(not_exist()),
            RefundOutcome::NotPaid(_) => return Err(business("ACQ.TRADE_STATUS_ERROR", "trade is not refundable")),
            RefundOutcome::BadAmount => return Err(business("ACQ.INVALID_PARAMETER", "invalid refund_amount")),
            RefundOutcome::Exceeds(_) => {
                return Err(business("ACQ.REFUND_AMT_NOT_EQUAL_TOTAL", "refund amount exceeds what is left"));
            }
            RefundOutcome::Discordant(_) => {
                return Err(business("ACQ.DISCORDANT_REPEAT_REQUEST", "out_request_no was used with another amount"));
            }
            RefundOutcome::TooMany(_) => return Err(business("ACQ.TRADE_NOT_ALLOW_REFUND", "too many refunds")),
        };
        let answer = TradeRefundAnswer {
            status: Status::success(),
            trade_no: trade.trade_no.parse().ok(),
            out_trade_no: trade.out_trade_no.parse().ok(),
            buyer_logon_id: trade.buyer.as_ref().map(|b| b.logon_id.clone()),
            buyer_user_id: trade.buyer.as_ref().and_then(|b| b.user_id.parse().ok()),
            fund_change: Some(if fund_change { YesNo::Y } else { YesNo::N }),
            refund_fee: dec(trade.refunded()),
            gmt_refund_pay: trade.refunds.last().map(|r| beijing_datetime(r.at)),
        };
        Ok(ctx.answer(member(&answer)))
    })
}

fn refund_query(ctx: &Ctx<'_>) -> Answer {
    run(ctx, |biz| {
        let lookup = lookup(biz)?;
        let out_request_no: OutRequestNo = required(biz, "out_request_no")?;
        let Some((trade, refund)) = ctx.app.ledger.refund_query(&ctx.merchant.id, &lookup, out_request_no.as_str())
        else {
            return Err(not_exist());
        };
        let mut answer = RefundQueryAnswer { status: Status::success(), ..RefundQueryAnswer::default() };
        if let Some(refund) = refund {
            answer.trade_no = trade.trade_no.parse().ok();
            answer.out_trade_no = trade.out_trade_no.parse().ok();
            answer.out_request_no = Some(out_request_no);
            answer.refund_amount = dec(refund.amount);
            answer.total_amount = dec(trade.total);
            answer.refund_status = Some("REFUND_SUCCESS".into());
            answer.gmt_refund_pay = Some(beijing_datetime(refund.at));
        }
        Ok(ctx.answer(member(&answer)))
    })
}

fn precreate(ctx: &Ctx<'_>) -> Answer {
    run(ctx, |biz| {
        let out_trade_no: OutTradeNo = required(biz, "out_trade_no")?;
        let subject: Subject = required(biz, "subject")?;
        let total = amount(biz, "total_amount", currency(biz)?)?;
        let outcome = ctx.app.ledger.precreate(NewOrder {
            merchant: ctx.merchant.clone(),
            out_trade_no: out_trade_no.to_string(),
            subject: subject.to_string(),
            total,
            notify_url: ctx.req.value("notify_url").map(str::to_owned),
            charset: ctx.req.charset,
            place: place(biz)?,
        });
        let trade = match outcome {
            PrecreateOutcome::Code(trade) => trade,
            PrecreateOutcome::ContextInconsistent => {
                return Err(business("ACQ.CONTEXT_INCONSISTENT", "trade details differ from the earlier request"));
            }
            PrecreateOutcome::HasSuccess(_) => return Err(business("ACQ.TRADE_HAS_SUCCESS", "trade has been paid")),
            PrecreateOutcome::HasClosed(_) => return Err(business("ACQ.TRADE_HAS_CLOSE", "trade has been closed")),
        };
        let qr_code = match &trade.origin {
            crate::trade::Origin::Precreate { qr_code, .. } => Some(qr_code.clone()),
            _ => None,
        };
        let answer = TradePrecreateAnswer { status: Status::success(), out_trade_no: Some(out_trade_no), qr_code };
        Ok(ctx.answer(member(&answer)))
    })
}

fn close(ctx: &Ctx<'_>) -> Answer {
    run(ctx, |biz| match ctx.app.ledger.close(&ctx.merchant.id, &lookup(biz)?) {
        CloseOutcome::Closed(trade) => Ok(ctx.answer(member(&TradeCloseAnswer {
            status: Status::success(),
            trade_no: trade.trade_no.parse().ok(),
            out_trade_no: trade.out_trade_no.parse().ok(),
        }))),
        CloseOutcome::NotFound => Err(not_exist()),
        CloseOutcome::NotClosable(_) => Err(business("ACQ.TRADE_STATUS_ERROR", "only unpaid trades can be closed")),
    })
}

fn oauth_token(ctx: &Ctx<'_>) -> Answer {
    let app_id = &ctx.merchant.id;
    let tokens = match ctx.req.value("grant_type") {
        Some("authorization_code") => ctx.req.value("code").and_then(|code| ctx.app.oauth.exchange_code(app_id, code)),
        Some("refresh_token") => {
            ctx.req.value("refresh_token").and_then(|token| ctx.app.oauth.exchange_refresh(app_id, token))
        }
        Some(_) => return ctx.status(invalid("isv.invalid-parameter", "invalid grant_type")),
        None => return ctx.status(missing("grant-type")),
    };
    let Some(tokens) = tokens else {
        let status = invalid("isv.code-invalid", "invalid auth code");
        let signer = ctx.app.platform.signer_for(&ctx.merchant);
        let body = server::answer("error_response", &member(&status), Some(signer), ctx.req.charset);
        return Answer::openapi(body, ctx.req.charset);
    };
    let answer = OauthTokenAnswer {
        user_id: tokens.user_id.parse().ok(),
        open_id: None,
        access_token: Some(tokens.access_token),
        expires_in: Some(1_296_000),
        re_expires_in: Some(2_592_000),
        refresh_token: Some(tokens.refresh_token),
        auth_start: Some(beijing_datetime(time::OffsetDateTime::now_utc())),
        ..OauthTokenAnswer::default()
    };
    ctx.answer(member(&answer))
}
