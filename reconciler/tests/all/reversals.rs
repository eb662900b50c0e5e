//! A POS's cancel of a paid trade (a reversal) and its refunds are carried out to the end: detached
//! from the POS connection, and driven by the reconciler when Alipay's answer is lost.

use std::time::Duration;

use alipay::SignType;
use ledger::{CancelAction, RefundState, TradeKey, TradeState};
use serde_json::json;
use stack::*;
use tenants::model::Dialect;

use crate::helpers::*;

/// Waits until the ledger holds the trade CANCELLED.
async fn cancelled(stack: &Stack, pos: &Pos, no: &str, within: Duration) -> ledger::Trade {
    let give_up = tokio::time::Instant::now() + within;
    loop {
        let trade = stack.ledger(pos, no).await.unwrap();
        if trade.state == TradeState::Cancelled {
            return trade;
        }
        assert!(
            tokio::time::Instant::now() < give_up,
            "{no} is still {} (cancel pending: {}); Alipay: {:?}",
            trade.state,
            trade.cancel_requested,
            stack.truth(pos, no).await
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_paid_trades_cancel_whose_answer_is_lost_still_ends_refunded() {
    let stack = Stack::start(Options { notifications: false, ..Options::scaled(SCALE) }).await;
    let reconciler = stack.start_reconciler(stack.reconciler_config()).await;
    let tenants = [stack.openapi_tenant().await, stack.tenant(Dialect::Mapi, SignType::Md5, generous()).await];
    let mut took = Vec::new();
    for pos in &tenants {
        // Paid in full, and paid then partly refunded: both are reversed by a cancel.
        for refund_first in [false, true] {
            let no = trade_no("rev");
            let currency = if pos.dialect == Dialect::Mapi { "HKD" } else { "CNY" };
            assert_eq!(pos.pay_in(&no, &code("00"), "40.00", currency).await.1["status"], "SUCCESS");
            if refund_first {
                let refund = json!({"out_request_no": "R1", "amount": "15.00"});
                let (_, answer) = pos.send("POST", &format!("/v1/payments/{no}/refunds"), Some(refund)).await;
                assert_eq!(answer["status"], "SUCCESS", "{answer}");
            }
            // Alipay reverses the payment, but its answer to the cancel is lost.
            stack.alipay_faults(json!({"error_rate": 1.0, "mode": "after", "calls": ["cancel"], "count": 1})).await;
            let (status, answer) = pos.send("POST", &format!("/v1/payments/{no}/cancel"), None).await;
            assert_eq!((status, answer["cancel_pending"].as_bool()), (202, Some(true)), "{answer}");
            let answered = std::time::Instant::now();
            let truth = stack.truth(pos, &no).await.unwrap();
            assert_eq!(truth["trade_status"], "TRADE_CLOSED", "Alipay did reverse it");

            let trade = cancelled(&stack, pos, &no, Duration::from_secs(10)).await;
            took.push(answered.elapsed().as_millis());
            assert_eq!(trade.cancel_action, Some(CancelAction::Refund));
            assert_eq!(trade.refunded, trade.amount, "the whole payment went back");
            assert!(!trade.cancel_requested && trade.next_check_at.is_none());
            agrees_with_alipay(&trade, stack.truth(pos, &no).await.as_ref()).unwrap();
            let (_, view) = pos.get(&no, 0).await;
            assert_eq!((view["status"].as_str(), view["cancel_pending"].as_bool()), (Some("CANCELLED"), Some(false)));
        }
    }
    took.sort_unstable();
    eprintln!(
        "reversals with the cancel's answer lost: {} (2 dialects, paid and partly refunded), each CANCELLED \
         (refund) as Alipay has it, {} to {} ms after the POS heard 202 (cancel retry {} ms)",
        took.len(),
        took[0],
        took[took.len() - 1],
        stack.reconciler_config().cancel_retry.as_millis()
    );
    reconciler.stop().await;
}

/// With no reconciler running, a POS that hangs up in the middle of a cancel or a refund still has
/// it carried out by the gateway and recorded.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pos_that_hangs_up_on_a_cancel_or_a_refund_does_not_stop_it() {
    let stack = Stack::start(Options { notifications: false, ..Options::scaled(SCALE) }).await;
    let pos = stack.openapi_tenant().await;
    let (refunded, reversed) = (trade_no("hang"), trade_no("hang"));
    for no in [&refunded, &reversed] {
        assert_eq!(pos.pay(no, &code("00"), "20.00").await.1["status"], "SUCCESS");
    }
    // Alipay takes 300 ms to answer a refund or a cancel; the POS gives up after 50 ms.
    stack.alipay_faults(json!({"latency_ms": 300, "calls": ["refund", "cancel"]})).await;
    let impatient =
        Pos { http: reqwest::Client::builder().timeout(Duration::from_millis(50)).build().unwrap(), ..pos.clone() };
    let refund = json!({"out_request_no": "R1", "amount": "5.00"}).to_string().into_bytes();
    let hung_up = impatient.try_send_raw("POST", &format!("/v1/payments/{refunded}/refunds"), refund).await;
    assert!(hung_up.is_err(), "the POS gave up: {hung_up:?}");
    let hung_up = impatient.try_send_raw("POST", &format!("/v1/payments/{reversed}/cancel"), Vec::new()).await;
    assert!(hung_up.is_err(), "the POS gave up: {hung_up:?}");

    let store = &stack.gateway.state().store;
    let key = TradeKey::new(pos.tenant_id, refunded.clone());
    let give_up = tokio::time::Instant::now() + Duration::from_secs(5);
    let refund = loop {
        let refund = store.get_refund(&key, "R1").await.unwrap();
        if let Some(refund) = refund.filter(|r| r.state == RefundState::Success) {
            break refund;
        }
        assert!(tokio::time::Instant::now() < give_up, "the refund was left {:?}", store.get_refund(&key, "R1").await);
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(refund.amount.to_string(), "5.00");
    assert_eq!(stack.ledger(&pos, &refunded).await.unwrap().state, TradeState::PartiallyRefunded);
    let trade = cancelled(&stack, &pos, &reversed, Duration::from_secs(5)).await;
    agrees_with_alipay(&trade, stack.truth(&pos, &reversed).await.as_ref()).unwrap();
    // The POS asking again hears the outcome; nothing reached Alipay twice.
    let (status, again) = pos.send("POST", &format!("/v1/payments/{reversed}/cancel"), None).await;
    assert_eq!((status, again["status"].as_str()), (200, Some("CANCELLED")), "{again}");
    let truth = stack.truth(&pos, &reversed).await.unwrap();
    assert_eq!(calls(&truth, "cancel").len(), 1, "{truth}");
}
