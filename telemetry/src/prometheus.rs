//! Metrics: the process-wide Prometheus recorder behind the `metrics` macros.
//!
//! The recorder is installed once per process (tests start several services in one process, so
//! later calls hand back the same recorder). Histograms whose names end in `_seconds` get latency
//! buckets; a background thread runs the recorder's upkeep so histogram samples are folded into
//! their buckets even when nobody scrapes.

use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

use crate::TelemetryError;

/// Bucket upper bounds, in seconds, for every histogram named `*_seconds`.
const LATENCY_BUCKETS: &[f64] =
    &[0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0];
/// How often recorded histogram samples are folded into buckets, so their buffers stay small.
const UPKEEP_INTERVAL: Duration = Duration::from_secs(5);

/// The installed recorder; `None` until the first successful [`metrics`] call.
static RECORDER: Mutex<Option<PrometheusHandle>> = Mutex::new(None);

/// A handle to the process-wide Prometheus recorder; cheap to clone.
#[derive(Clone, Debug)]
pub struct Metrics {
    handle: PrometheusHandle,
}

impl Metrics {
    /// Everything recorded so far, in the Prometheus text exposition format.
    pub fn render(&self) -> String {
        self.handle.render()
    }
}

/// The process-wide Prometheus recorder. The first call installs it as the `metrics` recorder;
/// later calls return a handle to the same one.
///
/// Fails if another `metrics` recorder was installed in this process first.
pub fn metrics() -> Result<Metrics, TelemetryError> {
    let mut installed = RECORDER.lock().unwrap_or_else(PoisonError::into_inner);
    if let Some(handle) = installed.as_ref() {
        return Ok(Metrics { handle: handle.clone() });
    }
    let handle = PrometheusBuilder::new()
        .set_buckets_for_metric(Matcher::Suffix("_seconds".into()), LATENCY_BUCKETS)?
        .install_recorder()?;
    start_upkeep(handle.clone());
    *installed = Some(handle.clone());
    Ok(Metrics { handle })
}

/// Runs the recorder's upkeep for the rest of the process, on a thread of its own so it needs no
/// async runtime. If the thread cannot start, histograms are still folded on every scrape.
fn start_upkeep(handle: PrometheusHandle) {
    let spawned = std::thread::Builder::new().name("metrics-upkeep".into()).spawn(move || {
        loop {
            std::thread::sleep(UPKEEP_INTERVAL);
            handle.run_upkeep();
        }
    });
    if let Err(error) = spawned {
        tracing::warn!(%error, "metrics upkeep thread could not start; histograms are folded only when scraped");
    }
}
