//! A fresh database per test (`stack::Database`, dropped afterwards), a master key ring, and test keys.

use std::sync::Arc;

use tenants::model::{AlipayIdentity, Dialect, Environment, Limits, NewTenant};
use tenants::registry::{AppKeySource, KeyInput};
use tenants::{Keyring, Registry};
use zeroize::Zeroizing;

pub use alipay::test_keys::{ALIPAY_PUBLIC, MD5_KEY, MERCHANT_PRIVATE_PKCS1, MERCHANT_PUBLIC};

pub use stack::Database as TestDb;
pub use stack::db::admin_url;

/// Row counts of every tenants table (and the sum of tenant versions), to show a refusal wrote
/// nothing.
pub async fn counts(db: &TestDb) -> Vec<(String, i64, i64)> {
    let client = db.client().await;
    let mut counts = Vec::new();
    for table in ["tenants", "tenant_secrets", "api_credentials", "tenant_audit", "front_doors"] {
        let rows: i64 = client.query_one(&format!("SELECT count(*) FROM {table}"), &[]).await.unwrap().get(0);
        let versions: i64 = if table == "tenants" {
            client.query_one("SELECT COALESCE(sum(version), 0)::bigint FROM tenants", &[]).await.unwrap().get(0)
        } else {
            0
        };
        counts.push((table.to_owned(), rows, versions));
    }
    counts
}

/// A key ring line for master key `id`.
pub fn master_key(id: &str) -> String {
    Keyring::generate_line(id).unwrap().to_string()
}

pub fn keyring(lines: &[&str]) -> Arc<Keyring> {
    Arc::new(Keyring::parse(&lines.join("\n")).unwrap())
}

pub fn registry(db: &TestDb, ring: &Arc<Keyring>) -> Registry {
    Registry::new(db.pool(), Some(ring.clone()))
}

pub fn openapi_tenant(slug: &str) -> NewTenant {
    NewTenant {
        slug: slug.parse().unwrap(),
        name: "Noodle Bar".into(),
        identity: AlipayIdentity::new(Dialect::Openapi, "2021000000000001", None, alipay::SignType::Rsa2).unwrap(),
        environment: Environment::Custom("http://127.0.0.1:8090/gateway.do".into()),
        limits: Limits::default(),
        webhook_url: Some("https://pos.example.com/hooks/alipay".into()),
        secondary_merchant: None,
    }
}

pub fn mapi_tenant(slug: &str) -> NewTenant {
    NewTenant {
        slug: slug.parse().unwrap(),
        name: "Burger Town".into(),
        identity: AlipayIdentity::new(Dialect::Mapi, "2088021966645500", None, alipay::SignType::Md5).unwrap(),
        environment: Environment::Sandbox,
        limits: Limits::default(),
        webhook_url: None,
        secondary_merchant: None,
    }
}

pub fn rsa_keys() -> KeyInput {
    KeyInput {
        app_private_key: Some(AppKeySource::Text(Zeroizing::new(MERCHANT_PRIVATE_PKCS1.into()))),
        app_public_key: Some(MERCHANT_PUBLIC.into()),
        alipay_public_key: Some(ALIPAY_PUBLIC.into()),
        md5_key: None,
    }
}

pub fn md5_keys() -> KeyInput {
    KeyInput { md5_key: Some(Zeroizing::new(MD5_KEY.into())), ..KeyInput::default() }
}
