//! The sandbox's trades: dialect-neutral operations with Alipay's semantics (design §5), so both
//! dialects share one state machine. Every operation returns an owned snapshot for rendering.
//!
//! Bounded: past `max_trades`, the oldest trades are forgotten.

use std::sync::Arc;

use alipay::Amount;
use alipay::charset::Charset;
use alipay::openapi::trade::CancelAction;
use parking_lot::Mutex;
use time::OffsetDateTime;

use crate::clock::Clock;
use crate::merchants::Merchant;
use crate::notify::{Event, Notifier};
use crate::scenario::Scenario;
use crate::trade::{Buyer, Origin, Place, Refund, RefundVia, Status, Trade};

/// Most refunds one trade takes.
pub const MAX_REFUNDS_PER_TRADE: usize = 100;

mod numbers;
mod store;

use numbers::{new_qr_code, next_trade_no};
use store::Store;

/// Which trade a call names; `trade_no` wins when both are given.
#[derive(Debug, Clone, Default)]
pub struct Lookup {
    pub out_trade_no: Option<String>,
    pub trade_no: Option<String>,
}

/// A barcode payment request.
pub struct NewPay {
    pub merchant: Arc<Merchant>,
    pub out_trade_no: String,
    pub buyer_code: String,
    pub subject: String,
    pub total: Amount,
    pub notify_url: Option<String>,
    pub charset: Charset,
}

pub enum PayOutcome {
    /// A new trade (in the state its scenario gives).
    Created(Trade),
    /// The scenario refuses the payment, or fails before creating a trade.
    NotCreated(Scenario),
    /// The same request again: the trade's real state.
    Repeat(Trade),
    BuyerNotMatch,
    ContextInconsistent,
}

pub enum CancelOutcome {
    Done(Trade),
    /// No such trade: nothing to cancel (Alipay answers success without `action`).
    NotFound,
    /// Scenario 69: answer `retry_flag=Y`.
    RetryLater(Trade),
}

pub enum RefundOutcome {
    Done { trade: Trade, refund: Refund, fund_change: bool },
    NotFound,
    NotPaid(Trade),
    BadAmount,
    Exceeds(Trade),
    Discordant(Trade),
    TooMany(Trade),
}

/// What [`Ledger::get_or_create`] did.
enum Entry<R> {
    /// The trade existed: the caller's answer.
    Existing(R),
    Created(Box<Trade>),
    /// There was no trade and none was created.
    NotCreated,
}

/// A precreate (order QR code) request.
pub struct NewOrder {
    pub merchant: Arc<Merchant>,
    pub out_trade_no: String,
    pub subject: String,
    pub total: Amount,
    pub notify_url: Option<String>,
    pub charset: Charset,
    pub place: Place,
}

pub enum PrecreateOutcome {
    /// A new code, or the same request again while it is still payable.
    Code(Trade),
    ContextInconsistent,
    HasSuccess(Trade),
    HasClosed(Trade),
}

pub enum CloseOutcome {
    Closed(Trade),
    NotFound,
    NotClosable(Trade),
}

/// The QR hook could not play the buyer.
#[derive(Debug, thiserror::Error)]
pub enum ScanError {
    #[error("no order QR code with that content")]
    UnknownCode,
    #[error("the order is no longer payable (trade closed or already paid)")]
    NotPayable,
}

/// All trades of all merchants.
pub struct Ledger {
    store: Arc<Mutex<Store>>,
    clock: Clock,
    notifier: Notifier,
    max_trades: usize,
}

impl Ledger {
    pub fn new(clock: Clock, notifier: Notifier, max_trades: usize) -> Self {
        Self { store: Arc::default(), clock, notifier, max_trades }
    }

