//! Every signature vector produced by OpenSSL (`tests/vectors`, a copy of `shared/vectors`) is
//! reproduced and verified, and a one-byte change to any signed text or signature fails.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::Arc;

use alipay::charset::Charset;
use alipay::mapi::services::{SpotPay, SpotPayAnswer};
use alipay::notify::verify_notification;
use alipay::openapi::trade::{TradePay, TradePrecreate};
use alipay::openapi::{self, RequestMeta};
use alipay::params::{Unsigned, canonical};
use alipay::{
    Amount, Currency, Md5Key, Outcome, PrivateKey, PublicKey, SignType, Signer, UnknownReason, Verifier, mapi,
};
use serde_json::Value;

const VECTORS: &str = include_str!("vectors/vectors.json");

fn vector(name: &str) -> Value {
    let all: Vec<Value> = serde_json::from_str(VECTORS).unwrap();
    all.into_iter().find(|v| v["name"] == name).unwrap_or_else(|| panic!("no vector {name}"))
}

fn key_file(name: &str) -> String {
    std::fs::read_to_string(format!("{}/tests/vectors/keys/{name}", env!("CARGO_MANIFEST_DIR"))).unwrap()
}

fn params(v: &Value) -> Vec<(String, String)> {
    v["params"].as_object().unwrap().iter().map(|(k, v)| (k.clone(), v.as_str().unwrap().to_owned())).collect()
}

fn pairs(params: &[(String, String)]) -> impl Iterator<Item = (&str, &str)> {
    params.iter().map(|(k, v)| (k.as_str(), v.as_str()))
}

const PRIVATE_FORMS: [&str; 4] = ["private-pkcs1.pem", "private-pkcs8.pem", "private-pkcs1.b64", "private-pkcs8.b64"];
const PUBLIC_FORMS: [&str; 2] = ["public-spki.pem", "public-spki.b64"];

fn signers(owner: &str, sign_type: SignType) -> Vec<Signer> {
    PRIVATE_FORMS
        .iter()
        .map(|form| Signer::from_secret(sign_type, &key_file(&format!("{owner}-{form}"))).unwrap())
        .collect()
}

fn verifiers(owner: &str, sign_type: SignType) -> Vec<Verifier> {
    PUBLIC_FORMS
        .iter()
        .map(|form| Verifier::from_key_text(sign_type, &key_file(&format!("{owner}-{form}"))).unwrap())
        .collect()
}

/// Every one-byte change of `text` and of `sign` fails verification.
fn assert_tamper_fails(verifier: &Verifier, text: &[u8], sign: &str) {
    verifier.verify(text, sign).expect("the untouched vector verifies");
    for i in 0..text.len() {
        let mut changed = text.to_vec();
        changed[i] ^= 0x01;
        assert!(verifier.verify(&changed, sign).is_err(), "text changed at byte {i} still verifies");
    }
    for i in 0..sign.len() {
        let mut changed = sign.as_bytes().to_vec();
        changed[i] = if changed[i] == b'A' { b'B' } else { b'A' };
        let changed = String::from_utf8(changed).unwrap();
        if changed != sign {
            assert!(verifier.verify(text, &changed).is_err(), "signature changed at {i} still verifies");
        }
    }
}

fn openapi_request(name: &str, sign_type: SignType) {
    let v = vector(name);
    let params = params(&v);
    let text = openapi::request_signed_text(pairs(&params));
    assert_eq!(text, v["canonical"].as_str().unwrap());
    let expected = v["sign"].as_str().unwrap();
    for signer in signers("merchant", sign_type) {
        assert_eq!(signer.sign(text.as_bytes()).unwrap(), expected);
    }
    for verifier in verifiers("merchant", sign_type) {
        assert_tamper_fails(&verifier, text.as_bytes(), expected);
    }
    let mut with_sign = params.clone();
    with_sign.push(("sign".into(), expected.into()));
    let verifier = &verifiers("merchant", sign_type)[0];
    openapi::verify_request(&with_sign, Charset::Utf8, verifier).unwrap();
}

#[test]
fn openapi_request_rsa2() {
    openapi_request("openapi-request-RSA2", SignType::Rsa2);
}

#[test]
fn openapi_request_rsa() {
    openapi_request("openapi-request-RSA", SignType::Rsa);
}

