//! Tenant A can see, cancel or refund none of tenant B's trades (404), on every endpoint.

use serde_json::json;

use stack::*;

#[tokio::test]
async fn tenants_cannot_reach_each_others_trades() {
    let stack = Stack::start(Options::default()).await;
    let a = stack.openapi_tenant().await;
    let b = stack.openapi_tenant().await;
    let no = trade_no("mine");
    assert_eq!(a.pay(&no, &code("00"), "30.00").await.1["status"], "SUCCESS");
    assert_eq!(b.get(&no, 0).await.0, 404);
    assert_eq!(b.send("POST", &format!("/v1/payments/{no}/cancel"), None).await.0, 404);
    let refund = json!({"out_request_no": "r1", "amount": "1.00"});
    assert_eq!(b.send("POST", &format!("/v1/payments/{no}/refunds"), Some(refund)).await.0, 404);
    // The same number at B is B's own trade: independent of A's.
    let (status, body) = b.pay(&no, &code("00"), "99.00").await;
    assert_eq!((status, body["amount"].as_str()), (200, Some("99.00")));
    assert_eq!(a.get(&no, 0).await.1["amount"], "30.00");
    let (_, report) = b.send("GET", "/v1/reports/sales?from=2000-01-01&to=2000-01-01", None).await;
    assert_eq!(report["days"].as_array().unwrap().len(), 0);
}
