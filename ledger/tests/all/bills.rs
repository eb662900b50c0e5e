//! A bill's rows are kept all or nothing: a file refused after some of its rows were read, or a
//! reader that stops without saying it reached the end, leaves the day's rows as they were; a row
//! another day's bill holds already is refused with that day.

use ledger::store::{BillFeed, BilledKind, BilledRow, LoadError};
use time::OffsetDateTime;
use time::macros::date;
use tokio::sync::mpsc;

use crate::helpers::database;

fn row(no: &str) -> BilledRow {
    BilledRow {
        kind: BilledKind::Payment,
        out_trade_no: no.into(),
        out_request_no: String::new(),
        trade_no: format!("2026{no}"),
        currency: "CNY".into(),
        amount_minor: 1200,
        fee_minor: -7,
        store_id: Some("S1".into()),
        finished_at: OffsetDateTime::now_utc(),
    }
}

fn feed(items: Vec<BillFeed>) -> mpsc::Receiver<BillFeed> {
    let (sender, receiver) = mpsc::channel(items.len().max(1));
    for item in items {
        sender.try_send(item).unwrap();
    }
    receiver
}

async fn rows_of(db: &stack::Database, account: &str) -> Vec<String> {
    let client = db.client().await;
    let rows = client
        .query("SELECT out_trade_no FROM bill_rows WHERE alipay_account = $1 ORDER BY 1", &[&account])
        .await
        .unwrap();
    rows.iter().map(|r| r.get(0)).collect()
}

#[tokio::test]
async fn a_bill_refused_or_cut_after_some_rows_keeps_nothing_of_it() {
    let (db, store) = database().await;
    let (account, day) = ("openapi:2021000000000001", date!(2026 - 12 - 04));
    let kept = store.load_bill_rows(account, day, feed(vec![BillFeed::Rows(vec![row("a1")]), BillFeed::End])).await;
    assert_eq!(kept.unwrap(), 1);

    let refused = feed(vec![
        BillFeed::Rows(vec![row("b1"), row("b2")]),
        BillFeed::Failed("line 9 of the detail: the footer's total is not the rows'".into()),
    ]);
    let error = store.load_bill_rows(account, day, refused).await.unwrap_err();
    assert!(matches!(&error, LoadError::Refused(why) if why.contains("line 9")), "{error}");
    assert_eq!(rows_of(&db, account).await, ["a1"], "the day's rows are as they were");

    let cut = feed(vec![BillFeed::Rows(vec![row("c1")])]);
    assert!(matches!(store.load_bill_rows(account, day, cut).await, Err(LoadError::Cut)));
    assert_eq!(rows_of(&db, account).await, ["a1"]);

    let next_day = date!(2026 - 12 - 05);
    let repeated = feed(vec![BillFeed::Rows(vec![row("d1"), row("a1")]), BillFeed::End]);
    let error = store.load_bill_rows(account, next_day, repeated).await.unwrap_err();
    assert!(matches!(&error, LoadError::Repeated(detail) if detail.contains("a1")), "{error}");
    assert_eq!(rows_of(&db, account).await, ["a1"]);
}
