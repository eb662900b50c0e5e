//! Configuration: defaults, then a TOML file, then `RECONCILER_*` environment variables; checked
//! once at start. Every interval is in milliseconds, so tests run the 60 s flow in a few seconds
//! (with the sandbox's `--time-scale`). Secrets (the master keys) never live here.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tenants::db::PoolLimits;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// `/live`, `/ready`, `/metrics` (`reconciler webhooks` lists the deliveries).
    pub admin_listen: SocketAddr,
    pub database_url: String,
    pub database_pool_size: usize,
    /// How long a loop waits for a free connection before that round fails (and is retried).
    #[serde(rename = "database_pool_wait_ms", with = "service::millis")]
    pub database_pool_wait: Duration,
    /// Postgres `statement_timeout` on the pooled connections (claims, sweeps, settlements,
    /// webhooks). Migrations have none.
    #[serde(rename = "database_statement_timeout_ms", with = "service::millis")]
    pub database_statement_timeout: Duration,
    pub redis_url: String,
    /// Key prefix of the due-index (the gateway's `redis_prefix`).
    pub redis_prefix: String,
    /// Apply the database migrations at start.
    pub migrate_on_start: bool,
    /// Deadline of one call to Alipay; past it the answer is UNKNOWN.
    #[serde(rename = "upstream_timeout_ms", with = "service::millis")]
    pub upstream_timeout: Duration,
    /// Between two queries of an UNKNOWN trade (design §4: 5 s).
    #[serde(rename = "query_interval_ms", with = "service::millis")]
    pub query_interval: Duration,
    /// A trade's cancel deadline after its creation, for trades that carry none (a PAYING
    /// intent whose gateway died); the gateway writes it into every UNKNOWN trade.
    #[serde(rename = "deadline_ms", with = "service::millis")]
    pub deadline: Duration,
    /// The first wait before retrying a cancel (design §4: 2 s); it grows with the time since the
    /// deadline, up to `cancel_retry_max_ms`.
    #[serde(rename = "cancel_retry_ms", with = "service::millis")]
    pub cancel_retry: Duration,
    #[serde(rename = "cancel_retry_max_ms", with = "service::millis")]
    pub cancel_retry_max: Duration,
    /// Between two queries of a waiting QR order.
    #[serde(rename = "qr_query_interval_ms", with = "service::millis")]
    pub qr_query_interval: Duration,
    /// How long a claimed trade is its claimer's; past it another reconciler takes it over.
    /// Longer than a call to Alipay plus the writes after it.
    #[serde(rename = "lease_ms", with = "service::millis")]
    pub lease: Duration,
    /// The longest the claimer sleeps when nothing is due (it wakes earlier for the next due).
    #[serde(rename = "poll_ms", with = "service::millis")]
    pub poll: Duration,
    /// Trades claimed at once.
    pub claim_batch: usize,
    /// Trades being worked on at once.
    pub max_in_flight: usize,
    /// How often the sweeper re-arms, from Postgres, every open trade missing from Redis.
    #[serde(rename = "sweep_interval_ms", with = "service::millis")]
    pub sweep_interval: Duration,
    /// How far back the sweeper looks (Alipay's cancel window: a day).
    #[serde(rename = "sweep_window_secs", with = "service::seconds")]
    pub sweep_window: Duration,
    /// Queries per second per tenant (a burst of as many).
    pub query_rate_per_tenant: u32,
    /// Cancels and closes per second per tenant (a budget of their own, so queries never
    /// starve them).
    pub cancel_rate_per_tenant: u32,
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
    /// error) each reconciler enforces its fair share alone for a second.
    #[serde(rename = "budget_redis_timeout_ms", with = "service::millis")]
    pub budget_redis_timeout: Duration,
    /// Webhook deliveries at once.
    pub webhook_concurrency: usize,
    #[serde(rename = "webhook_timeout_ms", with = "service::millis")]
    pub webhook_timeout: Duration,
    /// Waits before each retry of a webhook; when they run out the delivery is abandoned.
    /// The default spreads 15 attempts over about 25 hours, as Alipay does for its own.
    pub webhook_retry_ms: Vec<u64>,
    /// Waits before each retry of an Alipay notification owed to a front-door POS (its
    /// `notify_url`): Alipay's own schedule by default (4m, 10m, 10m, 1h, 2h, 6h, 15h).
    pub notify_retry_ms: Vec<u64>,
    /// How often the webhook worker looks for due deliveries when it found none.
    #[serde(rename = "webhook_poll_ms", with = "service::millis")]
    pub webhook_poll: Duration,
    /// How often refunds whose outcome is not known are looked for.
    #[serde(rename = "refund_poll_ms", with = "service::millis")]
    pub refund_poll: Duration,
    /// The tenant snapshot's safety-net reload period.
    #[serde(rename = "snapshot_reload_secs", with = "service::seconds")]
    pub snapshot_reload: Duration,
    /// Runtime worker threads (default: one per CPU; 1 runs the current-thread scheduler).
    pub worker_threads: Option<usize>,
    /// Where downloaded bills are kept, as downloaded (one folder per Alipay account). Unset, the
    /// daily close does not run and `reconciler bills fetch` refuses.
    pub bills_dir: Option<PathBuf>,
    /// Where Alipay's SFTP drop (mirrored here) leaves Global partners' daily files, one folder
    /// per partner. Unset, Global accounts are not reconciled.
    pub bills_global_dir: Option<PathBuf>,
    /// Day D's bill is asked for from this many minutes after D's end, Beijing time (Alipay: made
    /// by 09:00, "after 10:00" to be safe).
    pub bills_fetch_after_minutes: u32,
    /// How often the daily close looks for days to reconcile.
    #[serde(rename = "bills_poll_ms", with = "service::millis")]
    pub bills_poll: Duration,
    /// After a try that found no bill yet (or failed), the wait before the next.
    #[serde(rename = "bills_retry_ms", with = "service::millis")]
    pub bills_retry: Duration,
    /// How many finished days back the daily close looks at.
    pub bills_lookback_days: u32,
    /// A day with ledger entries whose bill Alipay still does not have this many days after it
    /// is matched against an empty bill (every entry then missing from the bill).
    pub bills_give_up_days: u32,
    /// The largest bill downloaded.
    pub bills_max_file_bytes: u64,
    #[serde(rename = "bills_download_timeout_ms", with = "service::millis")]
    pub bills_download_timeout: Duration,
    /// Alipay queries one day's matching may make to decide who is right; past it, a
    /// disagreement is stored unasked.
    pub bills_max_queries: u32,
}

