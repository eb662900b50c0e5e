//! Merchant webhooks: every UNKNOWN payment's end is told to the merchant, signed with the
//! tenant's webhook secret, retried while the merchant fails, every attempt recorded and listed.

use std::convert::Infallible;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use alipay::SignType;
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper::{Request, Response};
use serde_json::Value;
use stack::*;
use tenants::model::Dialect;
use tokio::net::TcpListener;

use crate::helpers::*;

/// A merchant's webhook endpoint: answers 500 to the first `failures` requests, then 200;
/// keeps what it was sent.
#[derive(Clone, Default)]
struct Merchant {
    /// (authorization, path and query, body) of every request.
    received: Arc<Mutex<Vec<(String, String, Bytes)>>>,
}

impl Merchant {
    async fn listen(&self, failures: usize) -> String {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/hooks/alipay?shop=1", listener.local_addr().unwrap());
        let received = self.received.clone();
        tokio::spawn(async move {
            loop {
                let (stream, _) = listener.accept().await.unwrap();
                let received = received.clone();
                let service = service_fn(move |request: Request<Incoming>| {
                    let received = received.clone();
                    async move {
                        let authorization = request.headers()["authorization"].to_str().unwrap().to_owned();
                        let path = request.uri().path_and_query().unwrap().to_string();
                        let body = request.into_body().collect().await.unwrap().to_bytes();
                        let mut all = received.lock().unwrap();
                        all.push((authorization, path, body));
                        let status = if all.len() <= failures { 500 } else { 200 };
                        let mut response = Response::new(Full::new(Bytes::from_static(b"ok")));
                        *response.status_mut() = hyper::StatusCode::from_u16(status).unwrap();
                        Ok::<_, Infallible>(response)
                    }
                });
                let io = hyper_util::rt::TokioIo::new(stream);
                tokio::spawn(hyper::server::conn::http1::Builder::new().serve_connection(io, service));
            }
        });
        url
    }
}

