//! Calls claimed ahead: far from its limit a replica takes a few calls in one round trip and
//! spends them locally, so Redis is not on every request; near the limit it takes one at a time.
//!
//! Claimed calls count against the shared budget the moment they are claimed, so the allowance
//! can never make a budget hold more than it allows; calls not spent within [`LEASE`] are dropped
//! (a budget under load uses them long before).

use std::hash::{BuildHasher, RandomState};
use std::time::{Duration, Instant};

use dashmap::DashMap;

use crate::rate::Rate;

/// How long claimed calls stay spendable.
pub const LEASE: Duration = Duration::from_millis(50);

/// A claim takes at most this long's worth of the slowest budget's calls.
pub const BATCH_WINDOW: Duration = Duration::from_millis(10);

/// Most calls one claim takes.
pub const MAX_BATCH: u32 = 64;

/// The calls a replica holds for one draw (one set of budgets).
#[derive(Debug, Clone, Copy)]
struct Held {
    calls: u32,
    until: Instant,
    /// How many the next claim asks for.
    batch: u32,
    /// Since when a claim of a whole batch is on its way: meanwhile other callers ask for one
    /// each, or fifty callers missing at once would claim fifty batches.
    batch_asked: Option<Instant>,
}

/// This replica's claimed calls, by draw.
pub struct Allowances {
    held: DashMap<u64, Held>,
    hasher: RandomState,
}

impl Default for Allowances {
    fn default() -> Self {
        Allowances { held: DashMap::new(), hasher: RandomState::new() }
    }
}

impl Allowances {
    /// The draw's identity: its budgets and their rates (a changed rate is a new draw).
    pub fn id(&self, draw: &[(&str, Rate)]) -> u64 {
        self.hasher.hash_one(draw)
    }

    /// Spends one held call of draw `id`, if any is left and still spendable.
    pub fn spend(&self, id: u64, now: Instant) -> bool {
        let Some(mut held) = self.held.get_mut(&id) else { return false };
        if held.calls == 0 || now >= held.until {
            return false;
        }
        held.calls -= 1;
        true
    }

    /// How many calls a claim of draw `id` made now asks for: a batch if one is due and no other
    /// is on its way (one whose answer never came counts for [`LEASE`]), else one.
    pub fn batch(&self, id: u64, now: Instant) -> u32 {
        let Some(mut held) = self.held.get_mut(&id) else { return 1 };
        let asked = held.batch_asked.is_some_and(|since| now < since + LEASE);
        if held.batch <= 1 || asked {
            return 1;
        }
        held.batch_asked = Some(now);
        held.batch
    }

    /// Records a claim of `granted` calls (one spent at once; the rest added to what is held) and
    /// sizes the next: 10 ms of the draw's slowest budget while the headroom left is large beside
    /// what `replicas` might claim together, else one.
    pub fn claimed(&self, id: u64, draw: &[(&str, Rate)], granted: u32, headroom: u32, replicas: u32, now: Instant) {
        let slowest = draw.iter().map(|(_, rate)| rate.calls_in(BATCH_WINDOW)).min().unwrap_or(1);
        let most = u32::try_from(slowest).unwrap_or(MAX_BATCH).clamp(1, MAX_BATCH);
        let batch = if u64::from(headroom) >= 4 * u64::from(most) * u64::from(replicas.max(1)) { most } else { 1 };
        let extra = granted.saturating_sub(1);
        let mut held = self.held.entry(id).or_insert(Held { calls: 0, until: now, batch, batch_asked: None });
        let kept = if now < held.until { held.calls } else { 0 };
        *held = Held { calls: kept.saturating_add(extra), until: now + LEASE, batch, batch_asked: None };
    }

    /// A refused claim: the next asks for one.
    pub fn refused(&self, id: u64) {
        if let Some(mut held) = self.held.get_mut(&id) {
            held.batch = 1;
            held.batch_asked = None;
        }
    }

    /// Forgets draws whose calls expired (keeps the map as small as the active set).
    pub fn forget_expired(&self, now: Instant) {
        self.held.retain(|_, held| now < held.until + LEASE);
    }

    pub fn len(&self) -> usize {
        self.held.len()
    }

    pub fn is_empty(&self) -> bool {
        self.held.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn claims_are_spent_until_they_run_out_or_expire_and_batches_follow_the_headroom() {
        let allowances = Allowances::default();
        let draw = [("t:pay", Rate::per_second(1_000, 100)), ("app:pos", Rate::per_second(5_000, 500))];
        let id = allowances.id(&draw);
        let now = Instant::now();
        assert!(!allowances.spend(id, now), "nothing claimed yet");
        assert_eq!(allowances.batch(id, now), 1);

        allowances.claimed(id, &draw, 3, 1_000, 3, now);
        assert!(allowances.spend(id, now) && allowances.spend(id, now), "3 claimed, 1 spent at once");
        assert!(!allowances.spend(id, now));
        assert_eq!(allowances.batch(id, now), 10, "10 ms of the slowest budget, far from the limit");
        assert_eq!(allowances.batch(id, now), 1, "one batch on its way at a time");
        allowances.claimed(id, &draw, 10, 1_000, 3, now);
        allowances.claimed(id, &draw, 1, 1_000, 3, now);
        let spent = (0..20).take_while(|_| allowances.spend(id, now)).count();
        assert_eq!(spent, 9, "what two claims left is added up, none dropped");
        assert_eq!(allowances.batch(id, now), 10);
        assert_eq!(allowances.batch(id, now + LEASE), 10, "a batch never answered is asked again");

        allowances.claimed(id, &draw, 5, 100, 3, now);
        assert_eq!(allowances.batch(id, now), 1, "headroom 100 < 4 × 10 × 3 replicas");
        assert!(!allowances.spend(id, now + LEASE), "expired");

        allowances.refused(id);
        assert_eq!(allowances.batch(id, now), 1);
        allowances.forget_expired(now + 2 * LEASE);
        assert!(allowances.is_empty());
        assert_ne!(
            allowances.id(&draw),
            allowances.id(&[("t:pay", Rate::per_second(999, 100))]),
            "a new rate, a new draw"
        );
    }
}
