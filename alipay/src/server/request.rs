//! Reading a `gateway.do` request: parameters may come in the query string, the form body, or
//! split between them (the SDKs differ), in the charset the request names (`charset` for
//! OpenAPI, `_input_charset` for MAPI).

use crate::charset::{Charset, RawPair, decode_form_component, split_form};
use crate::unified::Dialect;

/// Most parameters one request may carry.
pub const MAX_PARAMS: usize = 64;
/// Longest parameter name.
pub const MAX_KEY_LEN: usize = 64;
/// Longest parameter value (biz_content with goods details stays well under this).
pub const MAX_VALUE_LEN: usize = 32 * 1024;

/// A decoded request.
#[derive(Debug)]
pub struct GatewayRequest {
    pub params: Vec<(String, String)>,
    pub charset: Charset,
}

impl GatewayRequest {
    pub fn get(&self, key: &str) -> Option<&str> {
        self.params.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str())
    }

    /// The value, if present and not empty (Alipay ignores empty parameters).
    pub fn value(&self, key: &str) -> Option<&str> {
        self.get(key).filter(|v| !v.is_empty())
    }
}

/// Why a request could not be read; each maps to Alipay's error for it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RequestError {
    #[error("unsupported charset")]
    BadCharset,
    #[error("parameters are not valid in the request charset")]
    BadEncoding,
    #[error("parameter `{0}` is given twice with different values")]
    Conflict(String),
    #[error("too many parameters")]
    TooManyParams,
    #[error("parameter `{0}` is too long")]
    TooLong(String),
    #[error("the body is not a form (content-type {0})")]
    NotAForm(String),
}

/// What the request looks like before decoding: enough to answer in the right dialect.
#[derive(Debug, Clone)]
pub struct Peek {
    pub dialect: Dialect,
    /// `method` or `service` as sent (ASCII; lossy on anything else).
    pub call: Option<String>,
}

fn raw_value(pairs: &[RawPair<'_>], key: &str) -> Option<String> {
    pairs.iter().find(|p| p.key == key.as_bytes()).map(|p| {
        decode_form_component(p.value, Charset::Utf8).unwrap_or_else(|_| String::from_utf8_lossy(p.value).into_owned())
    })
}

/// Reads the request's dialect and call name, then decodes all of it.
pub fn read(
    query: Option<&str>,
    content_type: Option<&str>,
    body: &[u8],
) -> (Peek, Result<GatewayRequest, RequestError>) {
    let query_pairs: Vec<RawPair<'_>> = split_form(query.unwrap_or("").as_bytes()).collect();
    let body_is_form = match content_type {
        None => true,
        Some(ct) => ct.trim().to_ascii_lowercase().starts_with("application/x-www-form-urlencoded"),
    };
    let body_pairs: Vec<RawPair<'_>> =
        if body_is_form || body.is_empty() { split_form(body).collect() } else { Vec::new() };
    let all: Vec<RawPair<'_>> = query_pairs.into_iter().chain(body_pairs).collect();
    let dialect = if all.iter().any(|p| p.key == b"service") { Dialect::Mapi } else { Dialect::OpenApi };
    let call = raw_value(&all, if dialect == Dialect::Mapi { "service" } else { "method" });
    let peek = Peek { dialect, call };
    if !body_is_form && !body.is_empty() {
        return (peek, Err(RequestError::NotAForm(content_type.unwrap_or_default().chars().take(64).collect())));
    }
    let result = decode(&all, dialect);
    (peek, result)
}

fn decode(all: &[RawPair<'_>], dialect: Dialect) -> Result<GatewayRequest, RequestError> {
    if all.len() > MAX_PARAMS {
        return Err(RequestError::TooManyParams);
    }
    let (charset_key, default) = match dialect {
        Dialect::OpenApi => ("charset", Charset::Utf8),
        // The HK refund page gives GBK as MAPI's default.
        Dialect::Mapi => ("_input_charset", Charset::Gbk),
    };
    let charset = match raw_value(all, charset_key) {
        Some(label) if !label.is_empty() => label.parse().map_err(|_| RequestError::BadCharset)?,
        _ => default,
    };
    let mut params: Vec<(String, String)> = Vec::with_capacity(all.len());
    for pair in all {
        let key = decode_form_component(pair.key, charset).map_err(|_| RequestError::BadEncoding)?;
        if key.len() > MAX_KEY_LEN {
            return Err(RequestError::TooLong(key.chars().take(MAX_KEY_LEN).collect()));
        }
        let value = decode_form_component(pair.value, charset).map_err(|_| RequestError::BadEncoding)?;
        if value.len() > MAX_VALUE_LEN {
            return Err(RequestError::TooLong(key));
        }
        match params.iter().find(|(k, _)| *k == key) {
            Some((_, existing)) if *existing == value => {}
            Some(_) => return Err(RequestError::Conflict(key)),
            None => params.push((key, value)),
        }
    }
    Ok(GatewayRequest { params, charset })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn merges_query_and_body() {
        let (peek, req) = read(
            Some("method=alipay.trade.pay&charset=utf-8&sign=a%2Bb"),
            Some("application/x-www-form-urlencoded;charset=utf-8"),
            b"biz_content=%7B%7D&charset=utf-8",
        );
        assert_eq!(peek.dialect, Dialect::OpenApi);
        assert_eq!(peek.call.as_deref(), Some("alipay.trade.pay"));
        let req = req.unwrap();
        assert_eq!(req.get("sign"), Some("a+b"));
        assert_eq!(req.get("biz_content"), Some("{}"));
        assert_eq!(req.params.len(), 4);
    }

    #[test]
    fn refuses_conflicts_bad_charsets_and_bad_bytes() {
        assert_eq!(read(Some("method=a"), None, b"method=b").1.unwrap_err(), RequestError::Conflict("method".into()));
        assert_eq!(read(Some("charset=latin1"), None, b"").1.unwrap_err(), RequestError::BadCharset);
        assert_eq!(read(Some("charset=utf-8&x=%FF"), None, b"").1.unwrap_err(), RequestError::BadEncoding);
        assert!(matches!(read(None, Some("application/json"), b"{}").1, Err(RequestError::NotAForm(_))));
    }

    #[test]
    fn mapi_reads_gbk() {
        let (peek, req) = read(Some("service=x&_input_charset=GBK&trans_name=%C3%E6"), None, b"");
        assert_eq!(peek.dialect, Dialect::Mapi);
        assert_eq!(req.unwrap().get("trans_name"), Some("面"));
    }
}
