//! The buyer's barcode picks what happens (design §5): its last two digits.

use std::time::Duration;

/// What the sandbox does with a barcode payment.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Scenario {
    /// Paid at once.
    Paid,
    /// 50: refused, buyer's balance is not enough.
    BalanceNotEnough,
    /// 51: refused, the barcode is invalid.
    AuthCodeInvalid,
    /// 60: buyer paying; pays 10 s later.
    PaysLater,
    /// 61: buyer paying; never pays.
    NeverPays,
    /// 62: system error answered, yet the trade was paid.
    SystemErrorPaid,
    /// 63: system error answered, and no trade was created.
    SystemErrorNoTrade,
    /// 64: the answer is delayed 30 s; the trade was paid.
    SlowAnswer,
    /// 65: HTTP 502 with an HTML page; the trade was paid.
    BadGateway,
    /// 66: a well-formed answer with a wrong signature; the trade was paid.
    WrongSignature,
    /// 67: call limited; no trade was created.
    CallLimited,
    /// 68: buyer paying; pays 58 s after creation (a cancel at 60 s reverses it).
    PaysJustBeforeCancel,
    /// 69: buyer paying, never pays; the first two cancels answer retry_flag=Y.
    CancelNeedsRetries,
}

/// How long the answer of [`Scenario::SlowAnswer`] is held (Alipay time).
pub const SLOW_ANSWER: Duration = Duration::from_secs(30);

impl Scenario {
    /// The scenario a barcode (`auth_code` / `buyer_identity_code`) asks for.
    pub fn of_code(code: &str) -> Self {
        match code.get(code.len().saturating_sub(2)..) {
            Some("50") => Scenario::BalanceNotEnough,
            Some("51") => Scenario::AuthCodeInvalid,
            Some("60") => Scenario::PaysLater,
            Some("61") => Scenario::NeverPays,
            Some("62") => Scenario::SystemErrorPaid,
            Some("63") => Scenario::SystemErrorNoTrade,
            Some("64") => Scenario::SlowAnswer,
            Some("65") => Scenario::BadGateway,
            Some("66") => Scenario::WrongSignature,
            Some("67") => Scenario::CallLimited,
            Some("68") => Scenario::PaysJustBeforeCancel,
            Some("69") => Scenario::CancelNeedsRetries,
            _ => Scenario::Paid,
        }
    }

    /// When the buyer pays, counted from the trade's creation, if the trade starts unpaid.
    pub fn pays_after(self) -> Option<Duration> {
        match self {
            Scenario::PaysLater => Some(Duration::from_secs(10)),
            Scenario::PaysJustBeforeCancel => Some(Duration::from_secs(58)),
            _ => None,
        }
    }

    /// Whether the trade starts waiting for the buyer (10003 / UNKNOW).
    pub fn starts_waiting(self) -> bool {
        matches!(
            self,
            Scenario::PaysLater | Scenario::NeverPays | Scenario::PaysJustBeforeCancel | Scenario::CancelNeedsRetries
        )
    }

    /// Whether a trade exists at Alipay after the pay call.
    pub fn creates_trade(self) -> bool {
        !matches!(
            self,
            Scenario::BalanceNotEnough
                | Scenario::AuthCodeInvalid
                | Scenario::SystemErrorNoTrade
                | Scenario::CallLimited
        )
    }

    /// Cancels answered `retry_flag=Y` before one goes through.
    pub fn cancel_retries(self) -> u8 {
        if self == Scenario::CancelNeedsRetries { 2 } else { 0 }
    }

    pub fn name(self) -> &'static str {
        match self {
            Scenario::Paid => "paid",
            Scenario::BalanceNotEnough => "50-balance-not-enough",
            Scenario::AuthCodeInvalid => "51-auth-code-invalid",
            Scenario::PaysLater => "60-pays-later",
            Scenario::NeverPays => "61-never-pays",
            Scenario::SystemErrorPaid => "62-system-error-paid",
            Scenario::SystemErrorNoTrade => "63-system-error-no-trade",
            Scenario::SlowAnswer => "64-slow-answer",
            Scenario::BadGateway => "65-bad-gateway",
            Scenario::WrongSignature => "66-wrong-signature",
            Scenario::CallLimited => "67-call-limited",
            Scenario::PaysJustBeforeCancel => "68-pays-just-before-cancel",
            Scenario::CancelNeedsRetries => "69-cancel-needs-retries",
        }
    }
}
