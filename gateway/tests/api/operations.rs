//! Refunds, cancels, QR orders, oauth, the sales report, validation, auth, rate limits and the
//! admin listener.

use serde_json::{Value, json};
use tenants::model::{Dialect, Limits};

use stack::*;

#[tokio::test]
async fn partial_refunds_add_up_to_the_paid_amount_and_no_more() {
    let stack = Stack::start(Options::default()).await;
    let pos = stack.openapi_tenant().await;
    let no = trade_no("r");
    assert_eq!(pos.pay(&no, &code("00"), "100.00").await.1["status"], "SUCCESS");
    let refund = |request: &str, amount: &str| {
        let pos = pos.clone();
        let (no, body) = (no.clone(), json!({"out_request_no": request, "amount": amount, "reason": "cold soup"}));
        async move { pos.send("POST", &format!("/v1/payments/{no}/refunds"), Some(body)).await }
    };
    let (status, first) = refund("r1", "30.00").await;
    assert_eq!(
        (status, first["status"].as_str(), first["refunded_total"].as_str()),
        (200, Some("SUCCESS"), Some("30.00")),
        "{first}"
    );
    assert_eq!(refund("r1", "30.00").await.1["refunded_total"], "30.00", "idempotent on out_request_no");
    assert_eq!(refund("r1", "31.00").await.0, 409);
    let (status, too_much) = refund("r2", "70.01").await;
    assert_eq!((status, too_much["available"].as_str()), (422, Some("70.00")), "{too_much}");
    let (_, second) = refund("r2", "70.00").await;
    assert_eq!(
        (second["refunded_total"].as_str(), second["payment_status"].as_str()),
        (Some("100.00"), Some("REFUNDED"))
    );
    assert_eq!(stack.truth(&pos, &no).await.unwrap()["refunded_amount"], "100.00", "Alipay agrees");
    assert_eq!(refund("r3", "0.01").await.0, 409, "nothing left: not refundable");
    let (status, invalid) = refund("r4", "1.001").await;
    assert_eq!((status, invalid["errors"][0]["field"].as_str()), (400, Some("amount")));
}

#[tokio::test]
async fn a_payment_answer_says_where_its_time_went() {
    let stack = Stack::start(Options::default()).await;
    let pos = stack.openapi_tenant().await;
    let timing = |no: String| {
        let pos = pos.clone();
        async move {
            let body = pos.charge_body(&no, &code("00"), "10.00").to_string();
            let response = pos
                .http
                .post(format!("{}/v1/payments", pos.base))
                .header("authorization", pos.authorization("POST", "/v1/payments", body.as_bytes()))
                .header("content-type", "application/json")
                .body(body)
                .send()
                .await
                .unwrap();
            let header = response.headers()["server-timing"].to_str().unwrap().to_owned();
            // "intent;dur=0.412, upstream;dur=3.187, outcome;dur=0.390, total;dur=4.301"
            let parts: Vec<(String, f64)> = header
                .split(", ")
                .map(|part| {
                    let (name, dur) = part.split_once(";dur=").unwrap();
                    (name.to_owned(), dur.parse().unwrap())
                })
                .collect();
            parts
        }
    };
    let no = trade_no("t");
    let first = timing(no.clone()).await;
    let names: Vec<&str> = first.iter().map(|(name, _)| name.as_str()).collect();
    assert_eq!(names, ["intent", "upstream", "outcome", "total"], "{first:?}");
    let steps: f64 = first[..3].iter().map(|(_, ms)| ms).sum();
    assert!(first.iter().all(|(_, ms)| *ms > 0.0) && first[3].1 >= steps, "{first:?}");
    let again = timing(no).await;
    assert_eq!(
        again.iter().map(|(name, _)| name.as_str()).collect::<Vec<_>>(),
        ["total"],
        "no call was made: {again:?}"
    );
}

