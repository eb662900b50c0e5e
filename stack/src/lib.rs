//! A whole local stack on this machine, for tests and benchmarks: a fresh database (dropped
//! afterwards; on a Postgres server of its own for tests that crash it), a fresh Redis key prefix
//! (or a Redis server of its own, for tests that flush or stop it), the Alipay sandbox, tenants onboarded through the registry and registered with the
//! sandbox, the gateway on port 0, reconcilers in process or as processes, and POS clients that
//! sign like a POS.
//!
//! Setting up is not the behaviour under test: any failure here panics, failing the test.
//!
//! # Layout
//! - [`mod@self`]: [`Stack`], [`Options`], number helpers, and the test keys (`alipay::test_keys`)
//!   re-exported; tenants are onboarded with `loadtest::onboard`.
//! - [`alipay_pos`]: [`AlipayPos`], a POS speaking Alipay's own OpenAPI to the front door
//!   (`loadtest`'s, which the load generator drives too, with a test's manners).
//! - [`db`]: [`Database`], a fresh database per stack.
//! - [`gateway_process`]: [`GatewayProcess`], a gateway as a process of its own (to kill),
//!   [`ready_within`] to wait for a gateway's readiness (both on the shared launcher,
//!   `service::launch`, that `loadtest bench` uses too), and [`KillOnDrop`] for other processes.
//! - [`finals`]: waiting for trades to be final, and holding them to Alipay's ground truth.
//! - [`redis`]: [`PrivateRedis`], a Redis server of a test's own.
//! - [`postgres`]: [`PrivatePostgres`], a Postgres server of a test's own (TLS only, if asked).
//! - [`pki`]: [`TestPki`], a certificate authority and a server certificate for a TLS test.
//! - [`pos`]: [`Pos`], a tenant's POS terminal.
//! - [`process`]: a process's CPU time and memory, from /proc.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

pub mod alipay_pos;
pub mod db;
pub mod finals;
pub mod gateway_process;
pub mod pki;
pub mod pos;
pub mod postgres;
pub mod redis;

pub use telemetry::process;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use alipay::SignType;
use gateway::{Gateway, Secrets};
use loadtest::onboard::{Backend, MerchantKeys, NewMerchant, Onboarder};
use reconciler::Reconciler;
use sandbox::Sandbox;
use serde_json::Value;
use tenants::model::{Dialect, Limits};
use tenants::{Keyring, Registry};
use zeroize::Zeroizing;

pub use alipay_pos::AlipayPos;
pub use db::Database;
pub use finals::{agrees_with_alipay, calls_of, final_trade, invariants_hold};
pub use gateway_process::{GatewayProcess, KillOnDrop, ready_within};
pub use pki::TestPki;
pub use pos::Pos;
pub use postgres::PrivatePostgres;
pub use redis::PrivateRedis;

pub use alipay::test_keys::{ALIPAY_PRIVATE_FILE, ALIPAY_PUBLIC, MD5_KEY, MERCHANT_PRIVATE, MERCHANT_PUBLIC};
pub const ADMIN_TOKEN: &str = "test-admin-token-for-the-gateway-0001";
pub const LOCAL_REDIS: &str = "redis://127.0.0.1:6379";

/// Holds the machine for one heavy test at a time within a test binary: load runs and crash tests
/// whose figures and deadlines (I3) a second such test on the same two cores would spoil (three
/// load runs at once answered `503 busy`; the Postgres crash windows missed I3 by 8 ms beside the
/// three-gateway test). Keep the guard for the test's length.
pub async fn alone() -> tokio::sync::MutexGuard<'static, ()> {
    static HEAVY: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());
    HEAVY.lock().await
}

