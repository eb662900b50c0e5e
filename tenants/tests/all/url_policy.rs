//! Where we send on a merchant's behalf: a production tenant's webhook URL must be https to a
//! public address (checked when saved: CLI, admin API, registry); sandbox and custom-environment
//! tenants keep local http URLs, as the dev stack needs.

use tenants::model::{Environment, TenantUpdate};
use tenants::registry::{KeyInput, RegistryError};

use crate::helpers::*;

fn production(slug: &str, webhook_url: &str) -> tenants::model::NewTenant {
    tenants::model::NewTenant {
        environment: Environment::Production,
        webhook_url: Some(webhook_url.into()),
        ..openapi_tenant(slug)
    }
}

#[tokio::test]
async fn a_production_tenants_webhook_url_must_be_https_to_a_public_address() {
    let db = TestDb::new().await;
    let ring = keyring(&[&master_key("k1")]);
    let registry = registry(&db, &ring);
    let before = counts(&db).await;
    for (url, reason) in [
        ("https://127.0.0.1:8443/hook", "loopback"),
        ("https://10.20.30.40/hook", "private"),
        ("https://192.168.1.7/hook", "private"),
        ("https://169.254.169.254/latest/meta-data", "metadata"),
        ("https://[fd00:ec2::254]/latest", "metadata"),
        ("https://[::1]/hook", "loopback"),
        ("https://100.64.0.9/hook", "shared"),
        ("https://localhost/hook", "loopback"),
        ("https://2130706433/hook", "loopback"),
        ("http://93.184.215.14/hook", "https"),
    ] {
        let refused = registry.create("ops:test", production("shop", url), KeyInput::default()).await.unwrap_err();
        assert!(matches!(refused, RegistryError::Invalid(_)), "{url}: {refused}");
        let text = refused.to_string();
        assert!(text.contains("webhook URL") && text.contains(reason), "{url}: {text}");
    }
    assert_eq!(counts(&db).await, before, "a refusal writes nothing");

    // A public address over https is fine (an address literal: no DNS needed here).
    registry.create("ops:test", production("shop", "https://93.184.215.14/hook"), KeyInput::default()).await.unwrap();
    let private = TenantUpdate { webhook_url: Some(Some("https://172.16.0.1/hook".into())), ..TenantUpdate::default() };
    let refused = registry.update("ops:test", "shop", private, KeyInput::default()).await.unwrap_err();
    assert!(refused.to_string().contains("private"), "{refused}");

    // The dev stack's local webhook stays allowed outside production...
    let local = tenants::model::NewTenant {
        environment: Environment::Sandbox,
        webhook_url: Some("http://127.0.0.1:8080/hooks".into()),
        ..openapi_tenant("dev-shop")
    };
    registry.create("ops:test", local, KeyInput::default()).await.unwrap();
    // ...but cannot follow the tenant to production.
    let to_production = TenantUpdate { environment: Some(Environment::Production), ..TenantUpdate::default() };
    let refused =
        registry.update("ops:test", "dev-shop", to_production.clone(), KeyInput::default()).await.unwrap_err();
    assert!(refused.to_string().contains("https"), "{refused}");
    let with_url = TenantUpdate { webhook_url: Some(Some("https://93.184.215.14/dev-shop".into())), ..to_production };
    let moved = registry.update("ops:test", "dev-shop", with_url, KeyInput::default()).await.unwrap();
    assert_eq!(moved.environment, Environment::Production);
}

#[test]
fn the_cli_refuses_a_private_production_webhook_in_one_line() {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let db = runtime.block_on(TestDb::new());
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_tenants"))
        .args(["create", "shop", "--name", "Shop", "--dialect", "openapi", "--app-id", "2021000000000001"])
        .args(["--sign-type", "RSA2", "--environment", "production", "--webhook-url", "https://10.0.0.8/hook"])
        .env("DATABASE_URL", &db.url)
        .env("ACQ_MASTER_KEYS", master_key("k1"))
        .env_remove("ACQ_MASTER_KEY_FILE")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(stderr.starts_with("error: webhook URL") && stderr.contains("private"), "{stderr}");
    assert_eq!(runtime.block_on(counts(&db))[0].1, 0, "nothing written");
}
