//! The batched writes on a ledger that grows: each batch planned for the table as it is.

use deadpool_postgres::Pool;
use ledger::Store;
use tenants::db::{PoolLimits, pool_planning_each_time};
use uuid::Uuid;

use crate::helpers::paid_trade;

/// Trades another writer adds between the first batches and the last.
const GROWTH: i64 = 20_000;

/// A batch joins its keys to `trades`. Planned once while the ledger was small, such a plan goes
/// on reading the table whole however large it grows (the MD5 bench without planning per batch:
/// Postgres 4× the CPU per pay, a third of the pays per second). The services' write pools
/// (`pool_planning_each_time`) plan every batch for the table as it is, so a pay written after
/// the ledger grew finds its trade by index.
#[tokio::test]
async fn a_pay_written_after_the_ledger_grew_does_not_read_it_whole() {
    let db = stack::Database::new().await;
    // One connection: every batch, and the counts read back, on one Postgres backend.
    let writes = pool_planning_each_time(&db.url, PoolLimits::new(1)).unwrap();
    let store = Store::with_write_pools(db.pool(), writes.clone(), writes.clone());
    let other = db.client().await;
    // No ANALYZE in the middle of the test (it would re-plan a cached plan by itself).
    other.batch_execute("ALTER TABLE trades SET (autovacuum_enabled = false)").await.unwrap();
    let tenant = Uuid::new_v4();
    // While the ledger is small: more pays than Postgres plans afresh before it caches a plan.
    for n in 0..12 {
        paid_trade(&store, tenant, &format!("EARLY-{n}"), "1.00").await;
    }
    other
        .execute(
            "INSERT INTO trades (tenant_id, out_trade_no, kind, state, fingerprint, currency, amount_minor, subject, \
             alipay_account) SELECT $1::uuid, 'GROWN-' || n, 'barcode', 'SUCCESS', '\\x00', 'CNY', 100, 'Noodles', \
             'tenant:' || $1::uuid::text FROM generate_series(1, $2::bigint) n",
            &[&Uuid::new_v4(), &GROWTH],
        )
        .await
        .unwrap();

    let before = rows_read_by_scans(&writes).await;
    paid_trade(&store, tenant, "LATE", "1.00").await;
    let read = rows_read_by_scans(&writes).await - before;
    assert!(read < GROWTH / 10, "the late pay's batches read {read} rows of trades by scanning it ({GROWTH} grown)");
}

/// The rows of `trades` read by sequential scans so far, the pool's one backend's included.
async fn rows_read_by_scans(pool: &Pool) -> i64 {
    let client = pool.get().await.unwrap();
    // This backend's counts are sent at the end of this statement, not some time later.
    client.batch_execute("SELECT pg_stat_force_next_flush()").await.unwrap();
    let row = client
        .query_one("SELECT coalesce(seq_tup_read, 0) FROM pg_stat_user_tables WHERE relname = 'trades'", &[])
        .await
        .unwrap();
    row.get(0)
}
