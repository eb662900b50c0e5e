//! A fresh database per test (dropped after), and the trades the tests start from.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use alipay::{Amount, Currency};
use ledger::{Begin, NewTrade, Settled, Settlement, Store, TradeKey, TradeKind};
use time::OffsetDateTime;
use uuid::Uuid;

pub struct TestDb {
    name: String,
    pub url: String,
}

pub fn admin_url() -> String {
    std::env::var("DATABASE_ADMIN_URL").unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into())
}

impl TestDb {
    pub async fn new() -> (TestDb, Store) {
        static N: AtomicUsize = AtomicUsize::new(0);
        let name = format!("ledger_test_{}_{}", std::process::id(), N.fetch_add(1, Ordering::Relaxed));
        let (admin, connection) = tokio_postgres::connect(&admin_url(), tokio_postgres::NoTls).await.unwrap();
        tokio::spawn(connection);
        admin.batch_execute(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)")).await.unwrap();
        admin.batch_execute(&format!("CREATE DATABASE {name}")).await.unwrap();
        let url = admin_url().rsplit_once('/').map(|(base, _)| format!("{base}/{name}")).unwrap();
        ledger::store::migrate(&url).await.unwrap();
        let config: tokio_postgres::Config = url.parse().unwrap();
        let manager = deadpool_postgres::Manager::new(config, tokio_postgres::NoTls);
        let pool = deadpool_postgres::Pool::builder(manager).max_size(16).build().unwrap();
        (TestDb { name, url }, Store::new(pool))
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        let name = self.name.clone();
        let _ = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
            runtime.block_on(async {
                if let Ok((admin, connection)) = tokio_postgres::connect(&admin_url(), tokio_postgres::NoTls).await {
                    tokio::spawn(connection);
                    let _ = admin.batch_execute(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)")).await;
                }
            });
        })
        .join();
    }
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
    }
}

pub fn paid() -> Settlement {
    Settlement::Paid { trade_no: Some("2026112522001".into()), buyer_user_id: None, paid_at: OffsetDateTime::now_utc() }
}

pub async fn paid_trade(store: &Store, tenant: Uuid, no: &str, amount: &str) -> ledger::Trade {
    let Begin::Started(trade) = store.begin(&intent(tenant, no, amount)).await.unwrap() else { panic!("new key") };
    let Settled::Applied(trade) = store.settle(&trade, &paid()).await.unwrap() else { panic!("fresh version") };
    trade
}
