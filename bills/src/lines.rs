//! Lines read from any `Read` through one fixed buffer, each bounded in length, and decoded
//! strictly (a byte sequence the encoding does not have is refused, never replaced).

use std::io::{self, Read};

use encoding_rs::{DecoderResult, GBK};

use crate::Limits;
use crate::error::{BillError, Part, Problem};

/// The buffer is at least this large, so reads from the source are few.
const MIN_BUFFER: usize = 64 * 1024;

/// After the content proper, at most this many further lines (blank, or comments) are read.
pub(crate) const MAX_TRAILING_LINES: usize = 32;

/// The text encoding of a file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Encoding {
    Gbk,
    Utf8,
}

/// A file read line by line: the current line, decoded, in `text`.
pub(crate) struct Lines<R> {
    inner: R,
    buf: Box<[u8]>,
    start: usize,
    end: usize,
    eof: bool,
    number: u64,
    max: usize,
    part: Part,
    encoding: Encoding,
    /// The current line, decoded.
    pub(crate) text: String,
}

impl<R: Read> Lines<R> {
    pub(crate) fn new(inner: R, limits: &Limits, part: Part, encoding: Encoding) -> Self {
        let max = limits.max_line_bytes;
        let size = max.saturating_add(2).max(MIN_BUFFER);
        Lines {
            inner,
            buf: vec![0; size].into_boxed_slice(),
            start: 0,
            end: 0,
            eof: false,
            number: 0,
            max,
            part,
            encoding,
            text: String::new(),
        }
    }

    /// The number of the line last read (1-based; 0 before the first).
    pub(crate) fn number(&self) -> u64 {
        self.number
    }

    /// An error about the line last read.
    pub(crate) fn error(&self, problem: Problem) -> BillError {
        BillError::Line { part: self.part, line: self.number, problem }
    }

    /// An error about the line after the last one read (what should have come next).
    pub(crate) fn error_next(&self, problem: Problem) -> BillError {
        BillError::Line { part: self.part, line: self.number.saturating_add(1), problem }
    }

    /// Reads the next line into `text`, without its line ending (`\n` or `\r\n`). `false` at the
    /// end of the file.
    pub(crate) fn advance(&mut self) -> Result<bool, BillError> {
        let (s, e) = loop {
            if let Some(i) = memchr::memchr(b'\n', &self.buf[self.start..self.end]) {
                let s = self.start;
                self.start = s + i + 1;
                break (s, s + i);
            }
            // Room for the longest line and a `\r` before its `\n`.
            if self.end - self.start > self.max.saturating_add(1) {
                self.number += 1;
                return Err(self.error(Problem::TooLong { limit: self.max }));
            }
            if self.eof {
                if self.start == self.end {
                    return Ok(false);
                }
                let s = self.start;
                self.start = self.end;
                break (s, self.end);
            }
            self.fill()?;
        };
        self.number += 1;
        let e = if e > s && self.buf[e - 1] == b'\r' { e - 1 } else { e };
        if e - s > self.max {
            return Err(self.error(Problem::TooLong { limit: self.max }));
        }
        let ok = match self.encoding {
            Encoding::Gbk => decode_gbk(&self.buf[s..e], &mut self.text),
            Encoding::Utf8 => decode_utf8(&self.buf[s..e], &mut self.text),
        };
        if !ok {
            let name = match self.encoding {
                Encoding::Gbk => "GBK",
                Encoding::Utf8 => "UTF-8",
            };
            return Err(self.error(Problem::Encoding(name)));
        }
        Ok(true)
    }

