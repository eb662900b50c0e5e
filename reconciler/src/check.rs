//! One check of one open trade: query it, cancel it or close it as [`Schedule`] says, record what
//! Alipay proved by compare-and-set (with the merchant's webhook event), and say when to look
//! again.
//!
//! The merchant's webhook event is written with the settlement when the tenant has a webhook URL.
//!
//! Two rules keep several reconcilers (and a paused one) from ever disagreeing about money:
//! - Before a cancel is sent, the trade is marked as being cancelled by compare-and-set; a
//!   reconciler holding an older version is refused and sends nothing. Once marked, every
//!   reconciler cancels it; none settles it from a query.
//! - A query's result is written only onto the version it was read at; a late one is refused
//!   and counted. A cancel's result is a fact of money moved, so it is written onto whatever
//!   version is current, wherever the state machine allows.

use std::sync::Arc;

use alipay::OutTradeNo;
use alipay::openapi::trade::TradeStatus;
use alipay::unified::{Answer, Dialect, Request};
use alipay::{Outcome, UnknownReason};
use ledger::{
    Announcer, CancelAction, CancelRecorded, Recorded, Settlement, Store, StoreError, Trade, TradeState, record_cancel,
};
use tenants::Snapshots;
use tenants::snapshot::Tenant;
use time::OffsetDateTime;
use upstream::call::Call;
use upstream::{NotSent, Upstream};

use crate::budget::Budgets;
use crate::plan::{Schedule, Step};

/// What becomes of a trade after a check.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Next {
    /// Final: nothing more to do.
    Final,
    /// Look again at this time.
    At(OffsetDateTime),
}

/// Everything a check uses.
pub struct Checker {
    pub store: Store,
    pub snapshots: Arc<Snapshots>,
    pub upstream: Upstream,
    pub budgets: Budgets,
    pub schedule: Schedule,
    /// Tells the gateways' waiters (`?wait=`) that a trade is final.
    pub announcer: Announcer,
}

/// What a query showed.
enum Shown {
    Paid(Settlement),
    Closed,
    /// Still open at Alipay, not there yet, or no proof either way.
    Open,
}

fn count(step: Step, result: &'static str) {
    metrics::counter!("reconciler_checks_total", "step" => step.as_str(), "result" => result).increment(1);
}

fn now() -> OffsetDateTime {
    OffsetDateTime::now_utc()
}

impl Checker {
    /// Checks `trade` (as just read from Postgres), which was due at `due` when known.
    pub async fn check(&self, trade: Trade, due: Option<OffsetDateTime>) -> Next {
        if !trade.is_open() {
            return Next::Final;
        }
        let started = now();
        let Some(tenant) = self.snapshots.current().by_id(&trade.key.tenant_id).cloned() else {
            count(Step::Query, "no_tenant");
            tracing::warn!(trade = %trade.key.encode(), "the trade's tenant is not in the snapshot; trying later");
            return Next::At(started + self.schedule.query_interval);
        };
        let Ok(out_trade_no) = trade.key.out_trade_no.parse::<OutTradeNo>() else {
            count(Step::Query, "unreadable");
            tracing::error!(trade = %trade.key.encode(), "the trade's number cannot be sent to Alipay");
            return Next::At(started + self.schedule.cancel_retry_max);
        };
        let step = self.schedule.step(&trade, tenant.alipay_dialect() == Dialect::OpenApi, started);
        if let Err(wait) = self.budgets.take(&tenant, step).await {
            count(step, "over_budget");
            return Next::At(started + wait);
        }
        if let Some(due) = due {
            let late = (started - due).max(time::Duration::ZERO).as_seconds_f64();
            metrics::histogram!("reconciler_timer_lateness_seconds", "step" => step.as_str()).record(late);
        }
        match step {
            Step::Query => self.query(&tenant, &out_trade_no, trade, due).await,
            Step::Cancel | Step::Close => self.end(&tenant, &out_trade_no, trade, step).await,
        }
    }

