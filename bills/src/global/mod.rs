//! Global's files for an in-store MAPI partner (`alipay.acquire.overseas.spot.pay` and family),
//! as an SFTP drop leaves them in the partner's folder: the daily transaction file and the
//! settlement file. `|`-separated text, one record a line.
//!
//! - Transaction file, `<PID>_transaction_<yyyyMMdd>.txt`, produced on T+1 when day T had
//!   transactions: a first line `Partner:<PID>|Payment_time: yyyy-MM-dd|Total_count:<n>`, the
//!   15-column header, then one row per payment, reversal, refund or cancel. The count must match
//!   the rows.
//! - Settlement file, `<PID>_settlement_<yyyyMMdd>.txt`, produced on S+1 for a settlement cycle:
//!   the 21-column header, then one row per settled payment (`P`) or refund (`R`), status `L`.
//!
//! What the notes leave open, and is assumed here:
//! - File names: the in-store QR product's SFTP names (`PID_transaction_YYYYMMDD.txt`,
//!   `PID_settlement_YYYYMMDD.txt`); the barcode pages name none.
//! - Encoding UTF-8 (the English-language docs say none; the samples are ASCII), lines ending
//!   `\n` when written, `\r\n` read too; blank lines only at the end.
//! - Times are Beijing time, like every other time Alipay writes.
//! - Amounts are unsigned, the type giving the direction (the samples show no sign); read with
//!   as many decimals as the currency allows or fewer (samples show `100` and `7.50`), written
//!   with all of them. Rates are kept exactly as written (`5.41940000`).
//! - The settlement file has no count, so a file cut at a line boundary cannot be told from a
//!   whole one; a cut inside a line is refused by its column count or its last cell.
//! - The HK variants (`Secondary_merchant_id`, `Issue`) are not read.

mod settlement;
mod transaction;

use std::io::Write;
use std::str::FromStr;

use alipay::{Amount, Currency, Decimal, InvalidId, Partner};
use time::{Date, OffsetDateTime};

use crate::error::{Problem, WriteError};
use crate::times;

pub use settlement::{SETTLEMENT_COLUMNS, SettlementReader, SettlementRow, SettlementType, write_settlement_file};
pub use transaction::{
    TRANSACTION_COLUMNS, TransactionFileHeader, TransactionReader, TransactionRow, TransactionType,
    write_transaction_file,
};

/// Encoded rows are handed to the output in chunks of about this size.
const CHUNK: usize = 64 * 1024;

fn file_name(partner: &Partner, kind: &str, date: Date) -> Option<String> {
    let mut name = format!("{partner}_{kind}_");
    times::push_compact_date(&mut name, date)?;
    name.push_str(".txt");
    Some(name)
}

/// `<PID>_transaction_<yyyyMMdd>.txt`; `None` if the year does not have four digits.
pub fn transaction_file_name(partner: &Partner, date: Date) -> Option<String> {
    file_name(partner, "transaction", date)
}

/// `<PID>_settlement_<yyyyMMdd>.txt`; `None` if the year does not have four digits.
pub fn settlement_file_name(partner: &Partner, date: Date) -> Option<String> {
    file_name(partner, "settlement", date)
}

/// Splits a line into exactly `N` cells.
fn cells<const N: usize>(line: &str) -> Result<[&str; N], Problem> {
    let mut out = [""; N];
    let mut parts = line.split('|');
    for (i, slot) in out.iter_mut().enumerate() {
        *slot = parts.next().ok_or(Problem::Columns { expected: N, found: i })?;
    }
    if parts.next().is_some() {
        return Err(Problem::Columns { expected: N, found: line.split('|').count() });
    }
    Ok(out)
}

/// Checks a header line against `columns`.
fn check_header<const N: usize>(line: &str, columns: &[&'static str; N]) -> Result<(), Problem> {
    let found = cells::<N>(line.trim_start_matches('\u{feff}'))?;
    for (index, (cell, expected)) in found.iter().zip(columns).enumerate() {
        if cell.trim() != *expected {
            return Err(Problem::Header { index, expected });
        }
    }
    Ok(())
}

fn currency(text: &str, column: &'static str) -> Result<Currency, Problem> {
    text.trim().parse().map_err(|_| Problem::Code { column, value: text.chars().take(8).collect() })
}

fn amount(text: &str, currency: Currency, column: &'static str) -> Result<Amount, Problem> {
    Amount::parse(text.trim(), currency).map_err(|error| Problem::Amount { column, error })
}

fn decimal(text: &str, column: &'static str) -> Result<Decimal, Problem> {
    Decimal::from_str(text.trim()).map_err(|error| Problem::Amount { column, error })
}

fn time(text: &str, column: &'static str) -> Result<OffsetDateTime, Problem> {
    times::parse_datetime(text.trim()).ok_or(Problem::Time { column })
}

fn id<T: FromStr<Err = InvalidId>>(text: &str, column: &'static str) -> Result<T, Problem> {
    text.trim().parse().map_err(|error| Problem::Id { column, error })
}

fn opt_id<T: FromStr<Err = InvalidId>>(text: &str, column: &'static str) -> Result<Option<T>, Problem> {
    if text.trim().is_empty() { Ok(None) } else { id(text, column).map(Some) }
}

/// Free text that can go into a `|` cell and come back the same.
fn is_cell_text(text: &str) -> bool {
    !text.chars().any(|c| c.is_control() || c == '|')
}

/// A row being written: cells joined by `|`, each checked.
struct Line<'a> {
    out: &'a mut String,
    first: bool,
}

impl Line<'_> {
    fn cell(&mut self, text: &str) {
        if !self.first {
            self.out.push('|');
        }
        self.first = false;
        self.out.push_str(text);
    }

    fn text(&mut self, text: &str, column: &'static str) -> Result<(), (&'static str, &'static str)> {
        if !is_cell_text(text) {
            return Err((column, "control characters and '|' cannot be written in a cell"));
        }
        self.cell(text);
        Ok(())
    }

    fn time(&mut self, at: OffsetDateTime, column: &'static str) -> Result<(), (&'static str, &'static str)> {
        let mut text = String::with_capacity(19);
        times::push_datetime(&mut text, at).ok_or((column, "the year is not four digits in Beijing time"))?;
        self.cell(&text);
        Ok(())
    }
}

/// Hands `bytes` to `out` once a chunk has gathered (or at the end, with `last`).
fn flush<W: Write>(out: &mut W, bytes: &mut String, last: bool) -> Result<(), WriteError> {
    if last || bytes.len() >= CHUNK {
        out.write_all(bytes.as_bytes())?;
        bytes.clear();
    }
    Ok(())
}
