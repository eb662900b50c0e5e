//! Starting a service process, as every service's `main` does it: load the configuration, build
//! the runtime, and wait for the signal that stops it; and, for tests and benches, starting a
//! service binary as a child process.
//!
//! # Layout
//! - `config`: [`load_config`] (defaults, a TOML file, `PREFIX_*` variables) and the serde
//!   adapters [`millis`] and [`seconds`] that keep configured durations typed.
//! - `runtime`: [`runtime`], the Tokio runtime for a number of worker threads, and
//!   [`configured`], a `main`'s configuration and runtime or its exit code.
//! - `shutdown`: [`shutdown_signal`], Ctrl-C or SIGTERM.
//! - [`launch`]: a service binary started as a child process (configuration as variables, its
//!   addresses from the first line it prints, killed when dropped) and [`launch::ready_within`]:
//!   how tests, benches and `loadtest bench` start the gateway, the reconciler and the sandbox.

mod config;
pub mod launch;
mod runtime;
mod shutdown;

pub use config::{load_config, millis, seconds};
pub use runtime::{configured, runtime};
pub use shutdown::shutdown_signal;
