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
//! - [`apps`]: [`AppLimits`]: Alipay's limit on each app, split between the POS traffic and
//!   settlement.
//! - [`gcra`]: the Lua script, Redis's clock, one round trip for every budget of a draw.
//! - [`allowance`]: calls claimed ahead when far from the limit.
//! - [`fair_share`]: the in-memory share each replica enforces when Redis is away.
//! - [`replicas`]: announcements and the live count.
//!
//! Metrics: `budget_checks_total{via}` (`allowance`, `redis`, `fair_share`),
//! `budget_refusals_total{via}`, `budget_redis_failures_total`, `budget_replicas_live{role}`.

pub mod allowance;
pub mod apps;
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
pub use apps::AppLimits;
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

/// A budget check waiting for Redis ([`Budgets::prepare`]).
pub struct Ask {
    id: u64,
    /// The GCRA script's `EVALSHA`.
    pub command: redis::Cmd,
    asked: Instant,
}

/// What [`Budgets::prepare`] found.
pub enum Prepared {
    /// Decided without Redis.
    Decided(Result<Via, Duration>),
    /// Redis must be asked.
    Ask(Ask),
}

/// Counts a decision (`budget_checks_total` / `budget_refusals_total` by where it was made).
fn counted(decided: Result<Via, (Via, Duration)>) -> Result<Via, Duration> {
    let (name, via) = match decided {
        Ok(via) => ("budget_checks_total", via),
        Err((via, _)) => ("budget_refusals_total", via),
    };
    metrics::counter!(name, "via" => via.as_str()).increment(1);
    decided.map_err(|(_, wait)| wait)
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
        match self.prepare(draw) {
            Prepared::Decided(decided) => decided,
            Prepared::Ask(ask) => self.send(draw, ask).await,
        }
    }

    /// Sends the [`Ask`] alone and finishes it.
    pub async fn send(&self, draw: &[(&str, Rate)], ask: Ask) -> Result<Via, Duration> {
        let mut connection = self.connection.clone();
        let answer = tokio::time::timeout(self.redis_wait, ask.command.query_async(&mut connection)).await;
        self.finish(draw, ask, answer.ok()).await
    }

    /// The first half of [`Budgets::take`]: decided here (calls claimed ahead, or the fair share
    /// while Redis rests), or a command for Redis, to send alone or in one pipeline with the
    /// request's other Redis work and hand back to [`Budgets::finish`].
    pub fn prepare(&self, draw: &[(&str, Rate)]) -> Prepared {
        let id = self.allowances.id(draw);
        let now = Instant::now();
        if self.allowances.spend(id, now) {
            return Prepared::Decided(counted(Ok(Via::Allowance)));
        }
        if self.resting(now) {
            return Prepared::Decided(self.by_fair_share(draw));
        }
        let want = self.allowances.batch(id, now);
        let keys: Vec<String> = draw.iter().map(|(name, _)| format!("{}{name}", self.key_prefix)).collect();
        let budgets: Vec<(&str, Rate)> = keys.iter().map(String::as_str).zip(draw.iter().map(|d| d.1)).collect();
        Prepared::Ask(Ask { id, command: self.gcra.command(&budgets, want), asked: now })
    }

    /// The second half of [`Budgets::take`]: Redis's answer to the [`Ask`] (`None`: none in
    /// time). A script Redis no longer has (it restarted) is loaded and asked again.
    pub async fn finish(
        &self,
        draw: &[(&str, Rate)],
        ask: Ask,
        answer: Option<redis::RedisResult<redis::Value>>,
    ) -> Result<Via, Duration> {
        let answer = match answer {
            Some(Err(error)) if error.kind() == redis::ErrorKind::Server(redis::ServerErrorKind::NoScript) => {
                let mut connection = self.connection.clone();
                let again = async {
                    self.gcra.load(&mut connection).await?;
                    ask.command.query_async::<redis::Value>(&mut connection).await
                };
                tokio::time::timeout(self.redis_wait, again).await.ok()
            }
            other => other,
        };
        let answer = match answer.map(|result| result.and_then(Gcra::answer)) {
            Some(Ok(answer)) => answer,
            Some(Err(error)) => {
                self.rest(ask.asked, &error.to_string());
                return self.by_fair_share(draw);
            }
            None => {
                self.rest(ask.asked, "no answer in time");
                return self.by_fair_share(draw);
            }
        };
        if !self.shared_again.swap(true, Ordering::Relaxed) {
            self.fair_share.clear();
        }
        if answer.granted == 0 {
            self.allowances.refused(ask.id);
            return counted(Err((Via::Redis, answer.wait)));
        }
        let live = self.replicas.live();
        self.allowances.claimed(ask.id, draw, answer.granted, answer.headroom, live, ask.asked);
        counted(Ok(Via::Redis))
    }

    fn by_fair_share(&self, draw: &[(&str, Rate)]) -> Result<Via, Duration> {
        let decided = self.fair_share.take(draw, self.replicas.live());
        counted(decided.map(|()| Via::FairShare).map_err(|wait| (Via::FairShare, wait)))
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