    async fn ask(&self, tenant: &Tenant, out_trade_no: &OutTradeNo, trade: &Trade) -> (Shown, &'static str) {
        self.upstream.make(tenant, &QueryCall { out_trade_no, trade }).await.done
    }

    async fn query(
        &self,
        tenant: &Tenant,
        out_trade_no: &OutTradeNo,
        trade: Trade,
        due: Option<OffsetDateTime>,
    ) -> Next {
        let (shown, result) = self.ask(tenant, out_trade_no, &trade).await;
        count(Step::Query, result);
        match shown {
            Shown::Paid(paid) => self.record(tenant, &trade, &paid).await,
            // Closed unpaid, or paid and fully refunded: for an order code that expired, closed;
            // otherwise a cancel (idempotent) says which.
            Shown::Closed if trade.state == TradeState::Waiting => {
                self.record_cancel(tenant, trade, CancelAction::Close).await
            }
            Shown::Closed => self.end(tenant, out_trade_no, trade, Step::Cancel).await,
            Shown::Open => Next::At(self.schedule.next_query(&trade, due, now())),
        }
    }

    /// Cancels the trade (or, for an expired order code, closes it: `step`) and records what
    /// Alipay did.
    async fn end(&self, tenant: &Tenant, out_trade_no: &OutTradeNo, trade: Trade, step: Step) -> Next {
        let call = EndCall { checker: self, tenant, out_trade_no, trade, step };
        let (next, result) = self.upstream.make(tenant, &call).await.done;
        count(step, result);
        next
    }

    /// Alipay refused to cancel (or close): it may have been paid and finished, or closed
    /// already. Asks, records what is proven, and otherwise keeps retrying. A paid trade Alipay
    /// still holds paid will not be reversed: the cancel asked for is over.
    async fn after_failed_cancel(&self, tenant: &Tenant, out_trade_no: &OutTradeNo, trade: Trade) -> Next {
        let (shown, result) = self.ask(tenant, out_trade_no, &trade).await;
        count(Step::Query, result);
        match shown {
            Shown::Paid(_) if trade.state.is_paid() => self.reversal_refused(&trade).await,
            Shown::Paid(paid) => self.record(tenant, &trade, &paid).await,
            Shown::Closed => self.record_cancel(tenant, trade, CancelAction::Close).await,
            Shown::Open => Next::At(self.schedule.next_cancel(&trade, now())),
        }
    }

    /// Writes what a query proved onto the version it was read at (a late write is refused).
    async fn record(&self, tenant: &Tenant, trade: &Trade, settlement: &Settlement) -> Next {
        match self.write(tenant, trade, settlement).await {
            Ok(Recorded::Applied(done)) => {
                self.finished(&done);
                Next::Final
            }
            Ok(Recorded::Stale(current)) => {
                refused_write(trade, &current, "settlement");
                self.after_refused(&current)
            }
            Err(error) => self.store_failed(trade, &error),
        }
    }

    /// Writes a confirmed cancel onto the current version (money moved: the ledger must say so).
    async fn record_cancel(&self, tenant: &Tenant, trade: Trade, action: CancelAction) -> Next {
        let written = record_cancel(trade.clone(), action, |current, settlement| async move {
            self.write(tenant, &current, &settlement).await
        })
        .await;
        match written {
            Ok(CancelRecorded::Cancelled(done)) => {
                self.finished(&done);
                Next::Final
            }
            Ok(CancelRecorded::WasCancelled(_)) => Next::Final,
            Ok(CancelRecorded::Contradicted(current)) => {
                metrics::counter!("reconciler_contradictions_total").increment(1);
                tracing::error!(trade = %current.key.encode(), state = %current.state, action = action.as_str(),
                    "Alipay confirmed a cancel of a trade the ledger holds final; look into it");
                Next::Final
            }
            Ok(CancelRecorded::Moving(_)) => Next::At(now()),
            Err(error) => self.store_failed(&trade, &error),
        }
    }

