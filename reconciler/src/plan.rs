//! What to do with an open trade now, and when to look at it next (design §4): pure, so the
//! schedule is tested without clocks.
//!
//! - UNKNOWN (and a PAYING intent whose gateway never recorded an answer): query every
//!   `query_interval`, on the grid of the first check; at the deadline, or once a cancel was asked
//!   for, cancel, retrying every `cancel_retry` and then backing off.
//! - WAITING (an order QR code): query every `qr_interval` until it expires, then close it
//!   (cancel where the dialect has no close, and when the POS asked for a cancel).

use std::time::Duration;

use ledger::{Trade, TradeState};
use time::OffsetDateTime;

/// What to ask Alipay.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    Query,
    Cancel,
    Close,
}

impl Step {
    pub const fn as_str(self) -> &'static str {
        match self {
            Step::Query => "query",
            Step::Cancel => "cancel",
            Step::Close => "close",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Schedule {
    pub query_interval: Duration,
    pub qr_interval: Duration,
    /// For trades that carry no deadline (PAYING intents): after creation.
    pub deadline: Duration,
    pub cancel_retry: Duration,
    pub cancel_retry_max: Duration,
}

impl Schedule {
    /// When the trade must be cancelled (an UNKNOWN trade) or closed (an expired QR order).
    pub fn deadline_of(&self, trade: &Trade) -> OffsetDateTime {
        trade.deadline.unwrap_or(trade.created_at + self.deadline)
    }

    /// What to do now with an open trade (`can_close`: the tenant's dialect has a close).
    pub fn step(&self, trade: &Trade, can_close: bool, now: OffsetDateTime) -> Step {
        let expired = now >= self.deadline_of(trade);
        match trade.state {
            TradeState::Waiting if trade.cancel_requested => Step::Cancel,
            TradeState::Waiting if expired && can_close => Step::Close,
            TradeState::Waiting if expired => Step::Cancel,
            _ if trade.cancel_requested || expired => Step::Cancel,
            _ => Step::Query,
        }
    }

    /// When to query again after a query that proved nothing: on the grid of `due` (the time
    /// this check was due), never in the past, never after the deadline.
    pub fn next_query(&self, trade: &Trade, due: Option<OffsetDateTime>, now: OffsetDateTime) -> OffsetDateTime {
        let interval = if trade.state == TradeState::Waiting { self.qr_interval } else { self.query_interval };
        let on_grid = due.unwrap_or(now) + interval;
        let next = if on_grid <= now { now + interval } else { on_grid };
        next.min(self.deadline_of(trade)).max(now)
    }

    /// When to retry a cancel (or close) that did not go through: `cancel_retry` at first, then
    /// half the time since the deadline (or since the cancel was asked for, if later: a paid
    /// trade's reversal), up to `cancel_retry_max`.
    pub fn next_cancel(&self, trade: &Trade, now: OffsetDateTime) -> OffsetDateTime {
        let since = self.deadline_of(trade).max(trade.cancel_requested_at.unwrap_or(OffsetDateTime::UNIX_EPOCH));
        self.backing_off(since, now)
    }

    /// When to send again a refund whose outcome is still not known (made at `since`): the same
    /// backing off as a cancel's.
    pub fn next_refund(&self, since: OffsetDateTime, now: OffsetDateTime) -> OffsetDateTime {
        self.backing_off(since, now)
    }

    fn backing_off(&self, since: OffsetDateTime, now: OffsetDateTime) -> OffsetDateTime {
        let elapsed = Duration::try_from((now - since).max(time::Duration::ZERO)).unwrap_or_default();
        now + (elapsed / 2).clamp(self.cancel_retry, self.cancel_retry_max)
    }
}

#[cfg(test)]
mod tests {
    use alipay::{Amount, Currency};
    use ledger::{TradeKey, TradeKind};

    use super::*;

    fn schedule() -> Schedule {
        Schedule {
            query_interval: Duration::from_secs(5),
            qr_interval: Duration::from_secs(15),
            deadline: Duration::from_secs(60),
            cancel_retry: Duration::from_secs(2),
            cancel_retry_max: Duration::from_secs(300),
        }
    }

    fn trade(state: TradeState, created_at: OffsetDateTime) -> Trade {
        let amount = Amount::from_minor(100, Currency::CNY).unwrap();
        Trade {
            key: TradeKey::new(uuid::Uuid::nil(), "T"),
            kind: TradeKind::Barcode,
            state,
            version: 2,
            fingerprint: Vec::new(),
            amount,
            refunded: Amount::zero(Currency::CNY),
            subject: "Noodles".into(),
            store_id: None,
            terminal_id: None,
            operator_id: None,
            trade_no: None,
            buyer_user_id: None,
            qr_code: None,
            failure_code: None,
            failure_message: None,
            unknown_reason: None,
            cancel_action: None,
            cancel_requested: false,
            cancel_requested_at: None,
            created_at,
            updated_at: created_at,
            paid_at: None,
            deadline: Some(created_at + Duration::from_secs(60)),
            next_check_at: None,
        }
    }

    const fn secs(n: u64) -> Duration {
        Duration::from_secs(n)
    }

    #[test]
    fn unknown_trades_are_queried_every_five_seconds_then_cancelled_at_sixty() {
        let (s, t0) = (schedule(), OffsetDateTime::UNIX_EPOCH);
        let unknown = trade(TradeState::Unknown, t0);
        let mut due = t0 + secs(5);
        let mut fired = Vec::new();
        while s.step(&unknown, true, due) == Step::Query {
            fired.push((due - t0).whole_seconds());
            due = s.next_query(&unknown, Some(due), due + Duration::from_millis(30));
        }
        assert_eq!(fired, [5, 10, 15, 20, 25, 30, 35, 40, 45, 50, 55]);
        assert_eq!((due - t0).whole_seconds(), 60, "the cancel fires at the deadline");
        assert_eq!(s.step(&unknown, true, due), Step::Cancel);
    }

    #[test]
    fn a_late_check_does_not_fire_twice_to_catch_up() {
        let (s, t0) = (schedule(), OffsetDateTime::UNIX_EPOCH);
        let unknown = trade(TradeState::Unknown, t0);
        let now = t0 + secs(17);
        assert_eq!(s.next_query(&unknown, Some(t0 + secs(5)), now), now + secs(5));
        assert_eq!(s.next_query(&unknown, None, t0 + secs(58)), t0 + secs(60), "never past the deadline");
    }

    #[test]
    fn cancels_retry_every_two_seconds_then_back_off() {
        let (s, t0) = (schedule(), OffsetDateTime::UNIX_EPOCH);
        let unknown = trade(TradeState::Unknown, t0);
        let deadline = t0 + secs(60);
        assert_eq!(s.next_cancel(&unknown, deadline), deadline + secs(2));
        assert_eq!(s.next_cancel(&unknown, deadline + secs(4)), deadline + secs(6));
        assert_eq!(s.next_cancel(&unknown, deadline + secs(20)), deadline + secs(30));
        assert_eq!(s.next_cancel(&unknown, deadline + secs(7200)), deadline + secs(7500), "capped");
    }

    #[test]
    fn a_reversal_asked_for_long_after_the_deadline_backs_off_from_the_request() {
        let (s, t0) = (schedule(), OffsetDateTime::UNIX_EPOCH);
        let mut paid = trade(TradeState::Success, t0);
        paid.cancel_requested = true;
        paid.cancel_requested_at = Some(t0 + secs(3600));
        assert_eq!(s.step(&paid, true, t0 + secs(3600)), Step::Cancel);
        assert_eq!(s.next_cancel(&paid, t0 + secs(3600)), t0 + secs(3602), "not 300 s: the deadline is an hour old");
        assert_eq!(s.next_cancel(&paid, t0 + secs(3620)), t0 + secs(3630));
    }

    #[test]
    fn qr_orders_are_polled_gently_then_closed_and_a_cancel_wins() {
        let (s, t0) = (schedule(), OffsetDateTime::UNIX_EPOCH);
        let mut waiting = trade(TradeState::Waiting, t0);
        waiting.deadline = Some(t0 + secs(120));
        assert_eq!(s.step(&waiting, true, t0 + secs(15)), Step::Query);
        assert_eq!(s.next_query(&waiting, Some(t0 + secs(15)), t0 + secs(15)), t0 + secs(30));
        assert_eq!(s.step(&waiting, true, t0 + secs(120)), Step::Close);
        assert_eq!(s.step(&waiting, false, t0 + secs(120)), Step::Cancel, "MAPI has no close");
        waiting.cancel_requested = true;
        assert_eq!(s.step(&waiting, true, t0 + secs(15)), Step::Cancel);
    }

    #[test]
    fn a_paying_intent_without_a_deadline_gets_the_default_one() {
        let (s, t0) = (schedule(), OffsetDateTime::UNIX_EPOCH);
        let mut paying = trade(TradeState::Paying, t0);
        paying.deadline = None;
        assert_eq!(s.deadline_of(&paying), t0 + secs(60));
        assert_eq!(s.step(&paying, true, t0 + secs(12)), Step::Query);
        assert_eq!(s.step(&paying, true, t0 + secs(61)), Step::Cancel);
    }
}
