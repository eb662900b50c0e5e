//! The summary file (`业务明细(汇总)`): one line per store and a final `合计` line, 12 columns.
//!
//! Read whole when the archive opens (it grows with the stores, bounded, not with the trades),
//! checked in itself (the stores add up to `合计`), and kept for the detail rows to be checked
//! against: `合计`'s payment and refund counts, 订单金额, 商家实收 and 服务费.

use std::io::{Read, Write};

use alipay::{Currency, MerchantRef};
use time::OffsetDateTime;

use crate::Limits;
use crate::csv::{self, Cell};
use crate::error::{BillError, Part, Problem, WriteError};
use crate::lines::{Encoding, Lines, MAX_TRAILING_LINES, ascii_punctuation, encode_gbk, gbk_round_trips};
use crate::money::Total;
use crate::trade::frame::{self, SUMMARY, marker_text};
use crate::trade::header::BillHeader;

/// The header, parentheses normalised to ASCII (Alipay writes them full-width).
pub(crate) const SUMMARY_COLUMNS: [&str; 12] = [
    "门店编号",
    "门店名称",
    "交易订单总笔数",
    "退款订单总笔数",
    "订单金额(元)",
    "商家实收(元)",
    "支付宝优惠(元)",
    "商家优惠(元)",
    "卡消费金额(元)",
    "服务费(元)",
    "分润(元)",
    "实收净额(元)",
];

/// The first cell of the final line.
const TOTAL_LABEL: &str = "合计";

/// Counts and sums of one summary line. Amounts are signed (refunds count negative).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SummaryLine {
    /// 交易订单总笔数: payment rows.
    pub payments: u64,
    /// 退款订单总笔数: refund rows.
    pub refunds: u64,
    /// 订单金额（元）.
    pub amount: Total,
    /// 商家实收（元）.
    pub received: Total,
    /// 支付宝优惠（元）.
    pub alipay_discount: Total,
    /// 商家优惠（元）.
    pub merchant_discount: Total,
    /// 卡消费金额（元）.
    pub card: Total,
    /// 服务费（元）: negative when charged.
    pub fee: Total,
    /// 分润（元）.
    pub profit_share: Total,
    /// 实收净额（元）.
    pub net: Total,
}

impl SummaryLine {
    fn amounts(&self) -> [Total; 8] {
        [
            self.amount,
            self.received,
            self.alipay_discount,
            self.merchant_discount,
            self.card,
            self.fee,
            self.profit_share,
            self.net,
        ]
    }

    fn parse(line: &str, cells: &[Cell]) -> Result<Self, Problem> {
        let text = |i: usize| cells[i].text(line);
        let count = |i: usize| {
            let t = text(i);
            let t = t.trim();
            match t.parse::<u64>() {
                Ok(n) if t.bytes().all(|b| b.is_ascii_digit()) => Ok(n),
                _ => Err(Problem::Amount { column: SUMMARY_COLUMNS[i], error: alipay::MoneyError::Malformed }),
            }
        };
        let total = |i: usize| {
            Total::parse(text(i).trim(), Currency::CNY)
                .map_err(|error| Problem::Amount { column: SUMMARY_COLUMNS[i], error })
        };
        Ok(SummaryLine {
            payments: count(2)?,
            refunds: count(3)?,
            amount: total(4)?,
            received: total(5)?,
            alipay_discount: total(6)?,
            merchant_discount: total(7)?,
            card: total(8)?,
            fee: total(9)?,
            profit_share: total(10)?,
            net: total(11)?,
        })
    }

    fn push(&self, out: &mut String) {
        out.push_str(&format!(",{},{}", self.payments, self.refunds));
        for total in self.amounts() {
            out.push_str(&format!(",{total}"));
        }
    }

    /// `self + other`, column by column; `None` on overflow.
    fn checked_add(&self, other: &SummaryLine) -> Option<SummaryLine> {
        Some(SummaryLine {
            payments: self.payments.checked_add(other.payments)?,
            refunds: self.refunds.checked_add(other.refunds)?,
            amount: self.amount.checked_add_total(other.amount)?,
            received: self.received.checked_add_total(other.received)?,
            alipay_discount: self.alipay_discount.checked_add_total(other.alipay_discount)?,
            merchant_discount: self.merchant_discount.checked_add_total(other.merchant_discount)?,
            card: self.card.checked_add_total(other.card)?,
            fee: self.fee.checked_add_total(other.fee)?,
            profit_share: self.profit_share.checked_add_total(other.profit_share)?,
            net: self.net.checked_add_total(other.net)?,
        })
    }

