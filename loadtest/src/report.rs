//! What a run measured, and what `loadtest bench` measured over its runs: plain data, written as
//! JSON ([`serde`]) and rendered as Markdown and SVG by [`crate::render`].

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// Latency percentiles of a set of requests, in milliseconds.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Percentiles {
    pub p50_ms: f64,
    pub p90_ms: f64,
    pub p99_ms: f64,
    pub p999_ms: f64,
    pub max_ms: f64,
    pub mean_ms: f64,
}

/// One kind of request of the mix (`pay`, `query`, `refund`, `cancel`, `qr_order`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct OperationStats {
    pub requests: u64,
    pub errors: u64,
    pub latency: Percentiles,
}

/// One second of the run, by intended send time.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Second {
    /// Seconds since the run started (0, 1, 2, …).
    pub t_s: u64,
    /// Requests whose answer arrived in this second.
    pub completed: u64,
    pub errors: u64,
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
}

/// The load generator's own cost, so a reader can tell whether it was the bottleneck.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Generator {
    /// CPU (user + system) of the generator process per request sent.
    pub cpu_us_per_request: f64,
    /// Average cores the generator kept busy.
    pub cores_busy: f64,
    /// Requests that started more than 1 ms after their intended time (open loop): a generator
    /// that falls behind shows here, and its latency still counts from the intended time.
    pub late_starts: u64,
    /// The most calls in flight at once.
    #[serde(default)]
    pub peak_in_flight: u64,
}

/// Every answer a POS got, compared with the ledger's final state and Alipay's ground truth.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Verification {
    /// Trades checked.
    pub checked: u64,
    /// The POS heard SUCCESS or FAILED and the ledger or Alipay says otherwise.
    pub mismatches: u64,
    /// A buyer charged without the trade being SUCCESS (or refunded) in the ledger, or charged twice.
    pub double_charges: u64,
    /// Trades still not final when verification gave up waiting.
    pub non_final: u64,
    /// A few of the problems found, for the reader (at most 20).
    pub examples: Vec<String>,
}

/// One `loadtest run`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Report {
    /// What was run, e.g. "MD5 tenants, 1% UNKNOWN".
    pub title: String,
    /// RFC 3339.
    pub started_at: String,
    /// The gateway's base URL.
    pub target: String,
    /// How load was offered, e.g. "open loop, 2000/s for 30 s" or "closed loop, 64 connections".
    pub mode: String,
    pub tenants: u64,
    pub duration_s: f64,
    pub requests: u64,
    pub throughput_rps: f64,
    pub latency: Percentiles,
    /// What the gateway added by its own `Server-Timing` (its time less Alipay's), when it said.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub added_by_gateway: Option<Percentiles>,
    /// Of that, the intent's durable commit (calls to Alipay), by the same header.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub intent_commit: Option<Percentiles>,
    pub errors: u64,
    /// `timeout`, `connect`, `http_5xx`, `http_4xx`, `unexpected_body`, …
    pub errors_by_kind: BTreeMap<String, u64>,
    /// `200 SUCCESS`, `200 UNKNOWN`, `200 FAILED`, `202`, `429`, …
    pub status_mix: BTreeMap<String, u64>,
    pub by_operation: BTreeMap<String, OperationStats>,
    /// The same by target (gateway), when the run had several.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub by_target: BTreeMap<String, OperationStats>,
    pub timeline: Vec<Second>,
    pub generator: Generator,
    pub verification: Option<Verification>,
}

