//! The snapshot: loads every tenant with parsed keys, follows changes through LISTEN/NOTIFY, and
//! recovers from a lost listener connection.

use std::time::{Duration, Instant};

use aws_lc_rs::hmac;
use tenants::model::Status;
use tenants::registry::KeyInput;
use tenants::snapshot::{Loader, RefreshConfig};
use time::OffsetDateTime;

use crate::helpers::*;

async fn until(snapshots: &tenants::Snapshots, what: &str, done: impl Fn(&tenants::Snapshot) -> bool) -> Duration {
    let started = Instant::now();
    let mut changes = snapshots.subscribe();
    while !done(&snapshots.current()) {
        tokio::time::timeout(Duration::from_secs(10), changes.changed())
            .await
            .unwrap_or_else(|_| panic!("the snapshot never saw: {what}"))
            .unwrap();
    }
    started.elapsed()
}

#[tokio::test]
async fn follows_every_change_and_authenticates_by_key_id() {
    let db = TestDb::new().await;
    let ring = keyring(&[&master_key("k1")]);
    let registry = registry(&db, &ring);
    let created = registry.create("ops:test", openapi_tenant("noodle-bar"), rsa_keys()).await.unwrap();
    let config = RefreshConfig { database_url: db.url.clone(), full_reload_every: Duration::from_secs(60) };
    let (snapshots, task) = tenants::snapshot::start(Loader::new(db.pool(), ring.clone()), config).await.unwrap();
    let now = OffsetDateTime::now_utc();
    {
        let snapshot = snapshots.current();
        let (tenant, key) = snapshot.authenticate(&created.credential.key_id, now).unwrap();
        assert_eq!(tenant.slug, "noodle-bar");
        assert!(tenant.is_ready() && tenant.is_active());
        let issued = hmac::Key::new(hmac::HMAC_SHA256, created.credential.secret.expose().as_bytes());
        assert!(hmac::verify(&key.hmac, b"a request", hmac::sign(&issued, b"a request").as_ref()).is_ok());
        assert_eq!(tenant.webhook_secret.as_ref().unwrap().expose(), created.webhook_secret.expose());
        assert!(snapshot.authenticate("ak_nobody", now).is_none());
    }

    let later = registry.create("ops:test", mapi_tenant("burger-town"), md5_keys()).await.unwrap();
    until(&snapshots, "a new tenant", |s| s.by_slug("burger-town").is_some_and(|t| t.is_ready())).await;

    registry.set_status("ops:test", "noodle-bar", Status::Suspended).await.unwrap();
    let took = until(&snapshots, "the suspension", |s| s.by_slug("noodle-bar").is_some_and(|t| !t.is_active())).await;
    println!("suspension reached the snapshot in {took:?}");

    let rotated = registry.rotate_api_secret("ops:test", "burger-town", Duration::ZERO).await.unwrap();
    until(&snapshots, "the new API key", |s| s.authenticate(&rotated.key_id, OffsetDateTime::now_utc()).is_some())
        .await;
    assert!(snapshots.current().authenticate(&later.credential.key_id, OffsetDateTime::now_utc()).is_none());

    registry.delete("ops:test", "burger-town").await.unwrap();
    until(&snapshots, "the deletion", |s| s.by_slug("burger-town").is_none()).await;
    task.abort();
}

#[tokio::test]
async fn a_lost_listener_is_reconnected_and_missed_changes_are_caught_up() {
    let db = TestDb::new().await;
    let ring = keyring(&[&master_key("k1")]);
    let registry = registry(&db, &ring);
    registry.create("ops:test", mapi_tenant("burger-town"), md5_keys()).await.unwrap();
    let config = RefreshConfig { database_url: db.url.clone(), full_reload_every: Duration::from_secs(3600) };
    let (snapshots, task) = tenants::snapshot::start(Loader::new(db.pool(), ring.clone()), config).await.unwrap();
    let client = db.client().await;
    // Cut every other connection to this database (the listener's among them), then change the
    // tenant: its notification goes nowhere.
    client
        .execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()",
            &[],
        )
        .await
        .unwrap();
    let keys = KeyInput { md5_key: Some(zeroize::Zeroizing::new("n3w-k3y".into())), ..KeyInput::default() };
    let changed = loop {
        // The pool's own connections were cut too; the first attempt may meet a dead one.
        match registry.set_keys("ops:test", "burger-town", keys_again(&keys)).await {
            Ok((view, _)) => break view,
            Err(_) => tokio::task::yield_now().await,
        }
    };
    until(&snapshots, "the change made while the listener was down", |s| {
        s.by_slug("burger-town").is_some_and(|t| t.version == changed.version)
    })
    .await;
    task.abort();
}

fn keys_again(keys: &KeyInput) -> KeyInput {
    KeyInput { md5_key: keys.md5_key.clone(), ..KeyInput::default() }
}

#[tokio::test]
async fn an_unloadable_tenant_is_left_out_not_fatal() {
    let db = TestDb::new().await;
    let ring = keyring(&[&master_key("k1")]);
    registry(&db, &ring).create("ops:test", mapi_tenant("good"), md5_keys()).await.unwrap();
    registry(&db, &ring).create("ops:test", mapi_tenant("broken"), md5_keys()).await.unwrap();
    let client = db.client().await;
    client.execute("UPDATE tenants SET master_key_id = 'gone' WHERE slug = 'broken'", &[]).await.unwrap();
    let snapshot = Loader::new(db.pool(), ring).load_all().await.unwrap();
    assert!(snapshot.by_slug("good").is_some());
    assert!(snapshot.by_slug("broken").is_none());
}
