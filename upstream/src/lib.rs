//! Calls to Alipay: signed in the merchant's dialect with the merchant's key, sent over one pooled
//! keep-alive client (TLS through rustls and AWS-LC, or plain HTTP for a custom gateway such as
//! our sandbox), bounded by a deadline, and counted only once the answer's signature verifies.
//! Anything short of a verified answer (timeout, connection failure, HTTP status, bad signature,
//! unreadable body) is an UNKNOWN answer, never a failure. Used by the gateway and the reconciler.
//!
//! # Layout
//! - [`mod@self`]: [`Upstream`], [`Target`] and [`NotSent`]; [`Upstream::call_for`] calls as a
//!   tenant of the snapshot.
//! - [`call`]: the one path of a call made on a trade's behalf (intent → Alipay → record →
//!   after-effects), with its timing, metrics and crash windows; [`Upstream::make`] runs one.
//! - [`names`]: Alipay's host names resolved once for the many connections opened at once.

pub mod call;
pub mod names;

use std::time::{Duration, Instant};

use alipay::unified::{self, Answer, Merchant, Request};
use alipay::{Outcome, UnknownReason, Verifier};
use bytes::Bytes;
use http::header;
use http_body_util::{BodyExt, Full, Limited};
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::connect::dns::GaiResolver;
use hyper_util::rt::{TokioExecutor, TokioTimer};
use tenants::snapshot::Tenant;
use time::OffsetDateTime;

use crate::names::CachedNames;

/// The largest answer read from Alipay.
const MAX_ANSWER_BYTES: usize = 1024 * 1024;
/// An answer is read this much at a time; its head (status line and headers) must fit in it.
const ANSWER_READ_STEP: usize = 4 * 1024;

/// Nothing was sent: the request could not even be built.
#[derive(Debug, thiserror::Error)]
#[error("request not sent: {0}")]
pub struct NotSent(pub String);

/// Where a call goes and who makes it.
#[derive(Debug, Clone, Copy)]
pub struct Target<'a> {
    /// The merchant's `gateway.do`.
    pub url: &'a str,
    pub merchant: Merchant<'a>,
    /// Checks the answer (Alipay's public key, or the merchant's MD5 key).
    pub verifier: &'a Verifier,
}

/// The client every call goes through.
pub struct Upstream {
    client: Client<HttpsConnector<HttpConnector<CachedNames<GaiResolver>>>, Full<Bytes>>,
    timeout: Duration,
}

impl Upstream {
    /// A client whose calls end, UNKNOWN, after `timeout`.
    pub fn new(timeout: Duration) -> Self {
        let mut http = HttpConnector::new_with_resolver(CachedNames::new(GaiResolver::new()));
        http.enforce_http(false);
        // A request goes out whole at once, never held back waiting for the last one's ACK.
        http.set_nodelay(true);
        http.set_connect_timeout(Some(timeout));
        let connector = hyper_rustls::HttpsConnectorBuilder::new()
            .with_webpki_roots()
            .https_or_http()
            .enable_http1()
            .wrap_connector(http);
        let client = Client::builder(TokioExecutor::new())
            .pool_timer(TokioTimer::new())
            .pool_idle_timeout(Duration::from_secs(60))
            .pool_max_idle_per_host(512)
            // Alipay's answers are a few KiB: read in 4 KiB steps, not hyper's adaptive 8 KiB and
            // up, held by every connection waiting on Alipay (thousands when Alipay is slow).
            .http1_read_buf_exact_size(ANSWER_READ_STEP)
            .build(connector);
        Upstream { client, timeout }
    }

    /// Signs `request` for the target's merchant, sends it, and reads what the answer proves.
    pub async fn call(&self, target: &Target<'_>, request: &Request<'_>) -> Result<Answer, NotSent> {
        let params =
            unified::build(&target.merchant, request, OffsetDateTime::now_utc()).map_err(|e| NotSent(e.to_string()))?;
        let form = params.to_form(unified::CHARSET).map_err(|e| NotSent(e.to_string()))?;
        let http_request = http::Request::post(target.url)
            .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded;charset=utf-8")
            .body(Full::new(Bytes::from(form)))
            .map_err(|e| NotSent(e.to_string()))?;
        let kind = request.kind();
        let started = Instant::now();
        let exchange = async {
            let response = self.client.request(http_request).await.map_err(|_| UnknownReason::Connection)?;
            let status = response.status();
            let body = Limited::new(response.into_body(), MAX_ANSWER_BYTES)
                .collect()
                .await
                .map_err(|_| UnknownReason::Connection)?
                .to_bytes();
            if status != http::StatusCode::OK {
                return Err(UnknownReason::HttpStatus(status.as_u16()));
            }
            Ok(body)
        };
        let answer = match tokio::time::timeout(self.timeout, exchange).await {
            Err(_) => Answer::unknown(UnknownReason::Timeout),
            Ok(Err(reason)) => Answer::unknown(reason),
            Ok(Ok(body)) => unified::read(target.merchant.dialect, kind, &body, target.verifier),
        };
        let outcome = match &answer.outcome {
            Outcome::Success => "success",
            Outcome::Failed(_) => "failed",
            Outcome::Unknown(_) => "unknown",
        };
        let dialect = match target.merchant.dialect {
            alipay::unified::Dialect::OpenApi => "openapi",
            alipay::unified::Dialect::Mapi => "mapi",
        };
        metrics::histogram!("upstream_seconds", "call" => kind.as_str(), "dialect" => dialect)
            .record(started.elapsed().as_secs_f64());
        metrics::counter!("upstream_answers_total", "call" => kind.as_str(), "dialect" => dialect, "outcome" => outcome)
            .increment(1);
        Ok(answer)
    }

