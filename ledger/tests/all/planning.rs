//! Statements on a ledger that grows: each one that joins a batch of keys to `trades`, or picks
//! due trades, planned for the table as it is.
//!
//! Planned once while the ledger was small, such a statement goes on reading its table whole
//! however large it grows (the MD5 bench with the write pools' plans cached: Postgres 4× the CPU
//! per pay, a third of the pays per second). Each test makes its statements while the ledger is
//! small, grows the tables by [`GROWTH`] rows (with no ANALYZE behind its back, which would re-plan
//! a cached plan by itself), makes them once more and counts the rows of the grown table that
//! their backend read by scanning it.

use std::fmt::Debug;
use std::future::Future;
use std::time::Duration;

use deadpool_postgres::Pool;
use ledger::{Store, TradeKey};
use tenants::db::{PoolLimits, bounded_pool, pool_planning_each_time};
use time::OffsetDateTime;
use uuid::Uuid;

use crate::helpers::{paid_trade, unknown_trade};

/// Trades another writer adds between the early statements and the late ones.
const GROWTH: i64 = 20_000;
/// More than Postgres plans a prepared statement afresh before it may cache a plan for it.
const EARLY: usize = 12;

/// The services' write pools (`pool_planning_each_time`) plan every batch for the table as it is,
/// so a pay written after the ledger grew finds its trade by index.
#[tokio::test]
async fn a_pay_written_after_the_ledger_grew_does_not_read_it_whole() {
    let (db, pools) = small_ledger().await;
    let store = Store::with_write_pools(pools.reads.clone(), pools.writes.clone(), pools.writes.clone());
    let tenant = Uuid::new_v4();
    for n in 0..EARLY {
        paid_trade(&store, tenant, &format!("EARLY-{n}"), "1.00").await;
    }
    grow(&db).await;
    let (_, read) =
        rows_scanned(&pools.writes, async { Ok::<_, ()>(paid_trade(&store, tenant, "LATE", "1.00").await) }).await;
    assert!(read < GROWTH / 10, "the late pay's batches read {read} rows of trades by scanning it ({GROWTH} grown)");
}

/// The reconciler's reads of what it settles: the batch of due trades it claimed (from Redis or
/// from Postgres) and each trade's row, read after the ledger grew, are found by index.
#[tokio::test]
async fn the_reconcilers_reads_after_the_ledger_grew_do_not_read_it_whole() {
    let (db, pools) = small_ledger().await;
    let store = Store::with_write_pool(pools.reads.clone(), pools.writes.clone());
    let tenant = Uuid::new_v4();
    let mut keys = Vec::new();
    for n in 0..EARLY {
        keys.push(unknown_trade(&store, tenant, &format!("EARLY-{n}"), "1.00").await.key);
    }
    let now = OffsetDateTime::now_utc();
    let lease = now + Duration::from_secs(2);
    let since = now - Duration::from_secs(60);
    for _ in 0..EARLY {
        store.get_many_marking_expired(&keys[..3], now, Duration::from_secs(60)).await.unwrap();
        store.get_many(&keys[..3]).await.unwrap();
        store.claim_due(now, lease, 3).await.unwrap();
        store.open_trades(since, None, 3).await.unwrap();
    }
    grow(&db).await;
    let late: Vec<TradeKey> = keys[..3].to_vec();
    let (marked, marking) =
        rows_scanned(&pools.reads, store.get_many_marking_expired(&late, now, Duration::from_secs(60))).await;
    let (read, reading) = rows_scanned(&pools.reads, store.get_many(&late)).await;
    let (_, claiming) = rows_scanned(&pools.reads, store.claim_due(lease + Duration::from_secs(1), lease, 3)).await;
    let (_, paging) = rows_scanned(&pools.reads, store.open_trades(since, None, 3)).await;
    assert_eq!((marked.len(), read.len()), (3, 3), "the batch's trades, read");
    let scanned = [marking, reading, claiming, paging];
    assert!(
        scanned.iter().all(|&rows| rows < GROWTH / 10),
        "after {GROWTH} grown, rows of trades scanned by a claimed batch's read and mark, a batch's read, a claim of \
         due trades, a page of open trades: {scanned:?}"
    );
}

