//! Every `tenants` command, run as ops run it, and each refusal: one line, a non-zero exit, and
//! nothing written.

use std::io::Write;
use std::process::{Command, Output, Stdio};

use serde_json::Value;

use crate::helpers::*;

const EXE: &str = env!("CARGO_BIN_EXE_tenants");
const RSA1024: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/all/keys/rsa1024-private.pem");

fn vector_key(name: &str) -> String {
    alipay::test_keys::file(name)
}

struct Ops<'a> {
    db: &'a TestDb,
    master_keys: String,
}

impl Ops<'_> {
    fn command(&self, args: &[&str]) -> Command {
        let mut command = Command::new(EXE);
        command
            .args(args)
            .env("DATABASE_URL", &self.db.url)
            .env("ACQ_MASTER_KEYS", &self.master_keys)
            .env("ACQ_ACTOR", "ops:alice")
            .env_remove("ACQ_MASTER_KEY_FILE");
        command
    }

    fn run(&self, args: &[&str]) -> Output {
        self.command(args).output().unwrap()
    }

    fn run_with_stdin(&self, args: &[&str], stdin: &str) -> Output {
        let mut child =
            self.command(args).stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
        child.stdin.take().unwrap().write_all(stdin.as_bytes()).unwrap();
        child.wait_with_output().unwrap()
    }

    fn ok(&self, args: &[&str]) -> String {
        let output = self.run(args);
        assert!(output.status.success(), "{args:?}: {}", String::from_utf8_lossy(&output.stderr));
        String::from_utf8(output.stdout).unwrap()
    }

    fn json(&self, args: &[&str]) -> Value {
        let mut with_json = vec!["--json"];
        with_json.extend_from_slice(args);
        serde_json::from_str(&self.ok(&with_json)).unwrap()
    }

    /// The command is refused with one line on stderr and nothing written.
    async fn refused(&self, args: &[&str], reason: &str) {
        let before = counts(self.db).await;
        let output = self.run(args);
        self.assert_refused(&output, args, reason);
        assert_eq!(counts(self.db).await, before, "{args:?} wrote something");
    }

    fn assert_refused(&self, output: &Output, args: &[&str], reason: &str) {
        assert!(!output.status.success(), "{args:?} should be refused");
        assert!(output.stdout.is_empty(), "{args:?}");
        let stderr = String::from_utf8_lossy(&output.stderr);
        let lines: Vec<&str> = stderr.lines().collect();
        assert_eq!(lines.len(), 1, "{args:?}: one line, got {stderr}");
        assert!(lines[0].starts_with("error: ") && lines[0].contains(reason), "{args:?}: {stderr}");
    }
}

async fn ops() -> (TestDb, String) {
    (TestDb::new().await, master_key("k1"))
}

