//! The one shape every HTTP error answer takes, on the partner API and on every admin listener:
//! `application/problem+json` with a stable `code`, a `detail`, who is at `fault` and whether the
//! same request may be sent again (`retryable`).
//!
//! ```json
//! {"code":"not_found","detail":"…","fault":"operator","retryable":false,"status":404,"title":"Not Found","type":"about:blank"}
//! ```
//!
//! An API builds a [`Problem`] from its own typed error (the gateway's `ApiError`, the tenants
//! admin API's `RegistryError`) and answers [`Problem::into_response`].

use bytes::Bytes;
use http::{HeaderValue, Response, StatusCode, header};
use http_body_util::Full;
use serde::Serialize;
use serde_json::{Value, json};

use crate::server::BodyError;

/// Who must act for the request to succeed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Fault {
    /// The POS sent something wrong (the partner API's caller).
    Pos,
    /// The operator or automation calling an admin API sent something wrong.
    Operator,
    /// Alipay answered, but not with something we can use.
    Alipay,
    /// We could not do it.
    Us,
}

/// One error answer: `application/problem+json`.
#[derive(Debug, Clone, PartialEq)]
pub struct Problem {
    pub status: StatusCode,
    /// The stable code clients match on.
    pub code: &'static str,
    /// What went wrong, for a person.
    pub detail: String,
    pub fault: Fault,
    /// Whether the same request may simply be sent again.
    pub retryable: bool,
    /// Members beyond the standard ones (`errors`, `failure`, `available`, …), in this order.
    pub extra: Vec<(&'static str, Value)>,
    /// A `Retry-After` header, in seconds.
    pub retry_after_secs: Option<u64>,
    /// Whether the answer ends the connection (`Connection: close`): the body was not read to
    /// its end, so what follows on the connection is not a next request.
    pub closes_connection: bool,
}

impl Problem {
    /// A problem nobody should retry as is, at `fault`.
    pub fn new(status: StatusCode, code: &'static str, detail: impl Into<String>, fault: Fault) -> Problem {
        Problem {
            status,
            code,
            detail: detail.into(),
            fault,
            retryable: false,
            extra: Vec::new(),
            retry_after_secs: None,
            closes_connection: false,
        }
    }

    /// Sets whether the same request may be sent again.
    #[must_use]
    pub fn retryable(self, retryable: bool) -> Problem {
        Problem { retryable, ..self }
    }

    /// Adds a member to the body.
    #[must_use]
    pub fn with(mut self, name: &'static str, value: Value) -> Problem {
        self.extra.push((name, value));
        self
    }

    /// Asks the client to come back after `seconds` (at least 1).
    #[must_use]
    pub fn retry_after(self, seconds: u64) -> Problem {
        Problem { retry_after_secs: Some(seconds.max(1)), ..self }
    }

    /// Ends the connection with this answer.
    #[must_use]
    pub fn closing_connection(self) -> Problem {
        Problem { closes_connection: true, ..self }
    }

    /// A request body that could not be read, with the codes the partner API answers; `detail`
    /// names the limit for [`BodyError::TooLarge`]. The answer closes the connection when the body
    /// was not read to its end.
    pub fn body_refused(error: BodyError, caller: Fault) -> Problem {
        match error {
            BodyError::TooLarge => {
                Problem::new(StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large", "body larger than the limit", caller)
                    .closing_connection()
            }
            BodyError::TimedOut => {
                Problem::new(StatusCode::REQUEST_TIMEOUT, "body_timeout", "the body did not arrive in time", caller)
                    .retryable(true)
                    .closing_connection()
            }
            BodyError::OverBudget => Problem::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "overloaded",
                "too many requests are being read at once; retry in a moment",
                Fault::Us,
            )
            .retryable(true)
            .retry_after(1)
            .closing_connection(),
            BodyError::Unreadable => Problem::new(
                StatusCode::BAD_REQUEST,
                "invalid_json",
                "body is not valid JSON: the body could not be read",
                caller,
            ),
        }
    }

    /// The body, members in a fixed order.
    pub fn body(&self) -> Value {
        let mut body = json!({
            "type": "about:blank",
            "title": self.status.canonical_reason().unwrap_or("error"),
            "status": self.status.as_u16(),
            "code": self.code,
            "detail": self.detail,
            "fault": self.fault,
            "retryable": self.retryable,
        });
        for (name, value) in &self.extra {
            body[*name] = value.clone();
        }
        body
    }

    pub fn into_response(self) -> Response<Full<Bytes>> {
        let mut response = Response::new(Full::new(Bytes::from(self.body().to_string())));
        *response.status_mut() = self.status;
        response.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/problem+json"));
        if self.closes_connection {
            response.headers_mut().insert(header::CONNECTION, HeaderValue::from_static("close"));
        }
        if let Some(seconds) = self.retry_after_secs
            && let Ok(value) = HeaderValue::from_str(&seconds.to_string())
        {
            response.headers_mut().insert(header::RETRY_AFTER, value);
        }
        response
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_body_has_every_standard_member_then_the_extra_ones() {
        let problem = Problem::new(StatusCode::NOT_FOUND, "not_found", "no such tenant", Fault::Operator)
            .with("slug", json!("noodle-bar"));
        assert_eq!(
            problem.body(),
            json!({"type": "about:blank", "title": "Not Found", "status": 404, "code": "not_found",
                   "detail": "no such tenant", "fault": "operator", "retryable": false, "slug": "noodle-bar"})
        );
    }

    #[test]
    fn headers_say_problem_json_retry_after_and_close() {
        let response = Problem::body_refused(BodyError::OverBudget, Fault::Pos).into_response();
        assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(response.headers()[header::CONTENT_TYPE], "application/problem+json");
        assert_eq!(response.headers()[header::RETRY_AFTER], "1");
        assert_eq!(response.headers()[header::CONNECTION], "close");
    }
}
