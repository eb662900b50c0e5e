//! Alipay's official Node.js SDK (`alipay-sdk` from npm, signature verification on), used as a
//! merchant uses it, completes pay, query, refund, cancel and precreate against the sandbox and
//! verifies a notification the sandbox sent. The script is `tests/node-sdk/merchant.mjs`; the
//! README's test command installs its locked dependencies first.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::PathBuf;

use alipay::test_keys::{MERCHANT_PRIVATE_PKCS1_B64, MERCHANT_PUBLIC_B64};
use alipay::{PublicKey, SignType};
use sandbox::{Config, Dialect, Registration, Sandbox};

#[tokio::test]
async fn alipays_official_node_sdk_works_against_the_sandbox() {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/node-sdk");
    assert!(
        dir.join("node_modules/alipay-sdk/package.json").exists(),
        "the SDK is not installed: run `npm ci --prefix sandbox/tests/node-sdk` (scripts/test does)"
    );
    let sandbox = Sandbox::start(Config { time_scale: 0.01, ..Config::default() }).await.unwrap();
    let app_id = "2021000000004242";
    let registration = Registration::rsa(Dialect::Openapi, app_id, SignType::Rsa2, MERCHANT_PUBLIC_B64.trim());
    let registered = reqwest::Client::new()
        .post(format!("{}/sandbox/merchants", sandbox.url()))
        .json(&registration)
        .send()
        .await
        .unwrap();
    assert_eq!(registered.status(), 201);
    let alipay_public = PublicKey::parse(sandbox.public_key_pem()).unwrap().to_base64();

    let output = tokio::process::Command::new("node")
        .arg("merchant.mjs")
        .current_dir(&dir)
        .env("SANDBOX_URL", sandbox.url())
        .env("APP_ID", app_id)
        .env("APP_PRIVATE_KEY", MERCHANT_PRIVATE_PKCS1_B64.trim())
        .env("APP_PUBLIC_KEY", MERCHANT_PUBLIC_B64.trim())
        .env("ALIPAY_PUBLIC_KEY", alipay_public)
        .output()
        .await
        .expect("node runs");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "official SDK checks failed\n{stdout}\n{stderr}");
    assert!(stdout.contains("all official SDK checks passed"), "{stdout}");
    println!("{stdout}");
}