/// Checks the signature the way a merchant would: over the bytes received, with its secret.
fn signed_by(authorization: &str, path: &str, body: &[u8], tenant: uuid::Uuid, secret: &str) -> bool {
    let Some(parsed) = tenants::signature::parse(authorization) else { return false };
    let expected = tenants::signature::authorization(
        &tenant.to_string(),
        secret,
        "POST",
        path,
        parsed.timestamp,
        parsed.nonce,
        body,
    );
    parsed.key_id == tenant.to_string() && expected == authorization
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn merchants_hear_how_unknown_payments_ended_signed_and_retried() {
    let stack = Stack::start(Options { notifications: false, ..Options::scaled(SCALE) }).await;
    let merchant = Merchant::default();
    let url = merchant.listen(2).await;
    let (pos, secret) = stack.tenant_with_webhook(Dialect::Openapi, SignType::Rsa2, generous(), Some(url)).await;
    let reconciler = stack.start_reconciler(stack.reconciler_config()).await;
    let (paid, cancelled) = (trade_no("w"), trade_no("w"));
    pos.charge(&paid, &code("60"), "9.99").await;
    pos.charge(&cancelled, &code("61"), "9.99").await;
    final_trade(&stack, &pos, &paid, Duration::from_secs(20)).await;
    final_trade(&stack, &pos, &cancelled, Duration::from_secs(20)).await;

    let store = &reconciler.shared().store;
    let delivered = tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            let reports = store.webhook_deliveries(pos.tenant_id, 10).await.unwrap();
            if reports.len() == 2 && reports.iter().all(|r| r.status == "delivered") {
                return reports;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await
    .expect("both delivered");
    let attempts: usize = delivered.iter().map(|r| r.history.len()).sum();
    assert_eq!(attempts, 4, "two failed attempts, retried, then two deliveries");

    let received = merchant.received.lock().unwrap().clone();
    assert_eq!(received.len(), 4);
    for (authorization, path, body) in &received {
        assert_eq!(path, "/hooks/alipay?shop=1");
        assert!(signed_by(authorization, path, body, pos.tenant_id, &secret), "{authorization}");
    }
    let bodies: Vec<Value> = received.iter().map(|(_, _, body)| serde_json::from_slice(body).unwrap()).collect();
    let event_of = |no: &str| bodies.iter().rev().find(|b| b["out_trade_no"] == no).cloned().unwrap();
    let (paid_event, cancelled_event) = (event_of(&paid), event_of(&cancelled));
    assert_eq!(
        (paid_event["event"].as_str(), paid_event["status"].as_str()),
        (Some("payment.succeeded"), Some("SUCCESS"))
    );
    assert_eq!(
        (cancelled_event["event"].as_str(), cancelled_event["cancel_action"].as_str()),
        (Some("payment.cancelled"), Some("close"))
    );
    assert!(paid_event["delivery_id"].as_i64().is_some());

    // Ops list them with the CLI.
    let listed = std::process::Command::new(env!("CARGO_BIN_EXE_reconciler"))
        .args(["webhooks", "--tenant", &pos.slug, "--json"])
        .env("RECONCILER_DATABASE_URL", &stack.db.url)
        .output()
        .unwrap();
    assert!(listed.status.success(), "{}", String::from_utf8_lossy(&listed.stderr));
    let listed: Value = serde_json::from_slice(&listed.stdout).unwrap();
    let statuses: Vec<_> = listed.as_array().unwrap().iter().map(|d| d["status"].as_str().unwrap()).collect();
    assert_eq!(statuses, ["delivered", "delivered"]);
    let metrics =
        reqwest::get(format!("http://{}/metrics", reconciler.admin_addr())).await.unwrap().text().await.unwrap();
    assert!(counter(&metrics, "reconciler_webhook_attempts_total", "result=\"delivered\"") >= 2.0, "{metrics}");
    reconciler.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deliveries_that_keep_failing_are_abandoned_after_the_last_retry() {
    let stack = Stack::start(Options { notifications: false, ..Options::scaled(SCALE) }).await;
    let merchant = Merchant::default();
    let url = merchant.listen(usize::MAX).await;
    let (failing, _) = stack.tenant_with_webhook(Dialect::Mapi, SignType::Md5, generous(), Some(url)).await;
    let silent = stack.mapi_tenant().await;
    let reconciler = stack.start_reconciler(stack.reconciler_config()).await;
    for pos in [&failing, &silent] {
        let no = trade_no("a");
        pos.charge(&no, &code("62"), "1.00").await;
        final_trade(&stack, pos, &no, Duration::from_secs(20)).await;
    }
    let store = &reconciler.shared().store;
    let report = |tenant| async move {
        tokio::time::timeout(Duration::from_secs(10), async {
            loop {
                let reports = store.webhook_deliveries(tenant, 10).await.unwrap();
                if reports.first().is_some_and(|r| r.status == "abandoned") {
                    return reports[0].clone();
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        })
        .await
        .expect("abandoned")
    };
    let abandoned = report(failing.tenant_id).await;
    let statuses: Vec<_> = abandoned.history.iter().map(|a| a.http_status).collect();
    assert_eq!(statuses, [Some(500); 4], "the first attempt and three retries");
    assert!(store.webhook_deliveries(silent.tenant_id, 10).await.unwrap().is_empty(), "no URL, no deliveries");
    reconciler.stop().await;
}

/// Makes `pos`'s tenant a production one whose webhook URL is `url`, as if the URL had passed
/// the check when saved and its name now resolved elsewhere (DNS changed), and queues an event.
async fn production_with_webhook(stack: &Stack, pos: &Pos, url: &str) {
    let client = stack.db.client().await;
    let moved = "UPDATE tenants SET environment = 'production', upstream_url = NULL, webhook_url = $2, \
                 version = version + 1 WHERE id = $1";
    assert_eq!(client.execute(moved, &[&pos.tenant_id, &url]).await.unwrap(), 1);
    let event = "INSERT INTO webhook_outbox (tenant_id, out_trade_no, event, payload) \
                 VALUES ($1, 'T-1', 'payment.succeeded', '{\"event\": \"payment.succeeded\"}')";
    client.execute(event, &[&pos.tenant_id]).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_production_webhook_that_resolves_to_a_private_address_is_refused_without_connecting() {
    let stack = Stack::start(Options { notifications: false, ..Options::scaled(SCALE) }).await;
    // Where the webhooks would land: nobody accepts; a connection would wait in the backlog.
    let trap = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = trap.local_addr().unwrap().port();
    let by_name = stack.tenant_with_webhook(Dialect::Mapi, SignType::Md5, generous(), None).await.0;
    let by_address = stack.tenant_with_webhook(Dialect::Mapi, SignType::Md5, generous(), None).await.0;
    production_with_webhook(&stack, &by_name, &format!("https://localhost:{port}/hooks")).await;
    production_with_webhook(&stack, &by_address, &format!("https://127.0.0.1:{port}/hooks")).await;
    let reconciler = stack.start_reconciler(stack.reconciler_config()).await;

    let store = &reconciler.shared().store;
    for pos in [&by_name, &by_address] {
        let attempt = tokio::time::timeout(Duration::from_secs(15), async {
            loop {
                let reports = store.webhook_deliveries(pos.tenant_id, 10).await.unwrap();
                if let Some(first) = reports.first().and_then(|r| r.history.first()) {
                    return first.clone();
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        })
        .await
        .expect("an attempt is recorded");
        let error = attempt.error.clone().unwrap_or_default();
        assert!(error.starts_with("refused:") && error.contains("loopback"), "{attempt:?}");
        assert_eq!(attempt.http_status, None);
    }
    trap.set_nonblocking(true).unwrap();
    let connected = trap.accept().map(|(_, peer)| peer).map_err(|e| e.kind());
    assert_eq!(connected, Err(std::io::ErrorKind::WouldBlock), "a connection was made to a refused address");
    let metrics =
        reqwest::get(format!("http://{}/metrics", reconciler.admin_addr())).await.unwrap().text().await.unwrap();
    assert!(counter(&metrics, "reconciler_webhook_attempts_total", "result=\"refused\"") >= 2.0, "{metrics}");
    reconciler.stop().await;
}
