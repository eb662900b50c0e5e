//! Front doors through the registry and the snapshot: what the gateway will see (a POS request
//! verified with the POS key, an answer that verifies with the shown platform key), rotations
//! with explicit times, refusals that write nothing, and an audit trail without secrets.

use std::time::Duration;

use alipay::{Md5Key, SignType, Signer, Verifier};
use tenants::model::Dialect;
use tenants::registry::{FrontDoorInput, FrontDoorIssued, PosKeySource, RegistryError};
use tenants::snapshot::{FrontDoor, Loader, RefreshConfig};
use tenants::{Registry, Snapshot};
use time::OffsetDateTime;
use zeroize::Zeroizing;

use crate::helpers::*;

const REQUEST: &[u8] = b"app_id=2099&biz_content={\"out_trade_no\":\"T1\"}&method=alipay.trade.pay";
const ANSWER: &[u8] = b"{\"code\":\"10000\",\"msg\":\"Success\"}";

fn input(id: Option<&str>, sign_type: SignType, pos_key: PosKeySource) -> FrontDoorInput {
    FrontDoorInput { id: id.map(str::to_owned), sign_type, pos_key }
}

fn given_public() -> PosKeySource {
    PosKeySource::PublicKey(MERCHANT_PUBLIC.into())
}

async fn snapshot(db: &TestDb, ring: &std::sync::Arc<tenants::Keyring>) -> Snapshot {
    Loader::new(db.pool(), ring.clone()).load_all().await.unwrap()
}

fn door<'a>(snapshot: &'a Snapshot, slug: &str) -> &'a FrontDoor {
    snapshot.by_slug(slug).unwrap().front_door.as_ref().unwrap()
}

/// Whether a request signed with `signer` passes the front door at `now`.
fn accepts(door: &FrontDoor, signer: &Signer, now: OffsetDateTime) -> bool {
    let signature = signer.sign(REQUEST).unwrap();
    door.verifiers(now).any(|v| v.verify(REQUEST, &signature).is_ok())
}

/// Whether the front door's answer at `now` verifies with `public_key` (as the POS checks it).
fn answer_verifies(door: &FrontDoor, public_key: &str, now: OffsetDateTime) -> bool {
    let signature = door.signer(now).unwrap().sign(ANSWER).unwrap();
    Verifier::from_key_text(door.sign_type, public_key).unwrap().verify(ANSWER, &signature).is_ok()
}

async fn openapi_with_door(registry: &Registry, slug: &str, pos_key: PosKeySource) -> FrontDoorIssued {
    registry.create("ops:test", openapi_tenant(slug), rsa_keys()).await.unwrap();
    registry.enable_front_door("ops:test", slug, input(None, SignType::Rsa2, pos_key)).await.unwrap()
}

