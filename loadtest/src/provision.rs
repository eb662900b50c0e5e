//! `loadtest provision`: N tenants with generated keys, registered with the sandbox and onboarded
//! either through a gateway's tenants admin API (`POST /admin/tenants`, with its bearer token:
//! what a load tester of a deployment has) or straight into the registry (the `tenants` CLI's
//! code path, which needs the database and the master key), written to a tenants file.
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
    /// The ledger's database, for onboarding into the registry and for verification later.
    pub database_url: Option<String>,
    pub sandbox_url: String,
    pub gateway_url: Option<String>,
    /// Per-tenant rate limits (generous for load tests).
    pub limits: Limits,
}

/// Where tenants are onboarded.
pub enum Onboarding {
    /// The registry itself, sealing keys under this master keyring.
    Registry(Arc<Keyring>),
    /// A gateway's admin listener (`http://host:port`) and its admin token.
    AdminApi { url: String, token: String },
}

enum Backend {
    Registry(Registry),
    AdminApi { url: String, token: String },
}

/// A tenant onboarded: its POS credential and its id.
struct Onboarded {
    key_id: String,
    secret: String,
    tenant_id: uuid::Uuid,
}

type Http = Client<HttpConnector, Full<Bytes>>;

/// Creates the tenants; answers the file to write.
pub async fn provision(options: &ProvisionOptions, onboarding: Onboarding) -> anyhow::Result<TenantsFile> {
    if options.count == 0 || options.count > 100_000 {
        anyhow::bail!("--count must be from 1 to 100,000");
    }
    if !(0.0..=1.0).contains(&options.md5_share) {
        anyhow::bail!("--md5-share must be from 0 to 1");
    }
    let registry = match onboarding {
        Onboarding::Registry(keyring) => {
            let url =
                options.database_url.as_deref().ok_or_else(|| anyhow::anyhow!("onboarding needs the database"))?;
            Backend::Registry(Registry::new(tenants::db::pool(url, 4)?, Some(keyring)))
        }
        Onboarding::AdminApi { url, token } => Backend::AdminApi { url, token },
    };
    let http: Http = Client::builder(TokioExecutor::new()).build_http();
    let sandbox = options.sandbox_url.trim_end_matches('/');
    let alipay_public_key = get_text(&http, &format!("{sandbox}/sandbox/alipay-public-key")).await?;
    let app_key = PrivateKey::generate()?;
    let app_private = app_key.to_pkcs8_pem()?;
    let app_public = app_key.public_key()?.to_pem();
    let md5_count = (options.count as f64 * options.md5_share).round() as usize;
    // Six digits of this run in every Alipay id: runs a second apart, or started in the same second
    // (two provisionings of one test), must not share an app or partner at the sandbox.
    let run: u32 = rand::rng().random_range(0..1_000_000);
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
        post_json(&http, &format!("{sandbox}/sandbox/merchants"), &registration, None).await?;
        let slug = format!("{}-{n}", options.prefix);
        let environment = format!("{sandbox}/gateway.do");
        let onboarded = match &registry {
            Backend::Registry(registry) => {
                let keys = if md5 {
                    KeyInput { md5_key: Some(Zeroizing::new(md5_key)), ..KeyInput::default() }
                } else {
                    KeyInput {
                        app_private_key: Some(AppKeySource::Text(app_private.clone())),
                        alipay_public_key: Some(alipay_public_key.clone()),
                        ..KeyInput::default()
                    }
                };
                let tenant = NewTenant {
                    slug: slug.parse().map_err(|e| anyhow::anyhow!("slug {slug}: {e}"))?,
                    name: format!("Load test restaurant {n}"),
                    identity: AlipayIdentity::new(dialect, &alipay_id, None, sign_type)?,
                    environment: Environment::Custom(environment),
                    limits: options.limits,
                    webhook_url: None,
                    secondary_merchant: None,
                };
                let created = registry.create("loadtest", tenant, keys).await?;
                Onboarded {
                    key_id: created.credential.key_id.clone(),
                    secret: created.credential.secret.expose().to_owned(),
                    tenant_id: created.tenant.settings.id,
                }
            }
            Backend::AdminApi { url, token } => {
                let keys = if md5 {
                    json!({"md5_key": md5_key})
                } else {
                    json!({"app_private_key": app_private.as_str(), "alipay_public_key": alipay_public_key})
                };
                let id_field = if md5 { "partner" } else { "app_id" };
                let body = json!({
                    "slug": slug, "name": format!("Load test restaurant {n}"),
                    "dialect": if md5 { "mapi" } else { "openapi" }, id_field: alipay_id,
                    "sign_type": sign_type.as_str(), "environment": environment,
                    "limits": options.limits, "keys": keys,
                });
                let created =
                    post_json(&http, &format!("{}/admin/tenants", url.trim_end_matches('/')), &body, Some(token))
                        .await?;
                let text = |pointer: &str| created.pointer(pointer).and_then(|v| v.as_str()).map(str::to_owned);
                let (Some(key_id), Some(secret), Some(id)) =
                    (text("/credential/key_id"), text("/credential/secret"), text("/tenant/id"))
                else {
                    anyhow::bail!("the admin API's answer lacks the credential or the tenant id");
                };
                Onboarded { key_id, secret, tenant_id: id.parse()? }
            }
        };
        tenants.push(PosTenant {
            slug,
            key_id: onboarded.key_id,
            secret: onboarded.secret,
            app_id: alipay_id,
            tenant_id: Some(onboarded.tenant_id),
            dialect: if md5 { "mapi".into() } else { "openapi".into() },
            sign_type: sign_type.as_str().to_owned(),
            currency: Some(if md5 { "HKD".into() } else { "CNY".into() }),
        });
    }
    Ok(TenantsFile {
        gateway_url: options.gateway_url.clone(),
        sandbox_url: Some(options.sandbox_url.clone()),
        database_url: options.database_url.clone(),
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

/// POSTs `body` (with a bearer `token`); answers the JSON answer (`null` when not JSON).
async fn post_json(
    http: &Http,
    url: &str,
    body: &serde_json::Value,
    token: Option<&str>,
) -> anyhow::Result<serde_json::Value> {
    let mut request = http::Request::post(url).header(http::header::CONTENT_TYPE, "application/json");
    if let Some(token) = token {
        request = request.header(http::header::AUTHORIZATION, format!("Bearer {token}"));
    }
    let request = request.body(Full::new(Bytes::from(serde_json::to_vec(body)?)))?;
    let response = http.request(request).await.map_err(|e| anyhow::anyhow!("{url}: {e}"))?;
    let status = response.status();
    let text = response.into_body().collect().await?.to_bytes();
    if !status.is_success() {
        anyhow::bail!("{url} answered {status}: {}", String::from_utf8_lossy(&text));
    }
    Ok(serde_json::from_slice(&text).unwrap_or(serde_json::Value::Null))
}