fn create_openapi<'a>(slug: &'a str, extra: &[&'a str]) -> Vec<&'a str> {
    let mut args = vec![
        "create",
        slug,
        "--name",
        "Noodle Bar",
        "--dialect",
        "openapi",
        "--app-id",
        "2021000000000001",
        "--sign-type",
        "RSA2",
    ];
    args.extend_from_slice(extra);
    args
}

#[tokio::test]
async fn onboarding_in_three_commands() {
    let (db, k1) = ops().await;
    let ops = Ops { db: &db, master_keys: k1 };
    let created = ops.ok(&create_openapi(
        "noodle-bar",
        &["--environment", "sandbox", "--webhook-url", "https://pos.example.com/hook"],
    ));
    assert!(created.contains("key id: ak_") && created.contains("secret: "), "{created}");
    let generated = ops.ok(&["set-alipay-key", "noodle-bar", "--generate"]);
    assert!(generated.contains("-----BEGIN PUBLIC KEY-----"), "prints the public key to upload: {generated}");
    let alipay_public = vector_key("alipay-public-spki.b64");
    let ready = ops.ok(&["set-alipay-public-key", "noodle-bar", "--file", &alipay_public]);
    assert!(ready.contains("ready") && ready.contains("yes"), "{ready}");
    let shown = ops.json(&["show", "noodle-bar"]);
    assert_eq!(shown["ready"], true);
    assert_eq!(shown["gateway_url"], "https://openapi-sandbox.dl.alipaydev.com/gateway.do");
}

#[tokio::test]
async fn create_list_show_and_their_refusals() {
    let (db, k1) = ops().await;
    let ops = Ops { db: &db, master_keys: k1 };
    let private = vector_key("merchant-private-pkcs1.pem");
    let public = vector_key("merchant-public-spki.pem");
    let alipay = vector_key("alipay-public-spki.pem");
    let created = ops.json(&create_openapi(
        "noodle-bar",
        &["--app-private-key-file", &private, "--app-public-key-file", &public, "--alipay-public-key-file", &alipay],
    ));
    assert_eq!(created["tenant"]["ready"], true);
    assert!(created["credential"]["secret"].as_str().unwrap().len() >= 43);
    let md5 = ops.run_with_stdin(
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
            "--secondary-merchant-id",
            "R-7",
            "--secondary-merchant-name",
            "Burger Town",
            "--mcc",
            "5812",
            "--store",
            "7:Central",
            "--md5-key-file",
            "-",
        ],
        MD5_KEY,
    );
    assert!(md5.status.success(), "{}", String::from_utf8_lossy(&md5.stderr));

    let listed = ops.ok(&["list"]);
    assert!(
        listed.contains("noodle-bar") && listed.contains("burger-town") && listed.contains("2 tenant(s)"),
        "{listed}"
    );
    assert_eq!(ops.json(&["list"]).as_array().unwrap().len(), 2);
    let shown = ops.ok(&["show", "burger-town"]);
    assert!(shown.contains("R-7 Burger Town (MCC 5812, 1 store(s))"), "{shown}");
    assert!(!shown.contains(MD5_KEY), "never a secret");

    ops.refused(&create_openapi("noodle-bar", &[]), "is taken").await;
    ops.refused(&create_openapi("Bad_Slug", &[]), "slug").await;
    ops.refused(
        &["create", "x-y", "--name", "X", "--dialect", "openapi", "--app-id", "12ab", "--sign-type", "RSA2"],
        "app id",
    )
    .await;
    ops.refused(
        &["create", "x-y", "--name", "X", "--dialect", "openapi", "--app-id", "2021000000000002", "--sign-type", "MD5"],
        "MD5",
    )
    .await;
    ops.refused(&create_openapi("x-y", &["--environment", "ftp://nowhere"]), "environment").await;
    ops.refused(&create_openapi("x-y", &["--webhook-url", "not a url"]), "webhook").await;
    ops.refused(&create_openapi("x-y", &["--pay-rate", "0"]), "pay rate").await;
    ops.refused(&create_openapi("x-y", &["--app-private-key-file", RSA1024]), "app private key").await;
    ops.refused(
        &create_openapi("x-y", &["--app-private-key-file", &private, "--app-public-key-file", &alipay]),
        "does not belong",
    )
    .await;
    ops.refused(&create_openapi("x-y", &["--alipay-public-key-file", "/nonexistent/key.pem"]), "cannot read").await;
    ops.refused(&create_openapi("x-y", &["--mcc", "5812"]), "secondary merchant").await;
    ops.refused(&["show", "nobody"], "no tenant `nobody`").await;
}