#[test]
fn typed_trade_pay_reproduces_the_vector_signature() {
    let v = vector("openapi-request-RSA2");
    let mut pay = TradePay::new(
        "20261125T0001".parse().unwrap(),
        "281234567890123400".parse().unwrap(),
        "Combo meal #3".parse().unwrap(),
        Amount::parse("88.88", Currency::CNY).unwrap(),
    );
    pay.store_id = Some("SH-001".parse().unwrap());
    let app_id = "2021000000000001".parse().unwrap();
    let meta = RequestMeta {
        app_id: &app_id,
        charset: Charset::Utf8,
        timestamp: "2026-11-25 10:15:30",
        notify_url: None,
        app_auth_token: None,
    };
    let signer = Signer::from_secret(SignType::Rsa2, &key_file("merchant-private-pkcs8.pem")).unwrap();
    let built = openapi::build_request(&pay, &meta, &signer).unwrap();
    assert_eq!(built.canonical(Unsigned::Sign), v["canonical"].as_str().unwrap());
    assert_eq!(built.get("sign"), v["sign"].as_str());
}

#[test]
fn openapi_response_rsa2() {
    let v = vector("openapi-response-RSA2");
    let body = v["body"].as_str().unwrap();
    let signed = v["signed_text"].as_str().unwrap();
    let sign = v["sign"].as_str().unwrap();
    for verifier in verifiers("alipay", SignType::Rsa2) {
        assert_tamper_fails(&verifier, signed.as_bytes(), sign);
        let reply = openapi::read_reply::<TradePay>(body.as_bytes(), Charset::Utf8, &verifier);
        assert_eq!(reply.outcome, Outcome::Success);
        let answer = reply.answer.unwrap();
        assert_eq!(answer.trade_no.unwrap().as_str(), "2026112522001425130501234567");
        assert_eq!(answer.total_amount.unwrap().to_amount(Currency::CNY).unwrap().minor(), 8888);
    }
    // Any one-byte change inside the signed member makes the whole answer prove nothing.
    let verifier = &verifiers("alipay", SignType::Rsa2)[0];
    let start = body.find(signed).unwrap();
    for i in start..start + signed.len() {
        let mut changed = body.as_bytes().to_vec();
        changed[i] ^= 0x01;
        let reply = openapi::read_reply::<TradePay>(&changed, Charset::Utf8, verifier);
        assert!(matches!(reply.outcome, Outcome::Unknown(_)), "byte {i}: {:?}", reply.outcome);
        assert!(reply.answer.is_none());
    }
}

#[test]
fn openapi_response_escaped_slash_is_verified_on_the_second_try() {
    let v = vector("openapi-response-escaped-slash");
    let body = v["body"].as_str().unwrap();
    let sign = v["sign"].as_str().unwrap();
    let verifier = &verifiers("alipay", SignType::Rsa2)[0];
    let raw_member = &body[body.find(":{").unwrap() + 1..body.find(",\"sign\"").unwrap()];
    assert!(verifier.verify(raw_member.as_bytes(), sign).is_err(), "the raw text must not verify");
    assert_tamper_fails(verifier, v["signed_text"].as_str().unwrap().as_bytes(), sign);
    let reply = openapi::read_reply::<TradePrecreate>(body.as_bytes(), Charset::Utf8, verifier);
    assert_eq!(reply.outcome, Outcome::Success);
    assert_eq!(reply.answer.unwrap().qr_code.unwrap(), "https://qr.alipay.com/bax03431ljhokirwl38f00a7");
}

#[test]
fn openapi_notify_rsa2() {
    let v = vector("openapi-notify-RSA2");
    let body = v["form_urlencoded"].as_str().unwrap();
    let expected = v["canonical"].as_str().unwrap();
    for verifier in verifiers("alipay", SignType::Rsa2) {
        let notification = verify_notification(body.as_bytes(), "charset", &verifier).unwrap();
        assert_eq!(canonical(notification.fields(), Unsigned::SignAndSignType), expected);
        assert_eq!(notification.get("subject"), Some("Noodles & tea"));
        assert_tamper_fails(&verifier, expected.as_bytes(), v["sign"].as_str().unwrap());
    }
    let verifier = &verifiers("alipay", SignType::Rsa2)[0];
    // Every byte of the body except `sign_type=RSA2&`, which the signature does not cover (a
    // damaged sign_type turns into an unsigned, empty, ignored parameter).
    let unsigned = body.find("sign_type=RSA2&").unwrap();
    for i in (0..body.len()).filter(|i| !(unsigned..unsigned + 15).contains(i)) {
        let mut changed = body.as_bytes().to_vec();
        changed[i] = if changed[i] == b'1' { b'2' } else { b'1' };
        assert!(verify_notification(&changed, "charset", verifier).is_err(), "byte {i}");
    }
}

