//! Load for minutes while every part of the stack fails in turn (`scripts/soak [seconds]`; the
//! test command skips it): POS terminals pay without pause, over every sandbox scenario, retrying
//! a payment (same body) while the gateway cannot answer, as a POS does; every fifth payment the
//! POS hangs up on its first send after 1 to 30 ms, and sends it again. Every few seconds one
//! fault, in rotation: the gateway killed with SIGKILL and started again; the reconciler killed
//! likewise; Redis flushed; Postgres crashed and restarted; Redis away for a second; Alipay
//! answering a third of its calls with an HTTP 502 for a second, half of them after doing the work.
//!
//! Afterwards every trade is checked for I1–I4 as in [`crate::windows`], and no transaction is
//! left open. The gateway and the reconciler run as the binaries built for this test
//! (`scripts/soak` builds the reconciler's).

use std::collections::BTreeMap;
use std::net::TcpListener;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use stack::*;
use tokio_util::sync::CancellationToken;

use crate::pay_calls;

/// Every scenario of design §5, most payments paid at once.
const SUFFIXES: [&str; 24] = [
    "00", "50", "01", "60", "02", "61", "03", "62", "04", "63", "05", "64", "06", "65", "07", "66", "08", "67", "09",
    "68", "10", "69", "11", "51",
];
const FAULTS: [&str; 6] = [
    "kill -9 gateway",
    "kill -9 reconciler",
    "redis FLUSHALL",
    "postgres crash",
    "redis down 1 s",
    "alipay 502s for 1 s",
];
const TERMINALS: usize = 8;
/// Past its deadline, a trade may wait for the lease of a reconciler killed while it held it
/// (the upstream timeout plus a second) and then for the cancel's retries (scenario 69: two
/// `retry_flag=Y`, backing off by half the time since the deadline).
const GRACE: Duration = Duration::from_secs(5);

struct Sale {
    pos: Pos,
    out_trade_no: String,
    /// The status the POS last heard, if it heard one.
    told: Option<String>,
    /// Sends after the first (the gateway could not answer, or the POS hung up).
    retries: usize,
    /// The POS hung up on its first send before the answer came.
    hung_up: bool,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "minutes long: scripts/soak"]
