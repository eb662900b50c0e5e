//! Test hooks under `/sandbox/`: JSON in, JSON out.
//!
//! | call | what it does |
//! |---|---|
//! | `POST /sandbox/merchants` | register (or replace) a merchant ([`Registration`]: with `pid` and `fee_rate_bp` for its bills); answers its `id`, `pid` and `fee_rate_bp` |
//! | `GET /sandbox/alipay-public-key` | the platform public key, PEM |
//! | `GET /sandbox/trades/{app_id or partner}/{out_trade_no}` | a trade's ground truth (its store, terminal and operator; each refund's `via`: `api`, `cancel` or `portal`) |
//! | `GET`, `POST`, `DELETE /sandbox/faults` | read, set, clear injected faults (latency, 502s before or after the work; for some kinds of call, for the next N) |
//! | `GET /sandbox/stats` | counters |
//! | `POST /sandbox/oauth/codes` | issue an auth code for a user (`{"app_id", "user_id"?}`) |
//! | `POST /sandbox/qr/scan` | a buyer scans an order QR code (`{"qr_code", "auth_code"?, "pay"?, "notify"?}`; `"notify": false` loses the payment's notification) |
//! | `POST /sandbox/static-qr/pay` | a buyer pays the merchant's static QR code (`{"app_id"|"partner", "amount", "currency"?, "subject"?, "auth_code"?, "notify_url"?, "notify"?}`); `"notify": false` sends no notification (a payment only Alipay knows) |
//! | `POST /sandbox/refunds` | a refund made in Alipay's merchant portal (`{"app_id"|"partner", "out_trade_no", "amount", "out_request_no"?}`): real, but no notification and no call; the request number defaults to a portal batch number (`HZ` and 18 digits); refused as the refund API refuses (404 no trade, 409 unpaid, over-refunded or a reused number with another amount) |
//! | `GET`, `POST /sandbox/bills/now` | read or set the bill clock (`{"now": "<RFC 3339>"}`, `{"now": null}` for the real clock): what the bill API and the drop take for now (is a day today, is its bill ready); trade times stay real |
//! | `POST /sandbox/bills/drop` | write Global's transaction and settlement files of a completed day (`{"date": "yyyy-MM-dd", "partner"?}`) under `--global-drop-dir`/`<partner>/`; answers `{"files": [{"path", "written"}]}` (`written` false: unchanged); 400 without a drop dir, 409 before 09:00 the next day by the bill clock |
//! | `POST`, `DELETE /sandbox/bills/overrides` | make the bill files (trade bill, account bill, Global's) leave a trade out (`{"app_id"|"partner", "out_trade_no", "omit": true}`) or show another amount on its payment row (`{..., "amount": "12.34"}`), while queries keep the truth; DELETE clears them all (at most 10,000) |
//! | `POST /sandbox/bills/cut` | the next N bill downloads serve their file cut to K bytes (`{"next": N, "keep_bytes": K}`, N ≤ 1000), as a download cut short would leave it |
//! | `POST /sandbox/bills/expire` | the next N bill download links are dead on arrival (`{"next": N}`, N ≤ 1000): the download answers `下载超时，请重新下载` |

use std::sync::Arc;

use alipay::{Amount, AuthCode, Currency, OutRequestNo, Subject};
use http::{Method, StatusCode};
use serde::Deserialize;
use serde_json::json;

use crate::app::{Answer, App};
use crate::faults::FaultConfig;
use crate::ledger::RefundOutcome;
use crate::merchants::{Dialect, Merchant, Registration, valid_notify_url};
use crate::trade::{Origin, RefundVia, Trade};

/// The barcode the hooks' buyer pays with when the test names none.
const DEFAULT_BUYER_CODE: &str = "280000000000000100";

