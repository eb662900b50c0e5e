//! What detail rows add up to: the counts and sums the footer and the summary state, kept as
//! they are read or written (constant memory, checked arithmetic).

use alipay::Currency;

use crate::money::{SignedAmount, Total};
use crate::trade::row::Figures;
use crate::trade::summary::SummaryLine;

const CNY: Currency = Currency::CNY;

/// Counts and sums (signed fen) over detail rows.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Tally {
    pub(crate) payments: u64,
    pub(crate) refunds: u64,
    /// 订单金额, signed: payments less refunds.
    pub(crate) amount: i64,
    /// 商家实收, signed.
    pub(crate) received: i64,
    pub(crate) alipay_discount: i64,
    pub(crate) merchant_discount: i64,
    pub(crate) card: i64,
    pub(crate) fee: i64,
    pub(crate) profit_share: i64,
    /// The footer's `#交易合计` sums: over payment rows only.
    pub(crate) payments_received: i64,
    pub(crate) payments_merchant_discount: i64,
    /// The footer's `#退款合计` sums: over refund rows only (negative).
    pub(crate) refunds_received: i64,
    pub(crate) refunds_merchant_discount: i64,
}

fn add(sum: &mut i64, value: i64) -> Option<()> {
    *sum = sum.checked_add(value)?;
    Some(())
}

impl Tally {
    /// Counts a row in; `None` on overflow.
    pub(crate) fn add(&mut self, row: &Figures) -> Option<()> {
        let received = SignedAmount::new(row.received, row.refund).minor();
        let merchant_discount = row.merchant_discount.minor();
        if row.refund {
            self.refunds = self.refunds.checked_add(1)?;
            add(&mut self.refunds_received, received)?;
            add(&mut self.refunds_merchant_discount, merchant_discount)?;
        } else {
            self.payments = self.payments.checked_add(1)?;
            add(&mut self.payments_received, received)?;
            add(&mut self.payments_merchant_discount, merchant_discount)?;
        }
        add(&mut self.amount, SignedAmount::new(row.amount, row.refund).minor())?;
        add(&mut self.received, received)?;
        add(&mut self.alipay_discount, row.alipay_discount.minor())?;
        add(&mut self.merchant_discount, merchant_discount)?;
        add(&mut self.card, row.card_amount.minor())?;
        add(&mut self.fee, row.fee.minor())?;
        add(&mut self.profit_share, row.profit_share.minor())
    }

    /// The summary line these rows make. Its 实收净额 is taken to be 商家实收 plus the (negative)
    /// 服务费; `None` on overflow.
    pub(crate) fn summary_line(&self) -> Option<SummaryLine> {
        let total = |minor| Total::from_minor(minor, CNY);
        Some(SummaryLine {
            payments: self.payments,
            refunds: self.refunds,
            amount: total(self.amount),
            received: total(self.received),
            alipay_discount: total(self.alipay_discount),
            merchant_discount: total(self.merchant_discount),
            card: total(self.card),
            fee: total(self.fee),
            profit_share: total(self.profit_share),
            net: total(self.received.checked_add(self.fee)?),
        })
    }
}
