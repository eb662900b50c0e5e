//! Refunds whose outcome is not known — the answer was lost (UNKNOWN), or the gateway died before
//! recording one (PENDING past its check time) — are sent again with the same parameters (the
//! refund number as it was sent, `wire_request_no`): Alipay's
//! refunds are idempotent on `out_request_no`, so the repeat answers what the first did (and makes
//! it if it never arrived). They are few, so they are claimed straight from Postgres, with a
//! lease, in small batches; several reconcilers share them.

use std::sync::Arc;

use alipay::unified::{Answer, Request};
use alipay::{OutRequestNo, OutTradeNo};
use ledger::{Refund, RefundSettlement};
use time::OffsetDateTime;
use tokio::sync::watch;
use upstream::NotSent;
use upstream::call::Call;

use crate::app::Shared;

/// Refunds claimed at once at most.
const CLAIM: i64 = 32;

/// Runs until `stop`.
pub async fn run(shared: Arc<Shared>, mut stop: watch::Receiver<bool>) {
    let poll = shared.config.refund_poll;
    while !*stop.borrow() {
        let now = OffsetDateTime::now_utc();
        match shared.store.claim_refunds(now, now + shared.config.lease, CLAIM).await {
            Ok(refunds) => {
                let mut retries = tokio::task::JoinSet::new();
                for refund in refunds {
                    let shared = Arc::clone(&shared);
                    retries.spawn(async move { retry(&shared, refund).await });
                }
                retries.join_all().await;
            }
            Err(error) => tracing::warn!(%error, "could not claim refunds"),
        }
        tokio::select! {
            () = tokio::time::sleep(poll) => {}
            _ = stop.changed() => {}
        }
    }
}

async fn retry(shared: &Shared, refund: Refund) {
    let checker = &shared.checker;
    let Some(tenant) = checker.snapshots.current().by_id(&refund.key.tenant_id).cloned() else {
        tracing::warn!(trade = %refund.key.encode(), "the refund's tenant is not in the snapshot; its lease brings it back");
        return;
    };
    let (Ok(out_trade_no), Ok(out_request_no)) =
        (refund.key.out_trade_no.parse::<OutTradeNo>(), refund.wire_request_no.parse::<OutRequestNo>())
    else {
        tracing::error!(trade = %refund.key.encode(), "the refund's numbers cannot be sent to Alipay");
        return;
    };
    let call = RetryRefund { shared, refund: &refund, out_trade_no, out_request_no };
    shared.checker.upstream.make(&tenant, &call).await;
}

/// A refund sent again with the parameters it was first sent with.
struct RetryRefund<'a> {
    shared: &'a Shared,
    refund: &'a Refund,
    out_trade_no: OutTradeNo,
    out_request_no: OutRequestNo,
}

impl Call for RetryRefund<'_> {
    type Intent = ();
    /// The metric label of what was recorded.
    type Done = &'static str;

    fn name(&self) -> &'static str {
        "refund"
    }

    async fn intent(&self) -> Result<(), Self::Done> {
        Ok(())
    }

    fn request<'a>(&'a self, (): &'a ()) -> Request<'a> {
        Request::Refund {
            out_trade_no: &self.out_trade_no,
            out_request_no: &self.out_request_no,
            amount: self.refund.amount,
            reason: self.refund.reason.as_deref(),
        }
    }

    async fn record(&self, (): (), answer: Result<Answer, NotSent>) -> Self::Done {
        let (shared, refund) = (self.shared, self.refund);
        let now = OffsetDateTime::now_utc();
        let next_check_at = shared.checker.schedule.next_refund(refund.created_at, now);
        let (settlement, result) = match answer {
            Ok(answer) => {
                let settlement = RefundSettlement::of_answer(&answer, self.out_trade_no.as_str(), now, next_check_at);
                let result = match settlement {
                    RefundSettlement::Refunded { .. } => "refunded",
                    RefundSettlement::Failed { .. } => "failed",
                    RefundSettlement::Unknown { .. } => "unknown",
                };
                (settlement, result)
            }
            // It may have been sent before: not sending it now proves nothing.
            Err(not_sent) => (RefundSettlement::Unknown { reason: not_sent.to_string(), next_check_at }, "not_sent"),
        };
        if let Err(error) = shared.store.record_refund(refund, &settlement).await {
            tracing::warn!(%error, trade = %refund.key.encode(), "refund outcome not recorded; its lease brings it back");
        }
        result
    }

    fn outcome(&self, result: &Self::Done) -> &'static str {
        result
    }
}
