//! One row of the detail file (`业务明细`): its 25 columns, read into a [`BillRow`] and written
//! back exactly as Alipay lays them out.

use std::borrow::Cow;
use std::fmt::Write as _;

use alipay::{Amount, Currency, InvalidId, MerchantRef, OutRequestNo, OutTradeNo, TradeNo};
use time::OffsetDateTime;

use crate::csv::{self, Cell};
use crate::error::Problem;
use crate::money::SignedAmount;
use crate::times;

/// The header, as read after normalising full-width parentheses to ASCII. Alipay writes them
/// full-width (`订单金额（元）`); one rendering shows ASCII.
pub(crate) const COLUMNS: [&str; 25] = [
    "支付宝交易号",
    "商户订单号",
    "业务类型",
    "商品名称",
    "创建时间",
    "完成时间",
    "门店编号",
    "门店名称",
    "操作员",
    "终端号",
    "对方账户",
    "订单金额(元)",
    "商家实收(元)",
    "支付宝红包(元)",
    "集分宝(元)",
    "支付宝优惠(元)",
    "商家优惠(元)",
    "券核销金额(元)",
    "券名称",
    "商家红包消费金额(元)",
    "卡消费金额(元)",
    "退款批次号/请求号",
    "服务费(元)",
    "分润(元)",
    "备注",
];

/// The columns Alipay ends with a TAB (its guard against Excel's scientific notation), as in the
/// samples: the IDs, the kind, store and operator, the buyer, and two more.
const TABBED: [bool; 25] = {
    let mut t = [false; 25];
    let mut i = 0;
    while i < 25 {
        t[i] = matches!(i, 0 | 1 | 2 | 6 | 7 | 8 | 9 | 10 | 19 | 21);
        i += 1;
    }
    t
};

/// The row's business type (`业务类型`).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum RowKind {
    /// `交易`: a payment.
    Payment,
    /// `退款`: a refund of the trade the row names, with the merchant's refund request number
    /// (`退款批次号/请求号`; a batch number for refunds made in Alipay's merchant portal).
    Refund { out_request_no: OutRequestNo },
}

/// One row of the detail file. Money is CNY in fen.
///
/// `amount` and `received` are magnitudes: the kind gives their direction (the file writes them
/// negative on refund rows, and a sign against the kind is refused). Every other amount is
/// signed as written: `fee` is negative when charged (`-0.01` on a 1.00 payment).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BillRow {
    /// 支付宝交易号: the payment's, on refund rows too.
    pub trade_no: TradeNo,
    /// 商户订单号: the payment's, on refund rows too.
    pub out_trade_no: OutTradeNo,
    pub kind: RowKind,
    /// 商品名称.
    pub subject: String,
    /// 创建时间: the trade's creation, on refund rows too.
    pub created_at: OffsetDateTime,
    /// 完成时间: the payment, or the refund's completion. Decides the bill's day.
    pub finished_at: OffsetDateTime,
    /// 门店编号.
    pub store_id: Option<MerchantRef>,
    /// 门店名称.
    pub store_name: String,
    /// 操作员.
    pub operator_id: Option<MerchantRef>,
    /// 终端号.
    pub terminal_id: Option<MerchantRef>,
    /// 对方账户: the buyer, masked (`*津水(602***@qq.com)`).
    pub counterparty: String,
    /// 订单金额（元）.
    pub amount: Amount,
    /// 商家实收（元）.
    pub received: Amount,
    /// 支付宝红包（元）.
    pub alipay_red_packet: SignedAmount,
    /// 集分宝（元）.
    pub jifenbao: SignedAmount,
    /// 支付宝优惠（元）.
    pub alipay_discount: SignedAmount,
    /// 商家优惠（元）.
    pub merchant_discount: SignedAmount,
    /// 券核销金额（元）.
    pub voucher_amount: SignedAmount,
    /// 券名称.
    pub voucher_name: String,
    /// 商家红包消费金额（元）.
    pub merchant_red_packet: SignedAmount,
    /// 卡消费金额（元）.
    pub card_amount: SignedAmount,
    /// 服务费（元）: Alipay's fee, negative when charged.
    pub fee: SignedAmount,
    /// 分润（元）.
    pub profit_share: SignedAmount,
    /// 备注.
    pub remark: String,
}

