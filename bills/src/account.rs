//! The OpenAPI account bill (`bill_type=signcustomer`, `账务明细`): every movement of the
//! merchant's Alipay balance in a day or a month, with the balance after each. Written only (the
//! sandbox serves it; nothing here reads it yet).
//!
//! Same archive conventions as the trade bill: a ZIP `<PID>0156_<yyyyMMdd>.csv.zip` holding, GBK
//! and under GBK names, `<PID>0156_<yyyyMMdd>_账务明细.csv` and `…_账务明细(汇总).csv`, each framed
//! by the title, account and window comments, start and end markers and the export time.
//!
//! The detail's 12 columns are the observed ones (../shared/reference/bills.md §1.5). What the
//! notes leave open, and is assumed here:
//! - Income is written positive in `收入金额（+元）` with `0.00` in `支出金额（-元）`; an expense
//!   negative in `支出金额（-元）` with `0.00` in `收入金额（+元）`. The balance is signed.
//! - ID-like cells (账务流水号, 业务流水号, 商户订单号, 对方账号) end with a TAB, as in the
//!   trade bill.
//! - The footer: `#收入合计：M笔，共X元`, `#支出合计：N笔，共-Y元`, the export time.
//! - The summary: one line per 业务类型 (in order of first appearance), then `合计`, under
//!   `业务类型,收入笔数,收入金额（+元）,支出笔数,支出金额（-元）`.

use std::borrow::Borrow;
use std::fmt::Write as _;
use std::io::{Seek, Write};

use alipay::{Currency, OutTradeNo, TradeNo};
use time::OffsetDateTime;
use zip::ZipWriter;

use crate::csv;
use crate::error::WriteError;
use crate::ids::EntryNo;
use crate::lines::{encode_gbk, gbk_round_trips};
use crate::money::{SignedAmount, Total};
use crate::times;
use crate::trade::BillHeader;
use crate::trade::frame::{ACCOUNT_DETAIL, ACCOUNT_SUMMARY, push_export};
use crate::trade::summary::push_header;
use crate::trade::write::entry_options;

/// The detail header, parentheses normalised to ASCII (written full-width).
pub const ACCOUNT_COLUMNS: [&str; 12] = [
    "账务流水号",
    "业务流水号",
    "商户订单号",
    "商品名称",
    "发生时间",
    "对方账号",
    "收入金额(+元)",
    "支出金额(-元)",
    "账户余额(元)",
    "交易渠道",
    "业务类型",
    "备注",
];

const SUMMARY_COLUMNS: [&str; 5] = ["业务类型", "收入笔数", "收入金额(+元)", "支出笔数", "支出金额(-元)"];

/// At most this many business types in one summary.
pub const MAX_BUSINESS_TYPES: usize = 64;

/// One balance movement. Money is CNY in fen.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccountRow {
    /// 账务流水号.
    pub entry_no: EntryNo,
    /// 业务流水号: the trade's Alipay number.
    pub business_no: TradeNo,
    /// 商户订单号.
    pub out_trade_no: Option<OutTradeNo>,
    /// 商品名称.
    pub subject: String,
    /// 发生时间.
    pub at: OffsetDateTime,
    /// 对方账号: the buyer, masked.
    pub counterparty: String,
    /// Into the balance (positive) or out of it (negative).
    pub change: SignedAmount,
    /// 账户余额（元）: after the movement.
    pub balance: Total,
    /// 交易渠道.
    pub channel: String,
    /// 业务类型 (`在线支付`, `交易退款`, `收费`, ...).
    pub business_type: String,
    /// 备注.
    pub remark: String,
}

impl AccountRow {
    fn push(&self, out: &mut String) -> Result<(), (&'static str, &'static str)> {
        if self.change.currency() != Currency::CNY || self.balance.currency() != Currency::CNY {
            return Err(("amounts", "account bill amounts are CNY"));
        }
        let texts = [
            ("商品名称", &self.subject),
            ("对方账号", &self.counterparty),
            ("交易渠道", &self.channel),
            ("业务类型", &self.business_type),
            ("备注", &self.remark),
        ];
        if let Some((column, _)) = texts.iter().find(|(_, t)| !csv::is_cell_text(t) || !gbk_round_trips(t)) {
            return Err((column, "control characters, or characters GBK cannot carry"));
        }
        let zero = SignedAmount::zero(Currency::CNY);
        let (income, expense) = if self.change.is_negative() { (zero, self.change) } else { (self.change, zero) };
        let _ = write!(out, "{}\t,{}\t,", self.entry_no, self.business_no);
        out.push_str(self.out_trade_no.as_ref().map_or("", OutTradeNo::as_str));
        out.push_str("\t,");
        csv::push_text(out, &self.subject);
        out.push(',');
        times::push_datetime(out, self.at).ok_or(("发生时间", "the year is not four digits in Beijing time"))?;
        out.push(',');
        csv::push_text(out, &self.counterparty);
        let _ = write!(out, "\t,{income},{expense},{},", self.balance);
        csv::push_text(out, &self.channel);
        out.push(',');
        csv::push_text(out, &self.business_type);
        out.push(',');
        csv::push_text(out, &self.remark);
        out.push('\n');
        Ok(())
    }
}

