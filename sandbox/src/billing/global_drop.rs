//! Global's files for a MAPI partner's day, as an SFTP drop leaves them in its folder:
//! `<dir>/<partner>/<PID>_transaction_<yyyyMMdd>.txt` and `..._settlement_<yyyyMMdd>.txt`.
//!
//! Transaction rows: PAYMENT per payment (`partner_trans_id`), REFUND per refund (its
//! `partner_refund_id`), REVERSAL for a cancel of a paid trade (`partner_trans_id`); fees at the
//! merchant's rate, in the currency traded. The settlement file lists the same day's movements as
//! settled at 09:00 the next day (`P` for payments, `R` for refunds and reversals), with CNY
//! amounts at the fixed rates of [`cny_rate`] (a sandbox has no market).
//!
//! Files are written atomically (a temporary file in the folder, then a rename), and not at all
//! when their content is unchanged. A day with no movements gets no files.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use alipay::{Amount, Currency, Decimal, Partner, TradeNo};
use bills::global::{
    SettlementRow, SettlementType, TransactionRow, TransactionType, settlement_file_name, transaction_file_name,
    write_settlement_file, write_transaction_file,
};
use bills::{PartnerTransactionId, WriteError};
use time::{Date, OffsetDateTime};

use crate::billing::calendar::ready_at;
use crate::billing::fee::FeeRate;
use crate::billing::movements::{Movement, MovementKind};
use crate::trade::RefundVia;

/// A file the drop wrote, or found already holding what it would write.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dropped {
    pub path: PathBuf,
    /// False when the file already held exactly this.
    pub written: bool,
}

