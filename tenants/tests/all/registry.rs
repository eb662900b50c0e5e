//! Every registry operation, its refusals (which write nothing), and the vault's bindings.

use std::time::Duration;

use tenants::model::{Environment, Status, TenantUpdate};
use tenants::registry::{AppKeySource, KeyInput, RegistryError};
use zeroize::Zeroizing;

use crate::helpers::*;

const RSA1024: &str = include_str!("keys/rsa1024-private.pem");

#[tokio::test]
async fn create_show_update_and_audit() {
    let db = TestDb::new().await;
    let ring = keyring(&[&master_key("k1")]);
    let registry = registry(&db, &ring);
    let created = registry.create("ops:test", openapi_tenant("noodle-bar"), rsa_keys()).await.unwrap();
    assert!(created.tenant.ready);
    assert_eq!(created.tenant.keys.app_key.as_deref().map(str::len), Some(64));
    assert!(created.credential.key_id.starts_with("ak_"));
    assert_eq!(created.credential.secret.expose().len(), 43);
    assert_eq!(created.tenant.credentials.len(), 1);

    let mut change = TenantUpdate { pay_rate: Some(200), webhook_url: Some(None), ..TenantUpdate::default() };
    change.name = Some("Noodle Bar (Central)".into());
    let updated = registry.update("ops:test", "noodle-bar", change, KeyInput::default()).await.unwrap();
    assert_eq!(
        (updated.limits.pay_rate, updated.webhook_url.clone(), updated.name.as_str()),
        (200, None, "Noodle Bar (Central)")
    );
    assert!(updated.version > created.tenant.version);

    // Moving to production: environment, app id and keys in one change.
    let production = TenantUpdate {
        environment: Some(Environment::Production),
        alipay_id: Some("2021000000009999".into()),
        ..TenantUpdate::default()
    };
    let keys = KeyInput { app_private_key: Some(AppKeySource::Generate), ..KeyInput::default() };
    let moved = registry.update("ops:test", "noodle-bar", production, keys).await.unwrap();
    assert_eq!(moved.gateway_url, "https://openapi.alipay.com/gateway.do");
    assert_eq!(moved.alipay_id, "2021000000009999");
    assert_ne!(moved.keys.app_key, created.tenant.keys.app_key);

    let client = db.client().await;
    let audit = client.query("SELECT actor, action, detail::text FROM tenant_audit ORDER BY id", &[]).await.unwrap();
    let actions: Vec<String> = audit.iter().map(|r| r.get::<_, String>(1)).collect();
    assert_eq!(actions, ["create", "update", "update"]);
    assert!(audit.iter().all(|r| r.get::<_, String>(0) == "ops:test"));
    assert!(audit[2].get::<_, String>(2).contains("environment"));
}

#[tokio::test]
async fn refusals_write_nothing() {
    let db = TestDb::new().await;
    let ring = keyring(&[&master_key("k1")]);
    let registry = registry(&db, &ring);
    registry.create("ops:test", openapi_tenant("taken"), rsa_keys()).await.unwrap();
    let before = counts(&db).await;

    let duplicate = registry.create("ops:test", openapi_tenant("taken"), rsa_keys()).await;
    assert!(matches!(duplicate, Err(RegistryError::Conflict(_))), "{duplicate:?}");
    let small =
        KeyInput { app_private_key: Some(AppKeySource::Text(Zeroizing::new(RSA1024.into()))), ..KeyInput::default() };
    assert!(matches!(
        registry.create("ops:test", openapi_tenant("small-key"), small).await,
        Err(RegistryError::Invalid(_))
    ));
    let mismatch = KeyInput { app_public_key: Some(ALIPAY_PUBLIC.into()), ..rsa_keys() };
    let refused = registry.create("ops:test", openapi_tenant("mismatch"), mismatch).await.unwrap_err();
    assert!(refused.to_string().contains("does not belong"), "{refused}");
    let md5_on_rsa = KeyInput { md5_key: Some(Zeroizing::new(MD5_KEY.into())), ..KeyInput::default() };
    assert!(registry.create("ops:test", openapi_tenant("md5-on-rsa"), md5_on_rsa).await.is_err());
    let garbage = KeyInput { alipay_public_key: Some("not a key".into()), ..KeyInput::default() };
    assert!(registry.set_keys("ops:test", "taken", garbage).await.is_err());
    let bad_limits = TenantUpdate { pay_rate: Some(0), ..TenantUpdate::default() };
    assert!(registry.update("ops:test", "taken", bad_limits, KeyInput::default()).await.is_err());
    let bad_id = TenantUpdate { alipay_id: Some("2088x".into()), ..TenantUpdate::default() };
    assert!(registry.update("ops:test", "taken", bad_id, KeyInput::default()).await.is_err());
    assert!(matches!(registry.show("nobody").await, Err(RegistryError::NotFound(_))));
    assert!(registry.rotate_api_secret("ops:test", "taken", Duration::from_secs(31 * 86_400)).await.is_err());
    assert!(registry.set_status("", "taken", Status::Suspended).await.is_err(), "an actor is required");

    assert_eq!(counts(&db).await, before);
}

