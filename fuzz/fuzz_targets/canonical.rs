//! Arbitrary parameters through the canonical string (alipay-protocol.md A3, B3): never panics,
//! the same parameters always give the same text, `sign` (and `sign_type` where the dialect says
//! so) and empty values are left out, keys are in ASCII order with raw values; an MD5 signature
//! over the text verifies, a changed text does not; a notification signed and written as a form
//! in either charset verifies, and a MAPI request signed the same way does too.

#![no_main]

use alipay::charset::Charset;
use alipay::notify::{sign_notification, verify_notification};
use alipay::params::{Unsigned, canonical};
use alipay::test_keys::MD5_KEY;
use alipay::{Md5Key, Params, Signer, Verifier, mapi};
use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;

/// Keys the rule treats specially come up often; anything else is arbitrary text.
#[derive(Debug, Arbitrary)]
enum Key {
    Sign,
    SignType,
    InputCharset,
    Charset,
    Other(String),
}

impl Key {
    fn as_str(&self) -> &str {
        match self {
            Key::Sign => "sign",
            Key::SignType => "sign_type",
            Key::InputCharset => "_input_charset",
            Key::Charset => "charset",
            Key::Other(key) => key,
        }
    }
}

#[derive(Debug, Arbitrary)]
struct Input {
    pairs: Vec<(Key, String)>,
    mapi: bool,
    gbk: bool,
}

fuzz_target!(|input: Input| {
    let unsigned = if input.mapi { Unsigned::SignAndSignType } else { Unsigned::Sign };
    let pairs: Vec<(&str, &str)> = input.pairs.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let text = canonical(pairs.iter().copied(), unsigned);

    assert_eq!(text, model(&pairs, unsigned), "canonical string differs from the rule");
    assert_eq!(canonical(pairs.iter().copied(), unsigned), text, "not deterministic");
    if !input.mapi {
        assert_eq!(
            mapi::signed_text(pairs.iter().copied()),
            canonical(pairs.iter().copied(), Unsigned::SignAndSignType)
        );
    }

    // Where no key or value holds a separator the text splits back into exactly the kept pairs.
    if pairs.iter().all(|(k, v)| !k.contains(['&', '=']) && !v.contains('&')) && !text.is_empty() {
        let split: Vec<(&str, &str)> =
            text.split('&').map(|pair| pair.split_once('=').unwrap_or_else(|| panic!("{pair:?}"))).collect();
        assert!(split.windows(2).all(|w| w[0].0.as_bytes() <= w[1].0.as_bytes()), "not sorted: {text:?}");
        for (k, v) in &split {
            assert!(!v.is_empty(), "empty value kept: {text:?}");
            assert_ne!(*k, "sign", "sign kept: {text:?}");
            assert!(!(input.mapi && *k == "sign_type"), "sign_type kept in MAPI: {text:?}");
            assert!(pairs.contains(&(*k, *v)), "pair not given: {k:?}={v:?}");
        }
    }

    // Params: last value wins, insertion order does not matter.
    let params: Params = pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
    let mut reversed: Vec<(&str, &str)> = params.iter().collect();
    reversed.reverse();
    let reversed: Params = reversed.into_iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
    assert_eq!(params.canonical(unsigned), reversed.canonical(unsigned), "order of insertion matters");
    for (k, v) in params.iter() {
        let last = pairs.iter().rev().find(|(key, _)| *key == k).map(|(_, value)| *value);
        assert_eq!(Some(v), last, "{k:?} is not its last value");
    }

    // MD5 over the text with a fixed key round-trips, and a changed text does not verify.
    let charset = if input.gbk { Charset::Gbk } else { Charset::Utf8 };
    let key = || Md5Key::new(MD5_KEY).unwrap_or_else(|e| panic!("{e}"));
    let (signer, verifier) = (Signer::md5(key()), Verifier::md5(key()));
    if let Ok(bytes) = charset.encode(&text) {
        let sign = signer.sign(&bytes).unwrap_or_else(|e| panic!("{e}"));
        assert!(sign.len() == 32 && sign.bytes().all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase()));
        assert_eq!(verifier.verify(&bytes, &sign), Ok(()), "MD5 does not round-trip");
        let mut changed = bytes.to_vec();
        changed.push(b'x');
        assert!(verifier.verify(&changed, &sign).is_err(), "a changed text verifies");
    }

    notification_round_trip(&params, charset, &signer, &verifier, input.mapi);
    mapi_request_round_trip(&params, charset, &signer, &verifier);
});

