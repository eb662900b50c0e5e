//! Rate limits that hold across every gateway replica (the `budgets` crate: GCRA in Redis, each
//! replica's fair share when Redis is away). A call draws on its tenant's budget — payments and
//! QR orders on one, queries, cancels and refunds on another (so a burst of payments never
//! starves the calls that settle them), sales reports on a small one of their own — and every
//! call that reaches Alipay also on its Alipay app's budget, the POS traffic's part of it (the
//! rest is reserved for the reconcilers' settlement), shared by every tenant on that app.

use std::sync::Arc;
use std::time::Duration;

use budgets::{AppLimits, Rate};
use tenants::snapshot::Tenant;

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

/// Every tenant's and every app's budgets.
pub struct Budgets {
    shared: Arc<budgets::Budgets>,
    /// Every tenant's report budget.
    report: Rate,
    apps: AppLimits,
}

impl Budgets {
    /// Budgets whose report budget allows `reports_per_minute`, in bursts of `report_burst`.
    pub fn new(shared: Arc<budgets::Budgets>, reports_per_minute: u32, report_burst: u32, apps: AppLimits) -> Self {
        Budgets { shared, report: Rate::per_minute(reports_per_minute, report_burst), apps }
    }

    /// The budgets a call of `tenant` on `budget` draws on: the tenant's, and (for calls that
    /// reach Alipay) its app's POS part.
    pub fn draw(&self, tenant: &Tenant, budget: Budget) -> Vec<(String, Rate)> {
        let limits = tenant.limits;
        let own = format!("tenant:{}:{}", tenant.id, budget.as_str());
        let rate = match budget {
            Budget::Report => return vec![(own, self.report)],
            Budget::Pay => Rate::per_second(limits.pay_rate, limits.pay_burst),
            Budget::Other => Rate::per_second(limits.other_rate, limits.other_rate),
        };
        let account = tenant.alipay_account();
        let app = self.apps.pos(&account);
        vec![(own, rate), (format!("app:{account}:pos"), app)]
    }

    /// Takes one call from `tenant`'s `budget` (and its app's); `Err(wait)` when one is spent.
    pub async fn check(&self, tenant: &Tenant, budget: Budget) -> Result<(), Duration> {
        let draw = self.draw(tenant, budget);
        self.shared.take(&borrowed(&draw)).await.map(drop)
    }

    /// The shared budgets (their replica announcements).
    pub fn shared(&self) -> &Arc<budgets::Budgets> {
        &self.shared
    }
}

/// A draw as the `budgets` crate takes it.
pub fn borrowed(draw: &[(String, Rate)]) -> Vec<(&str, Rate)> {
    draw.iter().map(|(name, rate)| (name.as_str(), *rate)).collect()
}