    /// Ends the cancel of a paid trade that Alipay refused to reverse; the trade stays paid.
    async fn reversal_refused(&self, trade: &Trade) -> Next {
        metrics::counter!("reconciler_reversals_refused_total").increment(1);
        tracing::warn!(trade = %trade.key.encode(), "Alipay refused to reverse a paid trade; it stays paid");
        match self.store.cancel_refused(trade).await {
            Ok(Recorded::Applied(_)) => Next::Final,
            Ok(Recorded::Stale(current)) => {
                refused_write(trade, &current, "cancel refusal");
                if current.is_open() { Next::At(now() + self.schedule.cancel_retry) } else { Next::Final }
            }
            Err(error) => self.store_failed(trade, &error),
        }
    }

    /// Records `settlement` onto `trade` as read, with the merchant's webhook event when the tenant
    /// takes webhooks.
    async fn write(&self, tenant: &Tenant, trade: &Trade, settlement: &Settlement) -> Result<Recorded, StoreError> {
        if tenant.webhook_url.is_some() {
            self.store.record_and_tell(trade, settlement).await
        } else {
            self.store.record(trade, settlement).await
        }
    }

    /// After a refused write: done if someone else finished the trade, else look again soon.
    fn after_refused(&self, current: &Trade) -> Next {
        if current.is_open() { Next::At(now() + self.schedule.cancel_retry) } else { Next::Final }
    }

    fn finished(&self, trade: &Trade) {
        self.announcer.announce(&trade.key);
        metrics::counter!("reconciler_settled_total", "state" => trade.state.as_str()).increment(1);
        if let Some(action) = trade.cancel_action.filter(|_| trade.state == TradeState::Cancelled) {
            metrics::counter!("reconciler_cancels_total", "action" => action.as_str()).increment(1);
        }
    }

    fn store_failed(&self, trade: &Trade, error: &StoreError) -> Next {
        metrics::counter!("reconciler_store_errors_total").increment(1);
        tracing::warn!(%error, trade = %trade.key.encode(), "ledger write failed; trying again");
        Next::At(now() + self.schedule.cancel_retry)
    }
}

fn unknown_result(reason: &UnknownReason) -> &'static str {
    match reason {
        UnknownReason::Timeout => "timeout",
        _ => "unknown",
    }
}

fn refused_write(stale: &Trade, current: &Trade, what: &'static str) {
    metrics::counter!("reconciler_stale_writes_total", "write" => what).increment(1);
    tracing::info!(
        trade = %stale.key.encode(),
        read_version = stale.version,
        current_version = current.version,
        state = %current.state,
        "{what} refused: the trade moved since it was read"
    );
}

/// A query of a trade: what Alipay shows of it.
struct QueryCall<'a> {
    out_trade_no: &'a OutTradeNo,
    trade: &'a Trade,
}

impl Call for QueryCall<'_> {
    type Intent = ();
    type Done = (Shown, &'static str);

    fn name(&self) -> &'static str {
        "query"
    }

    async fn intent(&self) -> Result<(), Self::Done> {
        Ok(())
    }

    fn request<'a>(&'a self, (): &'a ()) -> Request<'a> {
        Request::Query { out_trade_no: self.out_trade_no }
    }

    async fn record(&self, (): (), answer: Result<Answer, NotSent>) -> Self::Done {
        let trade = self.trade;
        let answer = match answer {
            Ok(answer) => answer,
            Err(not_sent) => {
                tracing::warn!(%not_sent, trade = %trade.key.encode(), "query not sent");
                return (Shown::Open, "not_sent");
            }
        };
        match (&answer.outcome, answer.facts.trade_status) {
            (Outcome::Success, Some(TradeStatus::TradeSuccess | TradeStatus::TradeFinished)) => {
                match Settlement::paid(trade, &answer.facts, now()) {
                    Some(paid) => (Shown::Paid(paid), "paid"),
                    None => {
                        tracing::error!(trade = %trade.key.encode(), "Alipay's answer names another trade or amount");
                        (Shown::Open, "mismatch")
                    }
                }
            }
            (Outcome::Success, Some(TradeStatus::TradeClosed)) => (Shown::Closed, "closed"),
            (Outcome::Success, _) => (Shown::Open, "waiting"),
            (Outcome::Failed(failure), _) if failure.is("TRADE_NOT_EXIST") => (Shown::Open, "not_exist"),
            (Outcome::Failed(_), _) => (Shown::Open, "refused"),
            (Outcome::Unknown(_), _) => (Shown::Open, "unknown"),
        }
    }

    fn outcome(&self, (_, result): &Self::Done) -> &'static str {
        result
    }
}

