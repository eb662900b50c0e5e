//! The Global MAPI dialect: `gateway.do?service=...`, flat form parameters, XML answers, MD5 (the
//! merchant's key appended), RSA or RSA2 signatures over a canonical string that leaves out both
//! `sign` and `sign_type`.
//!
//! # Layout
//! - [`mod@self`]: the [`Service`] trait, request signing and verification, answer reading.
//! - [`xml`]: the XML envelope.
//! - `fields`: an answer's fields read into its typed struct.
//! - [`services`]: spot.pay, overseas.query, acquire.cancel, spot.refund, acquire.precreate.

mod fields;
pub mod services;
pub mod xml;

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::charset::{Charset, CharsetError};
use crate::ids::Partner;
use crate::openapi::{BuildError, Reply};
use crate::outcome::{Outcome, UnknownReason};
use crate::params::{Params, Unsigned, canonical};
use crate::sign::{BadSignature, SignError, Signer, Verifier};

/// One MAPI service with its request and answer types.
pub trait Service {
    /// `service`, e.g. `alipay.acquire.overseas.spot.pay`.
    const SERVICE: &'static str;
    type Answer: DeserializeOwned + Serialize;

    /// Adds the business parameters.
    fn write_params(&self, params: &mut Params);

    /// What a verified `is_success=T` answer proves.
    fn classify(answer: &Self::Answer) -> Outcome;
}

/// The common parameters of one request.
#[derive(Debug, Clone, Copy)]
pub struct RequestMeta<'a> {
    pub partner: &'a Partner,
    pub charset: Charset,
    pub notify_url: Option<&'a str>,
}

/// MAPI writes charset names upper case (`UTF-8`, `GBK`).
pub fn charset_label(charset: Charset) -> &'static str {
    match charset {
        Charset::Utf8 => "UTF-8",
        Charset::Gbk => "GBK",
    }
}

/// Builds and signs the full parameter set of `service` (including `sign` and `sign_type`).
pub fn build_request<S: Service>(service: &S, meta: &RequestMeta<'_>, signer: &Signer) -> Result<Params, BuildError> {
    let mut params = Params::new();
    params.set("service", S::SERVICE);
    params.set("partner", meta.partner.as_str());
    params.set("_input_charset", charset_label(meta.charset));
    params.set_opt("notify_url", meta.notify_url);
    service.write_params(&mut params);
    let text = params.canonical(Unsigned::SignAndSignType);
    let sign = signer.sign(&meta.charset.encode(&text)?)?;
    params.set("sign_type", signer.sign_type().as_str());
    params.set("sign", sign);
    Ok(params)
}

/// The text a MAPI signature covers (everything but `sign` and `sign_type`, empty values dropped).
pub fn signed_text<'a>(pairs: impl IntoIterator<Item = (&'a str, &'a str)>) -> String {
    canonical(pairs, Unsigned::SignAndSignType)
}

/// Verifies a received request's `sign`.
pub fn verify_request(params: &[(String, String)], charset: Charset, verifier: &Verifier) -> Result<(), BadSignature> {
    let sign = params.iter().find(|(k, _)| k == "sign").map(|(_, v)| v.as_str()).ok_or(BadSignature)?;
    let text = signed_text(params.iter().map(|(k, v)| (k.as_str(), v.as_str())));
    let bytes = charset.encode(&text).map_err(|_| BadSignature)?;
    verifier.verify(&bytes, sign)
}

/// Picks the charset an XML body declares (`encoding="GBK"`), else `fallback`.
fn declared_encoding(body: &[u8], fallback: Charset) -> Charset {
    let head = &body[..body.len().min(100)];
    let head = String::from_utf8_lossy(head).to_ascii_lowercase();
    if head.starts_with("<?xml") && (head.contains("encoding=\"gbk\"") || head.contains("encoding=\"gb2312\"")) {
        Charset::Gbk
    } else if head.starts_with("<?xml") && head.contains("encoding=\"utf-8\"") {
        Charset::Utf8
    } else {
        fallback
    }
}

/// Reads an answer body for `S`, verifies it (Alipay's key, or the merchant's MD5 key) over the
/// children of `response/alipay` in the request `charset`, decodes and classifies it.
pub fn read_reply<S: Service>(body: &[u8], charset: Charset, verifier: &Verifier) -> Reply<S::Answer> {
    let Ok(text) = declared_encoding(body, charset).decode(body) else {
        return Reply::unknown(UnknownReason::Unreadable);
    };
    let Ok(doc) = xml::read(&text) else {
        return Reply::unknown(UnknownReason::Unreadable);
    };
    match doc.is_success.as_deref() {
        Some("F") => {
            let error = doc.error.unwrap_or_default();
            let outcome = if error == "SYSTEM_ERROR" || error.is_empty() {
                Outcome::Unknown(UnknownReason::SystemError { code: "SYSTEM_ERROR".into() })
            } else {
                Outcome::failed("F", Some(error), None)
            };
            return Reply { outcome, answer: None };
        }
        Some("T") => {}
        _ => return Reply::unknown(UnknownReason::Unreadable),
    }
    let Some(sign) = doc.sign.as_deref() else {
        return Reply::unknown(UnknownReason::Unsigned);
    };
    let signed = signed_text(doc.fields.iter().map(|(k, v)| (k.as_str(), v.as_str())));
    let verified = charset.encode(&signed).is_ok_and(|bytes| verifier.verify(&bytes, sign).is_ok());
    if !verified {
        return Reply::unknown(UnknownReason::BadSignature);
    }
    match fields::decode::<S::Answer>(doc.fields) {
        Ok(answer) => Reply { outcome: S::classify(&answer), answer: Some(answer) },
        Err(_) => Reply::unknown(UnknownReason::Unreadable),
    }
}

/// An answer could not be written (sandbox side).
#[derive(Debug, thiserror::Error)]
pub enum WriteError {
    #[error(transparent)]
    Charset(#[from] CharsetError),
    #[error(transparent)]
    Sign(#[from] SignError),
    #[error("answer fields must be an object of strings")]
    NotFlat,
}

/// Writes a signed `is_success=T` answer whose fields are `answer` (sorted by name, empty
/// fields left out), encoded in `charset`.
pub fn write_answer<A: Serialize>(
    answer: &A,
    request_echo: &[(&str, &str)],
    signer: &Signer,
    charset: Charset,
) -> Result<Vec<u8>, WriteError> {
    let serde_json::Value::Object(object) = serde_json::to_value(answer).map_err(|_| WriteError::NotFlat)? else {
        return Err(WriteError::NotFlat);
    };
    let mut fields: Vec<(&str, &str)> = Vec::with_capacity(object.len());
    for (key, value) in &object {
        match value {
            serde_json::Value::String(text) if !text.is_empty() => fields.push((key.as_str(), text.as_str())),
            serde_json::Value::String(_) | serde_json::Value::Null => {}
            _ => return Err(WriteError::NotFlat),
        }
    }
    fields.sort_by(|a, b| a.0.cmp(b.0));
    let signed = signed_text(fields.iter().copied());
    let sign = signer.sign(&charset.encode(&signed)?)?;
    let doc = xml::write(charset_label(charset), request_echo, &fields, Some((&sign, signer.sign_type().as_str())));
    Ok(charset.encode(&doc)?.into_owned())
}

/// Writes an `is_success=F` gateway rejection, encoded in `charset`.
pub fn write_rejection(error: &str, charset: Charset) -> Vec<u8> {
    let doc = xml::write_rejection(charset_label(charset), error);
    // Error codes are ASCII, so the document is the same bytes in every supported charset.
    doc.into_bytes()
}
