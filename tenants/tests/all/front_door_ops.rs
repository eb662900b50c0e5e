//! The front door as ops drive it: `tenants front-door …` (generated keys only ever in a new
//! 0600 file) and the admin API's `/admin/tenants/{slug}/front-door` calls.

use std::os::unix::fs::PermissionsExt;
use std::process::{Command, Output};

use alipay::{SignType, Signer};
use serde_json::{Value, json};
use tenants::admin::{AdminToken, serve};
use tenants::model::Dialect;
use tenants::snapshot::Loader;
use time::OffsetDateTime;

use crate::helpers::*;

const TOKEN: &str = "test-admin-token-0123456789abcdef0123";

fn tenants(db: &TestDb, master_keys: &str, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_tenants"))
        .args(args)
        .env("DATABASE_URL", &db.url)
        .env("ACQ_MASTER_KEYS", master_keys)
        .env("ACQ_ACTOR", "ops:alice")
        .env_remove("ACQ_MASTER_KEY_FILE")
        .output()
        .unwrap()
}

fn ok(output: Output) -> String {
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    String::from_utf8(output.stdout).unwrap()
}

/// Refused with one line on stderr, nothing on stdout, exit 1 (the request's fault).
fn refused(output: &Output, reason: &str) {
    assert_eq!(output.status.code(), Some(1), "{output:?}");
    assert!(output.stdout.is_empty(), "{output:?}");
    let stderr = String::from_utf8_lossy(&output.stderr);
    let lines: Vec<&str> = stderr.lines().collect();
    assert_eq!(lines.len(), 1, "one line: {stderr}");
    assert!(lines[0].starts_with("error: ") && lines[0].contains(reason), "{stderr}");
}

fn pem_block(text: &str, label: &str) -> String {
    let begin = format!("-----BEGIN {label}-----");
    let end = format!("-----END {label}-----");
    let start = text.find(&begin).unwrap();
    let stop = text[start..].find(&end).unwrap() + start + end.len();
    text[start..stop].to_owned()
}

#[tokio::test]
async fn the_cli_writes_a_generated_pos_key_only_to_a_new_0600_file() {
    let db = TestDb::new().await;
    let keys = master_key("k1");
    let ring = keyring(&[&keys]);
    registry(&db, &ring).create("ops:test", openapi_tenant("noodle-bar"), rsa_keys()).await.unwrap();
    let path = std::env::temp_dir().join(format!("{}-front-door-secrets.txt", db.name));
    let path = path.to_str().unwrap().to_owned();
    let enable = ["front-door", "enable", "noodle-bar", "--sign-type", "RSA2", "--generate-pos-key"];
    let before = counts(&db).await;

    refused(&tenants(&db, &keys, &enable), "--secrets-out");
    std::fs::write(&path, "already here").unwrap();
    let into_existing = [&enable[..], &["--secrets-out", &path]].concat();
    refused(&tenants(&db, &keys, &into_existing), "must not exist");
    assert_eq!(std::fs::read_to_string(&path).unwrap(), "already here");
    std::fs::remove_file(&path).unwrap();
    let public_file = alipay::test_keys::file("merchant-public-spki.pem");
    let two_sources = [&into_existing[..], &["--pos-public-key-file", &public_file]].concat();
    refused(&tenants(&db, &keys, &two_sources), "give one of");
    let md5_on_openapi = ["front-door", "enable", "noodle-bar", "--sign-type", "MD5", "--generate-pos-key"];
    refused(&tenants(&db, &keys, &[&md5_on_openapi[..], &["--secrets-out", &path]].concat()), "not MD5");
    assert!(!std::path::Path::new(&path).exists(), "a refused operation leaves no file");
    assert_eq!(counts(&db).await, before, "a refusal wrote something");

    let printed = ok(tenants(&db, &keys, &into_existing));
    let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
    let secrets = std::fs::read_to_string(&path).unwrap();
    std::fs::remove_file(&path).unwrap();
    assert!(!printed.contains("PRIVATE KEY"), "a generated key on the terminal: {printed}");
    assert!(printed.contains("app id 2099") && printed.contains(&path), "{printed}");
    let shown: Value =
        serde_json::from_str(&ok(tenants(&db, &keys, &["--json", "front-door", "show", "noodle-bar"]))).unwrap();
    let id = shown["id"].as_str().unwrap();
    let platform_public = shown["platform_keys"][0]["public_key"].as_str().unwrap();
    assert!(printed.contains(id) && printed.contains(platform_public), "prints the id and the platform key");
    assert!(secrets.contains(id) && secrets.contains(platform_public));

    // The key in the file signs requests the gateway's snapshot accepts.
    let pos = Signer::from_secret(SignType::Rsa2, &pem_block(&secrets, "RSA PRIVATE KEY")).unwrap();
    assert!(pem_block(&secrets, "PRIVATE KEY").lines().count() > 3, "the PKCS#8 form too");
    let snapshot = Loader::new(db.pool(), ring.clone()).load_all().await.unwrap();
    let door = snapshot.by_front_door(Dialect::Openapi, id).unwrap().front_door.as_ref().unwrap();
    let signature = pos.sign(b"a request").unwrap();
    assert!(door.verifiers(OffsetDateTime::now_utc()).any(|v| v.verify(b"a request", &signature).is_ok()));

    let rotated = ok(tenants(&db, &keys, &["front-door", "rotate-platform-key", "noodle-bar", "--overlap", "1h"]));
    assert!(rotated.contains("signs from"), "{rotated}");
    let pos_rotation =
        ["front-door", "rotate-pos-key", "noodle-bar", "--pos-public-key-file", &public_file, "--overlap", "2h"];
    assert!(ok(tenants(&db, &keys, &pos_rotation)).contains("verifies until"));
    assert!(ok(tenants(&db, &keys, &["front-door", "disable", "noodle-bar"])).contains("disabled"));
    refused(&tenants(&db, &keys, &["front-door", "show", "noodle-bar"]), "has no front door");
}