/// A name nobody used yet in this process (nor, with the pid, on this machine).
pub fn unique(prefix: &str) -> String {
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

/// How the stack runs.
#[derive(Debug, Clone)]
pub struct Options {
    /// The sandbox's time scale (0.01 turns 10 s into 100 ms).
    pub time_scale: f64,
    pub upstream_timeout_ms: u64,
    /// Whether the gateway asks Alipay for notifications.
    pub notifications: bool,
    pub redis_url: String,
    /// The Postgres server the stack's database is made on (its maintenance database).
    pub postgres_admin_url: String,
    /// An UNKNOWN trade's first check and deadline, after creation (design §4: 5 s and 60 s).
    pub first_check_ms: u64,
    pub deadline_ms: u64,
    /// A waiting QR order's first check after its code was made.
    pub qr_check_ms: u64,
    /// Where the sandbox drops Global partners' daily files (`POST /sandbox/bills/drop`).
    pub global_drop_dir: Option<std::path::PathBuf>,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            time_scale: 0.01,
            upstream_timeout_ms: 5_000,
            notifications: true,
            redis_url: LOCAL_REDIS.into(),
            postgres_admin_url: db::admin_url(),
            first_check_ms: 5_000,
            deadline_ms: 60_000,
            qr_check_ms: 15_000,
            global_drop_dir: None,
        }
    }
}

impl Options {
    /// Design §4's schedule at the sandbox's `time_scale` (0.1: query every 500 ms, cancel at
    /// 6 s), with calls to Alipay that time out before the sandbox's 30 s delay (scenario 64).
    pub fn scaled(time_scale: f64) -> Options {
        let scale = |ms: f64| (ms * time_scale).round() as u64;
        Options {
            time_scale,
            upstream_timeout_ms: scale(10_000.0).max(100),
            first_check_ms: scale(5_000.0).max(1),
            deadline_ms: scale(60_000.0).max(2),
            qr_check_ms: scale(15_000.0).max(1),
            ..Options::default()
        }
    }
}

/// The stack.
pub struct Stack {
    pub options: Options,
    pub db: Database,
    pub sandbox: Sandbox,
    pub gateway: Gateway,
    pub registry: Registry,
    pub keyring: Arc<Keyring>,
    /// The master key line (`id base64`), for services started as processes.
    pub master_key: Zeroizing<String>,
    pub redis_prefix: String,
    pub http: reqwest::Client,
    /// Onboards the stack's tenants into its registry, registered with its sandbox.
    pub onboarder: Onboarder,
}

impl Stack {
    pub async fn start(options: Options) -> Stack {
        let db = Database::on(&options.postgres_admin_url).await;
        let sandbox = Sandbox::start(sandbox::Config {
            time_scale: options.time_scale,
            platform_key_file: Some(ALIPAY_PRIVATE_FILE.into()),
            global_drop_dir: options.global_drop_dir.clone(),
            ..sandbox::Config::default()
        })
        .await
        .unwrap();
        let master_key = Keyring::generate_line("k1").unwrap();
        let keyring = Arc::new(Keyring::parse(&master_key).unwrap());
        let registry = Registry::new(tenants::db::pool(&db.url, 4).unwrap(), Some(keyring.clone()));
        let redis_prefix = unique("stack:");
        let config = gateway_config(&options, &db.url, &redis_prefix);
        let admin_token = tenants::admin::AdminToken::new(ADMIN_TOKEN).unwrap();
        let secrets = Secrets { keyring: keyring.clone(), admin_token: Some(admin_token) };
        let gateway = Gateway::start(config, secrets).await.unwrap();
        let http = reqwest::Client::new();
        let backend = Backend::Registry { registry: registry.clone(), actor: "test".into() };
        let onboarder = Onboarder::new(backend, &sandbox.url()).await.unwrap();
        Stack { options, db, sandbox, gateway, registry, keyring, master_key, redis_prefix, http, onboarder }
    }

    /// The configuration of a second gateway on this stack (port 0, the same database and Redis
    /// prefix), e.g. for [`Stack::gateway_process`].
    pub fn gateway_config(&self) -> gateway::Config {
        gateway_config(&self.options, &self.db.url, &self.redis_prefix)
    }

