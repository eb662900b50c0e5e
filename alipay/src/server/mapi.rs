//! The Global MAPI gateway as Alipay runs it: a service's parameters read, and the refusals
//! (`is_success=F` with `ILLEGAL_*`) for what cannot be read.

use std::str::FromStr;

use super::request::GatewayRequest;
use crate::money::{Amount, Currency, MoneyError};

/// A gateway-level refusal: the `error` of an unsigned `is_success=F` answer.
pub type Refusal = &'static str;

/// A required parameter, parsed (`ILLEGAL_ARGUMENT` when absent or malformed).
pub fn required<T: FromStr>(req: &GatewayRequest, field: &str) -> Result<T, Refusal> {
    req.value(field).and_then(|v| v.parse().ok()).ok_or("ILLEGAL_ARGUMENT")
}

/// A currency parameter, CNY when absent (`ILLEGAL_CURRENCY` when it is not one).
pub fn currency(req: &GatewayRequest, field: &str) -> Result<Currency, Refusal> {
    req.value(field).map_or(Ok(Currency::CNY), |c| c.parse().map_err(|_| "ILLEGAL_CURRENCY"))
}

/// A positive amount in `currency`. Zero, negative or too large is a business failure
/// (`Ok(Err("TOTAL_FEE_EXCEED"))`, answered signed); text that is no amount is a refusal.
pub fn amount(req: &GatewayRequest, field: &str, currency: Currency) -> Result<Result<Amount, &'static str>, Refusal> {
    let text = req.value(field).ok_or("ILLEGAL_ARGUMENT")?;
    match Amount::parse_positive(text, currency) {
        Ok(amount) => Ok(Ok(amount)),
        Err(MoneyError::NotPositive | MoneyError::OutOfRange) => Ok(Err("TOTAL_FEE_EXCEED")),
        Err(_) => Err("ILLEGAL_ARGUMENT"),
    }
}
