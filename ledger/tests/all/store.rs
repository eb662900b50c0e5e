//! Intents, settlements, refunds, notifications, waiters and reports.

use std::time::Duration;

use ledger::store::{NotificationOutcome, NotifiedPayment, NotifiedStatus};
use ledger::{
    Begin, BeginRefund, CancelAction, DueIndex, Finals, NewRefund, NewTrade, Recorded, RefundSettlement, Settlement,
    StoreError, TradeKey, TradeKind, TradeState,
};
use time::OffsetDateTime;
use uuid::Uuid;

use crate::helpers::*;

#[tokio::test]
async fn one_intent_per_key_and_compare_and_set_transitions() {
    let (_db, store) = database().await;
    let tenant = Uuid::new_v4();
    let begins: Vec<_> = (0..50)
        .map(|_| {
            let store = store.clone();
            tokio::spawn(async move { store.begin(&intent(tenant, "T1", "10.00")).await.unwrap() })
        })
        .collect();
    let mut started = 0;
    for begin in begins {
        if let Begin::Started(trade) = begin.await.unwrap() {
            started += 1;
            assert_eq!((trade.state, trade.version), (TradeState::Paying, 1));
        }
    }
    assert_eq!(started, 1, "exactly one caller owns the call to Alipay");

    let trade = store.get(&TradeKey::new(tenant, "T1")).await.unwrap().unwrap();
    let unknown = Settlement::Unknown {
        reason: "timeout".into(),
        next_check_at: OffsetDateTime::now_utc() + Duration::from_secs(5),
        deadline: OffsetDateTime::now_utc() + Duration::from_secs(60),
    };
    let Recorded::Applied(unknown_trade) = store.record(&trade, &unknown).await.unwrap() else { panic!() };
    assert!(unknown_trade.next_check_at.is_some());
    // A stale writer (still holding version 1) is refused and shown the current row.
    let Recorded::Stale(current) = store.record(&trade, &paid()).await.unwrap() else { panic!("stale write applied") };
    assert_eq!(current.state, TradeState::Unknown);
    let Recorded::Applied(done) =
        store.record(&unknown_trade, &Settlement::Cancelled { action: CancelAction::Refund }).await.unwrap()
    else {
        panic!()
    };
    assert_eq!(
        (done.state, done.cancel_action, done.next_check_at),
        (TradeState::Cancelled, Some(CancelAction::Refund), None)
    );
    assert_eq!(done.refunded, done.amount, "a cancel that refunds returns everything");
    assert!(matches!(store.record(&done, &paid()).await, Err(StoreError::Transition { .. })), "terminal states stay");
    let since = OffsetDateTime::now_utc() - Duration::from_secs(60);
    assert!(store.open_trades(since, None, 10).await.unwrap().is_empty(), "a final trade is not open");
}

/// Two tenants on one Alipay account racing for the same numbers, batched together: each number
/// is started by exactly one of them; the other is told it is taken, and nothing of it is written.
#[tokio::test]
async fn a_number_of_an_alipay_account_belongs_to_one_tenant() {
    let (_db, store) = database().await;
    let (a, b) = (Uuid::new_v4(), Uuid::new_v4());
    let shared = |tenant: Uuid, no: &str| NewTrade {
        alipay_account: "openapi:2021000000000001".into(),
        ..intent(tenant, no, "10.00")
    };
    let begins: Vec<_> = (0..100)
        .map(|i| {
            let (store, new) = (store.clone(), shared(if i % 2 == 0 { a } else { b }, &format!("S{}", i / 2)));
            tokio::spawn(async move { store.begin(&new).await.unwrap() })
        })
        .collect();
    let (mut started, mut taken) = (0, 0);
    for begin in begins {
        match begin.await.unwrap() {
            Begin::Started(_) => started += 1,
            Begin::Taken => taken += 1,
            Begin::Existing(trade) => panic!("{trade:?}"),
        }
    }
    assert_eq!((started, taken), (50, 50));
    for i in 0..50 {
        let held =
            [store.get(&TradeKey::new(a, format!("S{i}"))).await, store.get(&TradeKey::new(b, format!("S{i}"))).await];
        assert_eq!(held.iter().filter(|t| t.as_ref().unwrap().is_some()).count(), 1, "S{i}");
    }
    // Another account's number space is its own.
    let elsewhere =
        NewTrade { alipay_account: "openapi:2021000000000002".into(), ..intent(Uuid::new_v4(), "S0", "10.00") };
    assert!(matches!(store.begin(&elsewhere).await.unwrap(), Begin::Started(_)));
}

