//! Faults injected on purpose (`POST /sandbox/faults`): added latency and a share of requests
//! answered with an HTTP 502 page, before or after the request was processed; optionally only for
//! some kinds of call (`"calls": ["cancel"]`), and only for the next `count` of them.

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
}

impl FaultConfig {
    pub fn validate(&self) -> Result<(), &'static str> {
        if self.latency_ms > MAX_LATENCY_MS {
            return Err("latency_ms must be at most 120000");
        }
        if !(0.0..=1.0).contains(&self.error_rate) {
            return Err("error_rate must be between 0 and 1");
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
        Fault { latency: Duration::from_millis(config.latency_ms), fail }
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
}