#[tokio::test]
async fn a_generated_pos_key_signs_requests_the_snapshot_accepts_and_answers_verify_with_the_shown_key() {
    let db = TestDb::new().await;
    let ring = keyring(&[&master_key("k1")]);
    let registry = registry(&db, &ring);
    let issued = openapi_with_door(&registry, "noodle-bar", PosKeySource::Generate).await;
    assert!(issued.id.len() == 16 && issued.id.starts_with("2099"), "{}", issued.id);
    let pkcs1 = issued.pos_private_key_pkcs1_pem.as_deref().unwrap();
    let pkcs8 = issued.pos_private_key_pkcs8_pem.as_deref().unwrap();
    assert!(pkcs1.contains("BEGIN RSA PRIVATE KEY") && pkcs8.contains("BEGIN PRIVATE KEY"));
    assert!(issued.md5_key.is_none());
    let debug = format!("{issued:?}");
    assert!(!debug.contains("PRIVATE KEY") && debug.contains("***"), "{debug}");
    let platform_public = issued.platform_public_key.clone().unwrap();
    assert!(!platform_public.contains("BEGIN"), "bare base64, as SDKs take it");

    let snapshot = snapshot(&db, &ring).await;
    let tenant = snapshot.by_front_door(Dialect::Openapi, &issued.id).unwrap();
    assert_eq!(tenant.slug, "noodle-bar");
    assert!(snapshot.by_front_door(Dialect::Mapi, &issued.id).is_none());
    assert!(snapshot.by_front_door(Dialect::Openapi, "2099000000000000").is_none());
    let door = tenant.front_door.as_ref().unwrap();
    assert_eq!((door.id.as_str(), door.sign_type), (issued.id.as_str(), SignType::Rsa2));
    let now = OffsetDateTime::now_utc();
    for pem in [pkcs1, pkcs8] {
        assert!(accepts(door, &Signer::from_secret(SignType::Rsa2, pem).unwrap(), now));
    }
    let stranger = Signer::from_secret(SignType::Rsa2, MERCHANT_PRIVATE_PKCS1).unwrap();
    assert!(!accepts(door, &stranger, now));
    assert!(answer_verifies(door, &platform_public, now));
    assert!(!format!("{door:?}").contains(&platform_public[40..80]), "Debug shows no key");

    let shown = registry.show("noodle-bar").await.unwrap().front_door.unwrap();
    assert_eq!(shown, issued.front_door);
    assert_eq!(shown.platform_keys.len(), 1);
    assert_eq!(shown.platform_keys[0].public_key, platform_public);
    assert_eq!(shown.pos_keys.len(), 1);
    assert_eq!(shown.pos_keys[0].until, None);
    assert_eq!(shown.pos_keys[0].fingerprint.as_deref().map(str::len), Some(64));
}

#[tokio::test]
async fn given_keys_and_ids_in_both_dialects() {
    let db = TestDb::new().await;
    let ring = keyring(&[&master_key("k1")]);
    let registry = registry(&db, &ring);
    registry.create("ops:test", openapi_tenant("noodle-bar"), rsa_keys()).await.unwrap();
    registry.create("ops:test", mapi_tenant("burger-town"), md5_keys()).await.unwrap();
    registry.create("ops:test", mapi_tenant("taco-stand"), md5_keys()).await.unwrap();
    // The same digits may be an app id and a partner: ids are unique per dialect.
    let id = "2088990000000001";
    let rsa = input(Some(id), SignType::Rsa2, given_public());
    let openapi = registry.enable_front_door("ops:test", "noodle-bar", rsa).await.unwrap();
    assert!(openapi.pos_private_key_pkcs1_pem.is_none() && openapi.md5_key.is_none());
    let md5 = input(Some(id), SignType::Md5, PosKeySource::Md5Key(Zeroizing::new(MD5_KEY.into())));
    let mapi = registry.enable_front_door("ops:test", "burger-town", md5).await.unwrap();
    assert_eq!((mapi.platform_public_key.as_deref(), mapi.md5_key.as_deref()), (None, None));
    assert!(mapi.front_door.platform_keys.is_empty());
    let generated = input(None, SignType::Md5, PosKeySource::Generate);
    let taco = registry.enable_front_door("ops:test", "taco-stand", generated).await.unwrap();
    assert!(taco.id.starts_with("208899") && taco.id.len() == 16, "{}", taco.id);
    let taco_key = taco.md5_key.as_deref().unwrap().to_owned();
    assert!(taco_key.len() == 32 && taco_key.bytes().all(|b| b.is_ascii_alphanumeric()));

    let snapshot = snapshot(&db, &ring).await;
    let now = OffsetDateTime::now_utc();
    assert_eq!(snapshot.by_front_door(Dialect::Openapi, id).unwrap().slug, "noodle-bar");
    assert_eq!(snapshot.by_front_door(Dialect::Mapi, id).unwrap().slug, "burger-town");
    let pos = Signer::from_secret(SignType::Rsa2, MERCHANT_PRIVATE_PKCS1).unwrap();
    assert!(accepts(door(&snapshot, "noodle-bar"), &pos, now));
    assert!(answer_verifies(door(&snapshot, "noodle-bar"), openapi.platform_public_key.as_deref().unwrap(), now));
    // MD5: the POS's key verifies its requests and signs the answers.
    for (slug, key) in [("burger-town", MD5_KEY), ("taco-stand", taco_key.as_str())] {
        let door = door(&snapshot, slug);
        assert!(accepts(door, &Signer::md5(Md5Key::new(key).unwrap()), now));
        assert!(answer_verifies(door, key, now));
    }
    assert!(!accepts(door(&snapshot, "taco-stand"), &Signer::md5(Md5Key::new(MD5_KEY).unwrap()), now));
}

