//! What the reconciler relies on: leased claims in Redis and Postgres, the cancel mark, the
//! settlement that tells the merchant, the sweeper's pages, and the webhook outbox.

use std::collections::HashSet;
use std::time::Duration;

use ledger::due_index::{Rearm, due_score, score};
use ledger::store::{AfterAttempt, Attempt};
use ledger::{
    Begin, BeginRefund, DueIndex, NewRefund, Recorded, RefundSettlement, RefundState, Settlement, TradeKey, TradeState,
};
use time::OffsetDateTime;
use uuid::Uuid;

use crate::helpers::*;

fn index() -> DueIndex {
    let url = std::env::var("REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into());
    DueIndex::new(&url, &format!("test:{}", Uuid::new_v4())).unwrap()
}

fn unknown() -> Settlement {
    let now = OffsetDateTime::now_utc();
    Settlement::Unknown {
        reason: "timeout".into(),
        next_check_at: now + Duration::from_secs(5),
        deadline: now + Duration::from_secs(60),
    }
}

#[tokio::test]
async fn a_claim_leases_due_trades_and_only_the_leaseholder_rearms() {
    let index = index();
    let tenant = Uuid::new_v4();
    let now = OffsetDateTime::now_utc();
    let (a, b, later) = (TradeKey::new(tenant, "A"), TradeKey::new(tenant, "B"), TradeKey::new(tenant, "L"));
    index.arm(&a, now - Duration::from_millis(20)).await.unwrap();
    index.arm(&b, now - Duration::from_millis(10)).await.unwrap();
    index.arm(&later, now + Duration::from_secs(30)).await.unwrap();

    let (at, lease) = (score(now), score(now + Duration::from_secs(10)));
    let claim = index.claim(at, lease, 10).await.unwrap();
    let claimed: Vec<_> = claim.due.iter().map(|(key, due)| (key.out_trade_no.as_str(), *due)).collect();
    assert_eq!(
        claimed,
        [("A", due_score(now - Duration::from_millis(20))), ("B", due_score(now - Duration::from_millis(10)))]
    );
    assert_eq!(claim.next_due, Some(lease), "the lease is the earliest score left");
    assert!(index.claim(at, lease, 10).await.unwrap().due.is_empty(), "leased trades are nobody else's");

    let next = score(now + Duration::from_secs(5));
    let wrong = Rearm { key: a.clone(), lease: lease + 1, next };
    assert_eq!(index.rearm(&[wrong]).await.unwrap(), 0, "a claimer whose lease is gone does not re-arm");
    assert_eq!(index.rearm(&[Rearm { key: a.clone(), lease, next }]).await.unwrap(), 1);
    assert_eq!(index.due_at(&a).await.unwrap(), Some(next));

    // B's claimer died: when its lease ends B comes due again, for someone else.
    let retaken = index.claim(lease, score(now + Duration::from_secs(20)), 10).await.unwrap();
    assert_eq!(retaken.due.iter().map(|(k, _)| k.out_trade_no.as_str()).collect::<Vec<_>>(), ["A", "B"]);
    index.disarm(&a).await.unwrap();
    index.disarm(&b).await.unwrap();
    index.disarm(&later).await.unwrap();
}

#[tokio::test]
async fn arming_what_is_missing_keeps_the_times_already_armed() {
    let index = index();
    let now = OffsetDateTime::now_utc();
    let (kept, added) = (TradeKey::new(Uuid::new_v4(), "K"), TradeKey::new(Uuid::new_v4(), "N"));
    index.arm(&kept, now).await.unwrap();
    let later = now + Duration::from_secs(9);
    assert_eq!(index.arm_missing(&[(kept.clone(), later), (added.clone(), later)]).await.unwrap(), 1);
    assert_eq!(index.due_at(&kept).await.unwrap(), Some(due_score(now)));
    assert_eq!(index.due_at(&added).await.unwrap(), Some(due_score(later)));
    index.disarm_members(&[kept.encode(), added.encode()]).await.unwrap();
    assert_eq!(index.depth().await.unwrap(), 0);
}

#[tokio::test]
async fn a_settlement_and_its_webhook_event_are_written_together() {
    let (db, store) = database().await;
    let Begin::Started(trade) = store.begin(&intent(Uuid::new_v4(), "S1", "8.00")).await.unwrap() else { panic!() };
    let Recorded::Applied(waiting) = store.record(&trade, &unknown()).await.unwrap() else { panic!() };
    let Recorded::Applied(paid_trade) = store.record_and_tell(&waiting, &paid()).await.unwrap() else { panic!() };
    assert_eq!((paid_trade.state, paid_trade.next_check_at), (TradeState::Success, None));
    let Recorded::Stale(_) = store.record_and_tell(&waiting, &paid()).await.unwrap() else {
        panic!("stale write applied")
    };
    let client = tokio_postgres::connect(&db.url, tokio_postgres::NoTls).await.unwrap();
    tokio::spawn(client.1);
    let events = client.0.query("SELECT event, payload FROM webhook_outbox", &[]).await.unwrap();
    assert_eq!(events.len(), 1, "the refused write told nobody");
    assert_eq!(events[0].get::<_, &str>(0), "payment.succeeded");
    let payload: serde_json::Value = events[0].get(1);
    assert_eq!((payload["status"].as_str(), payload["amount"].as_str()), (Some("SUCCESS"), Some("8.00")));
}

#[tokio::test]
async fn of_two_cancel_marks_at_one_version_exactly_one_passes() {
    let (_db, store) = database().await;
    let Begin::Started(trade) = store.begin(&intent(Uuid::new_v4(), "C1", "8.00")).await.unwrap() else { panic!() };
    let Recorded::Applied(waiting) = store.record(&trade, &unknown()).await.unwrap() else { panic!() };
    let (first, second) = tokio::join!(store.mark_cancelling(&waiting), store.mark_cancelling(&waiting));
    let passed = [first.unwrap(), second.unwrap()].into_iter().filter(|s| matches!(s, Recorded::Applied(_))).count();
    assert_eq!(passed, 1);
    let marked = store.get(&waiting.key).await.unwrap().unwrap();
    assert!(marked.cancel_requested && marked.version == waiting.version + 1 && marked.state == TradeState::Unknown);
}

#[tokio::test]
async fn a_claimed_batch_is_read_and_its_expired_trades_marked_in_one_statement() {
    let (_db, store) = database().await;
    let tenant = Uuid::new_v4();
    let now = OffsetDateTime::now_utc();
    let mut keys = Vec::new();
    for (no, deadline) in [("expired", now - Duration::from_secs(1)), ("running", now + Duration::from_secs(30))] {
        let Begin::Started(trade) = store.begin(&intent(tenant, no, "1.00")).await.unwrap() else { panic!() };
        let unknown = Settlement::Unknown { reason: "timeout".into(), next_check_at: now, deadline };
        store.record(&trade, &unknown).await.unwrap();
        keys.push(trade.key);
    }
    // An intent whose gateway died: no deadline of its own, created longer ago than the default.
    let Begin::Started(paying) = store.begin(&intent(tenant, "paying", "1.00")).await.unwrap() else { panic!() };
    keys.push(paying.key);
    keys.push(TradeKey::new(tenant, "absent"));
    let later = now + Duration::from_secs(1);
    let mut read = store.get_many_marking_expired(&keys, later, Duration::from_millis(500)).await.unwrap();
    read.sort_by(|a, b| a.key.cmp(&b.key));
    let seen: Vec<_> = read.iter().map(|t| (t.key.out_trade_no.as_str(), t.cancel_requested, t.version)).collect();
    assert_eq!(seen, [("expired", true, 3), ("paying", true, 2), ("running", false, 2)]);
    let again = store.get_many_marking_expired(&keys, later, Duration::from_millis(500)).await.unwrap();
    assert!(again.iter().all(|t| t.version == read.iter().find(|r| r.key == t.key).unwrap().version), "marked once");
}

#[tokio::test]
async fn postgres_claims_never_overlap_and_a_lost_lease_cannot_reschedule() {
    let (_db, store) = database().await;
    let tenant = Uuid::new_v4();
    for n in 0..40 {
        let mut new = intent(tenant, &format!("P{n}"), "1.00");
        new.check_at = OffsetDateTime::now_utc() - Duration::from_secs(1);
        store.begin(&new).await.unwrap();
    }
    let now = OffsetDateTime::now_utc();
    let until = now + Duration::from_secs(10);
    let claims = futures_join(&store, now, until).await;
    let keys: HashSet<_> = claims.iter().flatten().map(|t| t.key.clone()).collect();
    assert_eq!((claims.iter().map(Vec::len).sum::<usize>(), keys.len()), (40, 40), "every trade claimed once");
    let claimed = &claims[0][0];
    assert!(store.claim_due(now, until, 100).await.unwrap().is_empty(), "leased");
    assert!(store.reschedule(claimed, now + Duration::from_secs(5)).await.unwrap());
    assert!(!store.reschedule(claimed, now + Duration::from_secs(6)).await.unwrap(), "the lease is spent");
}

async fn futures_join(store: &ledger::Store, now: OffsetDateTime, until: OffsetDateTime) -> Vec<Vec<ledger::Trade>> {
    let tasks: Vec<_> = (0..4)
        .map(|_| {
            let store = store.clone();
            tokio::spawn(async move { store.claim_due(now, until, 15).await.unwrap() })
        })
        .collect();
    let mut claims = Vec::new();
    for task in tasks {
        claims.push(task.await.unwrap());
    }
    claims.retain(|c| !c.is_empty());
    claims
}

#[tokio::test]
async fn the_sweeper_pages_through_open_trades_of_its_window() {
    let (_db, store) = database().await;
    let tenant = Uuid::new_v4();
    for n in 0..5 {
        store.begin(&intent(tenant, &format!("O{n}"), "1.00")).await.unwrap();
    }
    paid_trade(&store, tenant, "final", "1.00").await;
    let since = OffsetDateTime::now_utc() - Duration::from_secs(60);
    let first = store.open_trades(since, None, 3).await.unwrap();
    let rest = store.open_trades(since, first.last().map(|o| &o.key), 3).await.unwrap();
    let names: Vec<_> = first.iter().chain(&rest).map(|o| o.key.out_trade_no.as_str()).collect();
    assert_eq!(names, ["O0", "O1", "O2", "O3", "O4"]);
    assert!(store.open_trades(OffsetDateTime::now_utc(), None, 3).await.unwrap().is_empty(), "outside the window");
}

#[tokio::test]
async fn a_webhook_is_delivered_by_one_claimer_and_every_attempt_is_listed() {
    let (_db, store) = database().await;
    let tenant = Uuid::new_v4();
    let Begin::Started(trade) = store.begin(&intent(tenant, "H1", "3.00")).await.unwrap() else { panic!() };
    let Recorded::Applied(waiting) = store.record(&trade, &unknown()).await.unwrap() else { panic!() };
    store.record_and_tell(&waiting, &paid()).await.unwrap();

    let now = OffsetDateTime::now_utc();
    let lease = now + Duration::from_secs(30);
    let claimed = store.claim_webhooks(now, lease, 10).await.unwrap();
    assert_eq!(claimed.len(), 1);
    assert!(store.claim_webhooks(now, lease, 10).await.unwrap().is_empty(), "leased to its claimer");
    let delivery = &claimed[0];
    let failed = Attempt { attempt: 1, at: now, took_ms: 12, http_status: Some(500), error: Some("HTTP 500".into()) };
    let retry = AfterAttempt::RetryAt(now);
    assert!(store.record_webhook_attempt(delivery, Some(&failed), Some("HTTP 500"), retry).await.unwrap());
    assert!(
        !store.record_webhook_attempt(delivery, Some(&failed), None, AfterAttempt::Delivered).await.unwrap(),
        "a second record of the same attempt is refused"
    );
    let again = store.claim_webhooks(OffsetDateTime::now_utc(), lease, 10).await.unwrap();
    let ok = Attempt { attempt: 2, at: now, took_ms: 3, http_status: Some(200), error: None };
    assert!(store.record_webhook_attempt(&again[0], Some(&ok), None, AfterAttempt::Delivered).await.unwrap());

    let reports = store.webhook_deliveries(tenant, 10).await.unwrap();
    assert_eq!(reports.len(), 1);
    let report = &reports[0];
    assert_eq!((report.status, report.delivery.event.as_str()), ("delivered", "payment.succeeded"));
    let statuses: Vec<_> = report.history.iter().map(|a| a.http_status).collect();
    assert_eq!(statuses, [Some(500), Some(200)]);
    assert!(
        store.claim_webhooks(OffsetDateTime::now_utc() + Duration::from_secs(60), lease, 10).await.unwrap().is_empty()
    );
}

#[tokio::test]
async fn refunds_whose_outcome_is_unknown_are_claimed_by_one_reconciler() {
    let (_db, store) = database().await;
    let trade = paid_trade(&store, Uuid::new_v4(), "R1", "10.00").await;
    let now = OffsetDateTime::now_utc();
    let mut started = Vec::new();
    for (no, check_at) in [("lost", now - Duration::from_secs(1)), ("fresh", now + Duration::from_secs(30))] {
        let new = NewRefund {
            key: trade.key.clone(),
            out_request_no: no.into(),
            wire_request_no: no.into(),
            fingerprint: vec![1],
            amount: cny("1.00"),
            reason: None,
            check_at,
        };
        let BeginRefund::Started { refund, .. } = store.begin_refund(&new).await.unwrap() else { panic!() };
        started.push(refund);
    }
    let until = now + Duration::from_secs(10);
    let claimed = store.claim_refunds(now, until, 10).await.unwrap();
    let claimed: Vec<_> = claimed.iter().map(|r| r.out_request_no.as_str()).collect();
    assert_eq!(claimed, ["lost"], "a PENDING refund past its check time; not one still being made");
    assert!(store.claim_refunds(now, until, 10).await.unwrap().is_empty(), "leased");
    let (refund, trade) = store.record_refund(&started[0], &RefundSettlement::Refunded { at: now }).await.unwrap();
    assert_eq!((refund.state, trade.refunded), (RefundState::Success, cny("1.00")));
    assert!(store.claim_refunds(until, until, 10).await.unwrap().is_empty(), "settled refunds are done");
}
