//! Any bytes as an asynchronous notification body: form decoding in both charsets never panics
//! and what it decodes encodes back to the same pairs; verification (OpenAPI `charset` with
//! RSA2, MAPI `_input_charset` with MD5 or RSA2) never panics and never accepts.

#![no_main]

use std::sync::LazyLock;

use alipay::charset::{Charset, declared_charset, decode_form, encode_form, split_form};
use alipay::notify::verify_notification;
use alipay::test_keys::{ALIPAY_PUBLIC, MD5_KEY};
use alipay::{Md5Key, SignType, Verifier};
use libfuzzer_sys::fuzz_target;

static VERIFIERS: LazyLock<[Verifier; 2]> = LazyLock::new(|| {
    [
        Verifier::from_key_text(SignType::Rsa2, ALIPAY_PUBLIC).unwrap_or_else(|e| panic!("{e}")),
        Verifier::md5(Md5Key::new(MD5_KEY).unwrap_or_else(|e| panic!("{e}"))),
    ]
});

fuzz_target!(|body: &[u8]| {
    for charset in [Charset::Utf8, Charset::Gbk] {
        let Ok(pairs) = decode_form(body, charset) else {
            continue;
        };
        assert_eq!(pairs.len(), split_form(body).count(), "a pair was lost");
        let mut form = String::new();
        if encode_form(pairs.iter().map(|(k, v)| (k.as_str(), v.as_str())), charset, &mut form).is_ok() {
            let again = decode_form(form.as_bytes(), charset).unwrap_or_else(|e| panic!("{e}: {form:?}"));
            assert_eq!(again, pairs, "decode, encode, decode changed the pairs: {form:?}");
        }
    }
    for field in ["charset", "_input_charset"] {
        let declared = declared_charset(body, field);
        for verifier in VERIFIERS.iter() {
            let result = verify_notification(body, field, verifier);
            assert!(result.is_err(), "random bytes verified with {verifier:?}: {result:?}");
            if declared.is_err() {
                assert_eq!(result, Err(alipay::notify::NotifyError::Unreadable));
            }
        }
    }
});