/// `<PID>0156_<stamp>_账务明细.csv`.
pub fn detail_entry_name(header: &BillHeader) -> String {
    format!("{}_{}_账务明细.csv", header.account, header.period.stamp())
}

/// `<PID>0156_<stamp>_账务明细(汇总).csv`.
pub fn summary_entry_name(header: &BillHeader) -> String {
    format!("{}_{}_账务明细(汇总).csv", header.account, header.period.stamp())
}

/// Counts and sums by business type.
#[derive(Default)]
struct Sums {
    types: Vec<(String, Line)>,
    total: Line,
}

#[derive(Clone, Copy)]
struct Line {
    incomes: u64,
    income: Total,
    expenses: u64,
    expense: Total,
}

impl Default for Line {
    fn default() -> Self {
        Line { incomes: 0, income: Total::zero(Currency::CNY), expenses: 0, expense: Total::zero(Currency::CNY) }
    }
}

impl Line {
    fn add(&mut self, change: SignedAmount) -> Option<()> {
        if change.is_negative() {
            self.expenses += 1;
            self.expense = self.expense.checked_add(change)?;
        } else {
            self.incomes += 1;
            self.income = self.income.checked_add(change)?;
        }
        Some(())
    }
}

impl Sums {
    fn add(&mut self, row: &AccountRow) -> Result<(), WriteError> {
        self.total.add(row.change).ok_or(WriteError::Overflow)?;
        if let Some((_, line)) = self.types.iter_mut().find(|(t, _)| *t == row.business_type) {
            return line.add(row.change).ok_or(WriteError::Overflow);
        }
        if self.types.len() == MAX_BUSINESS_TYPES {
            return Err(WriteError::Field { row: 0, field: "业务类型", reason: "more than 64 business types" });
        }
        let mut line = Line::default();
        line.add(row.change).ok_or(WriteError::Overflow)?;
        self.types.push((row.business_type.clone(), line));
        Ok(())
    }
}

fn gbk(text: &str) -> Result<Vec<u8>, WriteError> {
    encode_gbk(text).map(|b| b.into_owned()).ok_or(WriteError::Field {
        row: 0,
        field: "text",
        reason: "a character GBK cannot write",
    })
}

const EXPORT_YEAR: WriteError =
    WriteError::Field { row: 0, field: "导出时间", reason: "the year is not four digits in Beijing time" };

/// Writes the account bill archive (name it [`BillHeader::archive_name`]) of `rows`, in the order
/// given. Returns `out`.
pub fn write_account_bill<W, I>(
    out: W,
    header: &BillHeader,
    exported_at: OffsetDateTime,
    rows: I,
) -> Result<W, WriteError>
where
    W: Write + Seek,
    I: IntoIterator,
    I::Item: Borrow<AccountRow>,
{
    let mut text = String::new();
    ACCOUNT_DETAIL.push_preamble(&mut text, header);
    push_header(&mut text, &ACCOUNT_COLUMNS);
    let mut sums = Sums::default();
    for (n, row) in rows.into_iter().enumerate() {
        let row = row.borrow();
        row.push(&mut text).map_err(|(field, reason)| WriteError::Field { row: n as u64, field, reason })?;
        sums.add(row)?;
    }
    ACCOUNT_DETAIL.push_end_marker(&mut text);
    let total = sums.total;
    let _ = writeln!(text, "#收入合计：{}笔，共{}元", total.incomes, total.income);
    let _ = writeln!(text, "#支出合计：{}笔，共{}元", total.expenses, total.expense);
    push_export(&mut text, exported_at).ok_or(EXPORT_YEAR)?;

    let mut summary = String::new();
    ACCOUNT_SUMMARY.push_preamble(&mut summary, header);
    push_header(&mut summary, &SUMMARY_COLUMNS);
    for (kind, line) in sums.types.iter().map(|(k, l)| (k.as_str(), l)).chain([("合计", &total)]) {
        csv::push_text(&mut summary, kind);
        let _ = writeln!(summary, ",{},{},{},{}", line.incomes, line.income, line.expenses, line.expense);
    }
    ACCOUNT_SUMMARY.push_end_marker(&mut summary);
    push_export(&mut summary, exported_at).ok_or(EXPORT_YEAR)?;

    let mut zip = ZipWriter::new(out);
    let options = entry_options(exported_at);
    zip.start_file_with_options(options.name(&gbk(&detail_entry_name(header))?))?;
    zip.write_all(&gbk(&text)?)?;
    zip.start_file_with_options(options.name(&gbk(&summary_entry_name(header))?))?;
    zip.write_all(&gbk(&summary)?)?;
    Ok(zip.finish()?)
}
