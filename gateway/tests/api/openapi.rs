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