async fn call(base: &str, method: reqwest::Method, path: &str, body: Option<Value>) -> (u16, Value) {
    let mut request = reqwest::Client::new().request(method, format!("{base}{path}")).bearer_auth(TOKEN);
    if let Some(body) = body {
        request = request.json(&body);
    }
    let response = request.send().await.unwrap();
    (response.status().as_u16(), response.json().await.unwrap_or(Value::Null))
}

#[tokio::test]
async fn the_admin_api_round_trip() {
    use reqwest::Method;
    let db = TestDb::new().await;
    let ring = keyring(&[&master_key("k1")]);
    let registry = registry(&db, &ring);
    registry.create("ops:test", openapi_tenant("noodle-bar"), rsa_keys()).await.unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(serve(listener, registry, AdminToken::new(TOKEN).unwrap(), std::future::pending()));
    let door = "/admin/tenants/noodle-bar/front-door";

    let (status, problem) = call(&base, Method::GET, door, None).await;
    assert_eq!((status, problem["code"].as_str()), (404, Some("not_found")), "{problem}");
    let two = json!({"sign_type": "RSA2", "generate_pos_key": true, "pos_public_key": MERCHANT_PUBLIC});
    assert_eq!(call(&base, Method::POST, door, Some(two)).await.0, 400);
    let md5 = json!({"sign_type": "MD5", "md5_key": MD5_KEY});
    let (status, problem) = call(&base, Method::POST, door, Some(md5)).await;
    assert_eq!((status, problem["code"].as_str()), (400, Some("invalid_request")), "{problem}");

    let (status, issued) =
        call(&base, Method::POST, door, Some(json!({"sign_type": "RSA2", "generate_pos_key": true}))).await;
    assert_eq!(status, 201, "{issued}");
    assert!(issued["pos_private_key_pkcs1_pem"].as_str().unwrap().contains("BEGIN RSA PRIVATE KEY"));
    assert!(issued["pos_private_key_pkcs8_pem"].as_str().unwrap().contains("BEGIN PRIVATE KEY"));
    assert_eq!(issued["md5_key"], Value::Null);
    let id = issued["id"].as_str().unwrap().to_owned();
    let body = json!({"sign_type": "RSA2", "id": id, "pos_public_key": MERCHANT_PUBLIC});
    assert_eq!(call(&base, Method::POST, door, Some(body)).await.0, 409, "enabled already");

    let (status, shown) = call(&base, Method::GET, door, None).await;
    assert_eq!((status, shown["id"].as_str()), (200, Some(id.as_str())));
    assert_eq!(shown["platform_keys"][0]["public_key"], issued["platform_public_key"]);
    assert!(!shown.to_string().contains("PRIVATE KEY"));
    let (_, tenant) = call(&base, Method::GET, "/admin/tenants/noodle-bar", None).await;
    assert_eq!(tenant["front_door"]["id"].as_str(), Some(id.as_str()));

    let rotation = json!({"pos_public_key": MERCHANT_PUBLIC, "overlap": "1h"});
    let (status, rotated) = call(&base, Method::POST, &format!("{door}/pos-key"), Some(rotation)).await;
    assert_eq!(status, 201, "{rotated}");
    assert_eq!(rotated["pos_private_key_pkcs1_pem"], Value::Null);
    assert_eq!(rotated["front_door"]["pos_keys"].as_array().unwrap().len(), 2);
    let (status, platform) =
        call(&base, Method::POST, &format!("{door}/platform-key"), Some(json!({"overlap": "0s"}))).await;
    assert_eq!(status, 201, "{platform}");
    assert_ne!(platform["platform_public_key"], issued["platform_public_key"]);
    assert_eq!(platform["front_door"]["platform_keys"].as_array().unwrap().len(), 1, "no overlap: replaced");
    assert_eq!(call(&base, Method::PUT, door, None).await.0, 405);

    let (status, disabled) = call(&base, Method::DELETE, door, None).await;
    assert_eq!((status, disabled["disabled"]["id"].as_str()), (200, Some(id.as_str())));
    assert_eq!(call(&base, Method::GET, door, None).await.0, 404);
    assert_eq!(call(&base, Method::DELETE, door, None).await.0, 404);

    let client = db.client().await;
    let actions: Vec<String> = client
        .query("SELECT action FROM tenant_audit WHERE action LIKE 'front_door.%' ORDER BY id", &[])
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert_eq!(
        actions,
        ["front_door.enable", "front_door.rotate_pos_key", "front_door.rotate_platform_key", "front_door.disable"]
    );
}
