//! A refund whose answer was lost is sent again (it is idempotent on `out_request_no`) until its
//! outcome is known: refunded once, at Alipay and in the ledger.

use std::time::Duration;

use ledger::{RefundState, TradeKey, TradeState};
use serde_json::json;
use stack::*;

use crate::helpers::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refund_whose_answer_was_lost_is_made_once_and_recorded() {
    let stack = Stack::start(Options { notifications: false, ..Options::scaled(SCALE) }).await;
    let reconciler = stack.start_reconciler(stack.reconciler_config()).await;
    let pos = stack.openapi_tenant().await;
    let no = trade_no("rf");
    assert_eq!(pos.charge(&no, &code("00"), "30.00").await.1["status"], "SUCCESS");

    // Alipay makes the refund, but its answer is lost (HTTP 502 after processing).
    stack.alipay_faults(json!({"error_rate": 1.0, "mode": "after"})).await;
    let refund = json!({"out_request_no": "RF1", "amount": "12.00", "reason": "cold soup"});
    let (status, answer) = pos.send("POST", &format!("/v1/payments/{no}/refunds"), Some(refund)).await;
    assert_eq!((status, answer["status"].as_str()), (200, Some("UNKNOWN")), "{answer}");
    stack.alipay_faults(json!({})).await;

    let key = TradeKey::new(pos.tenant_id, no.clone());
    let store = &stack.gateway.state().store;
    let settled = tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            let refund = store.get_refund(&key, "RF1").await.unwrap().unwrap();
            if refund.state != RefundState::Unknown {
                return refund;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await
    .expect("the reconciler settles it");
    assert_eq!(settled.state, RefundState::Success);
    let trade = stack.ledger(&pos, &no).await.unwrap();
    assert_eq!((trade.state, trade.refunded.to_string()), (TradeState::PartiallyRefunded, "12.00".into()));
    let truth = stack.truth(&pos, &no).await.unwrap();
    assert_eq!(truth["refunds"].as_array().unwrap().len(), 1, "made once at Alipay: {truth}");
    assert_eq!(truth["refunded_amount"], "12.00");
    reconciler.stop().await;
}
