//! Every pool is bounded: a caller waits for a connection no longer than the pool allows, and
//! the pool's connections carry the statement timeout it was given.

use std::time::{Duration, Instant};

use deadpool_postgres::{PoolError, TimeoutType};
use tenants::db::{PoolLimits, bounded_pool};

use crate::helpers::TestDb;

#[tokio::test]
async fn a_wait_for_a_connection_runs_out_instead_of_hanging() {
    let db = TestDb::new().await;
    let pool = bounded_pool(&db.url, PoolLimits::new(1).waiting(Duration::from_millis(100))).unwrap();
    let held = pool.get().await.unwrap();
    let asked = Instant::now();
    let refused = pool.get().await.map(|_| ()).unwrap_err();
    let waited = asked.elapsed();
    assert!(matches!(refused, PoolError::Timeout(TimeoutType::Wait)), "{refused:?}");
    assert!(waited >= Duration::from_millis(100) && waited < Duration::from_secs(2), "{waited:?}");
    drop(held);
    assert!(pool.get().await.is_ok(), "a connection handed back is there for the next caller");
}

#[tokio::test]
async fn statement_timeouts_and_one_core_reads_are_set_on_every_connection() {
    let db = TestDb::new().await;
    let show = |pool: deadpool_postgres::Pool, setting: &'static str| async move {
        let client = pool.get().await.unwrap();
        let row = client.query_one(&format!("SHOW {setting}"), &[]).await.unwrap();
        row.get::<_, String>(0)
    };
    let limits = PoolLimits::new(2).statement_timeout(Duration::from_millis(250)).one_core_each();
    let reports = bounded_pool(&db.url, limits).unwrap();
    assert_eq!(show(reports.clone(), "statement_timeout").await, "250ms");
    assert_eq!(show(reports.clone(), "max_parallel_workers_per_gather").await, "0");
    let client = reports.get().await.unwrap();
    let cut = client.simple_query("SELECT pg_sleep(5)").await.unwrap_err();
    assert_eq!(cut.code(), Some(&tokio_postgres::error::SqlState::QUERY_CANCELED), "{cut}");
    let writes =
        tenants::db::pool_planning_each_time(&db.url, PoolLimits::new(1).statement_timeout(Duration::from_secs(3)))
            .unwrap();
    assert_eq!(show(writes.clone(), "statement_timeout").await, "3s");
    assert_eq!(show(writes, "plan_cache_mode").await, "force_custom_plan");
    let unbounded = tenants::db::pool(&db.url, 1).unwrap();
    assert_eq!(show(unbounded, "statement_timeout").await, "0", "the server's own unless asked");
}
