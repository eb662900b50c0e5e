//! The trade state machine of design §4, pure.
//!
//! ```text
//! PAYING ─▶ SUCCESS ─▶ (refunds: PARTIALLY_REFUNDED ─▶ REFUNDED)
//!    │  ├─▶ WAITING (an order QR code was created)
//!    │  └─▶ FAILED
//!    └────▶ UNKNOWN ─▶ SUCCESS | FAILED | CANCELLED(close | refund)
//! WAITING (QR order) ─▶ SUCCESS | CANCELLED(close)
//! ```
//! Terminal states never change except by refunds (and a cancel that reverses a payment).

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum TradeState {
    /// The intent is recorded; the call to Alipay is under way.
    Paying,
    Success,
    Failed,
    /// Nothing proven yet: the reconciler queries, then cancels at the deadline.
    Unknown,
    /// An order QR code waits for the buyer.
    Waiting,
    Cancelled,
    PartiallyRefunded,
    Refunded,
}

impl TradeState {
    pub const fn as_str(self) -> &'static str {
        match self {
            TradeState::Paying => "PAYING",
            TradeState::Success => "SUCCESS",
            TradeState::Failed => "FAILED",
            TradeState::Unknown => "UNKNOWN",
            TradeState::Waiting => "WAITING",
            TradeState::Cancelled => "CANCELLED",
            TradeState::PartiallyRefunded => "PARTIALLY_REFUNDED",
            TradeState::Refunded => "REFUNDED",
        }
    }

    /// Whether the outcome is known for good (final: no more queries or cancels for it).
    pub const fn is_final(self) -> bool {
        !matches!(self, TradeState::Paying | TradeState::Unknown | TradeState::Waiting)
    }

    /// Whether the buyer's money is (still partly) with the merchant.
    pub const fn is_paid(self) -> bool {
        matches!(self, TradeState::Success | TradeState::PartiallyRefunded)
    }

    /// Whether `self → next` is a transition design §4 allows.
    pub fn can_become(self, next: TradeState) -> bool {
        use TradeState::*;
        match (self, next) {
            (Paying, Success | Failed | Unknown | Waiting | Cancelled) => true,
            (Unknown, Success | Failed | Cancelled) => true,
            (Waiting, Success | Cancelled) => true,
            // A cancel of a paid trade reverses it; refunds move it along.
            (Success, PartiallyRefunded | Refunded | Cancelled) => true,
            (PartiallyRefunded, PartiallyRefunded | Refunded | Cancelled) => true,
            _ => false,
        }
    }
}

impl fmt::Display for TradeState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A state name that is not one of [`TradeState`]'s.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown trade state `{0}`")]
pub struct UnknownState(pub String);

impl FromStr for TradeState {
    type Err = UnknownState;
    fn from_str(s: &str) -> Result<Self, UnknownState> {
        use TradeState::*;
        [Paying, Success, Failed, Unknown, Waiting, Cancelled, PartiallyRefunded, Refunded]
            .into_iter()
            .find(|state| state.as_str() == s)
            .ok_or_else(|| UnknownState(s.to_owned()))
    }
}

/// How a trade came to be.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TradeKind {
    /// The customer's barcode, scanned by the POS.
    Barcode,
    /// An order QR code the customer scans.
    Qr,
    /// The merchant's static QR code: the gateway learns of it from Alipay's notification.
    StaticQr,
}

impl TradeKind {
    pub const fn as_str(self) -> &'static str {
        match self {
            TradeKind::Barcode => "barcode",
            TradeKind::Qr => "qr",
            TradeKind::StaticQr => "static_qr",
        }
    }
}

impl FromStr for TradeKind {
    type Err = UnknownState;
    fn from_str(s: &str) -> Result<Self, UnknownState> {
        match s {
            "barcode" => Ok(TradeKind::Barcode),
            "qr" => Ok(TradeKind::Qr),
            "static_qr" => Ok(TradeKind::StaticQr),
            other => Err(UnknownState(other.to_owned())),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum RefundState {
    /// Reserved against the paid amount; the call to Alipay is under way.
    Pending,
    Success,
    Failed,
    Unknown,
}

impl RefundState {
    pub const fn as_str(self) -> &'static str {
        match self {
            RefundState::Pending => "PENDING",
            RefundState::Success => "SUCCESS",
            RefundState::Failed => "FAILED",
            RefundState::Unknown => "UNKNOWN",
        }
    }
}

impl FromStr for RefundState {
    type Err = UnknownState;
    fn from_str(s: &str) -> Result<Self, UnknownState> {
        [RefundState::Pending, RefundState::Success, RefundState::Failed, RefundState::Unknown]
            .into_iter()
            .find(|state| state.as_str() == s)
            .ok_or_else(|| UnknownState(s.to_owned()))
    }
}

#[cfg(test)]
mod tests {
    use super::TradeState::*;
    use super::*;

    #[test]
    fn only_the_designed_transitions() {
        let all = [Paying, Success, Failed, Unknown, Waiting, Cancelled, PartiallyRefunded, Refunded];
        let allowed = [
            (Paying, Success),
            (Paying, Failed),
            (Paying, Unknown),
            (Paying, Waiting),
            (Paying, Cancelled),
            (Unknown, Success),
            (Unknown, Failed),
            (Unknown, Cancelled),
            (Waiting, Success),
            (Waiting, Cancelled),
            (Success, PartiallyRefunded),
            (Success, Refunded),
            (Success, Cancelled),
            (PartiallyRefunded, PartiallyRefunded),
            (PartiallyRefunded, Refunded),
            (PartiallyRefunded, Cancelled),
        ];
        for from in all {
            for to in all {
                assert_eq!(from.can_become(to), allowed.contains(&(from, to)), "{from} → {to}");
            }
            assert_eq!(from.as_str().parse::<TradeState>(), Ok(from));
        }
        assert!(Failed.is_final() && !Unknown.is_final() && !Waiting.is_final());
    }
}