#[tokio::test]
async fn refusals_write_nothing() {
    let db = TestDb::new().await;
    let ring = keyring(&[&master_key("k1")]);
    let registry = registry(&db, &ring);
    let first = openapi_with_door(&registry, "noodle-bar", given_public()).await;
    registry.create("ops:test", openapi_tenant("ramen-house"), rsa_keys()).await.unwrap();
    registry.create("ops:test", mapi_tenant("burger-town"), md5_keys()).await.unwrap();
    let before = counts(&db).await;

    let clash = input(Some(&first.id), SignType::Rsa2, given_public());
    let refused = registry.enable_front_door("ops:test", "ramen-house", clash).await.unwrap_err();
    assert!(matches!(refused, RegistryError::Conflict(_)), "{refused:?}");
    assert!(refused.to_string().contains(&first.id), "{refused}");
    let again = registry.enable_front_door("ops:test", "noodle-bar", input(None, SignType::Rsa2, given_public()));
    assert!(matches!(again.await, Err(RegistryError::Conflict(_))));
    let refusals = [
        ("ramen-house", input(None, SignType::Md5, PosKeySource::Md5Key(Zeroizing::new(MD5_KEY.into())))),
        ("ramen-house", input(Some("12ab"), SignType::Rsa2, given_public())),
        ("ramen-house", input(None, SignType::Rsa2, PosKeySource::PublicKey("not a key".into()))),
        ("ramen-house", input(None, SignType::Rsa2, PosKeySource::Md5Key(Zeroizing::new(MD5_KEY.into())))),
        ("burger-town", input(Some("2021000000000001"), SignType::Md5, PosKeySource::Generate)),
        ("burger-town", input(None, SignType::Md5, PosKeySource::Md5Key(Zeroizing::new("short-key".into())))),
        ("burger-town", input(None, SignType::Md5, given_public())),
    ];
    for (slug, refused) in refusals {
        let error = registry.enable_front_door("ops:test", slug, refused).await.unwrap_err();
        assert!(matches!(error, RegistryError::Invalid(_)), "{slug}: {error:?}");
    }
    let long =
        registry.rotate_front_door_pos_key("ops:test", "noodle-bar", given_public(), Duration::from_secs(31 * 86_400));
    assert!(matches!(long.await, Err(RegistryError::Invalid(_))));
    let none = registry.rotate_front_door_platform_key("ops:test", "ramen-house", Duration::ZERO).await;
    assert!(matches!(none, Err(RegistryError::NoFrontDoor(_))), "{none:?}");
    assert!(matches!(registry.disable_front_door("ops:test", "ramen-house").await, Err(RegistryError::NoFrontDoor(_))));
    let nobody = registry.enable_front_door("ops:test", "nobody", input(None, SignType::Rsa2, given_public()));
    assert!(matches!(nobody.await, Err(RegistryError::NotFound(_))));
    assert_eq!(counts(&db).await, before, "a refusal wrote something");
}

