//! Calls to Alipay: signed with the tenant's key in the tenant's dialect, sent over one pooled
//! keep-alive client (TLS through rustls and AWS-LC, or plain HTTP for a custom gateway such as
//! our sandbox), bounded by a deadline, and answered only once the signature verifies.
//!
//! Anything short of a verified answer (timeout, connection failure, HTTP status, bad signature,
//! unreadable body) is an UNKNOWN answer, never a failure.

use std::time::{Duration, Instant};

use alipay::UnknownReason;
use alipay::unified::{self, Answer, Dialect, Merchant, Request};
use bytes::Bytes;
use http::header;
use http_body_util::{BodyExt, Full, Limited};
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioTimer};
use serde_json::json;
use tenants::model;
use tenants::snapshot::Tenant;
use time::OffsetDateTime;

/// The largest answer read from Alipay.
const MAX_ANSWER_BYTES: usize = 1024 * 1024;

/// Nothing was sent: the request could not even be built.
#[derive(Debug, thiserror::Error)]
#[error("request not sent: {0}")]
pub struct NotSent(pub String);

/// The client every call goes through.
pub struct Upstream {
    client: Client<HttpsConnector<HttpConnector>, Full<Bytes>>,
    timeout: Duration,
}

/// The tenant's dialect, as the protocol crate names it.
pub fn dialect(tenant: &Tenant) -> Dialect {
    match tenant.dialect {
        model::Dialect::Openapi => Dialect::OpenApi,
        model::Dialect::Mapi => Dialect::Mapi,
    }
}

/// MAPI `extend_info`: the secondary merchant, and the store when the tenant knows it.
fn extend_info(tenant: &Tenant, store_id: Option<&str>) -> Option<String> {
    let merchant = tenant.secondary_merchant.as_ref()?;
    let store = store_id.and_then(|id| merchant.stores.iter().find(|s| s.id == id));
    let mut info = json!({
        "secondary_merchant_id": merchant.merchant_id,
        "secondary_merchant_name": merchant.name,
        "secondary_merchant_industry": merchant.mcc,
    });
    if let Some(id) = store_id {
        info["store_id"] = json!(id);
    }
    if let Some(store) = store {
        info["store_name"] = json!(store.name);
    }
    Some(info.to_string())
}

fn store_of<'a>(request: &Request<'a>) -> Option<&'a str> {
    match request {
        Request::Pay { order, .. } | Request::Precreate { order, .. } => order.store_id.map(|s| s.as_str()),
        _ => None,
    }
}

impl Upstream {
    pub fn new(timeout: Duration) -> Self {
        let connector =
            hyper_rustls::HttpsConnectorBuilder::new().with_webpki_roots().https_or_http().enable_http1().build();
        let client = Client::builder(TokioExecutor::new())
            .pool_timer(TokioTimer::new())
            .pool_idle_timeout(Duration::from_secs(60))
            .pool_max_idle_per_host(512)
            .build(connector);
        Upstream { client, timeout }
    }

    /// Signs `request` for `tenant`, sends it, and reads what the answer proves.
    pub async fn call(
        &self,
        tenant: &Tenant,
        notify_url: Option<&str>,
        request: &Request<'_>,
    ) -> Result<Answer, NotSent> {
        let (Some(signer), Some(verifier)) = (&tenant.signer, &tenant.alipay_verifier) else {
            return Err(NotSent("the tenant's keys are not set".into()));
        };
        let extend = extend_info(tenant, store_of(request));
        let merchant = Merchant {
            dialect: dialect(tenant),
            id: &tenant.alipay_id,
            seller_id: tenant.seller_id.as_deref(),
            signer,
            notify_url,
            extend_info: extend.as_deref(),
        };
        let params =
            unified::build(&merchant, request, OffsetDateTime::now_utc()).map_err(|e| NotSent(e.to_string()))?;
        let form = params.to_form(unified::CHARSET).map_err(|e| NotSent(e.to_string()))?;
        let http_request = http::Request::post(tenant.gateway_url.as_str())
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
            Ok(Ok(body)) => unified::read(merchant.dialect, kind, &body, verifier),
        };
        let outcome = match &answer.outcome {
            alipay::Outcome::Success => "success",
            alipay::Outcome::Failed(_) => "failed",
            alipay::Outcome::Unknown(_) => "unknown",
        };
        metrics::histogram!("gateway_upstream_seconds", "call" => kind.as_str())
            .record(started.elapsed().as_secs_f64());
        metrics::counter!("gateway_upstream_answers_total", "call" => kind.as_str(), "outcome" => outcome).increment(1);
        Ok(answer)
    }
}
