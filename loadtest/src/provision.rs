//! `loadtest provision`: N tenants with generated keys, onboarded in the tenants registry (the
//! same code path as the `tenants` CLI, sealing each key under the master key) and registered
//! with the sandbox, written to a tenants file.
//!
//! RSA2 tenants share one generated app key pair (2048-bit generation takes tens of
//! milliseconds; a thousand of them would dominate the setup), each sealed and parsed as its own
//! tenant's; MD5 tenants each get their own random key.

use std::sync::Arc;

use alipay::{PrivateKey, SignType};
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use rand::Rng;
use serde_json::json;
use tenants::model::{AlipayIdentity, Dialect, Environment, Limits, NewTenant};
use tenants::registry::{AppKeySource, KeyInput};
use tenants::{Keyring, Registry};
use zeroize::Zeroizing;

use crate::tenants_file::{PosTenant, TenantsFile};

#[derive(Debug, Clone)]
pub struct ProvisionOptions {
    pub count: usize,
    /// Share of the tenants that are Global (MAPI) MD5 merchants; the rest are OpenAPI RSA2.
    pub md5_share: f64,
    /// Slugs are `{prefix}-{n}`.
    pub prefix: String,
    pub database_url: String,
    pub sandbox_url: String,
    pub gateway_url: Option<String>,
    /// Per-tenant rate limits (generous for load tests).
    pub limits: Limits,
}

type Http = Client<HttpConnector, Full<Bytes>>;

/// Creates the tenants, their keys sealed under `keyring`; answers the file to write.
pub async fn provision(options: &ProvisionOptions, keyring: Keyring) -> anyhow::Result<TenantsFile> {
    if options.count == 0 || options.count > 100_000 {
        anyhow::bail!("--count must be from 1 to 100,000");
    }
    if !(0.0..=1.0).contains(&options.md5_share) {
        anyhow::bail!("--md5-share must be from 0 to 1");
    }
    let registry = Registry::new(tenants::db::pool(&options.database_url, 4)?, Some(Arc::new(keyring)));
    let http: Http = Client::builder(TokioExecutor::new()).build_http();
    let sandbox = options.sandbox_url.trim_end_matches('/');
    let alipay_public_key = get_text(&http, &format!("{sandbox}/sandbox/alipay-public-key")).await?;
    let app_key = PrivateKey::generate()?;
    let app_private = app_key.to_pkcs8_pem()?;
    let app_public = app_key.public_key()?.to_pem();
    let md5_count = (options.count as f64 * options.md5_share).round() as usize;
    let run = time::OffsetDateTime::now_utc().unix_timestamp() % 1_000_000;
    let mut tenants = Vec::with_capacity(options.count);
    for n in 0..options.count {
        let md5 = n >= options.count - md5_count;
        let (dialect, sign_type, alipay_id) = if md5 {
            (Dialect::Mapi, SignType::Md5, format!("2088{run:06}{n:06}"))
        } else {
            (Dialect::Openapi, SignType::Rsa2, format!("2021{run:06}{n:06}"))
        };
        let md5_key: String = {
            let mut rng = rand::rng();
            (0..32).map(|_| char::from(b"abcdefghijkmnpqrstuvwxyz23456789"[rng.random_range(0..32)])).collect()
        };
        let registration = if md5 {
            json!({"dialect": "mapi", "partner": alipay_id, "sign_type": "MD5", "md5_key": md5_key})
        } else {
            json!({"dialect": "openapi", "app_id": alipay_id, "sign_type": "RSA2", "public_key": app_public})
        };
        post_json(&http, &format!("{sandbox}/sandbox/merchants"), &registration).await?;
        let keys = if md5 {
            KeyInput { md5_key: Some(Zeroizing::new(md5_key)), ..KeyInput::default() }
        } else {
            KeyInput {
                app_private_key: Some(AppKeySource::Text(app_private.clone())),
                alipay_public_key: Some(alipay_public_key.clone()),
                ..KeyInput::default()
            }
        };
        let slug = format!("{}-{n}", options.prefix);
        let tenant = NewTenant {
            slug: slug.parse().map_err(|e| anyhow::anyhow!("slug {slug}: {e}"))?,
            name: format!("Load test restaurant {n}"),
            identity: AlipayIdentity::new(dialect, &alipay_id, None, sign_type)?,
            environment: Environment::Custom(format!("{sandbox}/gateway.do")),
            limits: options.limits,
            webhook_url: None,
            secondary_merchant: None,
        };
        let created = registry.create("loadtest", tenant, keys).await?;
        tenants.push(PosTenant {
            slug,
            key_id: created.credential.key_id.clone(),
            secret: created.credential.secret.expose().to_owned(),
            app_id: alipay_id,
            tenant_id: Some(created.tenant.settings.id),
            dialect: if md5 { "mapi".into() } else { "openapi".into() },
            sign_type: sign_type.as_str().to_owned(),
            currency: Some(if md5 { "HKD".into() } else { "CNY".into() }),
        });
    }
    Ok(TenantsFile {
        gateway_url: options.gateway_url.clone(),
        sandbox_url: Some(options.sandbox_url.clone()),
        database_url: Some(options.database_url.clone()),
        tenants,
    })
}

async fn get_text(http: &Http, url: &str) -> anyhow::Result<String> {
    let response = http.get(url.parse()?).await.map_err(|e| anyhow::anyhow!("{url}: {e}"))?;
    let status = response.status();
    let body = response.into_body().collect().await?.to_bytes();
    if !status.is_success() {
        anyhow::bail!("{url} answered {status}");
    }
    Ok(String::from_utf8_lossy(&body).into_owned())
}

async fn post_json(http: &Http, url: &str, body: &serde_json::Value) -> anyhow::Result<()> {
    let request = http::Request::post(url)
        .header(http::header::CONTENT_TYPE, "application/json")
        .body(Full::new(Bytes::from(serde_json::to_vec(body)?)))?;
    let response = http.request(request).await.map_err(|e| anyhow::anyhow!("{url}: {e}"))?;
    let status = response.status();
    let text = response.into_body().collect().await?.to_bytes();
    if !status.is_success() {
        anyhow::bail!("{url} answered {status}: {}", String::from_utf8_lossy(&text));
    }
    Ok(())
}