#[tokio::test]
async fn cancels_close_or_wait_for_alipay() {
    let stack = Stack::start(Options::default()).await;
    let pos = stack.openapi_tenant().await;
    let no = trade_no("c");
    pos.pay(&no, &code("61"), "9.00").await;
    let (status, body) = pos.send("POST", &format!("/v1/payments/{no}/cancel"), None).await;
    assert_eq!(
        (status, body["status"].as_str(), body["cancel_action"].as_str()),
        (200, Some("CANCELLED"), Some("close")),
        "{body}"
    );
    assert_eq!(stack.truth(&pos, &no).await.unwrap()["trade_status"], "TRADE_CLOSED");

    let paid = trade_no("c");
    pos.pay(&paid, &code("00"), "9.00").await;
    let (_, body) = pos.send("POST", &format!("/v1/payments/{paid}/cancel"), None).await;
    assert_eq!((body["status"].as_str(), body["cancel_action"].as_str()), (Some("CANCELLED"), Some("refund")));

    let stubborn = trade_no("c");
    pos.pay(&stubborn, &code("69"), "9.00").await;
    let (status, body) = pos.send("POST", &format!("/v1/payments/{stubborn}/cancel"), None).await;
    assert_eq!(
        (status, body["cancel_pending"].as_bool()),
        (202, Some(true)),
        "retry_flag=Y: the reconciler retries: {body}"
    );
    assert_eq!(pos.send("POST", "/v1/payments/nothing/cancel", None).await.0, 404);
}

#[tokio::test]
async fn qr_orders_wait_for_the_buyer() {
    let stack = Stack::start(Options::default()).await;
    let pos = stack.openapi_tenant().await;
    let no = trade_no("q");
    let order = json!({"out_trade_no": no, "amount": "42.00", "subject": "Table 4", "expires_in": "600"});
    let (status, body) = pos.send("POST", "/v1/qr-orders", Some(order.clone())).await;
    assert_eq!((status, body["status"].as_str()), (200, Some("WAITING")), "{body}");
    let qr_code = body["qr_code"].as_str().unwrap().to_owned();
    assert_eq!(pos.send("POST", "/v1/qr-orders", Some(order)).await.1["qr_code"], qr_code.as_str(), "replay");
    let scan = stack
        .http
        .post(format!("{}/sandbox/qr/scan", stack.sandbox.url()))
        .json(&json!({"qr_code": qr_code}))
        .send()
        .await
        .unwrap();
    assert_eq!(scan.status(), 200);
    let (_, paid) = pos.get(&no, 10).await;
    assert_eq!(paid["status"], "SUCCESS", "{paid}");
}

