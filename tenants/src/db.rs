//! Postgres: the connection pools and the schema migrations (applied under an advisory lock, so
//! several services starting at once apply them once). Every connection follows the URL's
//! `sslmode` as libpq does (`require`: TLS; `verify-ca` / `verify-full` with `sslrootcert` or
//! `PGSSLROOTCERT`: verified), through [`pgtls`].
//!
//! Every pool is bounded ([`PoolLimits`]): its size, how long a caller waits for a connection
//! (then `PoolError::Timeout(Wait)`, never a hang), how long connecting may take, and, where
//! asked, Postgres's `statement_timeout` on each of its connections. Migrations and LISTEN use
//! connections of their own ([`connect`]), never cut short.

use std::time::Duration;

use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod, Runtime};
use pgtls::Target;

mod embedded {
    refinery::embed_migrations!("migrations");
}

/// The lock every migrator of this schema takes (`tenants` in ASCII).
const MIGRATION_LOCK: i64 = 0x0074_656e_616e_7473;

/// Postgres could not be reached or the schema could not be applied.
#[derive(Debug, thiserror::Error)]
pub enum DbError {
    #[error(transparent)]
    Url(pgtls::Error),
    #[error("cannot build the connection pool: {0}")]
    Pool(String),
    #[error("database: {0}")]
    Postgres(#[from] tokio_postgres::Error),
    #[error("database: {0}")]
    Connect(pgtls::Error),
    #[error("migration failed: {0}")]
    Migration(String),
}

/// How long a caller of a pool built by [`pool`] waits for a free connection.
pub const DEFAULT_WAIT: Duration = Duration::from_secs(5);

/// How long opening a pooled connection may take (a Postgres that does not answer is an error,
/// not a wait).
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// What a pool allows its callers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PoolLimits {
    /// Connections at most.
    pub size: usize,
    /// How long `get` waits for a free connection before it fails (`PoolError::Timeout(Wait)`).
    pub wait: Duration,
    /// Postgres's `statement_timeout` on every connection (`None`: the server's setting).
    pub statement_timeout: Option<Duration>,
    /// Statements run without parallel workers, so each connection is one backend on one core:
    /// the pool's size then bounds the CPU its statements take (heavy reads, such as reports).
    pub one_core_each: bool,
    /// Commits answer without waiting for the write-ahead log's flush (`synchronous_commit=off`):
    /// a crash of Postgres may lose the last few hundred milliseconds of them, never corrupt.
    /// Only for writes that can be lost (docs/durability.md).
    pub commit_without_flush: bool,
}

impl PoolLimits {
    /// `size` connections, [`DEFAULT_WAIT`], no statement timeout of its own.
    pub const fn new(size: usize) -> Self {
        PoolLimits {
            size,
            wait: DEFAULT_WAIT,
            statement_timeout: None,
            one_core_each: false,
            commit_without_flush: false,
        }
    }

    pub const fn waiting(self, wait: Duration) -> Self {
        PoolLimits { wait, ..self }
    }

    pub const fn statement_timeout(self, timeout: Duration) -> Self {
        PoolLimits { statement_timeout: Some(timeout), ..self }
    }

    pub const fn one_core_each(self) -> Self {
        PoolLimits { one_core_each: true, ..self }
    }

    pub const fn commit_without_flush(self) -> Self {
        PoolLimits { commit_without_flush: true, ..self }
    }
}

/// A pool of at most `max_size` connections to `url` (callers wait at most [`DEFAULT_WAIT`]).
pub fn pool(url: &str, max_size: usize) -> Result<Pool, DbError> {
    bounded_pool(url, PoolLimits::new(max_size))
}

/// A pool of `url` within `limits`.
pub fn bounded_pool(url: &str, limits: PoolLimits) -> Result<Pool, DbError> {
    pool_of(url, limits, false)
}

/// A pool like [`bounded_pool`] whose statements are planned afresh at every execution, for the
/// statements that join a batch of keys to a table: a plan cached while the table was small (a
/// fresh ledger) would go on scanning it whole once it has grown (the ledger's test
/// `a_pay_written_after_the_ledger_grew_does_not_read_it_whole`).
pub fn pool_planning_each_time(url: &str, limits: PoolLimits) -> Result<Pool, DbError> {
    pool_of(url, limits, true)
}

/// Where a pool of `url` within `limits` connects, with the settings its connections get: for a
/// connection of its own beside the pool (a bulk read, on a thread of its own).
pub fn target(url: &str, limits: PoolLimits) -> Result<Target, DbError> {
    target_of(url, limits, false)
}

fn pool_of(url: &str, limits: PoolLimits, plan_each_time: bool) -> Result<Pool, DbError> {
    let target = target_of(url, limits, plan_each_time)?;
    let manager = Manager::from_config(
        target.config().clone(),
        target.tls(),
        ManagerConfig { recycling_method: RecyclingMethod::Fast },
    );
    Pool::builder(manager)
        .max_size(limits.size)
        .runtime(Runtime::Tokio1)
        .wait_timeout(Some(limits.wait))
        .create_timeout(Some(CONNECT_TIMEOUT))
        .recycle_timeout(Some(CONNECT_TIMEOUT))
        .build()
        .map_err(|e| DbError::Pool(e.to_string()))
}

fn target_of(url: &str, limits: PoolLimits, plan_each_time: bool) -> Result<Target, DbError> {
    let mut target = Target::parse(url).map_err(DbError::Url)?;
    let config = target.config_mut();
    let mut options = config.get_options().unwrap_or_default().to_owned();
    if plan_each_time {
        options.push_str(" -c plan_cache_mode=force_custom_plan");
    }
    if let Some(timeout) = limits.statement_timeout {
        options.push_str(&format!(" -c statement_timeout={}", timeout.as_millis().max(1)));
    }
    if limits.one_core_each {
        options.push_str(" -c max_parallel_workers_per_gather=0");
    }
    if limits.commit_without_flush {
        options.push_str(" -c synchronous_commit=off");
    }
    config.options(options.trim());
    if config.get_connect_timeout().is_none() {
        config.connect_timeout(CONNECT_TIMEOUT);
    }
    Ok(target)
}

/// Opens one connection outside any pool (for migrations and LISTEN).
pub async fn connect(url: &str) -> Result<tokio_postgres::Client, DbError> {
    let target = Target::parse(url).map_err(DbError::Url)?;
    let (client, connection) = target.connect().await.map_err(DbError::Connect)?;
    tokio::spawn(async move {
        if let Err(error) = connection.await {
            tracing::debug!(%error, "postgres connection closed");
        }
    });
    Ok(client)
}

/// Applies the migrations not yet applied; answers how many it applied.
pub async fn migrate(url: &str) -> Result<usize, DbError> {
    let mut client = connect(url).await?;
    client.execute("SELECT pg_advisory_lock($1)", &[&MIGRATION_LOCK]).await?;
    let mut runner = embedded::migrations::runner();
    runner.set_migration_table_name("tenants_schema_history");
    let report = runner.set_grouped(true).run_async(&mut client).await;
    client.execute("SELECT pg_advisory_unlock($1)", &[&MIGRATION_LOCK]).await?;
    let report = report.map_err(|e| DbError::Migration(e.to_string()))?;
    Ok(report.applied_migrations().len())
}
