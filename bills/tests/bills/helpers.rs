//! Rows, bills and hand-built archives for the tests.

use std::io::{Cursor, Write};

use alipay::time_text::BEIJING;
use alipay::{Amount, Currency};
use bills::trade::{BillRow, Footer, RowKind, Summary, write_detail, write_summary};
use bills::{BillError, BillHeader, BillPeriod, SignedAmount, TradeBill, write_trade_bill};
use encoding_rs::GBK;
use time::OffsetDateTime;
use time::macros::{date, datetime};
use zip::ZipWriter;
use zip::write::SimpleFileOptions;

pub const CNY: Currency = Currency::CNY;

pub fn header() -> BillHeader {
    BillHeader {
        account: "20880211096256330156".parse().unwrap(),
        period: BillPeriod::day(date!(2026 - 03 - 14)).unwrap(),
    }
}

pub fn exported_at() -> OffsetDateTime {
    datetime!(2026-03-15 05:46:49).assume_offset(BEIJING)
}

pub fn fen(minor: u64) -> Amount {
    Amount::from_minor(minor, CNY).unwrap()
}

pub fn zero() -> SignedAmount {
    SignedAmount::zero(CNY)
}

/// A payment of `minor` fen, 0.6% fee (rounded), at `store`.
pub fn payment(n: u32, minor: u64, store: Option<&str>) -> BillRow {
    let at = datetime!(2026-03-14 10:00:00).assume_offset(BEIJING) + time::Duration::minutes(i64::from(n));
    BillRow {
        trade_no: format!("2026031422001458860{n:09}").parse().unwrap(),
        out_trade_no: format!("POS-{n}").parse().unwrap(),
        kind: RowKind::Payment,
        subject: format!("牛肉面 #{n}"),
        created_at: at,
        finished_at: at + time::Duration::seconds(7),
        store_id: store.map(|s| s.parse().unwrap()),
        store_name: store.map_or(String::new(), |s| format!("{s} 店")),
        operator_id: Some("alipay".parse().unwrap()),
        terminal_id: None,
        counterparty: "*津水(602***@qq.com)".to_owned(),
        amount: fen(minor),
        received: fen(minor),
        alipay_red_packet: zero(),
        jifenbao: zero(),
        alipay_discount: zero(),
        merchant_discount: zero(),
        voucher_amount: zero(),
        voucher_name: String::new(),
        merchant_red_packet: zero(),
        card_amount: zero(),
        fee: SignedAmount::negative(fen((minor * 6).div_ceil(1000))),
        profit_share: zero(),
        remark: String::new(),
    }
}

/// A refund of `minor` fen of `paid`, request `REF-<k>`.
pub fn refund(paid: &BillRow, k: u32, minor: u64) -> BillRow {
    BillRow {
        kind: RowKind::Refund { out_request_no: format!("REF-{k}").parse().unwrap() },
        finished_at: paid.finished_at + time::Duration::hours(2),
        amount: fen(minor),
        received: fen(minor),
        fee: SignedAmount::positive(fen((minor * 6) / 1000)),
        ..paid.clone()
    }
}

/// A day: payments at two stores and none, a partial refund, a full refund, a second partial
/// refund of the same payment, texts with commas and quotes.
pub fn day_rows() -> Vec<BillRow> {
    let mut rows = Vec::new();
    for n in 0..12 {
        let store = match n % 3 {
            0 => Some("SH-001"),
            1 => Some("SH-002"),
            _ => None,
        };
        rows.push(payment(n, 1_000 + u64::from(n) * 137, store));
    }
    rows[4].subject = "Combo, \"large\"".to_owned();
    rows[5].remark = "备注，全角（括号）".to_owned();
    rows[6].merchant_discount = SignedAmount::positive(fen(50));
    rows[6].received = fen(rows[6].amount.minor() - 50);
    rows.push(refund(&rows[0].clone(), 1, 300));
    rows.push(refund(&rows[1].clone(), 2, rows[1].amount.minor()));
    rows.push(refund(&rows[0].clone(), 3, 200));
    rows
}

