//! Rate budgets that hold across every replica of a service: a tenant's budget, an Alipay app's,
//! the same whichever gateway a call reaches.
//!
//! ```text
//! take(draw: [(budget, rate), ...])
//!   claimed calls of this draw left? (memory, no round trip) ── yes ─▶ granted
//!   │ no
//!   Redis resting after a failure? ── yes ─▶ fair share
//!   │ no
//!   GCRA script: take n calls from every budget of the draw, or none (one round trip, bounded)
//!     granted ─▶ keep n−1 for later (n = 1 near the limit)      refused ─▶ Err(wait)
//!     error or no answer in time ─▶ Redis rests for 1 s ─▶ fair share:
//!         each budget ÷ replicas last seen alive, in this process's memory (counted)
//! ```
//!
//! A draw is atomic in Redis: a call refused by one budget (the tenant's) takes nothing from the
//! others (the app's). Budgets are keyed `{prefix}:budget:{name}`; replicas announce themselves
//! under `{prefix}:replicas:{role}`.
//!
//! # Layout
//! - [`rate`]: [`Rate`]: calls per second and burst; shares and reserved parts of it.
//! - [`gcra`]: the Lua script, Redis's clock, one round trip for every budget of a draw.
//! - [`allowance`]: calls claimed ahead when far from the limit.
//! - [`fair_share`]: the in-memory share each replica enforces when Redis is away.
//! - [`replicas`]: announcements and the live count.
//!
//! Metrics: `budget_checks_total{via}` (`allowance`, `redis`, `fair_share`),
//! `budget_refusals_total{via}`, `budget_redis_failures_total`, `budget_replicas_live{role}`.

pub mod allowance;
pub mod fair_share;
pub mod gcra;
pub mod rate;
pub mod replicas;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use parking_lot::Mutex;
use redis::aio::ConnectionManager;

use allowance::Allowances;
use fair_share::FairShare;
use gcra::Gcra;
pub use rate::Rate;
use replicas::Replicas;

/// How long Redis is left alone after it failed to answer.
pub const REDIS_REST: Duration = Duration::from_secs(1);

/// Where a granted call came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Via {
    /// Calls this replica claimed ahead.
    Allowance,
    /// The shared budgets, in Redis.
    Redis,
    /// This replica's fair share, Redis being away.
    FairShare,
}

impl Via {
    pub const fn as_str(self) -> &'static str {
        match self {
            Via::Allowance => "allowance",
            Via::Redis => "redis",
            Via::FairShare => "fair_share",
        }
    }
}

/// Every budget one service's replicas share.
pub struct Budgets {
    connection: ConnectionManager,
    /// `{prefix}:budget:`
    key_prefix: String,
    role: &'static str,
    /// How long a call waits for Redis before it is judged by the fair share.
    redis_wait: Duration,
    gcra: Gcra,
    allowances: Allowances,
    fair_share: FairShare,
    replicas: Replicas,
    resting_until: Mutex<Option<Instant>>,
    /// Whether the fair share judged calls since Redis last answered (its limiters are dropped
    /// when Redis answers again, not each time a rest ends: a fresh burst every second would let
    /// a replica past its share).
    shared_again: AtomicBool,
}

impl Budgets {
    /// Budgets under `prefix` (the service's Redis prefix) for replicas of `role` (`gateway`,
    /// `reconciler`: each role's fair share counts its own replicas).
    pub fn new(connection: ConnectionManager, prefix: &str, role: &'static str, redis_wait: Duration) -> Self {
        Budgets {
            connection,
            key_prefix: format!("{prefix}:budget:"),
            role,
            redis_wait,
            gcra: Gcra::default(),
            allowances: Allowances::default(),
            fair_share: FairShare::default(),
            replicas: Replicas::new(prefix, role),
            resting_until: Mutex::new(None),
            shared_again: AtomicBool::new(true),
        }
    }