    /// Signs `request` with `tenant`'s key and sends it to the tenant's gateway.
    pub async fn call_for(
        &self,
        tenant: &Tenant,
        notify_url: Option<&str>,
        request: &Request<'_>,
    ) -> Result<Answer, NotSent> {
        let store_id = match request {
            Request::Pay { order, .. } | Request::Precreate { order, .. } => order.store_id.map(|s| s.as_str()),
            _ => None,
        };
        let extend = tenant.extend_info(store_id);
        let (Some(merchant), Some(verifier)) =
            (tenant.merchant(notify_url, extend.as_deref()), tenant.alipay_verifier.as_deref())
        else {
            return Err(NotSent("the tenant's keys are not set".into()));
        };
        self.call(&Target { url: &tenant.gateway_url, merchant, verifier }, request).await
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use alipay::{Md5Key, OutTradeNo, Signer};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::TcpListener;

    use super::*;

    /// A stand-in Alipay that answers its first request with `answer`, then closes.
    async fn answering(answer: Vec<u8>) -> String {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/gateway.do", listener.local_addr().unwrap());
        tokio::spawn(async move {
            let (mut stream, _) = listener.accept().await.unwrap();
            let mut request = vec![0; 64 * 1024];
            let _ = stream.read(&mut request).await.unwrap();
            stream.write_all(&answer).await.unwrap();
            stream.shutdown().await.unwrap();
        });
        url
    }

    #[tokio::test]
    async fn an_answer_longer_than_a_read_step_is_read_whole() {
        // Answers are read ANSWER_READ_STEP at a time: a head nearly that long (a load balancer's
        // cookies) and a body ten times longer still arrive whole. Unsigned, this one is UNKNOWN
        // for what it says, not for how it came.
        let body = format!(
            r#"{{"alipay_trade_query_response":{{"code":"10000","msg":"Success","pad":"{}"}}}}"#,
            "x".repeat(10 * ANSWER_READ_STEP)
        );
        let cookie = "c".repeat(ANSWER_READ_STEP - 512);
        let answer = format!(
            "HTTP/1.1 200 OK\r\ncontent-type: text/html;charset=utf-8\r\nset-cookie: {cookie}\r\n\
             content-length: {}\r\n\r\n{body}",
            body.len()
        );
        let url = answering(answer.into_bytes()).await;
        assert_eq!(query(&url).await, Outcome::Unknown(UnknownReason::Unsigned));
    }

    #[tokio::test]
    async fn a_gateway_named_by_its_host_is_reached_through_the_name_cache() {
        let body = r#"{"alipay_trade_query_response":{"code":"10000","msg":"Success"}}"#;
        let answer = format!("HTTP/1.1 200 OK\r\ncontent-length: {}\r\n\r\n{body}", body.len());
        let url = answering(answer.into_bytes()).await.replace("127.0.0.1", "localhost");
        assert_eq!(query(&url).await, Outcome::Unknown(UnknownReason::Unsigned), "reached {url}");
    }

    /// What an MD5-signed query sent to `url` comes back as.
    async fn query(url: &str) -> Outcome {
        let key = || Md5Key::new("x7k2m9q4w8e1r5t3y6u0i2o4p8a1s5d3").unwrap();
        let (signer, verifier) = (Signer::md5(key()), Verifier::md5(key()));
        let merchant = Merchant {
            dialect: unified::Dialect::OpenApi,
            id: "2021000000000001",
            seller_id: None,
            signer: &signer,
            notify_url: None,
            extend_info: None,
        };
        let out_trade_no: OutTradeNo = "T-1".parse().unwrap();
        let upstream = Upstream::new(Duration::from_secs(5));
        let target = Target { url, merchant, verifier: &verifier };
        upstream.call(&target, &Request::Query { out_trade_no: &out_trade_no }).await.unwrap().outcome
    }
}