    fn zero() -> Self {
        let zero = Total::zero(Currency::CNY);
        SummaryLine {
            payments: 0,
            refunds: 0,
            amount: zero,
            received: zero,
            alipay_discount: zero,
            merchant_discount: zero,
            card: zero,
            fee: zero,
            profit_share: zero,
            net: zero,
        }
    }

    /// The first column where `stated` differs from `counted`, as a problem.
    pub(crate) fn compare(stated: &SummaryLine, counted: &SummaryLine, columns: &[usize]) -> Result<(), Problem> {
        for &i in columns {
            let what = SUMMARY_COLUMNS.get(i).copied().unwrap_or("?");
            let counts = match i {
                2 => Some((stated.payments, counted.payments)),
                3 => Some((stated.refunds, counted.refunds)),
                _ => None,
            };
            if let Some((stated, counted)) = counts {
                if stated != counted {
                    return Err(Problem::CountMismatch { what, stated, counted });
                }
                continue;
            }
            let index = i.saturating_sub(4);
            if let (Some(&s), Some(&c)) = (stated.amounts().get(index), counted.amounts().get(index))
                && s != c
            {
                return Err(Problem::SumMismatch { what, stated: s, counted: c });
            }
        }
        Ok(())
    }
}

/// One store's line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoreSummary {
    /// 门店编号 (`None`: trades without a store).
    pub store_id: Option<MerchantRef>,
    /// 门店名称.
    pub store_name: String,
    pub totals: SummaryLine,
}

/// The summary file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Summary {
    pub header: BillHeader,
    pub stores: Vec<StoreSummary>,
    /// The `合计` line.
    pub total: SummaryLine,
    pub exported_at: OffsetDateTime,
}

/// A summary as read: with the line of its `合计`, where a disagreeing detail file is reported.
#[derive(Debug, Clone)]
pub(crate) struct ReadSummary {
    pub(crate) summary: Summary,
    pub(crate) total_line: u64,
}

/// Reads and checks a summary file.
pub(crate) fn read_summary<R: Read>(reader: R, limits: &Limits) -> Result<ReadSummary, BillError> {
    let mut lines = Lines::new(reader, limits, Part::Summary, Encoding::Gbk);
    let header = SUMMARY.read_preamble(&mut lines)?;
    if !lines.advance()? {
        return Err(lines.error_next(Problem::Truncated("the header row")));
    }
    check_header(&lines.text, &SUMMARY_COLUMNS).map_err(|p| lines.error(p))?;
    let mut cells = Vec::new();
    let mut stores = Vec::new();
    let mut sum = SummaryLine::zero();
    let mut total: Option<(SummaryLine, u64)> = None;
    loop {
        if !lines.advance()? {
            return Err(lines.error_next(Problem::Truncated("the end marker (业务汇总列表结束)")));
        }
        if lines.text.starts_with('#') {
            if marker_text(&lines.text) == Some(SUMMARY.list_end) {
                break;
            }
            return Err(lines.error(Problem::Unexpected("a summary line or the end marker")));
        }
        if total.is_some() {
            return Err(lines.error(Problem::Unexpected("the end marker after the 合计 line")));
        }
        let line = &lines.text;
        let parsed = csv::split(line, &mut cells).and_then(|()| {
            if cells.len() != SUMMARY_COLUMNS.len() {
                return Err(Problem::Columns { expected: SUMMARY_COLUMNS.len(), found: cells.len() });
            }
            let totals = SummaryLine::parse(line, &cells)?;
            let store_id = cells[0].text(line);
            if store_id.trim() == TOTAL_LABEL {
                return Ok((None, totals));
            }
            let store_id = store_id.trim();
            let store_id = if store_id.is_empty() {
                None
            } else {
                Some(store_id.parse().map_err(|error| Problem::Id { column: SUMMARY_COLUMNS[0], error })?)
            };
            Ok((Some(StoreSummary { store_id, store_name: cells[1].text(line).into_owned(), totals }), totals))
        });
        match parsed.map_err(|p| lines.error(p))? {
            (None, totals) => total = Some((totals, lines.number())),
            (Some(store), totals) => {
                if stores.len() >= limits.max_stores {
                    return Err(lines.error(Problem::TooManyRows { limit: limits.max_stores as u64 }));
                }
                sum = sum.checked_add(&totals).ok_or_else(|| lines.error(Problem::Overflow))?;
                stores.push(store);
            }
        }
    }
    let Some((total, total_line)) = total else {
        return Err(lines.error(Problem::Unexpected("the 合计 line before the end marker")));
    };
    let all_columns: Vec<usize> = (2..SUMMARY_COLUMNS.len()).collect();
    SummaryLine::compare(&total, &sum, &all_columns).map_err(|problem| BillError::Line {
        part: Part::Summary,
        line: total_line,
        problem,
    })?;
    let exported_at = read_export(&mut lines)?;
    Ok(ReadSummary { summary: Summary { header, stores, total, exported_at }, total_line })
}

