//! Configuration: defaults, then a TOML file, then `GATEWAY_*` environment variables; checked
//! once at start. Secrets (the master keys, the admin token) never live here: they come from
//! `ACQ_MASTER_KEY_FILE` / `ACQ_MASTER_KEYS` and `ACQ_ADMIN_TOKEN`, read by `main`.

use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use telemetry::server::ConnectionLimits;
use tenants::db::PoolLimits;
use time::UtcOffset;

/// How long open partner API connections get to finish their requests when the gateway stops.
pub const DRAIN_GRACE: Duration = Duration::from_secs(15);

/// A listener limit's name as the configuration spells it.
fn listener_error(error: &str) -> String {
    let keys = [
        ("first_byte_timeout", "first_byte_timeout_ms"),
        ("header_timeout", "header_read_timeout_ms"),
        ("idle_timeout", "idle_timeout_ms"),
        ("keep_alive_interval", "http2_keep_alive_interval_ms"),
        ("keep_alive_timeout", "http2_keep_alive_timeout_ms"),
    ];
    let named = keys.iter().fold(error.to_owned(), |text, (limit, key)| text.replace(limit, key));
    named.replace("more than 0 and at most an hour", "1 to 3600000")
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// The partner API listener.
    pub listen: SocketAddr,
    /// `/live`, `/ready`, `/metrics` and the tenants admin API.
    pub admin_listen: SocketAddr,
    pub database_url: String,
    /// Connections of the main pool (queries, cancels, refunds, notifications, the snapshot).
    pub database_pool_size: usize,
    /// How long a request waits for a free connection of any pool; past it the POS hears 503
    /// with `Retry-After` (Alipay's notification hears `fail` and retries), never a hang.
    #[serde(rename = "database_pool_wait_ms", with = "service::millis")]
    pub database_pool_wait: Duration,
    /// Postgres `statement_timeout` on the request path's connections (the main pool and the
    /// batched writes). Migrations and LISTEN connections have none.
    #[serde(rename = "database_statement_timeout_ms", with = "service::millis")]
    pub database_statement_timeout: Duration,
    /// Connections the sales reports have, in a pool of their own: at most this many reports
    /// run at once, each on one core (no parallel workers), whatever the tenants ask.
    pub report_pool_size: usize,
    /// Postgres `statement_timeout` of a report: longer ones are cut (503, `Retry-After`).
    #[serde(rename = "report_statement_timeout_ms", with = "service::millis")]
    pub report_statement_timeout: Duration,
    /// Each tenant's report budget (GCRA): this many a minute, in bursts of `report_burst`. A
    /// budget of its own, so reports never spend what queries, cancels and refunds need.
    pub report_rate_per_minute: u32,
    pub report_burst: u32,
    /// Alipay's limit on each app or partner, calls a second and burst, shared by every tenant on
    /// it, the gateways' and the reconcilers' calls together (they must be given the same).
    pub alipay_app_rate: u32,
    pub alipay_app_burst: u32,
    /// Apps or partners Alipay gave another limit: `<account>=<calls per second>/<burst>`
    /// (`openapi:2021000000000001=300/50`, `mapi:2088000000000001=100/20`).
    pub alipay_app_limits: Vec<String>,
    /// The part of each app's limit reserved for the reconcilers' queries and cancels (1 to 90
    /// percent); POS traffic has the rest, so a pay storm never starves settlement.
    pub settle_share_percent: u32,
    /// How long a call waits for Redis to take it from the shared budgets; past it (or on an
    /// error) each gateway enforces its fair share alone for a second.
    #[serde(rename = "budget_redis_timeout_ms", with = "service::millis")]
    pub budget_redis_timeout: Duration,
    pub redis_url: String,
    /// Key prefix in Redis of the due-index and the replay seen-set (several deployments may
    /// share one Redis; every gateway of one deployment must use the same).
    pub redis_prefix: String,
    /// How long a request waits for Redis to record its nonce; past it (or on an error) the
    /// gateway falls back to refusing requests stamped before it started.
    #[serde(rename = "nonce_redis_timeout_ms", with = "service::millis")]
    pub nonce_redis_timeout: Duration,
    /// This gateway as Alipay reaches it, for `notify_url` (`{public_url}/notify/{tenant}`). When
    /// unset, the partner listener's own address is used.
    pub public_url: Option<String>,
    /// Ask Alipay to notify this gateway of payments (send `notify_url`).
    pub notifications: bool,
    /// Apply the database migrations at start.
    pub migrate_on_start: bool,
    /// Deadline of one call to Alipay; past it the answer is UNKNOWN.
    #[serde(rename = "upstream_timeout_ms", with = "service::millis")]
    pub upstream_timeout: Duration,
    /// The largest request body (413 past it).
    pub max_body_bytes: usize,
    /// Bytes of request bodies held before their requests are authenticated, all connections
    /// together (a body is counted as its bytes arrive); past it a body is refused with 503 and
    /// `Retry-After`. With the per-connection buffers (16 KiB of head) this bounds the memory
    /// strangers can make the gateway hold: `max_connections` × 16 KiB + this.
    pub unauthenticated_body_budget_bytes: usize,
    /// The partner listener's connections at once; past it, clients wait in the listen backlog.
    pub max_connections: usize,
    /// Connections one client address (an IPv6 /64) may hold on the partner listener; more are
    /// closed as soon as accepted. Behind a proxy that hides client addresses, set it to
    /// `max_connections`.
    pub max_connections_per_peer: usize,
    /// From accept to a connection's first byte (every listener).
    #[serde(rename = "first_byte_timeout_ms", with = "service::millis")]
    pub first_byte_timeout: Duration,
    /// From a request's first byte to the end of its headers (protocol detection included).
    #[serde(rename = "header_read_timeout_ms", with = "service::millis")]
    pub header_read_timeout: Duration,
    /// From the headers to the last byte of the body; past it, 408.
    #[serde(rename = "body_timeout_ms", with = "service::millis")]
    pub body_timeout: Duration,
    /// How long a connection with no request in flight stays open (HTTP/1 keep-alive, HTTP/2).
    /// Longer than the clients' own pool timeouts, so they close first (no request meets a
    /// closing connection).
    #[serde(rename = "idle_timeout_ms", with = "service::millis")]
    pub idle_timeout: Duration,
    /// HTTP/2: a PING after this long without a frame from the client…
    #[serde(rename = "http2_keep_alive_interval_ms", with = "service::millis")]
    pub http2_keep_alive_interval: Duration,
    /// …and the connection closed if the answer takes longer than this.
    #[serde(rename = "http2_keep_alive_timeout_ms", with = "service::millis")]
    pub http2_keep_alive_timeout: Duration,
    /// How far a request's timestamp may be from the gateway's clock.
    #[serde(rename = "clock_skew_secs", with = "service::seconds")]
    pub clock_skew: Duration,
    /// The longest `?wait=` a POS may ask for.
    #[serde(rename = "max_wait_secs", with = "service::seconds")]
    pub max_wait: Duration,
    /// An UNKNOWN trade's first query, after its creation (design §4: 5 s).
    #[serde(rename = "first_check_ms", with = "service::millis")]
    pub first_check: Duration,
    /// An UNKNOWN trade's cancel deadline, after its creation (design §4: 60 s).
    #[serde(rename = "deadline_ms", with = "service::millis")]
    pub deadline: Duration,
    /// How long an order QR code stays payable.
    #[serde(rename = "qr_expiry_secs", with = "service::seconds")]
    pub qr_expiry: Duration,
    /// A waiting QR order's first query, after the code was made.
    #[serde(rename = "qr_check_ms", with = "service::millis")]
    pub qr_check: Duration,
    /// The day boundary of the sales report, e.g. `+08:00`.
    pub report_utc_offset: String,
    /// The tenant snapshot's safety-net reload period.
    #[serde(rename = "snapshot_reload_secs", with = "service::seconds")]
    pub snapshot_reload: Duration,
    /// Runtime worker threads (default: one per CPU).
    pub worker_threads: Option<usize>,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            listen: SocketAddr::from(([0, 0, 0, 0], 8080)),
            admin_listen: SocketAddr::from(([127, 0, 0, 1], 9090)),
            database_url: "postgres://postgres@127.0.0.1:5432/acquirer".into(),
            database_pool_size: 32,
            database_pool_wait: Duration::from_millis(1_000),
            database_statement_timeout: Duration::from_millis(10_000),
            report_pool_size: 1,
            report_statement_timeout: Duration::from_millis(5_000),
            report_rate_per_minute: 6,
            report_burst: 3,
            alipay_app_rate: 1_000,
            alipay_app_burst: 200,
            alipay_app_limits: Vec::new(),
            settle_share_percent: 20,
            budget_redis_timeout: Duration::from_millis(50),
            redis_url: "redis://127.0.0.1:6379".into(),
            redis_prefix: "acq".into(),
            nonce_redis_timeout: Duration::from_millis(200),
            public_url: None,
            notifications: true,
            migrate_on_start: false,
            upstream_timeout: Duration::from_millis(10_000),
            max_body_bytes: 64 * 1024,
            unauthenticated_body_budget_bytes: 64 * 1024 * 1024,
            max_connections: 10_000,
            max_connections_per_peer: 1_000,
            first_byte_timeout: Duration::from_millis(10_000),
            header_read_timeout: Duration::from_millis(10_000),
            body_timeout: Duration::from_millis(10_000),
            idle_timeout: Duration::from_millis(60_000),
            http2_keep_alive_interval: Duration::from_millis(20_000),
            http2_keep_alive_timeout: Duration::from_millis(10_000),
            clock_skew: Duration::from_secs(300),
            max_wait: Duration::from_secs(60),
            first_check: Duration::from_millis(5_000),
            deadline: Duration::from_millis(60_000),
            qr_expiry: Duration::from_secs(7200),
            qr_check: Duration::from_millis(15_000),
            report_utc_offset: "+08:00".into(),
            snapshot_reload: Duration::from_secs(60),
            worker_threads: None,
        }
    }
}

