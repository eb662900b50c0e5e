//! Routing, and the steps every partner API request takes before its handler:
//!
//! ```text
//! read body (≤ max_body_bytes, within body_timeout, from the unauthenticated byte budget)
//!   → authenticate (HMAC, skew; the body's bytes leave the budget) → nonce unused? (memory, then
//!   Redis) → tenant suspended? → rate budget → handler
//! ```
//! `POST /notify/{tenant}` skips authentication: Alipay's signature is its proof (the body holds
//! its budget until the notification is handled).

use std::fmt::Write as _;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::{Method, Request, Response, header};
use http_body_util::Full;
use hyper::body::Incoming;
use time::OffsetDateTime;

use crate::admission::Signed;
use crate::api::{self, Ctx, Timing};
use crate::auth::{Authenticated, SignedRequest, authenticate};
use crate::limits::Budget;
use crate::problem::ApiError;
use crate::state::AppState;
use telemetry::server::ReadBody;
use tenants::model::Dialect;

/// Where a request goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Route<'a> {
    Pay,
    GetPayment(&'a str),
    Cancel(&'a str),
    Refund(&'a str),
    QrOrder,
    OauthToken,
    SalesReport,
    Notify(&'a str),
    /// The front door: Alipay's own `gateway.do` (OpenAPI, or Global MAPI), for POS software on
    /// Alipay's SDKs.
    FrontDoor(Dialect),
    OpenApi,
    WrongMethod(&'static str),
    Unknown,
}

impl<'a> Route<'a> {
    fn of(method: &Method, path: &'a str) -> Route<'a> {
        let segments: Vec<&str> = path.trim_start_matches('/').split('/').collect();
        let post = method == Method::POST;
        let get = method == Method::GET;
        match segments.as_slice() {
            ["v1", "payments"] if post => Route::Pay,
            ["v1", "payments", no] if get => Route::GetPayment(no),
            ["v1", "payments", no, "cancel"] if post => Route::Cancel(no),
            ["v1", "payments", no, "refunds"] if post => Route::Refund(no),
            ["v1", "qr-orders"] if post => Route::QrOrder,
            ["v1", "oauth", "token"] if post => Route::OauthToken,
            ["v1", "reports", "sales"] if get => Route::SalesReport,
            ["notify", tenant] if post => Route::Notify(tenant),
            ["alipay", "gateway.do"] if post || get => Route::FrontDoor(Dialect::Openapi),
            ["alipay", "mapi", "gateway.do"] if post || get => Route::FrontDoor(Dialect::Mapi),
            ["openapi.json"] if get => Route::OpenApi,
            ["v1", "payments"] => Route::WrongMethod("payments"),
            ["v1", "payments", _] => Route::WrongMethod("payment"),
            ["v1", "payments", _, "cancel" | "refunds"] | ["v1", "qr-orders"] | ["v1", "oauth", "token"] => {
                Route::WrongMethod("post_only")
            }
            ["v1", "reports", "sales"] => Route::WrongMethod("sales_report"),
            ["openapi.json"] | ["notify", _] | ["alipay", "gateway.do"] | ["alipay", "mapi", "gateway.do"] => {
                Route::WrongMethod("fixed")
            }
            _ => Route::Unknown,
        }
    }

    /// The metric label: a fixed set.
    fn label(&self) -> &'static str {
        match self {
            Route::Pay => "pay",
            Route::GetPayment(_) => "get_payment",
            Route::Cancel(_) => "cancel",
            Route::Refund(_) => "refund",
            Route::QrOrder => "qr_order",
            Route::OauthToken => "oauth_token",
            Route::SalesReport => "sales_report",
            Route::Notify(_) => "notify",
            Route::FrontDoor(Dialect::Openapi) => "front_door",
            Route::FrontDoor(Dialect::Mapi) => "front_door_mapi",
            Route::OpenApi => "openapi",
            Route::WrongMethod(_) => "wrong_method",
            Route::Unknown => "unknown",
        }
    }

    fn budget(&self) -> Budget {
        match self {
            Route::Pay | Route::QrOrder => Budget::Pay,
            Route::SalesReport => Budget::Report,
            _ => Budget::Other,
        }
    }
}

/// Answers one request.
pub async fn handle(state: Arc<AppState>, request: Request<Incoming>) -> Response<Full<Bytes>> {
    let started = Instant::now();
    let (parts, body) = request.into_parts();
    let route = Route::of(&parts.method, parts.uri.path());
    let response = match respond(&state, route, &parts, body).await {
        Ok(response) => response,
        Err(error) => {
            if let ApiError::RateLimited { .. } = error {
                metrics::counter!("gateway_rate_limited_total", "budget" => route.budget().as_str()).increment(1);
            }
            error.into_response()
        }
    };
    let took = started.elapsed();
    let response = with_server_timing(response, took);
    let label = route.label();
    metrics::counter!("gateway_requests_total", "route" => label, "status" => status_label(response.status()))
        .increment(1);
    metrics::histogram!("gateway_request_seconds", "route" => label).record(took.as_secs_f64());
    response
}

/// `Server-Timing`, in milliseconds: `intent;dur=…, upstream;dur=…, outcome;dur=…` when the
/// handler called Alipay (the intent's commit, Alipay, the outcome's commit), then `total;dur=…`
/// (headers in to answer out). Total minus upstream is what the gateway itself added, the two
/// commits included.
fn with_server_timing(mut response: Response<Full<Bytes>>, took: Duration) -> Response<Full<Bytes>> {
    let mut value = String::with_capacity(96);
    if let Some(Timing { intent, upstream, outcome }) = response.extensions().get::<Timing>().copied() {
        let _ =
            write!(value, "intent;dur={}, upstream;dur={}, outcome;dur={}, ", Ms(intent), Ms(upstream), Ms(outcome));
    }
    let _ = write!(value, "total;dur={}", Ms(took));
    if let Ok(value) = http::HeaderValue::from_str(&value) {
        response.headers_mut().insert(SERVER_TIMING, value);
    }
    response
}

/// Milliseconds to the µs, written without float formatting (a measurable share of a pay's CPU).
struct Ms(Duration);

impl std::fmt::Display for Ms {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let us = self.0.as_micros();
        write!(f, "{}.{:03}", us / 1000, us % 1000)
    }
}

const SERVER_TIMING: &str = "server-timing";

/// The partner API described (OpenAPI 3), as served at `GET /openapi.json`.
pub const OPENAPI: &str = include_str!("../openapi.json");

fn openapi() -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from_static(OPENAPI.as_bytes())));
    response.headers_mut().insert(header::CONTENT_TYPE, http::HeaderValue::from_static("application/json"));
    response
}

