//! Global's daily transaction file: `Partner:<PID>|Payment_time: yyyy-MM-dd|Total_count:<n>`,
//! the header, the rows.

use std::borrow::Borrow;
use std::io::{Read, Write};

use alipay::{Amount, Decimal, Partner, TradeNo};
use time::{Date, OffsetDateTime};

use super::{Line, amount, cells, check_header, currency, decimal, flush, id, opt_id, time};
use crate::Limits;
use crate::error::{BillError, Part, Problem, WriteError};
use crate::ids::{Mcc, OrderScene, PartnerTransactionId};
use crate::lines::{Encoding, Lines};
use crate::times;

/// The transaction file's header.
pub const TRANSACTION_COLUMNS: [&str; 15] = [
    "Partner_transaction_id",
    "Transaction_id",
    "Transaction_amount",
    "Charge_amount",
    "Currency",
    "Payment_time",
    "Transaction_type",
    "Remark",
    "Secondary_merchant_industry",
    "Secondary_merchant_name",
    "Operator_name",
    "Order_scene",
    "Trans_currency",
    "Trans_amount",
    "Trans_forex_rate",
];

/// `Transaction_type`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TransactionType {
    Payment,
    Reversal,
    Refund,
    Cancel,
}

impl TransactionType {
    pub const fn as_str(self) -> &'static str {
        match self {
            TransactionType::Payment => "PAYMENT",
            TransactionType::Reversal => "REVERSAL",
            TransactionType::Refund => "REFUND",
            TransactionType::Cancel => "CANCEL",
        }
    }

    fn parse(text: &str) -> Option<Self> {
        [Self::Payment, Self::Reversal, Self::Refund, Self::Cancel].into_iter().find(|t| t.as_str() == text)
    }
}

/// The first line: whose file, which day, how many rows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TransactionFileHeader {
    pub partner: Partner,
    /// `Payment_time`: the day the transactions completed.
    pub date: Date,
    /// `Total_count`: the rows that follow.
    pub total_count: u64,
}

/// One transaction. Amounts are in the settlement currency (`Currency`), except `trans_amount`,
/// in the pricing currency (`Trans_currency`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TransactionRow {
    /// `partner_trans_id` for a payment, reversal or cancel; `partner_refund_id` for a refund.
    pub partner_transaction_id: PartnerTransactionId,
    /// Alipay's transaction id.
    pub transaction_id: TradeNo,
    /// `Transaction_amount`.
    pub amount: Amount,
    /// `Charge_amount`: Alipay's fee.
    pub fee: Amount,
    pub payment_time: OffsetDateTime,
    pub kind: TransactionType,
    pub remark: String,
    pub secondary_merchant_industry: Option<Mcc>,
    pub secondary_merchant_name: String,
    pub operator_name: String,
    pub order_scene: Option<OrderScene>,
    /// `Trans_amount`, in `Trans_currency`.
    pub trans_amount: Amount,
    /// `Trans_forex_rate`, as written.
    pub trans_forex_rate: Decimal,
}

impl TransactionRow {
    fn parse(line: &str) -> Result<Self, Problem> {
        let c = cells::<15>(line)?;
        let col = TRANSACTION_COLUMNS;
        let settled_in = currency(c[4], col[4])?;
        let priced_in = currency(c[12], col[12])?;
        let kind = TransactionType::parse(c[6].trim())
            .ok_or_else(|| Problem::Code { column: col[6], value: c[6].chars().take(16).collect() })?;
        Ok(TransactionRow {
            partner_transaction_id: id(c[0], col[0])?,
            transaction_id: id(c[1], col[1])?,
            amount: amount(c[2], settled_in, col[2])?,
            fee: amount(c[3], settled_in, col[3])?,
            payment_time: time(c[5], col[5])?,
            kind,
            remark: c[7].to_owned(),
            secondary_merchant_industry: opt_id(c[8], col[8])?,
            secondary_merchant_name: c[9].to_owned(),
            operator_name: c[10].to_owned(),
            order_scene: opt_id(c[11], col[11])?,
            trans_amount: amount(c[13], priced_in, col[13])?,
            trans_forex_rate: decimal(c[14], col[14])?,
        })
    }

    fn push(&self, out: &mut String) -> Result<(), (&'static str, &'static str)> {
        let col = TRANSACTION_COLUMNS;
        if self.fee.currency() != self.amount.currency() {
            return Err((col[3], "the fee is not in the settlement currency"));
        }
        let mut line = Line { out, first: true };
        line.cell(self.partner_transaction_id.as_str());
        line.cell(self.transaction_id.as_str());
        line.cell(&self.amount.to_string());
        line.cell(&self.fee.to_string());
        line.cell(self.amount.currency().code());
        line.time(self.payment_time, col[5])?;
        line.cell(self.kind.as_str());
        line.text(&self.remark, col[7])?;
        line.cell(self.secondary_merchant_industry.as_ref().map_or("", Mcc::as_str));
        line.text(&self.secondary_merchant_name, col[9])?;
        line.text(&self.operator_name, col[10])?;
        line.cell(self.order_scene.as_ref().map_or("", OrderScene::as_str));
        line.cell(self.trans_amount.currency().code());
        line.cell(&self.trans_amount.to_string());
        line.cell(&self.trans_forex_rate.to_string());
        Ok(())
    }
}

