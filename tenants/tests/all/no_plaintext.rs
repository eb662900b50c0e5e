//! After onboarding tenants and enabling their front doors, a `pg_dump` of the database holds no
//! private key, MD5 key, API secret, webhook secret or front-door key in plaintext.

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
    let front_door = FrontDoorSecrets::enable(&db, &keys);

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
    secrets.extend(front_door.secrets(&db, &keys).await);
    // Every 40-character run of the private key's base64 body.
    let body: String = MERCHANT_PRIVATE_PKCS1.lines().filter(|l| !l.starts_with("-----")).collect();
    secrets
        .extend(body.as_bytes().chunks(40).filter(|c| c.len() == 40).map(|c| String::from_utf8_lossy(c).into_owned()));
    for secret in &secrets {
        assert!(!dump.contains(secret.as_str()), "plaintext secret in the dump: {}…", &secret[..8]);
    }
    assert!(!dump.contains("PRIVATE KEY"));
}

const FRONT_DOOR_MD5: &str = "fd-given-md5-key-0123456789abcdef";

/// Front doors with every kind of secret: a generated POS key pair, given and generated MD5 keys,
/// and rotated platform keys.
struct FrontDoorSecrets {
    generated: Vec<serde_json::Value>,
}

impl FrontDoorSecrets {
    fn enable(db: &TestDb, keys: &str) -> Self {
        let out = |n: u8| std::env::temp_dir().join(format!("{}-fd-{n}.json", db.name)).to_str().unwrap().to_owned();
        let (rsa_out, md5_out) = (out(1), out(2));
        let rsa = ["front-door", "enable", "noodle-bar", "--sign-type", "RSA2", "--generate-pos-key"];
        tenants_cli(db, keys, &[&rsa[..], &["--secrets-out", &rsa_out]].concat(), None);
        tenants_cli(db, keys, &["front-door", "rotate-platform-key", "noodle-bar", "--overlap", "1h"], None);
        let md5 = ["front-door", "enable", "burger-town", "--sign-type", "MD5", "--md5-key-file", "-"];
        tenants_cli(db, keys, &md5, Some(FRONT_DOOR_MD5));
        let rotate = ["front-door", "rotate-pos-key", "burger-town", "--generate-pos-key", "--overlap", "1h"];
        tenants_cli(db, keys, &[&rotate[..], &["--secrets-out", &md5_out]].concat(), None);
        let generated = [rsa_out, md5_out]
            .iter()
            .map(|path| {
                let text = std::fs::read_to_string(path).unwrap();
                std::fs::remove_file(path).unwrap();
                serde_json::from_str(&text).unwrap()
            })
            .collect();
        FrontDoorSecrets { generated }
    }

    /// Every front-door secret: the generated ones, the given MD5 key, and the platform private
    /// keys (opened from the vault here), as 40-character runs of their PEM bodies.
    async fn secrets(&self, db: &TestDb, keys: &str) -> Vec<String> {
        let mut pems: Vec<String> = Vec::new();
        let mut secrets = vec![FRONT_DOOR_MD5.to_owned(), self.generated[1]["md5_key"].as_str().unwrap().to_owned()];
        for field in ["pos_private_key_pkcs1_pem", "pos_private_key_pkcs8_pem"] {
            pems.push(self.generated[0][field].as_str().unwrap().to_owned());
        }
        let ring = tenants::Keyring::parse(keys).unwrap();
        let rows = db
            .client()
            .await
            .query(
                "SELECT t.id, t.master_key_id, t.wrapped_data_key, s.version, s.sealed FROM tenant_secrets s \
                 JOIN tenants t ON t.id = s.tenant_id WHERE s.purpose = 'front_door_platform_key'",
                &[],
            )
            .await
            .unwrap();
        assert_eq!(rows.len(), 2, "the platform key and its successor");
        for row in rows {
            let data_key = ring.unwrap(row.get(0), row.get(1), row.get(2)).unwrap();
            let version: i32 = row.get(3);
            let purpose = tenants::vault::Purpose::FrontDoorPlatformKey;
            let plain = data_key.open(row.get(0), purpose, &version.to_string(), row.get(4)).unwrap();
            pems.push(String::from_utf8(plain.to_vec()).unwrap());
        }
        for pem in pems {
            let body: String = pem.lines().filter(|l| !l.starts_with("-----")).collect();
            secrets.extend(
                body.as_bytes().chunks(40).filter(|c| c.len() == 40).map(|c| String::from_utf8_lossy(c).into_owned()),
            );
        }
        secrets
    }
}