    /// The command that runs `binary` (the `gateway` executable) as a process of its own with
    /// `config` (given as `GATEWAY_*` variables), this stack's master key and admin token; start
    /// it with [`GatewayProcess::spawn`].
    pub fn gateway_process(&self, binary: &str, config: &gateway::Config) -> std::process::Command {
        let mut command = service_command(binary, "GATEWAY", config);
        command.env("ACQ_MASTER_KEYS", self.master_key.as_str()).env("ACQ_ADMIN_TOKEN", ADMIN_TOKEN);
        command
    }

    pub fn base(&self) -> String {
        format!("http://{}", self.gateway.addr())
    }

    /// Another gateway in this process, a replica of the first: the same Postgres, Redis prefix,
    /// sandbox and master key, ports of its own. Its base URL is `http://{addr()}`.
    pub async fn replica(&self) -> Gateway {
        let secrets = Secrets { keyring: self.keyring.clone(), admin_token: None };
        Gateway::start(self.gateway_config(), secrets).await.unwrap()
    }

    /// A reconciler configuration for this stack, its schedule at the stack's time scale.
    pub fn reconciler_config(&self) -> reconciler::Config {
        let scale = |ms: f64| ((ms * self.options.time_scale).round() as u64).max(1);
        let upstream_timeout_ms = self.options.upstream_timeout_ms;
        reconciler::Config {
            admin_listen: "127.0.0.1:0".parse().unwrap(),
            database_url: self.db.url.clone(),
            database_pool_size: 8,
            redis_url: self.options.redis_url.clone(),
            redis_prefix: self.redis_prefix.clone(),
            upstream_timeout: ms(upstream_timeout_ms),
            query_interval: ms(self.options.first_check_ms),
            deadline: ms(self.options.deadline_ms),
            cancel_retry: ms(scale(2_000.0)),
            cancel_retry_max: ms(scale(60_000.0)),
            qr_query_interval: ms(self.options.qr_check_ms),
            lease: ms(upstream_timeout_ms + 1_000),
            sweep_interval: ms(scale(5_000.0).max(100)),
            webhook_poll: ms(50),
            refund_poll: ms(50),
            webhook_retry_ms: vec![100, 100, 100],
            notify_retry_ms: vec![100, 100, 100],
            ..reconciler::Config::default()
        }
    }

    /// A reconciler in this process.
    pub async fn start_reconciler(&self, config: reconciler::Config) -> Reconciler {
        Reconciler::start(config, self.keyring.clone()).await.unwrap()
    }

    /// The command that runs `binary` (the `reconciler` executable) as a process of its own with
    /// `config` (given as `RECONCILER_*` variables) and this stack's master key.
    pub fn reconciler_process(&self, binary: &str, config: &reconciler::Config) -> std::process::Command {
        let mut command = service_command(binary, "RECONCILER", config);
        command.env("ACQ_MASTER_KEYS", self.master_key.as_str()).stdout(std::process::Stdio::null());
        command
    }

    /// Onboards a tenant (and registers it at the sandbox); answers its POS.
    pub async fn tenant(&self, dialect: Dialect, sign_type: SignType, limits: Limits) -> Pos {
        self.tenant_with_webhook(dialect, sign_type, limits, None).await.0
    }

    /// [`Stack::tenant`] with a webhook URL; answers its POS and its webhook secret.
    pub async fn tenant_with_webhook(
        &self,
        dialect: Dialect,
        sign_type: SignType,
        limits: Limits,
        webhook_url: Option<String>,
    ) -> (Pos, String) {
        let alipay_id = match dialect {
            Dialect::Openapi => format!("2021{:012}", rand_digits()),
            Dialect::Mapi => format!("2088{:012}", rand_digits()),
        };
        self.onboard(dialect, sign_type, limits, webhook_url, alipay_id).await
    }

    /// Another tenant on `other`'s Alipay app (or partner), with the same keys: as two brands of
    /// one merchant, or secondary merchants of one acquirer, would be.
    pub async fn tenant_sharing_account(&self, other: &Pos, sign_type: SignType) -> Pos {
        self.onboard(other.dialect, sign_type, generous(), None, other.alipay_id.clone()).await.0
    }

