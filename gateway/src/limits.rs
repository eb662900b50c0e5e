//! Per-tenant rate limits (GCRA, governor): one budget for payments and QR orders, another for
//! queries, cancels and refunds, so a burst of payments never starves the calls that settle them,
//! and a small one for sales reports (the heaviest reads: a year of trades each), set for every
//! tenant by the gateway's configuration. Limiters are rebuilt when a tenant's limits change.

use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::Duration;

use dashmap::DashMap;
use governor::clock::{Clock, DefaultClock};
use governor::{DefaultDirectRateLimiter, Quota, RateLimiter};
use tenants::model::Limits;
use uuid::Uuid;

/// Which budget a call draws on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Budget {
    Pay,
    Other,
    Report,
}

impl Budget {
    pub const fn as_str(self) -> &'static str {
        match self {
            Budget::Pay => "pay",
            Budget::Other => "other",
            Budget::Report => "report",
        }
    }
}

struct TenantLimiters {
    limits: Limits,
    pay: DefaultDirectRateLimiter,
    other: DefaultDirectRateLimiter,
    report: DefaultDirectRateLimiter,
}

fn quota(rate: u32, burst: u32) -> Quota {
    let rate = NonZeroU32::new(rate).unwrap_or(NonZeroU32::MIN);
    let burst = NonZeroU32::new(burst).unwrap_or(NonZeroU32::MIN);
    Quota::per_second(rate).allow_burst(burst)
}

impl TenantLimiters {
    fn new(limits: Limits, report: Quota) -> Self {
        TenantLimiters {
            limits,
            pay: RateLimiter::direct(quota(limits.pay_rate, limits.pay_burst)),
            other: RateLimiter::direct(quota(limits.other_rate, limits.other_rate)),
            report: RateLimiter::direct(report),
        }
    }
}

/// Every tenant's limiters.
pub struct Budgets {
    tenants: DashMap<Uuid, Arc<TenantLimiters>>,
    /// Every tenant's report budget.
    report: Quota,
    clock: DefaultClock,
}

impl Budgets {
    /// Budgets whose report budget allows `reports_per_minute`, in bursts of `report_burst`.
    pub fn new(reports_per_minute: u32, report_burst: u32) -> Self {
        let rate = NonZeroU32::new(reports_per_minute).unwrap_or(NonZeroU32::MIN);
        let burst = NonZeroU32::new(report_burst).unwrap_or(NonZeroU32::MIN);
        Budgets {
            tenants: DashMap::new(),
            report: Quota::per_minute(rate).allow_burst(burst),
            clock: DefaultClock::default(),
        }
    }

    /// Takes one call from `tenant`'s `budget`; `Err(wait)` when it is spent.
    pub fn check(&self, tenant: Uuid, limits: Limits, budget: Budget) -> Result<(), Duration> {
        // Clone out of the map before touching it again (a held entry locks its shard).
        let current = self.tenants.get(&tenant).map(|entry| entry.clone()).filter(|found| found.limits == limits);
        let limiters = match current {
            Some(found) => found,
            None => {
                let fresh = Arc::new(TenantLimiters::new(limits, self.report));
                self.tenants.insert(tenant, fresh.clone());
                fresh
            }
        };
        let limiter = match budget {
            Budget::Pay => &limiters.pay,
            Budget::Other => &limiters.other,
            Budget::Report => &limiters.report,
        };
        limiter.check().map_err(|not_until| not_until.wait_time_from(self.clock.now()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn budgets_are_separate_and_follow_changed_limits() {
        let budgets = Budgets::new(6, 3);
        let tenant = Uuid::new_v4();
        let limits = Limits { pay_rate: 1, pay_burst: 2, other_rate: 1 };
        assert!(budgets.check(tenant, limits, Budget::Pay).is_ok());
        assert!(budgets.check(tenant, limits, Budget::Pay).is_ok());
        let wait = budgets.check(tenant, limits, Budget::Pay).unwrap_err();
        assert!(wait > Duration::ZERO && wait <= Duration::from_secs(1));
        assert!(budgets.check(tenant, limits, Budget::Other).is_ok(), "queries have their own budget");
        let raised = Limits { pay_burst: 10, ..limits };
        assert!(budgets.check(tenant, raised, Budget::Pay).is_ok(), "new limits, new limiter");
        assert!(budgets.check(Uuid::new_v4(), limits, Budget::Pay).is_ok(), "per tenant");
    }

    #[test]
    fn reports_have_a_small_budget_of_their_own() {
        let budgets = Budgets::new(6, 3);
        let tenant = Uuid::new_v4();
        let limits = Limits { pay_rate: 1000, pay_burst: 1000, other_rate: 1000 };
        for _ in 0..3 {
            assert!(budgets.check(tenant, limits, Budget::Report).is_ok());
        }
        let wait = budgets.check(tenant, limits, Budget::Report).unwrap_err();
        assert!(wait > Duration::from_secs(5) && wait <= Duration::from_secs(10), "one every 10 s: {wait:?}");
        assert!(budgets.check(tenant, limits, Budget::Other).is_ok(), "queries are not spent by reports");
        assert!(budgets.check(Uuid::new_v4(), limits, Budget::Report).is_ok(), "per tenant");
    }
}
