//! `GET /openapi.json` describes the partner API the gateway serves: every documented operation
//! reaches its handler (unsigned, it is refused as unauthenticated, not as unknown), and every
//! other method on a documented path is refused as not allowed.

use serde_json::Value;
use stack::*;

#[tokio::test]
async fn the_served_document_matches_what_the_gateway_answers() {
    let stack = Stack::start(Options::default()).await;
    let http = reqwest::Client::new();
    let document: Value =
        http.get(format!("{}/openapi.json", stack.base())).send().await.unwrap().json().await.unwrap();
    assert!(document["openapi"].as_str().unwrap().starts_with("3."));
    let paths = document["paths"].as_object().unwrap();
    assert!(paths.len() >= 9, "{:?}", paths.keys());
    for (path, operations) in paths {
        let concrete = path.replace("{out_trade_no}", "T-1").replace("{tenant}", &uuid::Uuid::new_v4().to_string());
        let url = format!("{}{concrete}", stack.base());
        for method in ["get", "post", "put", "delete"] {
            let response = http.request(method.to_uppercase().parse().unwrap(), &url).body("{}").send().await.unwrap();
            let status = response.status().as_u16();
            let Some(operation) = operations.get(method) else {
                assert_eq!(status, 405, "{method} {path} is not documented");
                continue;
            };
            let signed = operation.get("security").is_none_or(|s| s.as_array().is_none_or(|s| !s.is_empty()));
            match (signed, path.as_str()) {
                (true, _) => assert_eq!(status, 401, "{method} {path} needs a signature"),
                (false, "/notify/{tenant}") => assert_eq!(response.text().await.unwrap(), "fail", "unknown tenant"),
                (false, _) => assert_eq!(status, 200, "{method} {path}"),
            }
        }
    }
}

/// Beyond the paths: the merchant webhooks (under `webhooks` in OpenAPI 3.1, `x-webhooks` before),
/// a production server, and the integration guide linked from `info`. The webhook body's fields
/// are checked against a real delivery in `partner_clients`.
#[test]
fn the_document_describes_webhooks_a_production_server_and_the_guide() {
    let document: Value = serde_json::from_str(gateway::routes::OPENAPI).unwrap();
    let webhooks = match document["openapi"].as_str().unwrap() {
        version if version.starts_with("3.0") => &document["x-webhooks"],
        _ => &document["webhooks"],
    };
    for event in ["payment.succeeded", "payment.failed", "payment.cancelled"] {
        let operation = &webhooks[event]["post"];
        let body = &operation["requestBody"]["content"]["application/json"]["schema"]["$ref"];
        assert_eq!(body, "#/components/schemas/WebhookEvent", "{event}");
        let header = operation["parameters"].as_array().unwrap().iter().find(|p| p["name"] == "acq-event").unwrap();
        assert_eq!(header["in"], "header", "{event}");
        assert_eq!(header["schema"]["enum"][0], event);
        let scheme = operation["security"][0].as_object().unwrap().keys().next().unwrap();
        assert!(document["components"]["securitySchemes"][scheme].is_object(), "{event}: {scheme}");
        assert!(operation["responses"]["2XX"].is_object(), "{event}");
    }
    let servers = document["servers"].as_array().unwrap();
    assert!(
        servers.iter().any(|s| s["url"].as_str().unwrap().starts_with("https://") && s["description"] == "production"),
        "{servers:?}"
    );
    let guide = "docs/partner-api.md";
    assert!(document["info"]["description"].as_str().unwrap().contains(guide));
    assert_eq!(document["externalDocs"]["url"], guide);
    assert!(std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..").join(guide).is_file());
}
