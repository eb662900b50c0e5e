//! Spill files: one side of a day's matching (the bill's rows, or the ledger's entries) written to
//! disk in [`PARTITIONS`] files by the hash of the merchant's trade number, so that a partition of
//! both sides fits in memory whatever the day's size, and a trade's payment, refunds and reversal
//! meet in the same one. Records are length-prefixed; a partition is read back whole and its
//! records seen in place ([`BillView`], [`EntryView`]: borrowed, nothing copied until a row
//! disagrees).
//!
//! The files live in a [`WorkDir`] of their own, removed when it is dropped.

use std::fs::File;
use std::io::{self, BufWriter, Read, Write};
use std::path::{Path, PathBuf};

use ledger::store::{BilledKind, BilledRow, EntryView, PaymentView};
use time::OffsetDateTime;
use uuid::Uuid;

/// Partitions of each side: at a million rows a day, some 8,000 rows of each side are in memory
/// at once (what a day adds to memory is 1/128th of it; the files' buffers take 4 MiB). At a
/// million rows, 64 took as much CPU and 57–63 MiB at peak against 36–50 (four alternating pairs of
/// reconciler/benches/settle.rs); 256 were no faster nor smaller.
pub const PARTITIONS: usize = 128;

/// Bytes buffered per partition file.
const BUFFER: usize = 16 * 1024;

/// The partition of a trade number (FNV-1a: the same in every process, cheap on short keys).
pub fn partition_of(out_trade_no: &str) -> usize {
    let hash = out_trade_no
        .bytes()
        .fold(0xcbf2_9ce4_8422_2325u64, |hash, byte| (hash ^ u64::from(byte)).wrapping_mul(0x0000_0100_0000_01b3));
    (hash % PARTITIONS as u64) as usize
}

/// A folder of spill files, removed with everything in it when dropped.
#[derive(Debug)]
pub struct WorkDir(PathBuf);

impl WorkDir {
    /// Creates `parent/.matching-<name>` afresh (what a crashed run left there is removed).
    pub fn create(parent: &Path, name: &str) -> io::Result<WorkDir> {
        let path = parent.join(format!(".matching-{name}-{}", std::process::id()));
        match std::fs::remove_dir_all(&path) {
            Err(error) if error.kind() != io::ErrorKind::NotFound => return Err(error),
            _ => {}
        }
        std::fs::create_dir_all(&path)?;
        Ok(WorkDir(path))
    }

    pub fn path(&self) -> &Path {
        &self.0
    }

    fn file(&self, side: &str, partition: usize) -> PathBuf {
        self.0.join(format!("{side}-{partition:03}"))
    }
}

impl Drop for WorkDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// What a spill file holds.
pub trait Record {
    /// The merchant's trade number (what partitions it).
    fn key(&self) -> &str;
    fn encode(&self, out: &mut Vec<u8>);
}

/// Writes one side's records into its partitions.
pub struct Writer {
    files: Vec<BufWriter<File>>,
    record: Vec<u8>,
}

impl Writer {
    pub fn create(dir: &WorkDir, side: &str) -> io::Result<Writer> {
        let files = (0..PARTITIONS)
            .map(|p| File::create(dir.file(side, p)).map(|f| BufWriter::with_capacity(BUFFER, f)))
            .collect::<io::Result<_>>()?;
        Ok(Writer { files, record: Vec::with_capacity(256) })
    }

    pub fn write(&mut self, record: &impl Record) -> io::Result<()> {
        self.record.clear();
        self.record.extend_from_slice(&[0; 4]);
        record.encode(&mut self.record);
        let length = u32::try_from(self.record.len() - 4).map_err(|_| io::ErrorKind::InvalidData)?;
        self.record[..4].copy_from_slice(&length.to_le_bytes());
        self.files[partition_of(record.key())].write_all(&self.record)
    }

    pub fn finish(self) -> io::Result<()> {
        self.files.into_iter().try_for_each(|mut file| file.flush())
    }
}

/// One side's partition, whole (at a million rows a day, under 2 MiB), into `bytes` (emptied
/// first: one buffer serves every partition, so its pages are not faulted in afresh each time).
pub fn load(dir: &WorkDir, side: &str, partition: usize, bytes: &mut Vec<u8>) -> io::Result<()> {
    bytes.clear();
    File::open(dir.file(side, partition))?.read_to_end(bytes).map(drop)
}