#[tokio::test]
async fn update_suspend_resume_and_key_commands() {
    let (db, k1) = ops().await;
    let ops = Ops { db: &db, master_keys: k1 };
    ops.ok(&create_openapi("noodle-bar", &[]));
    let updated = ops.json(&[
        "update",
        "noodle-bar",
        "--pay-rate",
        "300",
        "--pay-burst",
        "600",
        "--environment",
        "production",
        "--app-id",
        "2021000000000777",
    ]);
    assert_eq!(
        (updated["limits"]["pay_rate"].as_u64(), updated["alipay_id"].as_str()),
        (Some(300), Some("2021000000000777"))
    );
    ops.refused(&["update", "noodle-bar", "--other-rate", "0"], "other rate").await;
    ops.refused(&["update", "noodle-bar", "--webhook-url", "gopher://x"], "webhook").await;
    ops.refused(&["update", "noodle-bar"], "nothing to change").await;
    ops.refused(&["update", "nobody", "--pay-rate", "5"], "no tenant").await;

    assert_eq!(ops.json(&["suspend", "noodle-bar"])["status"], "suspended");
    assert_eq!(ops.json(&["resume", "noodle-bar"])["status"], "active");
    ops.refused(&["suspend", "nobody"], "no tenant").await;

    let private = vector_key("merchant-private-pkcs8.b64");
    let public = vector_key("merchant-public-spki.b64");
    let set = ops.json(&["set-alipay-key", "noodle-bar", "--file", &private, "--public-key-file", &public]);
    assert_eq!(set["app_public_key"], Value::Null, "not generated, so nothing to upload");
    ops.refused(
        &[
            "set-alipay-key",
            "noodle-bar",
            "--file",
            &private,
            "--public-key-file",
            &vector_key("alipay-public-spki.pem"),
        ],
        "does not belong",
    )
    .await;
    ops.refused(&["set-alipay-key", "noodle-bar", "--file", RSA1024], "app private key").await;
    ops.refused(&["set-alipay-key", "noodle-bar"], "--file FILE or --generate").await;
    ops.refused(&["set-alipay-public-key", "noodle-bar", "--file", RSA1024], "Alipay public key").await;
    let md5 = ops.run_with_stdin(&["set-md5-key", "noodle-bar", "--file", "-"], MD5_KEY);
    ops.assert_refused(&md5, &["set-md5-key"], "no MD5 key");

    ops.ok(&[
        "create",
        "burger-town",
        "--name",
        "Burger",
        "--dialect",
        "mapi",
        "--partner",
        "2088021966645500",
        "--sign-type",
        "MD5",
    ]);
    let set = ops.run_with_stdin(&["set-md5-key", "burger-town", "--file", "-"], MD5_KEY);
    assert!(set.status.success(), "{}", String::from_utf8_lossy(&set.stderr));
    let empty = ops.run_with_stdin(&["set-md5-key", "burger-town", "--file", "-"], "   ");
    ops.assert_refused(&empty, &["set-md5-key"], "MD5 key");
    ops.refused(&["set-alipay-key", "burger-town", "--generate"], "MD5 tenants").await;
}

#[tokio::test]
async fn secret_and_master_key_rotation_and_delete() {
    let (db, k1) = ops().await;
    let ops = Ops { db: &db, master_keys: k1.clone() };
    let created = ops.json(&create_openapi("noodle-bar", &[]));
    let rotated = ops.json(&["rotate-api-secret", "noodle-bar", "--overlap", "2h"]);
    assert_ne!(rotated["key_id"], created["credential"]["key_id"]);
    assert_eq!(ops.json(&["show", "noodle-bar"])["credentials"].as_array().unwrap().len(), 2);
    ops.refused(&["rotate-api-secret", "noodle-bar", "--overlap", "31d"], "30 days").await;
    ops.refused(&["rotate-api-secret", "noodle-bar", "--overlap", "soon"], "overlap").await;

    let k2 = master_key("k2");
    let both = Ops { db: &db, master_keys: format!("{},{}", k2.replacen(' ', ":", 1), k1.replacen(' ', ":", 1)) };
    assert_eq!(both.json(&["rotate-master-key"])["rewrapped"], 1);
    let new_only = Ops { db: &db, master_keys: k2.clone() };
    new_only.ok(&["set-alipay-key", "noodle-bar", "--generate"]);
    let old_only = Ops { db: &db, master_keys: k1 };
    old_only.refused(&["set-alipay-key", "noodle-bar", "--generate"], "no master key with id `k2`").await;
    let keyless = Command::new(EXE)
        .args(["rotate-api-secret", "noodle-bar"])
        .env("DATABASE_URL", &db.url)
        .env_remove("ACQ_MASTER_KEYS")
        .env_remove("ACQ_MASTER_KEY_FILE")
        .output()
        .unwrap();
    new_only.assert_refused(&keyless, &["rotate-api-secret"], "no master key configured");

    let client = db.client().await;
    let open = "INSERT INTO trades (tenant_id, out_trade_no, kind, state, fingerprint, currency, amount_minor, subject, \
                alipay_account) SELECT id, 'T1', 'barcode', 'PAYING', '\\x00', 'CNY', 100, 'Noodles', 'tenant:' || id FROM tenants";
    client.execute(open, &[]).await.unwrap();
    new_only.refused(&["delete", "noodle-bar"], "open trade").await;
    client.execute("UPDATE trades SET state = 'SUCCESS'", &[]).await.unwrap();
    assert_eq!(new_only.json(&["delete", "noodle-bar"])["deleted"], "noodle-bar");
    new_only.refused(&["delete", "noodle-bar"], "no tenant").await;
}

