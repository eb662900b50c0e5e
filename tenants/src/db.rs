//! Postgres: the connection pool and the schema migrations (applied under an advisory lock, so
//! several services starting at once apply them once). Every connection follows the URL's
//! `sslmode` as libpq does (`require`: TLS; `verify-ca` / `verify-full` with `sslrootcert` or
//! `PGSSLROOTCERT`: verified), through [`pgtls`].

use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod};
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

/// A pool of at most `max_size` connections to `url`.
pub fn pool(url: &str, max_size: usize) -> Result<Pool, DbError> {
    pool_of(Target::parse(url).map_err(DbError::Url)?, max_size)
}

/// A pool like [`pool`] whose statements are planned afresh at every execution, for the
/// statements that join a batch of keys to a table: a plan cached while the table was small (a
/// fresh ledger) would go on scanning it whole once it has grown.
pub fn pool_planning_each_time(url: &str, max_size: usize) -> Result<Pool, DbError> {
    let mut target = Target::parse(url).map_err(DbError::Url)?;
    let config = target.config_mut();
    let options = [config.get_options().unwrap_or_default(), "-c plan_cache_mode=force_custom_plan"].join(" ");
    config.options(options.trim());
    pool_of(target, max_size)
}

fn pool_of(target: Target, max_size: usize) -> Result<Pool, DbError> {
    let config = ManagerConfig { recycling_method: RecyclingMethod::Fast };
    let manager = Manager::from_config(target.config().clone(), target.tls(), config);
    Pool::builder(manager).max_size(max_size).build().map_err(|e| DbError::Pool(e.to_string()))
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