/// The configuration is refused: one line that says what is wrong.
#[derive(Debug, thiserror::Error)]
#[error("configuration: {0}")]
pub struct ConfigError(pub String);

impl Config {
    /// Defaults, then `file` (if any), then `GATEWAY_*` variables (`GATEWAY_LISTEN=0.0.0.0:8080`).
    pub fn load(file: Option<&Path>) -> Result<Config, ConfigError> {
        service::load_config::<Config>(file, "GATEWAY_").map_err(ConfigError)?.validate()
    }

    /// Checks every value; answers the configuration unchanged when it holds.
    /// Alipay's limits on the apps, as the budgets use them.
    pub fn app_limits(&self) -> Result<budgets::AppLimits, ConfigError> {
        budgets::AppLimits::new(
            self.alipay_app_rate,
            self.alipay_app_burst,
            &self.alipay_app_limits,
            self.settle_share_percent,
        )
        .map_err(|e| ConfigError(format!("alipay_app_rate, alipay_app_burst, alipay_app_limits: {e}")))
    }

    pub fn validate(self) -> Result<Config, ConfigError> {
        let (ms, secs) = (Duration::from_millis, Duration::from_secs);
        let fail = |message: &str| Err(ConfigError(message.to_owned()));
        if self.database_pool_size == 0 || self.database_pool_size > 1000 {
            return fail("database_pool_size must be 1 to 1000");
        }
        if !(ms(1)..=ms(60_000)).contains(&self.database_pool_wait) {
            return fail("database_pool_wait_ms must be 1 to 60000");
        }
        if !(ms(100)..=ms(600_000)).contains(&self.database_statement_timeout)
            || !(ms(100)..=ms(600_000)).contains(&self.report_statement_timeout)
        {
            return fail("database_statement_timeout_ms and report_statement_timeout_ms must be 100 to 600000");
        }
        if !(1..=100).contains(&self.report_pool_size) {
            return fail("report_pool_size must be 1 to 100");
        }
        if !(1..=60_000).contains(&self.report_rate_per_minute) || !(1..=10_000).contains(&self.report_burst) {
            return fail("report_rate_per_minute must be 1 to 60000 and report_burst 1 to 10000");
        }
        self.app_limits()?;
        if !(ms(1)..=ms(5_000)).contains(&self.budget_redis_timeout) {
            return fail("budget_redis_timeout_ms must be 1 to 5000");
        }
        if !(ms(1)..=ms(5_000)).contains(&self.nonce_redis_timeout) {
            return fail("nonce_redis_timeout_ms must be 1 to 5000");
        }
        if self.redis_prefix.is_empty()
            || self.redis_prefix.len() > 64
            || self.redis_prefix.contains(char::is_whitespace)
        {
            return fail("redis_prefix must be 1 to 64 characters without spaces");
        }
        if let Some(url) = &self.public_url
            && !(url.starts_with("http://") || url.starts_with("https://"))
        {
            return fail("public_url must be an http:// or https:// URL");
        }
        if !(ms(100)..=ms(120_000)).contains(&self.upstream_timeout) {
            return fail("upstream_timeout_ms must be 100 to 120000");
        }
        if !(1024..=16 * 1024 * 1024).contains(&self.max_body_bytes) {
            return fail("max_body_bytes must be 1 KiB to 16 MiB");
        }
        if !(self.max_body_bytes..=4 << 30).contains(&self.unauthenticated_body_budget_bytes) {
            return fail("unauthenticated_body_budget_bytes must be at least max_body_bytes and at most 4 GiB");
        }
        self.partner_limits().validate().map_err(|e| ConfigError(listener_error(&e)))?;
        self.admin_limits().validate().map_err(|e| ConfigError(listener_error(&e)))?;
        if !(ms(1)..=ms(3_600_000)).contains(&self.body_timeout) {
            return fail("body_timeout_ms must be 1 to 3600000");
        }
        if self.clock_skew.is_zero() || self.clock_skew > secs(3600) {
            return fail("clock_skew_secs must be 1 to 3600");
        }
        if self.max_wait > secs(300) {
            return fail("max_wait_secs must be at most 300");
        }
        if self.first_check.is_zero() || self.deadline <= self.first_check || self.deadline > secs(86_400) {
            return fail("first_check_ms must be positive and below deadline_ms (at most a day)");
        }
        if self.qr_expiry < secs(60) || self.qr_check.is_zero() {
            return fail("qr_expiry_secs must be at least 60 and qr_check_ms positive");
        }
        if self.worker_threads.is_some_and(|n| n == 0 || n > 1024) {
            return fail("worker_threads must be 1 to 1024");
        }
        if self.snapshot_reload.is_zero() {
            return fail("snapshot_reload_secs must be positive");
        }
        self.report_offset()?;
        Ok(self)
    }

