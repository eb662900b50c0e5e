//! Reading a kept bill file into rows for the ledger: on a blocking thread, a chunk at a time
//! through a bounded channel, so memory does not grow with the file. The file's own checks
//! (footer, summary) run at its end; only then is [`BillFeed::End`] sent, and a file refused
//! anywhere sends [`BillFeed::Failed`] instead, so nothing of it is kept.

use std::fs::File;
use std::io::BufReader;
use std::path::PathBuf;

use bills::{BillPeriod, BillRowView, TradeBill};
use ledger::store::{BillFeed, BilledKind, BilledRow};
use time::Date;
use tokio::sync::mpsc;

/// Rows sent at once.
const CHUNK: usize = 4096;
/// Chunks in flight between the reader and the ledger's COPY.
pub const CHANNEL: usize = 4;

/// Reads the trade bill at `path` (which must cover `day`) into `feed`; runs on the calling
/// (blocking) thread.
pub fn trade_bill(path: PathBuf, day: Date, feed: mpsc::Sender<BillFeed>) {
    feed_all(&feed, || {
        let file = File::open(&path).map_err(|e| format!("cannot open {}: {e}", path.display()))?;
        let mut bill = TradeBill::open(BufReader::new(file)).map_err(|e| e.to_string())?;
        if Some(bill.header().period) != BillPeriod::day(day) {
            return Err(format!("the file is not the bill of {day}: it covers {}", bill.header().period.stamp()));
        }
        let mut rows = bill.rows().map_err(|e| e.to_string())?;
        let rows = std::iter::from_fn(|| rows.next_view().map(|row| row.map(|row| Some(billed(&row)))));
        send_rows(rows.map(|row| row.map_err(|e| e.to_string())), &feed)
    });
}

/// Runs `read` (which sends rows to `feed`), then ends the feed: [`BillFeed::End`] once it read
/// the whole file, [`BillFeed::Failed`] with its reason otherwise.
pub fn feed_all(feed: &mpsc::Sender<BillFeed>, read: impl FnOnce() -> Result<(), String>) {
    let last = match read() {
        Ok(()) => BillFeed::End,
        Err(why) => BillFeed::Failed(why),
    };
    let _ = feed.blocking_send(last);
}

/// Sends `rows` (each kept, skipped as `None`, or the file's error) to `feed` in chunks.
pub fn send_rows(
    rows: impl Iterator<Item = Result<Option<BilledRow>, String>>,
    feed: &mpsc::Sender<BillFeed>,
) -> Result<(), String> {
    let send =
        |chunk| feed.blocking_send(BillFeed::Rows(chunk)).map_err(|_| "the ledger stopped taking rows".to_owned());
    let mut chunk = Vec::with_capacity(CHUNK);
    for row in rows {
        let Some(row) = row? else { continue };
        chunk.push(row);
        if chunk.len() == CHUNK {
            send(std::mem::replace(&mut chunk, Vec::with_capacity(CHUNK)))?;
        }
    }
    if !chunk.is_empty() {
        send(chunk)?;
    }
    Ok(())
}

/// A bill row as the ledger keeps it.
pub fn billed(row: &BillRowView<'_>) -> BilledRow {
    let kind = if row.is_refund() { BilledKind::Refund } else { BilledKind::Payment };
    BilledRow {
        kind,
        out_trade_no: row.out_trade_no.to_owned(),
        out_request_no: row.out_request_no.unwrap_or_default().to_owned(),
        trade_no: row.trade_no.to_owned(),
        currency: row.amount.currency().code().to_owned(),
        amount_minor: i64::try_from(row.amount.minor()).unwrap_or(i64::MAX),
        fee_minor: row.fee.minor(),
        store_id: row.store_id.map(str::to_owned),
        finished_at: row.finished_at,
    }
}
