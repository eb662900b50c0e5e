//! A merchant's money movements in a window, as the bill files see them: one payment per trade
//! paid in the window, one refund per refund made in it, overrides applied.

use alipay::Amount;
use time::OffsetDateTime;

use crate::billing::overrides::{BillOverride, Overrides};
use crate::ledger::Ledger;
use crate::trade::{Refund, Trade};

/// Most trades one bill file covers.
pub const MAX_TRADES_PER_FILE: usize = 1_000_000;

/// What moved.
#[derive(Debug, Clone, Copy)]
pub enum MovementKind<'a> {
    Payment,
    Refund(&'a Refund),
}

/// One payment or refund.
#[derive(Debug, Clone, Copy)]
pub struct Movement<'a> {
    pub trade: &'a Trade,
    pub kind: MovementKind<'a>,
    /// When it completed (the payment, or the refund).
    pub at: OffsetDateTime,
    /// As the files show it (an override may change a payment's).
    pub amount: Amount,
}

/// `[from, to)`.
#[derive(Debug, Clone, Copy)]
pub struct Window {
    pub from: OffsetDateTime,
    pub to: OffsetDateTime,
}

impl Window {
    pub fn holds(&self, at: OffsetDateTime) -> bool {
        self.from <= at && at < self.to
    }

    /// Whether any of `trade`'s money moved in the window.
    pub fn touches(&self, trade: &Trade) -> bool {
        trade.paid_at.is_some_and(|at| self.holds(at)) || trade.refunds.iter().any(|r| self.holds(r.at))
    }
}

/// Copies of `merchant`'s trades whose money moved in `window`.
pub fn trades_of(ledger: &Ledger, merchant: &str, window: Window) -> Vec<Trade> {
    ledger.select(MAX_TRADES_PER_FILE, |trade| trade.merchant.id == merchant && window.touches(trade))
}

/// The movements of `trades` in `window`, by time (then trade number, payment first), overrides
/// applied.
pub fn movements<'a>(trades: &'a [Trade], overrides: &Overrides, window: Window) -> Vec<Movement<'a>> {
    let mut out = Vec::new();
    for trade in trades {
        let shown = match overrides.get(&trade.merchant.id, &trade.out_trade_no) {
            Some(BillOverride::Omit) => continue,
            Some(BillOverride::Amount(amount)) if amount.currency() == trade.total.currency() => amount,
            _ => trade.total,
        };
        if let Some(at) = trade.paid_at.filter(|at| window.holds(*at)) {
            out.push(Movement { trade, kind: MovementKind::Payment, at, amount: shown });
        }
        for refund in trade.refunds.iter().filter(|r| window.holds(r.at)) {
            out.push(Movement { trade, kind: MovementKind::Refund(refund), at: refund.at, amount: refund.amount });
        }
    }
    out.sort_by(|a, b| {
        let refund = |m: &Movement<'_>| matches!(m.kind, MovementKind::Refund(_));
        (a.at, &a.trade.trade_no, refund(a)).cmp(&(b.at, &b.trade.trade_no, refund(b)))
    });
    out
}
