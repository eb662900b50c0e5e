//! Spill files: one side of a day's matching (the bill's rows, or the ledger's entries) written to
//! disk in [`PARTITIONS`] files by the hash of the merchant's trade number, so that a partition of
//! both sides fits in memory whatever the day's size, and a trade's payment, refunds and reversal
//! meet in the same one. Records are length-prefixed and read back one at a time.
//!
//! The files live in a [`WorkDir`] of their own, removed when it is dropped.

use std::fs::File;
use std::io::{self, BufReader, BufWriter, Read, Write};
use std::path::{Path, PathBuf};

use ledger::store::{BilledKind, BilledRow, LedgerEntry, LedgerPayment, LedgerRefund, LedgerTrade};
use time::OffsetDateTime;
use uuid::Uuid;

/// Partitions of each side: at a million rows a day, some 16,000 rows of each side are in memory
/// at once (what a day adds to memory is 1/64th of it; the files' buffers take 2 MiB). 256 were
/// no faster nor smaller at a million rows (reconciler/benches/settle.rs).
pub const PARTITIONS: usize = 64;

/// Bytes buffered per partition file.
const BUFFER: usize = 16 * 1024;

/// A record's largest encoding (a bill's fields are bounded far below this).
const MAX_RECORD: usize = 64 * 1024;

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
pub trait Record: Sized {
    /// The merchant's trade number (what partitions it).
    fn key(&self) -> &str;
    fn encode(&self, out: &mut Vec<u8>);
    fn decode(bytes: &mut &[u8]) -> Option<Self>;
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

/// The records of one side's partition, in the order written.
pub fn read<R: Record>(dir: &WorkDir, side: &str, partition: usize) -> io::Result<Records<R>> {
    let file = File::open(dir.file(side, partition))?;
    Ok(Records { input: BufReader::with_capacity(BUFFER, file), record: Vec::new(), kind: std::marker::PhantomData })
}

pub struct Records<R> {
    input: BufReader<File>,
    record: Vec<u8>,
    kind: std::marker::PhantomData<R>,
}

impl<R: Record> Iterator for Records<R> {
    type Item = io::Result<R>;

