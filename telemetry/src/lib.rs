//! What every service in the gateway shares for being served, watched and stopped: the one HTTP
//! server every listener runs (connection caps, deadlines, bounded body reading, graceful drain),
//! logs (`tracing` to stderr), metrics (one process-wide Prometheus recorder), the admin listener
//! that answers probes, scrapes and the admin API, and the shutdown signal.
//!
//! A service's `main` calls [`init_tracing`], then [`metrics`], binds its listeners and runs
//! [`server::serve`] (its own API) and [`serve_admin`] until [`shutdown_signal`].
//!
//! # Layout
//! - [`server`]: [`server::serve`], the accept loop every listener runs, its [`server::ConnectionLimits`]
//!   and [`server::BodyReader`].
//! - `logs`: [`init_tracing`], the stderr subscriber filtered by `RUST_LOG`.
//! - `prometheus`: [`metrics`] and [`Metrics`], the recorder, its histogram buckets and upkeep.
//! - `endpoints`: what the admin listener answers (`/live`, `/ready`, `/metrics`, `/admin/`).
//! - `admin_server`: [`serve_admin`], the admin endpoints on [`server::serve`].
//! - `shutdown`: [`shutdown_signal`], Ctrl-C or SIGTERM.
//! - `service`: [`load_config`] and [`runtime`], as every service's `main` does them.
//! - `error`: [`TelemetryError`].
//! - [`problem`]: [`problem::Problem`], the one `application/problem+json` error answer of the
//!   partner API and every admin listener (code, detail, fault, retryable).
//! - [`launch`]: a service binary started as a child process (configuration as variables, its
//!   addresses from the first line it prints, killed when dropped) and [`launch::ready_within`]:
//!   how tests, benches and `loadtest bench` start the gateway, the reconciler and the sandbox.
//! - [`process`]: CPU time and resident memory of a process, from /proc (benchmarks, load tests).

mod admin_server;
mod endpoints;
mod error;
pub mod launch;
mod logs;
pub mod problem;
pub mod process;
mod prometheus;
pub mod server;
mod service;
mod shutdown;

pub use admin_server::serve_admin;
pub use endpoints::{AdminRoutes, Readiness};
pub use error::TelemetryError;
pub use logs::init_tracing;
pub use prometheus::{Metrics, metrics};
pub use service::{load_config, runtime};
pub use shutdown::shutdown_signal;