#[tokio::test]
async fn migrate_new_master_key_and_admin_serve() {
    let db = TestDb::new().await;
    // A database nobody migrated yet.
    let admin = tenants::db::connect(&admin_url()).await.unwrap();
    let bare = format!("{}_bare", db.name);
    admin.batch_execute(&format!("CREATE DATABASE {bare}")).await.unwrap();
    let bare_url = db.url.replace(&db.name, &bare);
    let migrate = |url: &str| Command::new(EXE).args(["--json", "migrate"]).env("DATABASE_URL", url).output().unwrap();
    let first: Value = serde_json::from_slice(&migrate(&bare_url).stdout).unwrap();
    let second: Value = serde_json::from_slice(&migrate(&bare_url).stdout).unwrap();
    assert_eq!((first["applied"].as_u64(), second["applied"].as_u64()), (Some(2), Some(0)));
    admin.batch_execute(&format!("DROP DATABASE {bare} WITH (FORCE)")).await.unwrap();

    let line = Command::new(EXE).args(["new-master-key", "--id", "k9"]).output().unwrap();
    let line = String::from_utf8(line.stdout).unwrap();
    assert_eq!(tenants::Keyring::parse(line.trim()).unwrap().current_id(), "k9");
    let bad = Command::new(EXE).args(["new-master-key", "--id", "bad id!"]).output().unwrap();
    assert!(!bad.status.success());

    let no_token = Command::new(EXE)
        .args(["admin-serve", "--listen", "127.0.0.1:0"])
        .env("DATABASE_URL", &db.url)
        .env_remove("ACQ_ADMIN_TOKEN")
        .output()
        .unwrap();
    assert!(!no_token.status.success());
    assert!(String::from_utf8_lossy(&no_token.stderr).contains("ACQ_ADMIN_TOKEN"));
}

/// The OS account and host running these tests, as `id -un` and `hostname` say.
fn os_identity() -> String {
    let run = |program: &str, args: &[&str]| {
        let out = Command::new(program).args(args).output().unwrap();
        String::from_utf8(out.stdout).unwrap().trim().to_owned()
    };
    format!("{}@{}", run("id", &["-un"]), run("hostname", &[]))
}

