//! One trade as Alipay holds it, and the buyer behind a barcode.

use std::sync::Arc;

use alipay::charset::Charset;
use alipay::openapi::trade::{CancelAction, TradeStatus};
use alipay::{Amount, MerchantRef};
use time::OffsetDateTime;
use tokio::time::Instant;

use crate::merchants::Merchant;
use crate::scenario::Scenario;

/// How the trade came to be.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Origin {
    /// trade.pay / spot.pay with the buyer's barcode.
    Barcode,
    /// precreate: an order QR code; Alipay shows the trade only once a buyer scanned it.
    Precreate { qr_code: String, scanned: bool },
    /// A buyer scanned the merchant's static QR code and typed the amount.
    StaticQr,
}

/// Where the trade stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    /// WAIT_BUYER_PAY; the buyer pays at `pays_at` if set.
    Waiting { pays_at: Option<Instant> },
    /// TRADE_SUCCESS (partial refunds keep it there).
    Paid,
    /// TRADE_CLOSED: closed unpaid, cancelled, or fully refunded.
    Closed,
}

/// The buyer behind a barcode: codes that differ only in the scenario suffix are one buyer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Buyer {
    pub user_id: String,
    pub logon_id: String,
}

impl Buyer {
    pub fn of_code(code: &str) -> Self {
        let digits: String = code.chars().filter(char::is_ascii_digit).collect();
        let body = digits.get(..digits.len().saturating_sub(2)).unwrap_or("");
        let tail = body.get(body.len().saturating_sub(12)..).unwrap_or("");
        let user_id = format!("2088{tail:0>12}");
        let logon_id = format!("1{}****{}", &user_id[4..6], &user_id[12..16]);
        Buyer { user_id, logon_id }
    }
}

/// Where the trade was made, as the merchant said (`store_id`, `terminal_id`, `operator_id`):
/// what the bill rows show in 门店编号, 终端号 and 操作员.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Place {
    pub store_id: Option<MerchantRef>,
    pub terminal_id: Option<MerchantRef>,
    pub operator_id: Option<MerchantRef>,
}

/// How a refund came about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RefundVia {
    /// trade.refund / spot.refund.
    Api,
    /// A cancel of a paid trade (its `out_request_no` is the `out_trade_no`); Global calls it a
    /// reversal.
    Cancel,
    /// Made in Alipay's merchant portal: no call, no notification, a batch number.
    Portal,
}

/// One refund of a trade.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refund {
    pub out_request_no: String,
    pub amount: Amount,
    pub at: OffsetDateTime,
    pub via: RefundVia,
}

/// A trade, as the sandbox's ground truth.
#[derive(Debug, Clone)]
pub struct Trade {
    pub merchant: Arc<Merchant>,
    pub out_trade_no: String,
    pub trade_no: String,
    pub origin: Origin,
    pub subject: String,
    pub total: Amount,
    pub place: Place,
    pub buyer: Option<Buyer>,
    pub created: Instant,
    pub created_at: OffsetDateTime,
    pub paid_at: Option<OffsetDateTime>,
    pub closed_at: Option<OffsetDateTime>,
    pub scenario: Scenario,
    pub status: Status,
    pub refunds: Vec<Refund>,
    /// Cancels still to answer `retry_flag=Y` (scenario 69).
    pub cancel_retries_left: u8,
    /// Set once a cancel went through: what it did.
    pub cancel_action: Option<CancelAction>,
    pub notify_url: Option<String>,
    pub charset: Charset,
    /// The calls made about this trade, the one that created it included (the first
    /// [`MAX_CALLS`]), so tests can see how often and when a client paid, queried or cancelled it.
    pub calls: Vec<Call>,
}

/// How many calls a trade keeps in [`Trade::calls`].
pub const MAX_CALLS: usize = 100;

/// One call about a trade.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Call {
    /// `pay`, `precreate`, `query`, `cancel`, `close`, `refund` or `refund_query`.
    pub kind: &'static str,
    pub at: OffsetDateTime,
}

impl Trade {
    /// Records a call about the trade (once [`MAX_CALLS`] are kept, no more).
    pub fn record_call(&mut self, kind: &'static str) {
        if self.calls.len() < MAX_CALLS {
            self.calls.push(Call { kind, at: OffsetDateTime::now_utc() });
        }
    }

    pub fn trade_status(&self) -> TradeStatus {
        match self.status {
            Status::Waiting { .. } => TradeStatus::WaitBuyerPay,
            Status::Paid => TradeStatus::TradeSuccess,
            Status::Closed => TradeStatus::TradeClosed,
        }
    }

    /// Total refunded so far.
    pub fn refunded(&self) -> Amount {
        self.refunds.iter().fold(Amount::zero(self.total.currency()), |sum, r| sum.checked_add(r.amount).unwrap_or(sum))
    }

    /// Whether Alipay shows the trade to query and close (an unscanned order code it does not).
    pub fn visible(&self) -> bool {
        !matches!(self.origin, Origin::Precreate { scanned: false, .. })
    }

    /// Whether the buyer's money ever moved.
    pub fn was_paid(&self) -> bool {
        self.paid_at.is_some()
    }

    /// Applies the buyer's payment if its time has come; answers whether it did.
    pub fn settle(&mut self, now: Instant) -> bool {
        match self.status {
            Status::Waiting { pays_at: Some(at) } if now >= at => {
                self.mark_paid();
                true
            }
            _ => false,
        }
    }

    pub fn mark_paid(&mut self) {
        self.status = Status::Paid;
        self.paid_at = Some(OffsetDateTime::now_utc());
    }

    pub fn mark_closed(&mut self) {
        self.status = Status::Closed;
        self.closed_at = Some(OffsetDateTime::now_utc());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_differing_in_the_suffix_are_one_buyer() {
        let a = Buyer::of_code("281234567890123400");
        assert_eq!(a, Buyer::of_code("281234567890123460"));
        assert_ne!(a, Buyer::of_code("281234567890999900"));
        assert_eq!(a.user_id, "2088345678901234");
        assert_eq!(a.user_id.len(), 16);
    }
}
