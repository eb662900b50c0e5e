//! The OpenAPI answer envelope.
//!
//! The signature covers the exact bytes of the `<method>_response` member's JSON value (or
//! `error_response`'s), from its `{` to the matching `}`, in the request charset. Some values
//! arrive with `/` escaped as `\/` while the signature covers the unescaped text, so a failed
//! check is retried once with `\/` read as `/` (as Alipay's Java SDK does).

use std::borrow::Cow;
use std::fmt;

use serde::de::{DeserializeSeed, Deserializer, IgnoredAny, MapAccess, Visitor};
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

use super::Call;
use crate::charset::{Charset, CharsetError};
use crate::outcome::{Outcome, UnknownReason, code_is};
use crate::sign::{SignError, Signer, Verifier};

/// The fields every OpenAPI answer has (except a successful oauth.token).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Status {
    pub code: String,
    pub msg: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sub_code: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sub_msg: Option<String>,
}

impl Status {
    pub fn success() -> Self {
        Status { code: "10000".into(), msg: "Success".into(), sub_code: None, sub_msg: None }
    }

    pub fn error(code: &str, msg: &str, sub_code: &str, sub_msg: &str) -> Self {
        Status { code: code.into(), msg: msg.into(), sub_code: Some(sub_code.into()), sub_msg: Some(sub_msg.into()) }
    }

    /// The classification shared by every method (design §4).
    pub fn classify(&self) -> Outcome {
        let sub = self.sub_code.as_deref().unwrap_or("");
        match self.code.as_str() {
            "10000" => Outcome::Success,
            "10003" => Outcome::Unknown(UnknownReason::BuyerPaying),
            "20000" => Outcome::Unknown(UnknownReason::SystemError { code: self.reason().to_owned() }),
            "40005" => Outcome::Unknown(UnknownReason::RateLimited),
            _ if code_is(sub, "SYSTEM_ERROR") => Outcome::Unknown(UnknownReason::SystemError { code: sub.to_owned() }),
            _ => Outcome::failed(self.code.clone(), self.sub_code.clone(), self.sub_msg.clone()),
        }
    }

    fn reason(&self) -> &str {
        self.sub_code.as_deref().unwrap_or(&self.code)
    }

    /// Gateway-level rejections Alipay sends unsigned, before any business processing:
    /// missing or invalid arguments, unknown app, token and permission errors.
    pub fn is_gateway_rejection(&self) -> bool {
        matches!(self.code.as_str(), "20001" | "40001" | "40002" | "40003" | "40006")
    }
}

/// What one answer body proves, with the answer when it could be trusted.
#[derive(Debug, Clone, PartialEq)]
pub struct Reply<A> {
    pub outcome: Outcome,
    /// The decoded answer: present when it verified, or when it is an unsigned gateway rejection.
    pub answer: Option<A>,
}

impl<A> Reply<A> {
    pub fn unknown(reason: UnknownReason) -> Self {
        Reply { outcome: Outcome::Unknown(reason), answer: None }
    }
}

/// The parts of an answer envelope.
struct Envelope<'a> {
    member: Option<&'a RawValue>,
    error_member: Option<&'a RawValue>,
    sign: Option<Cow<'a, str>>,
}

struct EnvelopeSeed<'k> {
    key: &'k str,
}

impl<'de> DeserializeSeed<'de> for EnvelopeSeed<'_> {
    type Value = Envelope<'de>;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for EnvelopeSeed<'_> {
    type Value = Envelope<'de>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an Alipay answer object")
    }

    fn visit_map<M: MapAccess<'de>>(self, mut map: M) -> Result<Envelope<'de>, M::Error> {
        let mut envelope = Envelope { member: None, error_member: None, sign: None };
        while let Some(key) = map.next_key::<Cow<'de, str>>()? {
            if key == self.key {
                envelope.member = Some(map.next_value()?);
            } else if key == "error_response" {
                envelope.error_member = Some(map.next_value()?);
            } else if key == "sign" {
                envelope.sign = Some(map.next_value()?);
            } else {
                map.next_value::<IgnoredAny>()?;
            }
        }
        Ok(envelope)
    }
}