pub fn bill_zip(rows: &[BillRow]) -> Vec<u8> {
    write_trade_bill(Cursor::new(Vec::new()), &header(), exported_at(), rows).unwrap().into_inner()
}

/// The detail and summary entries' bytes.
pub fn entries(rows: &[BillRow]) -> (Vec<u8>, Vec<u8>) {
    let mut detail = Vec::new();
    let summary = write_detail(&mut detail, &header(), exported_at(), rows).unwrap();
    (detail, summary_bytes(&summary))
}

pub fn summary_bytes(summary: &Summary) -> Vec<u8> {
    let mut bytes = Vec::new();
    write_summary(&mut bytes, summary).unwrap();
    bytes
}

/// An entry for [`zip_of`]: its name as raw bytes or as UTF-8 (which the zip crate flags).
pub enum Name {
    Gbk(&'static str),
    Utf8(&'static str),
}

pub fn zip_of(entries: &[(Name, &[u8])]) -> Vec<u8> {
    let mut zip = ZipWriter::new(Cursor::new(Vec::new()));
    for (name, content) in entries {
        match name {
            Name::Gbk(name) => {
                let (raw, _, _) = GBK.encode(name);
                zip.start_file_with_options(SimpleFileOptions::default().name(&raw)).unwrap();
            }
            Name::Utf8(name) => zip.start_file(*name, SimpleFileOptions::default()).unwrap(),
        }
        zip.write_all(content).unwrap();
    }
    zip.finish().unwrap().into_inner()
}

pub const DETAIL_NAME: &str = "20880211096256330156_20260314_业务明细.csv";
pub const SUMMARY_NAME: &str = "20880211096256330156_20260314_业务明细(汇总).csv";

/// The archive of these entry contents under Alipay's names.
pub fn zip_with(detail: &[u8], summary: &[u8]) -> Vec<u8> {
    zip_of(&[(Name::Gbk(DETAIL_NAME), detail), (Name::Gbk(SUMMARY_NAME), summary)])
}

/// Everything a bill yields, or the error that ended it; also checks that nothing follows it.
pub fn read(zip: &[u8]) -> Result<(Vec<BillRow>, Footer, Summary), BillError> {
    let mut bill = TradeBill::open(Cursor::new(zip))?;
    let summary = bill.summary().clone();
    let mut rows = bill.rows()?;
    let mut read = Vec::new();
    while let Some(row) = rows.next() {
        match row {
            Ok(row) => read.push(row),
            Err(e) => {
                assert!(rows.next().is_none(), "the rows end with the error");
                assert!(rows.footer().is_none());
                return Err(e);
            }
        }
    }
    let footer = *rows.footer().expect("a footer once the rows end");
    Ok((read, footer, summary))
}

/// GBK bytes decoded, edited as text, encoded again.
pub fn edit_gbk(bytes: &[u8], edit: impl FnOnce(String) -> String) -> Vec<u8> {
    let (text, _, bad) = GBK.decode(bytes);
    assert!(!bad);
    let edited = edit(text.into_owned());
    let (out, _, bad) = GBK.encode(&edited);
    assert!(!bad);
    out.into_owned()
}

/// The text up to and excluding the first line that contains `needle`.
pub fn cut_before(text: &str, needle: &str) -> String {
    let at = text.find(needle).unwrap();
    let line_start = text[..at].rfind('\n').map_or(0, |i| i + 1);
    text[..line_start].to_owned()
}

/// The 1-based number of the first line containing `needle`.
pub fn line_of(text: &str, needle: &str) -> u64 {
    text.lines().position(|l| l.contains(needle)).unwrap() as u64 + 1
}

pub fn gbk_text(bytes: &[u8]) -> String {
    GBK.decode(bytes).0.into_owned()
}
