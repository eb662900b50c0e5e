//! MAPI's XML envelope, read and written.
//!
//! ```text
//! <alipay><is_success>T</is_success><request>…echo…</request>
//!   <response><alipay><field>text</field>…</alipay></response>
//!   <sign>…</sign><sign_type>MD5</sign_type></alipay>
//! ```
//! or `<alipay><is_success>F</is_success><error>ILLEGAL_PARTNER</error></alipay>`.

use std::borrow::Cow;

use quick_xml::Reader;
use quick_xml::escape::{escape, unescape};
use quick_xml::events::Event;

/// The parts of a MAPI answer that matter.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct XmlAnswer {
    pub is_success: Option<String>,
    pub error: Option<String>,
    /// The children of `response/alipay`, in document order, unescaped.
    pub fields: Vec<(String, String)>,
    pub sign: Option<String>,
    pub sign_type: Option<String>,
}

/// The body is not a MAPI answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("not a MAPI XML answer")]
pub struct Unreadable;

/// Deepest element a MAPI answer has: alipay/response/alipay/field.
const MAX_DEPTH: usize = 4;

/// Where the reader is: the open elements' names (buffers reused, no allocation per element).
struct Path {
    names: [String; MAX_DEPTH],
    depth: usize,
}

impl Path {
    fn is(&self, expected: &[&str]) -> bool {
        self.depth == expected.len() && self.names.iter().zip(expected).all(|(name, want)| name == want)
    }

    /// Whether the current element's text is kept: the top-level fields and response/alipay/*.
    fn keeps_text(&self) -> bool {
        match self.depth {
            2 => self.names[0] == "alipay",
            4 => self.names[0] == "alipay" && self.names[1] == "response" && self.names[2] == "alipay",
            _ => false,
        }
    }
}

/// Reads an answer. Anything but the documented shape (a root other than `alipay`, nested
/// fields, malformed XML) is [`Unreadable`].
pub fn read(text: &str) -> Result<XmlAnswer, Unreadable> {
    let mut reader = Reader::from_str(text);
    let mut answer = XmlAnswer::default();
    let mut path = Path { names: Default::default(), depth: 0 };
    let mut buffer = String::new();
    let mut seen_root = false;
    loop {
        match reader.read_event().map_err(|_| Unreadable)? {
            Event::Start(start) => {
                let name = start.name();
                let name = name.as_ref();
                if path.depth == 0 {
                    if seen_root || name != "alipay" {
                        return Err(Unreadable);
                    }
                    seen_root = true;
                }
                if path.depth >= MAX_DEPTH {
                    return Err(Unreadable);
                }
                path.names[path.depth].clear();
                path.names[path.depth].push_str(name);
                path.depth += 1;
                buffer.clear();
            }
            Event::Empty(empty) => {
                if path.depth == 0 || path.depth >= MAX_DEPTH {
                    return Err(Unreadable);
                }
                path.names[path.depth].clear();
                path.names[path.depth].push_str(empty.name().as_ref());
                path.depth += 1;
                store(&mut answer, &path, String::new());
                path.depth -= 1;
            }
            Event::Text(text) if path.keeps_text() => buffer.push_str(&text.xml10_content()),
            Event::CData(data) if path.keeps_text() => buffer.push_str(&data),
            Event::GeneralRef(reference) if path.keeps_text() => {
                let entity = format!("&{};", &*reference);
                buffer.push_str(&unescape(&entity).map_err(|_| Unreadable)?);
            }
            Event::End(_) => {
                if path.keeps_text() {
                    store(&mut answer, &path, std::mem::take(&mut buffer));
                }
                path.depth = path.depth.saturating_sub(1);
            }
            Event::Eof => break,
            Event::Text(_) | Event::CData(_) | Event::GeneralRef(_) => {}
            Event::Decl(_) | Event::Comment(_) | Event::PI(_) | Event::DocType(_) => {}
        }
    }
    if !seen_root || path.depth != 0 {
        return Err(Unreadable);
    }
    Ok(answer)
}

fn store(answer: &mut XmlAnswer, path: &Path, value: String) {
    if path.is(&["alipay", "is_success"]) {
        answer.is_success = Some(value);
    } else if path.is(&["alipay", "error"]) {
        answer.error = Some(value);
    } else if path.is(&["alipay", "sign"]) {
        answer.sign = Some(value);
    } else if path.is(&["alipay", "sign_type"]) {
        answer.sign_type = Some(value);
    } else if path.depth == 4 && path.keeps_text() {
        answer.fields.push((path.names[3].clone(), value));
    }
}

/// Writes an answer document. `encoding` is the label for the XML declaration.
pub fn write(
    encoding: &str,
    request_echo: &[(&str, &str)],
    fields: &[(&str, &str)],
    sign: Option<(&str, &str)>,
) -> String {
    let mut out = String::with_capacity(512);
    out.push_str("<?xml version=\"1.0\" encoding=\"");
    out.push_str(encoding);
    out.push_str("\"?><alipay><is_success>T</is_success><request>");
    for (name, value) in request_echo {
        out.push_str("<param name=\"");
        out.push_str(&escape(*name));
        out.push_str("\">");
        out.push_str(&escape(*value));
        out.push_str("</param>");
    }
    out.push_str("</request><response><alipay>");
    for (name, value) in fields {
        push_element(&mut out, name, value);
    }
    out.push_str("</alipay></response>");
    if let Some((sign, sign_type)) = sign {
        push_element(&mut out, "sign", sign);
        push_element(&mut out, "sign_type", sign_type);
    }
    out.push_str("</alipay>");
    out
}

/// Writes a gateway-level rejection: `is_success=F` with `error`.
pub fn write_rejection(encoding: &str, error: &str) -> String {
    let mut out = String::with_capacity(128);
    out.push_str("<?xml version=\"1.0\" encoding=\"");
    out.push_str(encoding);
    out.push_str("\"?><alipay><is_success>F</is_success>");
    push_element(&mut out, "error", error);
    out.push_str("</alipay>");
    out
}

fn push_element(out: &mut String, name: &str, value: &str) {
    let escaped: Cow<'_, str> = escape(value);
    out.push('<');
    out.push_str(name);
    out.push('>');
    out.push_str(&escaped);
    out.push_str("</");
    out.push_str(name);
    out.push('>');
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_escaped_text() {
        let doc = write("UTF-8", &[("service", "x")], &[("a", "1 < 2 & \"q\""), ("b", "")], Some(("s", "MD5")));
        let answer = read(&doc).unwrap();
        assert_eq!(answer.is_success.as_deref(), Some("T"));
        assert_eq!(answer.fields, vec![("a".into(), "1 < 2 & \"q\"".into()), ("b".into(), String::new())]);
        assert_eq!(answer.sign.as_deref(), Some("s"));
    }

    #[test]
    fn refuses_other_shapes() {
        assert_eq!(read("<html><body>502</body></html>"), Err(Unreadable));
        assert_eq!(read("<alipay><response><alipay><a><b>x</b></a></alipay></response></alipay>"), Err(Unreadable));
        assert_eq!(read("<alipay><is_success>T</is_success>"), Err(Unreadable));
        assert_eq!(read(""), Err(Unreadable));
        assert_eq!(read("<alipay/>").map(|a| a.fields.len()), Err(Unreadable));
    }

    #[test]
    fn reads_a_rejection() {
        let answer = read(&write_rejection("UTF-8", "ILLEGAL_PARTNER")).unwrap();
        assert_eq!(answer.is_success.as_deref(), Some("F"));
        assert_eq!(answer.error.as_deref(), Some("ILLEGAL_PARTNER"));
    }
}
