//! A whole stack per test: a fresh database, a fresh Redis prefix, an Alipay sandbox, tenants
//! onboarded through the registry, a gateway on port 0, and POS clients that sign like a POS.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use alipay::SignType;
use gateway::{Config, Gateway, Secrets};
use sandbox::Sandbox;
use serde_json::{Value, json};
use tenants::model::{AlipayIdentity, Dialect, Environment, Limits, NewTenant};
use tenants::registry::{AppKeySource, KeyInput};
use tenants::{Keyring, Registry};
use zeroize::Zeroizing;

pub const MERCHANT_PRIVATE: &str = include_str!("../../../alipay/tests/vectors/keys/merchant-private-pkcs8.pem");
pub const MERCHANT_PUBLIC: &str = include_str!("../../../alipay/tests/vectors/keys/merchant-public-spki.pem");
pub const ALIPAY_PRIVATE_FILE: &str =
    concat!(env!("CARGO_MANIFEST_DIR"), "/../alipay/tests/vectors/keys/alipay-private-pkcs8.pem");
pub const ALIPAY_PUBLIC: &str = include_str!("../../../alipay/tests/vectors/keys/alipay-public-spki.pem");
pub const MD5_KEY: &str = "x7k2m9q4w8e1r5t3y6u0i2o4p8a1s5d3";

/// Sandbox delays at this scale: 10 s → 100 ms, 30 s → 300 ms, 58 s → 580 ms.
pub const TIME_SCALE: f64 = 0.01;

fn admin_url() -> String {
    std::env::var("DATABASE_ADMIN_URL").unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into())
}

fn unique(prefix: &str) -> String {
    static N: AtomicUsize = AtomicUsize::new(0);
    format!("{prefix}{}x{}", std::process::id(), N.fetch_add(1, Ordering::Relaxed))
}

/// A trade number nobody used yet.
pub fn trade_no(prefix: &str) -> String {
    unique(prefix)
}

/// A barcode that plays sandbox scenario `suffix`.
pub fn code(suffix: &str) -> String {
    format!("2812345678901234{suffix}")
}

/// A database of its own (dropped afterwards).
pub struct TestDb {
    pub name: String,
    pub url: String,
}

impl TestDb {
    pub async fn new() -> TestDb {
        let name = unique("gateway_test_");
        let admin = tenants::db::connect(&admin_url()).await.expect("Postgres is reachable (scripts/test starts it)");
        admin.batch_execute(&format!("CREATE DATABASE {name}")).await.unwrap();
        let url = admin_url().rsplit_once('/').map(|(base, _)| format!("{base}/{name}")).unwrap();
        tenants::db::migrate(&url).await.unwrap();
        ledger::store::migrate(&url).await.unwrap();
        TestDb { name, url }
    }

    pub async fn client(&self) -> tokio_postgres::Client {
        tenants::db::connect(&self.url).await.unwrap()
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        let name = self.name.clone();
        let _ = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
            runtime.block_on(async {
                if let Ok(admin) = tenants::db::connect(&admin_url()).await {
                    let _ = admin.batch_execute(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)")).await;
                }
            });
        })
        .join();
    }
}

/// A tenant's POS: signs every request with the tenant's partner API credential.
#[derive(Clone)]
pub struct Pos {
    pub http: reqwest::Client,
    pub base: String,
    pub key_id: String,
    pub secret: String,
    /// `app_id` or `partner` at the sandbox.
    pub alipay_id: String,
    pub tenant_id: uuid::Uuid,
}

impl Pos {
    pub async fn send(&self, method: &str, path: &str, body: Option<Value>) -> (u16, Value) {
        let body = body.map(|b| b.to_string()).unwrap_or_default();
        let nonce = format!("n{}", uuid::Uuid::new_v4().simple());
        let now = time::OffsetDateTime::now_utc().unix_timestamp();
        let auth = gateway::auth::authorization(&self.key_id, &self.secret, method, path, now, &nonce, body.as_bytes());
        let method: reqwest::Method = method.parse().unwrap();
        let response = self
            .http
            .request(method, format!("{}{path}", self.base))
            .header("authorization", auth)
            .header("content-type", "application/json")
            .body(body)
            .send()
            .await
            .unwrap();
        let status = response.status().as_u16();
        (status, response.json().await.unwrap_or(Value::Null))
    }

