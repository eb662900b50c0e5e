//! The detail file (`业务明细`) read as a stream: the frame and header checked first, then one
//! [`BillRow`] per line, then the footer checked against what the rows added up to.
//!
//! The footer:
//!
//! ```text
//! #交易合计：6笔，商家实收共0.06元，商家优惠共0.00元
//! #退款合计：4笔，商家实收退款共-0.04元，商家优惠退款共0.00元
//! #导出时间：[2019年09月17日 05:46:49]
//! ```
//!
//! The refund line may be missing when there are no refunds; then there must be none.

use std::io::Read;

use alipay::Currency;
use time::OffsetDateTime;

use crate::Limits;
use crate::csv::{self, Cell};
use crate::error::{BillError, Part, Problem};
use crate::lines::{Encoding, Lines, MAX_TRAILING_LINES, ascii_punctuation};
use crate::money::Total;
use crate::trade::frame::{self, DETAIL, marker_text};
use crate::trade::header::BillHeader;
use crate::trade::row::{BillRow, BillRowView, COLUMNS};
use crate::trade::summary::{SummaryLine, check_header};
use crate::trade::tally::Tally;

/// What the detail file's footer states.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Footer {
    /// `#交易合计：N笔`: payment rows.
    pub payments: u64,
    /// `商家实收共X元`: 商家实收 over payment rows.
    pub payments_received: Total,
    /// `商家优惠共Y元`: 商家优惠 over payment rows.
    pub payments_merchant_discount: Total,
    /// `#退款合计：M笔` (0 when the line is missing): refund rows.
    pub refunds: u64,
    /// `商家实收退款共-Z元`: 商家实收 over refund rows (negative).
    pub refunds_received: Total,
    /// `商家优惠退款共W元`: 商家优惠 over refund rows.
    pub refunds_merchant_discount: Total,
    /// `#导出时间`.
    pub exported_at: OffsetDateTime,
}

impl Footer {
    pub(crate) fn from_tally(tally: &Tally, exported_at: OffsetDateTime) -> Self {
        let total = |minor| Total::from_minor(minor, Currency::CNY);
        Footer {
            payments: tally.payments,
            payments_received: total(tally.payments_received),
            payments_merchant_discount: total(tally.payments_merchant_discount),
            refunds: tally.refunds,
            refunds_received: total(tally.refunds_received),
            refunds_merchant_discount: total(tally.refunds_merchant_discount),
            exported_at,
        }
    }

    /// Appends the footer lines; the refund line only when there are refunds.
    pub(crate) fn push(&self, out: &mut String) -> Option<()> {
        out.push_str(&format!(
            "#交易合计：{}笔，商家实收共{}元，商家优惠共{}元\n",
            self.payments, self.payments_received, self.payments_merchant_discount
        ));
        if self.refunds > 0 {
            out.push_str(&format!(
                "#退款合计：{}笔，商家实收退款共{}元，商家优惠退款共{}元\n",
                self.refunds, self.refunds_received, self.refunds_merchant_discount
            ));
        }
        frame::push_export(out, self.exported_at)
    }
}

/// A totals line's count and two sums, after its prefix: `6笔,商家实收共0.06元,商家优惠共0.00元`.
fn parse_totals(rest: &str, received: &str, discount: &str) -> Option<(u64, Total, Total)> {
    let mut parts = rest.split(',');
    let count = parts.next()?.trim().strip_suffix('笔')?;
    if count.is_empty() || !count.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let sum = |part: Option<&str>, label: &str| {
        let value = part?.trim().strip_prefix(label)?.strip_suffix('元')?;
        Total::parse(value, Currency::CNY).ok()
    };
    let totals = (count.parse().ok()?, sum(parts.next(), received)?, sum(parts.next(), discount)?);
    parts.next().is_none().then_some(totals)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Rows,
    Done,
    Failed,
}

/// The detail file's rows, one at a time. Ends with `None` once the end marker and a footer that
/// agrees have been read, or with one `Err` (the file is refused; record nothing from it).
pub struct DetailReader<R> {
    lines: Lines<R>,
    cells: Vec<Cell>,
    header: BillHeader,
    tally: Tally,
    max_rows: u64,
    /// The summary's `合计` and its line, to check the rows against.
    expected: Option<(SummaryLine, u64)>,
    footer: Option<Footer>,
    state: State,
}

