//! The reconciler's pools are bounded (hostile review, item 6): every pooled connection carries
//! the configured statement timeout, and a wait for a connection is bounded (the wait itself is
//! tested in the tenants crate, where the pools are built).

use std::time::Duration;

use stack::*;

#[tokio::test]
async fn the_reconcilers_pools_carry_a_statement_timeout_and_a_wait_limit() {
    let stack = Stack::start(Options::default()).await;
    let config = reconciler::Config {
        database_pool_size: 2,
        database_pool_wait: Duration::from_millis(100),
        database_statement_timeout: Duration::from_millis(1_500),
        ..stack.reconciler_config()
    };
    let reconciler = stack.start_reconciler(config).await;
    let pool = reconciler.shared().store.pool().clone();
    let client = pool.get().await.unwrap();
    let timeout: String = client.query_one("SHOW statement_timeout", &[]).await.unwrap().get(0);
    assert_eq!(timeout, "1500ms");
    let cut = client.simple_query("SELECT pg_sleep(10)").await.unwrap_err();
    assert_eq!(cut.code(), Some(&tokio_postgres::error::SqlState::QUERY_CANCELED), "{cut}");
    drop(client);
    assert_eq!(pool.timeouts().wait, Some(Duration::from_millis(100)), "a caller waits at most this long");
    assert!(pool.timeouts().create.is_some(), "and connecting is bounded too");
    reconciler.stop().await;
}
