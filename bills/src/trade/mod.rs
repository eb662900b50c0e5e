//! The OpenAPI trade bill (`alipay.data.dataservice.bill.downloadurl.query`, `bill_type=trade`):
//! a ZIP named `<PID>0156_<yyyyMMdd>.csv.zip` holding, GBK-encoded and under GBK names, the
//! detail file (`…_业务明细.csv`: comment lines, start marker, 25-column header, one row per
//! payment and per refund, end marker, totals footer, export time) and the summary file
//! (`…_业务明细(汇总).csv`: one line per store and `合计`). Monthly bills (`_<yyyyMM>`) share the
//! layout.
//!
//! Reading ([`TradeBill`]) never holds more than a line of the detail file: it streams from the
//! ZIP entry through a bounded line reader and yields [`BillRow`]s, then checks the end marker,
//! the footer's counts and sums, and the summary's `合计` against what it read. Anything else
//! (a truncated entry, a total that disagrees, a malformed cell, a line past the bound) ends the
//! rows with one [`BillError`](crate::BillError) naming the file and line.
//!
//! Writing ([`write_trade_bill`]) lays out given rows exactly so, for the sandbox and tests.
//!
//! What the research notes leave open, and is assumed here:
//! - Rows end `\n` when written; `\r\n` is read too. Lines are at most
//!   [`Limits::max_line_bytes`](crate::Limits) long.
//! - Cells are never quoted in the samples; a text holding a comma or a quote is written quoted
//!   (RFC 4180) and read back so. The TAB Alipay puts before some commas is written where the
//!   sample has it (columns 0–2, 6–10, 19, 21) and stripped from any cell when read.
//! - 商户订单号 and, on refund rows, 退款批次号/请求号 are required (the trade bill covers API
//!   trades); a payment row with a refund request number is refused.
//! - The footer's `#退款合计` line is written only when there are refunds.
//! - The summary: the same comment lines and an export time as the detail file; store lines
//!   `门店编号\t,门店名称\t,…`, then `合计,,…`; 实收净额 = 商家实收 + 服务费. Its store lines must add
//!   up to `合计`; of `合计`, only the counts, 订单金额, 商家实收 and 服务费 are checked against
//!   the detail rows (what 支付宝优惠 and the rest sum is not documented).
//! - Entry names are matched by their ending, whatever precedes it; other entries (a
//!   `财务明细` pair, say) are ignored.

mod archive;
mod detail;
pub(crate) mod frame;
mod header;
mod row;
pub(crate) mod summary;
mod tally;
pub(crate) mod write;

pub use archive::{Rows, TradeBill};
pub use detail::{DetailReader, Footer};
pub use header::{Account, BillHeader, BillPeriod, InvalidAccount};
pub use row::{BillRow, BillRowView, RowKind};
pub use summary::{StoreSummary, Summary, SummaryLine, write_summary};
pub use write::{MAX_STORES, write_detail, write_trade_bill};