/// The status as a metric label, from a fixed set.
fn status_label(status: http::StatusCode) -> &'static str {
    match status.as_u16() {
        200 => "200",
        202 => "202",
        400 => "400",
        401 => "401",
        403 => "403",
        404 => "404",
        405 => "405",
        408 => "408",
        409 => "409",
        413 => "413",
        422 => "422",
        429 => "429",
        502 => "502",
        503 => "503",
        code if code < 500 => "4xx",
        _ => "5xx",
    }
}

async fn respond(
    state: &Arc<AppState>,
    route: Route<'_>,
    parts: &http::request::Parts,
    body: Incoming,
) -> Result<Response<Full<Bytes>>, ApiError> {
    match route {
        Route::Unknown => return Err(ApiError::NoRoute),
        Route::WrongMethod(_) => return Err(ApiError::MethodNotAllowed),
        _ => {}
    }
    if route == Route::OpenApi {
        return Ok(openapi());
    }
    let ReadBody { bytes: body, hold: unauthenticated } = state.bodies.read(parts, body).await?;
    // The notification's and the front door's futures are boxed: they are the largest of any
    // route's, and inline every request in flight (most of them payments waiting on Alipay)
    // would carry their size.
    if let Route::Notify(tenant) = route {
        return Ok(Box::pin(crate::notify::receive(state, tenant, &body)).await);
    }
    if let Route::FrontDoor(dialect) = route {
        return Ok(Box::pin(crate::front_door::answer(state, dialect, parts, &body, unauthenticated)).await);
    }
    let snapshot = state.snapshots.current();
    // Exactly one `Authorization` (it is not a list): with two, which one was checked is ambiguous.
    let mut authorizations = parts.headers.get_all(header::AUTHORIZATION).iter();
    let authorization = match (authorizations.next(), authorizations.next()) {
        (Some(only), None) => only.to_str().ok(),
        _ => None,
    };
    let path_and_query = parts.uri.path_and_query().map_or("/", |pq| pq.as_str());
    let signed = SignedRequest { authorization, method: parts.method.as_str(), path_and_query, body: &body };
    let now = OffsetDateTime::now_utc();
    let Authenticated { tenant, key_id, nonce, timestamp } =
        authenticate(&snapshot, state.config.clock_skew, signed, now)?;
    drop(unauthenticated);
    let signed = Signed { key_id, nonce, timestamp, now: now.unix_timestamp() };
    crate::admission::admit(state, &tenant, &signed, route.budget()).await?;
    let ctx = Ctx { state: state.clone(), tenant, query: parts.uri.query().map(str::to_owned) };
    match route {
        Route::Pay => api::payments::pay(ctx, &body).await,
        Route::GetPayment(no) => api::payments::get(ctx, no).await,
        Route::Cancel(no) => api::payments::cancel(ctx, no).await,
        Route::Refund(no) => api::refunds::create(ctx, no, &body).await,
        Route::QrOrder => api::qr_orders::create(ctx, &body).await,
        Route::OauthToken => api::oauth::token(ctx, &body).await,
        Route::SalesReport => api::reports::sales(ctx).await,
        Route::Notify(_) | Route::FrontDoor(_) | Route::OpenApi | Route::WrongMethod(_) | Route::Unknown => {
            Err(ApiError::NoRoute)
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    /// Each route's method and path template, as the OpenAPI document names them. The match is
    /// exhaustive: a new route does not compile until it is listed here, and then the test
    /// below fails until the document has it.
    fn template(route: Route<'_>) -> Option<(&'static [&'static str], &'static str)> {
        const POST: &[&str] = &["post"];
        const GET: &[&str] = &["get"];
        const BOTH: &[&str] = &["get", "post"];
        match route {
            Route::Pay => Some((POST, "/v1/payments")),
            Route::GetPayment(_) => Some((GET, "/v1/payments/{out_trade_no}")),
            Route::Cancel(_) => Some((POST, "/v1/payments/{out_trade_no}/cancel")),
            Route::Refund(_) => Some((POST, "/v1/payments/{out_trade_no}/refunds")),
            Route::QrOrder => Some((POST, "/v1/qr-orders")),
            Route::OauthToken => Some((POST, "/v1/oauth/token")),
            Route::SalesReport => Some((GET, "/v1/reports/sales")),
            Route::Notify(_) => Some((POST, "/notify/{tenant}")),
            Route::FrontDoor(Dialect::Openapi) => Some((BOTH, "/alipay/gateway.do")),
            Route::FrontDoor(Dialect::Mapi) => Some((BOTH, "/alipay/mapi/gateway.do")),
            Route::OpenApi => Some((GET, "/openapi.json")),
            Route::WrongMethod(_) | Route::Unknown => None,
        }
    }

    /// The size of the future `f` returns, without calling it.
    fn future_size<A, B, F>(_f: impl Fn(A, B) -> F) -> usize {
        std::mem::size_of::<F>()
    }

    fn call_size<'a, C, F>(_f: fn(&'a upstream::Upstream, &'a tenants::snapshot::Tenant, &'a C) -> F) -> usize {
        std::mem::size_of::<F>()
    }

    /// Every request in flight holds its handler's future, and a payment's also holds its call's
    /// task: thousands of each at once when Alipay is slow. A future is as large as the largest
    /// thing it ever awaits, so a large one awaited inline (a route's, a database read's) would be
    /// carried by every payment waiting on Alipay; those are boxed where they are awaited.
    #[test]
    fn a_request_in_flight_holds_small_futures() {
        let handler = future_size(handle);
        assert!(handler <= 4 * 1024, "a request's future: {handler} bytes");
        let call = call_size(upstream::Upstream::make::<api::calls::OrderCall>);
        assert!(call <= 3 * 1024, "a payment's call to Alipay: {call} bytes");
    }

    #[test]
    fn the_openapi_document_names_exactly_the_routes() {
        let document: serde_json::Value = serde_json::from_str(OPENAPI).unwrap();
        let paths = document["paths"].as_object().unwrap();
        let mut documented = std::collections::BTreeSet::new();
        for (path, operations) in paths {
            for method in operations.as_object().unwrap().keys() {
                documented.insert((method.clone(), path.clone()));
                // The router sends a concrete request of this operation to the documented route.
                let concrete = path.replace("{out_trade_no}", "T-1").replace("{tenant}", "0");
                let route = Route::of(&method.to_uppercase().parse().unwrap(), &concrete);
                let served =
                    template(route).is_some_and(|(methods, p)| methods.contains(&method.as_str()) && p == path);
                assert!(served, "{method} {path} goes to {route:?}");
            }
        }
        let routes = [
            Route::Pay,
            Route::GetPayment("x"),
            Route::Cancel("x"),
            Route::Refund("x"),
            Route::QrOrder,
            Route::OauthToken,
            Route::SalesReport,
            Route::Notify("x"),
            Route::FrontDoor(Dialect::Openapi),
            Route::FrontDoor(Dialect::Mapi),
            Route::OpenApi,
        ];
        let served: std::collections::BTreeSet<(String, String)> = routes
            .into_iter()
            .filter_map(template)
            .flat_map(|(methods, p)| methods.iter().map(move |m| ((*m).to_owned(), p.to_owned())))
            .collect();
        assert_eq!(documented, served, "every route documented, nothing documented that is not served");
    }
}
