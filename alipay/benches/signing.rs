//! µs per sign and per verify for RSA2, RSA and MD5 over a typical trade.pay canonical string.
//! Compare with `openssl speed rsa2048` on the same machine (see README).

#![allow(clippy::expect_used)]

use std::sync::Arc;

use alipay::test_keys::{MD5_KEY, MERCHANT_PRIVATE as PRIVATE, MERCHANT_PUBLIC as PUBLIC};
use alipay::{Md5Key, PrivateKey, SignType, Signer, Verifier};
use criterion::{Criterion, criterion_group, criterion_main};

const TEXT: &str = "app_id=2021000000000001&biz_content={\"out_trade_no\":\"20261125T0001\",\"scene\":\"bar_code\",\"auth_code\":\"281234567890123400\",\"subject\":\"Combo meal #3\",\"total_amount\":\"88.88\",\"store_id\":\"SH-001\"}&charset=utf-8&format=JSON&method=alipay.trade.pay&sign_type=RSA2&timestamp=2026-11-25 10:15:30&version=1.0";

fn bench(c: &mut Criterion) {
    let key = Arc::new(PrivateKey::parse(PRIVATE).expect("vector key"));
    let md5_key = Md5Key::new(MD5_KEY).expect("md5 key");
    let cases = [
        (
            "RSA2",
            Signer::rsa2(key.clone()).expect("rsa2"),
            Verifier::from_key_text(SignType::Rsa2, PUBLIC).expect("pub"),
        ),
        ("RSA", Signer::rsa(&key).expect("rsa"), Verifier::from_key_text(SignType::Rsa, PUBLIC).expect("pub")),
        ("MD5", Signer::md5(md5_key.clone()), Verifier::md5(md5_key)),
    ];
    for (name, signer, verifier) in &cases {
        let sign = signer.sign(TEXT.as_bytes()).expect("sign");
        c.bench_function(&format!("sign {name}"), |b| b.iter(|| signer.sign(std::hint::black_box(TEXT.as_bytes()))));
        c.bench_function(&format!("verify {name}"), |b| {
            b.iter(|| verifier.verify(std::hint::black_box(TEXT.as_bytes()), &sign))
        });
    }
}

criterion_group!(benches, bench);
criterion_main!(benches);