impl<R: Read> DetailReader<R> {
    /// Reads up to the header row: the title, account, window and start marker, and the 25
    /// columns.
    pub fn new(reader: R, limits: &Limits) -> Result<Self, BillError> {
        let mut lines = Lines::new(reader, limits, Part::Detail, Encoding::Gbk);
        let header = DETAIL.read_preamble(&mut lines)?;
        if !lines.advance()? {
            return Err(lines.error_next(Problem::Truncated("the header row")));
        }
        check_header(&lines.text, &COLUMNS).map_err(|p| lines.error(p))?;
        Ok(DetailReader {
            lines,
            cells: Vec::with_capacity(COLUMNS.len()),
            header,
            tally: Tally::default(),
            max_rows: limits.max_rows,
            expected: None,
            footer: None,
            state: State::Rows,
        })
    }

    /// The account and window the comment lines state.
    pub fn header(&self) -> &BillHeader {
        &self.header
    }

    /// The footer, once every row has been read and the totals agree.
    pub fn footer(&self) -> Option<&Footer> {
        self.footer.as_ref()
    }

    pub(crate) fn expect_summary(&mut self, total: SummaryLine, line: u64) {
        self.expected = Some((total, line));
    }

    /// The next row, seen in place in the line just read (nothing allocated); `None` once the
    /// end marker and a footer that agrees have been read, or after an error.
    pub fn next_view(&mut self) -> Option<Result<BillRowView<'_>, BillError>> {
        if self.state != State::Rows {
            return None;
        }
        match self.next_line() {
            Ok(true) => {}
            Ok(false) => {
                self.state = State::Done;
                return None;
            }
            Err(e) => {
                self.state = State::Failed;
                return Some(Err(e));
            }
        }
        let row = BillRowView::parse(&self.lines.text, &self.cells).map_err(|p| self.lines.error(p)).and_then(|row| {
            self.tally.add(&row.figures()).map(|()| row).ok_or_else(|| self.lines.error(Problem::Overflow))
        });
        if row.is_err() {
            self.state = State::Failed;
        }
        Some(row)
    }

    /// Reads the next line and splits a row's cells; `false` at the end marker (the footer read
    /// and checked).
    fn next_line(&mut self) -> Result<bool, BillError> {
        if !self.lines.advance()? {
            return Err(self.lines.error_next(Problem::Truncated("the end marker (业务明细列表结束)")));
        }
        let line = &self.lines.text;
        if line.starts_with('#') {
            if marker_text(line) == Some(DETAIL.list_end) {
                self.finish()?;
                return Ok(false);
            }
            return Err(self.lines.error(Problem::Unexpected("a row or the end marker")));
        }
        if self.tally.payments.saturating_add(self.tally.refunds) >= self.max_rows {
            return Err(self.lines.error(Problem::TooManyRows { limit: self.max_rows }));
        }
        csv::split(line, &mut self.cells).map_err(|p| self.lines.error(p))?;
        Ok(true)
    }

    /// Reads the footer and checks it, and the summary's `合计`, against the rows.
    fn finish(&mut self) -> Result<(), BillError> {
        let mut trade = None;
        let mut refund = None;
        let mut exported_at = None;
        let mut ended = false;
        for _ in 0..MAX_TRAILING_LINES {
            if !self.lines.advance()? {
                ended = true;
                break;
            }
            let text = ascii_punctuation(self.lines.text.trim());
            let number = self.lines.number();
            if let Some(rest) = text.strip_prefix("#交易合计:") {
                let totals =
                    parse_totals(rest, "商家实收共", "商家优惠共").filter(|_| trade.is_none()).ok_or_else(|| {
                        self.lines.error(Problem::Unexpected("#交易合计：N笔，商家实收共X元，商家优惠共Y元"))
                    })?;
                trade = Some((totals, number));
            } else if let Some(rest) = text.strip_prefix("#退款合计:") {
                let totals = parse_totals(rest, "商家实收退款共", "商家优惠退款共")
                    .filter(|_| refund.is_none())
                    .ok_or_else(|| {
                        self.lines.error(Problem::Unexpected("#退款合计：M笔，商家实收退款共-Z元，商家优惠退款共W元"))
                    })?;
                refund = Some((totals, number));
            } else if let Some(at) = frame::parse_export(&text) {
                exported_at = Some(at.ok_or_else(|| self.lines.error(Problem::Time { column: "导出时间" }))?);
                self.lines.expect_end()?;
                ended = true;
                break;
            } else if !text.is_empty() && !text.starts_with('#') {
                return Err(self.lines.error(Problem::Unexpected("a footer line")));
            }
        }
        if !ended {
            return Err(self.lines.error_next(Problem::Unexpected("the end of the footer")));
        }
        let Some(((payments, payments_received, payments_merchant_discount), trade_line)) = trade else {
            return Err(self.lines.error_next(Problem::Truncated("the totals line (#交易合计)")));
        };
        let Some(exported_at) = exported_at else {
            return Err(self.lines.error_next(Problem::Truncated("the export time line (#导出时间)")));
        };
        let zero = Total::zero(Currency::CNY);
        let ((refunds, refunds_received, refunds_merchant_discount), refund_line) =
            refund.unwrap_or(((0, zero, zero), trade_line));
        let stated = Footer {
            payments,
            payments_received,
            payments_merchant_discount,
            refunds,
            refunds_received,
            refunds_merchant_discount,
            exported_at,
        };
        let counted = Footer::from_tally(&self.tally, exported_at);
        let at = |line: u64| move |problem| BillError::Line { part: Part::Detail, line, problem };
        compare_footer(&stated, &counted, false).map_err(at(trade_line))?;
        compare_footer(&stated, &counted, true).map_err(at(refund_line))?;
        if let Some((total, line)) = &self.expected {
            let counted = self.tally.summary_line().ok_or_else(|| self.lines.error(Problem::Overflow))?;
            // 交易/退款笔数, 订单金额, 商家实收, 服务费.
            SummaryLine::compare(total, &counted, &[2, 3, 4, 5, 9]).map_err(|problem| BillError::Line {
                part: Part::Summary,
                line: *line,
                problem,
            })?;
        }
        self.footer = Some(stated);
        Ok(())
    }
}

