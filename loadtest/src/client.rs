//! The POS side of the partner API: builds a call, signs it as its tenant (ACQ1-HMAC), sends it
//! over a pooled keep-alive connection and sorts the answer into a bounded set of outcomes.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use bytes::Bytes;
use http::{Method, Request};
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client as HyperClient;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioTimer};
use serde::Deserialize;

use crate::mix::Op;
use crate::tenants_file::PosTenant;

/// A call ready to send.
#[derive(Debug, Clone)]
pub struct Call {
    pub op: Op,
    pub method: Method,
    /// Path and query, e.g. `/v1/payments`.
    pub path: String,
    pub body: Option<Bytes>,
}

/// What came back, sorted: the HTTP status and the answer's `status` field.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Answer {
    /// An HTTP answer: its status code and, for JSON bodies, the `status` field (bounded: an
    /// unexpected value reads `OTHER`).
    Http { code: u16, status: Option<&'static str> },
    /// No HTTP answer.
    Failed(ErrorKind),
}

/// Why a call got no answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    Timeout,
    Connect,
    /// The connection broke mid-call.
    Io,
    /// The generator had more calls in flight than allowed.
    Overload,
}

impl ErrorKind {
    pub fn name(self) -> &'static str {
        match self {
            ErrorKind::Timeout => "timeout",
            ErrorKind::Connect => "connect",
            ErrorKind::Io => "io",
            ErrorKind::Overload => "generator_overload",
        }
    }
}

/// The answer's `status` values the partner API uses (design §3).
const STATUSES: [&str; 10] = [
    "SUCCESS",
    "FAILED",
    "UNKNOWN",
    "WAITING",
    "CANCELLED",
    "PARTIALLY_REFUNDED",
    "REFUNDED",
    "PENDING",
    "REFUSED",
    "CLOSED",
];

impl Answer {
    /// An error as the report counts it (`None`: an answer the POS can act on).
    pub fn error_kind(&self) -> Option<&'static str> {
        match self {
            Answer::Failed(kind) => Some(kind.name()),
            Answer::Http { code, .. } if *code >= 500 => Some("http_5xx"),
            Answer::Http { code: 429, .. } => Some("http_429"),
            Answer::Http { code, .. } if *code >= 400 && *code != 409 => Some("http_4xx"),
            Answer::Http { .. } => None,
        }
    }

    /// The status-mix label: `200 SUCCESS`, `202 UNKNOWN`, `404`, `timeout`.
    pub fn label(&self) -> String {
        match self {
            Answer::Http { code, status: Some(status) } => format!("{code} {status}"),
            Answer::Http { code, status: None } => code.to_string(),
            Answer::Failed(kind) => kind.name().to_owned(),
        }
    }
}

#[derive(Deserialize)]
struct Status<'a> {
    #[serde(borrow)]
    status: Option<&'a str>,
}

/// Sends calls to one gateway.
#[derive(Clone)]
pub struct Client {
    http: HyperClient<HttpConnector, Full<Bytes>>,
    base: String,
    timeout: Duration,
}

static NONCE: AtomicU64 = AtomicU64::new(0);

/// The `Authorization` header of one call as `tenant` (ACQ1-HMAC), signed now with a nonce no
/// other call of this process uses.
pub fn authorization(tenant: &PosTenant, method: &str, path_and_query: &str, body: &[u8]) -> String {
    let nonce = format!("lt{}x{}", std::process::id(), NONCE.fetch_add(1, Ordering::Relaxed));
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    tenants::signature::authorization(&tenant.key_id, &tenant.secret, method, path_and_query, now, &nonce, body)
}

impl Client {
    pub fn new(base: &str, timeout: Duration, connections: usize) -> Client {
        let mut connector = HttpConnector::new();
        connector.set_nodelay(true);
        connector.set_connect_timeout(Some(timeout));
        let http = HyperClient::builder(TokioExecutor::new())
            .pool_timer(TokioTimer::new())
            .pool_idle_timeout(Duration::from_secs(30))
            .pool_max_idle_per_host(connections)
            .build(connector);
        Client { http, base: base.trim_end_matches('/').to_owned(), timeout }
    }

    /// Signs `call` as `tenant` and sends it.
    pub async fn send(&self, tenant: &PosTenant, call: &Call) -> Answer {
        let body = call.body.clone().unwrap_or_default();
        let authorization = authorization(tenant, call.method.as_str(), &call.path, &body);
        let mut request = Request::builder()
            .method(call.method.clone())
            .uri(format!("{}{}", self.base, call.path))
            .header(http::header::AUTHORIZATION, authorization);
        if call.body.is_some() {
            request = request.header(http::header::CONTENT_TYPE, "application/json");
        }
        let Ok(request) = request.body(Full::new(body)) else {
            return Answer::Failed(ErrorKind::Io);
        };
        match tokio::time::timeout(self.timeout, self.exchange(request)).await {
            Ok(answer) => answer,
            Err(_) => Answer::Failed(ErrorKind::Timeout),
        }
    }

    /// Waits (up to 30 s) until the gateway knows `tenant` (its snapshot follows the registry a
    /// moment after onboarding): a query for a trade that does not exist answers 404 once the
    /// tenant authenticates, 401 before. Answers whether it did.
    pub async fn wait_until_known(&self, tenant: &PosTenant) -> bool {
        let probe = Call { op: Op::Query, method: Method::GET, path: "/v1/payments/snapshot-probe".into(), body: None };
        for _ in 0..300 {
            if self.send(tenant, &probe).await == (Answer::Http { code: 404, status: None }) {
                return true;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        false
    }

    async fn exchange(&self, request: Request<Full<Bytes>>) -> Answer {
        let response = match self.http.request(request).await {
            Ok(response) => response,
            Err(error) if error.is_connect() => return Answer::Failed(ErrorKind::Connect),
            Err(_) => return Answer::Failed(ErrorKind::Io),
        };
        let code = response.status().as_u16();
        let Ok(body) = response.into_body().collect().await.map(|b| b.to_bytes()) else {
            return Answer::Failed(ErrorKind::Io);
        };
        let status = serde_json::from_slice::<Status<'_>>(&body)
            .ok()
            .and_then(|s| s.status)
            .map(|s| STATUSES.into_iter().find(|known| *known == s).unwrap_or("OTHER"));
        Answer::Http { code, status }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_sort_into_errors_and_labels() {
        let paid = Answer::Http { code: 200, status: Some("SUCCESS") };
        assert_eq!((paid.error_kind(), paid.label().as_str()), (None, "200 SUCCESS"));
        let conflict = Answer::Http { code: 409, status: None };
        assert_eq!(conflict.error_kind(), None, "a 409 is an answer the POS acts on");
        assert_eq!(Answer::Http { code: 503, status: None }.error_kind(), Some("http_5xx"));
        assert_eq!(Answer::Http { code: 429, status: None }.error_kind(), Some("http_429"));
        assert_eq!(Answer::Failed(ErrorKind::Timeout).label(), "timeout");
    }
}