    async fn onboard(
        &self,
        dialect: Dialect,
        sign_type: SignType,
        limits: Limits,
        webhook_url: Option<String>,
        alipay_id: String,
    ) -> (Pos, String) {
        let slug = unique("t-").replace('x', "-");
        let merchant = NewMerchant {
            slug: slug.clone(),
            name: "Test Restaurant".into(),
            dialect,
            alipay_id: alipay_id.clone(),
            sign_type,
            keys: test_keys(sign_type),
            limits: Some(limits),
            webhook_url,
        };
        let onboarded = self.onboarder.onboard(merchant).await.unwrap();
        let pos = Pos {
            http: reqwest::Client::new(),
            base: self.base(),
            key_id: onboarded.credential.key_id,
            secret: onboarded.credential.secret,
            alipay_id,
            tenant_id: onboarded.tenant_id,
            slug,
            dialect,
        };
        // The gateway's snapshot learns of the tenant through LISTEN/NOTIFY.
        let snapshots = self.gateway.state().snapshots.clone();
        let mut changes = snapshots.subscribe();
        while snapshots.current().authenticate(&pos.key_id, time::OffsetDateTime::now_utc()).is_none() {
            tokio::time::timeout(Duration::from_secs(10), changes.changed()).await.unwrap().unwrap();
        }
        (pos, onboarded.webhook_secret)
    }

    /// Enables the front door of `pos`'s tenant (an OpenAPI one) with a POS key the registry
    /// generates (RSA2), through the onboarding's front-door step; answers a POS speaking
    /// Alipay's own protocol to it, once the gateway knows it.
    pub async fn front_door(&self, pos: &Pos) -> AlipayPos {
        let credentials =
            self.onboarder.enable_front_door(&pos.slug, &self.base(), pos.dialect, SignType::Rsa2).await.unwrap();
        let app_id = credentials.app_id.clone().unwrap();
        let snapshots = self.gateway.state().snapshots.clone();
        let mut changes = snapshots.subscribe();
        while snapshots.current().by_front_door(Dialect::Openapi, &app_id).is_none() {
            tokio::time::timeout(Duration::from_secs(10), changes.changed()).await.unwrap().unwrap();
        }
        let http = loadtest::client::Http::new(Duration::from_secs(60), 8);
        AlipayPos(loadtest::client::alipay::AlipayPos::from_credentials(http, &credentials).unwrap())
    }

    /// Enables the front door of `pos`'s tenant, signing with `sign_type`, its POS key (or MD5
    /// key) generated here; answers what ops hand the POS vendor, once the gateway knows it.
    pub async fn enable_front_door(&self, pos: &Pos, sign_type: SignType) -> tenants::registry::FrontDoorIssued {
        use tenants::registry::{FrontDoorInput, PosKeySource};
        let input = FrontDoorInput { id: None, sign_type, pos_key: PosKeySource::Generate };
        let issued = self.registry.enable_front_door("test", &pos.slug, input).await.unwrap();
        let snapshots = self.gateway.state().snapshots.clone();
        let mut changes = snapshots.subscribe();
        while snapshots.current().by_front_door(pos.dialect, &issued.id).is_none() {
            tokio::time::timeout(Duration::from_secs(10), changes.changed()).await.unwrap().unwrap();
        }
        issued
    }

    pub async fn openapi_tenant(&self) -> Pos {
        self.tenant(Dialect::Openapi, SignType::Rsa2, generous()).await
    }

    pub async fn mapi_tenant(&self) -> Pos {
        self.tenant(Dialect::Mapi, SignType::Md5, generous()).await
    }

    /// The sandbox's ground truth for a trade (`None`: Alipay has no such trade).
    pub async fn truth(&self, pos: &Pos, out_trade_no: &str) -> Option<Value> {
        let url = format!("{}/sandbox/trades/{}/{}", self.sandbox.url(), pos.alipay_id, out_trade_no);
        let response = self.http.get(url).send().await.unwrap();
        if response.status() == 200 { Some(response.json().await.unwrap()) } else { None }
    }

