//! Global (MAPI) partners: their daily transaction file, as Alipay's SFTP drop leaves it in the
//! partner's folder under `bills_global_dir` (`<PID>_transaction_<yyyyMMdd>.txt`; a day without
//! movements has none). The file is copied, with its SHA-256, into the account's folder before
//! it is read. Its refund rows name the refund (`partner_refund_id`) and Alipay's trade, not the
//! merchant's trade number, so a first pass collects them and the ledger says whose they are;
//! the second pass streams the rows like a trade bill's.

use std::collections::HashMap;
use std::fs::File;
use std::io::{BufReader, Read, Write};
use std::path::{Path, PathBuf};

use aws_lc_rs::digest;
use bills::Limits;
use bills::global::{TransactionReader, TransactionRow, TransactionType, transaction_file_name};
use ledger::store::{BillFeed, BilledKind, BilledRow};
use time::Date;
use tokio::sync::mpsc;

use super::download::{FetchError, Kept};
use super::read;

/// Refund rows one file may hold (their numbers are looked up at once).
const MAX_REFUNDS: usize = 100_000;

/// Copies `partner`'s transaction file of `day` from the drop into `folder`, hashing it.
pub fn keep(drop_dir: &Path, partner: &str, day: Date, folder: &Path, max_bytes: u64) -> Result<Kept, FetchError> {
    let partner_id = partner.parse().map_err(|_| FetchError::Refused(format!("`{partner}` is not a partner")))?;
    let name = transaction_file_name(&partner_id, day).ok_or(FetchError::NotExist)?;
    let source = drop_dir.join(partner).join(&name);
    let mut input = match File::open(&source) {
        Ok(file) => file,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Err(FetchError::NotExist),
        Err(error) => return Err(FetchError::Disk(error)),
    };
    std::fs::create_dir_all(folder)?;
    let part = folder.join(format!(".{day}.part"));
    let mut output = File::create(&part)?;
    let mut hash = digest::Context::new(&digest::SHA256);
    let mut buffer = vec![0u8; 64 * 1024];
    let mut bytes = 0u64;
    loop {
        let read = input.read(&mut buffer)?;
        if read == 0 {
            break;
        }
        bytes += read as u64;
        if bytes > max_bytes {
            let _ = std::fs::remove_file(&part);
            return Err(FetchError::TooLarge(max_bytes));
        }
        hash.update(&buffer[..read]);
        output.write_all(&buffer[..read])?;
    }
    output.sync_all()?;
    let sha256 = hash.finish().as_ref().to_vec();
    let hex: String = sha256.iter().take(8).map(|b| format!("{b:02x}")).collect();
    let path = folder.join(format!("{day}-{hex}-{name}"));
    std::fs::rename(&part, &path)?;
    Ok(Kept { path, sha256, bytes })
}

fn open(path: &Path, partner: &str, day: Date) -> Result<TransactionReader<BufReader<File>>, String> {
    let file = File::open(path).map_err(|e| format!("cannot open {}: {e}", path.display()))?;
    let reader = TransactionReader::new(BufReader::new(file), &Limits::default()).map_err(|e| e.to_string())?;
    let header = reader.header();
    if header.partner.as_str() != partner || header.date != day {
        return Err(format!("the file is {}'s of {}, not {partner}'s of {day}", header.partner, header.date));
    }
    Ok(reader)
}

/// The first pass: each refund row's refund number and Alipay trade number.
pub fn refunds(path: &Path, partner: &str, day: Date) -> Result<Vec<(String, String)>, String> {
    let mut found = Vec::new();
    for row in open(path, partner, day)? {
        let row = row.map_err(|e| e.to_string())?;
        if row.kind == TransactionType::Refund {
            if found.len() == MAX_REFUNDS {
                return Err(format!("more than {MAX_REFUNDS} refunds in one file"));
            }
            found.push((row.partner_transaction_id.as_str().to_owned(), row.transaction_id.as_str().to_owned()));
        }
    }
    Ok(found)
}

/// Whose trade each refund row is: by refund number, else by Alipay's trade number.
#[derive(Debug, Default)]
pub struct RefundTrades {
    pub by_refund: HashMap<String, String>,
    pub by_trade_no: HashMap<String, String>,
}

/// The second pass: the rows into `feed`, ended by [`BillFeed::End`] or [`BillFeed::Failed`].
pub fn transaction_file(path: PathBuf, partner: String, day: Date, trades: RefundTrades, feed: mpsc::Sender<BillFeed>) {
    read::feed_all(&feed, || {
        let rows = open(&path, &partner, day)?;
        read::send_rows(rows.map(|row| row.map(|row| billed(row, &trades)).map_err(|e| e.to_string())), &feed)
    });
}

/// A transaction as the ledger keeps it: payments by `partner_trans_id`; reversals (and cancels
/// that moved money) as refunds numbered with the trade's number, as the trade bill has them;
/// refunds by their number, under the trade the ledger (or Alipay's trade number) says.
fn billed(row: TransactionRow, trades: &RefundTrades) -> Option<BilledRow> {
    let id = row.partner_transaction_id.as_str().to_owned();
    let trade_no = row.transaction_id.as_str().to_owned();
    let (kind, out_trade_no, out_request_no) = match row.kind {
        TransactionType::Payment => (BilledKind::Payment, id, String::new()),
        TransactionType::Reversal | TransactionType::Cancel if row.amount.is_zero() => return None,
        TransactionType::Reversal | TransactionType::Cancel => (BilledKind::Refund, id.clone(), id),
        TransactionType::Refund => {
            let trade = trades.by_refund.get(&id).or_else(|| trades.by_trade_no.get(&trade_no));
            // A refund of a trade the ledger does not know keeps Alipay's number as the trade's.
            (BilledKind::Refund, trade.cloned().unwrap_or_else(|| trade_no.clone()), id)
        }
    };
    let fee = i64::try_from(row.fee.minor()).unwrap_or(i64::MAX);
    Some(BilledRow {
        kind,
        out_trade_no,
        out_request_no,
        trade_no,
        currency: row.amount.currency().code().to_owned(),
        amount_minor: i64::try_from(row.amount.minor()).unwrap_or(i64::MAX),
        // The file states the fee charged; a refund's is returned.
        fee_minor: if kind == BilledKind::Payment { -fee } else { fee },
        store_id: None,
        finished_at: row.payment_time,
    })
}
