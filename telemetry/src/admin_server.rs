//! The admin listener: [`serve_admin`] runs the shared server (`server`) with the admin
//! endpoints (`endpoints`).

use crate::Metrics;
use crate::endpoints::{AdminRoutes, Endpoints, Readiness};
use crate::server::{self, ConnectionLimits};

/// Serves the admin listener until `shutdown` resolves, then drains it. Answers `/live`, `/ready`
/// (asking `readiness`), `/metrics` (rendering `metrics`) and, when `admin` is given, everything
/// under `/admin/`; see the `endpoints` module for the table. `limits` are usually
/// [`ConnectionLimits::admin`], with the service's own deadlines.
pub async fn serve_admin(
    listener: tokio::net::TcpListener,
    limits: ConnectionLimits,
    metrics: Metrics,
    readiness: Readiness,
    admin: Option<AdminRoutes>,
    shutdown: impl Future<Output = ()>,
) {
    let endpoints = Endpoints { metrics, readiness, admin };
    let handler = move |request| {
        let endpoints = endpoints.clone();
        async move { endpoints.answer(request).await }
    };
    server::serve(listener, "admin", limits, handler, shutdown).await;
}