#[tokio::test]
async fn concurrent_writes_written_together_each_get_their_own_answer() {
    let (_db, store) = database().await;
    let tenant = Uuid::new_v4();
    // 200 intents at once, over 100 keys: each key started exactly once, the rest see it.
    let begins: Vec<_> = (0..200)
        .map(|i| {
            let store = store.clone();
            tokio::spawn(async move { store.begin(&intent(tenant, &format!("B{}", i % 100), "10.00")).await })
        })
        .collect();
    let mut started = std::collections::HashMap::new();
    for begin in begins {
        match begin.await.unwrap().unwrap() {
            Begin::Started(trade) => *started.entry(trade.key.out_trade_no).or_insert(0) += 1,
            Begin::Existing(trade) => assert_eq!(trade.state, TradeState::Paying),
            Begin::Taken => panic!("one tenant's numbers are never another's"),
        }
    }
    assert_eq!(started.len(), 100, "every key started");
    assert!(started.values().all(|&n| n == 1), "no key started twice");

    // Two outcomes race for each trade: exactly one applies, the other sees it.
    let mut races = Vec::new();
    for i in 0..100 {
        let trade = store.get(&TradeKey::new(tenant, format!("B{i}"))).await.unwrap().unwrap();
        for settlement in [paid(), Settlement::Failed { code: "ACQ.TRADE_HAS_CLOSE".into(), message: None }] {
            let (store, trade) = (store.clone(), trade.clone());
            races.push(tokio::spawn(async move { store.record(&trade, &settlement).await.unwrap() }));
        }
    }
    let mut applied = std::collections::HashMap::new();
    for race in races {
        match race.await.unwrap() {
            Recorded::Applied(trade) => {
                assert_eq!(trade.version, 2);
                assert!(applied.insert(trade.key.out_trade_no.clone(), trade.state).is_none(), "applied twice");
            }
            Recorded::Stale(current) => assert!(current.state.is_final()),
        }
    }
    assert_eq!(applied.len(), 100);
    for (no, state) in applied {
        assert_eq!(store.get(&TradeKey::new(tenant, no)).await.unwrap().unwrap().state, state, "the winner is stored");
    }

    // An intent Postgres refuses (a NUL in its text) fails alone; its neighbours are written.
    let mut mixed = Vec::new();
    for i in 0..20 {
        let mut new = intent(tenant, &format!("M{i}"), "1.00");
        if i == 7 {
            new.subject = "bad\0subject".into();
        }
        let store = store.clone();
        mixed.push(tokio::spawn(async move { store.begin(&new).await }));
    }
    for (i, begin) in mixed.into_iter().enumerate() {
        let result = begin.await.unwrap();
        assert_eq!(result.is_err(), i == 7, "M{i}: {result:?}");
    }
}

#[tokio::test]
async fn refunds_never_add_up_to_more_than_was_paid() {
    let (_db, store) = database().await;
    let tenant = Uuid::new_v4();
    let trade = paid_trade(&store, tenant, "R1", "100.00").await;
    let attempts: Vec<_> = (0..30)
        .map(|i| {
            let store = store.clone();
            let key = trade.key.clone();
            tokio::spawn(async move {
                let new = NewRefund {
                    key,
                    out_request_no: format!("r{i}"),
                    wire_request_no: format!("r{i}"),
                    fingerprint: vec![i],
                    amount: cny("7.00"),
                    reason: None,
                    check_at: OffsetDateTime::now_utc() + Duration::from_secs(15),
                };
                store.begin_refund(&new).await.unwrap()
            })
        })
        .collect();
    let mut reserved = Vec::new();
    for attempt in attempts {
        match attempt.await.unwrap() {
            BeginRefund::Started { refund, .. } => reserved.push(refund),
            BeginRefund::Exceeds { available, .. } => assert!(available.minor() < 700),
            other => panic!("{other:?}"),
        }
    }
    assert_eq!(reserved.len(), 14, "14 × 7.00 fit in 100.00, the 15th would not");
    for refund in &reserved {
        store.record_refund(refund, &RefundSettlement::Refunded { at: OffsetDateTime::now_utc() }).await.unwrap();
    }
    let trade = store.get(&trade.key).await.unwrap().unwrap();
    assert_eq!((trade.state, trade.refunded.to_string()), (TradeState::PartiallyRefunded, "98.00".to_owned()));

    let repeat = NewRefund {
        key: trade.key.clone(),
        out_request_no: "r0".into(),
        wire_request_no: "r0".into(),
        fingerprint: vec![0],
        amount: cny("7.00"),
        reason: None,
        check_at: OffsetDateTime::now_utc() + Duration::from_secs(15),
    };
    assert!(matches!(store.begin_refund(&repeat).await.unwrap(), BeginRefund::Existing { .. }));
    let last = NewRefund {
        out_request_no: "last".into(),
        wire_request_no: "last".into(),
        amount: cny("2.00"),
        ..repeat.clone()
    };
    let BeginRefund::Started { refund, .. } = store.begin_refund(&last).await.unwrap() else { panic!() };
    let (_, trade) =
        store.record_refund(&refund, &RefundSettlement::Refunded { at: OffsetDateTime::now_utc() }).await.unwrap();
    assert_eq!(trade.state, TradeState::Refunded);
    let failed = store.begin(&intent(tenant, "F1", "5.00")).await.unwrap();
    let Begin::Started(failed) = failed else { panic!() };
    let missing = NewRefund {
        key: failed.key.clone(),
        out_request_no: "x".into(),
        wire_request_no: "x".into(),
        fingerprint: vec![],
        amount: cny("1.00"),
        reason: None,
        check_at: OffsetDateTime::now_utc(),
    };
    assert!(matches!(store.begin_refund(&missing).await.unwrap(), BeginRefund::NotRefundable(_)));
    let nowhere = NewRefund { key: TradeKey::new(tenant, "none"), ..missing };
    assert!(matches!(store.begin_refund(&nowhere).await.unwrap(), BeginRefund::NoSuchTrade));
}