/// The records of a loaded partition, in the order written, each seen by `view`.
pub fn records<'a, V: 'a>(
    mut bytes: &'a [u8],
    view: fn(&'a [u8]) -> Option<V>,
) -> impl Iterator<Item = io::Result<V>> + 'a {
    std::iter::from_fn(move || {
        if bytes.is_empty() {
            return None;
        }
        let record = take(&mut bytes, 4)
            .and_then(|length| take(&mut bytes, u32::from_le_bytes(length.try_into().ok()?) as usize))
            .and_then(view);
        if record.is_none() {
            bytes = &[];
        }
        Some(record.ok_or_else(|| io::ErrorKind::InvalidData.into()))
    })
}

fn put_i64(out: &mut Vec<u8>, value: i64) {
    out.extend_from_slice(&value.to_le_bytes());
}

/// Appends a record's texts as [`Texts`] reads them: every length (`u32::MAX` for none), then
/// the texts one after another.
fn put_texts(out: &mut Vec<u8>, texts: &[Option<&str>]) {
    for text in texts {
        out.extend_from_slice(&text.map_or(u32::MAX, |t| t.len() as u32).to_le_bytes());
    }
    for text in texts.iter().flatten() {
        out.extend_from_slice(text.as_bytes());
    }
}

/// A record's texts, checked as UTF-8 all at once (once per record, not per text: the check's
/// cost is mostly per call on texts this short).
struct Texts<'a> {
    lengths: &'a [u8],
    text: &'a str,
}

impl<'a> Texts<'a> {
    /// The `count` texts at the end of a record: `bytes` must end with them.
    fn read(bytes: &mut &'a [u8], count: usize) -> Option<Texts<'a>> {
        let lengths = take(bytes, count.checked_mul(4)?)?;
        let total = lengths
            .chunks_exact(4)
            .map(|l| u32::from_le_bytes([l[0], l[1], l[2], l[3]]))
            .filter(|&l| l != u32::MAX)
            .try_fold(0usize, |sum, l| sum.checked_add(l as usize))?;
        let text = std::str::from_utf8(take(bytes, total)?).ok()?;
        Some(Texts { lengths, text })
    }

    fn next_opt(&mut self) -> Option<Option<&'a str>> {
        let length = u32::from_le_bytes(take(&mut self.lengths, 4)?.try_into().ok()?);
        if length == u32::MAX {
            return Some(None);
        }
        let (head, rest) = self.text.split_at_checked(length as usize)?;
        self.text = rest;
        Some(Some(head))
    }

    fn next(&mut self) -> Option<&'a str> {
        self.next_opt()?
    }
}

fn take<'a>(bytes: &mut &'a [u8], n: usize) -> Option<&'a [u8]> {
    let (head, rest) = bytes.split_at_checked(n)?;
    *bytes = rest;
    Some(head)
}

fn get_u8(bytes: &mut &[u8]) -> Option<u8> {
    take(bytes, 1).map(|b| b[0])
}

fn get_i64(bytes: &mut &[u8]) -> Option<i64> {
    take(bytes, 8)?.try_into().ok().map(i64::from_le_bytes)
}

fn get_uuid(bytes: &mut &[u8]) -> Option<Uuid> {
    Uuid::from_slice(take(bytes, 16)?).ok()
}

/// A bill row, seen where it lies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BillView<'a> {
    pub kind: BilledKind,
    pub out_trade_no: &'a str,
    pub out_request_no: &'a str,
    pub trade_no: &'a str,
    pub currency: &'a str,
    pub amount_minor: i64,
    pub fee_minor: i64,
    pub store_id: Option<&'a str>,
    pub finished_at: OffsetDateTime,
}

