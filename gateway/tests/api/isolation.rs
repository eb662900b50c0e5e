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
    // B's sales report over the days both paid on holds B's payment, never A's (a report of a day
    // with no trades could not tell).
    let today = time::OffsetDateTime::now_utc().to_offset(time::macros::offset!(+8)).date();
    let (from, to) = (today.previous_day().unwrap(), today.next_day().unwrap());
    for (pos, gross) in [(&b, "99.00"), (&a, "30.00")] {
        let (status, report) = pos.send("GET", &format!("/v1/reports/sales?from={from}&to={to}"), None).await;
        assert_eq!(status, 200, "{report}");
        let days: Vec<_> = report["days"]
            .as_array()
            .unwrap()
            .iter()
            .map(|d| (d["count"].as_i64().unwrap(), d["gross"].as_str().unwrap().to_owned()))
            .collect();
        assert_eq!(days, [(1, gross.to_owned())], "{report}");
    }
}

/// Alipay knows a trade by (app or partner, out_trade_no), the ledger by (tenant, out_trade_no).
/// Two tenants on one Alipay app or partner must not reach each other's trades through it: a
/// number one of them used is refused to the other before anything is sent (without that, the
/// second pay answered TRADE_HAS_SUCCESS → UNKNOWN, and the reconciler's cancel at 60 s reversed
/// the first tenant's payment), and a refund number is never taken at Alipay for another trade's.
#[tokio::test]
async fn tenants_sharing_an_alipay_account_cannot_reach_each_others_trades() {
    let stack = Stack::start(Options::default()).await;
    for (a, sign_type) in
        [(stack.openapi_tenant().await, alipay::SignType::Rsa2), (stack.mapi_tenant().await, alipay::SignType::Md5)]
    {
        let b = stack.tenant_sharing_account(&a, sign_type).await;
        let currency = if a.dialect == tenants::model::Dialect::Mapi { "HKD" } else { "CNY" };
        let no = trade_no("acct");
        assert_eq!(a.pay_in(&no, &code("00"), "30.00", currency).await.1["status"], "SUCCESS");
        let (status, answer) = b.pay_in(&no, &code("00"), "99.00", currency).await;
        assert_eq!((status, answer["code"].as_str()), (409, Some("idempotency_conflict")), "{answer}");
        assert_eq!(b.get(&no, 0).await.0, 404, "nothing recorded for B");
        let truth = stack.truth(&a, &no).await.unwrap();
        assert_eq!(calls_of(&truth, "pay"), 1, "B's pay never reached Alipay: {truth}");
        assert_eq!(
            (truth["trade_status"].as_str(), truth["total_amount"].as_str()),
            (Some("TRADE_SUCCESS"), Some("30.00"))
        );

        // Refund numbers: each tenant refunds its own trade as "R1"; each refund is made at Alipay,
        // on its own trade (on MAPI, partner + partner_refund_id names one refund).
        let mine = trade_no("acct");
        assert_eq!(b.pay_in(&mine, &code("00"), "20.00", currency).await.1["status"], "SUCCESS");
        let again = trade_no("acct");
        assert_eq!(a.pay_in(&again, &code("00"), "10.00", currency).await.1["status"], "SUCCESS");
        for (pos, trade) in [(&a, &no), (&b, &mine), (&a, &again)] {
            let refund = json!({"out_request_no": "R1", "amount": "5.00"});
            let (status, answer) = pos.send("POST", &format!("/v1/payments/{trade}/refunds"), Some(refund)).await;
            assert_eq!((status, answer["status"].as_str()), (200, Some("SUCCESS")), "{answer}");
        }
        for (pos, trade) in [(&a, &no), (&b, &mine), (&a, &again)] {
            let truth = stack.truth(pos, trade).await.unwrap();
            assert_eq!(truth["refunded_amount"], "5.00", "{trade} refunded at Alipay: {truth}");
        }
    }
}