#[test]
fn mapi_request_md5() {
    let v = vector("mapi-request-MD5");
    let params = params(&v);
    let text = mapi::signed_text(pairs(&params));
    assert_eq!(text, v["canonical"].as_str().unwrap());
    let key = v["md5_key"].as_str().unwrap();
    let signer = Signer::md5(Md5Key::new(key).unwrap());
    let expected = v["sign"].as_str().unwrap();
    assert_eq!(signer.sign(text.as_bytes()).unwrap(), expected);
    assert_tamper_fails(&Verifier::md5(Md5Key::new(key).unwrap()), text.as_bytes(), expected);
    let built = mapi::build_request(&vector_spot_pay(), &mapi_meta(), &signer).unwrap();
    assert_eq!(built.canonical(Unsigned::SignAndSignType), text);
    assert_eq!(built.get("sign"), Some(expected));
}

#[test]
fn mapi_request_rsa2() {
    let v = vector("mapi-request-RSA2");
    let params = params(&v);
    let text = mapi::signed_text(pairs(&params));
    assert_eq!(text, v["canonical"].as_str().unwrap());
    let expected = v["sign"].as_str().unwrap();
    for signer in signers("merchant", SignType::Rsa2) {
        assert_eq!(signer.sign(text.as_bytes()).unwrap(), expected);
    }
    for verifier in verifiers("merchant", SignType::Rsa2) {
        assert_tamper_fails(&verifier, text.as_bytes(), expected);
    }
    let signer = &signers("merchant", SignType::Rsa2)[0];
    let built = mapi::build_request(&vector_spot_pay(), &mapi_meta(), signer).unwrap();
    assert_eq!(built.get("sign"), Some(expected));
}

fn vector_spot_pay() -> SpotPay {
    SpotPay {
        alipay_seller_id: "2088021966645500".parse().unwrap(),
        partner_trans_id: "HK-STORE7-000123".parse().unwrap(),
        buyer_identity_code: "281234567890123400".parse().unwrap(),
        trans_name: "Burger set".parse().unwrap(),
        trans_amount: Amount::parse("58.00", Currency::HKD).unwrap(),
        trans_create_time: "20261125101530".into(),
        quantity: Some(1),
        memo: None,
        extend_info: Some("{\"secondary_merchant_id\":\"R-7\",\"secondary_merchant_name\":\"Burger Town\",\"secondary_merchant_industry\":\"5812\",\"store_id\":\"7\",\"store_name\":\"Central\"}".into()),
    }
}

fn mapi_meta() -> mapi::RequestMeta<'static> {
    static PARTNER: std::sync::LazyLock<alipay::Partner> =
        std::sync::LazyLock::new(|| "2088021966645500".parse().unwrap());
    mapi::RequestMeta { partner: &PARTNER, charset: Charset::Utf8, notify_url: None }
}

#[test]
fn mapi_response_md5() {
    let v = vector("mapi-response-MD5");
    let xml = v["xml"].as_str().unwrap();
    let key = v["md5_key"].as_str().unwrap();
    let verifier = Verifier::md5(Md5Key::new(key).unwrap());
    let reply = mapi::read_reply::<SpotPay>(xml.as_bytes(), Charset::Utf8, &verifier);
    assert_eq!(reply.outcome, Outcome::Success);
    let answer: SpotPayAnswer = reply.answer.unwrap();
    assert_eq!(answer.trans_amount.unwrap().to_amount(Currency::HKD).unwrap().minor(), 5800);
    let expected_text = v["canonical"].as_str().unwrap();
    assert_tamper_fails(&verifier, expected_text.as_bytes(), v["sign"].as_str().unwrap());
    // A one-byte change inside response/alipay is never a success.
    let start = xml.find("<response>").unwrap();
    let end = xml.find("</response>").unwrap();
    for i in start..end {
        let mut changed = xml.as_bytes().to_vec();
        changed[i] ^= 0x01;
        let reply = mapi::read_reply::<SpotPay>(&changed, Charset::Utf8, &verifier);
        assert!(matches!(reply.outcome, Outcome::Unknown(_)), "byte {i}: {:?}", reply.outcome);
    }
}

