//! Faults injected on purpose (`POST /sandbox/faults`): added latency and a share of requests
//! answered with an HTTP 502 page, before or after the request was processed.

use std::time::Duration;

use parking_lot::RwLock;
use serde::{Deserialize, Serialize};

/// Longest latency that can be injected.
pub const MAX_LATENCY_MS: u64 = 120_000;

/// Whether a failed request was processed first (its answer is lost) or not at all.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum FaultMode {
    #[default]
    Before,
    After,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FaultConfig {
    /// Added to every `gateway.do` answer (not scaled by `--time-scale`).
    #[serde(default)]
    pub latency_ms: u64,
    /// Share of `gateway.do` requests answered with HTTP 502, in `[0, 1]`.
    #[serde(default)]
    pub error_rate: f64,
    #[serde(default)]
    pub mode: FaultMode,
}

impl FaultConfig {
    pub fn validate(&self) -> Result<(), &'static str> {
        if self.latency_ms > MAX_LATENCY_MS {
            return Err("latency_ms must be at most 120000");
        }
        if !(0.0..=1.0).contains(&self.error_rate) {
            return Err("error_rate must be between 0 and 1");
        }
        Ok(())
    }
}

/// What to do to one request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Fault {
    pub latency: Duration,
    /// Answer 502 instead, with the request processed first or not.
    pub fail: Option<FaultMode>,
}

#[derive(Debug, Default)]
pub struct Faults(RwLock<FaultConfig>);

impl Faults {
    pub fn set(&self, config: FaultConfig) {
        *self.0.write() = config;
    }

    pub fn get(&self) -> FaultConfig {
        self.0.read().clone()
    }

    /// Draws the fault for one request.
    pub fn draw(&self) -> Fault {
        let config = self.0.read();
        let fail = (config.error_rate > 0.0 && rand::random::<f64>() < config.error_rate).then_some(config.mode);
        Fault { latency: Duration::from_millis(config.latency_ms), fail }
    }
}
