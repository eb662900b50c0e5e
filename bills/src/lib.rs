//! Alipay's bill files and Global's settlement files: read as streams and written exactly.
//!
//! The file layer of reconciliation: the sandbox writes these files from its trade state, the
//! reconciler keeps what it downloads and reads it here. Reading is strict and streaming: a file
//! is read a line at a time through a bounded buffer (memory does not grow with the file), every
//! cell is parsed into its type, and the file's own totals are checked against its rows. A file
//! that fails anywhere ends its rows with one typed error naming the file and the line, and its
//! reader records nothing from it. Nothing panics on any input.
//!
//! Synchronous and I/O-generic (`Read`, `Write`, `Seek`); no network.
//!
//! # Layout
//! - [`trade`]: the OpenAPI trade bill ZIP (`业务明细` and `业务明细(汇总)`, GBK): [`TradeBill`]
//!   streams [`BillRow`]s, [`write_trade_bill`] writes the archive.
//! - [`account`]: the OpenAPI account bill ZIP (`账务明细`, `bill_type=signcustomer`), written by
//!   [`write_account_bill`](account::write_account_bill).
//! - [`global`]: Global's in-store transaction and settlement files (`|`-separated).
//! - [`money`]: [`SignedAmount`] (a signed cell) and [`Total`] (a signed sum), in minor units.
//! - [`ids`]: Global's codes with no `alipay` type ([`PartnerTransactionId`], [`Mcc`], ...).
//! - [`error`]: [`BillError`] (which file, which line, what [`Problem`]) and [`WriteError`].
//! - `lines`: the bounded line reader and strict GBK / UTF-8 decoding.
//! - `csv`: one comma-separated line, Alipay's TABs and RFC 4180 quotes.
//! - `times`: the date and time forms, Beijing time.

pub mod account;
pub mod error;
pub mod global;
pub mod ids;
pub mod money;
pub mod trade;

mod csv;
mod lines;
mod times;

pub use error::{BillError, Part, Problem, WriteError};
pub use ids::{EntryNo, Mcc, OrderScene, PartnerTransactionId};
pub use money::{SignedAmount, Total};
pub use trade::{
    Account, BillHeader, BillPeriod, BillRow, BillRowView, DetailReader, Footer, RowKind, Summary, SummaryLine,
    TradeBill, write_trade_bill,
};

/// Bounds on what a reader takes from a file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// The longest line, in bytes (a real row is 300 to 600).
    pub max_line_bytes: usize,
    /// The most rows in one file.
    pub max_rows: u64,
    /// The most store lines in a summary file.
    pub max_stores: usize,
    /// The most entries in a bill archive.
    pub max_entries: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits { max_line_bytes: 8 * 1024, max_rows: 10_000_000, max_stores: 100_000, max_entries: 16 }
    }
}
