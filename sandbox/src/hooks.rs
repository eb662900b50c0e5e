//! Test hooks under `/sandbox/`: JSON in, JSON out.
//!
//! | call | what it does |
//! |---|---|
//! | `POST /sandbox/merchants` | register (or replace) a merchant |
//! | `GET /sandbox/alipay-public-key` | the platform public key, PEM |
//! | `GET /sandbox/trades/{app_id or partner}/{out_trade_no}` | a trade's ground truth |
//! | `GET`, `POST`, `DELETE /sandbox/faults` | read, set, clear injected faults (latency, 502s before or after the work; for some kinds of call, for the next N) |
//! | `GET /sandbox/stats` | counters |
//! | `POST /sandbox/oauth/codes` | issue an auth code for a user (`{"app_id", "user_id"?}`) |
//! | `POST /sandbox/qr/scan` | a buyer scans an order QR code (`{"qr_code", "auth_code"?, "pay"?}`) |
//! | `POST /sandbox/static-qr/pay` | a buyer pays the merchant's static QR code (`{"app_id"|"partner", "amount", ...}`) |

use alipay::{Amount, AuthCode, Currency, Subject};
use http::{Method, StatusCode};
use serde::Deserialize;
use serde_json::json;

use crate::app::{Answer, App};
use crate::faults::FaultConfig;
use crate::merchants::{Dialect, Registration, valid_notify_url};
use crate::trade::{Origin, Trade};

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
        (_, ["merchants"] | ["alipay-public-key"] | ["trades", _, _] | ["faults"] | ["stats"]) => {
            Answer::hook_error(StatusCode::METHOD_NOT_ALLOWED, "method not allowed")
        }
        _ => Answer::hook_error(StatusCode::NOT_FOUND, "no such hook"),
    }
}

fn parse<'a, T: Deserialize<'a>>(body: &'a [u8]) -> Result<T, Answer> {
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
            &json!({ "dialect": merchant.dialect, "id": merchant.id, "sign_type": merchant.sign_type.as_str() }),
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
        .map(|r| json!({ "out_request_no": r.out_request_no, "amount": r.amount.to_string() }))
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
    match app.ledger.scan(&req.qr_code, &code, req.pay) {
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
}

fn static_qr_pay(app: &App, body: &[u8]) -> Answer {
    let req: StaticQrRequest = match parse(body) {
        Ok(req) => req,
        Err(answer) => return answer,
    };
    let Some(merchant) = req.app_id.as_deref().or(req.partner.as_deref()).and_then(|id| app.merchants.get(id)) else {
        return Answer::hook_error(StatusCode::NOT_FOUND, "no merchant with that app_id or partner");
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
    let trade = app.ledger.static_qr_pay(merchant, amount, subject.to_string(), &code, req.notify_url);
    Answer::json(StatusCode::CREATED, &trade_json(&trade))
}
