//! Global's settlement file: the header, then one row per settled payment or refund.

use std::borrow::Borrow;
use std::io::{Read, Write};

use alipay::{Amount, Currency, Decimal, TradeNo};
use time::OffsetDateTime;

use super::{Line, amount, cells, check_header, currency, decimal, flush, id, opt_id, time};
use crate::Limits;
use crate::error::{BillError, Part, Problem, WriteError};
use crate::ids::{Mcc, OrderScene, PartnerTransactionId};
use crate::lines::{Encoding, Lines};

/// The settlement file's header.
pub const SETTLEMENT_COLUMNS: [&str; 21] = [
    "Partner_transaction_id",
    "Transaction_id",
    "Amount",
    "Rmb_amount",
    "Fee",
    "Settlement",
    "Rmb_settlement",
    "Currency",
    "Rate",
    "Payment_time",
    "Settlement_time",
    "Type",
    "Status",
    "Remarks",
    "Secondary_merchant_industry",
    "Secondary_merchant_name",
    "Operator_name",
    "Order_scene",
    "Trans_currency",
    "Trans_amount",
    "Trans_forex_rate",
];

/// The only `Status` there is: `L`, liquidated.
const LIQUIDATED: &str = "L";

/// `Type`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SettlementType {
    /// `P`.
    Payment,
    /// `R`.
    Refund,
}

impl SettlementType {
    pub const fn as_str(self) -> &'static str {
        match self {
            SettlementType::Payment => "P",
            SettlementType::Refund => "R",
        }
    }
}

/// One settled movement (status `L`). Amounts are in the settlement currency (`Currency`),
/// `rmb_*` in CNY, `trans_amount` in the pricing currency (`Trans_currency`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SettlementRow {
    /// `partner_trans_id` for a payment or reversal, `partner_refund_id` for a refund, Alipay's
    /// `transaction_id` for a cancel.
    pub partner_transaction_id: PartnerTransactionId,
    pub transaction_id: TradeNo,
    pub amount: Amount,
    pub rmb_amount: Amount,
    pub fee: Amount,
    /// `Settlement`: what the partner is paid for the row.
    pub settlement: Amount,
    pub rmb_settlement: Amount,
    /// `Rate` between `amount` and `rmb_amount`, as written.
    pub rate: Decimal,
    pub payment_time: OffsetDateTime,
    pub settlement_time: OffsetDateTime,
    pub kind: SettlementType,
    pub remarks: String,
    pub secondary_merchant_industry: Option<Mcc>,
    pub secondary_merchant_name: String,
    pub operator_name: String,
    pub order_scene: Option<OrderScene>,
    pub trans_amount: Amount,
    pub trans_forex_rate: Decimal,
}

impl SettlementRow {
    fn parse(line: &str) -> Result<Self, Problem> {
        let c = cells::<21>(line)?;
        let col = SETTLEMENT_COLUMNS;
        let settled_in = currency(c[7], col[7])?;
        let priced_in = currency(c[18], col[18])?;
        let kind = match c[11].trim() {
            "P" => SettlementType::Payment,
            "R" => SettlementType::Refund,
            other => return Err(Problem::Code { column: col[11], value: other.chars().take(16).collect() }),
        };
        if c[12].trim() != LIQUIDATED {
            return Err(Problem::Code { column: col[12], value: c[12].chars().take(16).collect() });
        }
        Ok(SettlementRow {
            partner_transaction_id: id(c[0], col[0])?,
            transaction_id: id(c[1], col[1])?,
            amount: amount(c[2], settled_in, col[2])?,
            rmb_amount: amount(c[3], Currency::CNY, col[3])?,
            fee: amount(c[4], settled_in, col[4])?,
            settlement: amount(c[5], settled_in, col[5])?,
            rmb_settlement: amount(c[6], Currency::CNY, col[6])?,
            rate: decimal(c[8], col[8])?,
            payment_time: time(c[9], col[9])?,
            settlement_time: time(c[10], col[10])?,
            kind,
            remarks: c[13].to_owned(),
            secondary_merchant_industry: opt_id(c[14], col[14])?,
            secondary_merchant_name: c[15].to_owned(),
            operator_name: c[16].to_owned(),
            order_scene: opt_id(c[17], col[17])?,
            trans_amount: amount(c[19], priced_in, col[19])?,
            trans_forex_rate: decimal(c[20], col[20])?,
        })
    }