/// Reads the lines after an end marker up to the end: the export time (required), blank lines
/// and other comments.
pub(crate) fn read_export<R: Read>(lines: &mut Lines<R>) -> Result<OffsetDateTime, BillError> {
    for _ in 0..MAX_TRAILING_LINES {
        if !lines.advance()? {
            return Err(lines.error_next(Problem::Truncated("the export time line (#导出时间)")));
        }
        if let Some(at) = frame::parse_export(&lines.text) {
            let at = at.ok_or_else(|| lines.error(Problem::Time { column: "导出时间" }))?;
            lines.expect_end()?;
            return Ok(at);
        }
        let text = lines.text.trim();
        if !text.is_empty() && !text.starts_with('#') {
            return Err(lines.error(Problem::Unexpected("a footer line")));
        }
    }
    Err(lines.error_next(Problem::Unexpected("the export time line (#导出时间)")))
}

/// Checks a header row against `columns`, full-width parentheses taken as ASCII.
pub(crate) fn check_header(line: &str, columns: &[&'static str]) -> Result<(), Problem> {
    let mut cells = Vec::new();
    csv::split(line, &mut cells)?;
    if cells.len() != columns.len() {
        return Err(Problem::Columns { expected: columns.len(), found: cells.len() });
    }
    for (index, (cell, expected)) in cells.iter().zip(columns).enumerate() {
        if ascii_punctuation(cell.text(line).trim()) != *expected {
            return Err(Problem::Header { index, expected });
        }
    }
    Ok(())
}

/// A header row as Alipay writes it: full-width parentheses.
pub(crate) fn push_header(out: &mut String, columns: &[&str]) {
    let header = columns.join(",").replace('(', "（").replace(')', "）");
    out.push_str(&header);
    out.push('\n');
}

/// Writes `summary` as the summary file, GBK-encoded.
pub fn write_summary<W: Write>(mut out: W, summary: &Summary) -> Result<(), WriteError> {
    let mut text = String::new();
    SUMMARY.push_preamble(&mut text, &summary.header);
    push_header(&mut text, &SUMMARY_COLUMNS);
    for (n, store) in summary.stores.iter().enumerate() {
        if !csv::is_cell_text(&store.store_name) || !gbk_round_trips(&store.store_name) {
            let row = n as u64;
            let reason = "control characters, or characters GBK cannot carry";
            return Err(WriteError::Field { row, field: "门店名称", reason });
        }
        text.push_str(store.store_id.as_ref().map_or("", MerchantRef::as_str));
        text.push_str("\t,");
        csv::push_text(&mut text, &store.store_name);
        text.push('\t');
        store.totals.push(&mut text);
        text.push('\n');
    }
    text.push_str(TOTAL_LABEL);
    text.push(',');
    summary.total.push(&mut text);
    text.push('\n');
    SUMMARY.push_end_marker(&mut text);
    frame::push_export(&mut text, summary.exported_at).ok_or(WriteError::Field {
        row: 0,
        field: "导出时间",
        reason: "the year is not four digits in Beijing time",
    })?;
    let bytes = encode_gbk(&text).ok_or(WriteError::Field {
        row: 0,
        field: "门店名称",
        reason: "a character GBK cannot write",
    })?;
    out.write_all(&bytes)?;
    Ok(())
}
