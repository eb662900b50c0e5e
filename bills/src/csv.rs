//! One CSV line at a time, as Alipay's bill files write it: comma-separated, a TAB before the
//! comma of ID-like cells (so Excel keeps long numbers), and quoted cells read as RFC 4180 has
//! them, though the samples have none.

use std::borrow::Cow;

use crate::error::Problem;

/// No line of any layout here has more cells than this; more is refused without being split.
pub(crate) const MAX_CELLS: usize = 64;

/// A cell of a line: its byte range, without quotes and trailing TABs.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Cell {
    start: usize,
    end: usize,
    /// Quoted with `""` inside, to be unescaped.
    escaped: bool,
}

impl Cell {
    /// The cell's text, trailing TABs removed, quotes undone.
    pub(crate) fn text<'a>(&self, line: &'a str) -> Cow<'a, str> {
        let raw = self.raw(line);
        if self.escaped { Cow::Owned(raw.replace("\"\"", "\"")) } else { Cow::Borrowed(raw) }
    }

    /// The cell's text as written, trailing TABs removed, inner quotes still doubled.
    pub(crate) fn raw<'a>(&self, line: &'a str) -> &'a str {
        line.get(self.start..self.end).unwrap_or("")
    }
}

/// Splits `line` into `cells` (cleared first).
pub(crate) fn split(line: &str, cells: &mut Vec<Cell>) -> Result<(), Problem> {
    cells.clear();
    let b = line.as_bytes();
    if memchr::memchr(b'"', b).is_none() { split_unquoted(b, cells) } else { split_quoted(b, cells) }
}

/// [`split`] of a line with a quote somewhere: cells opening with one are read as RFC 4180 has
/// them.
fn split_quoted(b: &[u8], cells: &mut Vec<Cell>) -> Result<(), Problem> {
    let mut i = 0;
    loop {
        if cells.len() == MAX_CELLS {
            return Err(Problem::Columns { expected: MAX_CELLS, found: MAX_CELLS + 1 });
        }
        if b.get(i) == Some(&b'"') {
            let start = i + 1;
            let mut j = start;
            let mut escaped = false;
            let end = loop {
                match b.get(j..).and_then(|rest| rest.iter().position(|&c| c == b'"')) {
                    None => return Err(Problem::Quoting),
                    Some(q) if b.get(j + q + 1) == Some(&b'"') => {
                        escaped = true;
                        j += q + 2;
                    }
                    Some(q) => break j + q,
                }
            };
            i = end + 1;
            while b.get(i) == Some(&b'\t') {
                i += 1;
            }
            cells.push(Cell { start, end, escaped });
            match b.get(i) {
                None => return Ok(()),
                Some(b',') => i += 1,
                Some(_) => return Err(Problem::Quoting),
            }
        } else {
            let start = i;
            let next = b.get(i..).and_then(|rest| rest.iter().position(|&c| c == b',')).map(|p| i + p);
            let stop = next.unwrap_or(b.len());
            let mut end = stop;
            while end > start && b[end - 1] == b'\t' {
                end -= 1;
            }
            cells.push(Cell { start, end, escaped: false });
            match next {
                None => return Ok(()),
                Some(comma) => i = comma + 1,
            }
        }
    }
}

/// [`split`] of a line with no quote: every comma ends a cell. Commas are found eight bytes at a
/// time (a row has some 25 of them in 300 bytes; a search call per comma costs more than the
/// search).
fn split_unquoted(b: &[u8], cells: &mut Vec<Cell>) -> Result<(), Problem> {
    let mut start = 0;
    let mut cell = |stop: usize| {
        if cells.len() == MAX_CELLS {
            return Err(Problem::Columns { expected: MAX_CELLS, found: MAX_CELLS + 1 });
        }
        let mut end = stop;
        while end > start && b[end - 1] == b'\t' {
            end -= 1;
        }
        cells.push(Cell { start, end, escaped: false });
        start = stop + 1;
        Ok(())
    };
    let words = b.chunks_exact(8);
    let tail = words.remainder();
    let mut at = 0;
    for word in words {
        let mut commas =
            commas_in(u64::from_le_bytes([word[0], word[1], word[2], word[3], word[4], word[5], word[6], word[7]]));
        while commas != 0 {
            cell(at + commas.trailing_zeros() as usize / 8)?;
            commas &= commas - 1;
        }
        at += 8;
    }
    for (i, &byte) in tail.iter().enumerate() {
        if byte == b',' {
            cell(at + i)?;
        }
    }
    cell(b.len())
}

