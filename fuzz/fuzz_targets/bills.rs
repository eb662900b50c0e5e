//! Any bytes as a bill: as the trade bill ZIP, as its detail file (raw, and as text GBK-encoded),
//! and as Global's transaction and settlement files. Never panics; every reader ends at its
//! first error; what a reader accepts agrees with its own totals; and what it accepts, written
//! back by the writer (unless the writer refuses a value), reads back the same.

#![no_main]

use std::io::Cursor;

use bills::global::{
    SettlementReader, TransactionReader, TransactionRow, write_settlement_file, write_transaction_file,
};
use bills::trade::{BillRow, DetailReader, write_detail};
use bills::{BillError, Limits, TradeBill, WriteError};
use libfuzzer_sys::fuzz_target;

const LIMITS: Limits = Limits { max_line_bytes: 2048, max_rows: 5_000, max_stores: 500, max_entries: 8 };

fuzz_target!(|data: &[u8]| {
    trade_bill(data);
    detail(data);
    if let Ok(text) = std::str::from_utf8(data) {
        let (gbk, _, _) = encoding_rs::GBK.encode(text);
        detail(&gbk);
    }
    transactions(data);
    settlements(data);
});

/// Drains `rows`: the rows, or the error that ended them (and then nothing more).
fn drain<T>(rows: &mut impl Iterator<Item = Result<T, BillError>>) -> Result<Vec<T>, BillError> {
    let mut read = Vec::new();
    while let Some(row) = rows.next() {
        match row {
            Ok(row) => read.push(row),
            Err(e) => {
                assert!(rows.next().is_none(), "rows continue after {e}");
                return Err(e);
            }
        }
    }
    Ok(read)
}

fn trade_bill(data: &[u8]) {
    let Ok(mut bill) = TradeBill::open_with(Cursor::new(data), &LIMITS) else { return };
    let total = bill.summary().total;
    let Ok(mut rows) = bill.rows() else { return };
    if let Ok(read) = drain(&mut rows) {
        let refunds = read.iter().filter(|r| r.is_refund()).count() as u64;
        assert_eq!((total.payments, total.refunds), (read.len() as u64 - refunds, refunds));
    }
}

fn detail(data: &[u8]) {
    let Ok(mut reader) = DetailReader::new(data, &LIMITS) else { return };
    let Ok(read) = drain(&mut reader) else { return };
    let footer = *reader.footer().unwrap_or_else(|| panic!("accepted without a footer"));
    let refunds = read.iter().filter(|r| r.is_refund()).count() as u64;
    assert_eq!((footer.payments, footer.refunds), (read.len() as u64 - refunds, refunds));
    let mut written = Vec::new();
    match write_detail(&mut written, reader.header(), footer.exported_at, &read) {
        Err(WriteError::Field { .. }) => {}
        Err(e) => panic!("the writer failed on rows the reader accepted: {e}"),
        Ok(_) => {
            let mut again = DetailReader::new(&written[..], &LIMITS).unwrap_or_else(|e| panic!("{e}"));
            let back: Vec<BillRow> = drain(&mut again).unwrap_or_else(|e| panic!("{e}"));
            assert_eq!(back, read);
            assert_eq!(again.footer(), Some(&footer));
        }
    }
}

fn transactions(data: &[u8]) {
    let Ok(mut reader) = TransactionReader::new(data, &LIMITS) else { return };
    let Ok(read) = drain(&mut reader) else { return };
    let header = reader.header().clone();
    assert_eq!(header.total_count, read.len() as u64);
    let mut written = Vec::new();
    if write_transaction_file(&mut written, &header.partner, header.date, &read).is_ok() {
        let mut again = TransactionReader::new(&written[..], &LIMITS).unwrap_or_else(|e| panic!("{e}"));
        let back: Vec<TransactionRow> = drain(&mut again).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(back, read);
    }
}

fn settlements(data: &[u8]) {
    let Ok(mut reader) = SettlementReader::new(data, &LIMITS) else { return };
    let Ok(read) = drain(&mut reader) else { return };
    let mut written = Vec::new();
    if write_settlement_file(&mut written, &read).is_ok() {
        let mut again = SettlementReader::new(&written[..], &LIMITS).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(drain(&mut again).unwrap_or_else(|e| panic!("{e}")), read);
    }
}
