//! Merchant webhooks: the outbox's events, delivered to the tenant's `webhook_url` as JSON,
//! signed as design §3 says (ACQ1-HMAC-SHA256 with the tenant's webhook secret, `Credential` is
//! the tenant's id). A delivery is claimed with a lease (several reconcilers share the outbox),
//! retried with the configured waits (about 25 hours by default), and every attempt is recorded;
//! `reconciler webhooks` lists them. Any 2xx answer is a delivery; merchants deduplicate on the
//! body's `delivery_id`.
//!
//! A production tenant's webhook goes only to a public address over https
//! ([`tenants::url_policy`]): the URL is checked, then the client's resolver refuses a host unless
//! every address it resolves to is public and connects only to an address it checked (no DNS
//! rebinding). A refused attempt is recorded (`refused: …`, no connection made) and retried on the
//! schedule, in case the URL or its DNS is fixed.

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::header;
use http_body_util::Full;
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::{Connect, HttpConnector};
use hyper_util::rt::{TokioExecutor, TokioTimer};
use ledger::store::{AfterAttempt, Attempt, Delivery};
use tenants::url_policy::{self, PublicResolver, Refused, UrlPolicy};
use time::OffsetDateTime;
use tokio::sync::{Semaphore, watch};

use crate::app::Shared;

/// Deliveries claimed at once at most.
const CLAIM: usize = 100;

/// The clients webhooks go out through: `local` (any http(s) URL: sandbox and custom-environment
/// tenants) and `public` (https to checked public addresses only: production tenants). Separate
/// pools, so a connection made for one policy never serves the other.
#[derive(Clone)]
struct Clients {
    local: Client<HttpsConnector<HttpConnector>, Full<Bytes>>,
    public: Client<HttpsConnector<HttpConnector<PublicResolver>>, Full<Bytes>>,
}

fn clients() -> Clients {
    let mut builder = Client::builder(TokioExecutor::new());
    builder.pool_timer(TokioTimer::new()).pool_idle_timeout(Duration::from_secs(30)).pool_max_idle_per_host(8);
    let local = hyper_rustls::HttpsConnectorBuilder::new().with_webpki_roots().https_or_http().enable_http1().build();
    let mut checked = HttpConnector::new_with_resolver(PublicResolver);
    checked.enforce_http(false);
    let public = hyper_rustls::HttpsConnectorBuilder::new()
        .with_webpki_roots()
        .https_only()
        .enable_http1()
        .wrap_connector(checked);
    Clients { local: builder.build(local), public: builder.build(public) }
}

/// Why an attempt got no answer.
enum NoAnswer {
    /// The URL may not be sent to (nothing was connected to).
    Refused(Refused),
    /// Timeout, connection failure, unwritable request.
    Failed(String),
}

/// Runs until `stop`, then waits for the deliveries under way.
pub async fn run(shared: Arc<Shared>, mut stop: watch::Receiver<bool>) {
    let clients = clients();
    let concurrency = shared.config.webhook_concurrency;
    let slots = Arc::new(Semaphore::new(concurrency));
    let timeout = shared.config.webhook_timeout;
    let poll = shared.config.webhook_poll;
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
                    let (shared, clients) = (shared.clone(), clients.clone());
                    tokio::spawn(async move {
                        deliver(&shared, &clients, timeout, delivery).await;
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

async fn deliver(shared: &Shared, clients: &Clients, timeout: Duration, delivery: Delivery) {
    let tenant = shared.checker.snapshots.current().by_id(&delivery.tenant_id).cloned();
    let target = tenant.as_ref().and_then(|t| {
        Some((t.webhook_url.clone()?, t.webhook_secret.as_ref()?, UrlPolicy::for_environment(&t.environment)))
    });
    let Some((url, secret, policy)) = target else {
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
    let result = match url_policy::check(&url, policy) {
        Err(refused) => Err(NoAnswer::Refused(refused)),
        Ok(_) if policy == UrlPolicy::Public => {
            post(&clients.public, timeout, &url, &delivery, secret.expose(), body).await
        }
        Ok(_) => post(&clients.local, timeout, &url, &delivery, secret.expose(), body).await,
    };
    let took_ms = i32::try_from(started.elapsed().as_millis()).unwrap_or(i32::MAX);
    let refused = matches!(result, Err(NoAnswer::Refused(_)));
    let (http_status, error) = match result {
        Ok(status) if (200..300).contains(&status) => (Some(i32::from(status)), None),
        Ok(status) => (Some(i32::from(status)), Some(format!("HTTP {status}"))),
        Err(NoAnswer::Refused(refused)) => {
            tracing::warn!(tenant = %delivery.tenant_id, delivery = delivery.id, %refused, "webhook URL refused");
            (None, Some(format!("refused: {refused}")))
        }
        Err(NoAnswer::Failed(error)) => (None, Some(error)),
    };
    let attempt = Attempt { attempt: delivery.attempts + 1, at, took_ms, http_status, error };
    let waits = &shared.config.webhook_retry_ms;
    let (after, result) = match &attempt.error {
        None => (AfterAttempt::Delivered, "delivered"),
        Some(_) => match waits.get(usize::try_from(delivery.attempts).unwrap_or(usize::MAX)) {
            Some(wait) => {
                let label = if refused { "refused" } else { "failed" };
                (AfterAttempt::RetryAt(OffsetDateTime::now_utc() + Duration::from_millis(*wait)), label)
            }
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
async fn post<C: Connect + Clone + Send + Sync + 'static>(
    client: &Client<C, Full<Bytes>>,
    timeout: Duration,
    url: &str,
    delivery: &Delivery,
    secret: &str,
    body: Bytes,
) -> Result<u16, NoAnswer> {
    let failed = |text: String| NoAnswer::Failed(text);
    let uri: http::Uri = url.parse().map_err(|_| failed("the webhook URL is not a URL".to_owned()))?;
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
        .map_err(|e| failed(e.to_string()))?;
    match tokio::time::timeout(timeout, client.request(request)).await {
        Err(_) => Err(failed("timed out".into())),
        Ok(Err(error)) => match url_policy::refusal_in(&error) {
            Some(refused) => Err(NoAnswer::Refused(refused.clone())),
            None => Err(failed(format!("connection: {error}"))),
        },
        Ok(Ok(response)) => Ok(response.status().as_u16()),
    }
}
