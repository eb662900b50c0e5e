//! The one place partner API errors become HTTP answers: each [`ApiError`] becomes the shared
//! [`Problem`] (`application/problem+json` with a stable `code`, saying who is at fault and
//! whether a retry is safe; the admin APIs answer the same shape).

use bytes::Bytes;
use http::{HeaderValue, Response, StatusCode, header};
use http_body_util::Full;
use serde::Serialize;
use serde_json::json;
use telemetry::problem::Problem;
use telemetry::server::BodyError;

pub use telemetry::problem::Fault;

/// One field's problem.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FieldError {
    pub field: &'static str,
    pub message: String,
}

impl FieldError {
    pub fn new(field: &'static str, message: impl Into<String>) -> Self {
        FieldError { field, message: message.into() }
    }
}

/// Every way a partner API request can fail.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ApiError {
    #[error("invalid request")]
    Invalid(Vec<FieldError>),
    #[error("body is not valid JSON: {0}")]
    BadJson(String),
    #[error("unauthorized")]
    Unauthorized,
    #[error("the tenant is suspended")]
    Suspended,
    #[error("no such trade")]
    NotFound,
    #[error("no such route")]
    NoRoute,
    #[error("method not allowed")]
    MethodNotAllowed,
    #[error("{0}")]
    Conflict(String),
    #[error("{0}")]
    NotRefundable(String),
    #[error("the refund exceeds what is left to refund ({available})")]
    RefundExceeds { available: String },
    #[error("{code}: {message}")]
    Refused { code: String, message: String },
    #[error("body larger than the limit")]
    TooLarge,
    #[error("the body did not arrive in time")]
    BodyTimeout,
    /// Too many request bodies are being read at once (the gateway's byte budget).
    #[error("the gateway is reading too many requests at once; retry in a moment")]
    Overloaded,
    #[error("rate limit exceeded")]
    RateLimited { retry_after_secs: u64 },
    #[error("the tenant is not ready: its Alipay keys are not set")]
    TenantNotReady,
    #[error("{0}")]
    NotSupported(String),
    #[error("service unavailable: {0}")]
    Unavailable(String),
    /// Our capacity for this work is taken for now (a pool wait or a statement timeout ran out):
    /// nothing was done, and the answer says when to come back.
    #[error("{what}; retry after {retry_after_secs} s")]
    Busy { what: &'static str, retry_after_secs: u64 },
    #[error("Alipay did not give a usable answer: {0}")]
    Upstream(String),
}

impl ApiError {
    pub fn status(&self) -> StatusCode {
        match self {
            ApiError::Invalid(_) | ApiError::BadJson(_) | ApiError::NotSupported(_) => StatusCode::BAD_REQUEST,
            ApiError::Unauthorized => StatusCode::UNAUTHORIZED,
            ApiError::Suspended => StatusCode::FORBIDDEN,
            ApiError::NotFound | ApiError::NoRoute => StatusCode::NOT_FOUND,
            ApiError::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            ApiError::Conflict(_) | ApiError::NotRefundable(_) => StatusCode::CONFLICT,
            ApiError::RefundExceeds { .. } | ApiError::Refused { .. } => StatusCode::UNPROCESSABLE_ENTITY,
            ApiError::TooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::BodyTimeout => StatusCode::REQUEST_TIMEOUT,
            ApiError::Overloaded => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::RateLimited { .. } => StatusCode::TOO_MANY_REQUESTS,
            ApiError::TenantNotReady | ApiError::Unavailable(_) | ApiError::Busy { .. } => {
                StatusCode::SERVICE_UNAVAILABLE
            }
            ApiError::Upstream(_) => StatusCode::BAD_GATEWAY,
        }
    }

    /// The stable code POS developers match on.
    pub fn code(&self) -> &'static str {
        match self {
            ApiError::Invalid(_) => "invalid_request",
            ApiError::BadJson(_) => "invalid_json",
            ApiError::Unauthorized => "unauthorized",
            ApiError::Suspended => "tenant_suspended",
            ApiError::NotFound => "not_found",
            ApiError::NoRoute => "no_route",
            ApiError::MethodNotAllowed => "method_not_allowed",
            ApiError::Conflict(_) => "idempotency_conflict",
            ApiError::NotRefundable(_) => "not_refundable",
            ApiError::RefundExceeds { .. } => "refund_exceeds_paid",
            ApiError::Refused { .. } => "alipay_refused",
            ApiError::TooLarge => "payload_too_large",
            ApiError::BodyTimeout => "body_timeout",
            ApiError::Overloaded => "overloaded",
            ApiError::RateLimited { .. } => "rate_limited",
            ApiError::TenantNotReady => "tenant_not_ready",
            ApiError::NotSupported(_) => "not_supported",
            ApiError::Unavailable(_) => "unavailable",
            ApiError::Busy { .. } => "busy",
            ApiError::Upstream(_) => "upstream_error",
        }
    }

    pub fn fault(&self) -> Fault {
        match self {
            ApiError::Refused { .. } | ApiError::Upstream(_) => Fault::Alipay,
            ApiError::TenantNotReady | ApiError::Unavailable(_) | ApiError::Overloaded | ApiError::Busy { .. } => {
                Fault::Us
            }
            _ => Fault::Pos,
        }
    }

    /// Whether the same request may simply be sent again.
    pub fn retryable(&self) -> bool {
        matches!(
            self,
            ApiError::RateLimited { .. }
                | ApiError::Busy { .. }
                | ApiError::Unavailable(_)
                | ApiError::Upstream(_)
                | ApiError::TenantNotReady
                | ApiError::BodyTimeout
                | ApiError::Overloaded
        )
    }

    /// Whether the answer ends the connection: the body was not read to its end, so what
    /// follows on the connection is not a next request (the server discards it, bounded, so the
    /// client can still read this answer).
    pub fn closes_connection(&self) -> bool {
        matches!(self, ApiError::TooLarge | ApiError::BodyTimeout | ApiError::Overloaded)
    }

    /// The answer, as every API of the gateway words its errors.
    pub fn problem(self) -> Problem {
        let mut problem =
            Problem::new(self.status(), self.code(), self.to_string(), self.fault()).retryable(self.retryable());
        problem.closes_connection = self.closes_connection();
        match self {
            ApiError::Invalid(errors) => problem.with("errors", json!(errors)),
            ApiError::Refused { code, message } => problem.with("failure", json!({ "code": code, "message": message })),
            ApiError::RefundExceeds { available } => problem.with("available", json!(available)),
            ApiError::RateLimited { retry_after_secs } | ApiError::Busy { retry_after_secs, .. } => {
                problem.retry_after(retry_after_secs)
            }
            ApiError::Overloaded => problem.retry_after(1),
            _ => problem,
        }
    }

    pub fn into_response(self) -> Response<Full<Bytes>> {
        self.problem().into_response()
    }
}

