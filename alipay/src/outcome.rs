//! What an answer proves about the call: it succeeded, it failed, or nothing is proven.
//!
//! The rule (design §4): only a verified answer proves anything. Buyer-paying (10003, MAPI
//! `UNKNOW`), system errors (20000, `*SYSTEM_ERROR`), rate limiting (40005), wrong or missing
//! signatures, unreadable bodies and transport failures are all [`Outcome::Unknown`], never
//! [`Outcome::Failed`].

use std::fmt;

/// The classification of one answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// The call did what it was asked (for queries: the query itself answered).
    Success,
    /// Alipay refused the call, and the refusal is proven (signed, or a gateway-level rejection
    /// that happens before any business processing).
    Failed(Failure),
    /// Nothing is proven; the caller must find out by querying.
    Unknown(UnknownReason),
}

impl Outcome {
    pub fn failed(code: impl Into<String>, sub_code: Option<String>, message: Option<String>) -> Self {
        Outcome::Failed(Failure { code: code.into(), sub_code, message })
    }
}

/// A proven refusal.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    /// OpenAPI `code` (`40004`) or MAPI `result_code`/`is_success=F`.
    pub code: String,
    /// OpenAPI `sub_code` (`ACQ.BUYER_BALANCE_NOT_ENOUGH`) or MAPI `error`/`detail_error_code`.
    pub sub_code: Option<String>,
    /// Alipay's human text (`sub_msg`, `detail_error_des`), if any.
    pub message: Option<String>,
}

impl Failure {
    /// The most specific code: the sub-code if there is one.
    pub fn reason_code(&self) -> &str {
        self.sub_code.as_deref().unwrap_or(&self.code)
    }

    /// Whether the reason code names `suffix` (matching `ACQ.X`, `aop.ACQ.X`, `AQC.X`, `X`).
    pub fn is(&self, suffix: &str) -> bool {
        code_is(self.reason_code(), suffix)
    }
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.reason_code())
    }
}

/// Whether an Alipay code names `suffix`, ignoring the `ACQ.` / `aop.ACQ.` / `AQC.` prefixes.
pub fn code_is(code: &str, suffix: &str) -> bool {
    code == suffix || (code.ends_with(suffix) && code[..code.len() - suffix.len()].ends_with('.'))
}

/// Why an answer proves nothing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UnknownReason {
    /// 10003 / MAPI `UNKNOW`: the buyer is confirming in the wallet.
    BuyerPaying,
    /// 20000, `ACQ.SYSTEM_ERROR`, MAPI `SYSTEM_ERROR`: Alipay does not know yet.
    SystemError { code: String },
    /// 40005 `isv.app-call-limited` / `isv.method-call-limited`.
    RateLimited,
    /// A cancel that answered `retry_flag=Y`.
    RetryLater,
    /// The trade exists already in a state only a query can tell (`ACQ.TRADE_HAS_SUCCESS`).
    AlreadyProcessed { code: String },
    /// The answer's signature does not verify.
    BadSignature,
    /// The answer carries no signature and is not a gateway-level rejection.
    Unsigned,
    /// The body is not an Alipay answer (HTML, truncated JSON, missing member, bad charset).
    Unreadable,
    /// Transport: no answer within the deadline.
    Timeout,
    /// Transport: connection refused, reset or closed early.
    Connection,
    /// Transport: an HTTP status other than 200.
    HttpStatus(u16),
}

impl fmt::Display for UnknownReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            UnknownReason::BuyerPaying => f.write_str("buyer paying"),
            UnknownReason::SystemError { code } => write!(f, "system error {code}"),
            UnknownReason::RateLimited => f.write_str("rate limited"),
            UnknownReason::RetryLater => f.write_str("retry later"),
            UnknownReason::AlreadyProcessed { code } => write!(f, "already processed ({code})"),
            UnknownReason::BadSignature => f.write_str("bad signature"),
            UnknownReason::Unsigned => f.write_str("unsigned answer"),
            UnknownReason::Unreadable => f.write_str("unreadable answer"),
            UnknownReason::Timeout => f.write_str("timeout"),
            UnknownReason::Connection => f.write_str("connection failed"),
            UnknownReason::HttpStatus(status) => write!(f, "HTTP {status}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn code_matching_ignores_prefixes_only() {
        assert!(code_is("ACQ.SYSTEM_ERROR", "SYSTEM_ERROR"));
        assert!(code_is("aop.ACQ.SYSTEM_ERROR", "SYSTEM_ERROR"));
        assert!(code_is("AQC.SYSTEM_ERROR", "SYSTEM_ERROR"));
        assert!(code_is("SYSTEM_ERROR", "SYSTEM_ERROR"));
        assert!(!code_is("ACQ.NOT_SYSTEM_ERROR", "SYSTEM_ERROR"));
        assert!(!code_is("XSYSTEM_ERROR", "SYSTEM_ERROR"));
    }
}
