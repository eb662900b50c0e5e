//! Settlement's matching against a real ledger (no sandbox): every kind of row is matched whether
//! the day's window holds its trade or it is looked up after (an old trade's refund, a QR order
//! paid days after it was made, a reversal); what only one side holds is a disagreement; the
//! totals are the tenant's per store; a bill refused, cut or holding a row twice is refused, and
//! its spill files are removed.

use ledger::Store;
use ledger::store::{BillFeed, BillTotal, BilledKind, BilledRow, Disagreement, beijing_bounds};
use reconciler::bills::matching::{self, BillSource, MatchError, Matched};
use reconciler::bills::spill::WorkDir;
use time::macros::date;
use time::{Date, Duration, OffsetDateTime};
use tokio::sync::mpsc;
use uuid::Uuid;

const ACCOUNT: &str = "openapi:2021000000000077";
const DAY: Date = date!(2026 - 03 - 14);

fn noon() -> OffsetDateTime {
    beijing_bounds(DAY).0 + Duration::hours(12)
}

fn row(kind: BilledKind, no: &str, request: &str, amount: i64) -> BilledRow {
    BilledRow {
        kind,
        out_trade_no: no.into(),
        out_request_no: request.into(),
        trade_no: format!("2026{no}"),
        currency: "CNY".into(),
        amount_minor: amount,
        fee_minor: if kind == BilledKind::Payment { -amount * 6 / 1000 } else { amount * 6 / 1000 },
        store_id: None,
        finished_at: noon(),
    }
}

fn pay(no: &str, amount: i64) -> BilledRow {
    row(BilledKind::Payment, no, "", amount)
}

fn refund(no: &str, request: &str, amount: i64) -> BilledRow {
    row(BilledKind::Refund, no, request, amount)
}

/// A trade of `tenant`: `state`, made `made` before noon of the day, paid `paid` after noon.
async fn trade(db: &stack::Database, tenant: Uuid, no: &str, amount: i64, made: Duration, paid: Option<Duration>) {
    let client = db.client().await;
    let (created, paid_at) = (noon() - made, paid.map(|p| noon() + p));
    let state = if paid.is_some() { "SUCCESS" } else { "FAILED" };
    client
        .execute(
            "INSERT INTO trades (tenant_id, out_trade_no, kind, state, fingerprint, currency, amount_minor, subject, \
             store_id, trade_no, created_at, updated_at, paid_at, alipay_account) \
             VALUES ($1, $2, 'barcode', $3, '\\x00'::bytea, 'CNY', $4, 'test', 'S1', '2026' || $2, $5, $5, $6, $7)",
            &[&tenant, &no, &state, &amount, &created, &paid_at, &ACCOUNT],
        )
        .await
        .unwrap();
}

async fn ledger_refund(db: &stack::Database, tenant: Uuid, no: &str, request: &str, amount: i64, at: OffsetDateTime) {
    let client = db.client().await;
    client
        .execute(
            "INSERT INTO refunds (tenant_id, out_trade_no, out_request_no, wire_request_no, state, fingerprint, \
             amount_minor, created_at, updated_at, refunded_at) \
             VALUES ($1, $2, $3, $3, 'SUCCESS', '\\x00'::bytea, $4, $5, $5, $5)",
            &[&tenant, &no, &request, &amount, &at],
        )
        .await
        .unwrap();
    client
        .execute(
            "UPDATE trades SET refunded_minor = refunded_minor + $3, state = 'PARTIALLY_REFUNDED' \
             WHERE tenant_id = $1 AND out_trade_no = $2",
            &[&tenant, &no, &amount],
        )
        .await
        .unwrap();
}

fn feed(items: Vec<BillFeed>) -> mpsc::Receiver<BillFeed> {
    let (sender, receiver) = mpsc::channel(items.len().max(1));
    for item in items {
        sender.try_send(item).unwrap();
    }
    receiver
}

async fn run(
    db: &stack::Database,
    store: &Store,
    tenant: Uuid,
    items: Vec<BillFeed>,
) -> (Result<Matched, MatchError>, std::path::PathBuf) {
    let work = WorkDir::create(&std::env::temp_dir(), &format!("test-{}", Uuid::new_v4())).unwrap();
    let path = work.path().to_owned();
    let ledger = matching::Ledger { store, day_reader: pgtls::Target::parse(&db.url).unwrap() };
    let bill = BillSource::Feed(feed(items));
    (matching::match_day(ledger, ACCOUNT, &[tenant], Some(tenant), DAY, bill, work).await, path)
}

fn names(disagreements: &[Disagreement]) -> Vec<String> {
    let mut names: Vec<String> = disagreements
        .iter()
        .map(|d| match d {
            Disagreement::PaymentNotInLedger { row } => format!("not in ledger {}", row.out_trade_no),
            Disagreement::PaymentDiffers { row, .. } => format!("differs {}", row.out_trade_no),
            Disagreement::RefundDiffers { row, ledger_minor, .. } => {
                format!("refund differs {}/{} {ledger_minor:?}", row.out_trade_no, row.out_request_no)
            }
            Disagreement::PaymentNotInBill { ledger } => format!("not in bill {}", ledger.out_trade_no),
            Disagreement::RefundNotInBill { ledger, out_request_no, .. } => {
                format!("refund not in bill {}/{out_request_no}", ledger.out_trade_no)
            }
        })
        .collect();
    names.sort();
    names
}