    pub fn report_offset(&self) -> Result<UtcOffset, ConfigError> {
        let format = time::macros::format_description!("[offset_hour sign:mandatory]:[offset_minute]");
        UtcOffset::parse(&self.report_utc_offset, format)
            .map_err(|_| ConfigError("report_utc_offset must look like +08:00".into()))
    }

    /// The partner listener's caps and deadlines.
    pub fn partner_limits(&self) -> ConnectionLimits {
        ConnectionLimits {
            max_connections: self.max_connections,
            max_connections_per_peer: self.max_connections_per_peer,
            http2: true,
            drain_grace: DRAIN_GRACE,
            keep_alive_interval: self.http2_keep_alive_interval,
            keep_alive_timeout: self.http2_keep_alive_timeout,
            ..self.admin_limits()
        }
    }

    /// The admin listener's: its own caps ([`ConnectionLimits::admin`]), this configuration's deadlines.
    pub fn admin_limits(&self) -> ConnectionLimits {
        ConnectionLimits {
            first_byte_timeout: self.first_byte_timeout,
            header_timeout: self.header_read_timeout,
            idle_timeout: self.idle_timeout,
            ..ConnectionLimits::admin()
        }
    }

    /// The main pool's limits.
    pub fn pool_limits(&self) -> PoolLimits {
        PoolLimits::new(self.database_pool_size)
            .waiting(self.database_pool_wait)
            .statement_timeout(self.database_statement_timeout)
    }