#[test]
fn keys_in_every_form_are_the_same_key() {
    let public = PublicKey::parse(&key_file("merchant-public-spki.pem")).unwrap();
    assert_eq!(public, PublicKey::parse(&key_file("merchant-public-spki.b64")).unwrap());
    assert_eq!(PublicKey::parse(&public.to_pem()).unwrap(), public);
    for form in PRIVATE_FORMS {
        let private = PrivateKey::parse(&key_file(&format!("merchant-{form}"))).unwrap();
        assert!(private.matches(&public), "{form}");
        assert_eq!(private.public_key().unwrap(), public);
        let alipay_public = PublicKey::parse(&key_file("alipay-public-spki.pem")).unwrap();
        assert!(!private.matches(&alipay_public));
        assert!(alipay::sign::check_key_pair(&private, &alipay_public).is_err());
    }
}

#[test]
fn bad_keys_are_refused_with_a_reason_and_never_printed() {
    use alipay::KeyError;
    assert_eq!(PrivateKey::parse("not a key").unwrap_err(), KeyError::Unreadable);
    assert_eq!(PrivateKey::parse("AAAA").unwrap_err(), KeyError::Invalid);
    let encrypted = "-----BEGIN ENCRYPTED PRIVATE KEY-----\nAAAA\n-----END ENCRYPTED PRIVATE KEY-----";
    assert!(matches!(PrivateKey::parse(encrypted).unwrap_err(), KeyError::UnsupportedPem(_)));
    let private = PrivateKey::parse(&key_file("merchant-private-pkcs8.pem")).unwrap();
    let secret_b64 = key_file("merchant-private-pkcs8.b64");
    let shown_key = format!("{private:?}");
    let shown = format!("{shown_key} {:?}", Signer::rsa2(Arc::new(private)).unwrap());
    assert!(!shown.contains(&secret_b64.trim()[10..40]));
    let md5 = Md5Key::new("x7k2m9q4w8e1r5t3y6u0i2o4p8a1s5d3").unwrap();
    assert!(!format!("{md5:?} {:?}", Signer::md5(md5.clone())).contains("x7k2"));
    assert_eq!(Md5Key::new("").unwrap_err(), KeyError::BadMd5Key);
}

#[test]
fn rsa2_refuses_keys_under_2048_bits() {
    // A 1024-bit SPKI public key: fine for legacy RSA verification, refused for RSA2.
    let small = "MIGfMA0GCSqGSIb3DQEBAQUAA4GNADCBiQKBgQDIk0C40J53X/nvYZmpUj0FBiFKQBlQPcogVIA8smZ+ysuZen/jjIsdJQYdfEKnKNaG0dwrY0VYHR+DKVCXScoLhl6ru5JQUMCKezZzG62Z63ZuDf9B508aYywR+qaJs/zdbb4KynwZ4wyCs8wS8pSVOh1Qa+jECdi3GgINEjCDxwIDAQAB";
    match PublicKey::parse(small) {
        Ok(key) => {
            assert_eq!(key.bits(), 1024);
            assert!(matches!(
                Verifier::rsa(SignType::Rsa2, &key),
                Err(alipay::KeyError::TooSmall { bits: 1024, min: 2048 })
            ));
            assert!(Verifier::rsa(SignType::Rsa, &key).is_ok());
        }
        Err(e) => panic!("test key did not parse: {e}"),
    }
}

#[test]
fn unknown_outcomes_are_never_failures() {
    let verifier = &verifiers("alipay", SignType::Rsa2)[0];
    let html = b"<html><body>502 Bad Gateway</body></html>";
    assert_eq!(
        openapi::read_reply::<TradePay>(html, Charset::Utf8, verifier).outcome,
        Outcome::Unknown(UnknownReason::Unreadable)
    );
    let unsigned_success = br#"{"alipay_trade_pay_response":{"code":"10000","msg":"Success"}}"#;
    assert_eq!(
        openapi::read_reply::<TradePay>(unsigned_success, Charset::Utf8, verifier).outcome,
        Outcome::Unknown(UnknownReason::Unsigned)
    );
    let unsigned_business_failure = br#"{"alipay_trade_pay_response":{"code":"40004","msg":"Business Failed","sub_code":"ACQ.BUYER_BALANCE_NOT_ENOUGH"}}"#;
    assert_eq!(
        openapi::read_reply::<TradePay>(unsigned_business_failure, Charset::Utf8, verifier).outcome,
        Outcome::Unknown(UnknownReason::Unsigned)
    );
    let gateway_rejection = br#"{"alipay_trade_pay_response":{"code":"40002","msg":"Invalid Arguments","sub_code":"isv.invalid-app-id","sub_msg":"x"}}"#;
    let reply = openapi::read_reply::<TradePay>(gateway_rejection, Charset::Utf8, verifier);
    assert!(matches!(&reply.outcome, Outcome::Failed(f) if f.is("isv.invalid-app-id")));
}
