//! HTTP: the listener (the shared server, `telemetry::server`, with its caps and deadlines) and
//! routing to `gateway.do`, the bill download (`/downloadBillFile.resource`) or the hooks.
//!
//! A request's life: read the body (at most [`MAX_BODY_BYTES`], within [`BODY_TIMEOUT`]) → decode
//! the parameters → draw injected faults → run the dialect's handler → hold the answer back if the
//! scenario or the faults say so → write it.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::{Method, Request, Response, StatusCode, header};
use http_body_util::Full;
use hyper::body::Incoming;
use telemetry::server::{BodyError, BodyReader, ConnectionLimits};
use tokio::net::TcpListener;

use crate::app::{Answer, App};
use crate::faults::FaultMode;
use crate::{billing, hooks, mapi, openapi};
use alipay::server::{self as request, RequestError};
use alipay::unified::Dialect as Wire;

/// Largest request body accepted.
pub const MAX_BODY_BYTES: usize = 1024 * 1024;
/// How long a client may take to send a request body.
pub const BODY_TIMEOUT: Duration = Duration::from_secs(30);

/// The listener's limits for `max_connections`: an idle connection lives 90 s, longer than the
/// pools of its clients (the gateway's and the reconciler's upstream client keep one 60 s), so
/// they close first and no call meets a connection the sandbox is closing.
pub fn limits(max_connections: usize) -> ConnectionLimits {
    ConnectionLimits {
        max_connections,
        max_connections_per_peer: max_connections,
        first_byte_timeout: Duration::from_secs(30),
        header_timeout: Duration::from_secs(30),
        idle_timeout: Duration::from_secs(90),
        ..ConnectionLimits::admin()
    }
}

/// Serves until `shutdown` resolves, then drains open connections.
pub async fn serve(
    listener: TcpListener,
    app: Arc<App>,
    max_connections: usize,
    shutdown: impl std::future::Future<Output = ()>,
) {
    let bodies = BodyReader::new("sandbox", MAX_BODY_BYTES, BODY_TIMEOUT);
    let handler = move |request| {
        let (app, bodies) = (app.clone(), bodies.clone());
        async move { route(&app, &bodies, request).await }
    };
    telemetry::server::serve(listener, "sandbox", limits(max_connections), handler, shutdown).await;
}

async fn route(app: &App, bodies: &BodyReader, req: Request<Incoming>) -> Response<Full<Bytes>> {
    let (parts, body) = req.into_parts();
    let body = match bodies.read(&parts, body).await {
        Ok(read) => read.bytes,
        Err(error) => {
            let status = match error {
                BodyError::TooLarge => StatusCode::PAYLOAD_TOO_LARGE,
                BodyError::TimedOut => StatusCode::REQUEST_TIMEOUT,
                BodyError::OverBudget => StatusCode::SERVICE_UNAVAILABLE,
                BodyError::Unreadable => StatusCode::BAD_REQUEST,
            };
            let mut response = respond(Answer::text(status, "text/plain", error.to_string())).await;
            response.headers_mut().insert(header::CONNECTION, header::HeaderValue::from_static("close"));
            return response;
        }
    };
    let path = parts.uri.path();
    let answer = if path == "/gateway.do" {
        if parts.method != Method::POST && parts.method != Method::GET {
            Answer::text(StatusCode::METHOD_NOT_ALLOWED, "text/plain", "use GET or POST")
        } else {
            let content_type = parts.headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok());
            gateway(app, parts.uri.query(), content_type, &body)
        }
    } else if path == billing::query::DOWNLOAD_PATH {
        if parts.method == Method::GET {
            billing::query::download(app, parts.uri.query())
        } else {
            Answer::text(StatusCode::METHOD_NOT_ALLOWED, "text/plain", "use GET")
        }
    } else if path.starts_with("/sandbox/") {
        hooks::handle(app, &parts.method, path, &body)
    } else {
        Answer::text(StatusCode::NOT_FOUND, "text/plain", "not found")
    };
    respond(answer).await
}

fn gateway(app: &App, query: Option<&str>, content_type: Option<&str>, body: &[u8]) -> Answer {
    let (peek, decoded) = request::read(query, content_type, body);
    let fault = app.faults.draw(peek.call.as_deref());
    if fault.fail == Some(FaultMode::Before) {
        app.stats.faults_injected.inc();
        return Answer::bad_gateway().delayed(fault.latency);
    }
    app.stats.call(peek.call.as_deref().unwrap_or(""));
    let answer = match (peek.dialect, decoded) {
        (Wire::OpenApi, Ok(req)) => openapi::handle(app, &req),
        (Wire::Mapi, Ok(req)) => mapi::handle(app, &req),
        (Wire::OpenApi, Err(error)) => {
            app.stats.rejected.inc();
            openapi::refuse_unreadable(peek.call.as_deref(), &error)
        }
        (Wire::Mapi, Err(error)) => {
            app.stats.rejected.inc();
            let code = match error {
                RequestError::BadCharset | RequestError::BadEncoding => "ILLEGAL_CHARSET",
                _ => "ILLEGAL_ARGUMENT",
            };
            mapi::reject(code, alipay::Charset::Utf8)
        }
    };
    if fault.fail == Some(FaultMode::After) {
        app.stats.faults_injected.inc();
        return Answer::bad_gateway().delayed(fault.latency);
    }
    if fault.latency.is_zero() { answer } else { answer.delayed(fault.latency) }
}

async fn respond(answer: Answer) -> Response<Full<Bytes>> {
    if let Some(delay) = answer.delay {
        tokio::time::sleep(delay).await;
    }
    let mut response = Response::new(Full::new(answer.body));
    *response.status_mut() = answer.status;
    if let Ok(value) = header::HeaderValue::from_str(&answer.content_type) {
        response.headers_mut().insert(header::CONTENT_TYPE, value);
    }
    response
}