    /// The batched writes' pool: `connections` of them, bounded as the main pool.
    pub fn write_pool_limits(&self, connections: usize) -> PoolLimits {
        PoolLimits { size: connections, ..self.pool_limits() }
    }

    /// The reports' pool: small, one core per report, a tight statement timeout.
    pub fn report_pool_limits(&self) -> PoolLimits {
        PoolLimits::new(self.report_pool_size)
            .waiting(self.database_pool_wait)
            .statement_timeout(self.report_statement_timeout)
            .one_core_each()
    }

    /// When the reconciler looks at an intent whose answer this gateway never recorded (it died
    /// mid-call): past any call's deadline, with room for the write after it.
    pub fn intent_check_after(&self) -> Duration {
        self.upstream_timeout + Duration::from_secs(2)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_hold_and_bad_values_are_named() {
        assert!(Config::default().validate().is_ok());
        let bad = Config { deadline: Duration::from_millis(5_000), ..Config::default() };
        assert!(bad.validate().unwrap_err().to_string().contains("deadline_ms"));
        let bad = Config { report_utc_offset: "Asia/Shanghai".into(), ..Config::default() };
        assert!(bad.validate().unwrap_err().to_string().contains("report_utc_offset"));
        let bad = Config { idle_timeout: Duration::ZERO, ..Config::default() };
        assert_eq!(bad.validate().unwrap_err().to_string(), "configuration: idle_timeout_ms must be 1 to 3600000");
        let bad = Config { max_connections_per_peer: 0, ..Config::default() };
        assert!(bad.validate().unwrap_err().to_string().contains("max_connections_per_peer"));
        let bad = Config { unauthenticated_body_budget_bytes: 1024, ..Config::default() };
        assert!(bad.validate().unwrap_err().to_string().contains("unauthenticated_body_budget_bytes"));
        let bad = Config { database_pool_wait: Duration::ZERO, ..Config::default() };
        assert!(bad.validate().unwrap_err().to_string().contains("database_pool_wait_ms"));
        let bad = Config { report_statement_timeout: Duration::from_millis(10), ..Config::default() };
        assert!(bad.validate().unwrap_err().to_string().contains("report_statement_timeout_ms"));
        let bad = Config { report_pool_size: 0, ..Config::default() };
        assert!(bad.validate().unwrap_err().to_string().contains("report_pool_size"));
        let bad = Config { report_burst: 0, ..Config::default() };
        assert!(bad.validate().unwrap_err().to_string().contains("report_burst"));
        let bad = Config { nonce_redis_timeout: Duration::ZERO, ..Config::default() };
        assert!(bad.validate().unwrap_err().to_string().contains("nonce_redis_timeout_ms"));
    }

    #[test]
    fn every_pool_is_bounded() {
        let config = Config::default();
        let reports = config.report_pool_limits();
        assert_eq!((reports.size, reports.one_core_each), (1, true));
        assert_eq!(reports.statement_timeout, Some(Duration::from_secs(5)));
        for limits in [config.pool_limits(), config.write_pool_limits(2), reports] {
            assert_eq!(limits.wait, Duration::from_secs(1));
            assert!(limits.statement_timeout.is_some());
        }
    }
}
