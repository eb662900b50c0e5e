//! When Redis is away: each replica enforces its fair share of every budget alone (the budget ÷
//! the replicas last seen live), in memory. Together the replicas still stay within the budget
//! as long as the load balancer spreads the traffic evenly.

use std::sync::Arc;
use std::time::Duration;

use dashmap::DashMap;
use governor::clock::{Clock, DefaultClock};
use governor::{DefaultDirectRateLimiter, RateLimiter};

use crate::rate::Rate;

struct Limiter {
    share: Rate,
    limiter: DefaultDirectRateLimiter,
}

#[derive(Default)]
pub struct FairShare {
    limiters: DashMap<Box<str>, Arc<Limiter>>,
    clock: DefaultClock,
}

impl FairShare {
    /// Takes one call from this replica's share (of `replicas`) of each budget; `Err(wait)` at
    /// the first that is spent (calls taken from the budgets before it stay taken: in this mode a
    /// refusal may cost a budget one call, never grant one too many).
    pub fn take(&self, draw: &[(&str, Rate)], replicas: u32) -> Result<(), Duration> {
        for (budget, rate) in draw {
            let share = rate.share(replicas);
            let fresh = || Arc::new(Limiter { share, limiter: RateLimiter::direct(share.quota()) });
            // Looked up and made under the entry's lock: two callers racing for a missing limiter
            // must not each get one (a burst each).
            let limiter = {
                let mut entry = self.limiters.entry((*budget).into()).or_insert_with(fresh);
                if entry.share != share {
                    *entry = fresh();
                }
                entry.clone()
            };
            limiter.limiter.check().map_err(|not_until| not_until.wait_time_from(self.clock.now()))?;
        }
        Ok(())
    }

    /// Forgets every limiter (Redis is back: its budgets are the truth again).
    pub fn clear(&self) {
        self.limiters.clear();
    }
}