const MINUTE: u64 = 60_000;

impl Default for Config {
    fn default() -> Self {
        Config {
            admin_listen: SocketAddr::from(([127, 0, 0, 1], 9091)),
            database_url: "postgres://postgres@127.0.0.1:5432/acquirer".into(),
            database_pool_size: 16,
            database_pool_wait: Duration::from_millis(5_000),
            database_statement_timeout: Duration::from_millis(30_000),
            redis_url: "redis://127.0.0.1:6379".into(),
            redis_prefix: "acq".into(),
            migrate_on_start: false,
            upstream_timeout: Duration::from_millis(10_000),
            query_interval: Duration::from_millis(5_000),
            deadline: Duration::from_millis(60_000),
            cancel_retry: Duration::from_millis(2_000),
            cancel_retry_max: Duration::from_millis(5 * MINUTE),
            qr_query_interval: Duration::from_millis(15_000),
            lease: Duration::from_millis(15_000),
            poll: Duration::from_millis(10),
            claim_batch: 256,
            max_in_flight: 1024,
            sweep_interval: Duration::from_millis(5_000),
            sweep_window: Duration::from_secs(86_400),
            query_rate_per_tenant: 200,
            cancel_rate_per_tenant: 200,
            alipay_app_rate: 1_000,
            alipay_app_burst: 200,
            alipay_app_limits: Vec::new(),
            settle_share_percent: 20,
            budget_redis_timeout: Duration::from_millis(50),
            webhook_concurrency: 64,
            webhook_timeout: Duration::from_millis(10_000),
            webhook_retry_ms: vec![
                15_000,
                15_000,
                30_000,
                3 * MINUTE,
                10 * MINUTE,
                20 * MINUTE,
                30 * MINUTE,
                30 * MINUTE,
                30 * MINUTE,
                60 * MINUTE,
                3 * 60 * MINUTE,
                3 * 60 * MINUTE,
                3 * 60 * MINUTE,
                6 * 60 * MINUTE,
                6 * 60 * MINUTE,
            ],
            notify_retry_ms: vec![
                4 * MINUTE,
                10 * MINUTE,
                10 * MINUTE,
                60 * MINUTE,
                120 * MINUTE,
                360 * MINUTE,
                900 * MINUTE,
            ],
            webhook_poll: Duration::from_millis(500),
            refund_poll: Duration::from_millis(1_000),
            snapshot_reload: Duration::from_secs(60),
            worker_threads: None,
            bills_dir: None,
            bills_global_dir: None,
            bills_fetch_after_minutes: 600,
            bills_poll: Duration::from_millis(5 * MINUTE),
            bills_retry: Duration::from_millis(30 * MINUTE),
            bills_lookback_days: 7,
            bills_give_up_days: 2,
            bills_max_file_bytes: 4 << 30,
            bills_download_timeout: Duration::from_millis(10 * MINUTE),
            bills_max_queries: 2_000,
        }
    }
}

/// The configuration is refused: one line that says what is wrong.
#[derive(Debug, thiserror::Error)]
#[error("configuration: {0}")]
pub struct ConfigError(pub String);

