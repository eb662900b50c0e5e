//! A fresh database per test (`stack::Database`, dropped after), and the trades the tests start from.

use std::time::Duration;

use alipay::{Amount, Currency};
use ledger::{Begin, NewTrade, Recorded, Settlement, Store, TradeKey, TradeKind};
use time::OffsetDateTime;
use uuid::Uuid;

/// A fresh database (dropped after) and the ledger's store on it.
pub async fn database() -> (stack::Database, Store) {
    let db = stack::Database::new().await;
    let store = Store::new(db.pool());
    (db, store)
}

pub fn cny(text: &str) -> Amount {
    Amount::parse(text, Currency::CNY).unwrap()
}

pub fn intent(tenant: Uuid, no: &str, amount: &str) -> NewTrade {
    NewTrade {
        key: TradeKey::new(tenant, no),
        kind: TradeKind::Barcode,
        fingerprint: vec![1, 2, 3],
        amount: cny(amount),
        subject: "Noodles".into(),
        store_id: Some("S1".into()),
        terminal_id: None,
        operator_id: None,
        check_at: OffsetDateTime::now_utc() + Duration::from_secs(15),
        alipay_account: format!("tenant:{tenant}"),
        notify_url: None,
    }
}

pub fn paid() -> Settlement {
    Settlement::Paid { trade_no: Some("2026112522001".into()), buyer_user_id: None, paid_at: OffsetDateTime::now_utc() }
}

pub async fn paid_trade(store: &Store, tenant: Uuid, no: &str, amount: &str) -> ledger::Trade {
    let Begin::Started(trade) = store.begin(&intent(tenant, no, amount)).await.unwrap() else { panic!("new key") };
    let Recorded::Applied(trade) = store.record(&trade, &paid()).await.unwrap() else { panic!("fresh version") };
    trade
}

/// A trade whose pay got no answer: UNKNOWN, due for a query now, cancelled in a minute.
pub async fn unknown_trade(store: &Store, tenant: Uuid, no: &str, amount: &str) -> ledger::Trade {
    let Begin::Started(trade) = store.begin(&intent(tenant, no, amount)).await.unwrap() else { panic!("new key") };
    let unknown = Settlement::Unknown {
        reason: "10003".into(),
        next_check_at: OffsetDateTime::now_utc(),
        deadline: OffsetDateTime::now_utc() + Duration::from_secs(60),
    };
    let Recorded::Applied(trade) = store.record(&trade, &unknown).await.unwrap() else { panic!("fresh version") };
    trade
}
