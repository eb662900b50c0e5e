//! What Alipay's answers prove about a trade, as the settlement to record, and the one way a
//! confirmed cancel is written. The gateway (answers to pay, precreate, cancel, refund) and the
//! reconciler (answers to query, cancel, close, refund) read answers through these alone.

use std::fmt::Display;
use std::future::Future;

use alipay::Outcome;
use alipay::openapi::trade::CancelAction as AlipayCancelAction;
use alipay::unified::{Answer, Facts};
use time::OffsetDateTime;

use crate::store::{Recorded, StoreError};
use crate::{CancelAction, RefundSettlement, Settlement, Trade, TradeState};

/// When an unproven trade is looked at next, and when it is over (cancelled, or closed).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Recheck {
    pub next_check_at: OffsetDateTime,
    pub deadline: OffsetDateTime,
}

impl Recheck {
    fn unknown(self, reason: String) -> Settlement {
        Settlement::Unknown { reason, next_check_at: self.next_check_at, deadline: self.deadline }
    }
}

impl Settlement {
    /// Paid, as `facts` show, when they are about `trade` (its number and amount); `None` when
    /// they name another trade or amount, which proves nothing.
    pub fn paid(trade: &Trade, facts: &Facts, now: OffsetDateTime) -> Option<Settlement> {
        trade.matches(facts).then(|| Settlement::Paid {
            trade_no: facts.trade_no.clone(),
            buyer_user_id: facts.buyer_user_id.clone(),
            paid_at: now,
        })
    }

    /// What the answer to a pay of `trade` proves; anything short of proof is UNKNOWN, looked at
    /// again as `unknown` says.
    pub fn of_pay(trade: &Trade, answer: &Answer, now: OffsetDateTime, unknown: Recheck) -> Settlement {
        match &answer.outcome {
            Outcome::Success => Settlement::paid(trade, &answer.facts, now)
                .unwrap_or_else(|| unknown.unknown("the answer does not match the trade".into())),
            Outcome::Failed(failure) => {
                Settlement::Failed { code: failure.reason_code().to_owned(), message: failure.message.clone() }
            }
            Outcome::Unknown(reason) => unknown.unknown(reason.to_string()),
        }
    }

    /// What the answer to an order QR code's precreate proves: the code, waiting for the buyer
    /// as `waiting` says, or a refusal, or nothing (`unknown`).
    pub fn of_precreate(answer: &Answer, waiting: Recheck, unknown: Recheck) -> Settlement {
        match (&answer.outcome, &answer.facts.qr_code) {
            (Outcome::Success, Some(qr_code)) => Settlement::Waiting {
                qr_code: qr_code.clone(),
                next_check_at: waiting.next_check_at,
                deadline: waiting.deadline,
            },
            (Outcome::Failed(failure), _) => {
                Settlement::Failed { code: failure.reason_code().to_owned(), message: failure.message.clone() }
            }
            (Outcome::Unknown(reason), _) => unknown.unknown(reason.to_string()),
            (Outcome::Success, None) => unknown.unknown("no QR code in the answer".into()),
        }
    }

    /// A call that never left (it could not be built or signed): nothing reached Alipay, so the
    /// trade failed.
    pub fn not_sent(not_sent: impl Display) -> Settlement {
        Settlement::Failed { code: NOT_SENT.into(), message: Some(not_sent.to_string()) }
    }
}

/// The code a trade or refund failed with when its call never left.
pub const NOT_SENT: &str = "REQUEST_NOT_SENT";

impl RefundSettlement {
    /// What Alipay's answer to a refund of `out_trade_no` proves; an answer about another trade
    /// proves nothing (look again at `next_check_at`).
    pub fn of_answer(
        answer: &Answer,
        out_trade_no: &str,
        now: OffsetDateTime,
        next_check_at: OffsetDateTime,
    ) -> RefundSettlement {
        let unknown = |reason: String| RefundSettlement::Unknown { reason, next_check_at };
        match &answer.outcome {
            _ if answer.facts.out_trade_no.as_deref().is_some_and(|no| no != out_trade_no) => {
                unknown("the answer is about another trade".into())
            }
            Outcome::Success => RefundSettlement::Refunded { at: now },
            Outcome::Failed(failure) => {
                RefundSettlement::Failed { code: failure.reason_code().to_owned(), message: failure.message.clone() }
            }
            Outcome::Unknown(reason) => unknown(reason.to_string()),
        }
    }
}

impl CancelAction {
    /// What a cancel Alipay confirmed did to `trade`: what Alipay says it did, or, where it says
    /// nothing (a trade Alipay never knew, or an answer without `action`), a refund if the ledger
    /// holds the trade paid and a close otherwise.
    pub fn of_confirmed(said: Option<AlipayCancelAction>, trade: &Trade) -> CancelAction {
        match said {
            Some(AlipayCancelAction::Refund) => CancelAction::Refund,
            Some(AlipayCancelAction::Close) => CancelAction::Close,
            None if trade.state.is_paid() => CancelAction::Refund,
            None => CancelAction::Close,
        }
    }
}

/// Where a confirmed cancel left the trade.
#[derive(Debug)]
pub enum CancelRecorded {
    /// CANCELLED by this write.
    Cancelled(Trade),
    /// CANCELLED already, by another writer.
    WasCancelled(Trade),
    /// The ledger holds the trade final in a state that cannot become CANCELLED, yet Alipay
    /// confirmed the cancel: the two disagree about money.
    Contradicted(Trade),
    /// Other writers kept moving it; try again.
    Moving(Trade),
}

/// Writes a confirmed cancel onto the trade's current version (the money moved, so the ledger
/// must say so whatever happened to the trade meanwhile), following other writers a few times.
/// `write` records the settlement onto a version (with or without the merchant's webhook event).
pub async fn record_cancel<W, F>(trade: Trade, action: CancelAction, mut write: W) -> Result<CancelRecorded, StoreError>
where
    W: FnMut(Trade, Settlement) -> F,
    F: Future<Output = Result<Recorded, StoreError>>,
{
    let mut current = trade;
    for _ in 0..3 {
        if current.state == TradeState::Cancelled {
            return Ok(CancelRecorded::WasCancelled(current));
        }
        if !current.state.can_become(TradeState::Cancelled) {
            return Ok(CancelRecorded::Contradicted(current));
        }
        match write(current.clone(), Settlement::Cancelled { action }).await? {
            Recorded::Applied(done) => return Ok(CancelRecorded::Cancelled(done)),
            Recorded::Stale(now) => current = now,
        }
    }
    Ok(CancelRecorded::Moving(current))
}
