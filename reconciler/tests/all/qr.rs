//! Waiting QR orders: polled until paid, or closed once their code expires (cancelled where the
//! dialect has no close), as Alipay has it.

use std::time::Duration;

use ledger::{CancelAction, TradeState};
use serde_json::json;
use stack::*;

use crate::helpers::*;

async fn order(pos: &Pos, no: &str) -> String {
    let mut body = json!({"out_trade_no": no, "amount": "18.00", "subject": "Dumplings", "expires_in": 600});
    if pos.dialect == tenants::model::Dialect::Mapi {
        body["currency"] = json!("USD");
    }
    let (status, answer) = pos.send("POST", "/v1/qr-orders", Some(body)).await;
    assert_eq!((status, answer["status"].as_str()), (200, Some("WAITING")), "{answer}");
    answer["qr_code"].as_str().unwrap().to_owned()
}

async fn scan(stack: &Stack, qr_code: &str, pay: bool) {
    let url = format!("{}/sandbox/qr/scan", stack.sandbox.url());
    let scanned = stack.http.post(url).json(&json!({"qr_code": qr_code, "pay": pay})).send().await.unwrap();
    assert_eq!(scanned.status(), 200);
}

/// The order code expires now (codes live at least a minute; the test does not wait one).
async fn expire(stack: &Stack, pos: &Pos, no: &str) {
    let client = stack.db.client().await;
    let sql = "UPDATE trades SET deadline = now() WHERE tenant_id = $1 AND out_trade_no = $2";
    assert_eq!(client.execute(sql, &[&pos.tenant_id, &no]).await.unwrap(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn waiting_qr_orders_end_paid_or_closed() {
    let stack = Stack::start(Options { notifications: false, ..Options::scaled(SCALE) }).await;
    let reconciler = stack.start_reconciler(stack.reconciler_config()).await;
    let (openapi, mapi) = (stack.openapi_tenant().await, stack.mapi_tenant().await);

    let paid = trade_no("q");
    scan(&stack, &order(&openapi, &paid).await, true).await;
    let never_scanned = trade_no("q");
    order(&openapi, &never_scanned).await;
    let scanned_unpaid = trade_no("q");
    scan(&stack, &order(&openapi, &scanned_unpaid).await, false).await;
    let global = trade_no("q");
    order(&mapi, &global).await;
    for (pos, no) in [(&openapi, &never_scanned), (&openapi, &scanned_unpaid), (&mapi, &global)] {
        expire(&stack, pos, no).await;
    }

    let expected = [
        (&openapi, &paid, TradeState::Success, None),
        (&openapi, &never_scanned, TradeState::Cancelled, Some(CancelAction::Close)),
        (&openapi, &scanned_unpaid, TradeState::Cancelled, Some(CancelAction::Close)),
        (&mapi, &global, TradeState::Cancelled, Some(CancelAction::Close)),
    ];
    for (pos, no, state, action) in expected {
        let trade = final_trade(&stack, pos, no, Duration::from_secs(20)).await;
        assert_eq!((trade.state, trade.cancel_action), (state, action), "{no}");
        let truth = stack.truth(pos, no).await;
        let status = truth.as_ref().and_then(|t| t["trade_status"].as_str());
        match state {
            TradeState::Success => assert_eq!(status, Some("TRADE_SUCCESS")),
            // An unscanned code is no trade at Alipay (it shows none); a scanned one is closed.
            _ => assert!(
                truth.as_ref().is_none_or(|t| t["scanned"] == false) || status == Some("TRADE_CLOSED"),
                "{truth:?}"
            ),
        }
    }
    let closed = stack.truth(&openapi, &scanned_unpaid).await.unwrap();
    assert_eq!((closed["trade_status"].as_str(), calls(&closed, "close").len()), (Some("TRADE_CLOSED"), 1));
    reconciler.stop().await;
}