impl<'a> BillView<'a> {
    pub fn of(row: &'a BilledRow) -> BillView<'a> {
        BillView {
            kind: row.kind,
            out_trade_no: &row.out_trade_no,
            out_request_no: &row.out_request_no,
            trade_no: &row.trade_no,
            currency: &row.currency,
            amount_minor: row.amount_minor,
            fee_minor: row.fee_minor,
            store_id: row.store_id.as_deref(),
            finished_at: row.finished_at,
        }
    }

    pub fn to_row(self) -> BilledRow {
        BilledRow {
            kind: self.kind,
            out_trade_no: self.out_trade_no.to_owned(),
            out_request_no: self.out_request_no.to_owned(),
            trade_no: self.trade_no.to_owned(),
            currency: self.currency.to_owned(),
            amount_minor: self.amount_minor,
            fee_minor: self.fee_minor,
            store_id: self.store_id.map(str::to_owned),
            finished_at: self.finished_at,
        }
    }

    /// A record [`Writer::write`] wrote of a [`BillView`].
    pub fn decode(mut bytes: &'a [u8]) -> Option<BillView<'a>> {
        let bytes = &mut bytes;
        let kind = match get_u8(bytes)? {
            0 => BilledKind::Payment,
            1 => BilledKind::Refund,
            _ => return None,
        };
        let amount_minor = get_i64(bytes)?;
        let fee_minor = get_i64(bytes)?;
        let finished_at =
            OffsetDateTime::from_unix_timestamp_nanos(i128::from_le_bytes(take(bytes, 16)?.try_into().ok()?)).ok()?;
        let mut texts = Texts::read(bytes, 5)?;
        let view = BillView {
            kind,
            out_trade_no: texts.next()?,
            out_request_no: texts.next()?,
            trade_no: texts.next()?,
            currency: texts.next()?,
            amount_minor,
            fee_minor,
            store_id: texts.next_opt()?,
            finished_at,
        };
        bytes.is_empty().then_some(view)
    }
}

impl Record for BillView<'_> {
    fn key(&self) -> &str {
        self.out_trade_no
    }

    fn encode(&self, out: &mut Vec<u8>) {
        out.push(match self.kind {
            BilledKind::Payment => 0,
            BilledKind::Refund => 1,
        });
        put_i64(out, self.amount_minor);
        put_i64(out, self.fee_minor);
        out.extend_from_slice(&self.finished_at.unix_timestamp_nanos().to_le_bytes());
        put_texts(
            out,
            &[
                Some(self.out_trade_no),
                Some(self.out_request_no),
                Some(self.trade_no),
                Some(self.currency),
                self.store_id,
            ],
        );
    }
}

/// A payment's fixed part is read from `bytes`, its texts from `texts` (the first five).
fn decode_payment<'a>(bytes: &mut &'a [u8], texts: &mut Texts<'a>) -> Option<PaymentView<'a>> {
    Some(PaymentView {
        tenant_id: get_uuid(bytes)?,
        amount_minor: get_i64(bytes)?,
        out_trade_no: texts.next()?,
        trade_no: texts.next_opt()?,
        state: texts.next()?,
        currency: texts.next()?,
        store_id: texts.next_opt()?,
    })
}

/// Appends a payment's fixed part; answers its texts.
fn put_payment<'a>(out: &mut Vec<u8>, payment: &PaymentView<'a>) -> [Option<&'a str>; 5] {
    out.extend_from_slice(payment.tenant_id.as_bytes());
    put_i64(out, payment.amount_minor);
    [Some(payment.out_trade_no), payment.trade_no, Some(payment.state), Some(payment.currency), payment.store_id]
}

/// A record [`Writer::write`] wrote of an [`EntryView`].
pub fn decode_entry(mut bytes: &[u8]) -> Option<EntryView<'_>> {
    let bytes = &mut bytes;
    let view = match get_u8(bytes)? {
        0 => {
            let (tenant_and_amount, flags) = (take(bytes, 24)?, get_u8(bytes)?);
            let reversed = match get_u8(bytes)? {
                0 => None,
                n @ (1 | 2) => Some((get_i64(bytes)?, n == 2)),
                _ => return None,
            };
            let mut texts = Texts::read(bytes, 5)?;
            let payment = decode_payment(&mut &tenant_and_amount[..], &mut texts)?;
            EntryView::Trade { payment, paid: flags & 1 != 0, paid_on_day: flags & 2 != 0, reversed }
        }
        1 => {
            let tenant_and_amount = take(bytes, 24)?;
            let (amount_minor, done_on_day) = (get_i64(bytes)?, get_u8(bytes)? != 0);
            let mut texts = Texts::read(bytes, 7)?;
            EntryView::Refund {
                trade: decode_payment(&mut &tenant_and_amount[..], &mut texts)?,
                wire_request_no: texts.next()?,
                state: texts.next()?,
                amount_minor,
                done_on_day,
            }
        }
        _ => return None,
    };
    bytes.is_empty().then_some(view)
}