#[tokio::test]
async fn oauth_gives_the_buyers_user_id() {
    let stack = Stack::start(Options::default()).await;
    let pos = stack.openapi_tenant().await;
    let issued: Value = stack
        .http
        .post(format!("{}/sandbox/oauth/codes", stack.sandbox.url()))
        .json(&json!({"app_id": pos.alipay_id, "user_id": "2088102146225135"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let code = issued["code"].as_str().unwrap();
    let (status, body) = pos.send("POST", "/v1/oauth/token", Some(json!({"code": code}))).await;
    assert_eq!((status, body["user_id"].as_str()), (200, Some("2088102146225135")), "{body}");
    let (status, body) = pos.send("POST", "/v1/oauth/token", Some(json!({"code": code}))).await;
    assert_eq!((status, body["code"].as_str()), (422, Some("alipay_refused")), "a code works once: {body}");
    let mapi = stack.mapi_tenant().await;
    assert_eq!(mapi.send("POST", "/v1/oauth/token", Some(json!({"code": "x"}))).await.0, 400);
}

#[tokio::test]
async fn the_sales_report_counts_paid_trades() {
    let stack = Stack::start(Options::default()).await;
    let pos = stack.openapi_tenant().await;
    for amount in ["10.00", "20.00"] {
        pos.pay(&trade_no("rep"), &code("00"), amount).await;
    }
    pos.pay(&trade_no("rep"), &code("50"), "99.00").await;
    let today = time::OffsetDateTime::now_utc().to_offset(time::macros::offset!(+8)).date();
    let (status, report) = pos.send("GET", &format!("/v1/reports/sales?from={today}&to={today}"), None).await;
    assert_eq!(status, 200, "{report}");
    let day = &report["days"][0];
    assert_eq!(
        (day["count"].as_i64(), day["gross"].as_str(), day["net"].as_str()),
        (Some(2), Some("30.00"), Some("30.00")),
        "{report}"
    );
    assert_eq!(pos.send("GET", "/v1/reports/sales?from=2026-13-01&to=2026-12-01", None).await.0, 400);
}

#[tokio::test]
async fn bad_input_is_a_clear_400_and_writes_nothing() {
    let stack = Stack::start(Options::default()).await;
    let pos = stack.openapi_tenant().await;
    let cases = [
        (json!({"out_trade_no": "a b", "auth_code": code("00"), "amount": "1.00", "subject": "x"}), "out_trade_no"),
        (json!({"out_trade_no": "ok1", "auth_code": "12345", "amount": "1.00", "subject": "x"}), "auth_code"),
        (json!({"out_trade_no": "ok1", "auth_code": code("00"), "amount": "1.001", "subject": "x"}), "amount"),
        (json!({"out_trade_no": "ok1", "auth_code": code("00"), "amount": "-1", "subject": "x"}), "amount"),
        (json!({"out_trade_no": "ok1", "auth_code": code("00"), "amount": 1.5, "subject": "x"}), "amount"),
        (json!({"out_trade_no": "ok1", "auth_code": code("00"), "amount": "1.00", "subject": ""}), "subject"),
        (
            json!({"out_trade_no": "ok1", "auth_code": code("00"), "amount": "1.00", "subject": "x", "currency": "XYZ"}),
            "currency",
        ),
        (json!({"out_trade_no": "ok1", "auth_code": code("00"), "amount": "1.00", "subject": "x", "tip": "1"}), "body"),
    ];
    for (body, field) in cases {
        let (status, answer) = pos.send("POST", "/v1/payments", Some(body.clone())).await;
        assert_eq!(status, 400, "{body}");
        let fields: Vec<&str> =
            answer["errors"].as_array().unwrap().iter().map(|e| e["field"].as_str().unwrap()).collect();
        assert!(fields.contains(&field), "{body}: {answer}");
    }
    let raw = stack.http.post(format!("{}/v1/payments", stack.base())).body("{").send().await.unwrap();
    assert_eq!(raw.status(), 401, "unauthenticated first");
    let client = stack.db.client().await;
    let trades: i64 = client.query_one("SELECT count(*) FROM trades", &[]).await.unwrap().get(0);
    assert_eq!(trades, 0);
    let mapi = stack.mapi_tenant().await;
    let (status, answer) = mapi.pay(&trade_no("m"), &code("00"), "5.00").await;
    assert_eq!(
        (status, answer["errors"][0]["field"].as_str()),
        (400, Some("currency")),
        "Global tenants name the currency"
    );
}

#[tokio::test]
async fn authentication_failures_are_401_and_limits_429() {
    let stack = Stack::start(Options::default()).await;
    let pos = stack
        .tenant(Dialect::Openapi, alipay::SignType::Rsa2, Limits { pay_rate: 1, pay_burst: 2, other_rate: 50 })
        .await;
    let wrong = Pos { secret: "wrong".into(), ..pos.clone() };
    assert_eq!(wrong.get("x", 0).await.0, 401);
    let nobody = Pos { key_id: "ak_nobody".into(), ..pos.clone() };
    assert_eq!(nobody.get("x", 0).await.0, 401);
    // A replayed request (same nonce) is refused.
    let nonce = "replayed-nonce-1";
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    let auth = tenants::signature::authorization(&pos.key_id, &pos.secret, "GET", "/v1/payments/x", now, nonce, b"");
    let first =
        stack.http.get(format!("{}/v1/payments/x", stack.base())).header("authorization", &auth).send().await.unwrap();
    let again =
        stack.http.get(format!("{}/v1/payments/x", stack.base())).header("authorization", &auth).send().await.unwrap();
    assert_eq!((first.status().as_u16(), again.status().as_u16()), (404, 401));
    let stale = tenants::signature::authorization(
        &pos.key_id,
        &pos.secret,
        "GET",
        "/v1/payments/x",
        now - 301,
        "stale-nonce-01",
        b"",
    );
    assert_eq!(
        stack
            .http
            .get(format!("{}/v1/payments/x", stack.base()))
            .header("authorization", stale)
            .send()
            .await
            .unwrap()
            .status(),
        401
    );

    let mut limited = 0;
    let mut retry_after = None;
    for _ in 0..4 {
        let body = json!({"out_trade_no": trade_no("l"), "auth_code": code("00"), "amount": "1.00", "subject": "x"});
        let nonce = format!("n{}", uuid::Uuid::new_v4().simple());
        let text = body.to_string();
        let auth = tenants::signature::authorization(
            &pos.key_id,
            &pos.secret,
            "POST",
            "/v1/payments",
            now,
            &nonce,
            text.as_bytes(),
        );
        let response = stack
            .http
            .post(format!("{}/v1/payments", stack.base()))
            .header("authorization", auth)
            .body(text)
            .send()
            .await
            .unwrap();
        if response.status() == 429 {
            limited += 1;
            retry_after = response.headers().get("retry-after").map(|v| v.to_str().unwrap().to_owned());
        }
    }
    assert!(limited >= 1, "a burst of 2 then 1/s: the 4th in a row is limited");
    assert!(retry_after.is_some_and(|s| s.parse::<u64>().unwrap() >= 1));
    assert_eq!(pos.get("x", 0).await.0, 404, "queries have their own budget");
}

#[tokio::test]
async fn suspended_tenants_are_refused() {
    let stack = Stack::start(Options::default()).await;
    let pos = stack.openapi_tenant().await;
    let view = stack.registry.list().await.unwrap().into_iter().find(|t| t.id == pos.tenant_id).unwrap();
    stack.registry.set_status("test", &view.slug, tenants::model::Status::Suspended).await.unwrap();
    let snapshots = stack.gateway.state().snapshots.clone();
    let mut changes = snapshots.subscribe();
    while snapshots.current().by_id(&pos.tenant_id).is_some_and(|t| t.is_active()) {
        changes.changed().await.unwrap();
    }
    let (status, body) = pos.pay(&trade_no("s"), &code("00"), "1.00").await;
    assert_eq!((status, body["code"].as_str()), (403, Some("tenant_suspended")));
}

#[tokio::test]
async fn the_admin_listener_answers_probes_metrics_and_the_tenants_api() {
    let stack = Stack::start(Options::default()).await;
    let pos = stack.openapi_tenant().await;
    pos.pay(&trade_no("m"), &code("00"), "1.00").await;
    let admin = format!("http://{}", stack.gateway.admin_addr());
    assert_eq!(stack.http.get(format!("{admin}/live")).send().await.unwrap().status(), 200);
    let ready = stack.http.get(format!("{admin}/ready")).send().await.unwrap();
    assert_eq!(ready.status(), 200, "{}", ready.text().await.unwrap());
    let metrics = stack.http.get(format!("{admin}/metrics")).send().await.unwrap().text().await.unwrap();
    assert!(metrics.contains("gateway_requests_total") && metrics.contains("upstream_seconds_bucket"), "{metrics}");
    let tenants = stack
        .http
        .get(format!("{admin}/admin/tenants"))
        .bearer_auth("test-admin-token-for-the-gateway-0001")
        .send()
        .await
        .unwrap();
    assert_eq!(tenants.status(), 200);
    assert_eq!(stack.http.get(format!("{admin}/admin/tenants")).send().await.unwrap().status(), 401);
}