#[tokio::test]
async fn api_secret_rotation_keeps_the_old_one_for_the_overlap() {
    let db = TestDb::new().await;
    let ring = keyring(&[&master_key("k1")]);
    let registry = registry(&db, &ring);
    let created = registry.create("ops:test", mapi_tenant("burger-town"), md5_keys()).await.unwrap();
    let issued = registry.rotate_api_secret("ops:test", "burger-town", Duration::from_secs(3600)).await.unwrap();
    assert_ne!(issued.key_id, created.credential.key_id);
    let view = registry.show("burger-town").await.unwrap();
    assert_eq!(view.credentials.len(), 2);
    let old = view.credentials.iter().find(|c| c.key_id == created.credential.key_id).unwrap();
    assert!(old.expires_at.is_some());
    let new = view.credentials.iter().find(|c| c.key_id == issued.key_id).unwrap();
    assert!(new.expires_at.is_none());
    // With no overlap the previous credential ends at once.
    registry.rotate_api_secret("ops:test", "burger-town", Duration::ZERO).await.unwrap();
    let view = registry.show("burger-town").await.unwrap();
    assert!(view.credentials.iter().all(|c| c.key_id != issued.key_id));
}

#[tokio::test]
async fn master_key_rotation_rewraps_online() {
    let db = TestDb::new().await;
    let k1 = master_key("k1");
    let old = keyring(&[&k1]);
    registry(&db, &old).create("ops:test", openapi_tenant("a-tenant"), rsa_keys()).await.unwrap();
    registry(&db, &old).create("ops:test", mapi_tenant("b-tenant"), md5_keys()).await.unwrap();
    let k2 = master_key("k2");
    let both = keyring(&[&k2, &k1]);
    let rotation = registry(&db, &both).rotate_master_key("ops:test").await.unwrap();
    assert_eq!((rotation.rewrapped, rotation.already_current), (2, 0));
    let again = registry(&db, &both).rotate_master_key("ops:test").await.unwrap();
    assert_eq!((again.rewrapped, again.already_current), (0, 2));
    // The old master key can now go: the new ring alone opens every tenant.
    let new_only = keyring(&[&k2]);
    let snapshot = tenants::snapshot::Loader::new(db.pool(), new_only).load_all().await.unwrap();
    assert_eq!(snapshot.len(), 2);
    assert!(snapshot.tenants().all(|t| t.is_ready()));
}

#[tokio::test]
async fn a_sealed_value_moved_to_another_tenant_or_purpose_does_not_open() {
    let db = TestDb::new().await;
    let ring = keyring(&[&master_key("k1")]);
    let registry = registry(&db, &ring);
    registry.create("ops:test", mapi_tenant("victim"), md5_keys()).await.unwrap();
    registry.create("ops:test", mapi_tenant("thief"), md5_keys()).await.unwrap();
    let client = db.client().await;
    // Another tenant's MD5 key copied over the thief's.
    client
        .execute(
            "UPDATE tenant_secrets SET sealed = (SELECT s.sealed FROM tenant_secrets s JOIN tenants t ON t.id = s.tenant_id \
             WHERE t.slug = 'victim' AND s.purpose = 'md5_key') \
             WHERE purpose = 'md5_key' AND tenant_id = (SELECT id FROM tenants WHERE slug = 'thief')",
            &[],
        )
        .await
        .unwrap();
    // The victim's webhook secret copied over its own MD5 key (another purpose).
    client
        .execute(
            "UPDATE tenant_secrets SET sealed = (SELECT sealed FROM tenant_secrets s WHERE s.purpose = 'webhook_secret' \
             AND s.tenant_id = tenant_secrets.tenant_id) \
             WHERE purpose = 'md5_key' AND tenant_id = (SELECT id FROM tenants WHERE slug = 'victim')",
            &[],
        )
        .await
        .unwrap();
    let snapshot = tenants::snapshot::Loader::new(db.pool(), ring).load_all().await.unwrap();
    assert!(snapshot.by_slug("thief").is_none(), "a value sealed for another tenant must not open");
    assert!(snapshot.by_slug("victim").is_none(), "a value sealed for another purpose must not open");
}

#[tokio::test]
async fn delete_is_refused_while_trades_are_open_and_destroys_secrets() {
    let db = TestDb::new().await;
    let ring = keyring(&[&master_key("k1")]);
    let registry = registry(&db, &ring);
    let created = registry.create("ops:test", openapi_tenant("closing-down"), rsa_keys()).await.unwrap();
    let client = db.client().await;
    let trade = "INSERT INTO trades (tenant_id, out_trade_no, kind, state, fingerprint, currency, amount_minor, subject) \
                 VALUES ($1, $2, 'barcode', $3, '\\x00', 'CNY', 100, 'Noodles')";
    client.execute(trade, &[&created.tenant.id, &"T1", &"UNKNOWN"]).await.unwrap();
    client.execute(trade, &[&created.tenant.id, &"T2", &"SUCCESS"]).await.unwrap();
    let before = counts(&db).await;
    let refused = registry.delete("ops:test", "closing-down").await.unwrap_err();
    assert!(matches!(refused, RegistryError::Conflict(_)), "{refused}");
    assert_eq!(counts(&db).await, before);

    client.execute("UPDATE trades SET state = 'CANCELLED' WHERE state = 'UNKNOWN'", &[]).await.unwrap();
    registry.delete("ops:test", "closing-down").await.unwrap();
    assert!(matches!(registry.show("closing-down").await, Err(RegistryError::NotFound(_))));
    let secrets: i64 = client.query_one("SELECT count(*) FROM tenant_secrets", &[]).await.unwrap().get(0);
    let keys: i64 = client.query_one("SELECT count(*) FROM api_credentials", &[]).await.unwrap().get(0);
    assert_eq!((secrets, keys), (0, 0));
    // The slug is free again.
    registry.create("ops:test", openapi_tenant("closing-down"), KeyInput::default()).await.unwrap();
}