impl Config {
    /// Defaults, then `file` (if any), then `RECONCILER_*` variables (`RECONCILER_LEASE_MS=20000`).
    pub fn load(file: Option<&Path>) -> Result<Config, ConfigError> {
        service::load_config::<Config>(file, "RECONCILER_").map_err(ConfigError)?.validate()
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
        let ms = Duration::from_millis;
        let fail = |message: &str| Err(ConfigError(message.to_owned()));
        if self.database_pool_size == 0 || self.database_pool_size > 1000 {
            return fail("database_pool_size must be 1 to 1000");
        }
        if !(ms(1)..=ms(60_000)).contains(&self.database_pool_wait) {
            return fail("database_pool_wait_ms must be 1 to 60000");
        }
        if !(ms(100)..=ms(3_600_000)).contains(&self.database_statement_timeout) {
            return fail("database_statement_timeout_ms must be 100 to 3600000");
        }
        if self.redis_prefix.is_empty()
            || self.redis_prefix.len() > 64
            || self.redis_prefix.contains(char::is_whitespace)
        {
            return fail("redis_prefix must be 1 to 64 characters without spaces");
        }
        if !(ms(100)..=ms(120_000)).contains(&self.upstream_timeout) {
            return fail("upstream_timeout_ms must be 100 to 120000");
        }
        if self.lease < self.upstream_timeout + ms(1_000) {
            return fail("lease_ms must exceed upstream_timeout_ms by at least 1000");
        }
        let intervals = [
            self.query_interval,
            self.deadline,
            self.cancel_retry,
            self.qr_query_interval,
            self.poll,
            self.sweep_interval,
            self.webhook_timeout,
            self.webhook_poll,
            self.refund_poll,
        ];
        if intervals.iter().any(Duration::is_zero) {
            return fail("every interval must be positive");
        }
        if self.cancel_retry_max < self.cancel_retry {
            return fail("cancel_retry_max_ms must be at least cancel_retry_ms");
        }
        if self.poll > ms(1_000) {
            return fail("poll_ms must be at most 1000");
        }
        if !(1..=10_000).contains(&self.claim_batch) || !(1..=100_000).contains(&self.max_in_flight) {
            return fail("claim_batch must be 1 to 10000 and max_in_flight 1 to 100000");
        }
        if self.sweep_window < Duration::from_secs(60) {
            return fail("sweep_window_secs must be at least 60");
        }
        self.app_limits()?;
        if self.budget_redis_timeout.is_zero() || self.budget_redis_timeout > Duration::from_secs(5) {
            return fail("budget_redis_timeout_ms must be 1 to 5000");
        }
        if self.query_rate_per_tenant == 0 || self.cancel_rate_per_tenant == 0 {
            return fail("query_rate_per_tenant and cancel_rate_per_tenant must be positive");
        }
        if !(1..=10_000).contains(&self.webhook_concurrency) {
            return fail("webhook_concurrency must be 1 to 10000");
        }
        for (name, waits) in [("webhook_retry_ms", &self.webhook_retry_ms), ("notify_retry_ms", &self.notify_retry_ms)]
        {
            if waits.len() > 100 || waits.contains(&0) {
                return fail(&format!("{name} must hold at most 100 positive waits"));
            }
        }
        if self.worker_threads.is_some_and(|n| n == 0 || n > 1024) {
            return fail("worker_threads must be 1 to 1024");
        }
        if self.snapshot_reload.is_zero() {
            return fail("snapshot_reload_secs must be positive");
        }
        if self.bills_fetch_after_minutes > 24 * 60 {
            return fail("bills_fetch_after_minutes must be at most 1440");
        }
        if [self.bills_poll, self.bills_retry, self.bills_download_timeout].iter().any(Duration::is_zero) {
            return fail("bills_poll_ms, bills_retry_ms and bills_download_timeout_ms must be positive");
        }
        if !(1..=400).contains(&self.bills_lookback_days) || self.bills_give_up_days > 30 {
            return fail("bills_lookback_days must be 1 to 400 and bills_give_up_days at most 30");
        }
        if self.bills_max_file_bytes < 1024 || self.bills_max_queries > 1_000_000 {
            return fail("bills_max_file_bytes must be at least 1024 and bills_max_queries at most 1000000");
        }
        Ok(self)
    }

    /// The limits of a pool of `size` connections.
    pub fn pool_limits(&self, size: usize) -> PoolLimits {
        PoolLimits::new(size).waiting(self.database_pool_wait).statement_timeout(self.database_statement_timeout)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_hold_and_bad_values_are_named() {
        assert!(Config::default().validate().is_ok());
        let bad = Config { lease: Duration::from_secs(5), ..Config::default() };
        assert!(bad.validate().unwrap_err().to_string().contains("lease_ms"));
        let bad = Config { query_interval: Duration::ZERO, ..Config::default() };
        assert!(bad.validate().unwrap_err().to_string().contains("interval"));
        let bad = Config { database_pool_wait: Duration::ZERO, ..Config::default() };
        assert!(bad.validate().unwrap_err().to_string().contains("database_pool_wait_ms"));
        let bad = Config { database_statement_timeout: Duration::from_millis(5), ..Config::default() };
        assert!(bad.validate().unwrap_err().to_string().contains("database_statement_timeout_ms"));
        let limits = Config::default().pool_limits(4);
        assert_eq!((limits.size, limits.wait), (4, Duration::from_secs(5)));
        assert_eq!(limits.statement_timeout, Some(Duration::from_secs(30)));
    }
}