#[tokio::test]
async fn every_row_is_matched_in_the_days_window_or_looked_up_and_what_one_side_lacks_is_found() {
    let db = stack::Database::new().await;
    let store = Store::new(db.pool());
    let tenant = Uuid::new_v4();
    let hour = Duration::hours(1);
    // In the window: paid and billed; paid and billed for another amount; paid and not billed.
    trade(&db, tenant, "A", 1000, hour, Some(Duration::ZERO)).await;
    trade(&db, tenant, "B", 2000, hour, Some(Duration::ZERO)).await;
    trade(&db, tenant, "C", 3000, hour, Some(Duration::ZERO)).await;
    // A QR order made five days before and paid on the day: outside the window, looked up.
    trade(&db, tenant, "Q", 4000, Duration::days(5), Some(Duration::ZERO)).await;
    // A trade of a month before, refunded on the day (its refund is in the window, the trade not);
    // another refunded on the day and not billed.
    trade(&db, tenant, "OLD", 5000, Duration::days(30), Some(-Duration::days(30))).await;
    ledger_refund(&db, tenant, "OLD", "R1", 700, noon()).await;
    ledger_refund(&db, tenant, "OLD", "R2", 800, noon()).await;
    // A reversal on the day: paid, then cancelled with its money refunded.
    trade(&db, tenant, "REV", 6000, hour, Some(Duration::ZERO)).await;
    db.client()
        .await
        .execute(
            "UPDATE trades SET state = 'CANCELLED', cancel_action = 'refund', refunded_minor = amount_minor, \
             cancel_requested_at = $1 WHERE out_trade_no = 'REV'",
            &[&(noon() + hour)],
        )
        .await
        .unwrap();
    // Paid the day before: neither side of this day.
    trade(&db, tenant, "Y", 100, Duration::days(1), Some(-Duration::days(1))).await;

    let bill = vec![
        pay("A", 1000),
        pay("B", 2001),
        pay("Q", 4000),
        pay("REV", 6000),
        refund("OLD", "R1", 700),
        refund("REV", "REV", 6000),
        pay("GHOST", 900),
        refund("GHOST", "G1", 100),
    ];
    let (matched, work) = run(&db, &store, tenant, vec![BillFeed::Rows(bill), BillFeed::End]).await;
    let matched = matched.unwrap();
    assert!(!work.exists(), "the spill files are removed");
    assert_eq!((matched.payments, matched.refunds, matched.more), (5, 3, 0));
    assert_eq!(
        names(&matched.disagreements),
        [
            "differs B",
            "not in bill C",
            "not in ledger GHOST",
            "refund differs GHOST/G1 None",
            "refund not in bill OLD/R2",
        ]
    );
    let total = |store: Option<&str>, payments, refunds, signed: i64, fees: i64| BillTotal {
        tenant_id: tenant,
        store_id: store.map(Into::into),
        currency: "CNY".into(),
        payments,
        refunds,
        fees_minor: fees,
        net_minor: signed + fees,
    };
    // No store: the sole tenant's GHOST rows. S1: A, B (as billed), Q and REV paid; R1 and the
    // reversal's refund.
    let fees_s1 = -6 - 12 - 24 - 36 + 4 + 36;
    assert_eq!(
        matched.totals,
        [total(None, 1, 1, 900 - 100, -5), total(Some("S1"), 4, 2, 1000 + 2001 + 4000 + 6000 - 700 - 6000, fees_s1),]
    );
}

#[tokio::test]
async fn a_bill_refused_cut_or_holding_a_row_twice_is_refused_and_leaves_no_spill_behind() {
    let db = stack::Database::new().await;
    let store = Store::new(db.pool());
    let tenant = Uuid::new_v4();
    trade(&db, tenant, "A", 1000, Duration::hours(1), Some(Duration::ZERO)).await;

    let refused = vec![
        BillFeed::Rows(vec![pay("A", 1000)]),
        BillFeed::Failed("line 9 of the detail: the footer's total is not the rows'".into()),
    ];
    let (error, work) = run(&db, &store, tenant, refused).await;
    assert!(matches!(&error, Err(MatchError::Refused(why)) if why.contains("line 9")), "{error:?}");
    assert!(!work.exists());

    let (error, work) = run(&db, &store, tenant, vec![BillFeed::Rows(vec![pay("A", 1000)])]).await;
    assert!(matches!(error, Err(MatchError::Cut)), "{error:?}");
    assert!(!work.exists());

    for twice in [pay("A", 1000), pay("NOWHERE", 5)] {
        let rows = vec![twice.clone(), pay("B", 1), twice];
        let (error, work) = run(&db, &store, tenant, vec![BillFeed::Rows(rows), BillFeed::End]).await;
        assert!(matches!(&error, Err(MatchError::Repeated(what)) if what.contains("payment of")), "{error:?}");
        assert!(!work.exists());
    }
}
