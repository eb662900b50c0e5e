//! The two demo tenants — an OpenAPI RSA2 noodle bar and a Global MD5 dim sum restaurant in
//! Hong Kong — onboarded through the gateway's admin API (as an acquirer's automation would) and
//! registered with the sandbox. Idempotent: existing tenants are kept; their POS secret comes
//! from `stack.json`, or is rotated when that was lost.

use std::collections::BTreeMap;

use loadtest::tenants_file::PosTenant;
use serde_json::{Value, json};

use crate::state::{StackFile, State};

/// A demo tenant.
struct Demo {
    slug: &'static str,
    name: &'static str,
    md5: bool,
    alipay_id: &'static str,
    currency: &'static str,
}

const DEMOS: [Demo; 2] = [
    Demo { slug: "noodle-bar", name: "Noodle Bar", md5: false, alipay_id: "2021000000000001", currency: "CNY" },
    Demo { slug: "dim-sum-hk", name: "Dim Sum HK", md5: true, alipay_id: "2088000000000002", currency: "HKD" },
];

/// Where the stack answers, and the admin token.
pub struct Endpoints {
    pub admin_url: String,
    pub sandbox_url: String,
    pub token: String,
}

/// Makes sure both demo tenants exist and the sandbox knows them; records their credentials in
/// `stack.tenants` and the sandbox registrations in `sandbox-merchants.json`.
pub async fn ensure(state: &State, endpoints: &Endpoints, stack: &mut StackFile) -> anyhow::Result<()> {
    let http = reqwest::Client::new();
    let mut merchants: BTreeMap<String, Value> = std::fs::read(state.path("sandbox-merchants.json"))
        .ok()
        .and_then(|b| serde_json::from_slice::<Vec<Value>>(&b).ok())
        .unwrap_or_default()
        .into_iter()
        .filter_map(|m| Some((m.get("app_id").or(m.get("partner"))?.as_str()?.to_owned(), m)))
        .collect();
    let alipay_public_key = http
        .get(format!("{}/sandbox/alipay-public-key", endpoints.sandbox_url))
        .send()
        .await?
        .error_for_status()?
        .text()
        .await?;
    let admin = Admin { http: http.clone(), url: endpoints.admin_url.clone(), token: endpoints.token.clone() };
    let mut tenants = Vec::new();
    for demo in DEMOS {
        let known = stack.tenants.iter().find(|t| t.slug == demo.slug).cloned();
        let (credential, tenant_id) =
            match admin.call(reqwest::Method::GET, &format!("tenants/{}", demo.slug), None).await? {
                (404, _) => {
                    let environment = format!("{}/gateway.do", endpoints.sandbox_url);
                    let (created, registration) = create(&admin, &demo, &alipay_public_key, &environment).await?;
                    merchants.insert(demo.alipay_id.to_owned(), registration);
                    (credential_of(&created["credential"])?, text(&created, "/tenant/id")?)
                }
                (200, shown) => {
                    let id = text(&shown, "/id")?;
                    match known {
                        Some(known) => ((known.key_id, known.secret), id),
                        None => {
                            let rotated = admin
                                .call(
                                    reqwest::Method::POST,
                                    &format!("tenants/{}/api-secret/rotate", demo.slug),
                                    Some(json!({"overlap": "30m"})),
                                )
                                .await?;
                            (credential_of(&rotated.1)?, id)
                        }
                    }
                }
                (status, body) => anyhow::bail!("the admin API answered {status}: {body}"),
            };
        let registration = merchants.get(demo.alipay_id).cloned().ok_or_else(|| {
            anyhow::anyhow!(
                "{}'s sandbox registration is lost: delete .dev and the dev database to start over",
                demo.slug
            )
        })?;
        let registered =
            http.post(format!("{}/sandbox/merchants", endpoints.sandbox_url)).json(&registration).send().await?;
        if !registered.status().is_success() {
            anyhow::bail!("the sandbox refused {}: {}", demo.slug, registered.text().await?);
        }
        tenants.push(PosTenant {
            slug: demo.slug.into(),
            key_id: credential.0,
            secret: credential.1,
            app_id: demo.alipay_id.into(),
            tenant_id: Some(tenant_id.parse()?),
            dialect: if demo.md5 { "mapi".into() } else { "openapi".into() },
            sign_type: if demo.md5 { "MD5".into() } else { "RSA2".into() },
            currency: Some(demo.currency.into()),
        });
    }
    let registrations: Vec<&Value> = merchants.values().collect();
    std::fs::write(state.path("sandbox-merchants.json"), serde_json::to_vec_pretty(&registrations)?)?;
    stack.tenants = tenants;
    Ok(())
}

/// Creates `demo` with fresh keys; answers the admin API's answer and the sandbox registration.
async fn create(
    admin: &Admin,
    demo: &Demo,
    alipay_public_key: &str,
    environment: &str,
) -> anyhow::Result<(Value, Value)> {
    let md5_key: String = (0..32)
        .map(|_| char::from(b"abcdefghijkmnpqrstuvwxyz23456789"[usize::from(rand::random::<u8>() % 32)]))
        .collect();
    let (id_field, keys) = if demo.md5 {
        ("partner", json!({"md5_key": md5_key}))
    } else {
        ("app_id", json!({"generate_app_key": true, "alipay_public_key": alipay_public_key}))
    };
    let body = json!({
        "slug": demo.slug, "name": demo.name, "dialect": if demo.md5 { "mapi" } else { "openapi" },
        id_field: demo.alipay_id, "sign_type": if demo.md5 { "MD5" } else { "RSA2" },
        "environment": environment, "keys": keys,
    });
    let (status, created) = admin.call(reqwest::Method::POST, "tenants", Some(body)).await?;
    if status != 201 {
        anyhow::bail!("creating {} answered {status}: {created}", demo.slug);
    }
    let registration = if demo.md5 {
        json!({"dialect": "mapi", "partner": demo.alipay_id, "sign_type": "MD5", "md5_key": md5_key})
    } else {
        let public =
            created["app_public_key"].as_str().ok_or_else(|| anyhow::anyhow!("no app public key in the answer"))?;
        json!({"dialect": "openapi", "app_id": demo.alipay_id, "sign_type": "RSA2", "public_key": public})
    };
    Ok((created, registration))
}

struct Admin {
    http: reqwest::Client,
    url: String,
    token: String,
}

impl Admin {
    async fn call(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> anyhow::Result<(u16, Value)> {
        let mut request = self.http.request(method, format!("{}/admin/{path}", self.url)).bearer_auth(&self.token);
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.map_err(|e| anyhow::anyhow!("the admin API at {}: {e}", self.url))?;
        let status = response.status().as_u16();
        Ok((status, response.json().await.unwrap_or(Value::Null)))
    }
}

fn text(value: &Value, pointer: &str) -> anyhow::Result<String> {
    value
        .pointer(pointer)
        .and_then(Value::as_str)
        .map(str::to_owned)
        .ok_or_else(|| anyhow::anyhow!("no {pointer} in {value}"))
}

fn credential_of(value: &Value) -> anyhow::Result<(String, String)> {
    Ok((text(value, "/key_id")?, text(value, "/secret")?))
}
