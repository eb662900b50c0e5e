//! The POS side of a run: one call as either API makes it ([`Intent`]), its answer sorted into a
//! bounded set of outcomes ([`Answer`]), the pooled keep-alive HTTP both send over ([`Http`]),
//! and the partner API's client ([`Client`]: JSON signed ACQ1-HMAC). The front door's client,
//! Alipay's own OpenAPI signed with the POS's RSA key, is [`alipay`].

pub mod alipay;

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use bytes::Bytes;
use http::{Method, Request};
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client as HyperClient;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioTimer};
use serde::Deserialize;
use serde_json::json;

use crate::mix::Op;
use crate::tenants_file::PosTenant;

/// What a payment or QR order is for: the same meal whichever API carries it.
pub const AMOUNT: &str = "58.00";
/// What a refund gives back.
pub const REFUND_AMOUNT: &str = "1.00";

/// One call of a run, as the POS means it; each API's client writes it in its own words.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Intent {
    /// Charge the buyer's barcode for [`AMOUNT`].
    Pay { out_trade_no: String, auth_code: String, currency: String },
    /// An order QR code for [`AMOUNT`].
    QrOrder { out_trade_no: String, currency: String },
    /// The state of an earlier payment.
    Query { out_trade_no: String },
    /// [`REFUND_AMOUNT`] of an earlier payment back, under `r{out_trade_no}`.
    Refund { out_trade_no: String },
    /// Reverse an earlier payment.
    Cancel { out_trade_no: String },
}

impl Intent {
    pub fn op(&self) -> Op {
        match self {
            Intent::Pay { .. } => Op::Pay,
            Intent::QrOrder { .. } => Op::QrOrder,
            Intent::Query { .. } => Op::Query,
            Intent::Refund { .. } => Op::Refund,
            Intent::Cancel { .. } => Op::Cancel,
        }
    }

    pub fn out_trade_no(&self) -> &str {
        match self {
            Intent::Pay { out_trade_no, .. }
            | Intent::QrOrder { out_trade_no, .. }
            | Intent::Query { out_trade_no }
            | Intent::Refund { out_trade_no }
            | Intent::Cancel { out_trade_no } => out_trade_no,
        }
    }

    /// The refund's request number (one refund per payment in a run).
    pub fn out_request_no(out_trade_no: &str) -> String {
        format!("r{out_trade_no}")
    }
}

/// A call ready to send to the partner API.
#[derive(Debug, Clone)]
pub struct Call {
    pub op: Op,
    pub method: Method,
    /// Path and query, e.g. `/v1/payments`.
    pub path: String,
    pub body: Option<Bytes>,
}

impl Call {
    /// `intent` as the partner API takes it.
    pub fn of(intent: &Intent) -> Call {
        let op = intent.op();
        let post = |path: String, body: serde_json::Value| Call {
            op,
            method: Method::POST,
            path,
            body: Some(serde_json::to_vec(&body).unwrap_or_default().into()),
        };
        match intent {
            Intent::Pay { out_trade_no, auth_code, currency } => post(
                "/v1/payments".into(),
                json!({"out_trade_no": out_trade_no, "auth_code": auth_code, "amount": AMOUNT, "currency": currency,
                       "subject": "Load test meal", "store_id": "LT1"}),
            ),
            Intent::QrOrder { out_trade_no, currency } => post(
                "/v1/qr-orders".into(),
                json!({"out_trade_no": out_trade_no, "amount": AMOUNT, "currency": currency,
                       "subject": "Load test order"}),
            ),
            Intent::Query { out_trade_no } => {
                Call { op, method: Method::GET, path: format!("/v1/payments/{out_trade_no}"), body: None }
            }
            Intent::Refund { out_trade_no } => post(
                format!("/v1/payments/{out_trade_no}/refunds"),
                json!({"out_request_no": Intent::out_request_no(out_trade_no), "amount": REFUND_AMOUNT,
                       "reason": "load test"}),
            ),
            Intent::Cancel { out_trade_no } => {
                Call { op, method: Method::POST, path: format!("/v1/payments/{out_trade_no}/cancel"), body: None }
            }
        }
    }
}

/// What came back, sorted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Answer {
    /// A partner API answer (or an HTTP status the front door should never send): its status
    /// code and, for JSON bodies, the `status` field (bounded: an unexpected value reads `OTHER`).
    Http { code: u16, status: Option<&'static str> },
    /// A front-door answer whose signature verified: Alipay's `code` (bounded: an unexpected one
    /// reads `OTHER`) and what it says of the call.
    Alipay { code: &'static str, verdict: Verdict },
    /// No answer to act on.
    Failed(ErrorKind),
}

/// What an Alipay answer says, in the classes the partner API's answers fall into.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// `10000`.
    Success,
    /// `40004` (but `ACQ.SYSTEM_ERROR`): Alipay (or the bank) refused; as the partner API's
    /// `FAILED`, an answer the POS acts on.
    Refused,
    /// `10003`, or the sub code `ACQ.SYSTEM_ERROR`: not known yet (the POS queries).
    Unknown,
    /// Anything else: an error.
    Error,
}

