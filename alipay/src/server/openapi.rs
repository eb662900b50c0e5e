//! The OpenAPI gateway as Alipay runs it: the common checks, the error statuses, `biz_content`
//! reading, and answer members written as Alipay writes them (`/` escaped as `\/`; the signature
//! covers those exact bytes).

use std::borrow::Cow;

use serde::Serialize;
use serde_json::{Map, Value};

use super::request::{GatewayRequest, RequestError};
use crate::charset::Charset;
use crate::money::{Amount, Currency, MoneyError};
use crate::openapi::{Status, request_signed_text, verify_request, write_answer};
use crate::sign::{SignType, Signer, Verifier};
use crate::time_text::parse_beijing_datetime;

/// The member name Alipay answers under for `method` (`error_response` if it names no method).
pub fn response_key(method: Option<&str>) -> String {
    match method {
        Some(m) if !m.is_empty() && m.len() <= 128 && m.bytes().all(|b| b.is_ascii_lowercase() || b == b'.') => {
            format!("{}_response", m.replace('.', "_"))
        }
        _ => "error_response".to_owned(),
    }
}

/// JSON as Alipay writes it: `/` escaped as `\/` (the signature covers these exact bytes).
pub fn member(value: &impl Serialize) -> String {
    serde_json::to_string(value).unwrap_or_else(|_| "{}".into()).replace('/', "\\/")
}

/// An answer body: `status` under `key`, signed when a signer is given (Alipay leaves the
/// answers it gives before it knows the app unsigned).
pub fn answer(key: &str, member: &str, signer: Option<&Signer>, charset: Charset) -> Vec<u8> {
    write_answer(key, member, signer, charset).unwrap_or_default()
}

/// 40001: a required common parameter is missing.
pub fn missing(what: &str) -> Status {
    Status::error("40001", "Missing Required Arguments", &format!("isv.missing-{what}"), &format!("missing {what}"))
}

/// 40002: a parameter is invalid.
pub fn invalid(sub_code: &str, message: &str) -> Status {
    Status::error("40002", "Invalid Arguments", sub_code, message)
}

/// 40004: the business refused the call.
pub fn business(sub_code: &str, message: &str) -> Status {
    Status::error("40004", "Business Failed", sub_code, message)
}

/// 20000 `ACQ.SYSTEM_ERROR`: the outcome is not known; the caller queries.
pub fn system_error() -> Status {
    Status::error("20000", "Service Currently Unavailable", "ACQ.SYSTEM_ERROR", "system error")
}

/// 10003: the buyer is paying; the caller queries.
pub fn paying() -> Status {
    Status { code: "10003".into(), msg: " order success pay inprocess".into(), sub_code: None, sub_msg: None }
}

/// 40004 `ACQ.TRADE_NOT_EXIST`.
pub fn not_exist() -> Status {
    business("ACQ.TRADE_NOT_EXIST", "trade does not exist")
}

/// `isv.invalid-method`: a method this gateway does not serve.
pub fn invalid_method() -> Status {
    invalid("isv.invalid-method", "unknown method")
}

/// The status for a request whose parameters could not be read (answered unsigned).
pub fn unreadable(error: &RequestError) -> Status {
    match error {
        RequestError::BadCharset | RequestError::BadEncoding => invalid("isv.invalid-charset", &error.to_string()),
        _ => invalid("isv.invalid-parameter", &error.to_string()),
    }
}