    /// Takes one call from every budget of `draw` (names and rates), or none: `Err(wait)` when
    /// one of them is spent.
    pub async fn take(&self, draw: &[(&str, Rate)]) -> Result<Via, Duration> {
        let via = self.take_from(draw).await;
        let (name, outcome) = match via {
            Ok(via) => ("budget_checks_total", via),
            Err((via, _)) => ("budget_refusals_total", via),
        };
        metrics::counter!(name, "via" => outcome.as_str()).increment(1);
        via.map_err(|(_, wait)| wait)
    }

    async fn take_from(&self, draw: &[(&str, Rate)]) -> Result<Via, (Via, Duration)> {
        let id = self.allowances.id(draw);
        let now = Instant::now();
        if self.allowances.spend(id, now) {
            return Ok(Via::Allowance);
        }
        if !self.resting(now) {
            let keys: Vec<String> = draw.iter().map(|(name, _)| format!("{}{name}", self.key_prefix)).collect();
            let budgets: Vec<(&str, Rate)> = keys.iter().map(String::as_str).zip(draw.iter().map(|d| d.1)).collect();
            let mut connection = self.connection.clone();
            let want = self.allowances.batch(id);
            let answer = tokio::time::timeout(self.redis_wait, self.gcra.take(&mut connection, &budgets, want)).await;
            if let Ok(Ok(_)) = answer
                && !self.shared_again.swap(true, Ordering::Relaxed)
            {
                self.fair_share.clear();
            }
            match answer {
                Ok(Ok(answer)) if answer.granted > 0 => {
                    let live = self.replicas.live();
                    self.allowances.claimed(id, draw, answer.granted, answer.headroom, live, now);
                    return Ok(Via::Redis);
                }
                Ok(Ok(answer)) => {
                    self.allowances.refused(id);
                    return Err((Via::Redis, answer.wait));
                }
                Ok(Err(error)) => self.rest(now, &error.to_string()),
                Err(_) => self.rest(now, "no answer in time"),
            }
        }
        self.fair_share.take(draw, self.replicas.live()).map(|()| Via::FairShare).map_err(|wait| (Via::FairShare, wait))
    }

    fn resting(&self, now: Instant) -> bool {
        self.resting_until.lock().is_some_and(|end| now < end)
    }

    fn rest(&self, now: Instant, why: &str) {
        metrics::counter!("budget_redis_failures_total").increment(1);
        self.shared_again.store(false, Ordering::Relaxed);
        let mut until = self.resting_until.lock();
        if until.is_none_or(|end| end < now) {
            tracing::warn!(
                why,
                replicas = self.replicas.live(),
                "budgets: Redis away, each replica takes its fair share"
            );
        }
        *until = Some(now + REDIS_REST);
    }

    /// Replicas of this role seen alive (this one included).
    pub fn live_replicas(&self) -> u32 {
        self.replicas.live()
    }

    /// Announces this replica now (as the loop does every second); the live count.
    pub async fn announce(&self) -> Result<u32, redis::RedisError> {
        let mut connection = self.connection.clone();
        let live = self.replicas.announce(&mut connection).await?;
        metrics::gauge!("budget_replicas_live", "role" => self.role).set(f64::from(live));
        Ok(live)
    }

    /// Announces this replica every second and forgets expired allowances, until dropped.
    pub fn spawn_announcer(self: &Arc<Self>) -> tokio::task::JoinHandle<()> {
        let budgets = Arc::downgrade(self);
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(replicas::ANNOUNCE_EVERY);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tick.tick().await;
                let Some(budgets) = budgets.upgrade() else { return };
                let wait = budgets.redis_wait.max(Duration::from_millis(100));
                if let Ok(Err(error)) = tokio::time::timeout(wait, budgets.announce()).await {
                    tracing::debug!(%error, "budgets: announcement failed");
                }
                budgets.allowances.forget_expired(Instant::now());
            }
        })
    }

    /// Leaves the live set (a clean shutdown).
    pub async fn leave(&self) {
        let mut connection = self.connection.clone();
        let _ = tokio::time::timeout(self.redis_wait, self.replicas.leave(&mut connection)).await;
    }
}
