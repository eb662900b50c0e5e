//! Merchant webhooks (and Alipay notifications owed to front-door POS software, see
//! [`crate::pos_notify`]): the outbox's events, delivered to the tenant's `webhook_url` as JSON,
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
use http_body_util::{BodyExt, Full, Limited};
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::{Connect, HttpConnector};
use hyper_util::rt::{TokioExecutor, TokioTimer};
use ledger::store::{AfterAttempt, Attempt, Delivery};
use tenants::url_policy::{self, PublicResolver, Refused, UrlPolicy};
use time::OffsetDateTime;
use tokio::sync::{Semaphore, watch};

use crate::app::Shared;
use crate::pos_notify;

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

/// One delivery as it goes out: where, the request, and what answer counts as delivered.
struct Outgoing {
    url: String,
    policy: UrlPolicy,
    request: http::Request<Full<Bytes>>,
    /// Alipay notifications count only when the POS answers the body `success`.
    wants_success_body: bool,
    waits: Vec<u64>,
}

/// Builds the request of `delivery`: the merchant's signed JSON webhook, or the Alipay
/// notification owed to a front-door POS. `Err` says why it cannot go anywhere.
fn outgoing(shared: &Shared, delivery: &Delivery, now: OffsetDateTime) -> Result<Outgoing, String> {
    let tenant = shared.checker.snapshots.current().by_id(&delivery.tenant_id).cloned();
    let tenant = tenant.ok_or("the tenant is gone")?;
    let policy = UrlPolicy::for_environment(&tenant.environment);
    if delivery.event == pos_notify::EVENT {
        let form = pos_notify::form(&tenant, delivery, now)?;
        let request = http::Request::post(form.url.as_str())
            .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded;charset=utf-8")
            .body(Full::new(Bytes::from(form.body)))
            .map_err(|_| "the notify_url is not a URL".to_owned())?;
        let waits = shared.config.notify_retry_ms.clone();
        return Ok(Outgoing { url: form.url, policy, request, wants_success_body: true, waits });
    }
    let (Some(url), Some(secret)) = (tenant.webhook_url.clone(), tenant.webhook_secret.as_ref()) else {
        return Err("the tenant has no webhook URL".into());
    };
    let mut body = delivery.payload.clone();
    if let Some(fields) = body.as_object_mut() {
        fields.insert("delivery_id".into(), delivery.id.into());
    }
    let body = Bytes::from(serde_json::to_vec(&body).unwrap_or_default());
    let uri: http::Uri = url.parse().map_err(|_| "the webhook URL is not a URL".to_owned())?;
    let path_and_query = uri.path_and_query().map_or("/", |p| p.as_str());
    let nonce = uuid::Uuid::new_v4().simple().to_string();
    let tenant_id = delivery.tenant_id.to_string();
    let authorization = tenants::signature::authorization(
        &tenant_id,
        secret.expose(),
        "POST",
        path_and_query,
        now.unix_timestamp(),
        &nonce,
        &body,
    );
    let request = http::Request::post(uri)
        .header(header::CONTENT_TYPE, "application/json")
        .header(header::AUTHORIZATION, authorization)
        .header("acq-event", delivery.event.as_str())
        .body(Full::new(body))
        .map_err(|e| e.to_string())?;
    Ok(Outgoing { url, policy, request, wants_success_body: false, waits: shared.config.webhook_retry_ms.clone() })
}

async fn deliver(shared: &Shared, clients: &Clients, timeout: Duration, delivery: Delivery) {
    let at = OffsetDateTime::now_utc();
    let outgoing = match outgoing(shared, &delivery, at) {
        Ok(outgoing) => outgoing,
        Err(reason) => {
            record(shared, &delivery, None, Some(&reason), AfterAttempt::Abandon, "abandoned").await;
            return;
        }
    };
    let Outgoing { url, policy, request, wants_success_body, waits } = outgoing;
    let started = Instant::now();
    let result = match url_policy::check(&url, policy) {
        Err(refused) => Err(NoAnswer::Refused(refused)),
        Ok(_) if policy == UrlPolicy::Public => send(&clients.public, timeout, request).await,
        Ok(_) => send(&clients.local, timeout, request).await,
    };
    let took_ms = i32::try_from(started.elapsed().as_millis()).unwrap_or(i32::MAX);
    let refused = matches!(result, Err(NoAnswer::Refused(_)));
    let (http_status, error) = match result {
        Ok((status, _)) if !(200..300).contains(&status) => (Some(i32::from(status)), Some(format!("HTTP {status}"))),
        Ok((status, body)) if wants_success_body && body.trim_ascii() != alipay::notify::ACK_BODY.as_bytes() => {
            (Some(i32::from(status)), Some("the answer was not `success`".to_owned()))
        }
        Ok((status, _)) => (Some(i32::from(status)), None),
        Err(NoAnswer::Refused(refused)) => {
            tracing::warn!(tenant = %delivery.tenant_id, delivery = delivery.id, %refused, "delivery URL refused");
            (None, Some(format!("refused: {refused}")))
        }
        Err(NoAnswer::Failed(error)) => (None, Some(error)),
    };
    let attempt = Attempt { attempt: delivery.attempts + 1, at, took_ms, http_status, error };
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

/// The most of an answer's body read (enough for `success`).
const MAX_ANSWER_BYTES: usize = 1024;

/// Sends one delivery; answers the receiver's HTTP status and the start of its body, or why
/// there was none.
async fn send<C: Connect + Clone + Send + Sync + 'static>(
    client: &Client<C, Full<Bytes>>,
    timeout: Duration,
    request: http::Request<Full<Bytes>>,
) -> Result<(u16, Bytes), NoAnswer> {
    let exchange = async {
        let response = client.request(request).await?;
        let status = response.status().as_u16();
        let body = Limited::new(response.into_body(), MAX_ANSWER_BYTES).collect().await;
        Ok::<_, hyper_util::client::legacy::Error>((status, body.map(|b| b.to_bytes()).unwrap_or_default()))
    };
    match tokio::time::timeout(timeout, exchange).await {
        Err(_) => Err(NoAnswer::Failed("timed out".into())),
        Ok(Err(error)) => match url_policy::refusal_in(&error) {
            Some(refused) => Err(NoAnswer::Refused(refused.clone())),
            None => Err(NoAnswer::Failed(format!("connection: {error}"))),
        },
        Ok(Ok(answer)) => Ok(answer),
    }
}
