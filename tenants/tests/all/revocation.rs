//! Partner API credentials that must stop working: a second rotation ends every older credential
//! by the new overlap (not by the expiry it had), and `revoke-api-key` kills one key on a running
//! gateway at once — through the real partner API, with the audit trail naming the key and who.

use std::process::Command;
use std::time::{Duration, Instant};

use stack::{Options, Pos, Stack};
use tenants::snapshot::Loader;
use time::OffsetDateTime;

use crate::helpers::*;

const EXE: &str = env!("CARGO_BIN_EXE_tenants");

/// A `tenants` command against `stack`'s database, as ops run it.
fn tenants_cli(stack: &Stack, args: &[&str]) -> std::process::Output {
    Command::new(EXE)
        .args(args)
        .env("DATABASE_URL", &stack.db.url)
        .env("ACQ_MASTER_KEYS", stack.master_key.as_str())
        .env_remove("ACQ_MASTER_KEY_FILE")
        .env_remove("ACQ_ACTOR")
        .output()
        .unwrap()
}

/// What the gateway answers `pos` (404 for a trade it does not know: the credential works).
async fn answer(pos: &Pos) -> u16 {
    pos.get("no-such-trade", 0).await.0
}

/// Waits (on the snapshot's change events, not a timer) until the gateway refuses `key_id`.
async fn refused_by_the_gateway(stack: &Stack, key_id: &str) -> Duration {
    let started = Instant::now();
    let snapshots = stack.gateway.state().snapshots.clone();
    let mut changes = snapshots.subscribe();
    while snapshots.current().authenticate(key_id, OffsetDateTime::now_utc()).is_some() {
        tokio::time::timeout(Duration::from_secs(5), changes.changed())
            .await
            .expect("the gateway still accepts the key 5 s later")
            .unwrap();
    }
    started.elapsed()
}

#[tokio::test]
async fn a_second_rotation_ends_every_older_credential_by_the_new_overlap() {
    let db = TestDb::new().await;
    let ring = keyring(&[&master_key("k1")]);
    let registry = registry(&db, &ring);
    let created = registry.create("ops:test", mapi_tenant("burger-town"), md5_keys()).await.unwrap();
    let first = created.credential.key_id;
    // A first rotation keeps the first secret for 30 days; it then leaks.
    registry.rotate_api_secret("ops:test", "burger-town", Duration::from_secs(30 * 86_400)).await.unwrap();
    let before = OffsetDateTime::now_utc();
    let second = registry.rotate_api_secret("ops:test", "burger-town", Duration::from_secs(3600)).await.unwrap();
    let after = OffsetDateTime::now_utc();

    let view = registry.show("burger-town").await.unwrap();
    let expiry = |key: &str| view.credentials.iter().find(|c| c.key_id == key).and_then(|c| c.expires_at);
    let first_ends = expiry(&first).expect("the first credential is still in its overlap");
    assert!(
        first_ends >= before + Duration::from_secs(3599) && first_ends <= after + Duration::from_secs(3600),
        "the first credential must end an hour from now (the new overlap), not in 30 days: {first_ends}"
    );
    assert_eq!(expiry(&second.key_id), None, "the newest credential does not expire");

    let snapshot = Loader::new(db.pool(), ring).load_all().await.unwrap();
    assert!(snapshot.authenticate(&first, before + Duration::from_secs(3590)).is_some());
    assert!(snapshot.authenticate(&first, after + Duration::from_secs(3601)).is_none(), "works past the new overlap");
    assert!(snapshot.authenticate(&second.key_id, after + Duration::from_secs(86_400)).is_some());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rotated_out_and_revoked_keys_are_refused_by_a_running_gateway() {
    let stack = Stack::start(Options::default()).await;
    let first = stack.mapi_tenant().await;
    assert_eq!(answer(&first).await, 404, "the credential works");
    let rotate = |overlap: &str| {
        let out = tenants_cli(&stack, &["--json", "rotate-api-secret", &first.slug, "--overlap", overlap]);
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        let issued: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        let (key_id, secret) = (issued["key_id"].as_str().unwrap(), issued["secret"].as_str().unwrap());
        Pos { key_id: key_id.into(), secret: secret.into(), ..first.clone() }
    };

    // A rotation with a 30-day overlap, then one with none: both older keys end at once.
    let second = rotate("30d");
    let third = rotate("0s");
    refused_by_the_gateway(&stack, &first.key_id).await;
    assert_eq!(answer(&first).await, 401, "the first key, still in its 30-day overlap, must end with the new one");
    assert_eq!(answer(&second).await, 401);
    assert_eq!(answer(&third).await, 404);

    // Revoking one key: refused by the running gateway within a bounded time of the command.
    let fourth = rotate("1h");
    assert_eq!(answer(&third).await, 404, "in its overlap");
    let out = tenants_cli(&stack, &["revoke-api-key", &first.slug, &third.key_id]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let took = refused_by_the_gateway(&stack, &third.key_id).await;
    println!("a revoked key was refused by the gateway {took:?} after the command returned");
    assert_eq!(answer(&third).await, 401);
    assert_eq!(answer(&fourth).await, 404, "the other key keeps working");

    let client = stack.db.client().await;
    let row =
        client.query_one("SELECT actor, detail FROM tenant_audit WHERE action = 'revoke-api-key'", &[]).await.unwrap();
    let (actor, detail): (String, serde_json::Value) = (row.get(0), row.get(1));
    assert_eq!(detail["api_key_id"], third.key_id.as_str(), "the audit trail names the key: {detail}");
    assert!(actor.starts_with("cli:") && actor.contains('@'), "and who revoked it: {actor}");

    // The last live key is kept unless ops say so; unknown keys are refused.
    let before = counts(&stack.db).await;
    for (args, reason) in [
        (vec!["revoke-api-key", &first.slug, &fourth.key_id], "last live API key"),
        (vec!["revoke-api-key", &first.slug, &third.key_id], "no live API key"),
        (vec!["revoke-api-key", &first.slug, "ak_nobody"], "no live API key"),
    ] {
        let out = tenants_cli(&stack, &args);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success() && stderr.lines().count() == 1 && stderr.contains(reason), "{args:?}: {stderr}");
    }
    assert_eq!(counts(&stack.db).await, before, "a refusal writes nothing");
    assert_eq!(answer(&fourth).await, 404);
    let out = tenants_cli(&stack, &["revoke-api-key", &first.slug, &fourth.key_id, "--allow-last"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    refused_by_the_gateway(&stack, &fourth.key_id).await;
    assert_eq!(answer(&fourth).await, 401);
}
