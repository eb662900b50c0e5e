//! The admin HTTP API: token-protected, JSON, every change audited with who acted and from where;
//! failed authentications logged (never the token) and counted.

use serde_json::{Value, json};
use tenants::admin::{AdminToken, serve};

use crate::helpers::*;

const TOKEN: &str = "test-admin-token-0123456789abcdef0123";

struct Api {
    http: reqwest::Client,
    base: String,
}

impl Api {
    async fn call(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> (u16, Value) {
        let mut request = self.http.request(method, format!("{}{path}", self.base)).bearer_auth(TOKEN);
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.unwrap();
        let status = response.status().as_u16();
        (status, response.json().await.unwrap_or(Value::Null))
    }
}

async fn start(db: &TestDb) -> Api {
    let ring = keyring(&[&master_key("k1")]);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let registry = registry(db, &ring);
    tokio::spawn(serve(listener, registry, AdminToken::new(TOKEN).unwrap(), std::future::pending()));
    Api { http: reqwest::Client::new(), base }
}

#[tokio::test]
async fn every_operation_over_http() {
    use reqwest::Method;
    let db = TestDb::new().await;
    let api = start(&db).await;

    let unauthorized = api.http.get(format!("{}/admin/tenants", api.base)).bearer_auth("wrong").send().await.unwrap();
    assert_eq!(unauthorized.status(), 401);
    assert_eq!(api.http.get(format!("{}/admin/tenants", api.base)).send().await.unwrap().status(), 401);

    let body = json!({
        "slug": "noodle-bar", "name": "Noodle Bar", "dialect": "openapi", "app_id": "2021000000000001",
        "sign_type": "RSA2", "environment": "http://127.0.0.1:8090/gateway.do",
        "keys": {"app_private_key": MERCHANT_PRIVATE_PKCS1, "alipay_public_key": ALIPAY_PUBLIC}
    });
    let (status, created) = api.call(Method::POST, "/admin/tenants", Some(body.clone())).await;
    assert_eq!(status, 201, "{created}");
    assert_eq!(created["tenant"]["ready"], true);
    assert!(created["credential"]["secret"].as_str().unwrap().len() >= 43);
    let (status, problem) = api.call(Method::POST, "/admin/tenants", Some(body)).await;
    assert_eq!((status, problem["code"].as_str()), (409, Some("conflict")));
    // The partner API's problem shape: who is at fault, and whether a retry would help.
    assert_eq!((problem["fault"].as_str(), problem["retryable"].as_bool()), (Some("operator"), Some(false)));
    assert_eq!((problem["status"].as_u64(), problem["type"].as_str()), (Some(409), Some("about:blank")));
    let (status, problem) = api.call(Method::POST, "/admin/tenants", Some(json!({"slug": "x"}))).await;
    assert_eq!(status, 400, "{problem}");
    let bad_key = json!({"slug": "other", "name": "O", "dialect": "openapi", "app_id": "2021000000000002", "sign_type": "RSA2", "keys": {"alipay_public_key": "nope"}});
    assert_eq!(api.call(Method::POST, "/admin/tenants", Some(bad_key)).await.0, 400);

    let (_, list) = api.call(Method::GET, "/admin/tenants", None).await;
    assert_eq!(list.as_array().unwrap().len(), 1);
    let (status, patched) = api
        .call(
            Method::PATCH,
            "/admin/tenants/noodle-bar",
            Some(json!({"pay_rate": 120, "webhook_url": "https://pos.example.com/h"})),
        )
        .await;
    assert_eq!((status, patched["limits"]["pay_rate"].as_u64()), (200, Some(120)));
    let to_production = json!({"environment": "production", "webhook_url": "http://127.0.0.1:8080/hook"});
    let (status, refused) = api.call(Method::PATCH, "/admin/tenants/noodle-bar", Some(to_production)).await;
    assert_eq!(
        (status, refused["code"].as_str()),
        (400, Some("invalid_request")),
        "a production webhook must be https"
    );
    let (_, patched) = api.call(Method::PATCH, "/admin/tenants/noodle-bar", Some(json!({"webhook_url": null}))).await;
    assert_eq!(patched["webhook_url"], Value::Null);
    let (status, unknown) = api.call(Method::PATCH, "/admin/tenants/nobody", Some(json!({"pay_rate": 1}))).await;
    assert_eq!((status, unknown["code"].as_str()), (404, Some("not_found")));
    let (status, no_route) = api.call(Method::GET, "/admin/nothing-here", None).await;
    assert_eq!(
        (status, no_route["code"].as_str(), no_route["fault"].as_str()),
        (404, Some("no_route"), Some("operator"))
    );

    assert_eq!(api.call(Method::POST, "/admin/tenants/noodle-bar/suspend", None).await.1["status"], "suspended");
    assert_eq!(api.call(Method::POST, "/admin/tenants/noodle-bar/resume", None).await.1["status"], "active");
    let (_, keys) =
        api.call(Method::PUT, "/admin/tenants/noodle-bar/keys", Some(json!({"generate_app_key": true}))).await;
    assert!(keys["app_public_key"].as_str().unwrap().contains("BEGIN PUBLIC KEY"));
    let (status, rotated) =
        api.call(Method::POST, "/admin/tenants/noodle-bar/api-secret/rotate", Some(json!({"overlap": "1h"}))).await;
    assert_eq!(status, 201);
    assert!(rotated["key_id"].as_str().unwrap().starts_with("ak_"));
    assert_eq!(api.call(Method::POST, "/admin/master-key/rotate", None).await.1["already_current"], 1);
    // A caller may name itself; the peer is always recorded.
    let named = api
        .http
        .post(format!("{}/admin/tenants/noodle-bar/suspend", api.base))
        .bearer_auth(TOKEN)
        .header("acq-actor", "ops:bob")
        .send()
        .await
        .unwrap();
    assert_eq!(named.status(), 200);
    let badly_named = api
        .http
        .post(format!("{}/admin/tenants/noodle-bar/resume", api.base))
        .bearer_auth(TOKEN)
        .header("acq-actor", "bob\tthe builder")
        .send()
        .await
        .unwrap();
    assert_eq!(badly_named.status(), 400);
    assert_eq!(api.call(Method::DELETE, "/admin/tenants/noodle-bar", None).await.0, 200);
    assert_eq!(api.call(Method::GET, "/admin/tenants/noodle-bar", None).await.0, 404);
    assert_eq!(api.call(Method::PUT, "/admin/tenants", None).await.0, 405);
    assert_eq!(api.call(Method::GET, "/admin/nothing", None).await.0, 404);

    let client = db.client().await;
    let actors: Vec<String> = client
        .query("SELECT DISTINCT actor FROM tenant_audit ORDER BY actor", &[])
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert_eq!(actors, ["admin-api@127.0.0.1", "ops:bob via admin-api@127.0.0.1"], "who acted, from where");
    let audit: String =
        client.query_one("SELECT string_agg(detail::text, ' ') FROM tenant_audit", &[]).await.unwrap().get(0);
    assert!(!audit.contains("PRIVATE KEY") && !audit.contains(created["credential"]["secret"].as_str().unwrap()));
}

#[tokio::test]
async fn admin_serve_logs_failed_authentications_with_peer_and_route_never_the_token() {
    use std::io::{BufRead, Read};
    let db = TestDb::new().await;
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_tenants"))
        .args(["admin-serve", "--listen", "127.0.0.1:0"])
        .env("DATABASE_URL", &db.url)
        .env("ACQ_ADMIN_TOKEN", TOKEN)
        .env("ACQ_MASTER_KEYS", master_key("k1"))
        .env_remove("RUST_LOG")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut first = String::new();
    std::io::BufReader::new(child.stdout.take().unwrap()).read_line(&mut first).unwrap();
    let base = first.trim().rsplit(' ').next().unwrap().to_owned();
    assert!(base.starts_with("http://127.0.0.1:"), "{first}");

    let http = reqwest::Client::new();
    let guess = "a-guessed-token-0123456789abcdefghij";
    let wrong = http.get(format!("{base}/admin/tenants/noodle-bar")).bearer_auth(guess).send().await.unwrap();
    assert_eq!(wrong.status(), 401);
    assert_eq!(http.delete(format!("{base}/admin/tenants/x")).send().await.unwrap().status(), 401);
    assert_eq!(http.get(format!("{base}/admin/tenants")).bearer_auth(TOKEN).send().await.unwrap().status(), 200);
    child.kill().unwrap();
    child.wait().unwrap();
    let mut text = String::new();
    child.stderr.take().unwrap().read_to_string(&mut text).unwrap();

    let failures: Vec<&str> = text.lines().filter(|l| l.contains("admin authentication failed")).collect();
    assert_eq!(failures.len(), 2, "{text}");
    assert!(
        failures[0].contains("peer=127.0.0.1") && failures[0].contains("route=/admin/tenants/noodle-bar"),
        "{text}"
    );
    assert!(failures[0].contains("method=GET") && failures[1].contains("method=DELETE"), "{text}");
    assert!(failures[0].contains("reason=wrong") && failures[1].contains("reason=missing"), "{text}");
    assert!(!text.contains(guess) && !text.contains(TOKEN), "a token in the logs: {text}");
}

#[tokio::test]
async fn a_chain_imported_over_http_twice_is_created_once() {
    use reqwest::Method;
    let db = TestDb::new().await;
    let api = start(&db).await;
    let store = |n: u32, pay_rate: u32| {
        json!({
            "slug": format!("noodle-{n}"), "name": format!("Noodle Bar {n}"), "dialect": "openapi",
            "app_id": "2021000000000001", "sign_type": "RSA2",
            "limits": {"pay_rate": pay_rate, "pay_burst": 10, "other_rate": 10},
            "keys": {"app_private_key": MERCHANT_PRIVATE_PKCS1, "alipay_public_key": ALIPAY_PUBLIC}
        })
    };
    let bad = json!({"slug": "typo-bar", "name": "Typo", "dialect": "openapi", "sign_type": "RSA9"});
    let chain = json!([store(1, 20), store(2, 20), bad]);
    let (status, first) = api.call(Method::POST, "/admin/tenants/import", Some(chain)).await;
    assert_eq!(status, 200, "{first}");
    let actions: Vec<&str> =
        first["results"].as_array().unwrap().iter().map(|r| r["result"]["action"].as_str().unwrap()).collect();
    assert_eq!(actions, ["created", "created", "refused"], "{first}");
    assert!(first["results"][0]["result"]["credential"]["secret"].as_str().unwrap().len() >= 43, "secrets once");
    assert_eq!(first["results"][2]["result"]["code"], "invalid_request");

    let (_, again) = api.call(Method::POST, "/admin/tenants/import", Some(json!([store(1, 20), store(2, 40)]))).await;
    let results = again["results"].as_array().unwrap();
    assert_eq!(
        (results[0]["result"]["action"].as_str(), results[1]["result"]["action"].as_str()),
        (Some("unchanged"), Some("updated")),
        "{again}"
    );
    assert_eq!(results[1]["result"]["changed"], json!(["pay_rate"]));
    assert!(!again.to_string().contains("\"secret\""), "no secret when nothing is created: {again}");
    assert_eq!(api.call(Method::GET, "/admin/tenants/noodle-2", None).await.1["limits"]["pay_rate"], 40);
    let (status, problem) = api.call(Method::POST, "/admin/tenants/import", Some(json!([]))).await;
    assert_eq!((status, problem["code"].as_str()), (400, Some("invalid_request")));
}
