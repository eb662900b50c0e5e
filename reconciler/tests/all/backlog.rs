//! After an outage: a backlog of overdue trades, none of them in Redis, drains without errors.
//! (Its speed is measured by `cargo bench -p reconciler --bench timers`.)

use std::time::Duration;

use ledger::{Begin, NewTrade, Recorded, Settlement, TradeKey, TradeKind};
use stack::*;
use time::OffsetDateTime;

use crate::helpers::*;

const BACKLOG: usize = 600;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_overdue_backlog_drains_without_errors() {
    let stack = Stack::start(Options { notifications: false, ..Options::scaled(SCALE) }).await;
    let pos = stack.mapi_tenant().await;
    let store = &stack.gateway.state().store;
    let overdue = OffsetDateTime::now_utc() - Duration::from_secs(120);
    for n in 0..BACKLOG {
        let new = NewTrade {
            key: TradeKey::new(pos.tenant_id, format!("B{n}")),
            kind: TradeKind::Barcode,
            fingerprint: vec![0],
            amount: alipay::Amount::parse("3.00", alipay::Currency::USD).unwrap(),
            subject: "Tea".into(),
            store_id: None,
            terminal_id: None,
            operator_id: None,
            check_at: overdue,
            alipay_account: pos.alipay_account(),
            notify_url: None,
        };
        let Begin::Started(trade) = store.begin(&new).await.unwrap() else { panic!() };
        // Half were due for a query, half for their cancel, while everything was down.
        let deadline = if n % 2 == 0 { overdue } else { OffsetDateTime::now_utc() + Duration::from_secs(3) };
        let unknown = Settlement::Unknown { reason: "timeout".into(), next_check_at: overdue, deadline };
        assert!(matches!(store.record(&trade, &unknown).await.unwrap(), Recorded::Applied(_)));
    }
    let config = reconciler::Config {
        cancel_rate_per_tenant: 100_000,
        query_rate_per_tenant: 100_000,
        ..stack.reconciler_config()
    };
    let reconciler = stack.start_reconciler(config).await;
    let client = stack.db.client().await;
    let open = || async {
        client
            .query_one("SELECT count(*) FROM trades WHERE next_check_at IS NOT NULL", &[])
            .await
            .unwrap()
            .get::<_, i64>(0)
    };
    let drained = tokio::time::timeout(Duration::from_secs(30), async {
        while open().await > 0 {
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    })
    .await;
    assert!(drained.is_ok(), "{} trades still open", open().await);
    let cancelled: i64 = client
        .query_one("SELECT count(*) FROM trades WHERE state = 'CANCELLED' AND cancel_action = 'close'", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(cancelled, BACKLOG as i64, "Alipay has none of them: every one closed");
    let metrics =
        reqwest::get(format!("http://{}/metrics", reconciler.admin_addr())).await.unwrap().text().await.unwrap();
    assert_eq!(counter(&metrics, "reconciler_store_errors_total", ""), 0.0);
    assert_eq!(counter(&metrics, "reconciler_checks_total", "result=\"not_sent\""), 0.0);
    assert!(counter(&metrics, "reconciler_cancels_total", "action=\"close\"") >= BACKLOG as f64);
    for watched in [
        "reconciler_due_index_depth",
        "reconciler_claim_lag_seconds_bucket",
        "reconciler_timer_lateness_seconds_bucket",
        "reconciler_checks_total",
        "reconciler_settled_total",
        "reconciler_sweeper_armed_total",
    ] {
        assert!(metrics.contains(watched), "{watched} is exported");
    }
    reconciler.stop().await;
}