/// Why a call got no answer to act on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    Timeout,
    Connect,
    /// The connection broke mid-call.
    Io,
    /// The generator had more calls in flight than allowed.
    Overload,
    /// A front-door answer whose signature is missing or does not verify.
    BadSignature,
    /// A front-door answer that is not an Alipay answer at all.
    Unreadable,
    /// The call could not be written (e.g. signing failed).
    Build,
}

impl ErrorKind {
    pub fn name(self) -> &'static str {
        match self {
            ErrorKind::Timeout => "timeout",
            ErrorKind::Connect => "connect",
            ErrorKind::Io => "io",
            ErrorKind::Overload => "generator_overload",
            ErrorKind::BadSignature => "bad_signature",
            ErrorKind::Unreadable => "unreadable",
            ErrorKind::Build => "build",
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
            Answer::Alipay { verdict: Verdict::Error, .. } => Some("alipay_error"),
            Answer::Alipay { .. } => None,
        }
    }

    /// What the answer says of the call: the partner API's `status` field, or an Alipay
    /// verdict in the same words (`SUCCESS`, `FAILED`, `UNKNOWN`).
    pub fn status(&self) -> Option<&'static str> {
        match self {
            Answer::Http { status, .. } => *status,
            Answer::Alipay { verdict: Verdict::Success, .. } => Some("SUCCESS"),
            Answer::Alipay { verdict: Verdict::Refused, .. } => Some("FAILED"),
            Answer::Alipay { verdict: Verdict::Unknown, .. } => Some("UNKNOWN"),
            Answer::Alipay { verdict: Verdict::Error, .. } | Answer::Failed(_) => None,
        }
    }

    /// The status-mix label: `200 SUCCESS`, `202 UNKNOWN`, `404`, `10000 SUCCESS`,
    /// `40004 FAILED`, `40002`, `timeout`.
    pub fn label(&self) -> String {
        match (self, self.status()) {
            (Answer::Http { code, .. }, Some(status)) => format!("{code} {status}"),
            (Answer::Http { code, .. }, None) => code.to_string(),
            (Answer::Alipay { code, .. }, Some(status)) => format!("{code} {status}"),
            (Answer::Alipay { code, .. }, None) => (*code).to_owned(),
            (Answer::Failed(kind), _) => kind.name().to_owned(),
        }
    }
}

#[derive(Deserialize)]
struct Status<'a> {
    #[serde(borrow)]
    status: Option<&'a str>,
}

/// Pooled keep-alive HTTP/1.1, every call bounded by a timeout. Clones share the pool.
#[derive(Clone)]
pub struct Http {
    client: HyperClient<HttpConnector, Full<Bytes>>,
    timeout: Duration,
}

impl Http {
    /// Up to `connections` idle connections kept per host.
    pub fn new(timeout: Duration, connections: usize) -> Http {
        let mut connector = HttpConnector::new();
        connector.set_nodelay(true);
        connector.set_connect_timeout(Some(timeout));
        let client = HyperClient::builder(TokioExecutor::new())
            .pool_timer(TokioTimer::new())
            .pool_idle_timeout(Duration::from_secs(30))
            .pool_max_idle_per_host(connections)
            .build(connector);
        Http { client, timeout }
    }

    /// Sends `request`; its status and whole body, or why there is none.
    pub async fn exchange(&self, request: Request<Full<Bytes>>) -> Result<(u16, Bytes), ErrorKind> {
        self.exchange_timed(request).await.map(|(code, body, _)| (code, body))
    }

    /// [`Http::exchange`], with what the gateway says of its own part ([`gateway_timing`]).
    pub async fn exchange_timed(
        &self,
        request: Request<Full<Bytes>>,
    ) -> Result<(u16, Bytes, Option<GatewayTiming>), ErrorKind> {
        let exchange = async {
            let response = match self.client.request(request).await {
                Ok(response) => response,
                Err(error) if error.is_connect() => return Err(ErrorKind::Connect),
                Err(_) => return Err(ErrorKind::Io),
            };
            let code = response.status().as_u16();
            let timing = response.headers().get("server-timing").and_then(|v| v.to_str().ok()).and_then(gateway_timing);
            let body = response.into_body().collect().await.map_err(|_| ErrorKind::Io)?.to_bytes();
            Ok((code, body, timing))
        };
        tokio::time::timeout(self.timeout, exchange).await.unwrap_or(Err(ErrorKind::Timeout))
    }
}

