//! Faults injected on purpose (`POST /sandbox/faults`): added latency and a share of requests
//! answered with an HTTP 502 page, before or after the request was processed; optionally only for
//! some kinds of call (`"calls": ["cancel"]`), and only for the next `count` of them. And Alipay's
//! own answer time, per dialect: a log-normal model given by its median and 99th percentile
//! (`"latency": {"openapi": {"p50_ms": 150, "p99_ms": 600}}`), drawn afresh for every call.

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
    /// The kinds of call faulted (`pay`, `query`, `cancel`, `refund`, `refund_query`,
    /// `precreate`, `close`, `oauth_token`); every call when empty.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub calls: Vec<String>,
    /// How many more requests may be faulted; without limit when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub count: Option<u64>,
    /// Alipay's answer time by dialect, added to `latency_ms`.
    #[serde(default, skip_serializing_if = "Latencies::is_empty")]
    pub latency: Latencies,
}

/// Alipay's answer time per dialect.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Latencies {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub openapi: Option<LatencyModel>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mapi: Option<LatencyModel>,
}

impl Latencies {
    /// The same model for both dialects.
    pub fn both(model: LatencyModel) -> Self {
        Latencies { openapi: Some(model), mapi: Some(model) }
    }

    pub fn is_empty(&self) -> bool {
        self.openapi.is_none() && self.mapi.is_none()
    }

    /// The model of `call`'s dialect (MAPI services are `alipay.acquire.*`).
    fn of(&self, call: Option<&str>) -> Option<LatencyModel> {
        if call.is_some_and(|c| c.starts_with("alipay.acquire.")) { self.mapi } else { self.openapi }
    }
}

/// A log-normal answer time with this median and 99th percentile.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LatencyModel {
    pub p50_ms: u64,
    pub p99_ms: u64,
}

/// The standard normal's 99th percentile.
const Z_99: f64 = 2.326_347_874;

impl LatencyModel {
    pub fn validate(&self) -> Result<(), &'static str> {
        if self.p50_ms == 0 || self.p99_ms < self.p50_ms || self.p99_ms > MAX_LATENCY_MS {
            return Err("a latency model needs 1 <= p50_ms <= p99_ms <= 120000");
        }
        Ok(())
    }

    /// One answer time (at most [`MAX_LATENCY_MS`]).
    pub fn draw(&self) -> Duration {
        let sigma = (self.p99_ms as f64 / self.p50_ms as f64).ln() / Z_99;
        // Box–Muller: one standard normal from two uniforms (the first in (0, 1]).
        let (u1, u2) = (1.0 - rand::random::<f64>(), rand::random::<f64>());
        let z = (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos();
        let ms = (self.p50_ms as f64 * (sigma * z).exp()).min(MAX_LATENCY_MS as f64);
        Duration::from_secs_f64(ms / 1000.0)
    }
}

impl std::str::FromStr for LatencyModel {
    type Err = String;
    /// `P50/P99` in milliseconds: `150/600`.
    fn from_str(s: &str) -> Result<Self, String> {
        let parsed =
            s.split_once('/').and_then(|(p50, p99)| Some((p50.trim().parse().ok()?, p99.trim().parse().ok()?)));
        let Some((p50_ms, p99_ms)) = parsed else {
            return Err(format!("{s:?} is not P50/P99 in milliseconds (150/600)"));
        };
        let model = LatencyModel { p50_ms, p99_ms };
        model.validate().map(|()| model).map_err(str::to_owned)
    }
}

