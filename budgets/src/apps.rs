//! Alipay's limit on an app (OpenAPI `app_id`) or partner (Global): every tenant on it shares
//! one budget, split into the POS's part (the gateways') and the part reserved for settling
//! UNKNOWN trades (the reconcilers' queries and cancels), so a pay storm never starves settlement.
//!
//! Alipay grants each app its own limit (it publishes no figures): a default for every app, and
//! apps with another named by the ledger's account name (`openapi:{app_id}`, `mapi:{partner}`)
//! as `<account>=<calls per second>/<burst>`. Gateways and reconcilers must be given the same.

use std::collections::HashMap;

use crate::rate::Rate;

/// The highest rate or burst an app's limit may name.
pub const MAX_CALLS: u32 = 100_000;

/// Every app's limit and how it is split.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AppLimits {
    default: Rate,
    accounts: HashMap<String, Rate>,
    settle_share_percent: u32,
}

fn checked(calls: u32, burst: u32, account: &str) -> Result<Rate, String> {
    if !(1..=MAX_CALLS).contains(&calls) || !(1..=MAX_CALLS).contains(&burst) {
        return Err(format!("the app limit of {account}: calls per second and burst must be 1 to {MAX_CALLS}"));
    }
    Ok(Rate::per_second(calls, burst))
}

impl AppLimits {
    /// `calls`/s in bursts of `burst` for every app but those `accounts` names
    /// (`openapi:2021000000000001=300/50`), `settle_share_percent` (1 to 90) reserved for
    /// settlement. The error is one line.
    pub fn new(calls: u32, burst: u32, accounts: &[String], settle_share_percent: u32) -> Result<Self, String> {
        let default = checked(calls, burst, "every app")?;
        let mut named = HashMap::new();
        for entry in accounts {
            let parsed = entry.split_once('=').and_then(|(account, limit)| {
                let (calls, burst) = limit.split_once('/')?;
                Some((account.trim(), calls.trim().parse().ok()?, burst.trim().parse().ok()?))
            });
            let Some((account, calls, burst)) = parsed.filter(|(account, ..)| !account.is_empty()) else {
                return Err(format!("{entry:?} is not <account>=<calls per second>/<burst>"));
            };
            if named.insert(account.to_owned(), checked(calls, burst, account)?).is_some() {
                return Err(format!("{account} has two limits"));
            }
        }
        if !(1..=90).contains(&settle_share_percent) {
            return Err("the settlement share must be 1 to 90 percent".into());
        }
        Ok(AppLimits { default, accounts: named, settle_share_percent })
    }

    fn limit(&self, account: &str) -> Rate {
        self.accounts.get(account).copied().unwrap_or(self.default)
    }

    /// The POS traffic's part of `account`'s limit (the gateways').
    pub fn pos(&self, account: &str) -> Rate {
        self.limit(account).percent(100 - self.settle_share_percent)
    }

    /// The part of `account`'s limit reserved for settlement (the reconcilers').
    pub fn settle(&self, account: &str) -> Rate {
        self.limit(account).percent(self.settle_share_percent)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_apps_limit_is_split_between_pos_and_settlement_and_checked() {
        let named = vec!["openapi:2021000000000001 = 300/50".to_owned()];
        let limits = AppLimits::new(1_000, 200, &named, 20).unwrap();
        assert_eq!(limits.pos("openapi:2021000000000001"), Rate::per_second(240, 40));
        assert_eq!(limits.settle("openapi:2021000000000001"), Rate::per_second(60, 10));
        assert_eq!(limits.pos("mapi:2088000000000001"), Rate::per_second(800, 160));

        assert!(AppLimits::new(1_000, 200, &named, 95).unwrap_err().contains("settlement share"));
        assert!(AppLimits::new(0, 200, &[], 20).unwrap_err().contains("every app"));
        for bad in ["mapi:2088000000000002=0/1", "mapi:2088=300", "=300/50", "openapi:1=x/2"] {
            assert!(AppLimits::new(1_000, 200, &[bad.to_owned()], 20).is_err(), "{bad}");
        }
        let twice = vec!["mapi:1=1/1".to_owned(), "mapi:1=2/2".to_owned()];
        assert!(AppLimits::new(1_000, 200, &twice, 20).unwrap_err().contains("two limits"));
    }
}