/// A row's [`Figures`], of a [`BillRow`] or a [`BillRowView`] alike.
macro_rules! figures {
    ($row:expr) => {
        Figures {
            refund: $row.is_refund(),
            amount: $row.amount,
            received: $row.received,
            alipay_discount: $row.alipay_discount,
            merchant_discount: $row.merchant_discount,
            card_amount: $row.card_amount,
            fee: $row.fee,
            profit_share: $row.profit_share,
        }
    };
}

impl BillRow {
    /// The refund's request number, on refund rows.
    pub fn out_request_no(&self) -> Option<&OutRequestNo> {
        match &self.kind {
            RowKind::Payment => None,
            RowKind::Refund { out_request_no } => Some(out_request_no),
        }
    }

    pub fn is_refund(&self) -> bool {
        matches!(self.kind, RowKind::Refund { .. })
    }

    /// 订单金额 as the file writes it: negative on refund rows.
    pub fn signed_amount(&self) -> SignedAmount {
        SignedAmount::new(self.amount, self.is_refund())
    }

    /// 商家实收 as the file writes it: negative on refund rows.
    pub fn signed_received(&self) -> SignedAmount {
        SignedAmount::new(self.received, self.is_refund())
    }

    /// What the footer and the summary count of the row.
    pub(crate) fn figures(&self) -> Figures {
        figures!(self)
    }

    /// Appends the row as the file writes it (no line ending). On a value the layout cannot
    /// carry, the column's name and why.
    pub(crate) fn push(&self, out: &mut String) -> Result<(), (&'static str, &'static str)> {
        let money = [
            self.alipay_red_packet,
            self.jifenbao,
            self.alipay_discount,
            self.merchant_discount,
            self.voucher_amount,
            self.merchant_red_packet,
            self.card_amount,
            self.fee,
            self.profit_share,
        ];
        if self.amount.currency() != Currency::CNY
            || self.received.currency() != Currency::CNY
            || money.iter().any(|m| m.currency() != Currency::CNY)
        {
            return Err(("amounts", "bill amounts are CNY"));
        }
        let texts = [
            (3, &self.subject),
            (7, &self.store_name),
            (10, &self.counterparty),
            (18, &self.voucher_name),
            (24, &self.remark),
        ];
        if let Some((i, _)) = texts.iter().find(|(_, text)| !csv::is_cell_text(text)) {
            return Err((COLUMNS[*i], "control characters cannot be written in a cell"));
        }
        let mut line = Line { out, column: 0 };
        line.raw(self.trade_no.as_str());
        line.raw(self.out_trade_no.as_str());
        line.raw(if self.is_refund() { "退款" } else { "交易" });
        line.text(&self.subject);
        line.time(self.created_at)?;
        line.time(self.finished_at)?;
        line.raw(merchant_ref(&self.store_id));
        line.text(&self.store_name);
        line.raw(merchant_ref(&self.operator_id));
        line.raw(merchant_ref(&self.terminal_id));
        line.text(&self.counterparty);
        line.money(self.signed_amount());
        line.money(self.signed_received());
        for value in &money[..5] {
            line.money(*value);
        }
        line.text(&self.voucher_name);
        line.money(self.merchant_red_packet);
        line.money(self.card_amount);
        line.raw(self.out_request_no().map_or("", OutRequestNo::as_str));
        line.money(self.fee);
        line.money(self.profit_share);
        line.text(&self.remark);
        Ok(())
    }
}

