//! Starting and stopping the gateway: migrations (if asked), the pools, the tenant snapshot, the
//! due-index, the settlement listener, the partner API and admin listeners. Stopping drains
//! open requests and lets every detached call-then-record task finish.
//!
//! Three pools, each with a wait limit: the main one (reads, cancels, refunds, notifications,
//! the snapshot), the batched writes' (intents and outcomes), and the sales reports' own small
//! one (each report one backend, on one core), so a tenant's reports can take neither the
//! connections payments need nor more of Postgres than that pool's size in cores.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use ledger::{Announcer, DueIndex, Finals, Store};
use telemetry::server::BodyReader;
use tenants::admin::AdminToken;

use crate::admin_bills::BillsAdmin;
use tenants::snapshot::{Loader, RefreshConfig};
use tenants::{Keyring, Registry};
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio_util::task::TaskTracker;

use crate::config::Config;
use crate::inflight::Inflight;
use crate::limits::Budgets;
use crate::replay::{Nonces, Replays, SeenSet};
use crate::state::AppState;
use upstream::Upstream;

/// Requests whose nonces one generation of this process's memory remembers: two generations take
/// at most 36 MiB (2^21 slots of 9 bytes each), and cover the whole window up to 1,600
/// requests/s, the last 110 s or more at 9,000/s. It is only the first filter: Redis holds every
/// nonce of the window for all replicas ([`crate::replay`]).
const NONCES_PER_GENERATION: usize = 1_000_000;

/// Secrets the gateway is given (never part of [`Config`]).
pub struct Secrets {
    pub keyring: Arc<Keyring>,
    /// Opens the tenants admin API on the admin listener; without it that API is off.
    pub admin_token: Option<AdminToken>,
}

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

/// A running gateway.
pub struct Gateway {
    addr: SocketAddr,
    admin_addr: SocketAddr,
    state: Arc<AppState>,
    stop: watch::Sender<bool>,
    servers: Vec<JoinHandle<()>>,
    background: Vec<JoinHandle<()>>,
}

/// How long stopping waits for detached payment tasks (beyond the partner listener's drain,
/// [`crate::config::DRAIN_GRACE`]).
const TASK_GRACE: Duration = Duration::from_secs(30);

fn bind(addr: SocketAddr) -> Result<(TcpListener, SocketAddr), StartError> {
    let listener = telemetry::server::bind(addr).map_err(|e| StartError::Bind(addr, e))?;
    let local = listener.local_addr().map_err(|e| StartError::Bind(addr, e))?;
    Ok((listener, local))
}