/// `loadtest bench`: the standard runs on this machine, and the figures the project tracks.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct BenchReport {
    /// e.g. "2 cores, Intel Xeon …, 24 GiB, Linux 6.1".
    pub machine: String,
    /// RFC 3339.
    pub started_at: String,
    /// The mixed workload's capacity: its closed-loop run's throughput (the headline runs at half).
    #[serde(default)]
    pub capacity_rps: f64,
    /// The headline run's (the mixed run's) throughput, percentiles and errors; 0 when not run
    /// (as is every CPU figure of a run not made: `loadtest bench --only`).
    pub throughput_rps: f64,
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub errors: u64,
    pub gateway_cpu_us_per_pay_rsa2: f64,
    pub gateway_cpu_us_per_pay_md5: f64,
    /// One RSA-2048 sign plus one verify, measured in-process in the same bench.
    pub crypto_floor_us_rsa2: f64,
    /// RSA2 tenants' pays through the front door (Alipay's OpenAPI); 0 when not run.
    #[serde(default)]
    pub gateway_cpu_us_per_pay_front_door: f64,
    /// Two RSA-2048 signs plus two verifies, measured in-process in the same bench: the front
    /// door's floor (it verifies the POS, signs to Alipay, verifies Alipay, signs to the POS).
    #[serde(default)]
    pub crypto_floor_us_front_door: f64,
    /// The gateway's resident memory after the runs.
    pub gateway_rss_mib: f64,
    /// Summed over the runs.
    pub verification: Verification,
    /// Every run, in order.
    pub runs: Vec<Report>,
    /// Many gateways on one Postgres and Redis; None when not run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scale: Option<ScaleReport>,
    /// The same pays with Alipay answering at once, as Alipay does, and slowly; None when not run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub latency: Option<LatencyReport>,
}

/// Open-loop MD5 pays at one rate on one gateway, Alipay answering in a different time in each.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct LatencyReport {
    pub steps: Vec<LatencyStep>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct LatencyStep {
    /// "at once", or the model: "p50 150 ms, p99 600 ms".
    pub alipay: String,
    pub rate_rps: f64,
    pub throughput_rps: f64,
    pub peak_in_flight: u64,
    /// Over the whole run, the opening of its connections to Alipay included.
    pub gateway_cpu_us_per_pay: f64,
    /// Over the second half of the offered load (as many pays end as begin each second, the
    /// connections to Alipay open); absent from reports older than it.
    #[serde(default)]
    pub steady_cpu_us_per_pay: Option<f64>,
    /// Sampled every half second during the run.
    pub peak_rss_mib: f64,
    pub peak_upstream_connections: u64,
    pub p99_ms: f64,
    pub added_p99_ms: f64,
    pub errors: u64,
}

/// The same closed loop of MD5 pays over one, two and three gateways given the same CPU (all
/// pinned to one core together), then the latency at half of one gateway's capacity beside a
/// durable commit's, measured by pgbench right after on the same machine.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ScaleReport {
    /// The core the gateways shared.
    pub core: usize,
    pub steps: Vec<ScaleStep>,
    pub half_capacity: HalfCapacity,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ScaleStep {
    pub gateways: usize,
    pub throughput_rps: f64,
    pub p99_ms: f64,
    /// Summed over the gateways.
    pub gateway_cpu_us_per_pay: f64,
    /// Throughput over the one gateway's.
    pub efficiency: f64,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct HalfCapacity {
    /// One gateway's closed-loop MD5 pays per second (unpinned), and the open-loop rate run.
    pub capacity_rps: f64,
    pub rate_rps: f64,
    /// End to end at the load generator (the sandbox answers at once).
    pub p50_ms: f64,
    pub p99_ms: f64,
    /// What the gateway added by its own account (`Server-Timing` total less Alipay's time).
    pub added_p50_ms: f64,
    pub added_p99_ms: f64,
    /// Of that, the intent's durable commit (`Server-Timing`'s `intent`).
    #[serde(default)]
    pub intent_p50_ms: f64,
    #[serde(default)]
    pub intent_p99_ms: f64,
    /// pgbench: one-row INSERT transactions, durable commits, at `commit_rate` with 2 clients.
    pub commit_rate: u32,
    pub commit_p50_ms: f64,
    pub commit_p99_ms: f64,
}
