//! Flat request parameters and the canonical string both dialects sign.
//!
//! The rule (alipay-protocol.md A3, B3): drop `sign` (and `sign_type` where the dialect says so),
//! drop empty values, sort by key in ASCII order, join raw `k=v` pairs with `&`.

use std::borrow::Cow;

use crate::charset::{Charset, CharsetError, encode_form};

/// Which keys the canonical string leaves out besides empty values.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unsigned {
    /// OpenAPI requests: only `sign` (sign_type is signed).
    Sign,
    /// MAPI everything, and OpenAPI notifications: `sign` and `sign_type`.
    SignAndSignType,
}

impl Unsigned {
    fn skips(self, key: &str) -> bool {
        key == "sign" || (self == Unsigned::SignAndSignType && key == "sign_type")
    }
}

/// Builds the canonical string over `(key, value)` pairs.
pub fn canonical<'a>(pairs: impl IntoIterator<Item = (&'a str, &'a str)>, unsigned: Unsigned) -> String {
    let mut kept: Vec<(&str, &str)> = pairs.into_iter().filter(|(k, v)| !v.is_empty() && !unsigned.skips(k)).collect();
    kept.sort_by(|a, b| a.0.as_bytes().cmp(b.0.as_bytes()));
    let len = kept.iter().map(|(k, v)| k.len() + v.len() + 2).sum();
    let mut out = String::with_capacity(len);
    for (k, v) in kept {
        if !out.is_empty() {
            out.push('&');
        }
        out.push_str(k);
        out.push('=');
        out.push_str(v);
    }
    out
}

/// An ordered set of request parameters; setting a key again replaces its value.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Params(Vec<(Cow<'static, str>, String)>);

impl Params {
    pub fn new() -> Self {
        Self(Vec::with_capacity(16))
    }

    /// Sets `key` to `value`; an empty value is kept here and left out of the signature.
    pub fn set(&mut self, key: impl Into<Cow<'static, str>>, value: impl Into<String>) {
        let key = key.into();
        let value = value.into();
        match self.0.iter_mut().find(|(k, _)| *k == key) {
            Some(slot) => slot.1 = value,
            None => self.0.push((key, value)),
        }
    }

    /// Sets `key` only when there is a value.
    pub fn set_opt(&mut self, key: &'static str, value: Option<impl Into<String>>) {
        if let Some(value) = value {
            self.set(key, value);
        }
    }

    pub fn get(&self, key: &str) -> Option<&str> {
        self.0.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str())
    }

    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.0.iter().map(|(k, v)| (k.as_ref(), v.as_str()))
    }

    pub fn canonical(&self, unsigned: Unsigned) -> String {
        canonical(self.iter(), unsigned)
    }

    /// The parameters as a form body in `charset` (empty values left out, as the SDKs do).
    pub fn to_form(&self, charset: Charset) -> Result<String, CharsetError> {
        let mut out = String::with_capacity(512);
        encode_form(self.iter().filter(|(_, v)| !v.is_empty()), charset, &mut out)?;
        Ok(out)
    }
}

impl<K: Into<Cow<'static, str>>, V: Into<String>> FromIterator<(K, V)> for Params {
    fn from_iter<I: IntoIterator<Item = (K, V)>>(iter: I) -> Self {
        let mut params = Params::new();
        for (k, v) in iter {
            params.set(k, v);
        }
        params
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn drops_empty_and_unsigned_keys_and_sorts_by_byte() {
        let pairs =
            [("b", "2"), ("sign", "x"), ("sign_type", "RSA2"), ("_input_charset", "UTF-8"), ("a", ""), ("B", "1")];
        assert_eq!(canonical(pairs, Unsigned::Sign), "B=1&_input_charset=UTF-8&b=2&sign_type=RSA2");
        assert_eq!(canonical(pairs, Unsigned::SignAndSignType), "B=1&_input_charset=UTF-8&b=2");
    }

    #[test]
    fn values_are_raw() {
        let pairs = [("biz_content", "{\"a\":\"x&y=z\"}"), ("subject", "面 条")];
        assert_eq!(canonical(pairs, Unsigned::Sign), "biz_content={\"a\":\"x&y=z\"}&subject=面 条");
    }
}
