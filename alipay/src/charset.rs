//! The request charsets Alipay accepts (`charset` on OpenAPI, `_input_charset` on MAPI), and the
//! `application/x-www-form-urlencoded` reading and writing done in them.
//!
//! Signatures cover the text encoded in the request charset, so a GBK request is signed over GBK
//! bytes. GB2312 is read as GBK, its superset.

use std::borrow::Cow;
use std::fmt;
use std::str::FromStr;

use encoding_rs::{Encoding, GBK, UTF_8};
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, percent_decode};

/// A request charset.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Charset {
    #[default]
    Utf8,
    Gbk,
}

/// The text is not valid in the named charset, or the charset is not one Alipay takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum CharsetError {
    #[error("unsupported charset")]
    Unsupported,
    #[error("bytes are not valid in the request charset")]
    Invalid,
    #[error("text cannot be written in the request charset")]
    Unrepresentable,
}

impl Charset {
    fn encoding(self) -> &'static Encoding {
        match self {
            Charset::Utf8 => UTF_8,
            Charset::Gbk => GBK,
        }
    }

    /// The label to send (`utf-8`, `GBK`).
    pub const fn label(self) -> &'static str {
        match self {
            Charset::Utf8 => "utf-8",
            Charset::Gbk => "GBK",
        }
    }

    /// Encodes text; fails if a character has no encoding in this charset.
    pub fn encode<'a>(self, text: &'a str) -> Result<Cow<'a, [u8]>, CharsetError> {
        match self {
            Charset::Utf8 => Ok(Cow::Borrowed(text.as_bytes())),
            Charset::Gbk => {
                let (bytes, _, unmappable) = GBK.encode(text);
                if unmappable { Err(CharsetError::Unrepresentable) } else { Ok(bytes) }
            }
        }
    }

    /// Decodes bytes strictly: malformed input is an error, never a replacement character.
    pub fn decode<'a>(self, bytes: &'a [u8]) -> Result<Cow<'a, str>, CharsetError> {
        self.encoding().decode_without_bom_handling_and_without_replacement(bytes).ok_or(CharsetError::Invalid)
    }
}

impl FromStr for Charset {
    type Err = CharsetError;

    fn from_str(label: &str) -> Result<Self, CharsetError> {
        if label.eq_ignore_ascii_case("utf-8") || label.eq_ignore_ascii_case("utf8") {
            Ok(Charset::Utf8)
        } else if label.eq_ignore_ascii_case("gbk") || label.eq_ignore_ascii_case("gb2312") {
            Ok(Charset::Gbk)
        } else {
            Err(CharsetError::Unsupported)
        }
    }
}

impl fmt::Display for Charset {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.label())
    }
}

/// Characters left as they are in a form value: `A-Z a-z 0-9 * - . _` (as Java's URLEncoder);
/// space becomes `+`.
const FORM_VALUE: &AsciiSet = &NON_ALPHANUMERIC.remove(b'*').remove(b'-').remove(b'.').remove(b'_').remove(b' ');

/// Appends `key=value` pairs to `out` as a form body in `charset`.
pub fn encode_form<'a>(
    pairs: impl IntoIterator<Item = (&'a str, &'a str)>,
    charset: Charset,
    out: &mut String,
) -> Result<(), CharsetError> {
    for (key, value) in pairs {
        if !out.is_empty() {
            out.push('&');
        }
        push_form_component(key, charset, out)?;
        out.push('=');
        push_form_component(value, charset, out)?;
    }
    Ok(())
}

fn push_form_component(text: &str, charset: Charset, out: &mut String) -> Result<(), CharsetError> {
    let bytes = charset.encode(text)?;
    for chunk in percent_encoding::percent_encode(&bytes, FORM_VALUE) {
        if chunk.contains(' ') {
            out.extend(chunk.chars().map(|c| if c == ' ' { '+' } else { c }));
        } else {
            out.push_str(chunk);
        }
    }
    Ok(())
}

/// One raw `key=value` pair of a form body, still percent-encoded.
#[derive(Debug, Clone, Copy)]
pub struct RawPair<'a> {
    pub key: &'a [u8],
    pub value: &'a [u8],
}

/// Splits a form body into raw pairs (empty segments are skipped, a missing `=` is an empty value).
pub fn split_form(body: &[u8]) -> impl Iterator<Item = RawPair<'_>> {
    body.split(|&b| b == b'&').filter(|segment| !segment.is_empty()).map(|segment| {
        match segment.iter().position(|&b| b == b'=') {
            Some(eq) => RawPair { key: &segment[..eq], value: &segment[eq + 1..] },
            None => RawPair { key: segment, value: &[] },
        }
    })
}

/// Decodes one form component once: `+` is a space, `%XX` a byte, then the bytes in `charset`.
pub fn decode_form_component(raw: &[u8], charset: Charset) -> Result<String, CharsetError> {
    let plus_free: Cow<'_, [u8]> = if raw.contains(&b'+') {
        Cow::Owned(raw.iter().map(|&b| if b == b'+' { b' ' } else { b }).collect())
    } else {
        Cow::Borrowed(raw)
    };
    let bytes: Cow<'_, [u8]> = percent_decode(&plus_free).into();
    Ok(charset.decode(&bytes)?.into_owned())
}

/// Decodes a whole form body in `charset` into `(key, value)` pairs, in order.
pub fn decode_form(body: &[u8], charset: Charset) -> Result<Vec<(String, String)>, CharsetError> {
    split_form(body)
        .map(|pair| Ok((decode_form_component(pair.key, charset)?, decode_form_component(pair.value, charset)?)))
        .collect()
}

/// Finds the charset a form names for itself (`charset` or `_input_charset`), defaulting to UTF-8.
pub fn declared_charset(body: &[u8], field: &str) -> Result<Charset, CharsetError> {
    for pair in split_form(body) {
        if pair.key == field.as_bytes() {
            let label = decode_form_component(pair.value, Charset::Utf8)?;
            return label.parse();
        }
    }
    Ok(Charset::Utf8)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn form_round_trips_in_both_charsets() {
        let pairs = [("subject", "面条 & 茶 100%+"), ("a", "")];
        for charset in [Charset::Utf8, Charset::Gbk] {
            let mut body = String::new();
            encode_form(pairs.iter().copied(), charset, &mut body).unwrap();
            let decoded = decode_form(body.as_bytes(), charset).unwrap();
            assert_eq!(decoded[0], ("subject".to_string(), "面条 & 茶 100%+".to_string()));
            assert_eq!(decoded[1], ("a".to_string(), String::new()));
        }
    }

    #[test]
    fn bad_bytes_are_errors_not_replacements() {
        assert_eq!(decode_form_component(b"%FF%FE", Charset::Utf8), Err(CharsetError::Invalid));
        assert_eq!("latin1".parse::<Charset>(), Err(CharsetError::Unsupported));
        assert_eq!(Charset::Gbk.encode("😀"), Err(CharsetError::Unrepresentable));
    }
}