#[tokio::test]
async fn a_rotated_out_pos_key_verifies_until_the_overlap_ends() {
    let db = TestDb::new().await;
    let ring = keyring(&[&master_key("k1")]);
    let registry = registry(&db, &ring);
    openapi_with_door(&registry, "noodle-bar", given_public()).await;
    let old = Signer::from_secret(SignType::Rsa2, MERCHANT_PRIVATE_PKCS1).unwrap();
    let hour = Duration::from_secs(3600);
    let rotated =
        registry.rotate_front_door_pos_key("ops:test", "noodle-bar", PosKeySource::Generate, hour).await.unwrap();
    let new = Signer::from_secret(SignType::Rsa2, rotated.pos_private_key_pkcs8_pem.as_deref().unwrap()).unwrap();
    let pos_keys = &rotated.front_door.pos_keys;
    assert_eq!(pos_keys.len(), 2);
    assert_eq!(pos_keys[0].until, None, "the current key first");
    let until = pos_keys[1].until.unwrap();

    let snapshot = snapshot(&db, &ring).await;
    let door = door(&snapshot, "noodle-bar");
    let second = time::Duration::SECOND;
    for (now, old_accepted) in [(OffsetDateTime::now_utc(), true), (until - second, true), (until, false)] {
        assert_eq!(accepts(door, &old, now), old_accepted, "old key at {now}");
        assert!(accepts(door, &new, now), "new key at {now}");
    }
    assert!(accepts(door, &new, until + time::Duration::days(365)));

    // A second rotation with no overlap ends every older key at once.
    let again = registry.rotate_front_door_pos_key("ops:test", "noodle-bar", given_public(), Duration::ZERO).await;
    assert_eq!(again.unwrap().front_door.pos_keys.len(), 1);
    let snapshot = crate::front_door::snapshot(&db, &ring).await;
    let door = crate::front_door::door(&snapshot, "noodle-bar");
    assert!(accepts(door, &old, OffsetDateTime::now_utc()) && !accepts(door, &new, OffsetDateTime::now_utc()));
    assert_eq!(door.pos_keys.len(), 1);
}

#[tokio::test]
async fn a_new_platform_key_is_published_at_once_and_signs_from_the_end_of_the_overlap() {
    let db = TestDb::new().await;
    let ring = keyring(&[&master_key("k1")]);
    let registry = registry(&db, &ring);
    let first = openapi_with_door(&registry, "noodle-bar", given_public()).await;
    let old_public = first.platform_public_key.unwrap();
    let rotated =
        registry.rotate_front_door_platform_key("ops:test", "noodle-bar", Duration::from_secs(6 * 3600)).await.unwrap();
    let new_public = rotated.platform_public_key.clone().unwrap();
    assert_ne!(new_public, old_public);
    let keys = &rotated.front_door.platform_keys;
    assert_eq!(keys.len(), 2);
    assert_eq!((keys[1].public_key.as_str(), keys[0].until), (new_public.as_str(), Some(keys[1].from)));
    let from = keys[1].from;

    let snapshot = snapshot(&db, &ring).await;
    let door = door(&snapshot, "noodle-bar");
    let second = time::Duration::SECOND;
    for (now, signing) in [
        (OffsetDateTime::now_utc(), &old_public),
        (from - second, &old_public),
        (from, &new_public),
        (from + time::Duration::days(30), &new_public),
    ] {
        assert!(answer_verifies(door, signing, now), "at {now}");
    }
    assert_eq!(
        door.platform.iter().map(|k| k.public_key.clone().unwrap()).collect::<Vec<_>>(),
        [old_public, new_public]
    );

    registry.create("ops:test", mapi_tenant("burger-town"), md5_keys()).await.unwrap();
    let md5 = input(None, SignType::Md5, PosKeySource::Generate);
    registry.enable_front_door("ops:test", "burger-town", md5).await.unwrap();
    let refused = registry.rotate_front_door_platform_key("ops:test", "burger-town", Duration::ZERO).await;
    assert!(matches!(refused, Err(RegistryError::Invalid(_))), "MD5 front doors have no platform key");
}