    fn next(&mut self) -> Option<io::Result<R>> {
        let mut length = [0u8; 4];
        match self.input.read_exact(&mut length) {
            Ok(()) => {}
            Err(error) if error.kind() == io::ErrorKind::UnexpectedEof => return None,
            Err(error) => return Some(Err(error)),
        }
        let length = u32::from_le_bytes(length) as usize;
        if length > MAX_RECORD {
            return Some(Err(io::ErrorKind::InvalidData.into()));
        }
        self.record.resize(length, 0);
        if let Err(error) = self.input.read_exact(&mut self.record) {
            return Some(Err(error));
        }
        let mut bytes = self.record.as_slice();
        Some(R::decode(&mut bytes).filter(|_| bytes.is_empty()).ok_or_else(|| io::ErrorKind::InvalidData.into()))
    }
}

fn put_i64(out: &mut Vec<u8>, value: i64) {
    out.extend_from_slice(&value.to_le_bytes());
}

fn put_str(out: &mut Vec<u8>, text: &str) {
    out.extend_from_slice(&(text.len() as u32).to_le_bytes());
    out.extend_from_slice(text.as_bytes());
}

fn put_opt_str(out: &mut Vec<u8>, text: Option<&str>) {
    match text {
        None => out.extend_from_slice(&u32::MAX.to_le_bytes()),
        Some(text) => put_str(out, text),
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

fn get_opt_str(bytes: &mut &[u8]) -> Option<Option<String>> {
    let length = u32::from_le_bytes(take(bytes, 4)?.try_into().ok()?);
    if length == u32::MAX {
        return Some(None);
    }
    let text = std::str::from_utf8(take(bytes, length as usize)?).ok()?;
    Some(Some(text.to_owned()))
}

fn get_str(bytes: &mut &[u8]) -> Option<String> {
    get_opt_str(bytes)?
}

fn get_uuid(bytes: &mut &[u8]) -> Option<Uuid> {
    Uuid::from_slice(take(bytes, 16)?).ok()
}

impl Record for BilledRow {
    fn key(&self) -> &str {
        &self.out_trade_no
    }

    fn encode(&self, out: &mut Vec<u8>) {
        out.push(match self.kind {
            BilledKind::Payment => 0,
            BilledKind::Refund => 1,
        });
        for text in [&self.out_trade_no, &self.out_request_no, &self.trade_no, &self.currency] {
            put_str(out, text);
        }
        put_i64(out, self.amount_minor);
        put_i64(out, self.fee_minor);
        put_opt_str(out, self.store_id.as_deref());
        out.extend_from_slice(&self.finished_at.unix_timestamp_nanos().to_le_bytes());
    }

    fn decode(bytes: &mut &[u8]) -> Option<BilledRow> {
        let kind = match get_u8(bytes)? {
            0 => BilledKind::Payment,
            1 => BilledKind::Refund,
            _ => return None,
        };
        Some(BilledRow {
            kind,
            out_trade_no: get_str(bytes)?,
            out_request_no: get_str(bytes)?,
            trade_no: get_str(bytes)?,
            currency: get_str(bytes)?,
            amount_minor: get_i64(bytes)?,
            fee_minor: get_i64(bytes)?,
            store_id: get_opt_str(bytes)?,
            finished_at: OffsetDateTime::from_unix_timestamp_nanos(i128::from_le_bytes(
                take(bytes, 16)?.try_into().ok()?,
            ))
            .ok()?,
        })
    }
}

fn put_payment(out: &mut Vec<u8>, payment: &LedgerPayment, store_id: Option<&str>) {
    out.extend_from_slice(payment.tenant_id.as_bytes());
    put_str(out, &payment.out_trade_no);
    put_opt_str(out, payment.trade_no.as_deref());
    put_str(out, &payment.state);
    put_str(out, &payment.currency);
    put_i64(out, payment.amount_minor);
    put_opt_str(out, store_id);
}

fn get_payment(bytes: &mut &[u8]) -> Option<(LedgerPayment, Option<String>)> {
    let payment = LedgerPayment {
        tenant_id: get_uuid(bytes)?,
        out_trade_no: get_str(bytes)?,
        trade_no: get_opt_str(bytes)?,
        state: get_str(bytes)?,
        currency: get_str(bytes)?,
        amount_minor: get_i64(bytes)?,
    };
    Some((payment, get_opt_str(bytes)?))
}

impl Record for LedgerEntry {
    fn key(&self) -> &str {
        self.out_trade_no()
    }

    fn encode(&self, out: &mut Vec<u8>) {
        match self {
            LedgerEntry::Trade(trade) => {
                out.push(0);
                put_payment(out, &trade.payment, trade.store_id.as_deref());
                out.push(u8::from(trade.paid) | u8::from(trade.paid_on_day) << 1);
                match trade.reversed {
                    None => out.push(0),
                    Some((minor, on_day)) => {
                        out.push(1 + u8::from(on_day));
                        put_i64(out, minor);
                    }
                }
            }
            LedgerEntry::Refund(refund) => {
                out.push(1);
                put_payment(out, &refund.trade, refund.store_id.as_deref());
                put_str(out, &refund.wire_request_no);
                put_str(out, &refund.state);
                put_i64(out, refund.amount_minor);
                out.push(u8::from(refund.done_on_day));
            }
        }
    }

    fn decode(bytes: &mut &[u8]) -> Option<LedgerEntry> {
        match get_u8(bytes)? {
            0 => {
                let (payment, store_id) = get_payment(bytes)?;
                let flags = get_u8(bytes)?;
                let reversed = match get_u8(bytes)? {
                    0 => None,
                    n @ (1 | 2) => Some((get_i64(bytes)?, n == 2)),
                    _ => return None,
                };
                Some(LedgerEntry::Trade(LedgerTrade {
                    payment,
                    store_id,
                    paid: flags & 1 != 0,
                    paid_on_day: flags & 2 != 0,
                    reversed,
                }))
            }
            1 => {
                let (trade, store_id) = get_payment(bytes)?;
                Some(LedgerEntry::Refund(LedgerRefund {
                    trade,
                    store_id,
                    wire_request_no: get_str(bytes)?,
                    state: get_str(bytes)?,
                    amount_minor: get_i64(bytes)?,
                    done_on_day: get_u8(bytes)? != 0,
                }))
            }
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn round_trip<R: Record + PartialEq + std::fmt::Debug>(records: &[R]) {
        let parent = std::env::temp_dir();
        let dir = WorkDir::create(&parent, &format!("spill-test-{}", records.len())).unwrap();
        let mut writer = Writer::create(&dir, "side").unwrap();
        for record in records {
            writer.write(record).unwrap();
        }
        writer.finish().unwrap();
        let mut back: Vec<(usize, R)> =
            (0..PARTITIONS).flat_map(|p| read(&dir, "side", p).unwrap().map(move |r| (p, r.unwrap()))).collect();
        assert_eq!(back.len(), records.len());
        for record in records {
            let at = back.iter().position(|(_, r)| r == record).unwrap();
            let (partition, _) = back.remove(at);
            assert_eq!(partition, partition_of(record.key()), "{record:?}");
        }
        let path = dir.path().to_owned();
        drop(dir);
        assert!(!path.exists(), "the work folder is removed");
    }

    #[test]
    fn records_come_back_as_written_in_the_partition_of_their_trade() {
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
        round_trip(&[
            row(BilledKind::Payment, "A1", "", Some("上海1号店")),
            row(BilledKind::Refund, "A1", "R1", None),
            row(BilledKind::Payment, "", "", Some("")),
        ]);
        let payment = |no: &str| LedgerPayment {
            tenant_id: Uuid::new_v4(),
            out_trade_no: no.into(),
            trade_no: Some("2026".into()),
            state: "CANCELLED".into(),
            currency: "USD".into(),
            amount_minor: 1200,
        };
        round_trip(&[
            LedgerEntry::Trade(LedgerTrade {
                payment: payment("A1"),
                store_id: None,
                paid: true,
                paid_on_day: false,
                reversed: Some((700, true)),
            }),
            LedgerEntry::Trade(LedgerTrade {
                payment: LedgerPayment { trade_no: None, ..payment("B2") },
                store_id: Some("S1".into()),
                paid: false,
                paid_on_day: true,
                reversed: None,
            }),
            LedgerEntry::Refund(LedgerRefund {
                trade: payment("A1"),
                store_id: Some("S1".into()),
                wire_request_no: "A1".into(),
                state: "SUCCESS".into(),
                amount_minor: 0,
                done_on_day: true,
            }),
        ]);
    }

    #[test]
    fn a_cut_or_foreign_record_is_an_error_not_a_panic() {
        let dir = WorkDir::create(&std::env::temp_dir(), "spill-test-cut").unwrap();
        std::fs::write(dir.file("side", 0), [9, 0, 0, 0, 1, 2]).unwrap();
        let records: Vec<_> = read::<BilledRow>(&dir, "side", 0).unwrap().collect();
        assert!(matches!(records.as_slice(), [Err(_)]), "{records:?}");
        std::fs::write(dir.file("side", 1), [3, 0, 0, 0, 7, 0, 0]).unwrap();
        let records: Vec<_> = read::<LedgerEntry>(&dir, "side", 1).unwrap().collect();
        assert!(matches!(records.as_slice(), [Err(_)]), "{records:?}");
    }
}