/// The reconciler's claims of due refunds and webhook deliveries, made after both tables grew,
/// find what is due by index.
#[tokio::test]
async fn the_claims_of_refunds_and_webhooks_after_their_tables_grew_do_not_read_them_whole() {
    let (db, pools) = small_ledger().await;
    let store = Store::with_write_pool(pools.reads.clone(), pools.writes.clone());
    let now = OffsetDateTime::now_utc();
    let lease = now + Duration::from_secs(2);
    for _ in 0..EARLY {
        store.claim_refunds(now, lease, 3).await.unwrap();
        store.claim_webhooks(now, lease, 3).await.unwrap();
    }
    let tenant = grow(&db).await;
    db.client()
        .await
        .batch_execute(&format!(
            "INSERT INTO refunds (tenant_id, out_trade_no, out_request_no, wire_request_no, state, fingerprint, \
             amount_minor) \
             SELECT '{tenant}', 'GROWN-' || n, 'R1', 'R1', 'SUCCESS', '\\x00', 100 FROM generate_series(1, {GROWTH}) n; \
             INSERT INTO webhook_outbox (tenant_id, out_trade_no, event, payload, delivered_at) \
             SELECT '{tenant}', 'GROWN-' || n, 'trade.succeeded', '{{}}', now() FROM generate_series(1, {GROWTH}) n"
        ))
        .await
        .unwrap();
    let later = lease + Duration::from_secs(1);
    let scanned = [
        rows_scanned_of("refunds", &pools.reads, store.claim_refunds(later, lease, 3)).await.1,
        rows_scanned_of("webhook_outbox", &pools.reads, store.claim_webhooks(later, lease, 3)).await.1,
    ];
    assert!(
        scanned.iter().all(|&rows| rows < GROWTH / 10),
        "after {GROWTH} grown, rows scanned by a claim of due refunds, of due webhook deliveries: {scanned:?}"
    );
}

struct Pools {
    /// The store's pool for everything but its batched writes.
    reads: Pool,
    writes: Pool,
}

/// A fresh ledger whose trades, refunds and webhook deliveries are analysed by nobody, and pools of one connection each (their
/// statements and the counts read back on one backend), made as the services make theirs.
async fn small_ledger() -> (stack::Database, Pools) {
    let db = stack::Database::new().await;
    let tables = ["trades", "refunds", "webhook_outbox"];
    let no_analyze = tables.map(|table| format!("ALTER TABLE {table} SET (autovacuum_enabled = false);")).concat();
    db.client().await.batch_execute(&no_analyze).await.unwrap();
    let reads = bounded_pool(&db.url, PoolLimits::new(1)).unwrap();
    let writes = pool_planning_each_time(&db.url, PoolLimits::new(1)).unwrap();
    (db, Pools { reads, writes })
}

/// [`GROWTH`] paid trades of another tenant (returned), numbered `GROWN-1` and on.
async fn grow(db: &stack::Database) -> Uuid {
    let tenant = Uuid::new_v4();
    db.client()
        .await
        .execute(
            "INSERT INTO trades (tenant_id, out_trade_no, kind, state, fingerprint, currency, amount_minor, subject, \
             alipay_account) SELECT $1::uuid, 'GROWN-' || n, 'barcode', 'SUCCESS', '\\x00', 'CNY', 100, 'Noodles', \
             'tenant:' || $1::uuid::text FROM generate_series(1, $2::bigint) n",
            &[&tenant, &GROWTH],
        )
        .await
        .unwrap();
    tenant
}

/// What `work` answered (it must succeed), and the rows of `trades` that `pool`'s one backend read
/// by sequential scans while it ran.
async fn rows_scanned<T, E: Debug>(pool: &Pool, work: impl Future<Output = Result<T, E>>) -> (T, i64) {
    rows_scanned_of("trades", pool, work).await
}

/// [`rows_scanned`] of `table`.
async fn rows_scanned_of<T, E: Debug>(table: &str, pool: &Pool, work: impl Future<Output = Result<T, E>>) -> (T, i64) {
    let before = scanned_so_far(table, pool).await;
    let answer = work.await.unwrap();
    (answer, scanned_so_far(table, pool).await - before)
}

async fn scanned_so_far(table: &str, pool: &Pool) -> i64 {
    let client = pool.get().await.unwrap();
    // This backend's counts are sent at the end of this statement, not some time later.
    client.batch_execute("SELECT pg_stat_force_next_flush()").await.unwrap();
    let row = client
        .query_one("SELECT coalesce(seq_tup_read, 0) FROM pg_stat_user_tables WHERE relname = $1", &[&table])
        .await
        .unwrap();
    row.get(0)
}