#[tokio::test]
async fn the_audit_trail_names_the_os_account_and_host_behind_every_command() {
    let (db, k1) = ops().await;
    let ops = Ops { db: &db, master_keys: k1 };
    // No $USER (a container, a cron job) and no --actor: still a real name.
    let out =
        ops.command(&create_openapi("noodle-bar", &[])).env_remove("ACQ_ACTOR").env_remove("USER").output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    // $USER says someone else: the trail names the account that ran it.
    let out =
        ops.command(&["suspend", "noodle-bar"]).env_remove("ACQ_ACTOR").env("USER", "somebody-else").output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    // A name given with ACQ_ACTOR comes first.
    ops.ok(&["resume", "noodle-bar"]);

    let client = db.client().await;
    let actors: Vec<String> = client
        .query("SELECT actor FROM tenant_audit ORDER BY id", &[])
        .await
        .unwrap()
        .iter()
        .map(|row| row.get(0))
        .collect();
    let os = os_identity();
    assert_eq!(actors, [format!("cli:{os}"), format!("cli:{os}"), format!("ops:alice via cli:{os}")]);
}

#[tokio::test]
async fn admin_serve_refuses_the_example_token_of_the_deployment_files() {
    use std::io::BufRead;
    let db = TestDb::new().await;
    let mut child = Command::new(EXE)
        .args(["admin-serve", "--listen", "127.0.0.1:0"])
        .env("DATABASE_URL", &db.url)
        .env("ACQ_ADMIN_TOKEN", "CHANGE-ME-at-least-32-characters-long")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // It either says where it listens (it took the token) or ends.
    let mut first = String::new();
    std::io::BufReader::new(child.stdout.take().unwrap()).read_line(&mut first).unwrap();
    if !first.is_empty() {
        child.kill().unwrap();
        child.wait().unwrap();
        panic!("admin-serve accepted the example token: {first}");
    }
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(stderr.starts_with("error: ") && stderr.contains("example"), "{stderr}");
    assert!(!stderr.contains("CHANGE-ME-at-least"), "the token is not repeated: {stderr}");
}

