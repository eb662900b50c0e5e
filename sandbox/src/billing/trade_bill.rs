//! The OpenAPI trade bill (`bill_type=trade`, `业务明细`) of a merchant's movements: one payment
//! row per payment, one refund row per refund (repeating the trade's numbers, with the refund's
//! request number), the fee charged on payments and returned on refunds. CNY only.

use std::io::Cursor;

use alipay::{Currency, OutRequestNo, OutTradeNo, Partner, TradeNo};
use bills::{Account, BillHeader, BillPeriod, BillRow, RowKind, SignedAmount, WriteError, write_trade_bill};
use time::OffsetDateTime;

use crate::billing::fee::FeeRate;
use crate::billing::movements::{Movement, MovementKind};

/// The bill's header: `<PID>0156` and the period.
pub fn header(pid: &Partner, period: BillPeriod) -> BillHeader {
    BillHeader { account: Account::new(pid.clone()), period }
}

/// One row of the bill, `None` for a movement the bill does not show (not CNY).
pub fn row(movement: &Movement<'_>, fee_rate: FeeRate) -> Option<BillRow> {
    let trade = movement.trade;
    if movement.amount.currency() != Currency::CNY {
        return None;
    }
    let fee = fee_rate.fee(movement.amount);
    let (kind, fee) = match movement.kind {
        MovementKind::Payment => (RowKind::Payment, SignedAmount::negative(fee)),
        MovementKind::Refund(refund) => (
            RowKind::Refund { out_request_no: refund.out_request_no.parse::<OutRequestNo>().ok()? },
            SignedAmount::positive(fee),
        ),
    };
    let zero = SignedAmount::zero(Currency::CNY);
    Some(BillRow {
        trade_no: trade.trade_no.parse::<TradeNo>().ok()?,
        out_trade_no: trade.out_trade_no.parse::<OutTradeNo>().ok()?,
        kind,
        subject: trade.subject.clone(),
        created_at: trade.created_at,
        finished_at: movement.at,
        store_id: trade.place.store_id.clone(),
        store_name: String::new(),
        operator_id: trade.place.operator_id.clone(),
        terminal_id: trade.place.terminal_id.clone(),
        counterparty: trade.buyer.as_ref().map(|b| b.logon_id.clone()).unwrap_or_default(),
        amount: movement.amount,
        received: movement.amount,
        alipay_red_packet: zero,
        jifenbao: zero,
        alipay_discount: zero,
        merchant_discount: zero,
        voucher_amount: zero,
        voucher_name: String::new(),
        merchant_red_packet: zero,
        card_amount: zero,
        fee,
        profit_share: zero,
        remark: String::new(),
    })
}

/// The bill archive of `movements`, or `None` when it has no rows (no bill exists).
pub fn write(
    pid: &Partner,
    period: BillPeriod,
    fee_rate: FeeRate,
    movements: &[Movement<'_>],
    exported_at: OffsetDateTime,
) -> Result<Option<Vec<u8>>, WriteError> {
    let rows: Vec<BillRow> = movements.iter().filter_map(|m| row(m, fee_rate)).collect();
    if rows.is_empty() {
        return Ok(None);
    }
    let out = write_trade_bill(Cursor::new(Vec::new()), &header(pid, period), exported_at, &rows)?;
    Ok(Some(out.into_inner()))
}