/// A cancel (or, for an expired order code, a close) the reconciler sends: the trade is marked
/// as being cancelled first, so no other reconciler settles it from a query meanwhile.
struct EndCall<'a> {
    checker: &'a Checker,
    tenant: &'a Tenant,
    out_trade_no: &'a OutTradeNo,
    trade: Trade,
    step: Step,
}

impl Call for EndCall<'_> {
    type Intent = Trade;
    type Done = (Next, &'static str);

    fn name(&self) -> &'static str {
        match self.step {
            Step::Close => "close",
            _ => "cancel",
        }
    }

    async fn intent(&self) -> Result<Trade, Self::Done> {
        let (checker, trade) = (self.checker, &self.trade);
        if self.step == Step::Close || trade.cancel_requested {
            return Ok(trade.clone());
        }
        match checker.store.mark_cancelling(trade).await {
            Ok(Recorded::Applied(marked)) => Ok(marked),
            Ok(Recorded::Stale(current)) => {
                refused_write(trade, &current, "cancel mark");
                Err((checker.after_refused(&current), "stale"))
            }
            Err(error) => Err((checker.store_failed(trade, &error), "store_error")),
        }
    }

    fn request<'a>(&'a self, _trade: &'a Trade) -> Request<'a> {
        let out_trade_no = self.out_trade_no;
        if self.step == Step::Close { Request::Close { out_trade_no } } else { Request::Cancel { out_trade_no } }
    }

    async fn record(&self, trade: Trade, answer: Result<Answer, NotSent>) -> Self::Done {
        let (checker, tenant, step) = (self.checker, self.tenant, self.step);
        match answer {
            Ok(Answer { outcome: Outcome::Success, facts }) => {
                let action = match step {
                    Step::Close => CancelAction::Close,
                    _ => CancelAction::of_confirmed(facts.action, &trade),
                };
                (checker.record_cancel(tenant, trade, action).await, "done")
            }
            // An order code never scanned is no trade at Alipay; expired, it can no longer be paid.
            Ok(Answer { outcome: Outcome::Failed(failure), .. })
                if step == Step::Close && failure.is("TRADE_NOT_EXIST") =>
            {
                (checker.record_cancel(tenant, trade, CancelAction::Close).await, "never_scanned")
            }
            Ok(Answer { outcome: Outcome::Failed(failure), facts }) => {
                tracing::warn!(%failure, trade = %trade.key.encode(), retry = ?facts.retry_flag, step = step.as_str(),
                    "Alipay refused; asking what happened");
                (checker.after_failed_cancel(tenant, self.out_trade_no, trade).await, "refused")
            }
            Ok(Answer { outcome: Outcome::Unknown(reason), .. }) => {
                (Next::At(checker.schedule.next_cancel(&trade, now())), unknown_result(&reason))
            }
            Err(not_sent) => {
                tracing::warn!(%not_sent, trade = %trade.key.encode(), step = step.as_str(), "not sent");
                (Next::At(checker.schedule.next_cancel(&trade, now())), "not_sent")
            }
        }
    }

    fn outcome(&self, (_, result): &Self::Done) -> &'static str {
        result
    }
}
