//! When the ledger is busy the POS hears so at once (hostile review, item 6): a wait for a pooled
//! connection that runs out, and a statement Postgres cuts at its timeout, are each a 503 with
//! `Retry-After`, for payments' queries (the main pool) and for sales reports (their own pool).
//! The trades table is locked by the test, so a statement on it waits as long as it is allowed.

use std::time::Duration;

use stack::*;
use tokio::time::Instant;

/// A request's answer: status, `code`, `Retry-After` and how long it took.
#[derive(Debug)]
struct Answer {
    status: u16,
    code: String,
    retry_after: Option<u64>,
    took: Duration,
}

async fn get(pos: &Pos, base: &str, path: &str) -> Answer {
    let started = Instant::now();
    let response = pos
        .http
        .get(format!("{base}{path}"))
        .header("authorization", pos.authorization("GET", path, b""))
        .timeout(Duration::from_secs(10))
        .send()
        .await
        .expect("answered, not left hanging");
    let retry_after = response.headers().get("retry-after").and_then(|v| v.to_str().ok()?.parse().ok());
    let status = response.status().as_u16();
    let body: serde_json::Value = response.json().await.unwrap_or_default();
    Answer { status, code: body["code"].as_str().unwrap_or_default().to_owned(), retry_after, took: started.elapsed() }
}

/// Waits until `count` statements of the gateway wait for the test's lock.
async fn waiting_for_the_lock(monitor: &tokio_postgres::Client, count: i64) {
    let give_up = Instant::now() + Duration::from_secs(10);
    loop {
        let waiting: i64 = monitor
            .query_one(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'",
                &[],
            )
            .await
            .unwrap()
            .get(0);
        if waiting >= count {
            return;
        }
        assert!(Instant::now() < give_up, "the gateway's statement never reached the lock");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

fn busy(answer: &Answer) -> bool {
    answer.status == 503 && answer.code == "busy" && answer.retry_after.is_some_and(|s| s >= 1)
}

#[tokio::test]
async fn a_pool_wait_or_a_statement_that_runs_out_is_a_503_with_retry_after() {
    let stack = Stack::start(Options::default()).await;
    let pos = stack.openapi_tenant().await;
    let config = gateway::Config {
        database_pool_size: 1,
        database_pool_wait: Duration::from_millis(100),
        database_statement_timeout: Duration::from_millis(500),
        report_pool_size: 1,
        report_statement_timeout: Duration::from_millis(500),
        report_rate_per_minute: 600,
        report_burst: 10,
        ..stack.gateway_config()
    };
    let gateway = GatewayProcess::spawn(stack.gateway_process(env!("CARGO_BIN_EXE_gateway"), &config));
    ready_within(&gateway.admin, Duration::from_secs(10)).await;
    let base = gateway.base.clone();

    let locker = stack.db.client().await;
    locker.batch_execute("BEGIN; LOCK TABLE trades IN ACCESS EXCLUSIVE MODE").await.unwrap();
    let monitor = stack.db.client().await;
    let today = time::OffsetDateTime::now_utc().date();
    let report = format!("/v1/reports/sales?from={today}&to={today}");
    let mut answers = Vec::new();
    for (what, path) in [("a payment's query", "/v1/payments/T-1".to_owned()), ("a sales report", report)] {
        // The first holds the pool's only connection, waiting for the lock until its statement
        // timeout; the second finds no connection free.
        let first = tokio::spawn({
            let (pos, base, path) = (pos.clone(), base.clone(), path.clone());
            async move { get(&pos, &base, &path).await }
        });
        waiting_for_the_lock(&monitor, 1).await;
        let second = get(&pos, &base, &path).await;
        let first = first.await.unwrap();
        println!("{what}: the second waited {:?} for a connection: {second:?}; the first, cut: {first:?}", second.took);
        assert!(busy(&second) && second.took < Duration::from_secs(2), "{what}: no connection free: {second:?}");
        assert!(busy(&first) && first.took < Duration::from_secs(3), "{what}: cut at its timeout: {first:?}");
        answers.push((first, second));
    }
    locker.batch_execute("ROLLBACK").await.unwrap();
    assert_eq!(get(&pos, &base, "/v1/payments/T-1").await.status, 404, "the ledger answers again");
    let metrics = stack.http.get(format!("{}/metrics", gateway.admin)).send().await.unwrap().text().await.unwrap();
    for cause in ["pool_wait", "statement_timeout"] {
        assert!(
            metrics.lines().any(|l| l.starts_with("gateway_ledger_busy_total") && l.contains(&format!("\"{cause}\""))),
            "{cause} is counted:\n{metrics}"
        );
    }
}
