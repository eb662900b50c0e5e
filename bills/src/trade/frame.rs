//! The lines around the rows, shared by the detail and the summary file: the title, the account
//! and date-window comments, the start and end markers (matched by their text, never by their
//! dashes), and the export time.
//!
//! ```text
//! #支付宝业务明细查询
//! #账号：[20880211096256330156]
//! #起始日期：[2019年09月16日 00:00:00]   终止日期：[2019年09月17日 00:00:00]
//! #-----------------------------------------业务明细列表----------------------------------------
//! …header and rows…
//! #-----------------------------------------业务明细列表结束------------------------------------
//! …footer…
//! #导出时间：[2019年09月17日 05:46:49]
//! ```

use std::io::Read;

use time::OffsetDateTime;

use crate::error::{BillError, Problem};
use crate::lines::{Lines, ascii_punctuation};
use crate::times;
use crate::trade::header::{BillHeader, BillPeriod};

/// At most this many comment lines between a title and its start marker.
const MAX_PREAMBLE_LINES: usize = 16;

/// One of the two files' frames: its title and marker texts, and the dashes Alipay writes.
pub(crate) struct Frame {
    pub(crate) title: &'static str,
    pub(crate) list: &'static str,
    pub(crate) list_end: &'static str,
    /// Dashes before and after the start marker's text, then the end marker's (dax-pay's
    /// literals); only for writing.
    dashes: [usize; 4],
}

pub(crate) const DETAIL: Frame = Frame {
    title: "#支付宝业务明细查询",
    list: "业务明细列表",
    list_end: "业务明细列表结束",
    dashes: [41, 40, 41, 36],
};

pub(crate) const SUMMARY: Frame = Frame {
    title: "#支付宝业务汇总查询",
    list: "业务汇总列表",
    list_end: "业务汇总列表结束",
    dashes: [41, 40, 40, 37],
};

/// The account bill's detail file (`账务明细`, `bill_type=signcustomer`).
pub(crate) const ACCOUNT_DETAIL: Frame = Frame {
    title: "#支付宝账务明细查询",
    list: "账务明细列表",
    list_end: "账务明细列表结束",
    dashes: [41, 40, 41, 36],
};

/// The account bill's summary file (`账务明细(汇总)`).
pub(crate) const ACCOUNT_SUMMARY: Frame = Frame {
    title: "#支付宝账务汇总查询",
    list: "账务汇总列表",
    list_end: "账务汇总列表结束",
    dashes: [41, 40, 40, 37],
};

/// The text of a marker line (`#---…业务明细列表…---`), if `line` is a comment.
pub(crate) fn marker_text(line: &str) -> Option<&str> {
    Some(line.trim().strip_prefix('#')?.trim_matches('-').trim())
}

impl Frame {
    /// Reads the title, the comment lines and the start marker; the header the comments state.
    pub(crate) fn read_preamble<R: Read>(&self, lines: &mut Lines<R>) -> Result<BillHeader, BillError> {
        if !lines.advance()? {
            return Err(lines.error_next(Problem::Truncated("the title line")));
        }
        if lines.text.trim().trim_start_matches('\u{feff}') != self.title {
            return Err(lines.error(Problem::Unexpected(self.title)));
        }
        let (mut account, mut period) = (None, None);
        for _ in 0..MAX_PREAMBLE_LINES {
            if !lines.advance()? {
                return Err(lines.error_next(Problem::Truncated("the start marker")));
            }
            if marker_text(&lines.text) == Some(self.list) {
                let account = account.ok_or_else(|| lines.error(Problem::Account))?;
                let period = period.ok_or_else(|| lines.error(Problem::Window))?;
                return Ok(BillHeader { account, period });
            }
            let text = ascii_punctuation(lines.text.trim());
            if let Some(rest) = text.strip_prefix("#账号:") {
                let value = bracketed(rest.trim()).and_then(|v| v.parse().ok());
                account = Some(value.ok_or_else(|| lines.error(Problem::Account))?);
            } else if let Some(rest) = text.strip_prefix("#起始日期:") {
                period = Some(parse_window(rest).ok_or_else(|| lines.error(Problem::Window))?);
            } else if !text.starts_with('#') {
                return Err(lines.error(Problem::Unexpected("a comment line or the start marker")));
            }
        }
        Err(lines.error_next(Problem::Unexpected("the start marker")))
    }