    pub async fn pay(&self, out_trade_no: &str, auth_code: &str, amount: &str) -> (u16, Value) {
        self.send("POST", "/v1/payments", Some(json!({"out_trade_no": out_trade_no, "auth_code": auth_code, "amount": amount, "subject": "Noodles", "store_id": "S1"}))).await
    }

    pub async fn pay_in(&self, out_trade_no: &str, auth_code: &str, amount: &str, currency: &str) -> (u16, Value) {
        self.send("POST", "/v1/payments", Some(json!({"out_trade_no": out_trade_no, "auth_code": auth_code, "amount": amount, "currency": currency, "subject": "Burger set"}))).await
    }

    pub async fn get(&self, out_trade_no: &str, wait: u64) -> (u16, Value) {
        self.send("GET", &format!("/v1/payments/{out_trade_no}?wait={wait}"), None).await
    }
}

/// The stack.
pub struct Stack {
    pub db: TestDb,
    pub sandbox: Sandbox,
    pub gateway: Gateway,
    pub registry: Registry,
    pub redis_prefix: String,
    pub http: reqwest::Client,
}

pub struct Options {
    pub upstream_timeout_ms: u64,
    pub time_scale: f64,
}

impl Default for Options {
    fn default() -> Self {
        Options { upstream_timeout_ms: 5_000, time_scale: TIME_SCALE }
    }
}

impl Stack {
    pub async fn start(options: Options) -> Stack {
        let db = TestDb::new().await;
        let sandbox = Sandbox::start(sandbox::Config {
            time_scale: options.time_scale,
            platform_key_file: Some(ALIPAY_PRIVATE_FILE.into()),
            ..sandbox::Config::default()
        })
        .await
        .unwrap();
        let keyring = Arc::new(Keyring::parse(&Keyring::generate_line("k1").unwrap()).unwrap());
        let pool = tenants::db::pool(&db.url, 4).unwrap();
        let registry = Registry::new(pool, Some(keyring.clone()));
        let redis_prefix = unique("gwtest:");
        let config = Config {
            listen: "127.0.0.1:0".parse().unwrap(),
            admin_listen: "127.0.0.1:0".parse().unwrap(),
            database_url: db.url.clone(),
            database_pool_size: 16,
            redis_prefix: redis_prefix.clone(),
            upstream_timeout_ms: options.upstream_timeout_ms,
            ..Config::default()
        };
        let admin_token = tenants::admin::AdminToken::new("test-admin-token-for-the-gateway-0001").unwrap();
        let gateway = Gateway::start(config, Secrets { keyring, admin_token: Some(admin_token) }).await.unwrap();
        Stack { db, sandbox, gateway, registry, redis_prefix, http: reqwest::Client::new() }
    }

    pub fn base(&self) -> String {
        format!("http://{}", self.gateway.addr())
    }

