//! The numbers Alipay gives: trade numbers and order QR codes.

use time::OffsetDateTime;

/// 28 digits: the Beijing date, then a process-unique sequence (as Alipay's trade numbers).
pub(super) fn next_trade_no() -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    static SEQUENCE: AtomicU64 = AtomicU64::new(0);
    let start = OffsetDateTime::now_utc().unix_timestamp_nanos() as u64 / 1000 % 10_000_000_000_000;
    let seq = SEQUENCE.fetch_add(1, Ordering::Relaxed);
    let date = OffsetDateTime::now_utc().to_offset(alipay::time_text::BEIJING);
    format!("{:04}{:02}{:02}22{:018}", date.year(), u8::from(date.month()), date.day(), start * 100_000 + seq % 100_000)
}

pub(super) fn new_qr_code() -> String {
    use rand::Rng;
    let suffix: String = rand::rng()
        .sample_iter(rand::distr::Alphanumeric)
        .take(22)
        .map(|b| char::from(b).to_ascii_lowercase())
        .collect();
    format!("https://qr.alipay.com/bax{suffix}")
}
