//! Starting and stopping a reconciler: migrations (if asked), the pools (each with a wait limit
//! and a statement timeout), the tenant snapshot, the due-index, and the loops (claimer, sweeper,
//! webhook worker, and the daily close when `bills_dir` is set), with the admin listener (`/live`, `/ready`, `/metrics`). Stopping lets every
//! check and delivery under way finish.

use std::net::SocketAddr;
use std::sync::Arc;

use ledger::{Announcer, DueIndex, Store};
use tenants::Keyring;
use tenants::snapshot::{Loader, RefreshConfig};
use tokio::net::TcpListener;
use tokio::sync::{Notify, watch};
use tokio::task::JoinHandle;
use upstream::Upstream;

use crate::budget::Budgets;
use crate::check::Checker;
use crate::config::Config;
use crate::plan::Schedule;
use crate::writer::Writer;

/// Follow-ups queued for the writer at most.
const WRITER_QUEUE: usize = 16 * 1024;

#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error(transparent)]
    Config(#[from] crate::config::ConfigError),
    #[error("migrations: {0}")]
    Migrate(String),
    #[error("database: {0}")]
    Database(String),
    #[error("tenant snapshot: {0}")]
    Snapshot(#[from] tenants::RegistryError),
    #[error("redis: {0}")]
    Redis(#[from] ledger::due_index::DueIndexError),
    #[error("metrics: {0}")]
    Metrics(#[from] telemetry::TelemetryError),
    #[error("cannot bind {0}: {1}")]
    Bind(SocketAddr, std::io::Error),
}

/// What the loops share.
pub struct Shared {
    pub config: Config,
    pub store: Store,
    pub due_index: DueIndex,
    pub checker: Checker,
    /// Asks the sweeper for a pass now (Redis came back).
    pub sweep_now: Notify,
}

/// A running reconciler.
pub struct Reconciler {
    admin_addr: SocketAddr,
    shared: Arc<Shared>,
    stop: watch::Sender<bool>,
    /// Finish on their own once stopped (claimer, webhooks, admin listener), then the writer.
    draining: Vec<JoinHandle<()>>,
    writer: JoinHandle<()>,
    /// Aborted once stopped.
    background: Vec<JoinHandle<()>>,
}

impl Reconciler {
    /// Starts every loop; `keyring` opens the tenants' keys.
    pub async fn start(config: Config, keyring: Arc<Keyring>) -> Result<Reconciler, StartError> {
        let config = config.validate()?;
        if config.migrate_on_start {
            tenants::db::migrate(&config.database_url).await.map_err(|e| StartError::Migrate(e.to_string()))?;
            ledger::store::migrate(&config.database_url).await.map_err(|e| StartError::Migrate(e.to_string()))?;
        }
        let database = |e: tenants::db::DbError| StartError::Database(e.to_string());
        let pool = tenants::db::bounded_pool(&config.database_url, config.pool_limits(config.database_pool_size))
            .map_err(database)?;
        let write_limits = config.pool_limits(ledger::store::WRITE_CONNECTIONS);
        let writes = tenants::db::pool_planning_each_time(&config.database_url, write_limits).map_err(database)?;
        let refresh =
            RefreshConfig { database_url: config.database_url.clone(), full_reload_every: config.snapshot_reload };
        let (snapshots, snapshot_task) = tenants::snapshot::start(Loader::new(pool.clone(), keyring), refresh).await?;
        let due_index = DueIndex::new(&config.redis_url, &config.redis_prefix)?;
        let metrics = telemetry::metrics()?;
        let listener =
            TcpListener::bind(config.admin_listen).await.map_err(|e| StartError::Bind(config.admin_listen, e))?;
        let admin_addr = listener.local_addr().map_err(|e| StartError::Bind(config.admin_listen, e))?;
        let schedule = Schedule {
            query_interval: config.query_interval,
            qr_interval: config.qr_query_interval,
            deadline: config.deadline,
            cancel_retry: config.cancel_retry,
            cancel_retry_max: config.cancel_retry_max,
        };
        let (announcer, announcer_task) = Announcer::start(pool.clone());
        let shared_budgets = Arc::new(budgets::Budgets::new(
            due_index.connection(),
            &config.redis_prefix,
            "reconciler",
            config.budget_redis_timeout,
        ));
        let budgets_task = shared_budgets.spawn_announcer();
        let checker = Checker {
            announcer,
            store: Store::with_write_pool(pool, writes),
            snapshots,
            upstream: Upstream::new(config.upstream_timeout),
            budgets: Budgets::new(
                shared_budgets.clone(),
                config.query_rate_per_tenant,
                config.cancel_rate_per_tenant,
                config.app_limits()?,
            ),
            schedule,
        };
        let shared = Arc::new(Shared {
            store: checker.store.clone(),
            due_index: due_index.clone(),
            checker,
            sweep_now: Notify::new(),
            config,
        });
        let (stop, stopped) = watch::channel(false);
        let (writer, writer_task) = Writer::start(due_index, WRITER_QUEUE);
        let until_stopped = {
            let mut stopped = stopped.clone();
            async move {
                let _ = stopped.wait_for(|stop| *stop).await;
            }
        };
        let draining = vec![
            tokio::spawn(crate::claimer::run(shared.clone(), writer, stopped.clone())),
            tokio::spawn(crate::webhooks::run(shared.clone(), stopped.clone())),
            tokio::spawn(crate::refunds::run(shared.clone(), stopped.clone())),
            tokio::spawn(telemetry::serve_admin(
                listener,
                telemetry::server::ConnectionLimits::admin(),
                metrics,
                readiness(shared.clone()),
                None,
                until_stopped,
            )),
        ];
        let mut background = vec![
            snapshot_task,
            announcer_task,
            tokio::spawn(crate::sweeper::run(shared.clone(), stopped)),
            budgets_task,
        ];
        if shared.config.bills_dir.is_some() {
            let settlement = Arc::new(shared.settlement());
            // Aborted on stop: a day cut short keeps its rows as they were (its load is one
            // transaction) and is taken up again once its lease runs out.
            background.push(tokio::spawn(crate::bills::daily::run(settlement)));
        }
        tracing::info!(%admin_addr, "reconciler started");
        Ok(Reconciler { admin_addr, shared, stop, draining, writer: writer_task, background })
    }

    pub fn admin_addr(&self) -> SocketAddr {
        self.admin_addr
    }

    pub fn shared(&self) -> &Arc<Shared> {
        &self.shared
    }

    /// Stops claiming; lets the checks and deliveries under way finish and their follow-ups be
    /// written.
    pub async fn stop(self) {
        self.stop.send_replace(true);
        for task in self.draining {
            let _ = task.await;
        }
        let _ = self.writer.await;
        for task in self.background {
            task.abort();
        }
        self.shared.checker.budgets.shared().leave().await;
    }
}

impl Shared {
    /// What the daily close works with (its own upstream and download clients).
    pub fn settlement(&self) -> crate::bills::Settlement {
        crate::bills::Settlement::new(self.store.clone(), self.checker.snapshots.clone(), self.config.clone())
    }
}

/// Ready when Postgres answers (Redis is optional: without it the reconciler settles from
/// Postgres alone).
fn readiness(shared: Arc<Shared>) -> telemetry::Readiness {
    Arc::new(move || {
        let shared = shared.clone();
        Box::pin(async move {
            let client = shared.store.pool().get().await.map_err(|e| format!("postgres: {e}"))?;
            client.simple_query("SELECT 1").await.map_err(|e| format!("postgres: {e}"))?;
            Ok(())
        })
    })
}