impl Gateway {
    pub async fn start(config: Config, secrets: Secrets) -> Result<Gateway, StartError> {
        let started_secs = time::OffsetDateTime::now_utc().unix_timestamp();
        let config = config.validate()?;
        if config.migrate_on_start {
            tenants::db::migrate(&config.database_url).await.map_err(|e| StartError::Migrate(e.to_string()))?;
            ledger::store::migrate(&config.database_url).await.map_err(|e| StartError::Migrate(e.to_string()))?;
        }
        let database = |e: tenants::db::DbError| StartError::Database(e.to_string());
        let pool = tenants::db::bounded_pool(&config.database_url, config.pool_limits()).map_err(database)?;
        let given_back = ledger::store::GIVEN_BACK_WRITE_CONNECTIONS;
        let write_limits = config.write_pool_limits(ledger::store::WRITE_CONNECTIONS - given_back);
        let writes = tenants::db::pool_planning_each_time(&config.database_url, write_limits).map_err(database)?;
        // The outcomes Alipay gives back and the announcements (both may be lost in a crash of
        // Postgres: docs/durability.md) commit without waiting for the flush: one durable commit
        // per pay, its intent's.
        let unflushed_limits = config.write_pool_limits(given_back + 1).commit_without_flush();
        let unflushed =
            tenants::db::pool_planning_each_time(&config.database_url, unflushed_limits).map_err(database)?;
        let reports = tenants::db::bounded_pool(&config.database_url, config.report_pool_limits()).map_err(database)?;
        let refresh =
            RefreshConfig { database_url: config.database_url.clone(), full_reload_every: config.snapshot_reload };
        let (snapshots, snapshot_task) =
            tenants::snapshot::start(Loader::new(pool.clone(), secrets.keyring.clone()), refresh).await?;
        let due_index = DueIndex::new(&config.redis_url, &config.redis_prefix)?;
        let finals = Finals::default();
        let finals_task = tokio::spawn(finals.clone().listen(config.database_url.clone()));
        let (announcer, announcer_task) = Announcer::start(unflushed.clone());
        let metrics = telemetry::metrics()?;
        let (listener, addr) = bind(config.listen)?;
        let (admin_listener, admin_addr) = bind(config.admin_listen)?;
        let public_url = config.public_url.clone().unwrap_or_else(|| format!("http://{addr}"));
        let report_offset = config.report_offset()?;
        let bodies = telemetry::server::BodyReader::new("partner", config.max_body_bytes, config.body_timeout)
            .with_budget(config.unauthenticated_body_budget_bytes);
        let shared_budgets = Arc::new(budgets::Budgets::new(
            due_index.connection(),
            &config.redis_prefix,
            "gateway",
            config.budget_redis_timeout,
        ));
        let budgets_task = shared_budgets.spawn_announcer();
        let window = 2 * config.clock_skew;
        let seen = SeenSet::new(due_index.connection(), &config.redis_prefix, window);
        let here = Nonces::new(i64::try_from(window.as_secs()).unwrap_or(i64::MAX), NONCES_PER_GENERATION);
        let state = Arc::new(AppState {
            bodies,
            upstream: Upstream::new(config.upstream_timeout),
            replays: Replays::new(here, seen, config.nonce_redis_timeout, started_secs),
            store: Store::with_write_pools(pool.clone(), writes, unflushed).with_report_pool(reports),
            snapshots,
            due_index,
            finals,
            announcer,
            budgets: Budgets::new(
                shared_budgets,
                config.report_rate_per_minute,
                config.report_burst,
                config.app_limits()?,
            ),
            payments: Inflight::default(),
            cancels: Inflight::default(),
            refunds: Inflight::default(),
            tasks: TaskTracker::new(),
            public_url,
            report_offset,
            config,
        });
        let (stop, stopped) = watch::channel(false);
        let until_stopped = |mut stopped: watch::Receiver<bool>| async move {
            let _ = stopped.wait_for(|stop| *stop).await;
        };
        let partner = {
            let limits = state.config.partner_limits();
            let state = state.clone();
            // Boxed: hyper keeps a connection's in-flight slot, sized for the handler's future
            // (5.7 KB), for the connection's whole life; boxed, it holds a pointer between requests.
            let handler = move |request| Box::pin(crate::routes::handle(state.clone(), request));
            tokio::spawn(telemetry::server::serve(listener, "partner", limits, handler, until_stopped(stopped.clone())))
        };
        let admin_bodies = tenants::admin::body_reader("admin", state.config.body_timeout);
        let admin_routes = secrets.admin_token.map(|token| {
            let registry = Registry::new(pool.clone(), Some(secrets.keyring.clone()));
            let bills = Arc::new(BillsAdmin { store: state.store.clone(), registry: registry.clone() });
            admin_routes(registry, token, admin_bodies, bills)
        });
        let admin = tokio::spawn(telemetry::serve_admin(
            admin_listener,
            state.config.admin_limits(),
            metrics,
            readiness(state.clone()),
            admin_routes,
            until_stopped(stopped),
        ));
        tracing::info!(%addr, %admin_addr, "gateway started");
        Ok(Gateway {
            addr,
            admin_addr,
            state,
            stop,
            servers: vec![partner, admin],
            background: vec![snapshot_task, finals_task, announcer_task, budgets_task],
        })
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    pub fn admin_addr(&self) -> SocketAddr {
        self.admin_addr
    }

    pub fn state(&self) -> &Arc<AppState> {
        &self.state
    }

    /// Stops accepting, drains open requests, lets detached payment tasks finish, then stops.
    pub async fn stop(self) {
        self.stop.send_replace(true);
        for server in self.servers {
            let _ = server.await;
        }
        self.state.tasks.close();
        if tokio::time::timeout(TASK_GRACE, self.state.tasks.wait()).await.is_err() {
            tracing::warn!("payment tasks still running after the grace period; the reconciler will settle them");
        }
        for task in self.background {
            task.abort();
        }
        self.state.budgets.shared().leave().await;
    }
}

fn admin_routes(
    registry: Registry,
    token: AdminToken,
    bodies: BodyReader,
    bills: Arc<BillsAdmin>,
) -> telemetry::AdminRoutes {
    Arc::new(move |request| {
        let (registry, token, bodies, bills) = (registry.clone(), token.clone(), bodies.clone(), bills.clone());
        Box::pin(async move { tenants::admin::handle(&registry, &token, &bodies, Some(&*bills), request).await })
    })
}

/// Ready when Postgres and Redis answer and trade settlements are being heard.
fn readiness(state: Arc<AppState>) -> telemetry::Readiness {
    Arc::new(move || {
        let state = state.clone();
        Box::pin(async move {
            let client = state.store.pool().get().await.map_err(|e| format!("postgres: {e}"))?;
            client.simple_query("SELECT 1").await.map_err(|e| format!("postgres: {e}"))?;
            state.due_index.ping().await.map_err(|e| format!("redis: {e}"))?;
            if !*state.finals.listening().borrow() {
                return Err("not yet listening for trade settlements".into());
            }
            Ok(())
        })
    })
}
