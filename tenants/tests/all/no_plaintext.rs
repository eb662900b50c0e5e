//! After onboarding tenants, a `pg_dump` of the database holds no private key, MD5 key, API secret
//! or webhook secret in plaintext.

use std::process::Command;

use crate::helpers::*;

fn tenants_cli(db: &TestDb, keys: &str, args: &[&str], stdin: Option<&str>) -> serde_json::Value {
    use std::io::Write;
    let mut command = Command::new(env!("CARGO_BIN_EXE_tenants"));
    command.arg("--json").args(args).env("DATABASE_URL", &db.url).env("ACQ_MASTER_KEYS", keys);
    command
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    let mut child = command.spawn().unwrap();
    child.stdin.take().unwrap().write_all(stdin.unwrap_or("").as_bytes()).unwrap();
    let output = child.wait_with_output().unwrap();
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    serde_json::from_slice(&output.stdout).unwrap()
}

#[tokio::test]
async fn a_dump_after_onboarding_holds_no_secret() {
    let db = TestDb::new().await;
    let keys = master_key("k1");
    let private_file = alipay::test_keys::file("merchant-private-pkcs1.pem");
    let rsa = tenants_cli(
        &db,
        &keys,
        &[
            "create",
            "noodle-bar",
            "--name",
            "Noodle Bar",
            "--dialect",
            "openapi",
            "--app-id",
            "2021000000000001",
            "--sign-type",
            "RSA2",
            "--app-private-key-file",
            &private_file,
        ],
        None,
    );
    let md5 = tenants_cli(
        &db,
        &keys,
        &[
            "create",
            "burger-town",
            "--name",
            "Burger Town",
            "--dialect",
            "mapi",
            "--partner",
            "2088021966645500",
            "--sign-type",
            "MD5",
            "--md5-key-file",
            "-",
        ],
        Some(MD5_KEY),
    );
    let rotated = tenants_cli(&db, &keys, &["rotate-api-secret", "burger-town"], None);

    let dump = Command::new("pg_dump").arg("--dbname").arg(&db.url).output().expect("pg_dump runs");
    assert!(dump.status.success(), "{}", String::from_utf8_lossy(&dump.stderr));
    let dump = String::from_utf8_lossy(&dump.stdout).into_owned();
    assert!(dump.contains("noodle-bar") && dump.contains("tenant_secrets"), "the dump has the tenants");

    let mut secrets: Vec<String> = vec![MD5_KEY.to_owned()];
    for created in [&rsa, &md5] {
        secrets.push(created["credential"]["secret"].as_str().unwrap().to_owned());
        secrets.push(created["webhook_secret"].as_str().unwrap().to_owned());
    }
    secrets.push(rotated["secret"].as_str().unwrap().to_owned());
    // Every 40-character run of the private key's base64 body.
    let body: String = MERCHANT_PRIVATE_PKCS1.lines().filter(|l| !l.starts_with("-----")).collect();
    secrets
        .extend(body.as_bytes().chunks(40).filter(|c| c.len() == 40).map(|c| String::from_utf8_lossy(c).into_owned()));
    for secret in &secrets {
        assert!(!dump.contains(secret.as_str()), "plaintext secret in the dump: {}…", &secret[..8]);
    }
    assert!(!dump.contains("PRIVATE KEY"));
}