/// The payment line's (or the refund line's) three figures.
fn compare_footer(stated: &Footer, counted: &Footer, refunds: bool) -> Result<(), Problem> {
    let (label, count, sums) = if refunds {
        (
            "#退款合计",
            (stated.refunds, counted.refunds),
            [
                ("#退款合计 商家实收退款", stated.refunds_received, counted.refunds_received),
                ("#退款合计 商家优惠退款", stated.refunds_merchant_discount, counted.refunds_merchant_discount),
            ],
        )
    } else {
        (
            "#交易合计",
            (stated.payments, counted.payments),
            [
                ("#交易合计 商家实收", stated.payments_received, counted.payments_received),
                ("#交易合计 商家优惠", stated.payments_merchant_discount, counted.payments_merchant_discount),
            ],
        )
    };
    if count.0 != count.1 {
        return Err(Problem::CountMismatch { what: label, stated: count.0, counted: count.1 });
    }
    for (what, stated, counted) in sums {
        if stated != counted {
            return Err(Problem::SumMismatch { what, stated, counted });
        }
    }
    Ok(())
}

impl<R: Read> Iterator for DetailReader<R> {
    type Item = Result<BillRow, BillError>;

    fn next(&mut self) -> Option<Self::Item> {
        let row = match self.next_view()? {
            Ok(view) => view.to_row(),
            Err(e) => return Some(Err(e)),
        };
        Some(row.map_err(|problem| {
            self.state = State::Failed;
            self.lines.error(problem)
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn totals_lines_read_in_either_punctuation() {
        assert_eq!(
            parse_totals("6笔,商家实收共0.06元,商家优惠共0.00元", "商家实收共", "商家优惠共"),
            Some((6, Total::from_minor(6, Currency::CNY), Total::zero(Currency::CNY)))
        );
        let refund = parse_totals("4笔,商家实收退款共-0.04元,商家优惠退款共0.00元", "商家实收退款共", "商家优惠退款共");
        assert_eq!(refund.map(|r| r.1.minor()), Some(-4));
        assert_eq!(parse_totals("x笔,商家实收共0.06元,商家优惠共0.00元", "商家实收共", "商家优惠共"), None);
        assert_eq!(parse_totals("6笔,商家实收共0.06元", "商家实收共", "商家优惠共"), None);
        assert_eq!(parse_totals("6笔,商家实收共0.06元,商家优惠共0.00元,x", "商家实收共", "商家优惠共"), None);
    }
}