async fn soak_under_rotating_faults_loses_nothing() {
    let _alone = stack::alone().await;
    let seconds: u64 = std::env::var("SOAK_SECS").ok().and_then(|s| s.parse().ok()).unwrap_or(120);
    let postgres = Arc::new(PrivatePostgres::start());
    let mut redis = PrivateRedis::start();
    let options = Options { redis_url: redis.url(), postgres_admin_url: postgres.admin_url(), ..Options::scaled(0.1) };
    let stack = Stack::start(options).await;
    let gateway_binary = env!("CARGO_BIN_EXE_gateway");
    let reconciler_binary = PathBuf::from(gateway_binary).with_file_name("reconciler");
    assert!(reconciler_binary.exists(), "build the reconciler first (scripts/soak does)");
    let reconciler_binary = reconciler_binary.to_string_lossy().into_owned();
    let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let config = gateway::Config { listen: format!("127.0.0.1:{port}").parse().unwrap(), ..stack.gateway_config() };
    let mut gateway = GatewayProcess::spawn(stack.gateway_process(gateway_binary, &config));
    let reconciler_config = stack.reconciler_config();
    let spawn_reconciler =
        || KillOnDrop(stack.reconciler_process(&reconciler_binary, &reconciler_config).spawn().unwrap());
    let mut reconciler = spawn_reconciler();
    let tenants: Vec<Pos> = [stack.openapi_tenant().await, stack.mapi_tenant().await]
        .into_iter()
        .map(|pos| Pos { base: gateway.base.clone(), ..pos })
        .collect();

    let stop = CancellationToken::new();
    let terminals: Vec<_> =
        (0..TERMINALS).map(|i| tokio::spawn(terminal(tenants[i % tenants.len()].clone(), i, stop.clone()))).collect();

    let started = Instant::now();
    let mut injected = BTreeMap::<&str, usize>::new();
    let mut timeline = Vec::new();
    for fault in FAULTS.iter().cycle() {
        tokio::time::sleep(Duration::from_secs(4)).await;
        if started.elapsed() >= Duration::from_secs(seconds) {
            break;
        }
        match *fault {
            "kill -9 gateway" => {
                gateway.kill();
                gateway = GatewayProcess::spawn(stack.gateway_process(gateway_binary, &config));
            }
            "kill -9 reconciler" => {
                reconciler.kill();
                reconciler = spawn_reconciler();
            }
            "redis FLUSHALL" => redis.flushall(),
            "postgres crash" => {
                let crashing = postgres.clone();
                tokio::task::spawn_blocking(move || crashing.crash_and_restart()).await.unwrap();
            }
            "redis down 1 s" => {
                redis.stop();
                tokio::time::sleep(Duration::from_secs(1)).await;
                redis.restart();
            }
            _ => {
                stack.alipay_faults(json!({"error_rate": 0.33, "mode": "after"})).await;
                tokio::time::sleep(Duration::from_millis(500)).await;
                stack.alipay_faults(json!({"error_rate": 0.33, "mode": "before"})).await;
                tokio::time::sleep(Duration::from_millis(500)).await;
                stack.alipay_faults(json!({})).await;
            }
        }
        *injected.entry(fault).or_default() += 1;
        timeline.push(format!("{fault} at {} ms", time::OffsetDateTime::now_utc().unix_timestamp_nanos() / 1_000_000));
    }
    stop.cancel();
    let mut sales = Vec::new();
    for terminal in terminals {
        sales.extend(terminal.await.unwrap());
    }
    let load_seconds = started.elapsed().as_secs_f64();

    let calls = pay_calls(&stack).await;
    assert!(calls <= sales.len() as u64, "I1: {calls} pay calls for {} trades", sales.len());
    let deadline = Duration::from_millis(stack.options.deadline_ms) + GRACE;
    let mut violations = Vec::new();
    let mut told = BTreeMap::<&str, usize>::new();
    // How long after its deadline each trade that needed a cancel became final.
    let mut late = hdrhistogram::Histogram::<u64>::new(3).unwrap();
    for sale in &sales {
        *told.entry(sale.told.as_deref().unwrap_or("nothing")).or_default() += 1;
        match invariants_hold(&stack, &sale.pos, &sale.out_trade_no, sale.told.as_deref(), deadline).await {
            Ok(trade) if trade.cancel_action.is_some() => {
                let after = trade.updated_at - trade.created_at - Duration::from_millis(stack.options.deadline_ms);
                late.record(after.whole_milliseconds().max(0) as u64).unwrap();
            }
            Ok(_) => {}
            Err(violation) => violations.push(violation),
        }
    }
    let open = postgres.open_transactions(&stack.db.name).await;
    let retries: usize = sales.iter().map(|s| s.retries).sum();
    let hung_up = sales.iter().filter(|s| s.hung_up).count();
    eprintln!("soak: {load_seconds:.0} s of load, faults injected {injected:?}");
    eprintln!(
        "soak: {} trades ({:.0}/s), told {told:?}, {hung_up} POS hang-ups, {retries} sends again, {calls} pay calls reached Alipay",
        sales.len(),
        sales.len() as f64 / load_seconds
    );
    eprintln!(
        "soak: {} trades cancelled at their deadline, final after it by p50 {} / p99 {} / max {} ms",
        late.len(),
        late.value_at_quantile(0.5),
        late.value_at_quantile(0.99),
        late.max()
    );
    eprintln!("soak: {} violations, {open} transactions left open", violations.len());
    assert!(violations.is_empty(), "{violations:#?}\nfaults (when done): {timeline:#?}");
    assert_eq!(open, 0);
}

/// One POS: pays trade after trade until `stop`, each until the gateway answers it (200), sending
/// the same body again after a transport error or a 5xx, as a POS does.
async fn terminal(pos: Pos, n: usize, stop: CancellationToken) -> Vec<Sale> {
    let mut sales = Vec::new();
    for suffix in SUFFIXES.iter().cycle().skip(n * 3) {
        if stop.is_cancelled() {
            break;
        }
        let out_trade_no = trade_no("soak");
        let body = pos.charge_body(&out_trade_no, &code(suffix), "16.80").to_string().into_bytes();
        let mut sale = Sale { pos: pos.clone(), out_trade_no, told: None, retries: 0, hung_up: false };
        let give_up = Instant::now() + Duration::from_secs(60);
        // Every fifth payment, the POS hangs up on its first send after 1 to 30 ms.
        let mut hang_up = (sales.len() % 5 == 0).then(|| Duration::from_millis(1 + (sales.len() as u64 * 7) % 30));
        loop {
            let send = pos.try_send_raw("POST", "/v1/payments", body.clone());
            let sent = match hang_up.take() {
                Some(after) => tokio::time::timeout(after, send).await.unwrap_or_else(|_| {
                    sale.hung_up = true;
                    Ok((0, "hung up".into()))
                }),
                None => send.await,
            };
            match sent {
                Ok((200, text)) => {
                    let answer: Value = serde_json::from_str(&text).unwrap();
                    sale.told = answer["status"].as_str().map(str::to_owned);
                    break;
                }
                Ok((status, text)) if (1..500).contains(&status) => panic!("{}: {status} {text}", sale.out_trade_no),
                _ => {
                    assert!(Instant::now() < give_up, "{} was never answered", sale.out_trade_no);
                    sale.retries += 1;
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            }
        }
        sales.push(sale);
    }
    sales
}