/// Reads an answer body (bytes in the request charset) for call `C`, verifies it with Alipay's
/// public key (`verifier`), decodes it and classifies it.
pub fn read_reply<C: Call>(body: &[u8], charset: Charset, verifier: &Verifier) -> Reply<C::Answer> {
    let Ok(text) = charset.decode(body) else {
        return Reply::unknown(UnknownReason::Unreadable);
    };
    let mut deserializer = serde_json::Deserializer::from_str(&text);
    let envelope = match (EnvelopeSeed { key: C::RESPONSE_KEY }).deserialize(&mut deserializer) {
        Ok(envelope) if deserializer.end().is_ok() => envelope,
        _ => return Reply::unknown(UnknownReason::Unreadable),
    };
    let Some(member) = envelope.member.or(envelope.error_member) else {
        return Reply::unknown(UnknownReason::Unreadable);
    };
    let member = member.get();
    let Some(sign) = envelope.sign else {
        return unsigned_reply::<C>(member);
    };
    let verified = verify_member(member, &sign, charset, verifier);
    if !verified {
        return Reply::unknown(UnknownReason::BadSignature);
    }
    match serde_json::from_str::<C::Answer>(member) {
        Ok(answer) => Reply { outcome: C::classify(&answer), answer: Some(answer) },
        Err(_) => Reply::unknown(UnknownReason::Unreadable),
    }
}

fn verify_member(member: &str, sign: &str, charset: Charset, verifier: &Verifier) -> bool {
    let check = |text: &str| charset.encode(text).is_ok_and(|bytes| verifier.verify(&bytes, sign).is_ok());
    check(member) || (member.contains("\\/") && check(&member.replace("\\/", "/")))
}

/// An answer without `sign` proves something only when it is a gateway-level rejection.
fn unsigned_reply<C: Call>(member: &str) -> Reply<C::Answer> {
    let Ok(status) = serde_json::from_str::<Status>(member) else {
        return Reply::unknown(UnknownReason::Unsigned);
    };
    if !status.is_gateway_rejection() {
        return Reply::unknown(UnknownReason::Unsigned);
    }
    let answer = serde_json::from_str::<C::Answer>(member).ok();
    Reply { outcome: Outcome::failed(status.code, status.sub_code, status.sub_msg), answer }
}

/// An answer could not be written (sandbox side).
#[derive(Debug, thiserror::Error)]
pub enum WriteError {
    #[error(transparent)]
    Charset(#[from] CharsetError),
    #[error(transparent)]
    Sign(#[from] SignError),
}

/// Writes an answer envelope around `member` (a JSON object's text) in `charset`, signing the
/// member's exact bytes with `signer` when given.
pub fn write_answer(key: &str, member: &str, signer: Option<&Signer>, charset: Charset) -> Result<Vec<u8>, WriteError> {
    let mut out = String::with_capacity(member.len() + key.len() + 400);
    out.push_str("{\"");
    out.push_str(key);
    out.push_str("\":");
    out.push_str(member);
    if let Some(signer) = signer {
        let sign = signer.sign(&charset.encode(member)?)?;
        out.push_str(",\"sign\":\"");
        out.push_str(&sign);
        out.push('"');
    }
    out.push('}');
    Ok(charset.encode(&out)?.into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn status(code: &str, sub_code: Option<&str>) -> Status {
        Status { code: code.into(), msg: String::new(), sub_code: sub_code.map(Into::into), sub_msg: None }
    }

    #[test]
    fn only_proof_is_success_or_failure() {
        assert_eq!(status("10000", None).classify(), Outcome::Success);
        assert_eq!(status("10003", None).classify(), Outcome::Unknown(UnknownReason::BuyerPaying));
        assert!(matches!(
            status("20000", Some("isp.unknow-error")).classify(),
            Outcome::Unknown(UnknownReason::SystemError { .. })
        ));
        for sub in ["ACQ.SYSTEM_ERROR", "aop.ACQ.SYSTEM_ERROR", "AQC.SYSTEM_ERROR"] {
            let outcome = status("40004", Some(sub)).classify();
            assert!(matches!(outcome, Outcome::Unknown(UnknownReason::SystemError { .. })), "{sub}");
        }
        assert_eq!(
            status("40005", Some("isv.app-call-limited")).classify(),
            Outcome::Unknown(UnknownReason::RateLimited)
        );
        let failed = status("40004", Some("ACQ.BUYER_BALANCE_NOT_ENOUGH")).classify();
        assert!(matches!(failed, Outcome::Failed(f) if f.is("BUYER_BALANCE_NOT_ENOUGH")));
    }
}
