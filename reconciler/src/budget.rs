//! The reconciler's calls to Alipay on budgets every reconciler replica shares (the `budgets`
//! crate): each tenant's queries and its cancels on budgets of their own, so thousands of UNKNOWN
//! trades being queried never delay a cancel, and every call also on the part of its Alipay
//! app's limit reserved for settlement, which the POS traffic through the gateways cannot spend.
//! A call over budget is not made: its trade is looked at again when the budget allows.

use std::sync::Arc;
use std::time::Duration;

use budgets::{AppLimits, Rate};
use tenants::snapshot::Tenant;

use crate::plan::Step;

pub struct Budgets {
    shared: Arc<budgets::Budgets>,
    query: Rate,
    cancel: Rate,
    apps: AppLimits,
}

impl Budgets {
    /// Queries and cancels per second per tenant (a burst of as many), and the apps' limits.
    pub fn new(shared: Arc<budgets::Budgets>, query_rate: u32, cancel_rate: u32, apps: AppLimits) -> Self {
        Budgets {
            shared,
            query: Rate::per_second(query_rate, query_rate),
            cancel: Rate::per_second(cancel_rate, cancel_rate),
            apps,
        }
    }

    /// Takes one call of `step` from `tenant`'s budget and its app's settlement part;
    /// `Err(wait)` when one is spent.
    pub async fn take(&self, tenant: &Tenant, step: Step) -> Result<(), Duration> {
        let (name, rate) = match step {
            Step::Query => ("query", self.query),
            Step::Cancel | Step::Close => ("cancel", self.cancel),
        };
        let own = format!("tenant:{}:{name}", tenant.id);
        let account = tenant.alipay_account();
        let app = format!("app:{account}:settle");
        self.shared.take(&[(&own, rate), (&app, self.apps.settle(&account))]).await.map(|_| ())
    }

    /// The shared budgets (their replica announcements).
    pub fn shared(&self) -> &Arc<budgets::Budgets> {
        &self.shared
    }
}