pub fn handle(app: &App, method: &Method, path: &str, body: &[u8]) -> Answer {
    let segments: Vec<&str> = path.trim_start_matches("/sandbox/").split('/').collect();
    match (method, segments.as_slice()) {
        (&Method::POST, ["merchants"]) => register(app, body),
        (&Method::GET, ["alipay-public-key"]) => {
            Answer::text(StatusCode::OK, "application/x-pem-file", app.platform.public_pem().to_owned())
        }
        (&Method::GET, ["trades", merchant, out_trade_no]) => match app.ledger.get(merchant, out_trade_no) {
            Some(trade) => Answer::json(StatusCode::OK, &trade_json(&trade)),
            None => Answer::hook_error(StatusCode::NOT_FOUND, "no such trade"),
        },
        (&Method::GET, ["faults"]) => Answer::json(StatusCode::OK, &app.faults.get()),
        (&Method::POST, ["faults"]) => set_faults(app, body),
        (&Method::DELETE, ["faults"]) => {
            app.faults.set(FaultConfig::default());
            Answer::json(StatusCode::OK, &app.faults.get())
        }
        (&Method::GET, ["stats"]) => Answer::json(
            StatusCode::OK,
            &json!({ "stats": &*app.stats, "trades": app.ledger.len(), "merchants": app.merchants.len() }),
        ),
        (&Method::POST, ["oauth", "codes"]) => oauth_code(app, body),
        (&Method::POST, ["qr", "scan"]) => scan(app, body),
        (&Method::POST, ["static-qr", "pay"]) => static_qr_pay(app, body),
        (&Method::POST, ["refunds"]) => portal_refund(app, body),
        (_, ["bills", rest @ ..]) => crate::billing::hooks::handle(app, method, rest, body),
        (_, ["merchants"] | ["alipay-public-key"] | ["trades", _, _] | ["faults"] | ["stats"] | ["refunds"]) => {
            Answer::hook_error(StatusCode::METHOD_NOT_ALLOWED, "method not allowed")
        }
        _ => Answer::hook_error(StatusCode::NOT_FOUND, "no such hook"),
    }
}

pub(crate) fn parse<'a, T: Deserialize<'a>>(body: &'a [u8]) -> Result<T, Answer> {
    serde_json::from_slice(body).map_err(|e| Answer::hook_error(StatusCode::BAD_REQUEST, format!("invalid JSON: {e}")))
}

fn register(app: &App, body: &[u8]) -> Answer {
    let reg: Registration = match parse(body) {
        Ok(reg) => reg,
        Err(answer) => return answer,
    };
    match app.merchants.register(&reg) {
        Ok((merchant, replaced)) => Answer::json(
            if replaced { StatusCode::OK } else { StatusCode::CREATED },
            &json!({
                "dialect": merchant.dialect,
                "id": merchant.id,
                "sign_type": merchant.sign_type.as_str(),
                "pid": merchant.pid.as_str(),
                "fee_rate_bp": merchant.fee_rate.bp(),
            }),
        ),
        Err(e) => Answer::hook_error(StatusCode::BAD_REQUEST, e),
    }
}

fn set_faults(app: &App, body: &[u8]) -> Answer {
    let config: FaultConfig = match parse(body) {
        Ok(config) => config,
        Err(answer) => return answer,
    };
    if let Err(e) = config.validate() {
        return Answer::hook_error(StatusCode::BAD_REQUEST, e);
    }
    app.faults.set(config);
    Answer::json(StatusCode::OK, &app.faults.get())
}