#[tokio::test]
async fn a_notification_delivered_eight_times_applies_once() {
    let (db, store) = database().await;
    let tenant = Uuid::new_v4();
    let trade = unknown_trade(&store, tenant, "N1", "12.50").await;
    let paid = NotifiedPayment {
        tenant_id: tenant,
        notify_id: "n-1".into(),
        out_trade_no: "N1".into(),
        status: NotifiedStatus::Paid {
            trade_no: Some("2026X".into()),
            buyer_user_id: None,
            paid_at: OffsetDateTime::now_utc(),
        },
        amount: cny("12.50"),
        subject: None,
        alipay_account: format!("tenant:{tenant}"),
        account_shared: false,
    };
    let closed =
        NotifiedPayment { notify_id: "n-2".into(), status: NotifiedStatus::Closed { refunded: false }, ..paid.clone() };
    let mut applied = 0;
    for note in [&closed, &paid, &paid, &closed, &paid, &paid, &paid, &paid] {
        if matches!(store.apply_notification(note).await.unwrap(), NotificationOutcome::Applied(_)) {
            applied += 1;
        }
    }
    assert_eq!(applied, 1, "the first forward step applies, the rest are known");
    let (client, connection) = tokio_postgres::connect(&db.url, tokio_postgres::NoTls).await.unwrap();
    tokio::spawn(connection);
    let outbox: i64 = client.query_one("SELECT count(*) FROM webhook_outbox", &[]).await.unwrap().get(0);
    assert_eq!(outbox, 1);
    let trade = store.get(&trade.key).await.unwrap().unwrap();
    assert_eq!(trade.state, TradeState::Cancelled, "the closed notification came first (out of order) and applied");

    let forged =
        NotifiedPayment { notify_id: "n-3".into(), out_trade_no: "N2".into(), amount: cny("1.00"), ..paid.clone() };
    store.begin(&intent(tenant, "N2", "9.99")).await.unwrap();
    assert!(matches!(store.apply_notification(&forged).await.unwrap(), NotificationOutcome::Refused(_)));
    let recorded: i64 = client
        .query_one("SELECT count(*) FROM alipay_notifications WHERE notify_id = 'n-3'", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(recorded, 0, "a refused notification leaves nothing behind");

    let walk_in =
        NotifiedPayment { notify_id: "n-4".into(), out_trade_no: "SQR1".into(), amount: cny("23.50"), ..paid };
    let NotificationOutcome::Created(created) = store.apply_notification(&walk_in).await.unwrap() else { panic!() };
    assert_eq!((created.kind, created.state), (TradeKind::StaticQr, TradeState::Success));
    let outbox: i64 = client.query_one("SELECT count(*) FROM webhook_outbox", &[]).await.unwrap().get(0);
    assert_eq!(outbox, 2);
}

/// The reconciler's cancel of a trade the buyer paid a moment before reverses the payment; Alipay's
/// TRADE_CLOSED notification of it (carrying the payment time and the refund) may arrive before
/// the reconciler records the cancel. The ledger then says refund, not close (found by the soak).
#[tokio::test]
async fn a_closed_notification_of_a_reversed_payment_records_a_refund() {
    let (_db, store) = database().await;
    let tenant = Uuid::new_v4();
    let mut closed = Vec::new();
    for (no, refunded) in [("R1", true), ("R2", false)] {
        unknown_trade(&store, tenant, no, "16.80").await;
        let note = NotifiedPayment {
            tenant_id: tenant,
            notify_id: format!("n-{no}"),
            out_trade_no: no.into(),
            status: NotifiedStatus::Closed { refunded },
            amount: cny("16.80"),
            subject: None,
            alipay_account: format!("tenant:{tenant}"),
            account_shared: false,
        };
        let NotificationOutcome::Applied(trade) = store.apply_notification(&note).await.unwrap() else { panic!() };
        closed.push((trade.state, trade.cancel_action, trade.refunded.to_string()));
    }
    assert_eq!(
        closed,
        [
            (TradeState::Cancelled, Some(CancelAction::Refund), "16.80".to_owned()),
            (TradeState::Cancelled, Some(CancelAction::Close), "0.00".to_owned())
        ]
    );
    // The reversed payment is no revenue: counted, and refunded in full (net 0).
    let now = OffsetDateTime::now_utc();
    let day = store
        .sales_report(tenant, now - Duration::from_secs(3600), now + Duration::from_secs(60), time::macros::offset!(+0))
        .await
        .unwrap();
    let sums: Vec<_> = day.iter().map(|r| (r.count, r.gross_minor, r.refunds_minor, r.net_minor)).collect();
    assert_eq!(sums, [(1, 1680, 1680, 0)]);
}

#[tokio::test]
async fn waiters_wake_when_a_trade_settles() {
    let (db, store) = database().await;
    let settlements = Finals::default();
    let listener = tokio::spawn(settlements.clone().listen(db.url.clone()));
    let Begin::Started(trade) = store.begin(&intent(Uuid::new_v4(), "W1", "1.00")).await.unwrap() else { panic!() };
    let mut listening = settlements.listening();
    tokio::time::timeout(Duration::from_secs(10), listening.wait_for(|up| *up)).await.unwrap().unwrap();
    let mut waiting = settlements.wait_for(&trade.key);
    store.record(&trade, &paid()).await.unwrap();
    // Another process settled it and announced it.
    let (announcer, _task) = ledger::Announcer::start(store.pool().clone());
    announcer.announce(&TradeKey::new(Uuid::new_v4(), "other"));
    announcer.announce(&trade.key);
    tokio::time::timeout(Duration::from_secs(10), waiting.finished()).await.expect("woken by trade_settled");
    drop(waiting);
    assert!(settlements.is_empty());
    listener.abort();
}

#[tokio::test]
async fn due_index_arms_and_disarms() {
    let url = std::env::var("REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into());
    let index = DueIndex::new(&url, &format!("test:{}", Uuid::new_v4())).unwrap();
    let key = TradeKey::new(Uuid::new_v4(), "D1");
    let at = OffsetDateTime::now_utc() + Duration::from_secs(5);
    index.arm(&key, at).await.unwrap();
    assert_eq!(index.due_at(&key).await.unwrap(), Some(ledger::due_index::due_score(at)));
    assert_eq!(index.depth().await.unwrap(), 1);
    index.disarm(&key).await.unwrap();
    assert_eq!(index.depth().await.unwrap(), 0);
}

#[tokio::test]
async fn the_sales_report_adds_up_per_day_and_store() {
    let (_db, store) = database().await;
    let tenant = Uuid::new_v4();
    paid_trade(&store, tenant, "S1", "10.00").await;
    let refunded = paid_trade(&store, tenant, "S2", "20.00").await;
    let new = NewRefund {
        key: refunded.key.clone(),
        out_request_no: "r".into(),
        wire_request_no: "r".into(),
        fingerprint: vec![],
        amount: cny("5.00"),
        reason: None,
        check_at: OffsetDateTime::now_utc(),
    };
    let BeginRefund::Started { refund, .. } = store.begin_refund(&new).await.unwrap() else { panic!() };
    store.record_refund(&refund, &RefundSettlement::Refunded { at: OffsetDateTime::now_utc() }).await.unwrap();
    store.begin(&intent(tenant, "S3", "99.00")).await.unwrap();
    let now = OffsetDateTime::now_utc();
    let rows = store
        .sales_report(tenant, now - Duration::from_secs(3600), now + Duration::from_secs(60), time::macros::offset!(+8))
        .await
        .unwrap();
    assert_eq!(rows.len(), 1);
    assert_eq!((rows[0].count, rows[0].gross_minor, rows[0].refunds_minor, rows[0].net_minor), (2, 3000, 500, 2500));
    assert_eq!(rows[0].store_id.as_deref(), Some("S1"));
}