impl From<BodyError> for ApiError {
    fn from(error: BodyError) -> Self {
        match error {
            BodyError::TooLarge => ApiError::TooLarge,
            BodyError::TimedOut => ApiError::BodyTimeout,
            BodyError::OverBudget => ApiError::Overloaded,
            BodyError::Unreadable => ApiError::BadJson("the body could not be read".into()),
        }
    }
}
/// When a POS should try again after the ledger was busy.
const BUSY_RETRY_AFTER_SECS: u64 = 1;

impl From<ledger::StoreError> for ApiError {
    fn from(error: ledger::StoreError) -> Self {
        let busy = |cause: &'static str, what: &'static str| {
            metrics::counter!("gateway_ledger_busy_total", "cause" => cause).increment(1);
            ApiError::Busy { what, retry_after_secs: BUSY_RETRY_AFTER_SECS }
        };
        match error {
            ledger::StoreError::Busy => busy("pool_wait", "the ledger is busy"),
            timed_out if timed_out.timed_out() => {
                tracing::warn!("a ledger statement was cut at its statement timeout");
                busy("statement_timeout", "the ledger took too long to answer")
            }
            error => {
                tracing::error!(%error, "ledger error");
                ApiError::Unavailable("the ledger could not be reached".into())
            }
        }
    }
}

/// A JSON answer.
pub fn json_response(status: StatusCode, body: &impl Serialize) -> Response<Full<Bytes>> {
    let bytes = serde_json::to_vec(body).unwrap_or_else(|_| b"{}".to_vec());
    let mut response = Response::new(Full::new(Bytes::from(bytes)));
    *response.status_mut() = status;
    response.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    response
}

#[cfg(test)]
mod tests {
    use super::*;
    use http_body_util::BodyExt;

    async fn answer(error: ApiError) -> (Response<Full<Bytes>>, String) {
        let response = error.into_response();
        let (parts, body) = response.into_parts();
        let bytes = body.collect().await.unwrap().to_bytes();
        (Response::from_parts(parts, Full::new(Bytes::new())), String::from_utf8(bytes.to_vec()).unwrap())
    }

    /// The partner API's error contract, byte for byte (members in the order they serialize).
    #[tokio::test]
    async fn answers_are_the_contract_byte_for_byte() {
        let (response, body) = answer(ApiError::RefundExceeds { available: "5.00".into() }).await;
        assert_eq!(response.status(), StatusCode::UNPROCESSABLE_ENTITY);
        assert_eq!(
            body,
            r#"{"available":"5.00","code":"refund_exceeds_paid","detail":"the refund exceeds what is left to refund (5.00)","fault":"pos","retryable":false,"status":422,"title":"Unprocessable Entity","type":"about:blank"}"#
        );
        let (response, body) = answer(ApiError::Busy { what: "the ledger is busy", retry_after_secs: 0 }).await;
        assert_eq!(response.headers()[header::RETRY_AFTER], "1");
        assert_eq!(response.headers()[header::CONTENT_TYPE], "application/problem+json");
        assert!(response.headers().get(header::CONNECTION).is_none());
        assert_eq!(
            body,
            r#"{"code":"busy","detail":"the ledger is busy; retry after 0 s","fault":"us","retryable":true,"status":503,"title":"Service Unavailable","type":"about:blank"}"#
        );
        let (response, body) = answer(ApiError::TooLarge).await;
        assert_eq!(response.headers()[header::CONNECTION], "close");
        assert!(body.contains(r#""code":"payload_too_large""#), "{body}");
        let (_, body) = answer(ApiError::Invalid(vec![FieldError::new("amount", "must be positive")])).await;
        assert!(body.starts_with(r#"{"code":"invalid_request","detail":"invalid request","errors":[{"field":"amount","message":"must be positive"}],"fault":"pos""#), "{body}");
    }
}
