//! Opening a downloaded bill: the ZIP's entries found by name (GBK-decoded, or UTF-8 when
//! flagged or valid), in whatever order they come; the summary read and checked at once; the
//! detail then streamed from its entry.

use std::io::{Read, Seek};

use encoding_rs::GBK;
use zip::ZipArchive;
use zip::read::ZipFile;

use crate::Limits;
use crate::error::{BillError, Part, Problem};
use crate::trade::detail::DetailReader;
use crate::trade::header::BillHeader;
use crate::trade::summary::{ReadSummary, Summary, read_summary};

/// The ZIP flag saying an entry's name is UTF-8 (bit 11, "language encoding").
const UTF8_NAME_FLAG: u16 = 0x0800;

/// The detail rows streamed from the archive's detail entry.
pub type Rows<'a, R> = DetailReader<ZipFile<'a, R>>;

/// An opened trade bill (`<PID>0156_<yyyyMMdd>.csv.zip`).
pub struct TradeBill<R> {
    archive: ZipArchive<R>,
    detail: usize,
    summary: ReadSummary,
    limits: Limits,
}

/// Which entry a name is: `…业务明细.csv`, or `…业务明细(汇总).csv` with either parentheses.
fn classify(name: &str) -> Option<Part> {
    let base = name.rsplit(['/', '\\']).next().unwrap_or(name).to_lowercase();
    let stem = base.strip_suffix(".csv")?;
    if stem.ends_with("业务明细(汇总)") || stem.ends_with("业务明细（汇总）") {
        Some(Part::Summary)
    } else if stem.ends_with("业务明细") {
        Some(Part::Detail)
    } else {
        None
    }
}

/// An entry's part, from its raw name: the UTF-8 reading first when flagged, the GBK reading
/// first otherwise (Alipay's names are GBK without the flag).
fn classify_raw(raw: &[u8], utf8_flagged: bool) -> Option<Part> {
    let utf8 = || std::str::from_utf8(raw).ok().and_then(classify);
    let gbk = || GBK.decode_without_bom_handling_and_without_replacement(raw).and_then(|name| classify(&name));
    if utf8_flagged { utf8().or_else(gbk) } else { gbk().or_else(utf8) }
}

impl<R: Read + Seek> TradeBill<R> {
    /// Opens the archive with the default [`Limits`].
    pub fn open(reader: R) -> Result<Self, BillError> {
        Self::open_with(reader, &Limits::default())
    }

    /// Opens the archive: finds both entries, reads and checks the summary.
    pub fn open_with(reader: R, limits: &Limits) -> Result<Self, BillError> {
        let mut archive = ZipArchive::new(reader)?;
        if archive.len() > limits.max_entries {
            return Err(BillError::TooManyEntries { found: archive.len(), limit: limits.max_entries });
        }
        let (mut detail, mut summary) = (None, None);
        for index in 0..archive.len() {
            let entry = archive.by_index_raw(index)?;
            let flagged = entry.flags().as_u16() & UTF8_NAME_FLAG != 0;
            let Some(part) = classify_raw(entry.name_raw(), flagged) else {
                continue;
            };
            let slot = if part == Part::Detail { &mut detail } else { &mut summary };
            if slot.replace(index).is_some() {
                return Err(BillError::DuplicateEntry(part));
            }
        }
        let detail = detail.ok_or(BillError::MissingEntry(Part::Detail))?;
        let summary = summary.ok_or(BillError::MissingEntry(Part::Summary))?;
        let summary = read_summary(archive.by_index(summary)?, limits)?;
        Ok(TradeBill { archive, detail, summary, limits: *limits })
    }

    /// The account and window (as the summary states them; the detail must agree).
    pub fn header(&self) -> &BillHeader {
        &self.summary.summary.header
    }

    /// The summary file, read and checked in itself.
    pub fn summary(&self) -> &Summary {
        &self.summary.summary
    }

    /// The detail rows, streamed; checked at the end against the footer and the summary.
    pub fn rows(&mut self) -> Result<Rows<'_, R>, BillError> {
        let entry = self.archive.by_index(self.detail)?;
        let mut rows = DetailReader::new(entry, &self.limits)?;
        let expected = &self.summary.summary.header;
        if rows.header() != expected {
            // The account is on line 2, the window on line 3.
            let line = if rows.header().account != expected.account { 2 } else { 3 };
            return Err(BillError::Line { part: Part::Detail, line, problem: Problem::HeaderMismatch });
        }
        rows.expect_summary(self.summary.summary.total, self.summary.total_line);
        Ok(rows)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_are_known_by_their_names() {
        assert_eq!(classify("20880211096256330156_20190916_业务明细.csv"), Some(Part::Detail));
        assert_eq!(classify("20880211096256330156_20190916_业务明细(汇总).csv"), Some(Part::Summary));
        assert_eq!(classify("20880211096256330156_20190916_业务明细（汇总）.csv"), Some(Part::Summary));
        assert_eq!(classify("dir/x_业务明细.CSV"), Some(Part::Detail));
        assert_eq!(classify("x_财务明细.csv"), None);
        assert_eq!(classify("x_业务明细.csv.bak"), None);
        let (gbk, _, _) = GBK.encode("x_业务明细.csv");
        assert_eq!(classify_raw(&gbk, false), Some(Part::Detail));
        assert_eq!(classify_raw("x_业务明细(汇总).csv".as_bytes(), true), Some(Part::Summary));
        assert_eq!(classify_raw("x_业务明细(汇总).csv".as_bytes(), false), Some(Part::Summary));
    }
}
