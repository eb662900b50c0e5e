//! The `alipay-sandbox` binary: the first line names the bound address; merchants and the
//! platform key load from files; bad options are a one-line error and a non-zero exit.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

use alipay::{PrivateKey, PublicKey};

const EXE: &str = env!("CARGO_BIN_EXE_alipay-sandbox");

#[tokio::test]
async fn starts_on_port_0_with_merchants_and_platform_key_from_files() {
    let dir = std::env::temp_dir().join(format!("sandbox-bin-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let key = PrivateKey::generate().unwrap();
    std::fs::write(dir.join("platform.pem"), key.to_pkcs8_pem().unwrap().as_bytes()).unwrap();
    let merchants = r#"[{"dialect":"mapi","partner":"2088000000000009","sign_type":"MD5","md5_key":"k3y"}]"#;
    std::fs::write(dir.join("merchants.json"), merchants).unwrap();

    let mut child = Command::new(EXE)
        .args(["--listen", "127.0.0.1:0", "--time-scale", "0.5"])
        .arg("--merchants")
        .arg(dir.join("merchants.json"))
        .arg("--platform-key")
        .arg(dir.join("platform.pem"))
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap()).read_line(&mut line).unwrap();
    let url =
        line.trim().strip_prefix("alipay-sandbox listening on ").expect("first line names the address").to_owned();
    assert!(!url.ends_with(":0"), "{url}");

    let pem = reqwest::get(format!("{url}/sandbox/alipay-public-key")).await.unwrap().text().await.unwrap();
    assert_eq!(PublicKey::parse(&pem).unwrap(), key.public_key().unwrap());
    let stats: serde_json::Value = reqwest::get(format!("{url}/sandbox/stats")).await.unwrap().json().await.unwrap();
    assert_eq!(stats["merchants"], 1);

    let _ = child.kill();
    let _ = child.wait();
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn bad_options_exit_non_zero_with_the_reason_first() {
    let cases: [&[&str]; 3] = [
        &["--listen", "127.0.0.1:0", "--time-scale", "0"],
        &["--listen", "nowhere"],
        &["--listen", "127.0.0.1:0", "--merchants", "/nonexistent/merchants.json"],
    ];
    for args in cases {
        let output = Command::new(EXE).args(args).output().unwrap();
        assert!(!output.status.success(), "{args:?}");
        assert!(output.stdout.is_empty(), "nothing claims to be listening: {args:?}");
        let stderr = String::from_utf8_lossy(&output.stderr);
        let first = stderr.lines().next().unwrap_or_default().to_ascii_lowercase();
        assert!(first.starts_with("error"), "{args:?}: {stderr}");
    }
}