    pub fn len(&self) -> usize {
        self.store.lock().trades.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Runs `f` on the settled trade under the lock; sends the notifications it produced after.
    fn with_trade<R>(
        &self,
        merchant: &str,
        lookup: &Lookup,
        f: impl FnOnce(&mut Trade, &mut Vec<Event>) -> R,
    ) -> Option<R> {
        self.with_call(None, merchant, lookup, f)
    }

    /// [`Self::with_trade`] for a call about the trade, recorded in its [`Trade::calls`].
    fn with_call<R>(
        &self,
        call: Option<&'static str>,
        merchant: &str,
        lookup: &Lookup,
        f: impl FnOnce(&mut Trade, &mut Vec<Event>) -> R,
    ) -> Option<R> {
        let mut events = Vec::new();
        let (result, snapshot) = {
            let mut store = self.store.lock();
            let key = store.key_of(merchant, lookup)?;
            let trade = store.trades.get_mut(&key)?;
            if trade.settle(self.clock.now()) {
                events.push(Event::Paid);
            }
            if let Some(kind) = call {
                trade.record_call(kind);
            }
            let result = f(trade, &mut events);
            (result, (!events.is_empty()).then(|| trade.clone()))
        };
        if let Some(trade) = snapshot {
            for event in events {
                self.notifier.send(event, &trade);
            }
        }
        Some(result)
    }

    /// The ground truth, unscanned order codes included.
    pub fn get(&self, merchant: &str, out_trade_no: &str) -> Option<Trade> {
        let lookup = Lookup { out_trade_no: Some(out_trade_no.to_owned()), trade_no: None };
        self.with_trade(merchant, &lookup, |trade, _| trade.clone())
    }

    /// Runs `existing` on the trade `(merchant, out_trade_no)`, or inserts what `create` builds,
    /// under one lock: concurrent identical requests make one trade. A new trade's notification or
    /// payment timer starts once the lock is released.
    fn get_or_create<R>(
        &self,
        merchant: &str,
        out_trade_no: &str,
        existing: impl FnOnce(&mut Trade) -> R,
        create: impl FnOnce() -> Option<Trade>,
    ) -> Entry<R> {
        let mut settled = None;
        let entry = {
            let mut store = self.store.lock();
            let key = (merchant.to_owned(), out_trade_no.to_owned());
            if let Some(trade) = store.trades.get_mut(&key) {
                if trade.settle(self.clock.now()) {
                    settled = Some(trade.clone());
                }
                Entry::Existing(existing(trade))
            } else {
                match create() {
                    Some(trade) => {
                        store.insert(trade.clone(), self.max_trades);
                        Entry::Created(Box::new(trade))
                    }
                    None => Entry::NotCreated,
                }
            }
        };
        if let Some(trade) = settled {
            self.notifier.send(Event::Paid, &trade);
        }
        if let Entry::Created(trade) = &entry {
            match trade.status {
                Status::Paid => self.notifier.send(Event::Paid, trade),
                Status::Waiting { pays_at: Some(at) } => self.pay_at(trade, at),
                _ => {}
            }
        }
        entry
    }

    /// trade.pay / spot.pay, where the merchant named no store.
    pub fn pay(&self, req: NewPay) -> PayOutcome {
        self.pay_in_store(req, Place::default())
    }

    /// trade.pay / spot.pay made at `place` (which bill rows show).
    pub fn pay_in_store(&self, req: NewPay, place: Place) -> PayOutcome {
        let scenario = Scenario::of_code(&req.buyer_code);
        let buyer = Buyer::of_code(&req.buyer_code);
        let merchant_id = req.merchant.id.clone();
        let out_trade_no = req.out_trade_no.clone();
        let (total, subject) = (req.total, req.subject.clone());
        let repeat = |trade: &mut Trade| {
            trade.record_call("pay");
            if trade.origin != Origin::Barcode || trade.total != total || trade.subject != subject {
                PayOutcome::ContextInconsistent
            } else if trade.buyer.as_ref() != Some(&buyer) {
                PayOutcome::BuyerNotMatch
            } else {
                PayOutcome::Repeat(trade.clone())
            }
        };
        let create = || {
            if !scenario.creates_trade() {
                return None;
            }
            let mut trade = self.new_trade(req.merchant, req.out_trade_no, Origin::Barcode, req.subject, req.total);
            trade.record_call("pay");
            trade.place = place;
            trade.buyer = Some(Buyer::of_code(&req.buyer_code));
            trade.scenario = scenario;
            trade.cancel_retries_left = scenario.cancel_retries();
            trade.notify_url = req.notify_url;
            trade.charset = req.charset;
            if scenario.starts_waiting() {
                let pays_at = scenario.pays_after().map(|d| self.clock.after(trade.created, d));
                trade.status = Status::Waiting { pays_at };
            } else {
                trade.mark_paid();
            }
            Some(trade)
        };
        match self.get_or_create(&merchant_id, &out_trade_no, repeat, create) {
            Entry::Existing(outcome) => outcome,
            Entry::Created(trade) => PayOutcome::Created(*trade),
            Entry::NotCreated => PayOutcome::NotCreated(scenario),
        }
    }

    fn new_trade(
        &self,
        merchant: Arc<Merchant>,
        out_trade_no: String,
        origin: Origin,
        subject: String,
        total: Amount,
    ) -> Trade {
        Trade {
            merchant,
            out_trade_no,
            trade_no: next_trade_no(),
            origin,
            subject,
            total,
            place: Place::default(),
            buyer: None,
            created: self.clock.now(),
            created_at: OffsetDateTime::now_utc(),
            paid_at: None,
            closed_at: None,
            scenario: Scenario::Paid,
            status: Status::Waiting { pays_at: None },
            refunds: Vec::new(),
            cancel_retries_left: 0,
            cancel_action: None,
            notify_url: None,
            charset: Charset::Utf8,
            calls: Vec::new(),
        }
    }

    fn insert(&self, trade: Trade) {
        self.store.lock().insert(trade, self.max_trades);
    }

    /// The buyer pays at `at`: a timer settles the trade then, so the notification goes out on
    /// time even if nobody asks.
    fn pay_at(&self, trade: &Trade, at: tokio::time::Instant) {
        let store = self.store.clone();
        let notifier = self.notifier.clone();
        let key = (trade.merchant.id.clone(), trade.out_trade_no.clone());
        tokio::spawn(async move {
            tokio::time::sleep_until(at).await;
            let paid = {
                let mut store = store.lock();
                store.trades.get_mut(&key).and_then(|trade| trade.settle(at).then(|| trade.clone()))
            };
            if let Some(trade) = paid {
                notifier.send(Event::Paid, &trade);
            }
        });
    }

    /// trade.query / overseas.query: only trades Alipay shows.
    pub fn query(&self, merchant: &str, lookup: &Lookup) -> Option<Trade> {
        self.with_call(Some("query"), merchant, lookup, |trade, _| trade.clone()).filter(Trade::visible)
    }

    /// trade.cancel / acquire.cancel: close if unpaid, refund the rest if paid.
    pub fn cancel(&self, merchant: &str, lookup: &Lookup) -> CancelOutcome {
        self.with_call(Some("cancel"), merchant, lookup, |trade, events| {
            if trade.status != Status::Closed && trade.cancel_retries_left > 0 {
                trade.cancel_retries_left -= 1;
                return CancelOutcome::RetryLater(trade.clone());
            }
            match trade.status {
                Status::Waiting { .. } => {
                    trade.mark_closed();
                    trade.cancel_action = Some(CancelAction::Close);
                    events.push(Event::Closed);
                }
                Status::Paid => {
                    let rest = trade.total.checked_sub(trade.refunded()).unwrap_or(trade.total);
                    if !rest.is_zero() {
                        let out_request_no = trade.out_trade_no.clone();
                        let at = OffsetDateTime::now_utc();
                        trade.refunds.push(Refund { out_request_no, amount: rest, at, via: RefundVia::Cancel });
                    }
                    trade.mark_closed();
                    trade.cancel_action = Some(CancelAction::Refund);
                    events.push(Event::Closed);
                }
                Status::Closed => {
                    let action = if trade.was_paid() { CancelAction::Refund } else { CancelAction::Close };
                    trade.cancel_action.get_or_insert(action);
                }
            }
            CancelOutcome::Done(trade.clone())
        })
        .unwrap_or(CancelOutcome::NotFound)
    }

    /// trade.refund / spot.refund: cumulative, idempotent on `out_request_no`.
    pub fn refund(&self, merchant: &str, lookup: &Lookup, out_request_no: Option<&str>, amount: &str) -> RefundOutcome {
        self.refund_via(RefundVia::Api, merchant, lookup, out_request_no, amount)
    }

    /// Test hook: a refund made in Alipay's merchant portal, under the batch number
    /// `out_request_no`. Refused as the API refuses; no call recorded, no notification.
    pub fn portal_refund(
        &self,
        merchant: &str,
        out_trade_no: &str,
        out_request_no: &str,
        amount: &str,
    ) -> RefundOutcome {
        let lookup = Lookup { out_trade_no: Some(out_trade_no.to_owned()), trade_no: None };
        self.refund_via(RefundVia::Portal, merchant, &lookup, Some(out_request_no), amount)
    }

    fn refund_via(
        &self,
        via: RefundVia,
        merchant: &str,
        lookup: &Lookup,
        out_request_no: Option<&str>,
        amount: &str,
    ) -> RefundOutcome {
        let outcome = self.refund_trade(via, merchant, lookup, out_request_no, amount);
        if let RefundOutcome::Done { trade, refund, fund_change: true } = &outcome {
            let trade_key = (trade.merchant.id.clone(), trade.out_trade_no.clone());
            self.store.lock().by_refund_no.insert((merchant.to_owned(), refund.out_request_no.clone()), trade_key);
        }
        outcome
    }

    fn refund_trade(
        &self,
        via: RefundVia,
        merchant: &str,
        lookup: &Lookup,
        out_request_no: Option<&str>,
        amount: &str,
    ) -> RefundOutcome {
        let call = (via == RefundVia::Api).then_some("refund");
        self.with_call(call, merchant, lookup, |trade, events| {
            if !trade.visible() {
                return RefundOutcome::NotFound;
            }
            let Ok(amount) = Amount::parse_positive(amount, trade.total.currency()) else {
                return RefundOutcome::BadAmount;
            };
            let request_no = out_request_no.unwrap_or(&trade.out_trade_no).to_owned();
            if let Some(earlier) = trade.refunds.iter().find(|r| r.out_request_no == request_no) {
                if earlier.amount != amount {
                    return RefundOutcome::Discordant(trade.clone());
                }
                return RefundOutcome::Done { refund: earlier.clone(), trade: trade.clone(), fund_change: false };
            }
            if trade.status != Status::Paid {
                return RefundOutcome::NotPaid(trade.clone());
            }
            let rest = trade.total.checked_sub(trade.refunded()).unwrap_or(Amount::zero(trade.total.currency()));
            if amount > rest || (out_request_no.is_none() && amount != trade.total) {
                return RefundOutcome::Exceeds(trade.clone());
            }
            if trade.refunds.len() >= MAX_REFUNDS_PER_TRADE {
                return RefundOutcome::TooMany(trade.clone());
            }
            let refund = Refund { out_request_no: request_no, amount, at: OffsetDateTime::now_utc(), via };
            trade.refunds.push(refund.clone());
            if amount == rest {
                trade.mark_closed();
            }
            if via == RefundVia::Api {
                events.push(Event::Refunded);
            }
            RefundOutcome::Done { trade: trade.clone(), refund, fund_change: true }
        })
        .unwrap_or(RefundOutcome::NotFound)
    }

    /// The refund a merchant made under `refund_no`, whichever its trade, with that trade.
    pub fn refund_by_number(&self, merchant: &str, refund_no: &str) -> Option<(Trade, Refund)> {
        let store = self.store.lock();
        let key = store.by_refund_no.get(&(merchant.to_owned(), refund_no.to_owned()))?;
        let trade = store.trades.get(key)?;
        let refund = trade.refunds.iter().find(|r| r.out_request_no == refund_no)?.clone();
        Some((trade.clone(), refund))
    }

    /// fastpay.refund.query: the trade (if shown) and the refund (if known).
    pub fn refund_query(
        &self,
        merchant: &str,
        lookup: &Lookup,
        out_request_no: &str,
    ) -> Option<(Trade, Option<Refund>)> {
        let trade = self.with_call(Some("refund_query"), merchant, lookup, |t, _| t.clone()).filter(Trade::visible)?;
        let refund = trade.refunds.iter().find(|r| r.out_request_no == out_request_no).cloned();
        Some((trade, refund))
    }

    /// trade.precreate / acquire.precreate.
    pub fn precreate(&self, req: NewOrder) -> PrecreateOutcome {
        let merchant_id = req.merchant.id.clone();
        let out_trade_no = req.out_trade_no.clone();
        let (total, subject) = (req.total, req.subject.clone());
        let repeat = |trade: &mut Trade| {
            trade.record_call("precreate");
            if !matches!(trade.origin, Origin::Precreate { .. }) || trade.total != total || trade.subject != subject {
                return PrecreateOutcome::ContextInconsistent;
            }
            match trade.status {
                Status::Waiting { .. } => PrecreateOutcome::Code(trade.clone()),
                Status::Paid => PrecreateOutcome::HasSuccess(trade.clone()),
                Status::Closed => PrecreateOutcome::HasClosed(trade.clone()),
            }
        };
        let create = || {
            let origin = Origin::Precreate { qr_code: new_qr_code(), scanned: false };
            let mut trade = self.new_trade(req.merchant, req.out_trade_no, origin, req.subject, req.total);
            trade.record_call("precreate");
            trade.place = req.place;
            trade.notify_url = req.notify_url;
            trade.charset = req.charset;
            Some(trade)
        };
        match self.get_or_create(&merchant_id, &out_trade_no, repeat, create) {
            Entry::Existing(outcome) => outcome,
            Entry::Created(trade) => PrecreateOutcome::Code(*trade),
            Entry::NotCreated => PrecreateOutcome::ContextInconsistent,
        }
    }

    /// trade.close: closes a shown, unpaid trade.
    pub fn close(&self, merchant: &str, lookup: &Lookup) -> CloseOutcome {
        self.with_call(Some("close"), merchant, lookup, |trade, events| {
            if !trade.visible() {
                return CloseOutcome::NotFound;
            }
            match trade.status {
                Status::Waiting { .. } => {
                    trade.mark_closed();
                    events.push(Event::Closed);
                    CloseOutcome::Closed(trade.clone())
                }
                Status::Closed if !trade.was_paid() => CloseOutcome::Closed(trade.clone()),
                _ => CloseOutcome::NotClosable(trade.clone()),
            }
        })
        .unwrap_or(CloseOutcome::NotFound)
    }

    /// Test hook: a buyer scans an order QR code (and pays at once if `pay`).
    pub fn scan(&self, qr_code: &str, buyer_code: &str, pay: bool, notify: bool) -> Result<Trade, ScanError> {
        let (merchant, out_trade_no) = self.store.lock().by_qr.get(qr_code).cloned().ok_or(ScanError::UnknownCode)?;
        let lookup = Lookup { out_trade_no: Some(out_trade_no), trade_no: None };
        self.with_trade(&merchant, &lookup, |trade, events| {
            if !matches!(trade.status, Status::Waiting { .. }) {
                return Err(ScanError::NotPayable);
            }
            if let Origin::Precreate { scanned, .. } = &mut trade.origin {
                *scanned = true;
            }
            trade.buyer.get_or_insert_with(|| Buyer::of_code(buyer_code));
            if pay {
                trade.mark_paid();
                if notify {
                    events.push(Event::Paid);
                }
            }
            Ok(trade.clone())
        })
        .unwrap_or(Err(ScanError::UnknownCode))
    }

    /// Test hook: a buyer scans the merchant's static QR code, types `total` and pays. The trade
    /// exists only at Alipay; the notification (unless `notify` is false) is how the merchant
    /// learns of it.
    pub fn static_qr_pay(
        &self,
        merchant: Arc<Merchant>,
        total: Amount,
        subject: String,
        buyer_code: &str,
        notify_url: Option<String>,
        notify: bool,
    ) -> Trade {
        let trade_no = next_trade_no();
        let mut trade = self.new_trade(merchant, format!("SQR{trade_no}"), Origin::StaticQr, subject, total);
        trade.trade_no = trade_no;
        trade.buyer = Some(Buyer::of_code(buyer_code));
        trade.notify_url = notify_url.or_else(|| trade.merchant.notify_url.clone());
        trade.mark_paid();
        self.insert(trade.clone());
        if notify {
            self.notifier.send(Event::Paid, &trade);
        }
        trade
    }

    /// Copies of the trades `keep` selects, at most `max` (the bill files' view of the state).
    pub fn select(&self, max: usize, mut keep: impl FnMut(&Trade) -> bool) -> Vec<Trade> {
        let store = self.store.lock();
        store.trades.values().filter(|trade| keep(trade)).take(max).cloned().collect()
    }
}
