//! What the reconciler's tests share (waiting for trades to be final and comparing them with the
//! sandbox's ground truth is `stack::settled`).

use serde_json::Value;

/// The time scale these tests run at: design §4's 5 s / 60 s become 500 ms / 6 s.
pub const SCALE: f64 = 0.1;

/// The calls the sandbox saw about a trade, by kind.
pub fn calls(truth: &Value, kind: &str) -> Vec<i64> {
    truth["calls"]
        .as_array()
        .map(|calls| calls.iter().filter(|c| c["call"] == kind).filter_map(|c| c["at_ms"].as_i64()).collect())
        .unwrap_or_default()
}

/// A counter's value in a Prometheus text page (summed over its label sets).
pub fn counter(metrics: &str, name: &str, labels: &str) -> f64 {
    metrics
        .lines()
        .filter(|line| line.starts_with(name) && line.contains(labels))
        .filter_map(|line| line.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}
