//! Merchant webhooks: the outbox's events, delivered to the tenant's `webhook_url` as JSON,
//! signed as design §3 says (ACQ1-HMAC-SHA256 with the tenant's webhook secret, `Credential` is
//! the tenant's id). A delivery is claimed with a lease (several reconcilers share the outbox),
//! retried with the configured waits (about 25 hours by default), and every attempt is recorded;
//! `reconciler webhooks` lists them. Any 2xx answer is a delivery; merchants deduplicate on the
//! body's `delivery_id`.

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::header;
use http_body_util::Full;
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioTimer};
use ledger::store::{AfterAttempt, Attempt, Delivery};
use time::OffsetDateTime;
use tokio::sync::{Semaphore, watch};

use crate::app::Shared;

/// Deliveries claimed at once at most.
const CLAIM: usize = 100;

type HttpClient = Client<HttpsConnector<HttpConnector>, Full<Bytes>>;

fn client() -> HttpClient {
    let connector =
        hyper_rustls::HttpsConnectorBuilder::new().with_webpki_roots().https_or_http().enable_http1().build();
    Client::builder(TokioExecutor::new())
        .pool_timer(TokioTimer::new())
        .pool_idle_timeout(Duration::from_secs(30))
        .pool_max_idle_per_host(8)
        .build(connector)
}

/// Runs until `stop`, then waits for the deliveries under way.
pub async fn run(shared: Arc<Shared>, mut stop: watch::Receiver<bool>) {
    let client = client();
    let concurrency = shared.config.webhook_concurrency;
    let slots = Arc::new(Semaphore::new(concurrency));
    let timeout = Duration::from_millis(shared.config.webhook_timeout_ms);
    let poll = Duration::from_millis(shared.config.webhook_poll_ms);
    while !*stop.borrow() {
        let free = slots.available_permits().min(CLAIM);
        let now = OffsetDateTime::now_utc();
        let claimed = if free == 0 {
            Ok(Vec::new())
        } else {
            shared.store.claim_webhooks(now, now + timeout + Duration::from_secs(5), free as i64).await
        };
        let idle = match claimed {
            Ok(deliveries) => {
                let idle = deliveries.is_empty();
                for delivery in deliveries {
                    let Ok(slot) = slots.clone().try_acquire_owned() else { break };
                    let (shared, client) = (shared.clone(), client.clone());
                    tokio::spawn(async move {
                        deliver(&shared, &client, timeout, delivery).await;
                        drop(slot);
                    });
                }
                idle
            }
            Err(error) => {
                tracing::warn!(%error, "could not claim webhook deliveries");
                true
            }
        };
        if idle {
            tokio::select! {
                () = tokio::time::sleep(poll) => {}
                _ = stop.changed() => {}
            }
        }
    }
    let _ = slots.acquire_many(u32::try_from(concurrency).unwrap_or(u32::MAX)).await;
}

async fn deliver(shared: &Shared, client: &HttpClient, timeout: Duration, delivery: Delivery) {
    let tenant = shared.checker.snapshots.current().by_id(&delivery.tenant_id).cloned();
    let target = tenant.as_ref().and_then(|t| Some((t.webhook_url.clone()?, t.webhook_secret.as_ref()?)));
    let Some((url, secret)) = target else {
        let reason = "the tenant has no webhook URL";
        record(shared, &delivery, None, Some(reason), AfterAttempt::Abandon, "abandoned").await;
        return;
    };
    let mut body = delivery.payload.clone();
    if let Some(fields) = body.as_object_mut() {
        fields.insert("delivery_id".into(), delivery.id.into());
    }
    let body = Bytes::from(serde_json::to_vec(&body).unwrap_or_default());
    let at = OffsetDateTime::now_utc();
    let started = Instant::now();
    let result = post(client, timeout, &url, &delivery, secret.expose(), body).await;
    let took_ms = i32::try_from(started.elapsed().as_millis()).unwrap_or(i32::MAX);
    let (http_status, error) = match result {
        Ok(status) if (200..300).contains(&status) => (Some(i32::from(status)), None),
        Ok(status) => (Some(i32::from(status)), Some(format!("HTTP {status}"))),
        Err(error) => (None, Some(error)),
    };
    let attempt = Attempt { attempt: delivery.attempts + 1, at, took_ms, http_status, error };
    let waits = &shared.config.webhook_retry_ms;
    let (after, result) = match &attempt.error {
        None => (AfterAttempt::Delivered, "delivered"),
        Some(_) => match waits.get(usize::try_from(delivery.attempts).unwrap_or(usize::MAX)) {
            Some(wait) => (AfterAttempt::RetryAt(OffsetDateTime::now_utc() + Duration::from_millis(*wait)), "failed"),
            None => (AfterAttempt::Abandon, "abandoned"),
        },
    };
    let error = attempt.error.clone();
    record(shared, &delivery, Some(&attempt), error.as_deref(), after, result).await;
}

async fn record(
    shared: &Shared,
    delivery: &Delivery,
    attempt: Option<&Attempt>,
    error: Option<&str>,
    after: AfterAttempt,
    result: &'static str,
) {
    metrics::counter!("reconciler_webhook_attempts_total", "result" => result).increment(1);
    match shared.store.record_webhook_attempt(delivery, attempt, error, after).await {
        Ok(true) => {}
        Ok(false) => tracing::info!(delivery = delivery.id, "another reconciler recorded this delivery first"),
        Err(error) => tracing::warn!(%error, delivery = delivery.id, "attempt not recorded; it will be made again"),
    }
}

/// Posts one delivery; answers the merchant's HTTP status, or why there was none.
async fn post(
    client: &HttpClient,
    timeout: Duration,
    url: &str,
    delivery: &Delivery,
    secret: &str,
    body: Bytes,
) -> Result<u16, String> {
    let uri: http::Uri = url.parse().map_err(|_| "the webhook URL is not a URL".to_owned())?;
    let path_and_query = uri.path_and_query().map_or("/", |p| p.as_str());
    let nonce = uuid::Uuid::new_v4().simple().to_string();
    let now = OffsetDateTime::now_utc().unix_timestamp();
    let tenant = delivery.tenant_id.to_string();
    let authorization = tenants::signature::authorization(&tenant, secret, "POST", path_and_query, now, &nonce, &body);
    let request = http::Request::post(uri)
        .header(header::CONTENT_TYPE, "application/json")
        .header(header::AUTHORIZATION, authorization)
        .header("acq-event", delivery.event.as_str())
        .body(Full::new(body))
        .map_err(|e| e.to_string())?;
    match tokio::time::timeout(timeout, client.request(request)).await {
        Err(_) => Err("timed out".into()),
        Ok(Err(error)) => Err(format!("connection: {error}")),
        Ok(Ok(response)) => Ok(response.status().as_u16()),
    }
}