/// What the gateway says of its own part in a call (`Server-Timing`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GatewayTiming {
    /// From its reading the request to its answer, less the time it waited for Alipay (its ledger
    /// commits included).
    pub added: Duration,
    /// Of that, the intent's durable commit, written before Alipay is called (calls to Alipay
    /// only).
    pub intent: Option<Duration>,
}

/// The gateway's `Server-Timing` (`intent;dur=I, upstream;dur=U, …, total;dur=T`, milliseconds)
/// read: added T − U, intent I. None without a total.
pub fn gateway_timing(timing: &str) -> Option<GatewayTiming> {
    let dur = |name: &str| -> Option<f64> {
        timing.split(',').find_map(|part| part.trim().strip_prefix(name)?.strip_prefix(";dur=")?.parse().ok())
    };
    let of = |ms: f64| Duration::try_from_secs_f64(ms.max(0.0) / 1000.0).ok();
    let added = of(dur("total")? - dur("upstream").unwrap_or(0.0))?;
    Some(GatewayTiming { added, intent: dur("intent").and_then(of) })
}

/// Sends calls to one gateway's partner API.
#[derive(Clone)]
pub struct Client {
    http: Http,
    base: String,
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
        Client::over(Http::new(timeout, connections), base)
    }

    /// A client of the partner API at `base` over `http`.
    pub fn over(http: Http, base: &str) -> Client {
        Client { http, base: base.trim_end_matches('/').to_owned() }
    }

    /// Signs `call` as `tenant` and sends it.
    pub async fn send(&self, tenant: &PosTenant, call: &Call) -> Answer {
        self.send_timed(tenant, call).await.0
    }

    /// [`Client::send`], with what the gateway says of its part ([`gateway_timing`]).
    pub async fn send_timed(&self, tenant: &PosTenant, call: &Call) -> (Answer, Option<GatewayTiming>) {
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
            return (Answer::Failed(ErrorKind::Build), None);
        };
        let (code, body, timing) = match self.http.exchange_timed(request).await {
            Ok(answer) => answer,
            Err(kind) => return (Answer::Failed(kind), None),
        };
        let status = serde_json::from_slice::<Status<'_>>(&body)
            .ok()
            .and_then(|s| s.status)
            .map(|s| STATUSES.into_iter().find(|known| *known == s).unwrap_or("OTHER"));
        (Answer::Http { code, status }, timing)
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
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn what_the_gateway_added_is_its_total_less_alipays_time() {
        let pay = "intent;dur=0.412, upstream;dur=1.250, outcome;dur=0.300, total;dur=2.000";
        let timing = |added, intent| Some(GatewayTiming { added: Duration::from_micros(added), intent });
        assert_eq!(gateway_timing(pay), timing(750, Some(Duration::from_micros(412))));
        assert_eq!(gateway_timing("total;dur=0.120"), timing(120, None), "no call to Alipay");
        assert_eq!(gateway_timing("intent;dur=0.4"), None, "no total");
    }

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

    #[test]
    fn alipay_answers_read_as_the_partner_apis_do() {
        let paid = Answer::Alipay { code: "10000", verdict: Verdict::Success };
        assert_eq!((paid.error_kind(), paid.status(), paid.label().as_str()), (None, Some("SUCCESS"), "10000 SUCCESS"));
        let refused = Answer::Alipay { code: "40004", verdict: Verdict::Refused };
        assert_eq!((refused.error_kind(), refused.label().as_str()), (None, "40004 FAILED"));
        let paying = Answer::Alipay { code: "10003", verdict: Verdict::Unknown };
        assert_eq!((paying.error_kind(), paying.status()), (None, Some("UNKNOWN")));
        let rejected = Answer::Alipay { code: "40002", verdict: Verdict::Error };
        assert_eq!((rejected.error_kind(), rejected.label().as_str()), (Some("alipay_error"), "40002"));
        assert_eq!(Answer::Failed(ErrorKind::BadSignature).error_kind(), Some("bad_signature"));
    }

    #[test]
    fn intents_become_partner_api_calls() {
        let pay = Intent::Pay { out_trade_no: "t1".into(), auth_code: "2800".into(), currency: "CNY".into() };
        let call = Call::of(&pay);
        assert_eq!((call.op, call.method, call.path.as_str()), (Op::Pay, Method::POST, "/v1/payments"));
        let body: serde_json::Value = serde_json::from_slice(&call.body.unwrap_or_default()).unwrap_or_default();
        assert_eq!((body["amount"].as_str(), body["out_trade_no"].as_str()), (Some(AMOUNT), Some("t1")));
        let refund = Call::of(&Intent::Refund { out_trade_no: "t1".into() });
        assert_eq!(refund.path, "/v1/payments/t1/refunds");
        let query = Call::of(&Intent::Query { out_trade_no: "t1".into() });
        assert_eq!((query.method, query.body), (Method::GET, None));
    }
}