impl Record for EntryView<'_> {
    fn key(&self) -> &str {
        self.out_trade_no()
    }

    fn encode(&self, out: &mut Vec<u8>) {
        match self {
            EntryView::Trade { payment, paid, paid_on_day, reversed } => {
                out.push(0);
                let texts = put_payment(out, payment);
                out.push(u8::from(*paid) | u8::from(*paid_on_day) << 1);
                match reversed {
                    None => out.push(0),
                    Some((minor, on_day)) => {
                        out.push(1 + u8::from(*on_day));
                        put_i64(out, *minor);
                    }
                }
                put_texts(out, &texts);
            }
            EntryView::Refund { trade, wire_request_no, state, amount_minor, done_on_day } => {
                out.push(1);
                let [a, b, c, d, e] = put_payment(out, trade);
                put_i64(out, *amount_minor);
                out.push(u8::from(*done_on_day));
                put_texts(out, &[a, b, c, d, e, Some(wire_request_no), Some(state)]);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Writes `records` into a fresh folder; answers it.
    fn spilled(records: &[impl Record]) -> WorkDir {
        let dir = WorkDir::create(&std::env::temp_dir(), &format!("spill-test-{}", Uuid::new_v4())).unwrap();
        let mut writer = Writer::create(&dir, "side").unwrap();
        for record in records {
            writer.write(record).unwrap();
        }
        writer.finish().unwrap();
        dir
    }

    /// Every partition's bytes.
    fn partitions(dir: &WorkDir) -> Vec<Vec<u8>> {
        (0..PARTITIONS)
            .map(|p| {
                let mut bytes = Vec::new();
                load(dir, "side", p, &mut bytes).unwrap();
                bytes
            })
            .collect()
    }

    #[test]
    fn bill_rows_come_back_as_written_in_the_partition_of_their_trade() {
        let row = |kind, no: &str, request: &str, store: Option<&str>| BilledRow {
            kind,
            out_trade_no: no.into(),
            out_request_no: request.into(),
            trade_no: format!("2026{no}"),
            currency: "CNY".into(),
            amount_minor: -5,
            fee_minor: i64::MIN,
            store_id: store.map(Into::into),
            finished_at: OffsetDateTime::from_unix_timestamp_nanos(1_765_000_000_123_456_789).unwrap(),
        };
        let rows = [
            row(BilledKind::Payment, "A1", "", Some("上海1号店")),
            row(BilledKind::Refund, "A1", "R1", None),
            row(BilledKind::Payment, "", "", Some("")),
        ];
        let dir = spilled(&rows.iter().map(BillView::of).collect::<Vec<_>>());
        let loaded = partitions(&dir);
        let back: Vec<(usize, BillView<'_>)> = loaded
            .iter()
            .enumerate()
            .flat_map(|(p, bytes)| records(bytes, BillView::decode).map(move |view| (p, view.unwrap())))
            .collect();
        let expected: Vec<(usize, BillView<'_>)> =
            rows.iter().map(|row| (partition_of(&row.out_trade_no), BillView::of(row))).collect();
        assert_eq!(back.len(), expected.len());
        assert!(expected.iter().all(|e| back.contains(e)), "{back:?}");
        assert_eq!(back.iter().map(|(_, v)| v.to_row()).filter(|r| rows.contains(r)).count(), rows.len());
        let path = dir.path().to_owned();
        drop(dir);
        assert!(!path.exists(), "the work folder is removed");
    }

    #[test]
    fn ledger_entries_come_back_as_written_in_the_partition_of_their_trade() {
        let tenant_id = Uuid::new_v4();
        let payment = |out_trade_no| PaymentView {
            tenant_id,
            out_trade_no,
            trade_no: Some("2026"),
            state: "CANCELLED",
            currency: "USD",
            amount_minor: 1200,
            store_id: Some("S1"),
        };
        let entries = [
            EntryView::Trade {
                payment: PaymentView { store_id: None, ..payment("A1") },
                paid: true,
                paid_on_day: false,
                reversed: Some((700, true)),
            },
            EntryView::Trade {
                payment: PaymentView { trade_no: None, ..payment("B2") },
                paid: false,
                paid_on_day: true,
                reversed: None,
            },
            EntryView::Refund {
                trade: payment("A1"),
                wire_request_no: "A1",
                state: "SUCCESS",
                amount_minor: 0,
                done_on_day: true,
            },
        ];
        let dir = spilled(&entries);
        let loaded = partitions(&dir);
        let back: Vec<(usize, EntryView<'_>)> = loaded
            .iter()
            .enumerate()
            .flat_map(|(p, bytes)| records(bytes, decode_entry).map(move |view| (p, view.unwrap())))
            .collect();
        assert_eq!(back.len(), entries.len());
        for entry in &entries {
            assert!(back.contains(&(partition_of(entry.out_trade_no()), *entry)), "{entry:?}");
        }
    }

    #[test]
    fn a_cut_or_foreign_record_is_an_error_not_a_panic() {
        for bytes in [&[9, 0, 0, 0, 1, 2][..], &[3, 0, 0, 0, 7, 0, 0], &[2, 0]] {
            let seen: Vec<_> = records(bytes, BillView::decode).collect();
            assert!(matches!(seen.as_slice(), [Err(_)]), "{seen:?}");
            let seen: Vec<_> = records(bytes, decode_entry).collect();
            assert!(matches!(seen.as_slice(), [Err(_)]), "{seen:?}");
        }
    }
}
