//! Sandbox time: every scenario delay and notification retry interval is multiplied by
//! `--time-scale`, so a test can run Alipay's 10 s, 58 s and 4 min intervals in milliseconds.

use std::time::Duration;

use tokio::time::Instant;

#[derive(Debug, Clone, Copy)]
pub struct Clock {
    scale: f64,
}

impl Clock {
    /// `scale` must be finite and positive (checked when the configuration is built).
    pub fn new(scale: f64) -> Self {
        Self { scale }
    }

    pub fn scale(&self) -> f64 {
        self.scale
    }

    /// Alipay's duration `d`, as the sandbox plays it.
    pub fn scaled(&self, d: Duration) -> Duration {
        d.mul_f64(self.scale)
    }

    pub fn now(&self) -> Instant {
        Instant::now()
    }

    /// The instant `d` of Alipay time after `from`.
    pub fn after(&self, from: Instant, d: Duration) -> Instant {
        from + self.scaled(d)
    }
}
