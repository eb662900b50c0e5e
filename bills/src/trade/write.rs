//! Writing a trade bill exactly as Alipay lays it out: the detail file streamed row by row, the
//! summary it implies, and both in a ZIP with GBK entry names (no UTF-8 flag).

use std::borrow::Borrow;
use std::collections::BTreeMap;
use std::io::{Seek, Write};

use alipay::MerchantRef;
use alipay::time_text::BEIJING;
use time::OffsetDateTime;
use zip::write::SimpleFileOptions;
use zip::{CompressionMethod, DateTime, System, ZipWriter};

use crate::error::WriteError;
use crate::lines::{encode_gbk, gbk_round_trips};
use crate::trade::detail::Footer;
use crate::trade::frame::DETAIL;
use crate::trade::header::BillHeader;
use crate::trade::row::{BillRow, COLUMNS};
use crate::trade::summary::{StoreSummary, Summary, push_header, write_summary};
use crate::trade::tally::Tally;

/// The writer keeps one tally per store for the summary; at most this many stores.
pub const MAX_STORES: usize = 100_000;

/// Encoded rows are handed to the output in chunks of about this size.
const CHUNK: usize = 64 * 1024;

/// Per-store tallies, by store id then name (the summary's order).
type Stores = BTreeMap<Option<MerchantRef>, BTreeMap<String, Tally>>;

/// Writes the detail file (`业务明细`, GBK) of `rows`, in the order given, and returns the summary
/// file they imply. Fees and every amount are the caller's; the writer only lays them out.
pub fn write_detail<W, I>(
    mut out: W,
    header: &BillHeader,
    exported_at: OffsetDateTime,
    rows: I,
) -> Result<Summary, WriteError>
where
    W: Write,
    I: IntoIterator,
    I::Item: Borrow<BillRow>,
{
    let mut text = String::new();
    DETAIL.push_preamble(&mut text, header);
    push_header(&mut text, &COLUMNS);
    let mut bytes = Vec::with_capacity(CHUNK * 2);
    bytes.extend_from_slice(&encode_gbk(&text).unwrap_or_default());
    let mut tally = Tally::default();
    let mut stores = Stores::new();
    let mut store_count = 0;
    for (n, row) in rows.into_iter().enumerate() {
        let row = row.borrow();
        let n = n as u64;
        text.clear();
        row.push(&mut text).map_err(|(field, reason)| WriteError::Field { row: n, field, reason })?;
        text.push('\n');
        match encode_gbk(&text) {
            Some(encoded) if text.is_ascii() || gbk_round_trips(&text) => bytes.extend_from_slice(&encoded),
            _ => return Err(unmappable(row, n)),
        }
        let figures = row.figures();
        tally.add(&figures).ok_or(WriteError::Overflow)?;
        if !stores.contains_key(&row.store_id) {
            stores.insert(row.store_id.clone(), BTreeMap::new());
        }
        // Present: inserted just above.
        let names = stores.get_mut(&row.store_id).ok_or(WriteError::Overflow)?;
        match names.get_mut(row.store_name.as_str()) {
            Some(store) => store.add(&figures).ok_or(WriteError::Overflow)?,
            None => {
                if store_count == MAX_STORES {
                    return Err(WriteError::TooManyStores { limit: MAX_STORES });
                }
                store_count += 1;
                let mut store = Tally::default();
                store.add(&figures).ok_or(WriteError::Overflow)?;
                names.insert(row.store_name.clone(), store);
            }
        }
        if bytes.len() >= CHUNK {
            out.write_all(&bytes)?;
            bytes.clear();
        }
    }
    text.clear();
    DETAIL.push_end_marker(&mut text);
    Footer::from_tally(&tally, exported_at).push(&mut text).ok_or(WriteError::Field {
        row: 0,
        field: "导出时间",
        reason: "the year is not four digits in Beijing time",
    })?;
    bytes.extend_from_slice(&encode_gbk(&text).unwrap_or_default());
    out.write_all(&bytes)?;
    let mut lines = Vec::with_capacity(store_count);
    for (store_id, names) in stores {
        for (store_name, store) in names {
            let totals = store.summary_line().ok_or(WriteError::Overflow)?;
            lines.push(StoreSummary { store_id: store_id.clone(), store_name, totals });
        }
    }
    let total = tally.summary_line().ok_or(WriteError::Overflow)?;
    Ok(Summary { header: header.clone(), stores: lines, total, exported_at })
}

/// The first text column of `row` that GBK cannot carry.
fn unmappable(row: &BillRow, n: u64) -> WriteError {
    let texts =
        [(3, &row.subject), (7, &row.store_name), (10, &row.counterparty), (18, &row.voucher_name), (24, &row.remark)];
    let column = texts.iter().find(|(_, text)| !gbk_round_trips(text)).map_or("row", |(i, _)| COLUMNS[*i]);
    WriteError::Field { row: n, field: column, reason: "a character GBK cannot write, or reads back as another" }
}

/// The ZIP entries' options: deflated, dated at the export (Beijing time), made on "DOS" so the
/// bytes do not depend on the machine writing them.
pub(crate) fn entry_options(exported_at: OffsetDateTime) -> SimpleFileOptions {
    let at = exported_at.checked_to_offset(BEIJING).unwrap_or(exported_at);
    let modified = u16::try_from(at.year())
        .ok()
        .and_then(|year| {
            DateTime::from_date_and_time(year, u8::from(at.month()), at.day(), at.hour(), at.minute(), at.second()).ok()
        })
        .unwrap_or_default();
    SimpleFileOptions::default()
        .compression_method(CompressionMethod::Deflated)
        .system(System::Dos)
        .last_modified_time(modified)
}

/// Writes the whole bill: a ZIP (name it [`BillHeader::archive_name`]) holding the detail entry
/// and then the summary entry, both GBK, with GBK names and no UTF-8 flag. Returns `out`.
pub fn write_trade_bill<W, I>(
    out: W,
    header: &BillHeader,
    exported_at: OffsetDateTime,
    rows: I,
) -> Result<W, WriteError>
where
    W: Write + Seek,
    I: IntoIterator,
    I::Item: Borrow<BillRow>,
{
    let mut zip = ZipWriter::new(out).set_auto_large_file();
    let options = entry_options(exported_at);
    let detail_name = encode_gbk(&header.detail_entry_name()).unwrap_or_default().into_owned();
    let summary_name = encode_gbk(&header.summary_entry_name()).unwrap_or_default().into_owned();
    zip.start_file_with_options(options.name(&detail_name))?;
    let summary = write_detail(&mut zip, header, exported_at, rows)?;
    zip.start_file_with_options(options.name(&summary_name))?;
    write_summary(&mut zip, &summary)?;
    Ok(zip.finish()?)
}