    fn push(&self, out: &mut String) -> Result<(), (&'static str, &'static str)> {
        let col = SETTLEMENT_COLUMNS;
        let settled_in = self.amount.currency();
        if self.fee.currency() != settled_in || self.settlement.currency() != settled_in {
            return Err((col[4], "the fee and settlement are not in the settlement currency"));
        }
        if self.rmb_amount.currency() != Currency::CNY || self.rmb_settlement.currency() != Currency::CNY {
            return Err((col[3], "Rmb_amount and Rmb_settlement are CNY"));
        }
        let mut line = Line { out, first: true };
        line.cell(self.partner_transaction_id.as_str());
        line.cell(self.transaction_id.as_str());
        for value in [self.amount, self.rmb_amount, self.fee, self.settlement, self.rmb_settlement] {
            line.cell(&value.to_string());
        }
        line.cell(settled_in.code());
        line.cell(&self.rate.to_string());
        line.time(self.payment_time, col[9])?;
        line.time(self.settlement_time, col[10])?;
        line.cell(self.kind.as_str());
        line.cell(LIQUIDATED);
        line.text(&self.remarks, col[13])?;
        line.cell(self.secondary_merchant_industry.as_ref().map_or("", Mcc::as_str));
        line.text(&self.secondary_merchant_name, col[15])?;
        line.text(&self.operator_name, col[16])?;
        line.cell(self.order_scene.as_ref().map_or("", OrderScene::as_str));
        line.cell(self.trans_amount.currency().code());
        line.cell(&self.trans_amount.to_string());
        line.cell(&self.trans_forex_rate.to_string());
        Ok(())
    }
}

/// A settlement file's rows, one at a time; ends with `None` at the end of the file, or with one
/// `Err`.
pub struct SettlementReader<R> {
    lines: Lines<R>,
    rows: u64,
    max_rows: u64,
    done: bool,
}

impl<R: Read> SettlementReader<R> {
    /// Reads the header.
    pub fn new(reader: R, limits: &Limits) -> Result<Self, BillError> {
        let mut lines = Lines::new(reader, limits, Part::Settlements, Encoding::Utf8);
        if !lines.advance()? {
            return Err(lines.error_next(Problem::Truncated("the header row")));
        }
        check_header(&lines.text, &SETTLEMENT_COLUMNS).map_err(|p| lines.error(p))?;
        Ok(SettlementReader { lines, rows: 0, max_rows: limits.max_rows, done: false })
    }

    fn next_row(&mut self) -> Result<Option<SettlementRow>, BillError> {
        if !self.lines.advance()? {
            return Ok(None);
        }
        if self.lines.text.trim().is_empty() {
            self.lines.expect_end()?;
            return Ok(None);
        }
        if self.rows >= self.max_rows {
            return Err(self.lines.error(Problem::TooManyRows { limit: self.max_rows }));
        }
        let row = SettlementRow::parse(&self.lines.text).map_err(|p| self.lines.error(p))?;
        self.rows += 1;
        Ok(Some(row))
    }
}

impl<R: Read> Iterator for SettlementReader<R> {
    type Item = Result<SettlementRow, BillError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.done {
            return None;
        }
        let next = self.next_row().transpose();
        self.done = !matches!(next, Some(Ok(_)));
        next
    }
}

/// Writes a settlement file of `rows` (name it
/// [`settlement_file_name`](super::settlement_file_name)), UTF-8. Returns the rows written.
pub fn write_settlement_file<W, I>(mut out: W, rows: I) -> Result<u64, WriteError>
where
    W: Write,
    I: IntoIterator,
    I::Item: Borrow<SettlementRow>,
{
    let mut text = SETTLEMENT_COLUMNS.join("|");
    text.push('\n');
    let mut given = 0u64;
    for row in rows {
        row.borrow().push(&mut text).map_err(|(field, reason)| WriteError::Field { row: given, field, reason })?;
        text.push('\n');
        given += 1;
        flush(&mut out, &mut text, false)?;
    }
    flush(&mut out, &mut text, true)?;
    Ok(given)
}
