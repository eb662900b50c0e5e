//! What the admin listener answers. Only `/admin/` requests have their bodies read (by the
//! [`AdminRoutes`] handler); every other body is left unread.
//!
//! | path | method | answer |
//! |---|---|---|
//! | `/live` | GET, HEAD | 200 `ok` |
//! | `/ready` | GET, HEAD | 200 `ready`, or 503 with the reason [`Readiness`] gave |
//! | `/metrics` | GET, HEAD | 200, Prometheus text format |
//! | `/admin/...` | any | the [`AdminRoutes`] handler, or 404 without one |
//! | anything else | any | 404 |
//!
//! A wrong method on `/live`, `/ready` or `/metrics` is 405. The 404 and 405 answers are
//! [`Problem`]s (`no_route`, `method_not_allowed`), the same vocabulary as every API's errors; a
//! 503 from `/ready` stays the plain-text reason probes log.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::{HeaderValue, Method, Request, Response, StatusCode, header};
use http_body_util::Full;
use hyper::body::Incoming;

use crate::Metrics;
use crate::problem::{Fault, Problem};

/// What `/ready` asks: `Ok` when the service can take traffic, `Err(reason)` otherwise.
pub type Readiness = Arc<dyn Fn() -> Pin<Box<dyn Future<Output = Result<(), String>> + Send>> + Send + Sync>;

/// A handler for everything under `/admin/` (the gateway mounts the tenants admin API here). It
/// gets the whole request, body unread, and is responsible for bounding what it reads; the peer's
/// `SocketAddr` is in the request's extensions.
pub type AdminRoutes =
    Arc<dyn Fn(Request<Incoming>) -> Pin<Box<dyn Future<Output = Response<Full<Bytes>>> + Send>> + Send + Sync>;

/// How long `/ready` waits for [`Readiness`] before answering 503; a hung dependency check must
/// not hang the probe.
const READINESS_TIMEOUT: Duration = Duration::from_secs(2);
/// The Prometheus text exposition format.
const PROMETHEUS_CONTENT_TYPE: &str = "text/plain; version=0.0.4";

/// Everything one admin listener answers with, shared by its connections.
#[derive(Clone)]
pub(crate) struct Endpoints {
    pub(crate) metrics: Metrics,
    pub(crate) readiness: Readiness,
    pub(crate) admin: Option<AdminRoutes>,
}

impl Endpoints {
    /// Answers one request.
    pub(crate) async fn answer(&self, request: Request<Incoming>) -> Response<Full<Bytes>> {
        if request.uri().path().starts_with("/admin/") {
            return match &self.admin {
                Some(admin) => admin(request).await,
                None => not_found(),
            };
        }
        let readable = request.method() == Method::GET || request.method() == Method::HEAD;
        match request.uri().path() {
            "/live" | "/ready" | "/metrics" if !readable => method_not_allowed(),
            "/live" => text(StatusCode::OK, "ok"),
            "/ready" => ready(&self.readiness).await,
            "/metrics" => prometheus(&self.metrics),
            _ => not_found(),
        }
    }
}

/// `/ready`: asks [`Readiness`], giving it at most [`READINESS_TIMEOUT`].
pub(crate) async fn ready(readiness: &Readiness) -> Response<Full<Bytes>> {
    match tokio::time::timeout(READINESS_TIMEOUT, readiness()).await {
        Ok(Ok(())) => text(StatusCode::OK, "ready"),
        Ok(Err(reason)) => text(StatusCode::SERVICE_UNAVAILABLE, reason),
        Err(_) => text(StatusCode::SERVICE_UNAVAILABLE, "readiness check timed out"),
    }
}

fn prometheus(metrics: &Metrics) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from(metrics.render())));
    response.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static(PROMETHEUS_CONTENT_TYPE));
    response
}

fn not_found() -> Response<Full<Bytes>> {
    Problem::new(StatusCode::NOT_FOUND, "no_route", "no such route", Fault::Operator).into_response()
}

fn method_not_allowed() -> Response<Full<Bytes>> {
    let problem = Problem::new(StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed", "use GET", Fault::Operator);
    let mut response = problem.into_response();
    response.headers_mut().insert(header::ALLOW, HeaderValue::from_static("GET, HEAD"));
    response
}

fn text(status: StatusCode, body: impl Into<Bytes>) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(body.into()));
    *response.status_mut() = status;
    response.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("text/plain; charset=utf-8"));
    response
}

#[cfg(test)]
mod tests {
    use super::*;
    use http_body_util::BodyExt;

    #[tokio::test(start_paused = true)]
    async fn a_hung_readiness_check_answers_503_after_the_timeout() {
        let hung: Readiness = Arc::new(|| Box::pin(std::future::pending()));
        let response = ready(&hung).await;
        assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
        let body = response.into_body().collect().await.unwrap().to_bytes();
        assert_eq!(body, "readiness check timed out");
    }

    #[tokio::test]
    async fn a_failed_readiness_check_answers_503() {
        let failing: Readiness = Arc::new(|| Box::pin(async { Err("database down".to_owned()) }));
        let response = ready(&failing).await;
        assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
    }
}
