//! Any bytes as an answer body: an OpenAPI JSON answer for every call and a MAPI XML answer for
//! every service, read in both charsets with RSA2, RSA and MD5 verifiers. Never panics, never
//! proves success (random bytes carry no valid signature), and what it does prove is only what
//! may arrive unsigned: an OpenAPI gateway rejection, a MAPI `is_success=F`.

#![no_main]

use std::sync::LazyLock;

use alipay::charset::Charset;
use alipay::mapi::services::{AcquireCancel, AcquirePrecreate, OverseasQuery, SpotPay, SpotRefund};
use alipay::openapi::oauth::OauthToken;
use alipay::openapi::trade::{RefundQuery, TradeCancel, TradeClose, TradePay, TradePrecreate, TradeQuery, TradeRefund};
use alipay::openapi::{Call, Reply};
use alipay::test_keys::{ALIPAY_PUBLIC, MD5_KEY};
use alipay::{Md5Key, Outcome, SignType, Verifier, mapi, openapi};
use libfuzzer_sys::fuzz_target;

/// Codes OpenAPI sends unsigned, before any business processing (`Status::is_gateway_rejection`).
const GATEWAY_REJECTIONS: [&str; 5] = ["20001", "40001", "40002", "40003", "40006"];

static VERIFIERS: LazyLock<[Verifier; 3]> = LazyLock::new(|| {
    let rsa = |sign_type| Verifier::from_key_text(sign_type, ALIPAY_PUBLIC).unwrap_or_else(|e| panic!("{e}"));
    let md5 = Verifier::md5(Md5Key::new(MD5_KEY).unwrap_or_else(|e| panic!("{e}")));
    [rsa(SignType::Rsa2), rsa(SignType::Rsa), md5]
});

fuzz_target!(|body: &[u8]| {
    for charset in [Charset::Utf8, Charset::Gbk] {
        for verifier in VERIFIERS.iter() {
            openapi_reply::<TradePay>(body, charset, verifier);
            openapi_reply::<TradeQuery>(body, charset, verifier);
            openapi_reply::<TradeCancel>(body, charset, verifier);
            openapi_reply::<TradeRefund>(body, charset, verifier);
            openapi_reply::<RefundQuery>(body, charset, verifier);
            openapi_reply::<TradePrecreate>(body, charset, verifier);
            openapi_reply::<TradeClose>(body, charset, verifier);
            openapi_reply::<OauthToken>(body, charset, verifier);
            mapi_reply::<SpotPay>(body, charset, verifier);
            mapi_reply::<OverseasQuery>(body, charset, verifier);
            mapi_reply::<AcquireCancel>(body, charset, verifier);
            mapi_reply::<SpotRefund>(body, charset, verifier);
            mapi_reply::<AcquirePrecreate>(body, charset, verifier);
        }
    }
    // What the XML reader takes from a document, written back (as the sandbox writes answers),
    // reads back the same: the fields a signature covers survive the trip.
    if let Ok(text) = std::str::from_utf8(body)
        && let Ok(doc) = mapi::xml::read(text)
    {
        let fields: Vec<(&str, &str)> = doc.fields.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        let sign = doc.sign.as_deref().map(|sign| (sign, doc.sign_type.as_deref().unwrap_or("MD5")));
        let written = mapi::xml::write("UTF-8", &[], &fields, sign);
        let again = mapi::xml::read(&written).unwrap_or_else(|_| panic!("unreadable once written: {written:?}"));
        assert_eq!(again.fields, doc.fields, "fields changed on the way: {written:?}");
        assert_eq!(again.sign, doc.sign, "sign changed on the way: {written:?}");
    }
});

fn openapi_reply<C: Call>(body: &[u8], charset: Charset, verifier: &Verifier) {
    let reply: Reply<C::Answer> = openapi::read_reply::<C>(body, charset, verifier);
    match &reply.outcome {
        Outcome::Success => panic!("{} proved success with {verifier:?} in {charset}", C::METHOD),
        Outcome::Failed(failure) => assert!(
            GATEWAY_REJECTIONS.contains(&failure.code.as_str()),
            "{}: unsigned {failure:?} taken as a proven failure",
            C::METHOD
        ),
        Outcome::Unknown(_) => assert!(reply.answer.is_none(), "{}: an unproven answer was kept", C::METHOD),
    }
    assert_eq!(openapi::read_reply::<C>(body, charset, verifier).outcome, reply.outcome, "not deterministic");
}

fn mapi_reply<S: mapi::Service>(body: &[u8], charset: Charset, verifier: &Verifier) {
    let reply = mapi::read_reply::<S>(body, charset, verifier);
    assert!(reply.answer.is_none(), "{}: an unverified answer was kept", S::SERVICE);
    match &reply.outcome {
        Outcome::Success => panic!("{} proved success with {verifier:?} in {charset}", S::SERVICE),
        Outcome::Failed(failure) => {
            assert_eq!(failure.code, "F", "{}: {failure:?} without is_success=F", S::SERVICE);
            assert!(failure.sub_code.as_deref().is_some_and(|e| !e.is_empty() && e != "SYSTEM_ERROR"));
        }
        Outcome::Unknown(_) => {}
    }
}