/// The high bit set in each byte of `word` that is a comma, and in no other (exact: no carry
/// crosses a byte).
fn commas_in(word: u64) -> u64 {
    const LOW7: u64 = 0x7f7f_7f7f_7f7f_7f7f;
    let x = word ^ 0x2c2c_2c2c_2c2c_2c2c;
    !(((x & LOW7) + LOW7) | x | LOW7)
}

/// Appends `text` as one cell, quoted if it holds a comma or a quote.
pub(crate) fn push_text(out: &mut String, text: &str) {
    if text.contains([',', '"']) {
        out.push('"');
        out.push_str(&text.replace('"', "\"\""));
        out.push('"');
    } else {
        out.push_str(text);
    }
}

/// Whether free text can go into a cell and come back the same: no control characters (a line
/// break ends the line, a trailing TAB is taken for Alipay's Excel guard).
pub(crate) fn is_cell_text(text: &str) -> bool {
    !text.chars().any(char::is_control)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cells(line: &str) -> Result<Vec<String>, Problem> {
        let mut out = Vec::new();
        split(line, &mut out)?;
        Ok(out.iter().map(|c| c.text(line).into_owned()).collect())
    }

    #[test]
    fn splits_alipay_rows_dropping_the_excel_tabs() {
        assert_eq!(cells("2019\t,T1\t,交易\t,面,,0.00\t,\t").unwrap(), ["2019", "T1", "交易", "面", "", "0.00", ""]);
        assert_eq!(cells("").unwrap(), [""]);
        assert_eq!(cells("a,").unwrap(), ["a", ""]);
    }

    #[test]
    fn reads_quoted_cells() {
        assert_eq!(cells("\"a,b\",\"say \"\"hi\"\"\"\t,c").unwrap(), ["a,b", "say \"hi\"", "c"]);
        assert_eq!(cells("x\"y,z").unwrap(), ["x\"y", "z"]);
        assert_eq!(cells("\"open,b"), Err(Problem::Quoting));
        assert_eq!(cells("\"a\"b,c"), Err(Problem::Quoting));
    }

    #[test]
    fn writes_what_it_reads() {
        for text in ["plain", "a,b", "\"quoted\"", "", "中文，全角"] {
            let mut line = String::new();
            push_text(&mut line, text);
            line.push_str(",end");
            assert_eq!(cells(&line).unwrap(), [text, "end"]);
        }
    }

    #[test]
    fn lines_without_quotes_split_alike_both_ways() {
        let many = ",".repeat(MAX_CELLS - 1);
        let too_many = ",".repeat(MAX_CELLS);
        // Commas beside '-' (one bit off ','), '¬' and 'Ĭ' (a ',' in their low bits), in every
        // place of an eight-byte word.
        let words = "2019\t,-0.01,,,-,,+,\t,,,,,,,,,,,,,,x,-,¬Ĭ,¬,Ĭ";
        for line in ["", ",", "a", "a,b\t\t,\t,c\t", "\t\t", "中,文\t,", words, &many, &too_many] {
            let (mut fast, mut general) = (Vec::new(), Vec::new());
            let (a, b) = (split_unquoted(line.as_bytes(), &mut fast), split_quoted(line.as_bytes(), &mut general));
            assert_eq!(a, b, "{line:?}");
            let texts = |cells: &[Cell]| cells.iter().map(|c| c.text(line).into_owned()).collect::<Vec<_>>();
            assert_eq!(texts(&fast), texts(&general), "{line:?}");
        }
    }

    #[test]
    fn refuses_too_many_cells() {
        assert!(cells(&",".repeat(MAX_CELLS)).is_err());
        assert_eq!(cells(&",".repeat(MAX_CELLS - 1)).unwrap().len(), MAX_CELLS);
    }
}