#[tokio::test]
async fn disabling_or_deleting_removes_the_front_door_and_frees_its_id() {
    let db = TestDb::new().await;
    let ring = keyring(&[&master_key("k1")]);
    let registry = registry(&db, &ring);
    let config = RefreshConfig { database_url: db.url.clone(), full_reload_every: Duration::from_secs(60) };
    let issued = openapi_with_door(&registry, "noodle-bar", given_public()).await;
    let (snapshots, task) = tenants::snapshot::start(Loader::new(db.pool(), ring.clone()), config).await.unwrap();
    assert!(snapshots.current().by_front_door(Dialect::Openapi, &issued.id).is_some());

    let disabled = registry.disable_front_door("ops:test", "noodle-bar").await.unwrap();
    assert_eq!(disabled.id, issued.id);
    let mut changes = snapshots.subscribe();
    while snapshots.current().by_front_door(Dialect::Openapi, &issued.id).is_some() {
        tokio::time::timeout(Duration::from_secs(10), changes.changed()).await.unwrap().unwrap();
    }
    let current = snapshots.current();
    assert!(current.by_slug("noodle-bar").unwrap().front_door.is_none());
    assert!(registry.show("noodle-bar").await.unwrap().front_door.is_none());
    let client = db.client().await;
    let left: i64 = client
        .query_one("SELECT count(*) FROM tenant_secrets WHERE purpose LIKE 'front_door%'", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(left, 0, "its keys are destroyed");

    // The id is free again, for another tenant; deleting that tenant frees it once more.
    registry.create("ops:test", openapi_tenant("ramen-house"), rsa_keys()).await.unwrap();
    let same = input(Some(&issued.id), SignType::Rsa, given_public());
    registry.enable_front_door("ops:test", "ramen-house", same).await.unwrap();
    registry.delete("ops:test", "ramen-house").await.unwrap();
    let reused = input(Some(&issued.id), SignType::Rsa2, given_public());
    registry.enable_front_door("ops:test", "noodle-bar", reused).await.unwrap();
    while snapshots.current().by_front_door(Dialect::Openapi, &issued.id).is_none_or(|t| t.slug != "noodle-bar") {
        tokio::time::timeout(Duration::from_secs(10), changes.changed()).await.unwrap().unwrap();
    }
    task.abort();
}

#[tokio::test]
async fn every_change_is_audited_without_a_secret() {
    let db = TestDb::new().await;
    let ring = keyring(&[&master_key("k1")]);
    let registry = registry(&db, &ring);
    let generated = openapi_with_door(&registry, "noodle-bar", PosKeySource::Generate).await;
    let rotated =
        registry.rotate_front_door_pos_key("ops:test", "noodle-bar", PosKeySource::Generate, Duration::ZERO).await;
    let rotated = rotated.unwrap();
    registry.rotate_front_door_platform_key("ops:test", "noodle-bar", Duration::from_secs(60)).await.unwrap();
    registry.disable_front_door("ops:test", "noodle-bar").await.unwrap();
    registry.create("ops:test", mapi_tenant("burger-town"), md5_keys()).await.unwrap();
    let md5 = registry
        .enable_front_door("ops:test", "burger-town", input(None, SignType::Md5, PosKeySource::Generate))
        .await
        .unwrap();

    let client = db.client().await;
    let rows = client
        .query("SELECT action, detail::text FROM tenant_audit WHERE action LIKE 'front_door.%' ORDER BY id", &[])
        .await
        .unwrap();
    let actions: Vec<String> = rows.iter().map(|r| r.get(0)).collect();
    assert_eq!(
        actions,
        [
            "front_door.enable",
            "front_door.rotate_pos_key",
            "front_door.rotate_platform_key",
            "front_door.disable",
            "front_door.enable"
        ]
    );
    let details: Vec<String> = rows.iter().map(|r| r.get(1)).collect();
    assert!(details[0].contains(&generated.id) && details[0].contains("\"generated\""), "{}", details[0]);
    assert!(details[1].contains("\"overlap_seconds\": 0"), "{}", details[1]);
    assert!(details[2].contains("platform_key_fingerprint") && details[2].contains("\"overlap_seconds\": 60"));
    let mut secrets: Vec<String> = vec![md5.md5_key.as_deref().unwrap().to_owned()];
    for issued in [&generated, &rotated] {
        for pem in [&issued.pos_private_key_pkcs1_pem, &issued.pos_private_key_pkcs8_pem] {
            let body: String = pem.as_deref().unwrap().lines().filter(|l| !l.starts_with("-----")).collect();
            let runs = body.as_bytes().chunks(40).filter(|c| c.len() == 40);
            secrets.extend(runs.map(|c| String::from_utf8_lossy(c).into_owned()));
        }
    }
    let all = details.join(" ");
    assert!(!all.contains("PRIVATE KEY"));
    for secret in &secrets {
        assert!(!all.contains(secret.as_str()), "a secret in the audit trail: {}…", &secret[..8]);
    }
}