    pub async fn sandbox_stats(&self) -> Value {
        self.http.get(format!("{}/sandbox/stats", self.sandbox.url())).send().await.unwrap().json().await.unwrap()
    }

    /// Calls the sandbox received of these methods (or MAPI services), summed.
    pub async fn sandbox_calls(&self, methods: &[&str]) -> u64 {
        let stats = self.sandbox_stats().await;
        methods.iter().filter_map(|m| stats["stats"]["calls"][m].as_u64()).sum()
    }

    /// Sets the sandbox's injected faults (`{}` clears them).
    pub async fn alipay_faults(&self, faults: Value) {
        let url = format!("{}/sandbox/faults", self.sandbox.url());
        let response = self.http.post(url).json(&faults).send().await.unwrap();
        assert!(response.status().is_success(), "{}", response.text().await.unwrap());
    }

    /// The ledger's row for a trade.
    pub async fn ledger(&self, pos: &Pos, out_trade_no: &str) -> Option<ledger::Trade> {
        self.gateway.state().store.get(&ledger::TradeKey::new(pos.tenant_id, out_trade_no)).await.unwrap()
    }

    /// Waits until the wall clock has left the second the stack's gateway started in. Until then,
    /// with Redis away, the gateway cannot tell a request signed now from one captured before it
    /// started, and answers it 503 (`gateway::replay`); a gateway that has run a while never
    /// meets this.
    pub async fn past_the_gateways_first_second(&self) {
        let next = i128::from(self.gateway.state().replays.started_secs() + 1) * 1_000_000_000;
        let left = next - time::OffsetDateTime::now_utc().unix_timestamp_nanos();
        tokio::time::sleep(Duration::from_nanos(u64::try_from(left).unwrap_or(0))).await;
    }

    /// The due-index this stack's gateway arms.
    pub fn due_index(&self) -> ledger::DueIndex {
        ledger::DueIndex::new(&self.options.redis_url, &self.redis_prefix).unwrap()
    }
}

fn gateway_config(options: &Options, database_url: &str, redis_prefix: &str) -> gateway::Config {
    gateway::Config {
        listen: "127.0.0.1:0".parse().unwrap(),
        admin_listen: "127.0.0.1:0".parse().unwrap(),
        database_url: database_url.into(),
        database_pool_size: 16,
        redis_url: options.redis_url.clone(),
        redis_prefix: redis_prefix.into(),
        upstream_timeout: ms(options.upstream_timeout_ms),
        notifications: options.notifications,
        first_check: ms(options.first_check_ms),
        deadline: ms(options.deadline_ms),
        qr_check: ms(options.qr_check_ms),
        ..gateway::Config::default()
    }
}

/// `binary` with every field of `config` as a `{PREFIX}_{FIELD}` variable (the shared launcher's
/// [`service::launch::configured`]).
fn service_command(binary: &str, prefix: &str, config: &impl serde::Serialize) -> std::process::Command {
    service::launch::configured(binary, prefix, config).unwrap()
}

/// A tenant's keys for `sign_type`: the test merchant's RSA key pair, or the test MD5 key.
pub fn test_keys(sign_type: SignType) -> MerchantKeys {
    match sign_type {
        SignType::Md5 => MerchantKeys::Md5(Zeroizing::new(MD5_KEY.into())),
        _ => MerchantKeys::Rsa {
            app_private: Zeroizing::new(MERCHANT_PRIVATE.into()),
            app_public: MERCHANT_PUBLIC.into(),
        },
    }
}

/// Limits no test reaches.
pub fn generous() -> Limits {
    Limits { pay_rate: 1000, pay_burst: 1000, other_rate: 1000 }
}

fn rand_digits() -> u64 {
    static N: AtomicUsize = AtomicUsize::new(0);
    (u64::from(std::process::id()) * 1000 + N.fetch_add(1, Ordering::Relaxed) as u64) % 1_000_000_000_000
}

/// The stack's options count milliseconds; the services' configurations hold durations.
fn ms(millis: u64) -> Duration {
    Duration::from_millis(millis)
}