/// A row seen in place, in the line it was read from: ids checked but not copied, texts borrowed
/// (unless quoted with `""` inside), every amount and time parsed: all of [`BillRow`]'s checks,
/// nothing allocated. What [`DetailReader::next_view`](crate::DetailReader::next_view) yields to
/// a reader that keeps only part of each row. Fields as [`BillRow`]'s.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BillRowView<'a> {
    pub trade_no: &'a str,
    pub out_trade_no: &'a str,
    /// 退款批次号/请求号 on a refund row; `None` on a payment.
    pub out_request_no: Option<&'a str>,
    pub subject: Cow<'a, str>,
    pub created_at: OffsetDateTime,
    pub finished_at: OffsetDateTime,
    pub store_id: Option<&'a str>,
    pub store_name: Cow<'a, str>,
    pub operator_id: Option<&'a str>,
    pub terminal_id: Option<&'a str>,
    pub counterparty: Cow<'a, str>,
    pub amount: Amount,
    pub received: Amount,
    pub alipay_red_packet: SignedAmount,
    pub jifenbao: SignedAmount,
    pub alipay_discount: SignedAmount,
    pub merchant_discount: SignedAmount,
    pub voucher_amount: SignedAmount,
    pub voucher_name: Cow<'a, str>,
    pub merchant_red_packet: SignedAmount,
    pub card_amount: SignedAmount,
    pub fee: SignedAmount,
    pub profit_share: SignedAmount,
    pub remark: Cow<'a, str>,
}

impl<'a> BillRowView<'a> {
    pub fn is_refund(&self) -> bool {
        self.out_request_no.is_some()
    }

    /// Reads a row from `line`, split into `cells`.
    pub(crate) fn parse(line: &'a str, cells: &[Cell]) -> Result<Self, Problem> {
        if cells.len() != COLUMNS.len() {
            return Err(Problem::Columns { expected: COLUMNS.len(), found: cells.len() });
        }
        let text = |i: usize| cells[i].text(line);
        // Ids, amounts and times are never quoted with `""` inside (a quote is none of their
        // characters), so they are read where they lie, trimmed.
        let raw = |i: usize| trim(cells[i].raw(line));
        let request_no = raw(21);
        let out_request_no = match text(2).trim() {
            "交易" if request_no.is_empty() => None,
            "交易" => return Err(Problem::PaymentWithRequestNo),
            "退款" => match opt_id(request_no, 21, OutRequestNo::check)? {
                Some(no) => Some(no),
                None => return Err(Problem::RefundWithoutRequestNo),
            },
            other => return Err(Problem::Code { column: COLUMNS[2], value: other.chars().take(16).collect() }),
        };
        let refund = out_request_no.is_some();
        let money = |i: usize| signed(raw(i), i);
        let directed = |i: usize| {
            let value = money(i)?;
            if value.is_negative() != refund && !value.is_zero() {
                return Err(Problem::Sign { column: COLUMNS[i] });
            }
            Ok(value.magnitude())
        };
        Ok(BillRowView {
            trade_no: id(raw(0), 0, TradeNo::check)?,
            out_trade_no: id(raw(1), 1, OutTradeNo::check)?,
            out_request_no,
            subject: text(3),
            created_at: time(raw(4), 4)?,
            finished_at: time(raw(5), 5)?,
            store_id: opt_id(raw(6), 6, MerchantRef::check)?,
            store_name: text(7),
            operator_id: opt_id(raw(8), 8, MerchantRef::check)?,
            terminal_id: opt_id(raw(9), 9, MerchantRef::check)?,
            counterparty: text(10),
            amount: directed(11)?,
            received: directed(12)?,
            alipay_red_packet: money(13)?,
            jifenbao: money(14)?,
            alipay_discount: money(15)?,
            merchant_discount: money(16)?,
            voucher_amount: money(17)?,
            voucher_name: text(18),
            merchant_red_packet: money(19)?,
            card_amount: money(20)?,
            fee: money(22)?,
            profit_share: money(23)?,
            remark: text(24),
        })
    }

    /// The owned row.
    pub fn to_row(&self) -> Result<BillRow, Problem> {
        Ok(BillRow {
            trade_no: owned_id(self.trade_no, 0)?,
            out_trade_no: owned_id(self.out_trade_no, 1)?,
            kind: match owned_opt(self.out_request_no, 21)? {
                None => RowKind::Payment,
                Some(out_request_no) => RowKind::Refund { out_request_no },
            },
            subject: self.subject.clone().into_owned(),
            created_at: self.created_at,
            finished_at: self.finished_at,
            store_id: owned_opt(self.store_id, 6)?,
            store_name: self.store_name.clone().into_owned(),
            operator_id: owned_opt(self.operator_id, 8)?,
            terminal_id: owned_opt(self.terminal_id, 9)?,
            counterparty: self.counterparty.clone().into_owned(),
            amount: self.amount,
            received: self.received,
            alipay_red_packet: self.alipay_red_packet,
            jifenbao: self.jifenbao,
            alipay_discount: self.alipay_discount,
            merchant_discount: self.merchant_discount,
            voucher_amount: self.voucher_amount,
            voucher_name: self.voucher_name.clone().into_owned(),
            merchant_red_packet: self.merchant_red_packet,
            card_amount: self.card_amount,
            fee: self.fee,
            profit_share: self.profit_share,
            remark: self.remark.clone().into_owned(),
        })
    }

