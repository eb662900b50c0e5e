//! Logs: `tracing` events as plain text on stderr, filtered by `RUST_LOG`.

use std::io::IsTerminal;

use tracing_subscriber::EnvFilter;

/// The filter used when `RUST_LOG` is unset or cannot be parsed.
const DEFAULT_FILTER: &str = "info";

/// Sends `tracing` events to stderr, filtered by `RUST_LOG` (default `info`). Colours only when
/// stderr is a terminal. Safe to call more than once: only the first call in a process installs
/// the subscriber; later calls do nothing.
pub fn init_tracing(service: &'static str) {
    let (filter, bad_filter) = match std::env::var(EnvFilter::DEFAULT_ENV) {
        Ok(spec) => match EnvFilter::try_new(&spec) {
            Ok(filter) => (filter, None),
            Err(error) => (EnvFilter::new(DEFAULT_FILTER), Some((spec, error))),
        },
        Err(_) => (EnvFilter::new(DEFAULT_FILTER), None),
    };
    let installed = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .try_init()
        .is_ok();
    if !installed {
        return;
    }
    if let Some((spec, error)) = bad_filter {
        tracing::warn!(rust_log = %spec, %error, "RUST_LOG could not be parsed; logging at {DEFAULT_FILTER}");
    }
    tracing::info!(service, "logging started");
}
