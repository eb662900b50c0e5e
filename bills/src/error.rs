//! What goes wrong reading or writing a file: always which file, and for content, which line.

use std::fmt;

use alipay::{InvalidId, MoneyError};

use crate::money::Total;

/// Which file (or ZIP entry) an error is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Part {
    /// The trade bill's detail entry, `…_业务明细.csv`.
    Detail,
    /// The trade bill's summary entry, `…_业务明细(汇总).csv`.
    Summary,
    /// Global's daily transaction file, `<PID>_transaction_<yyyyMMdd>.txt`.
    Transactions,
    /// Global's settlement file, `<PID>_settlement_<yyyyMMdd>.txt`.
    Settlements,
}

impl fmt::Display for Part {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Part::Detail => "detail file (业务明细)",
            Part::Summary => "summary file (业务明细(汇总))",
            Part::Transactions => "Global transaction file",
            Part::Settlements => "Global settlement file",
        })
    }
}

/// A file was refused. Whoever reads it records nothing from it.
#[derive(Debug, thiserror::Error)]
pub enum BillError {
    #[error("the bill archive cannot be read: {0}")]
    Archive(#[from] zip::result::ZipError),
    #[error("the bill archive holds {found} entries, more than {limit}")]
    TooManyEntries { found: usize, limit: usize },
    #[error("the bill archive has no {0}")]
    MissingEntry(Part),
    #[error("the bill archive has more than one {0}")]
    DuplicateEntry(Part),
    /// Reading failed below the text: the source, or the ZIP entry (a cut deflate stream, a CRC
    /// that does not match).
    #[error("{part}: reading failed after line {line}: {source}")]
    Io {
        part: Part,
        line: u64,
        #[source]
        source: std::io::Error,
    },
    /// The content is not what the layout says at `line` (1-based, in the decoded file).
    #[error("{part}, line {line}: {problem}")]
    Line { part: Part, line: u64, problem: Problem },
}

impl BillError {
    /// What is wrong with the content, if that is the reason.
    pub fn problem(&self) -> Option<&Problem> {
        match self {
            BillError::Line { problem, .. } => Some(problem),
            _ => None,
        }
    }

    /// The line the error is about, if it is about content.
    pub fn line(&self) -> Option<u64> {
        match self {
            BillError::Line { line, .. } | BillError::Io { line, .. } => Some(*line),
            _ => None,
        }
    }
}

/// What is wrong with a line.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Problem {
    #[error("the line is longer than {limit} bytes")]
    TooLong { limit: usize },
    #[error("the line is not valid {0}")]
    Encoding(&'static str),
    #[error("the file ends before {0}")]
    Truncated(&'static str),
    #[error("expected {0}")]
    Unexpected(&'static str),
    #[error("header column {index} is not {expected}")]
    Header { index: usize, expected: &'static str },
    #[error("{found} columns where the layout has {expected}")]
    Columns { expected: usize, found: usize },
    #[error("a quoted cell is not closed, or text follows its closing quote")]
    Quoting,
    #[error("{column}: {error}")]
    Amount { column: &'static str, error: MoneyError },
    #[error("{column}: the sign disagrees with the row's kind")]
    Sign { column: &'static str },
    #[error("{column}: not a date and time in the file's format")]
    Time { column: &'static str },
    #[error("{column}: {error}")]
    Id { column: &'static str, error: InvalidId },
    #[error("{column}: unknown value {value:?}")]
    Code { column: &'static str, value: String },
    #[error("a refund row has no refund request number (退款批次号/请求号)")]
    RefundWithoutRequestNo,
    #[error("a payment row carries a refund request number (退款批次号/请求号)")]
    PaymentWithRequestNo,
    #[error("the account is not `[<PID>0156]`")]
    Account,
    #[error("the date window is not one Beijing day or month")]
    Window,
    #[error("more than {limit} rows")]
    TooManyRows { limit: u64 },
    #[error("{what}: the file states {stated}, the rows count {counted}")]
    CountMismatch { what: &'static str, stated: u64, counted: u64 },
    #[error("{what}: the file states {stated}, the rows add up to {counted}")]
    SumMismatch { what: &'static str, stated: Total, counted: Total },
    #[error("the sums overflow")]
    Overflow,
    #[error("the account or date window differs from the summary file's")]
    HeaderMismatch,
}

/// A file could not be written; nothing written so far is a valid file.
#[derive(Debug, thiserror::Error)]
pub enum WriteError {
    #[error("writing failed: {0}")]
    Io(#[from] std::io::Error),
    #[error("the bill archive cannot be written: {0}")]
    Archive(#[from] zip::result::ZipError),
    /// Row `row` (0-based, in the order given) has a value the layout cannot carry.
    #[error("row {row}: {field} cannot be written: {reason}")]
    Field { row: u64, field: &'static str, reason: &'static str },
    #[error("more than {limit} stores")]
    TooManyStores { limit: usize },
    #[error("the sums overflow")]
    Overflow,
    #[error("{promised} rows were promised and {given} given")]
    Count { promised: u64, given: u64 },
}
