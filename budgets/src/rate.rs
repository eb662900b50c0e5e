//! A budget's rate: `calls` every `period_secs` on average, at most `burst` at once.

use std::num::NonZeroU32;
use std::time::Duration;

use governor::Quota;

/// `calls` per `period_secs` on average, at most `burst` at once (each at least 1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Rate {
    pub calls: u32,
    pub period_secs: u32,
    pub burst: u32,
}

impl Rate {
    pub const fn per_second(calls: u32, burst: u32) -> Self {
        Rate { calls, period_secs: 1, burst }
    }

    pub const fn per_minute(calls: u32, burst: u32) -> Self {
        Rate { calls, period_secs: 60, burst }
    }

    /// Microseconds between two calls (the GCRA's emission interval).
    pub fn interval_us(self) -> f64 {
        f64::from(self.period_secs.max(1)) * 1_000_000.0 / f64::from(self.calls.max(1))
    }

    /// How far ahead of now the GCRA's theoretical arrival time may run: the burst's worth.
    pub fn limit_us(self) -> f64 {
        self.interval_us() * f64::from(self.burst.max(1))
    }

    /// Calls in `window` at this rate, rounded down.
    pub fn calls_in(self, window: Duration) -> u64 {
        let micros = window.as_micros().min(u128::from(u64::MAX)) as f64;
        (micros / self.interval_us()) as u64
    }

    /// The share one of `replicas` may use alone, each at least 1 call a period and a burst of 1.
    pub fn share(self, replicas: u32) -> Rate {
        let replicas = replicas.max(1);
        Rate { calls: (self.calls / replicas).max(1), burst: (self.burst / replicas).max(1), ..self }
    }

    /// `percent` of the rate (the reserved part of a shared budget), at least 1 a period.
    pub fn percent(self, percent: u32) -> Rate {
        let part = |n: u32| (u64::from(n) * u64::from(percent.min(100)) / 100).max(1) as u32;
        Rate { calls: part(self.calls), burst: part(self.burst), ..self }
    }

    /// The same rate as a governor quota (the fallback's limiters).
    pub fn quota(self) -> Quota {
        let burst = NonZeroU32::new(self.burst).unwrap_or(NonZeroU32::MIN);
        let every = Duration::from_micros(self.interval_us() as u64).max(Duration::from_nanos(1));
        Quota::with_period(every).unwrap_or_else(|| Quota::per_second(NonZeroU32::MIN)).allow_burst(burst)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shares_and_parts_never_reach_zero() {
        let rate = Rate::per_second(300, 30);
        assert_eq!(rate.share(3), Rate::per_second(100, 10));
        assert_eq!(rate.share(0), rate);
        assert_eq!(Rate::per_second(2, 1).share(3), Rate::per_second(1, 1));
        assert_eq!(rate.percent(20), Rate::per_second(60, 6));
        assert_eq!(rate.percent(0), Rate::per_second(1, 1));
        assert_eq!(rate.percent(250), rate);
        assert!((Rate::per_second(4, 2).limit_us() - 500_000.0).abs() < 1e-6);
        assert!((Rate::per_minute(6, 3).interval_us() - 10_000_000.0).abs() < 1e-6);
        assert_eq!(Rate::per_second(100, 1).calls_in(Duration::from_millis(10)), 1);
        assert_eq!(Rate::per_minute(6, 3).share(3), Rate::per_minute(2, 1));
    }
}