    fn fill(&mut self) -> Result<(), BillError> {
        if self.start > 0 {
            self.buf.copy_within(self.start..self.end, 0);
            self.end -= self.start;
            self.start = 0;
        }
        loop {
            match self.inner.read(&mut self.buf[self.end..]) {
                Ok(0) => {
                    self.eof = true;
                    return Ok(());
                }
                Ok(n) => {
                    self.end = self.end.saturating_add(n).min(self.buf.len());
                    return Ok(());
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(source) => return Err(BillError::Io { part: self.part, line: self.number, source }),
            }
        }
    }

    /// Reads to the end of the file, allowing only blank lines on the way (at most
    /// [`MAX_TRAILING_LINES`]). Reading to the end is what makes a ZIP entry check its CRC.
    pub(crate) fn expect_end(&mut self) -> Result<(), BillError> {
        for _ in 0..MAX_TRAILING_LINES {
            if !self.advance()? {
                return Ok(());
            }
            if !self.text.trim().is_empty() {
                return Err(self.error(Problem::Unexpected("the end of the file")));
            }
        }
        Err(self.error_next(Problem::Unexpected("the end of the file")))
    }
}

/// Decodes GBK strictly into `out`; `false` if the bytes are not GBK.
pub(crate) fn decode_gbk(bytes: &[u8], out: &mut String) -> bool {
    out.clear();
    if bytes.is_ascii() {
        return decode_utf8(bytes, out);
    }
    let mut decoder = GBK.new_decoder_without_bom_handling();
    let Some(room) = decoder.max_utf8_buffer_length_without_replacement(bytes.len()) else {
        return false;
    };
    out.reserve(room);
    let (result, _) = decoder.decode_to_string_without_replacement(bytes, out, true);
    matches!(result, DecoderResult::InputEmpty)
}

/// Copies UTF-8 into `out`; `false` if the bytes are not UTF-8.
pub(crate) fn decode_utf8(bytes: &[u8], out: &mut String) -> bool {
    out.clear();
    match std::str::from_utf8(bytes) {
        Ok(text) => {
            out.push_str(text);
            true
        }
        Err(_) => false,
    }
}

/// Encodes `text` as GBK, or `None` if a character has no GBK form.
pub(crate) fn encode_gbk(text: &str) -> Option<std::borrow::Cow<'_, [u8]>> {
    let (bytes, _, unmappable) = GBK.encode(text);
    if unmappable { None } else { Some(bytes) }
}

/// Whether `text` survives GBK both ways: encodable, and decoding to itself (a few characters,
/// private-use ones among them, encode to bytes that read back as another character).
pub(crate) fn gbk_round_trips(text: &str) -> bool {
    if text.is_ascii() {
        return true;
    }
    let Some(bytes) = encode_gbk(text) else {
        return false;
    };
    GBK.decode_without_bom_handling_and_without_replacement(&bytes).is_some_and(|back| back == text)
}

/// Normalises the full-width punctuation of comment and header lines to ASCII
/// (`：，（）` → `:,()`), since samples show both forms.
pub(crate) fn ascii_punctuation(text: &str) -> String {
    text.chars()
        .map(|c| match c {
            '：' => ':',
            '，' => ',',
            '（' => '(',
            '）' => ')',
            other => other,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lines(input: &[u8], max: usize) -> Vec<Result<String, Problem>> {
        let limits = Limits { max_line_bytes: max, ..Limits::default() };
        let mut lines = Lines::new(input, &limits, Part::Detail, Encoding::Gbk);
        let mut out = Vec::new();
        loop {
            match lines.advance() {
                Ok(true) => out.push(Ok(lines.text.clone())),
                Ok(false) => return out,
                Err(e) => {
                    out.push(Err(e.problem().cloned().unwrap()));
                    return out;
                }
            }
        }
    }

    #[test]
    fn splits_on_either_line_ending_and_keeps_an_unterminated_last_line() {
        let got = lines(b"a\r\nb\n\nc", 16);
        let texts: Vec<String> = got.into_iter().map(Result::unwrap).collect();
        assert_eq!(texts, ["a", "b", "", "c"]);
    }

    #[test]
    fn refuses_a_line_past_the_bound_but_takes_one_at_it() {
        assert_eq!(lines(b"12345\n", 5), [Ok("12345".to_owned())]);
        assert_eq!(lines(b"12345\r\n", 5), [Ok("12345".to_owned())]);
        assert_eq!(lines(b"123456\n", 5), [Err(Problem::TooLong { limit: 5 })]);
        // A long line with no newline at all, longer than the buffer.
        let long = vec![b'x'; 200_000];
        assert_eq!(lines(&long, 5), [Err(Problem::TooLong { limit: 5 })]);
    }

    #[test]
    fn decodes_gbk_strictly() {
        let (gbk, _, _) = GBK.encode("业务明细");
        assert_eq!(lines(&gbk, 64), [Ok("业务明细".to_owned())]);
        assert_eq!(lines(b"\xff\xff\n", 64), [Err(Problem::Encoding("GBK"))]);
        assert_eq!(ascii_punctuation("#账号：[1]（元）"), "#账号:[1](元)");
        assert!(gbk_round_trips("牛肉面（大）€"));
        assert!(!gbk_round_trips("\u{e5e5}"), "a private-use character GBK reads back as another");
        assert!(!gbk_round_trips("🍜"));
    }
}
