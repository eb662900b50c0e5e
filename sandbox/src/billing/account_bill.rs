//! The OpenAPI account bill (`bill_type=signcustomer`, `账务明细`) of a merchant's movements, its
//! balance running from 0 at the period's start: per payment an income line (`在线支付`) and the
//! fee's expense line (`收费`); per refund an expense line (`交易退款`, the refund's request
//! number in 备注) and the returned fee's income line (`收费退回`). Zero fees get no line. CNY only.

use std::io::Cursor;

use alipay::{Amount, Currency, OutTradeNo, Partner, TradeNo};
use bills::account::{AccountRow, write_account_bill};
use bills::{BillPeriod, EntryNo, SignedAmount, Total, WriteError};
use time::OffsetDateTime;

use crate::billing::fee::FeeRate;
use crate::billing::movements::{Movement, MovementKind};
use crate::billing::trade_bill::header;

/// The archive's name, `<PID>0156_<stamp>.csv.zip`.
pub fn archive_name(pid: &Partner, period: BillPeriod) -> String {
    header(pid, period).archive_name()
}

/// The lines of `movements`, the balance running from 0.
pub fn rows(period: BillPeriod, fee_rate: FeeRate, movements: &[Movement<'_>]) -> Vec<AccountRow> {
    let mut rows = Vec::new();
    let mut balance = Total::zero(Currency::CNY);
    for movement in movements.iter().filter(|m| m.amount.currency() == Currency::CNY) {
        let trade = movement.trade;
        let (Ok(business_no), Ok(out_trade_no)) =
            (trade.trade_no.parse::<TradeNo>(), trade.out_trade_no.parse::<OutTradeNo>())
        else {
            continue;
        };
        let fee = fee_rate.fee(movement.amount);
        let buyer = trade.buyer.as_ref().map(|b| b.logon_id.clone()).unwrap_or_default();
        let lines: [(&str, Amount, bool, String, String); 2] = match movement.kind {
            MovementKind::Payment => [
                ("在线支付", movement.amount, false, buyer, String::new()),
                ("收费", fee, true, String::new(), String::new()),
            ],
            MovementKind::Refund(refund) => [
                ("交易退款", movement.amount, true, buyer, refund.out_request_no.clone()),
                ("收费退回", fee, false, String::new(), refund.out_request_no.clone()),
            ],
        };
        for (business_type, amount, out, counterparty, remark) in lines {
            if amount.is_zero() {
                continue;
            }
            let change = SignedAmount::new(amount, out);
            balance = balance.checked_add(change).unwrap_or(balance);
            let Ok(entry_no) = format!("{}{:010}", period.stamp(), rows.len() + 1).parse::<EntryNo>() else {
                continue;
            };
            rows.push(AccountRow {
                entry_no,
                business_no: business_no.clone(),
                out_trade_no: Some(out_trade_no.clone()),
                subject: trade.subject.clone(),
                at: movement.at,
                counterparty,
                change,
                balance,
                channel: "支付宝".into(),
                business_type: business_type.into(),
                remark,
            });
        }
    }
    rows
}

/// The account bill archive of `movements`, or `None` when nothing moved (no bill exists).
pub fn write(
    pid: &Partner,
    period: BillPeriod,
    fee_rate: FeeRate,
    movements: &[Movement<'_>],
    exported_at: OffsetDateTime,
) -> Result<Option<Vec<u8>>, WriteError> {
    let rows = rows(period, fee_rate, movements);
    if rows.is_empty() {
        return Ok(None);
    }
    let out = write_account_bill(Cursor::new(Vec::new()), &header(pid, period), exported_at, &rows)?;
    Ok(Some(out.into_inner()))
}
