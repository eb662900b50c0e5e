#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! The admin listener over real HTTP: each test starts its own on port 0.

use std::sync::Arc;

use bytes::Bytes;
use http::{Response, StatusCode};
use http_body_util::Full;
use telemetry::{AdminRoutes, Readiness, metrics, serve_admin};
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

/// A running admin listener; stop it with [`Admin::stop`] to check it drains and returns.
struct Admin {
    base: String,
    stop: oneshot::Sender<()>,
    server: JoinHandle<()>,
}

impl Admin {
    async fn start(readiness: Readiness, admin: Option<AdminRoutes>) -> Admin {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let (stop, stopped) = oneshot::channel::<()>();
        let limits = telemetry::server::ConnectionLimits::admin();
        let server = tokio::spawn(serve_admin(listener, limits, metrics().unwrap(), readiness, admin, async {
            let _ = stopped.await;
        }));
        Admin { base, stop, server }
    }

    async fn ready() -> Admin {
        Self::start(Arc::new(|| Box::pin(async { Ok(()) })), None).await
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    async fn get(&self, path: &str) -> reqwest::Response {
        reqwest::get(self.url(path)).await.unwrap()
    }

    async fn stop(self) {
        self.stop.send(()).unwrap();
        self.server.await.unwrap();
    }
}

fn content_type(response: &reqwest::Response) -> &str {
    response.headers()[http::header::CONTENT_TYPE].to_str().unwrap()
}

#[tokio::test]
async fn live_answers_ok() {
    let admin = Admin::ready().await;
    let response = admin.get("/live").await;
    assert_eq!(response.status(), StatusCode::OK);
    assert!(content_type(&response).starts_with("text/plain"));
    assert_eq!(response.text().await.unwrap(), "ok");
    admin.stop().await;
}

#[tokio::test]
async fn ready_answers_ready_when_readiness_is_ok() {
    let admin = Admin::ready().await;
    let response = admin.get("/ready").await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.text().await.unwrap(), "ready");
    admin.stop().await;
}

#[tokio::test]
async fn ready_answers_503_with_the_reason_when_readiness_fails() {
    let admin = Admin::start(Arc::new(|| Box::pin(async { Err("database unreachable".to_owned()) })), None).await;
    let response = admin.get("/ready").await;
    assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert!(content_type(&response).starts_with("text/plain"));
    assert_eq!(response.text().await.unwrap(), "database unreachable");
    admin.stop().await;
}

#[tokio::test]
async fn metrics_renders_counters_and_latency_histograms() {
    let admin = Admin::ready().await;
    metrics::counter!("telemetry_test_total").increment(1);
    metrics::histogram!("telemetry_test_latency_seconds").record(0.003);
    let response = admin.get("/metrics").await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(content_type(&response), "text/plain; version=0.0.4");
    let body = response.text().await.unwrap();
    assert!(body.contains("telemetry_test_total "), "{body}");
    assert!(body.contains(r#"telemetry_test_latency_seconds_bucket{le="0.005"} "#), "{body}");
    assert!(body.contains(r#"telemetry_test_latency_seconds_bucket{le="30"} "#), "{body}");
    admin.stop().await;
}

#[tokio::test]
async fn metrics_can_be_asked_for_more_than_once() {
    let first = metrics().unwrap();
    let second = metrics().unwrap();
    metrics::counter!("telemetry_test_twice_total").increment(2);
    assert!(first.render().contains("telemetry_test_twice_total 2"));
    assert!(second.render().contains("telemetry_test_twice_total 2"));
}

#[tokio::test]
async fn admin_paths_reach_the_admin_routes() {
    let routes: AdminRoutes = Arc::new(|request| {
        Box::pin(async move {
            let mut response = Response::new(Full::new(Bytes::from(format!("admin saw {}", request.uri().path()))));
            *response.status_mut() = StatusCode::IM_A_TEAPOT;
            response
        })
    });
    let admin = Admin::start(Arc::new(|| Box::pin(async { Ok(()) })), Some(routes)).await;
    let response = reqwest::Client::new().post(admin.url("/admin/x")).body("{}").send().await.unwrap();
    assert_eq!(response.status(), StatusCode::IM_A_TEAPOT);
    assert_eq!(response.text().await.unwrap(), "admin saw /admin/x");
    admin.stop().await;
}

#[tokio::test]
async fn admin_paths_are_404_without_admin_routes() {
    let admin = Admin::ready().await;
    assert_eq!(admin.get("/admin/x").await.status(), StatusCode::NOT_FOUND);
    admin.stop().await;
}

#[tokio::test]
async fn unknown_paths_are_404() {
    let admin = Admin::ready().await;
    assert_eq!(admin.get("/nope").await.status(), StatusCode::NOT_FOUND);
    let response = admin.get("/live/extra").await;
    assert_eq!(response.status(), StatusCode::NOT_FOUND);
    assert_eq!(response.headers()[http::header::CONTENT_TYPE], "application/problem+json");
    let problem: serde_json::Value = response.json().await.unwrap();
    assert_eq!((problem["code"].as_str(), problem["fault"].as_str()), (Some("no_route"), Some("operator")));
    admin.stop().await;
}

#[tokio::test]
async fn probes_refuse_other_methods() {
    let admin = Admin::ready().await;
    let client = reqwest::Client::new();
    for path in ["/live", "/ready", "/metrics"] {
        let response = client.post(admin.url(path)).body("ignored").send().await.unwrap();
        assert_eq!(response.status(), StatusCode::METHOD_NOT_ALLOWED, "{path}");
        assert_eq!(response.headers()[http::header::ALLOW], "GET, HEAD");
    }
    admin.stop().await;
}

#[tokio::test]
async fn stops_with_a_kept_alive_connection_open() {
    let admin = Admin::ready().await;
    let client = reqwest::Client::new();
    assert_eq!(client.get(admin.url("/live")).send().await.unwrap().status(), StatusCode::OK);
    admin.stop().await;
    drop(client);
}

#[test]
fn init_tracing_can_be_called_more_than_once() {
    telemetry::init_tracing("telemetry-test");
    telemetry::init_tracing("telemetry-test");
    tracing::info!("still logging");
}