/// The drop failed.
#[derive(Debug, thiserror::Error)]
pub enum DropError {
    #[error("cannot write {0}: {1}")]
    Io(PathBuf, io::Error),
    #[error("cannot lay out the file: {0}")]
    Layout(#[from] WriteError),
    #[error("the date has no file name (year out of range)")]
    Date,
}

/// CNY per unit of `currency` in 1e-8 (fixed sandbox rates), `None` for a currency it has none for.
pub fn cny_rate(currency: Currency) -> Option<u64> {
    Some(match currency.code() {
        "CNY" => 100_000_000,
        "USD" => 720_000_000,
        "EUR" => 780_000_000,
        "GBP" => 910_000_000,
        "HKD" => 92_000_000,
        "JPY" => 4_800_000,
        "KRW" => 520_000,
        "SGD" => 535_000_000,
        "AUD" => 470_000_000,
        "CAD" => 525_000_000,
        "THB" => 20_000_000,
        _ => return None,
    })
}

/// `amount` in CNY at `rate_e8`, rounded half up to the fen.
fn to_cny(amount: Amount, rate_e8: u64) -> Amount {
    let scale = 10u128.pow(u32::from(amount.currency().exponent())) * 1_000_000;
    let fen = (u128::from(amount.minor()) * u128::from(rate_e8) + scale / 2) / scale;
    u64::try_from(fen)
        .ok()
        .and_then(|fen| Amount::from_minor(fen, Currency::CNY).ok())
        .unwrap_or(Amount::zero(Currency::CNY))
}

fn rate_text(rate_e8: u64) -> Decimal {
    format!("{}.{:08}", rate_e8 / 100_000_000, rate_e8 % 100_000_000)
        .parse()
        .unwrap_or(Decimal::from(Amount::zero(Currency::CNY)))
}

/// The transaction type and `Partner_transaction_id` of a movement.
fn kind_and_id(movement: &Movement<'_>) -> Option<(TransactionType, PartnerTransactionId)> {
    let trade = movement.trade;
    let (kind, id) = match movement.kind {
        MovementKind::Payment => (TransactionType::Payment, &trade.out_trade_no),
        MovementKind::Refund(refund) if refund.via == RefundVia::Cancel => {
            (TransactionType::Reversal, &trade.out_trade_no)
        }
        MovementKind::Refund(refund) => (TransactionType::Refund, &refund.out_request_no),
    };
    Some((kind, id.parse().ok()?))
}

fn operator(movement: &Movement<'_>) -> String {
    movement.trade.place.operator_id.as_ref().map(|o| o.as_str().to_owned()).unwrap_or_default()
}

fn transaction_row(movement: &Movement<'_>, fee_rate: FeeRate) -> Option<TransactionRow> {
    let (kind, partner_transaction_id) = kind_and_id(movement)?;
    Some(TransactionRow {
        partner_transaction_id,
        transaction_id: movement.trade.trade_no.parse::<TradeNo>().ok()?,
        amount: movement.amount,
        fee: fee_rate.fee(movement.amount),
        payment_time: movement.at,
        kind,
        remark: String::new(),
        secondary_merchant_industry: None,
        secondary_merchant_name: String::new(),
        operator_name: operator(movement),
        order_scene: None,
        trans_amount: movement.amount,
        trans_forex_rate: rate_text(100_000_000),
    })
}

fn settlement_row(movement: &Movement<'_>, fee_rate: FeeRate, settled_at: OffsetDateTime) -> Option<SettlementRow> {
    let (kind, partner_transaction_id) = kind_and_id(movement)?;
    let rate = cny_rate(movement.amount.currency()).unwrap_or(100_000_000);
    let fee = fee_rate.fee(movement.amount);
    let settlement = movement.amount.checked_sub(fee)?;
    Some(SettlementRow {
        partner_transaction_id,
        transaction_id: movement.trade.trade_no.parse::<TradeNo>().ok()?,
        amount: movement.amount,
        rmb_amount: to_cny(movement.amount, rate),
        fee,
        settlement,
        rmb_settlement: to_cny(settlement, rate),
        rate: rate_text(rate),
        payment_time: movement.at,
        settlement_time: settled_at,
        kind: if kind == TransactionType::Payment { SettlementType::Payment } else { SettlementType::Refund },
        remarks: String::new(),
        secondary_merchant_industry: None,
        secondary_merchant_name: String::new(),
        operator_name: operator(movement),
        order_scene: None,
        trans_amount: movement.amount,
        trans_forex_rate: rate_text(100_000_000),
    })
}

/// Writes `partner`'s files of `day` under `dir/<partner>/`; none when there are no movements.
pub fn drop_day(
    dir: &Path,
    partner: &Partner,
    day: Date,
    fee_rate: FeeRate,
    movements: &[Movement<'_>],
) -> Result<Vec<Dropped>, DropError> {
    let transactions: Vec<TransactionRow> = movements.iter().filter_map(|m| transaction_row(m, fee_rate)).collect();
    if transactions.is_empty() {
        return Ok(Vec::new());
    }
    let settled_at = ready_at(day, 1);
    let settlements: Vec<SettlementRow> =
        movements.iter().filter_map(|m| settlement_row(m, fee_rate, settled_at)).collect();
    let mut transaction_file = Vec::new();
    write_transaction_file(&mut transaction_file, partner, day, &transactions)?;
    let mut settlement_file = Vec::new();
    write_settlement_file(&mut settlement_file, &settlements)?;
    let folder = dir.join(partner.as_str());
    fs::create_dir_all(&folder).map_err(|e| DropError::Io(folder.clone(), e))?;
    let mut dropped = Vec::new();
    for (name, bytes) in [
        (transaction_file_name(partner, day).ok_or(DropError::Date)?, transaction_file),
        (settlement_file_name(partner, day).ok_or(DropError::Date)?, settlement_file),
    ] {
        let path = folder.join(name);
        let written = write_if_changed(&path, &bytes).map_err(|e| DropError::Io(path.clone(), e))?;
        dropped.push(Dropped { path, written });
    }
    Ok(dropped)
}

/// Writes `bytes` to `path` atomically unless it already holds them; answers whether it wrote.
fn write_if_changed(path: &Path, bytes: &[u8]) -> io::Result<bool> {
    if fs::read(path).is_ok_and(|old| old == bytes) {
        return Ok(false);
    }
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("file");
    let temp = path.with_file_name(format!(".{name}.{:016x}.tmp", rand::random::<u64>()));
    let written = fs::File::create(&temp).and_then(|mut file| {
        io::Write::write_all(&mut file, bytes)?;
        file.sync_all()
    });
    match written.and_then(|()| fs::rename(&temp, path)) {
        Ok(()) => Ok(true),
        Err(e) => {
            let _ = fs::remove_file(&temp);
            Err(e)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn foreign_amounts_turn_into_fen_at_the_fixed_rate() {
        let usd = Amount::parse("10.00", Currency::USD).unwrap();
        assert_eq!(to_cny(usd, cny_rate(Currency::USD).unwrap()).to_string(), "72.00");
        let jpy = Amount::parse("1000", Currency::JPY).unwrap();
        assert_eq!(to_cny(jpy, cny_rate(Currency::JPY).unwrap()).to_string(), "48.00");
        assert_eq!(rate_text(92_000_000).to_string(), "0.92000000");
    }

    #[test]
    fn unchanged_files_are_left_alone() {
        let dir = std::env::temp_dir().join(format!("sandbox-drop-{:x}", rand::random::<u64>()));
        fs::create_dir_all(&dir).unwrap();
        let path = dir.join("a.txt");
        assert!(write_if_changed(&path, b"one").unwrap());
        assert!(!write_if_changed(&path, b"one").unwrap());
        assert!(write_if_changed(&path, b"two").unwrap());
        assert_eq!(fs::read(&path).unwrap(), b"two");
        assert_eq!(fs::read_dir(&dir).unwrap().count(), 1);
        fs::remove_dir_all(&dir).unwrap();
    }
}