    pub(crate) fn push_preamble(&self, out: &mut String, header: &BillHeader) {
        out.push_str(self.title);
        out.push_str("\n#账号：[");
        out.push_str(&header.account.to_string());
        out.push_str("]\n#起始日期：[");
        // Periods are within years 0..=9999, so these write.
        let _ = times::push_cn_datetime(out, header.period.starts_at());
        out.push_str("]   终止日期：[");
        let _ = times::push_cn_datetime(out, header.period.ends_at());
        out.push_str("]\n");
        push_marker(out, self.list, self.dashes[0], self.dashes[1]);
    }

    pub(crate) fn push_end_marker(&self, out: &mut String) {
        push_marker(out, self.list_end, self.dashes[2], self.dashes[3]);
    }
}

fn push_marker(out: &mut String, text: &str, left: usize, right: usize) {
    out.push('#');
    out.extend(std::iter::repeat_n('-', left));
    out.push_str(text);
    out.extend(std::iter::repeat_n('-', right));
    out.push('\n');
}

fn bracketed(text: &str) -> Option<&str> {
    text.strip_prefix('[')?.strip_suffix(']')
}

/// `[yyyy年MM月dd日 HH:mm:ss]   终止日期:[…]` (after `#起始日期:`), full-width colons made ASCII.
fn parse_window(rest: &str) -> Option<BillPeriod> {
    let (start, rest) = rest.trim_start().strip_prefix('[')?.split_once(']')?;
    let end = bracketed(rest.trim().strip_prefix("终止日期:")?.trim())?;
    BillPeriod::from_window(times::parse_cn_datetime(start)?, times::parse_cn_datetime(end)?)
}

/// The export time line, `#导出时间：[yyyy年MM月dd日 HH:mm:ss]`, if `line` is one: `Some(None)`
/// if it is but the time does not read.
pub(crate) fn parse_export(line: &str) -> Option<Option<OffsetDateTime>> {
    let text = ascii_punctuation(line.trim());
    let rest = text.strip_prefix("#导出时间:")?;
    Some(bracketed(rest.trim()).and_then(times::parse_cn_datetime))
}

/// Appends the export time line; `None` if its year does not have four digits.
pub(crate) fn push_export(out: &mut String, at: OffsetDateTime) -> Option<()> {
    out.push_str("#导出时间：[");
    times::push_cn_datetime(out, at)?;
    out.push_str("]\n");
    Some(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn markers_match_by_text_whatever_the_dashes() {
        assert_eq!(marker_text("#-----业务明细列表-----"), Some("业务明细列表"));
        assert_eq!(marker_text("#---------业务明细列表结束---"), Some("业务明细列表结束"));
        assert_eq!(marker_text("#业务明细列表"), Some("业务明细列表"));
        assert_eq!(marker_text("支付宝交易号,商户订单号"), None);
        let mut out = String::new();
        push_marker(&mut out, "业务明细列表", 41, 40);
        assert_eq!(out.chars().filter(|&c| c == '-').count(), 81);
    }

    #[test]
    fn windows_read_with_any_spacing() {
        assert!(parse_window("[2019年09月16日 00:00:00]   终止日期:[2019年09月17日 00:00:00]").is_some());
        assert!(parse_window("[2019年09月16日 00:00:00]终止日期:[2019年09月17日 00:00:00]").is_some());
        assert!(parse_window("[2019年09月16日 00:00:00]   终止日期:[2019年09月18日 00:00:00]").is_none());
        assert_eq!(parse_export("#导出时间：[2019年09月17日 05:46:49]").map(|t| t.is_some()), Some(true));
        assert_eq!(parse_export("#导出时间：[yesterday]"), Some(None));
        assert_eq!(parse_export("#交易合计：0笔"), None);
    }
}
