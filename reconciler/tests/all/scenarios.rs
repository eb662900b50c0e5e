//! Scenarios 60–69 of design §5, through the partner API: each ends in the right final state, by
//! its deadline plus a small grace, and as Alipay's ground truth has it.

use std::time::Duration;

use ledger::{CancelAction, TradeState};
use stack::*;

use crate::helpers::*;

const EXPECTED: [(&str, TradeState, Option<CancelAction>); 10] = [
    ("60", TradeState::Success, None),
    ("61", TradeState::Cancelled, Some(CancelAction::Close)),
    ("62", TradeState::Success, None),
    ("63", TradeState::Cancelled, Some(CancelAction::Close)),
    ("64", TradeState::Success, None),
    ("65", TradeState::Success, None),
    ("66", TradeState::Success, None),
    ("67", TradeState::Cancelled, Some(CancelAction::Close)),
    ("68", TradeState::Cancelled, Some(CancelAction::Refund)),
    ("69", TradeState::Cancelled, Some(CancelAction::Close)),
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_unknown_scenario_ends_final_as_alipay_has_it() {
    // No notifications: the reconciler alone must find every outcome (68's payment at 58 s is
    // then reversed by the cancel at 60 s).
    let stack = Stack::start(Options { notifications: false, ..Options::scaled(SCALE) }).await;
    let reconciler = stack.start_reconciler(stack.reconciler_config()).await;
    let tenants = [stack.openapi_tenant().await, stack.mapi_tenant().await];
    let mut paying = Vec::new();
    for pos in &tenants {
        for (suffix, state, action) in EXPECTED {
            let (pos, no) = (pos.clone(), trade_no(&format!("r{suffix}")));
            paying.push(tokio::spawn(async move {
                let (status, body) = pos.charge(&no, &code(suffix), "66.60").await;
                assert_eq!((status, body["status"].as_str()), (200, Some("UNKNOWN")), "{suffix}: {body}");
                (pos, no, suffix, state, action)
            }));
        }
    }
    let grace = Duration::from_millis(1500);
    for paid in paying {
        let (pos, no, suffix, state, action) = paid.await.unwrap();
        let trade = final_trade(&stack, &pos, &no, Duration::from_secs(20)).await;
        assert_eq!((trade.state, trade.cancel_action), (state, action), "{suffix}");
        let truth = stack.truth(&pos, &no).await;
        agrees_with_alipay(&trade, truth.as_ref()).map_err(|e| format!("{suffix}: {e}")).unwrap();
        let deadline = trade.deadline.unwrap();
        assert!(
            trade.updated_at <= deadline + grace,
            "{suffix}: final {} after its deadline",
            trade.updated_at - deadline
        );
        if suffix == "69" {
            assert_eq!(calls(truth.as_ref().unwrap(), "cancel").len(), 3, "two retry_flag=Y answers, then done");
        }
    }
    reconciler.stop().await;
}
