//! The one path every call to Alipay made on a trade's behalf takes, in the gateway (pay, QR
//! order, cancel, refund) and the reconciler (query, cancel, close, refund retry):
//!
//! ```text
//! intent ─┬─ nothing to send (the trade exists, is final, is refused): done
//!         └─ sign → Alipay → record what the answer proved → after-effects
//! ```
//!
//! A [`Call`] says what to write first, what to send and how to record the answer; [`Upstream::make`]
//! runs the phases in order and, for every call alike, times them (for `Server-Timing`), counts
//! the calls under way and what they recorded, and holds the crash windows the reliability suite
//! stops the process in: `{call}::after_intent`, `{call}::after_call`, `{call}::after_outcome`
//! (failpoints, compiled in only with `fail/failpoints`).

use std::future::Future;
use std::time::{Duration, Instant};

use alipay::unified::{Answer, Request};
use tenants::snapshot::Tenant;

use crate::{NotSent, Upstream};

/// One call on a trade's behalf: what to write before it is sent, what to send, how to record
/// what the answer proved.
pub trait Call: Sync {
    /// What the intent wrote and the call works on (the trade, the refund).
    type Intent: Send + Sync;
    /// What the call leaves: what its caller answers or schedules with.
    type Done: Send;

    /// The call's name in metrics and failpoints: `pay`, `precreate`, `cancel`, `close`, `query`,
    /// `refund`.
    fn name(&self) -> &'static str;

    /// Writes (durably) what must be known before anything is sent; `Err` when there is nothing
    /// to send, with what the call leaves instead.
    fn intent(&self) -> impl Future<Output = Result<Self::Intent, Self::Done>> + Send;

    /// What to send.
    fn request<'a>(&'a self, intent: &'a Self::Intent) -> Request<'a>;

    /// Where Alipay should notify this call's trade, if anywhere.
    fn notify_url(&self) -> Option<&str> {
        None
    }

    /// Records what `answer` proved (nothing, when it was not sent).
    fn record(&self, intent: Self::Intent, answer: Result<Answer, NotSent>) -> impl Future<Output = Self::Done> + Send;

    /// What the call recorded, as a metric label (a small fixed set).
    fn outcome(&self, done: &Self::Done) -> &'static str;

    /// What follows a recorded outcome (announcements, timers), after the last crash window.
    fn after(&self, _done: &Self::Done) -> impl Future<Output = ()> + Send {
        async {}
    }
}

/// How long a call's three phases took: the intent's commit, Alipay, the outcome's commit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timing {
    pub intent: Duration,
    pub upstream: Duration,
    pub outcome: Duration,
}

/// What a call left, and where its time went when it was sent.
#[derive(Debug, Clone)]
pub struct Made<D> {
    pub done: D,
    /// `None` when the intent found nothing to send.
    pub timing: Option<Timing>,
}

impl Upstream {
    /// Runs `call` for `tenant`: intent, Alipay, record, after-effects.
    ///
    /// The phases around Alipay's are boxed: their database futures are large, and a future is as
    /// large as the largest thing it awaits, so inline they would be carried through the wait on
    /// Alipay by every call in flight (thousands when Alipay is slow).
    pub async fn make<C: Call>(&self, tenant: &Tenant, call: &C) -> Made<C::Done> {
        let name = call.name();
        let begun = Instant::now();
        let intent = match Box::pin(call.intent()).await {
            Ok(intent) => intent,
            Err(done) => return Made { done, timing: None },
        };
        let intent_took = begun.elapsed();
        fail::fail_point!(&format!("{name}::after_intent"));
        let in_flight = metrics::gauge!("alipay_calls_in_flight", "call" => name);
        in_flight.increment(1.0);
        let started = Instant::now();
        let answer = self.call_for(tenant, call.notify_url(), &call.request(&intent)).await;
        let upstream = started.elapsed();
        fail::fail_point!(&format!("{name}::after_call"));
        let answered = Instant::now();
        let done = Box::pin(call.record(intent, answer)).await;
        let outcome = answered.elapsed();
        fail::fail_point!(&format!("{name}::after_outcome"));
        in_flight.decrement(1.0);
        metrics::counter!("alipay_calls_total", "call" => name, "outcome" => call.outcome(&done)).increment(1);
        Box::pin(call.after(&done)).await;
        Made { done, timing: Some(Timing { intent: intent_took, upstream, outcome }) }
    }
}

impl<T, E> Made<Result<T, E>> {
    /// A call that left a result: its value with the timing, or its error.
    pub fn transpose(self) -> Result<Made<T>, E> {
        let Made { done, timing } = self;
        done.map(|done| Made { done, timing })
    }
}
