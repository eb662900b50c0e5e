//! Per-tenant budgets for the reconciler's calls (GCRA, governor). Queries and cancels each have
//! their own, so thousands of UNKNOWN trades being queried never delay a cancel, and no tenant's
//! backlog sends Alipay more than it allows. A call over budget is not made: its trade is looked
//! at again when the budget allows.

use std::num::NonZeroU32;
use std::time::Duration;

use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
use uuid::Uuid;

use crate::plan::Step;

pub struct Budgets {
    queries: DefaultKeyedRateLimiter<Uuid>,
    cancels: DefaultKeyedRateLimiter<Uuid>,
    clock: DefaultClock,
}

fn per_second(rate: u32) -> Quota {
    Quota::per_second(NonZeroU32::new(rate).unwrap_or(NonZeroU32::MIN))
}

impl Budgets {
    pub fn new(query_rate: u32, cancel_rate: u32) -> Self {
        Budgets {
            queries: RateLimiter::keyed(per_second(query_rate)),
            cancels: RateLimiter::keyed(per_second(cancel_rate)),
            clock: DefaultClock::default(),
        }
    }

    /// Takes one call of `step` from `tenant`'s budget; `Err(wait)` when it is spent.
    pub fn take(&self, tenant: Uuid, step: Step) -> Result<(), Duration> {
        let limiter = match step {
            Step::Query => &self.queries,
            Step::Cancel | Step::Close => &self.cancels,
        };
        limiter.check_key(&tenant).map_err(|not_until| not_until.wait_time_from(self.clock.now()))
    }

    /// Forgets tenants whose budgets are full again (keeps the maps as small as the active set).
    pub fn forget_idle(&self) {
        for limiter in [&self.queries, &self.cancels] {
            limiter.retain_recent();
            limiter.shrink_to_fit();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn queries_spent_leave_cancels_untouched() {
        let budgets = Budgets::new(2, 1);
        let tenant = Uuid::new_v4();
        assert!(budgets.take(tenant, Step::Query).is_ok());
        assert!(budgets.take(tenant, Step::Query).is_ok());
        let wait = budgets.take(tenant, Step::Query).unwrap_err();
        assert!(wait > Duration::ZERO && wait <= Duration::from_millis(500));
        assert!(budgets.take(tenant, Step::Cancel).is_ok(), "a budget of its own");
        assert!(budgets.take(Uuid::new_v4(), Step::Query).is_ok(), "per tenant");
    }
}
