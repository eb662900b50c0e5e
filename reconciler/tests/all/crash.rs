//! Nothing is lost: a reconciler killed with SIGKILL mid-run and a Redis that loses every key, or
//! is away for a while, still leave every trade final by its deadline plus a small grace, as
//! Alipay has it.

use std::time::Duration;

use stack::*;

use crate::helpers::*;

const SUFFIXES: [&str; 10] = ["60", "61", "62", "63", "64", "65", "66", "67", "68", "69"];

/// Pays a few trades of every scenario 60–69 through the partner API, in parallel.
async fn pay_all(tenants: &[Pos], per_scenario: usize) -> Vec<(Pos, String)> {
    let mut paying = Vec::new();
    for pos in tenants {
        for suffix in SUFFIXES.iter().cycle().take(SUFFIXES.len() * per_scenario) {
            let (pos, no) = (pos.clone(), trade_no(&format!("k{suffix}")));
            paying.push(tokio::spawn(async move {
                let (status, body) = pos.charge(&no, &code(suffix), "12.30").await;
                assert_eq!((status, body["status"].as_str()), (200, Some("UNKNOWN")), "{suffix}: {body}");
                (pos, no)
            }));
        }
    }
    let mut paid = Vec::new();
    for task in paying {
        paid.push(task.await.unwrap());
    }
    paid
}

/// Every trade final, in time, and as Alipay has it.
async fn all_settled(stack: &Stack, trades: &[(Pos, String)], grace: Duration) {
    for (pos, no) in trades {
        let trade = final_trade(stack, pos, no, Duration::from_secs(30)).await;
        agrees_with_alipay(&trade, stack.truth(pos, no).await.as_ref()).map_err(|e| format!("{no}: {e}")).unwrap();
        let late = trade.updated_at - trade.deadline.unwrap();
        assert!(late <= grace, "{no} became final {late} after its deadline");
    }
}

async fn queries_seen(stack: &Stack) -> u64 {
    stack.sandbox_calls(&["alipay.trade.query", "alipay.acquire.overseas.query"]).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_reconciler_and_a_flushed_redis_lose_nothing() {
    let redis = PrivateRedis::start();
    let options = Options { notifications: false, redis_url: redis.url(), ..Options::scaled(SCALE) };
    let stack = Stack::start(options).await;
    let config = stack.reconciler_config();
    let binary = env!("CARGO_BIN_EXE_reconciler");
    let mut first = stack.reconciler_process(binary, &config).spawn().unwrap();
    let tenants = [stack.openapi_tenant().await, stack.mapi_tenant().await];
    let trades = pay_all(&tenants, 2).await;
    // Mid-run: the first queries went out (and leases are held) when it dies.
    while queries_seen(&stack).await < 10 {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    first.kill().unwrap();
    first.wait().unwrap();
    redis.flushall();
    let mut second = stack.reconciler_process(binary, &config).spawn().unwrap();
    all_settled(&stack, &trades, Duration::from_secs(2)).await;
    second.kill().unwrap();
    second.wait().unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_redis_trades_settle_from_postgres_and_redis_is_reseeded_when_back() {
    let mut redis = PrivateRedis::start();
    let options = Options { notifications: false, redis_url: redis.url(), ..Options::scaled(SCALE) };
    let stack = Stack::start(options).await;
    let reconciler = stack.start_reconciler(stack.reconciler_config()).await;
    let tenants = [stack.openapi_tenant().await, stack.mapi_tenant().await];
    redis.stop();
    // Without Redis the gateway accepts requests stamped after the second it started in.
    stack.past_the_gateways_first_second().await;
    let settled_without_redis = pay_all(&tenants, 1).await;
    all_settled(&stack, &settled_without_redis, Duration::from_secs(2)).await;
    // Scenario 61 takes until its deadline; Redis returns before then and is re-seeded.
    let (pos, no) = (tenants[1].clone(), trade_no("back"));
    assert_eq!(pos.charge(&no, &code("61"), "1.00").await.0, 200);
    redis.restart();
    let key = ledger::TradeKey::new(pos.tenant_id, no.clone());
    let index = stack.due_index();
    let reseeded = tokio::time::timeout(Duration::from_secs(5), async {
        while index.due_at(&key).await.ok().flatten().is_none() {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await;
    assert!(reseeded.is_ok(), "the sweeper re-armed the open trade in the new, empty Redis");
    all_settled(&stack, &[(pos, no)], Duration::from_secs(2)).await;
    reconciler.stop().await;
}