    /// What the footer and the summary count of the row.
    pub(crate) fn figures(&self) -> Figures {
        figures!(self)
    }
}

/// The amounts of a row the footer and the summary add up, as the row has them.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Figures {
    pub(crate) refund: bool,
    pub(crate) amount: Amount,
    pub(crate) received: Amount,
    pub(crate) alipay_discount: SignedAmount,
    pub(crate) merchant_discount: SignedAmount,
    pub(crate) card_amount: SignedAmount,
    pub(crate) fee: SignedAmount,
    pub(crate) profit_share: SignedAmount,
}

/// A row being written, cell by cell, with Alipay's TABs where its samples have them.
struct Line<'a> {
    out: &'a mut String,
    column: usize,
}

impl Line<'_> {
    fn cell(&mut self, write: impl FnOnce(&mut String)) {
        if self.column > 0 {
            self.out.push(',');
        }
        write(self.out);
        if TABBED.get(self.column).copied().unwrap_or(false) {
            self.out.push('\t');
        }
        self.column += 1;
    }

    fn raw(&mut self, text: &str) {
        self.cell(|out| out.push_str(text));
    }

    fn text(&mut self, text: &str) {
        self.cell(|out| csv::push_text(out, text));
    }

    fn money(&mut self, value: SignedAmount) {
        self.cell(|out| {
            let _ = write!(out, "{value}");
        });
    }

    fn time(&mut self, at: OffsetDateTime) -> Result<(), (&'static str, &'static str)> {
        let column = COLUMNS.get(self.column).copied().unwrap_or("time");
        let mut written = None;
        self.cell(|out| written = times::push_datetime(out, at));
        written.ok_or((column, "the year is not four digits in Beijing time"))
    }
}

fn merchant_ref(value: &Option<MerchantRef>) -> &str {
    value.as_ref().map_or("", MerchantRef::as_str)
}

/// `text` if `check` takes it.
fn id(text: &str, i: usize, check: fn(&str) -> Result<&str, InvalidId>) -> Result<&str, Problem> {
    check(text).map_err(|error| Problem::Id { column: COLUMNS[i], error })
}

fn opt_id(text: &str, i: usize, check: fn(&str) -> Result<&str, InvalidId>) -> Result<Option<&str>, Problem> {
    if text.is_empty() { Ok(None) } else { id(text, i, check).map(Some) }
}

fn owned_id<T: std::str::FromStr<Err = InvalidId>>(text: &str, i: usize) -> Result<T, Problem> {
    text.parse().map_err(|error| Problem::Id { column: COLUMNS[i], error })
}

fn owned_opt<T: std::str::FromStr<Err = InvalidId>>(text: Option<&str>, i: usize) -> Result<Option<T>, Problem> {
    text.map(|text| owned_id(text, i)).transpose()
}

/// `text` without the whitespace around it (a cell's ends are nearly never any: seen at once).
fn trim(text: &str) -> &str {
    match (text.as_bytes().first(), text.as_bytes().last()) {
        (Some(first), Some(last)) if first.is_ascii_graphic() && last.is_ascii_graphic() => text,
        _ => text.trim(),
    }
}

fn signed(text: &str, i: usize) -> Result<SignedAmount, Problem> {
    SignedAmount::parse(text, Currency::CNY).map_err(|error| Problem::Amount { column: COLUMNS[i], error })
}

fn time(text: &str, i: usize) -> Result<OffsetDateTime, Problem> {
    times::parse_datetime(text).ok_or(Problem::Time { column: COLUMNS[i] })
}