/// The gateway's checks after the app is known, in Alipay's order: sign type, sign, timestamp,
/// version, format, then the signature, which one of `verifiers` (keys of `sign_type`) must
/// accept. Its refusal names the text it verified, as Alipay's does.
pub fn check_common<'v>(
    req: &GatewayRequest,
    sign_type: SignType,
    verifiers: impl IntoIterator<Item = &'v Verifier>,
) -> Result<(), Status> {
    let declared = req.value("sign_type").ok_or_else(|| missing("signature-type"))?;
    let declared: SignType =
        declared.parse().map_err(|_| invalid("isv.invalid-signature-type", "invalid sign_type"))?;
    req.value("sign").ok_or_else(|| missing("signature"))?;
    let timestamp = req.value("timestamp").ok_or_else(|| missing("timestamp"))?;
    parse_beijing_datetime(timestamp)
        .ok_or_else(|| invalid("isv.invalid-timestamp", "timestamp must be yyyy-MM-dd HH:mm:ss"))?;
    let version = req.value("version").ok_or_else(|| missing("version"))?;
    if version != "1.0" {
        return Err(invalid("isv.invalid-parameter", "version must be 1.0"));
    }
    if req.value("format").is_some_and(|f| !f.eq_ignore_ascii_case("json")) {
        return Err(invalid("isv.invalid-format", "format must be JSON"));
    }
    let verified = declared == sign_type
        && verifiers.into_iter().any(|verifier| verify_request(&req.params, req.charset, verifier).is_ok());
    if !verified {
        let text = request_signed_text(req.params.iter().map(|(k, v)| (k.as_str(), v.as_str())));
        let message = format!("invalid signature; the gateway verified: {}", text.replace('&', "&amp;"));
        return Err(invalid("isv.invalid-signature", &message));
    }
    Ok(())
}

/// `biz_content` as a JSON object.
pub fn biz(req: &GatewayRequest) -> Result<Map<String, Value>, Status> {
    let text = req.value("biz_content").ok_or_else(|| missing("biz-content"))?;
    match serde_json::from_str::<Value>(text) {
        Ok(Value::Object(map)) => Ok(map),
        _ => Err(invalid("isv.invalid-parameter", "biz_content must be a JSON object")),
    }
}

/// A business field as text (numbers are accepted as written).
pub fn text<'a>(biz: &'a Map<String, Value>, field: &str) -> Option<Cow<'a, str>> {
    match biz.get(field)? {
        Value::String(s) if !s.is_empty() => Some(s.as_str().into()),
        Value::Number(n) => Some(n.to_string().into()),
        _ => None,
    }
}

/// A required business field, parsed.
pub fn required<T: std::str::FromStr>(biz: &Map<String, Value>, field: &str) -> Result<T, Status> {
    let value = text(biz, field).ok_or_else(|| business("ACQ.INVALID_PARAMETER", &format!("missing {field}")))?;
    value.parse().map_err(|_| business("ACQ.INVALID_PARAMETER", &format!("invalid {field}")))
}

/// An optional business field, parsed.
pub fn optional<T: std::str::FromStr>(biz: &Map<String, Value>, field: &str) -> Result<Option<T>, Status> {
    text(biz, field)
        .map(|value| value.parse().map_err(|_| business("ACQ.INVALID_PARAMETER", &format!("invalid {field}"))))
        .transpose()
}

/// A positive amount in `currency`.
pub fn amount(biz: &Map<String, Value>, field: &str, currency: Currency) -> Result<Amount, Status> {
    let value = text(biz, field).ok_or_else(|| business("ACQ.INVALID_PARAMETER", &format!("missing {field}")))?;
    Amount::parse_positive(&value, currency).map_err(|e| match e {
        MoneyError::NotPositive | MoneyError::OutOfRange => business("ACQ.TOTAL_FEE_EXCEED", "invalid amount"),
        _ => business("ACQ.INVALID_PARAMETER", &format!("invalid {field}")),
    })
}

/// `trans_currency`, CNY when absent.
pub fn currency(biz: &Map<String, Value>) -> Result<Currency, Status> {
    match text(biz, "trans_currency") {
        None => Ok(Currency::CNY),
        Some(code) => code.parse().map_err(|_| business("ACQ.INVALID_PARAMETER", "invalid trans_currency")),
    }
}

/// Which trade a query, cancel, close or refund names: `out_trade_no`, `trade_no`, or both.
pub fn trade_ref(biz: &Map<String, Value>) -> Result<(Option<String>, Option<String>), Status> {
    let out_trade_no = text(biz, "out_trade_no").map(Cow::into_owned);
    let trade_no = text(biz, "trade_no").map(Cow::into_owned);
    if out_trade_no.is_none() && trade_no.is_none() {
        return Err(business("ACQ.INVALID_PARAMETER", "out_trade_no or trade_no is required"));
    }
    Ok((out_trade_no, trade_no))
}