    /// Onboards a tenant (and registers it at the sandbox); answers its POS.
    pub async fn tenant(&self, dialect: Dialect, sign_type: SignType, limits: Limits) -> Pos {
        let slug = unique("t-").replace('x', "-");
        let (alipay_id, registration, keys) = match dialect {
            Dialect::Openapi => {
                let id = format!("2021{:012}", rand_digits());
                let registration = json!({"dialect": "openapi", "app_id": id, "sign_type": sign_type.as_str(), "public_key": MERCHANT_PUBLIC});
                let keys = KeyInput {
                    app_private_key: Some(AppKeySource::Text(Zeroizing::new(MERCHANT_PRIVATE.into()))),
                    alipay_public_key: Some(ALIPAY_PUBLIC.into()),
                    ..KeyInput::default()
                };
                (id, registration, keys)
            }
            Dialect::Mapi => {
                let id = format!("2088{:012}", rand_digits());
                let registration = match sign_type {
                    SignType::Md5 => json!({"dialect": "mapi", "partner": id, "sign_type": "MD5", "md5_key": MD5_KEY}),
                    rsa => {
                        json!({"dialect": "mapi", "partner": id, "sign_type": rsa.as_str(), "public_key": MERCHANT_PUBLIC})
                    }
                };
                let keys = match sign_type {
                    SignType::Md5 => KeyInput { md5_key: Some(Zeroizing::new(MD5_KEY.into())), ..KeyInput::default() },
                    _ => KeyInput {
                        app_private_key: Some(AppKeySource::Text(Zeroizing::new(MERCHANT_PRIVATE.into()))),
                        alipay_public_key: Some(ALIPAY_PUBLIC.into()),
                        ..KeyInput::default()
                    },
                };
                (id, registration, keys)
            }
        };
        let registered = self
            .http
            .post(format!("{}/sandbox/merchants", self.sandbox.url()))
            .json(&registration)
            .send()
            .await
            .unwrap();
        assert_eq!(registered.status(), 201);
        let new = NewTenant {
            slug: slug.parse().unwrap(),
            name: "Test Restaurant".into(),
            identity: AlipayIdentity::new(dialect, &alipay_id, None, sign_type).unwrap(),
            environment: Environment::Custom(self.sandbox.gateway_url()),
            limits,
            webhook_url: None,
            secondary_merchant: None,
        };
        let created = self.registry.create("test", new, keys).await.unwrap();
        let pos = Pos {
            http: reqwest::Client::new(),
            base: self.base(),
            key_id: created.credential.key_id.clone(),
            secret: created.credential.secret.expose().to_owned(),
            alipay_id,
            tenant_id: created.tenant.id,
        };
        // The gateway's snapshot learns of the tenant through LISTEN/NOTIFY.
        let snapshots = self.gateway.state().snapshots.clone();
        let mut changes = snapshots.subscribe();
        while snapshots.current().authenticate(&pos.key_id, time::OffsetDateTime::now_utc()).is_none() {
            tokio::time::timeout(Duration::from_secs(10), changes.changed()).await.unwrap().unwrap();
        }
        pos
    }

    pub async fn openapi_tenant(&self) -> Pos {
        self.tenant(Dialect::Openapi, SignType::Rsa2, Limits { pay_rate: 1000, pay_burst: 1000, other_rate: 1000 })
            .await
    }

    pub async fn mapi_tenant(&self) -> Pos {
        self.tenant(Dialect::Mapi, SignType::Md5, Limits { pay_rate: 1000, pay_burst: 1000, other_rate: 1000 }).await
    }

    /// The sandbox's ground truth for a trade.
    pub async fn truth(&self, pos: &Pos, out_trade_no: &str) -> Option<Value> {
        let url = format!("{}/sandbox/trades/{}/{}", self.sandbox.url(), pos.alipay_id, out_trade_no);
        let response = self.http.get(url).send().await.unwrap();
        if response.status() == 200 { Some(response.json().await.unwrap()) } else { None }
    }

    pub async fn sandbox_stats(&self) -> Value {
        self.http.get(format!("{}/sandbox/stats", self.sandbox.url())).send().await.unwrap().json().await.unwrap()
    }

    /// The ledger's row for a trade.
    pub async fn ledger(&self, pos: &Pos, out_trade_no: &str) -> Option<ledger::Trade> {
        self.gateway.state().store.get(&ledger::TradeKey::new(pos.tenant_id, out_trade_no)).await.unwrap()
    }
}

fn rand_digits() -> u64 {
    static N: AtomicUsize = AtomicUsize::new(0);
    (u64::from(std::process::id()) * 1000 + N.fetch_add(1, Ordering::Relaxed) as u64) % 1_000_000_000_000
}
