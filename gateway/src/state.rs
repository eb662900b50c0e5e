//! What every request may use, built once at start.

use std::sync::Arc;

use ledger::{Announcer, DueIndex, Finals, Recheck, Store, Trade, TradeKey};
use telemetry::server::BodyReader;
use tenants::Snapshots;
use tenants::snapshot::Tenant;
use time::{OffsetDateTime, UtcOffset};
use tokio_util::task::TaskTracker;

use crate::api::Made;
use crate::api::calls::Refunded;
use crate::config::Config;
use crate::inflight::Inflight;
use crate::limits::Budgets;
use crate::problem::ApiError;
use crate::replay::Replays;
use upstream::Upstream;

pub struct AppState {
    pub config: Config,
    /// Reads request bodies before authentication: size, deadline and the byte budget.
    pub bodies: BodyReader,
    pub snapshots: Arc<Snapshots>,
    pub store: Store,
    pub due_index: DueIndex,
    pub finals: Finals,
    pub announcer: Announcer,
    pub upstream: Upstream,
    pub budgets: Budgets,
    /// Whether a request's nonce was used before, here or on any replica.
    pub replays: Replays,
    /// Payments and QR orders under way here, by trade.
    pub payments: Inflight<TradeKey, Result<Made<Trade>, ApiError>>,
    /// Cancels under way here, by trade.
    pub cancels: Inflight<TradeKey, Result<Made<Trade>, ApiError>>,
    /// Refunds under way here, by trade and `out_request_no`.
    pub refunds: Inflight<(TradeKey, String), Result<Made<Refunded>, ApiError>>,
    /// The detached call-then-record tasks; shutdown waits for them.
    pub tasks: TaskTracker,
    /// Base of `notify_url`.
    pub public_url: String,
    pub report_offset: UtcOffset,
}

impl AppState {
    /// Where Alipay sends `tenant`'s notifications (none when notifications are off).
    pub fn notify_url(&self, tenant: &Tenant) -> Option<String> {
        self.config.notifications.then(|| format!("{}/notify/{}", self.public_url, tenant.id))
    }

    /// When the reconciler looks at `trade` if its outcome is not proven, and when it cancels it.
    pub fn recheck(&self, trade: &Trade) -> Recheck {
        let config = &self.config;
        Recheck { next_check_at: trade.created_at + config.first_check, deadline: trade.created_at + config.deadline }
    }

    /// `key` became final here: wakes this gateway's waiters at once, and announces it to every
    /// other process's.
    pub fn announce_final(&self, key: &TradeKey) {
        self.finals.wake(key);
        self.announcer.announce(key);
    }

    /// After a call's outcome is recorded: wakes and tells the waiters if the trade is final, and
    /// arms the due-index if the reconciler still has work on it.
    pub async fn after_recording(&self, trade: &Trade) {
        if trade.state.is_final() {
            self.announce_final(&trade.key);
        }
        if let (true, Some(at)) = (trade.is_open(), trade.next_check_at) {
            self.arm(&trade.key, at).await;
        }
    }

    /// Arms the due-index for `key` at `at`; Postgres stays the truth, so a failure only counts.
    pub async fn arm(&self, key: &TradeKey, at: OffsetDateTime) {
        if let Err(error) = self.due_index.arm(key, at).await {
            metrics::counter!("gateway_due_index_arm_failures_total").increment(1);
            tracing::warn!(%error, "due-index not armed; the reconciler's sweeper will re-arm from Postgres");
        }
    }
}
