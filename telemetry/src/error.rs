//! The crate's one error type.

/// Why telemetry could not be set up. Always an internal, start-up fault: retrying will not help.
#[derive(Debug, thiserror::Error)]
pub enum TelemetryError {
    /// The Prometheus recorder could not be installed, most often because another `metrics`
    /// recorder was installed in this process first.
    #[error("the Prometheus recorder could not be installed: {0}")]
    Recorder(#[from] metrics_exporter_prometheus::BuildError),
}
