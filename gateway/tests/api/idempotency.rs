//! 100 concurrent identical pays reach Alipay once and all get the same answer; the same
//! out_trade_no with another body gets 409; a POS that hangs up does not stop the trade.

use std::time::Duration;

use stack::*;

#[tokio::test]
async fn a_hundred_identical_pays_reach_alipay_once() {
    let stack = Stack::start(Options::default()).await;
    let pos = stack.openapi_tenant().await;
    let before = stack.sandbox_calls(&["alipay.trade.pay"]).await;
    let no = trade_no("dup");
    let calls: Vec<_> = (0..100)
        .map(|_| {
            let pos = pos.clone();
            let no = no.clone();
            tokio::spawn(async move { pos.pay(&no, &code("00"), "25.00").await })
        })
        .collect();
    let mut trade_nos = std::collections::HashSet::new();
    for call in calls {
        let (status, body) = call.await.unwrap();
        assert_eq!((status, body["status"].as_str()), (200, Some("SUCCESS")), "{body}");
        trade_nos.insert(body["trade_no"].as_str().unwrap().to_owned());
    }
    assert_eq!(trade_nos.len(), 1, "one Alipay trade");
    let after = stack.sandbox_calls(&["alipay.trade.pay"]).await;
    assert_eq!(after - before, 1, "one call to Alipay");

    let (status, body) = pos.pay(&no, &code("00"), "25.01").await;
    assert_eq!((status, body["code"].as_str()), (409, Some("idempotency_conflict")), "{body}");
    let (status, _) = pos.pay(&no, &code("00"), "25.00").await;
    assert_eq!(status, 200, "the identical request still replays");
}

#[tokio::test]
async fn a_pos_that_hangs_up_does_not_stop_the_trade() {
    let stack = Stack::start(Options::default()).await;
    let mut pos = stack.openapi_tenant().await;
    let no = trade_no("hangup");
    // Scenario 64 holds Alipay's answer 300 ms; this POS gives up after 50 ms.
    pos.http = reqwest::Client::builder().timeout(Duration::from_millis(50)).build().unwrap();
    let body = serde_json::json!({"out_trade_no": no, "auth_code": code("64"), "amount": "7.00", "subject": "Soup"});
    let text = body.to_string();
    let auth = pos.authorization("POST", "/v1/payments", text.as_bytes());
    let sent = pos.http.post(format!("{}/v1/payments", pos.base)).header("authorization", auth).body(text).send().await;
    assert!(sent.is_err_and(|e| e.is_timeout()));
    pos.http = reqwest::Client::new();
    let (status, body) = pos.get(&no, 10).await;
    assert_eq!(
        (status, body["status"].as_str()),
        (200, Some("SUCCESS")),
        "the detached call finished and was recorded: {body}"
    );
}
