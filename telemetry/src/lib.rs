//! What every service in the gateway shares for being served and watched: the one HTTP server
//! every listener runs (connection caps, deadlines, bounded body reading, graceful drain), logs
//! (`tracing` to stderr), metrics (one process-wide Prometheus recorder), and the admin listener
//! that answers probes, scrapes and the admin API. (Loading the configuration, building the
//! runtime and the shutdown signal are the `service` crate's.)
//!
//! A service's `main` calls [`init_tracing`], then [`metrics`], binds its listeners and runs
//! [`server::serve`] (its own API) and [`serve_admin`] until `service::shutdown_signal`.
//!
//! # Layout
//! - [`server`]: [`server::serve`], the accept loop every listener runs, its [`server::ConnectionLimits`]
//!   and [`server::BodyReader`].
//! - `logs`: [`init_tracing`], the stderr subscriber filtered by `RUST_LOG`.
//! - `prometheus`: [`metrics`] and [`Metrics`], the recorder, its histogram buckets and upkeep.
//! - `endpoints`: what the admin listener answers (`/live`, `/ready`, `/metrics`, `/admin/`).
//! - `admin_server`: [`serve_admin`], the admin endpoints on [`server::serve`].
//! - `error`: [`TelemetryError`].
//! - [`problem`]: [`problem::Problem`], the one `application/problem+json` error answer of the
//!   partner API and every admin listener (code, detail, fault, retryable).
//! - [`process`]: CPU time and resident memory of a process, from /proc (benchmarks, load tests).

mod admin_server;
mod endpoints;
mod error;
mod logs;
pub mod problem;
pub mod process;
mod prometheus;
pub mod server;

pub use admin_server::serve_admin;
pub use endpoints::{AdminRoutes, Readiness};
pub use error::TelemetryError;
pub use logs::init_tracing;
pub use prometheus::{Metrics, metrics};
