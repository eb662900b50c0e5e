//! Load tests for the gateway: honest (open loop, latency counted from each request's intended
//! send time, so a slow answer never hides the ones queued behind it), fast (one core drives tens
//! of thousands of signed requests per second), and checked (every answer compared with the
//! ledger and Alipay's ground truth afterwards).
//!
//! # Layout
//! - [`run`]: one run (open or closed loop) over [`client`] (signed partner-API calls, or
//!   Alipay's OpenAPI through each tenant's front door: [`client::alipay`]), drawing calls from a
//!   [`mix`] at a [`schedule`]d rate, into a [`recorder`].
//! - [`verify`]: every payment's answer against the ledger and the sandbox's ground truth.
//! - [`onboard`]: the one way a tenant is onboarded (registry or admin API, then the sandbox),
//!   used by [`provision`], devstack, the test stack and the gateway's bench.
//! - [`provision`]: tenants for a run, written to a [`tenants_file`].
//! - [`bench`]: the whole stack on this machine (its binaries started with the tests' launcher,
//!   `service::launch`), the standard runs, `bench/report.json` and `BENCHMARKS.md`.
//!   [`scale`]: its run over many gateways, and pgbench's commits beside it; [`latency`]: its
//!   runs with Alipay's answer time (the sandbox's latency model, also `run --alipay-latency`).
//! - [`report`]: what was measured; [`render`]: as Markdown and SVG.
//! - [`cli`]: the `loadtest` command.

pub mod bench;
pub mod cli;
pub mod client;
pub mod latency;
pub mod mix;
pub mod onboard;
pub mod provision;
pub mod recorder;
pub mod render;
pub mod report;
pub mod run;
pub mod scale;
pub mod schedule;
pub mod tenants_file;
pub mod verify;

/// Now, as RFC 3339.
pub fn now_rfc3339() -> String {
    time::OffsetDateTime::now_utc().format(&time::format_description::well_known::Rfc3339).unwrap_or_default()
}