/// The rule, written out plainly: drop, sort (stable, by bytes), join.
fn model(pairs: &[(&str, &str)], unsigned: Unsigned) -> String {
    let mut kept: Vec<(&str, &str)> = Vec::new();
    for &(k, v) in pairs {
        let skipped = k == "sign" || (k == "sign_type" && unsigned == Unsigned::SignAndSignType);
        if !v.is_empty() && !skipped {
            kept.push((k, v));
        }
    }
    kept.sort_by(|a, b| a.0.as_bytes().cmp(b.0.as_bytes()));
    kept.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join("&")
}

/// Signed as the sandbox signs a notification, written as a form in the charset it declares,
/// read back as a receiver reads it: it verifies, and carries the same fields.
fn notification_round_trip(params: &Params, charset: Charset, signer: &Signer, verifier: &Verifier, mapi: bool) {
    let field = if mapi { "_input_charset" } else { "charset" };
    let mut params = params.clone();
    let declared = match params.get(field).filter(|v| !v.is_empty()) {
        None => {
            params.set(field, charset.label());
            charset
        }
        Some(label) => match label.parse::<Charset>() {
            Ok(declared) => declared,
            Err(_) => return,
        },
    };
    if sign_notification(&mut params, signer, declared).is_err() {
        assert!(declared.encode(&params.canonical(Unsigned::SignAndSignType)).is_err());
        return;
    }
    let Ok(form) = params.to_form(declared) else {
        return;
    };
    let notification = verify_notification(form.as_bytes(), field, verifier)
        .unwrap_or_else(|e| panic!("signed notification refused: {e}\n{form}"));
    // The same fields on the wire. (Not always the same text: GBK writes a few private-use
    // characters, U+E81E for one, as the bytes of the CJK characters later given their own code
    // points, U+9FB4 here, and reads those bytes back as the latter; the signature covers bytes.)
    let wire = |pairs: Vec<(&str, &str)>| -> Vec<(Vec<u8>, Vec<u8>)> {
        let bytes = |text| declared.encode(text).unwrap_or_else(|e| panic!("{e}")).into_owned();
        pairs.into_iter().map(|(k, v)| (bytes(k), bytes(v))).collect()
    };
    let sent = wire(params.iter().filter(|(_, v)| !v.is_empty()).collect());
    let received = wire(notification.fields().collect());
    assert_eq!(sent, received, "fields changed on the way");
}

/// A MAPI request signed over its canonical text verifies as the sandbox verifies requests.
fn mapi_request_round_trip(params: &Params, charset: Charset, signer: &Signer, verifier: &Verifier) {
    let text = mapi::signed_text(params.iter());
    let Ok(bytes) = charset.encode(&text) else {
        return;
    };
    let sign = signer.sign(&bytes).unwrap_or_else(|e| panic!("{e}"));
    let mut received: Vec<(String, String)> =
        params.iter().filter(|(k, _)| *k != "sign").map(|(k, v)| (k.to_owned(), v.to_owned())).collect();
    received.push(("sign".to_owned(), sign));
    received.push(("sign_type".to_owned(), "MD5".to_owned()));
    assert_eq!(mapi::verify_request(&received, charset, verifier), Ok(()), "signed MAPI request refused");
    received.push(("zz_added".to_owned(), "1".to_owned()));
    assert!(mapi::verify_request(&received, charset, verifier).is_err(), "an added field still verifies");
}