#[tokio::test]
async fn a_chain_imported_from_one_file_twice_is_created_once_and_secrets_go_only_to_the_credentials_file() {
    use std::os::unix::fs::PermissionsExt;

    let (db, k1) = ops().await;
    let ops = Ops { db: &db, master_keys: k1 };
    let dir = import_folder();
    let alipay_public = vector_key("alipay-public-spki.b64");
    let store = |n: u32| {
        json_line(&serde_json::json!({
            "slug": format!("noodle-{n}"), "name": format!("Noodle Bar {n}"), "dialect": "openapi",
            "app_id": "2021000000000001", "sign_type": "RSA2", "pay_rate": 20, "generate_app_key": true,
            "alipay_public_key_file": alipay_public,
        }))
    };
    let global = json_line(&serde_json::json!({
        "slug": "burger-global", "name": "Burger Town", "dialect": "mapi", "partner": "2088021966645500",
        "sign_type": "MD5", "secondary_merchant_id": "R-7", "secondary_merchant_name": "Burger Town",
        "mcc": "5812", "stores": ["7:Central", "8:Harbour"], "md5_key_file": "md5.key",
    }));
    let bad = r#"{"slug": "typo-bar", "name": "Typo", "dialect": "openapi", "app_id": "2021000000000001", "sign_type": "RSA2", "pay_rte": 5}"#;
    let file = dir.join("chain.jsonl");
    std::fs::write(&file, format!("# the chain\n{}\n{}\n{global}\n{bad}\n", store(1), store(2))).unwrap();
    let file = file.to_string_lossy().into_owned();
    let credentials = dir.join("credentials.jsonl").to_string_lossy().into_owned();

    // One bad line is refused on its own; the three others are created.
    let first = ops.run(&["import", "--file", &file, "--credentials-out", &credentials]);
    let (stdout, stderr) = (String::from_utf8_lossy(&first.stdout), String::from_utf8_lossy(&first.stderr));
    assert_eq!(first.status.code(), Some(1), "{stdout}{stderr}");
    assert!(stderr.contains("1 of 4 lines refused"), "{stderr}");
    assert!(stdout.contains("3 created, 0 updated, 0 unchanged, 1 refused"), "{stdout}");
    assert!(stdout.contains("typo-bar") && stdout.contains("unknown field `pay_rte`"), "{stdout}");
    let written = std::fs::read_to_string(&credentials).unwrap();
    let lines: Vec<serde_json::Value> = written.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(lines.len(), 3, "{written}");
    assert_eq!(std::fs::metadata(&credentials).unwrap().permissions().mode() & 0o777, 0o600);
    for line in &lines {
        let secret = line["secret"].as_str().unwrap();
        assert!(!stdout.contains(secret) && !stderr.contains(secret), "a secret reached the terminal");
        assert!(!stdout.contains(line["webhook_secret"].as_str().unwrap()));
    }
    let shown = ops.json(&["show", "burger-global"]);
    assert_eq!(shown["ready"], true);
    assert_eq!(shown["secondary_merchant"]["stores"].as_array().unwrap().len(), 2);
    assert_eq!(ops.json(&["show", "noodle-2"])["limits"]["pay_rate"], 20);

    // The same file again (the bad line fixed): nothing changes, no credentials file.
    let fixed = std::fs::read_to_string(&file).unwrap().replace("pay_rte", "pay_rate");
    std::fs::write(&file, fixed).unwrap();
    let again_out = dir.join("again.jsonl").to_string_lossy().into_owned();
    let before = counts(&db).await;
    let again = ops.ok(&["import", "--file", &file, "--credentials-out", &again_out]);
    assert!(again.contains("1 created, 0 updated, 3 unchanged, 0 refused"), "{again}");
    assert_eq!(std::fs::read_to_string(&again_out).unwrap().lines().count(), 1, "only the fixed line's tenant");
    let third_out = dir.join("third.jsonl").to_string_lossy().into_owned();
    let third = ops.ok(&["import", "--file", &file, "--credentials-out", &third_out]);
    assert!(third.contains("0 created, 0 updated, 4 unchanged, 0 refused"), "{third}");
    assert!(!std::path::Path::new(&third_out).exists(), "no credentials file when nothing was created");
    assert_ne!(counts(&db).await, before, "the fixed line's tenant was created");

    // A changed limit is an update of that field only.
    let raised = std::fs::read_to_string(&file).unwrap().replacen("\"pay_rate\":20", "\"pay_rate\":40", 1);
    std::fs::write(&file, raised).unwrap();
    let updated = ops.ok(&["import", "--file", &file, "--credentials-out", &third_out]);
    assert!(updated.contains("0 created, 1 updated, 3 unchanged") && updated.contains("pay_rate"), "{updated}");
    assert_eq!(ops.json(&["show", "noodle-1"])["limits"]["pay_rate"], 40);

    // An existing credentials file is never overwritten: refused before anything is read.
    ops.refused(&["import", "--file", &file, "--credentials-out", &credentials], "must not exist").await;
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test]
async fn a_chain_imported_from_a_spreadsheet_csv_is_checked_as_json_lines_are() {
    let (db, k1) = ops().await;
    let ops = Ops { db: &db, master_keys: k1 };
    let dir = import_folder();
    let alipay_public = vector_key("alipay-public-spki.b64");
    // As a spreadsheet saves it: a byte-order mark, CRLF, a quoted name with a comma, empty
    // cells for fields not given, a blank row.
    let rows = [
        "slug,name,dialect,app_id,partner,sign_type,pay_rate,generate_app_key,alipay_public_key_file,\
         secondary_merchant_id,secondary_merchant_name,mcc,stores,md5_key_file"
            .to_owned(),
        format!("noodle-1,\"Noodle Bar, Central\",openapi,2021000000000001,,RSA2,20,true,{alipay_public},,,,,"),
        format!("noodle-2,Noodle Bar 2,openapi,2021000000000001,,RSA2,,TRUE,{alipay_public},,,,,"),
        ",,,,,,,,,,,,,".to_owned(),
        "burger-global,Burger Town,mapi,,2088021966645500,MD5,,,,R-7,Burger Town,5812,7:Central; 8:Harbour,md5.key"
            .to_owned(),
        "typo-bar,Typo,openapi,2021000000000001,,RSA2,fast,,,,,,,".to_owned(),
        "short-bar,Short,openapi".to_owned(),
    ];
    let file = dir.join("chain.csv");
    std::fs::write(&file, format!("\u{feff}{}\r\n", rows.join("\r\n"))).unwrap();
    let file = file.to_string_lossy().into_owned();
    let credentials = dir.join("credentials.jsonl").to_string_lossy().into_owned();

    let first = ops.run(&["--json", "import", "--file", &file, "--credentials-out", &credentials]);
    let (stdout, stderr) = (String::from_utf8_lossy(&first.stdout), String::from_utf8_lossy(&first.stderr));
    assert_eq!(first.status.code(), Some(1), "{stdout}{stderr}");
    let report: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    let done: Vec<(u64, &str, &str)> = report["lines"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| (d["line"].as_u64().unwrap(), d["slug"].as_str().unwrap(), d["action"].as_str().unwrap()))
        .collect();
    let expected = [
        (2, "noodle-1", "created"),
        (3, "noodle-2", "created"),
        (5, "burger-global", "created"),
        (6, "typo-bar", "refused"),
        (7, "-", "refused"),
    ];
    assert_eq!(done, expected, "the file's own line numbers: {stdout}");
    assert!(report["lines"][3]["detail"].as_str().unwrap().contains("expected u32"), "{stdout}");
    assert_eq!(report["lines"][4]["detail"], "3 cells where the header names 14", "{stdout}");
    assert_eq!(std::fs::read_to_string(&credentials).unwrap().lines().count(), 3);
    let noodle = ops.json(&["show", "noodle-1"]);
    assert_eq!(
        (noodle["name"].as_str(), noodle["limits"]["pay_rate"].as_u64()),
        (Some("Noodle Bar, Central"), Some(20))
    );
    assert_eq!(ops.json(&["show", "noodle-2"])["ready"], true, "its app key generated (TRUE)");
    let stores = ops.json(&["show", "burger-global"])["secondary_merchant"]["stores"].clone();
    let ids: Vec<&str> = stores.as_array().unwrap().iter().map(|s| s["id"].as_str().unwrap()).collect();
    assert_eq!(ids, ["7", "8"], "{stores}");

    // Again, the two bad rows left out: nothing changes.
    let kept: Vec<&str> =
        rows.iter().map(String::as_str).filter(|row| !row.starts_with("typo") && !row.starts_with("short")).collect();
    std::fs::write(&file, kept.join("\n")).unwrap();
    let again_out = dir.join("again.jsonl").to_string_lossy().into_owned();
    let again = ops.ok(&["import", "--file", &file, "--credentials-out", &again_out]);
    assert!(again.contains("0 created, 0 updated, 3 unchanged, 0 refused"), "{again}");

    // A column named twice, or a file a spreadsheet saved in a legacy encoding: refused whole.
    std::fs::write(&file, "slug,name,slug\nx,y,z\n").unwrap();
    ops.refused(&["import", "--file", &file, "--credentials-out", &again_out], "the column slug is named twice").await;
    std::fs::write(&file, b"slug,name\nnoodle-9,\xc5\xa3\xc8\xe2\xc3\xe6\n").unwrap();
    ops.refused(&["import", "--file", &file, "--credentials-out", &again_out], "is not UTF-8").await;
    let _ = std::fs::remove_dir_all(&dir);
}

/// A new folder for a chain's file, holding the MD5 key its lines name (`md5.key`).
fn import_folder() -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("tenants-import-{}-{}", std::process::id(), rand_suffix()));
    std::fs::create_dir(&dir).unwrap();
    std::fs::write(dir.join("md5.key"), MD5_KEY).unwrap();
    dir
}

fn json_line(value: &serde_json::Value) -> String {
    serde_json::to_string(value).unwrap()
}

fn rand_suffix() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().subsec_nanos().into()
}