impl FaultConfig {
    pub fn validate(&self) -> Result<(), &'static str> {
        if self.latency_ms > MAX_LATENCY_MS {
            return Err("latency_ms must be at most 120000");
        }
        if !(0.0..=1.0).contains(&self.error_rate) {
            return Err("error_rate must be between 0 and 1");
        }
        for model in [self.latency.openapi, self.latency.mapi].into_iter().flatten() {
            model.validate()?;
        }
        if self.calls.iter().any(|call| !KINDS.contains(&call.as_str())) {
            return Err(
                "calls must name kinds of call: pay, query, cancel, refund, refund_query, precreate, close, oauth_token",
            );
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
    /// No fault, Alipay answering in `latency`.
    pub fn with_latency(latency: Latencies) -> Self {
        Faults(RwLock::new(FaultConfig { latency, ..FaultConfig::default() }))
    }

    pub fn set(&self, config: FaultConfig) {
        *self.0.write() = config;
    }

    pub fn get(&self) -> FaultConfig {
        self.0.read().clone()
    }

    /// Draws the fault for one request to `call` (its `method` or `service`, if it names one).
    pub fn draw(&self, call: Option<&str>) -> Fault {
        let mut config = self.0.write();
        let chosen =
            config.calls.is_empty() || kind_of(call).is_some_and(|kind| config.calls.iter().any(|c| c == kind));
        if !chosen || config.count == Some(0) {
            return Fault { latency: Duration::ZERO, fail: None };
        }
        if let Some(count) = &mut config.count {
            *count -= 1;
        }
        let fail = (config.error_rate > 0.0 && rand::random::<f64>() < config.error_rate).then_some(config.mode);
        let alipay = config.latency.of(call).map_or(Duration::ZERO, |model| model.draw());
        Fault { latency: Duration::from_millis(config.latency_ms) + alipay, fail }
    }
}

/// The kinds of call a fault may be limited to.
const KINDS: [&str; 8] = ["pay", "query", "cancel", "refund", "refund_query", "precreate", "close", "oauth_token"];

/// The kind of call a `method` (OpenAPI) or `service` (MAPI) is.
fn kind_of(call: Option<&str>) -> Option<&'static str> {
    Some(match call? {
        "alipay.trade.pay" | "alipay.acquire.overseas.spot.pay" => "pay",
        "alipay.trade.query" | "alipay.acquire.overseas.query" => "query",
        "alipay.trade.cancel" | "alipay.acquire.cancel" => "cancel",
        "alipay.trade.refund" | "alipay.acquire.overseas.spot.refund" => "refund",
        "alipay.trade.fastpay.refund.query" => "refund_query",
        "alipay.trade.precreate" | "alipay.acquire.precreate" => "precreate",
        "alipay.trade.close" => "close",
        "alipay.system.oauth.token" => "oauth_token",
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn faults_can_be_limited_to_a_kind_of_call_and_a_count() {
        let faults = Faults::default();
        let config =
            FaultConfig { error_rate: 1.0, calls: vec!["cancel".into()], count: Some(1), ..FaultConfig::default() };
        assert_eq!(config.validate(), Ok(()));
        faults.set(config);
        assert_eq!(faults.draw(Some("alipay.trade.query")).fail, None, "not a cancel");
        assert_eq!(faults.draw(Some("alipay.acquire.cancel")).fail, Some(FaultMode::Before));
        assert_eq!(faults.draw(Some("alipay.trade.cancel")).fail, None, "the one fault is spent");
        let bad = FaultConfig { calls: vec!["alipay.trade.cancel".into()], ..FaultConfig::default() };
        assert!(bad.validate().is_err());
    }

    #[test]
    fn alipays_answer_time_follows_its_model_per_dialect() {
        let model: LatencyModel = "150/600".parse().unwrap();
        let mut drawn: Vec<u128> = (0..20_000).map(|_| model.draw().as_micros()).collect();
        drawn.sort_unstable();
        let (p50, p99) = (drawn[10_000] as f64 / 1000.0, drawn[19_800] as f64 / 1000.0);
        assert!((142.0..158.0).contains(&p50), "p50 {p50} ms");
        assert!((540.0..660.0).contains(&p99), "p99 {p99} ms");
        for bad in ["600/150", "0/10", "150", "150/999999", "a/b"] {
            assert!(bad.parse::<LatencyModel>().is_err(), "{bad}");
        }
        let faults = Faults::default();
        let slow = LatencyModel { p50_ms: 1_000, p99_ms: 1_000 };
        faults.set(FaultConfig { latency: Latencies { mapi: Some(slow), openapi: None }, ..FaultConfig::default() });
        assert_eq!(faults.draw(Some("alipay.acquire.overseas.spot.pay")).latency, Duration::from_secs(1));
        assert_eq!(faults.draw(Some("alipay.trade.pay")).latency, Duration::ZERO, "only MAPI's");
    }
}
