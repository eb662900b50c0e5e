//! Parsing anything Alipay (or anyone) could send never panics, and never proves success.

#![allow(clippy::unwrap_used)]

use alipay::charset::{Charset, decode_form};
use alipay::mapi::services::SpotPay;
use alipay::notify::verify_notification;
use alipay::openapi::trade::{TradePay, TradeQuery};
use alipay::test_keys::{ALIPAY_PUBLIC, MD5_KEY};
use alipay::{Md5Key, Outcome, SignType, Verifier, mapi, openapi};
use proptest::prelude::*;

fn verifiers() -> (Verifier, Verifier) {
    (Verifier::from_key_text(SignType::Rsa2, ALIPAY_PUBLIC).unwrap(), Verifier::md5(Md5Key::new(MD5_KEY).unwrap()))
}

/// Bytes that look a bit like Alipay answers, forms and XML, plus anything at all.
fn alipayish() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        any::<Vec<u8>>(),
        "\\{\"alipay_trade_pay_response\":\\{\"code\":\"[0-9]{5}\",\"msg\":\"[a-z ]{0,8}\"(,\"sub_code\":\"[A-Z._]{0,20}\")?\\}(,\"sign\":\"[A-Za-z0-9+/=]{0,20}\")?\\}"
            .prop_map(String::into_bytes),
        "<alipay><is_success>[TF]</is_success>(<error>[A-Z_]{0,12}</error>)?(<response><alipay>(<[a-z_]{1,8}>[^<>]{0,8}</[a-z_]{1,8}>){0,3}</alipay></response>)?(<sign>[a-f0-9]{0,32}</sign>)?</alipay>"
            .prop_map(String::into_bytes),
        "([a-z_]{1,8}=[%A-Za-z0-9+&=]{0,12}&?){0,8}".prop_map(String::into_bytes),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn answers_and_notifications_never_panic_nor_prove_success(body in alipayish()) {
        let (rsa2, md5) = verifiers();
        for charset in [Charset::Utf8, Charset::Gbk] {
            prop_assert_ne!(openapi::read_reply::<TradePay>(&body, charset, &rsa2).outcome, Outcome::Success);
            prop_assert_ne!(openapi::read_reply::<TradeQuery>(&body, charset, &rsa2).outcome, Outcome::Success);
            prop_assert_ne!(mapi::read_reply::<SpotPay>(&body, charset, &md5).outcome, Outcome::Success);
            let _ = decode_form(&body, charset);
        }
        prop_assert!(verify_notification(&body, "charset", &rsa2).is_err());
        prop_assert!(verify_notification(&body, "_input_charset", &md5).is_err());
    }
}