/// A trade's ground truth, in Alipay's words.
pub fn trade_json(trade: &Trade) -> serde_json::Value {
    let id_field = match trade.merchant.dialect {
        Dialect::Openapi => "app_id",
        Dialect::Mapi => "partner",
    };
    let (origin, qr_code, scanned) = match &trade.origin {
        Origin::Barcode => ("barcode", None, None),
        Origin::Precreate { qr_code, scanned } => ("precreate", Some(qr_code.as_str()), Some(*scanned)),
        Origin::StaticQr => ("static_qr", None, None),
    };
    let refunds: Vec<serde_json::Value> = trade
        .refunds
        .iter()
        .map(|r| {
            let via = match r.via {
                RefundVia::Api => "api",
                RefundVia::Cancel => "cancel",
                RefundVia::Portal => "portal",
            };
            json!({ "out_request_no": r.out_request_no, "amount": r.amount.to_string(), "via": via })
        })
        .collect();
    let calls: Vec<serde_json::Value> = trade
        .calls
        .iter()
        .map(|c| json!({ "call": c.kind, "at_ms": c.at.unix_timestamp_nanos() / 1_000_000 }))
        .collect();
    json!({
        id_field: trade.merchant.id,
        "out_trade_no": trade.out_trade_no,
        "trade_no": trade.trade_no,
        "trade_status": trade.trade_status().as_str(),
        "total_amount": trade.total.to_string(),
        "currency": trade.total.currency().code(),
        "refunded_amount": trade.refunded().to_string(),
        "refunds": refunds,
        "buyer_user_id": trade.buyer.as_ref().map(|b| b.user_id.clone()),
        "subject": trade.subject,
        "store_id": trade.place.store_id.as_ref().map(|s| s.as_str()),
        "terminal_id": trade.place.terminal_id.as_ref().map(|s| s.as_str()),
        "operator_id": trade.place.operator_id.as_ref().map(|s| s.as_str()),
        "scenario": trade.scenario.name(),
        "origin": origin,
        "qr_code": qr_code,
        "scanned": scanned,
        "cancel_action": trade.cancel_action,
        "calls": calls,
    })
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CodeRequest {
    app_id: String,
    user_id: Option<String>,
}

fn oauth_code(app: &App, body: &[u8]) -> Answer {
    let req: CodeRequest = match parse(body) {
        Ok(req) => req,
        Err(answer) => return answer,
    };
    if app.merchants.get(&req.app_id).is_none_or(|m| m.dialect != Dialect::Openapi) {
        return Answer::hook_error(StatusCode::NOT_FOUND, "no openapi merchant with that app_id");
    }
    if req.user_id.as_deref().is_some_and(|u| u.parse::<alipay::UserId>().is_err()) {
        return Answer::hook_error(StatusCode::BAD_REQUEST, "user_id must be 1 to 64 letters or digits");
    }
    match app.oauth.issue(&req.app_id, req.user_id) {
        Some((code, user_id)) => Answer::json(StatusCode::CREATED, &json!({ "code": code, "user_id": user_id })),
        None => Answer::hook_error(StatusCode::SERVICE_UNAVAILABLE, "too many outstanding codes"),
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ScanRequest {
    qr_code: String,
    auth_code: Option<String>,
    #[serde(default = "yes")]
    pay: bool,
    /// Whether Alipay's notification of the payment goes out (`false`: it is lost).
    #[serde(default = "yes")]
    notify: bool,
}

fn yes() -> bool {
    true
}

fn buyer_code(code: Option<&str>) -> Result<String, Answer> {
    match code {
        None => Ok(DEFAULT_BUYER_CODE.to_owned()),
        Some(code) => {
            code.parse::<AuthCode>().map(|c| c.to_string()).map_err(|e| Answer::hook_error(StatusCode::BAD_REQUEST, e))
        }
    }
}

fn scan(app: &App, body: &[u8]) -> Answer {
    let req: ScanRequest = match parse(body) {
        Ok(req) => req,
        Err(answer) => return answer,
    };
    let code = match buyer_code(req.auth_code.as_deref()) {
        Ok(code) => code,
        Err(answer) => return answer,
    };
    match app.ledger.scan(&req.qr_code, &code, req.pay, req.notify) {
        Ok(trade) => Answer::json(StatusCode::OK, &trade_json(&trade)),
        Err(e @ crate::ledger::ScanError::UnknownCode) => Answer::hook_error(StatusCode::NOT_FOUND, e),
        Err(e) => Answer::hook_error(StatusCode::CONFLICT, e),
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct StaticQrRequest {
    app_id: Option<String>,
    partner: Option<String>,
    amount: String,
    currency: Option<String>,
    subject: Option<String>,
    auth_code: Option<String>,
    notify_url: Option<String>,
    #[serde(default = "yes")]
    notify: bool,
}

/// The merchant a hook names by `app_id` or `partner`; 404 when there is none.
pub(crate) fn merchant_named(app: &App, app_id: Option<&str>, partner: Option<&str>) -> Result<Arc<Merchant>, Answer> {
    app_id
        .or(partner)
        .and_then(|id| app.merchants.get(id))
        .ok_or_else(|| Answer::hook_error(StatusCode::NOT_FOUND, "no merchant with that app_id or partner"))
}

fn static_qr_pay(app: &App, body: &[u8]) -> Answer {
    let req: StaticQrRequest = match parse(body) {
        Ok(req) => req,
        Err(answer) => return answer,
    };
    let merchant = match merchant_named(app, req.app_id.as_deref(), req.partner.as_deref()) {
        Ok(merchant) => merchant,
        Err(answer) => return answer,
    };
    let currency = match req.currency.as_deref().map(str::parse::<Currency>).transpose() {
        Ok(currency) => currency.unwrap_or(Currency::CNY),
        Err(e) => return Answer::hook_error(StatusCode::BAD_REQUEST, e),
    };
    let amount = match Amount::parse_positive(&req.amount, currency) {
        Ok(amount) => amount,
        Err(e) => return Answer::hook_error(StatusCode::BAD_REQUEST, e),
    };
    let subject = match req.subject.as_deref().unwrap_or("Static QR payment").parse::<Subject>() {
        Ok(subject) => subject,
        Err(e) => return Answer::hook_error(StatusCode::BAD_REQUEST, e),
    };
    if req.notify_url.as_deref().is_some_and(|url| !valid_notify_url(url)) {
        return Answer::hook_error(StatusCode::BAD_REQUEST, "invalid notify_url");
    }
    let code = match buyer_code(req.auth_code.as_deref()) {
        Ok(code) => code,
        Err(answer) => return answer,
    };
    let trade = app.ledger.static_qr_pay(merchant, amount, subject.to_string(), &code, req.notify_url, req.notify);
    Answer::json(StatusCode::CREATED, &trade_json(&trade))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PortalRefundRequest {
    app_id: Option<String>,
    partner: Option<String>,
    out_trade_no: String,
    amount: String,
    out_request_no: Option<String>,
}

/// A portal batch number: `HZ` and 18 digits.
fn portal_batch_no() -> String {
    format!("HZ{:018}", rand::random::<u64>() % 1_000_000_000_000_000_000)
}

fn portal_refund(app: &App, body: &[u8]) -> Answer {
    let req: PortalRefundRequest = match parse(body) {
        Ok(req) => req,
        Err(answer) => return answer,
    };
    let merchant = match merchant_named(app, req.app_id.as_deref(), req.partner.as_deref()) {
        Ok(merchant) => merchant,
        Err(answer) => return answer,
    };
    let request_no = match req.out_request_no.as_deref().map(str::parse::<OutRequestNo>).transpose() {
        Ok(no) => no.map_or_else(portal_batch_no, |no| no.to_string()),
        Err(e) => return Answer::hook_error(StatusCode::BAD_REQUEST, e),
    };
    let conflict = |message: &str| Answer::hook_error(StatusCode::CONFLICT, message);
    match app.ledger.portal_refund(&merchant.id, &req.out_trade_no, &request_no, &req.amount) {
        RefundOutcome::Done { trade, refund, fund_change } => Answer::json(
            if fund_change { StatusCode::CREATED } else { StatusCode::OK },
            &json!({ "out_request_no": refund.out_request_no, "amount": refund.amount.to_string(), "trade": trade_json(&trade) }),
        ),
        RefundOutcome::NotFound => Answer::hook_error(StatusCode::NOT_FOUND, "no such trade"),
        RefundOutcome::BadAmount => {
            Answer::hook_error(StatusCode::BAD_REQUEST, "amount must be a positive amount in the trade's currency")
        }
        RefundOutcome::NotPaid(_) => conflict("the trade is not paid"),
        RefundOutcome::Exceeds(_) => conflict("the amount exceeds what is left to refund"),
        RefundOutcome::Discordant(_) => conflict("out_request_no was used with another amount"),
        RefundOutcome::TooMany(_) => conflict("too many refunds"),
    }
}