/// `Partner:<PID>|Payment_time: yyyy-MM-dd|Total_count:<n>` (a space after a colon or not).
fn parse_first_line(line: &str) -> Option<TransactionFileHeader> {
    let [partner, day, count] = cells::<3>(line.trim_start_matches('\u{feff}').trim()).ok()?;
    let field = |cell: &str, key: &str| cell.trim().strip_prefix(key).map(|v| v.trim().to_owned());
    let count = field(count, "Total_count:")?;
    if count.is_empty() || !count.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    Some(TransactionFileHeader {
        partner: field(partner, "Partner:")?.parse().ok()?,
        date: times::parse_date(&field(day, "Payment_time:")?)?,
        total_count: count.parse().ok()?,
    })
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Rows,
    Done,
    Failed,
}

/// A transaction file's rows, one at a time; ends with `None` once the rows and `Total_count`
/// agree, or with one `Err`.
pub struct TransactionReader<R> {
    lines: Lines<R>,
    header: TransactionFileHeader,
    rows: u64,
    max_rows: u64,
    state: State,
}

impl<R: Read> TransactionReader<R> {
    /// Reads the first line and the header.
    pub fn new(reader: R, limits: &Limits) -> Result<Self, BillError> {
        let mut lines = Lines::new(reader, limits, Part::Transactions, Encoding::Utf8);
        if !lines.advance()? {
            return Err(lines.error_next(Problem::Truncated("the first line (Partner:…|Payment_time:…|Total_count:…)")));
        }
        let header = parse_first_line(&lines.text).ok_or_else(|| {
            lines.error(Problem::Unexpected("Partner:<PID>|Payment_time: yyyy-MM-dd|Total_count:<n>"))
        })?;
        if !lines.advance()? {
            return Err(lines.error_next(Problem::Truncated("the header row")));
        }
        check_header(&lines.text, &TRANSACTION_COLUMNS).map_err(|p| lines.error(p))?;
        Ok(TransactionReader { lines, header, rows: 0, max_rows: limits.max_rows, state: State::Rows })
    }

    pub fn header(&self) -> &TransactionFileHeader {
        &self.header
    }

    fn next_row(&mut self) -> Result<Option<TransactionRow>, BillError> {
        let more = self.lines.advance()?;
        if !more || self.lines.text.trim().is_empty() {
            if more {
                self.lines.expect_end()?;
            }
            if self.rows != self.header.total_count {
                let problem =
                    Problem::CountMismatch { what: "Total_count", stated: self.header.total_count, counted: self.rows };
                return Err(BillError::Line { part: Part::Transactions, line: 1, problem });
            }
            return Ok(None);
        }
        if self.rows >= self.max_rows.min(self.header.total_count) {
            let problem = if self.rows >= self.max_rows {
                Problem::TooManyRows { limit: self.max_rows }
            } else {
                Problem::CountMismatch { what: "Total_count", stated: self.header.total_count, counted: self.rows + 1 }
            };
            return Err(self.lines.error(problem));
        }
        let row = TransactionRow::parse(&self.lines.text).map_err(|p| self.lines.error(p))?;
        self.rows += 1;
        Ok(Some(row))
    }
}

impl<R: Read> Iterator for TransactionReader<R> {
    type Item = Result<TransactionRow, BillError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.state != State::Rows {
            return None;
        }
        match self.next_row() {
            Ok(Some(row)) => Some(Ok(row)),
            Ok(None) => {
                self.state = State::Done;
                None
            }
            Err(e) => {
                self.state = State::Failed;
                Some(Err(e))
            }
        }
    }
}

/// Writes the transaction file of `partner` for `date` (name it
/// [`transaction_file_name`](super::transaction_file_name)), UTF-8. Returns the rows written.
pub fn write_transaction_file<W, I>(mut out: W, partner: &Partner, date: Date, rows: I) -> Result<u64, WriteError>
where
    W: Write,
    I: IntoIterator,
    I::IntoIter: ExactSizeIterator,
    I::Item: Borrow<TransactionRow>,
{
    let rows = rows.into_iter();
    let promised = rows.len() as u64;
    let mut text = format!("Partner:{partner}|Payment_time: ");
    times::push_date(&mut text, date).ok_or(WriteError::Field {
        row: 0,
        field: "Payment_time",
        reason: "the year is not four digits",
    })?;
    text.push_str(&format!("|Total_count:{promised}\n{}\n", TRANSACTION_COLUMNS.join("|")));
    let mut given = 0u64;
    for row in rows {
        row.borrow().push(&mut text).map_err(|(field, reason)| WriteError::Field { row: given, field, reason })?;
        text.push('\n');
        given += 1;
        flush(&mut out, &mut text, false)?;
    }
    if given != promised {
        return Err(WriteError::Count { promised, given });
    }
    flush(&mut out, &mut text, true)?;
    Ok(given)
}
