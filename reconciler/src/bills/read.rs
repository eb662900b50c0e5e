//! Reading a kept bill file into rows for matching. A trade bill is read where its rows are
//! spilled ([`trade_bill`]: each row seen in place and written out, nothing copied in between);
//! Global's files go through a bounded channel a chunk at a time ([`send_rows`]), so memory does
//! not grow with the file either way. The file's own checks (footer, summary) run at its end, and
//! a file refused anywhere is refused whole ([`MatchError::Refused`], or [`BillFeed::Failed`]
//! instead of [`BillFeed::End`]): nothing of it is kept.

use std::fs::File;
use std::io::{self, BufReader};
use std::path::Path;

use bills::{BillPeriod, BillRowView, TradeBill};
use ledger::store::{BillFeed, BilledKind, BilledRow};
use time::Date;
use tokio::sync::mpsc;

use super::matching::MatchError;
use super::spill::BillView;

/// Rows sent at once.
const CHUNK: usize = 4096;
/// Chunks in flight between a reader and matching.
pub const CHANNEL: usize = 4;

/// Reads the trade bill at `path` (which must cover `day`), giving `take` each row; on the
/// calling (blocking) thread. A file refused is [`MatchError::Refused`]; what `take` fails with,
/// [`MatchError::Disk`].
pub fn trade_bill(
    path: &Path,
    day: Date,
    mut take: impl FnMut(BillView<'_>) -> io::Result<()>,
) -> Result<(), MatchError> {
    let refused = |why: String| MatchError::Refused(why);
    let file = File::open(path).map_err(|e| refused(format!("cannot open {}: {e}", path.display())))?;
    let mut bill = TradeBill::open(BufReader::new(file)).map_err(|e| refused(e.to_string()))?;
    if Some(bill.header().period) != BillPeriod::day(day) {
        let covers = bill.header().period.stamp();
        return Err(refused(format!("the file is not the bill of {day}: it covers {covers}")));
    }
    let mut rows = bill.rows().map_err(|e| refused(e.to_string()))?;
    while let Some(row) = rows.next_view() {
        take(billed(&row.map_err(|e| refused(e.to_string()))?))?;
    }
    Ok(())
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

/// A bill row as matching sees it.
fn billed<'a>(row: &BillRowView<'a>) -> BillView<'a> {
    BillView {
        kind: if row.is_refund() { BilledKind::Refund } else { BilledKind::Payment },
        out_trade_no: row.out_trade_no,
        out_request_no: row.out_request_no.unwrap_or_default(),
        trade_no: row.trade_no,
        currency: row.amount.currency().code(),
        amount_minor: i64::try_from(row.amount.minor()).unwrap_or(i64::MAX),
        fee_minor: row.fee.minor(),
        store_id: row.store_id,
        finished_at: row.finished_at,
    }
}
