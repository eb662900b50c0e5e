//! Starting a service process, as every service's `main` does it: load the configuration, build
//! the runtime, and wait for the signal that stops it.
//!
//! # Layout
//! - `config`: [`load_config`] (defaults, a TOML file, `PREFIX_*` variables) and the serde
//!   adapters [`millis`] and [`seconds`] that keep configured durations typed.
//! - `runtime`: [`runtime`], the Tokio runtime for a number of worker threads, and
//!   [`configured`], a `main`'s configuration and runtime or its exit code.
//! - `shutdown`: [`shutdown_signal`], Ctrl-C or SIGTERM.

mod config;
mod runtime;
mod shutdown;

pub use config::{load_config, millis, seconds};
pub use runtime::{configured, runtime};
pub use shutdown::shutdown_signal;
