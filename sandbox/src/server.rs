//! HTTP: the accept loop, per-connection limits, and routing to `gateway.do` or the hooks.
//!
//! A request's life: read the body (at most [`MAX_BODY_BYTES`]) → decode the parameters → draw
//! injected faults → run the dialect's handler → hold the answer back if the scenario
//! or the faults say so → write it.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::{Method, Request, Response, StatusCode, header};
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;

use crate::app::{Answer, App};
use crate::faults::FaultMode;
use crate::merchants::Dialect;
use crate::request::{self, RequestError};
use crate::{hooks, mapi, openapi};

/// Largest request body accepted.
pub const MAX_BODY_BYTES: usize = 1024 * 1024;
/// How long a client may take to send its request headers.
const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(30);
/// How long open connections get to finish when the sandbox stops.
const DRAIN_GRACE: Duration = Duration::from_secs(5);

/// Serves until `shutdown` resolves, then drains open connections.
pub async fn serve(
    listener: TcpListener,
    app: Arc<App>,
    max_connections: usize,
    shutdown: impl std::future::Future<Output = ()>,
) {
    let graceful = GracefulShutdown::new();
    let slots = Arc::new(Semaphore::new(max_connections));
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        let permit = tokio::select! {
            permit = slots.clone().acquire_owned() => match permit {
                Ok(permit) => permit,
                Err(_) => break,
            },
            () = &mut shutdown => break,
        };
        let (stream, _) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(error) => {
                    tracing::warn!(%error, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let _ = stream.set_nodelay(true);
        let app = app.clone();
        let service = service_fn(move |req| {
            let app = app.clone();
            async move { Ok::<_, Infallible>(route(&app, req).await) }
        });
        let connection = hyper::server::conn::http1::Builder::new()
            .timer(TokioTimer::new())
            .header_read_timeout(HEADER_READ_TIMEOUT)
            .serve_connection(TokioIo::new(stream), service);
        let connection = graceful.watch(connection);
        tokio::spawn(async move {
            let _permit = permit;
            let _ = connection.await;
        });
    }
    let _ = tokio::time::timeout(DRAIN_GRACE, graceful.shutdown()).await;
}

async fn route(app: &App, req: Request<Incoming>) -> Response<Full<Bytes>> {
    let (parts, body) = req.into_parts();
    let body = match Limited::new(body, MAX_BODY_BYTES).collect().await {
        Ok(collected) => collected.to_bytes(),
        Err(error) if error.downcast_ref::<http_body_util::LengthLimitError>().is_some() => {
            return respond(Answer::text(StatusCode::PAYLOAD_TOO_LARGE, "text/plain", "request body too large")).await;
        }
        Err(_) => return respond(Answer::text(StatusCode::BAD_REQUEST, "text/plain", "unreadable request body")).await,
    };
    let path = parts.uri.path();
    let answer = if path == "/gateway.do" {
        if parts.method != Method::POST && parts.method != Method::GET {
            Answer::text(StatusCode::METHOD_NOT_ALLOWED, "text/plain", "use GET or POST")
        } else {
            let content_type = parts.headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok());
            gateway(app, parts.uri.query(), content_type, &body)
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
        (Dialect::Openapi, Ok(req)) => openapi::handle(app, &req),
        (Dialect::Mapi, Ok(req)) => mapi::handle(app, &req),
        (Dialect::Openapi, Err(error)) => {
            app.stats.rejected.inc();
            openapi::refuse_unreadable(peek.call.as_deref(), &error)
        }
        (Dialect::Mapi, Err(error)) => {
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
