//! Several reconcilers at once: a trade is worked on by one at a time (the lease), and a
//! reconciler that was paused past its lease has its late writes refused (the compare-and-set):
//! it never sends the cancel of a trade someone else settled.

use std::time::Duration;

use alipay::SignType;
use ledger::{Settlement, TradeState};
use reconciler::check::Next;
use stack::*;
use tenants::model::Dialect;

use crate::helpers::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_reconcilers_never_both_act_on_one_trade() {
    let stack = Stack::start(Options { notifications: false, ..Options::scaled(SCALE) }).await;
    let (one, two) = (
        stack.start_reconciler(stack.reconciler_config()).await,
        stack.start_reconciler(stack.reconciler_config()).await,
    );
    let pos = stack.mapi_tenant().await;
    let mut paying = Vec::new();
    for _ in 0..60 {
        let (pos, no) = (pos.clone(), trade_no("x"));
        paying.push(tokio::spawn(async move {
            assert_eq!(pos.charge(&no, &code("61"), "5.00").await.0, 200);
            no
        }));
    }
    let interval = stack.reconciler_config().query_interval.as_millis() as i64;
    for task in paying {
        let no = task.await.unwrap();
        let trade = final_trade(&stack, &pos, &no, Duration::from_secs(20)).await;
        assert_eq!(trade.state, TradeState::Cancelled);
        let truth = stack.truth(&pos, &no).await.unwrap();
        assert_eq!(calls(&truth, "cancel").len(), 1, "{no}: cancelled once, by one reconciler");
        let queries = calls(&truth, "query");
        assert!(queries.len() <= 11, "{no}: {} queries for 11 due times", queries.len());
        for pair in queries.windows(2) {
            assert!(pair[1] - pair[0] >= interval / 2, "{no}: two queries {} ms apart", pair[1] - pair[0]);
        }
    }
    one.stop().await;
    two.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_paused_reconcilers_late_writes_are_refused() {
    let stack = Stack::start(Options { notifications: false, ..Options::scaled(SCALE) }).await;
    let live = stack.start_reconciler(stack.reconciler_config()).await;
    // Its webhooks go nowhere; what matters is how many are written.
    let nowhere = Some("http://127.0.0.1:9/hooks".to_owned());
    let (pos, _) = stack.tenant_with_webhook(Dialect::Mapi, SignType::Md5, generous(), nowhere).await;
    let checker = &live.shared().checker;

    // Read while UNKNOWN, then "paused" while the live reconciler cancels it at the deadline.
    let never_pays = trade_no("p");
    pos.charge(&never_pays, &code("61"), "5.00").await;
    let stale = stack.ledger(&pos, &never_pays).await.unwrap();
    let done = final_trade(&stack, &pos, &never_pays, Duration::from_secs(20)).await;
    assert_eq!(checker.check(stale, None).await, Next::Final, "the stale cancel mark is refused");
    assert_eq!(stack.ledger(&pos, &never_pays).await.unwrap(), done, "nothing written");
    let truth = stack.truth(&pos, &never_pays).await.unwrap();
    assert_eq!(calls(&truth, "cancel").len(), 1, "and nothing sent");

    // Read while UNKNOWN; the buyer pays and the live reconciler records it; the paused one's
    // own query then proves the payment too, onto a version that is gone.
    let pays_later = trade_no("p");
    pos.charge(&pays_later, &code("60"), "5.00").await;
    let stale = stack.ledger(&pos, &pays_later).await.unwrap();
    let done = final_trade(&stack, &pos, &pays_later, Duration::from_secs(20)).await;
    assert_eq!(done.state, TradeState::Success);
    assert_eq!(checker.check(stale.clone(), None).await, Next::Final);
    assert_eq!(stack.ledger(&pos, &pays_later).await.unwrap(), done, "the late settlement is refused");
    let refused = checker.store.record_and_tell(&stale, &Settlement::Failed { code: "X".into(), message: None }).await;
    assert!(matches!(refused, Ok(ledger::Recorded::Stale(_))), "{refused:?}");
    let client = stack.db.client().await;
    let told: i64 = client
        .query_one("SELECT count(*) FROM webhook_outbox WHERE out_trade_no = $1", &[&pays_later])
        .await
        .unwrap()
        .get(0);
    assert_eq!(told, 1, "the merchant hears of the payment once");
    live.stop().await;
}
