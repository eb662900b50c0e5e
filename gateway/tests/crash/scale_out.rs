//! Many replicas (issue 19): three gateway processes and two reconciler processes on one Postgres
//! and a Redis of the test's own, POS terminals spreading their calls over the gateways as a load
//! balancer would (a call a gateway does not answer is sent again to the next one).
//!
//! 1. An Alipay app's budget (20 calls/s) holds summed over its two tenants' calls through the
//!    three gateways and the two reconcilers' queries of trades left UNKNOWN.
//! 2. One gateway and one reconciler are killed with SIGKILL while terminals pay.
//! 3. Redis is stopped while terminals pay: each living gateway holds a tenant to its fair share
//!    (the budget ÷ the gateways it last saw live), and the reconcilers settle from Postgres.
//! 4. Redis is back. Then every trade is final, what each POS was told (I2), in time (I3, except
//!    the app's deliberately starved settlements), and as Alipay has it (I4), paid at most once.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::Value;
use stack::*;
use tenants::model::{Dialect, Limits};
use tokio_util::sync::CancellationToken;

use crate::pay_calls;
use crate::windows::SUFFIXES;

const SCALE: f64 = 0.1;
const GRACE: Duration = Duration::from_secs(5);
/// The app's limit: its POS part 80% (16/s), the reconcilers' 20% (4/s).
const APP_RATE: f64 = 20.0;
/// The limited tenant's budget for queries (`other_rate`, burst as large): large enough that 5%
/// of a gateway's share over the run is several calls.
const TENANT_RATE: u32 = 60;

struct Sale {
    pos: Pos,
    out_trade_no: String,
    told: Option<String>,
    /// Settled at the reconcilers' reserved share of a saturated app: exempt from I3.
    starved: bool,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_gateways_and_two_reconcilers_hold_the_budgets_and_lose_nothing() {
    let _alone = stack::alone().await;
    let mut redis = PrivateRedis::start();
    let options = Options { redis_url: redis.url(), notifications: false, ..Options::scaled(SCALE) };
    let stack = Stack::start(options).await;
    let gateway_binary = env!("CARGO_BIN_EXE_gateway");
    let reconciler_binary = PathBuf::from(gateway_binary).with_file_name("reconciler");
    assert!(reconciler_binary.exists(), "build the reconciler first (cargo test --workspace does)");
    let reconciler_binary = reconciler_binary.to_string_lossy().into_owned();

    let shop = stack.tenant(Dialect::Openapi, alipay::SignType::Rsa2, generous()).await;
    let annex = stack.tenant_sharing_account(&shop, alipay::SignType::Rsa2).await;
    let limited = Limits { pay_rate: 1000, pay_burst: 1000, other_rate: TENANT_RATE };
    let counted = stack.tenant(Dialect::Mapi, alipay::SignType::Md5, limited).await;
    let busy = [stack.openapi_tenant().await, stack.mapi_tenant().await];
    let app_limits = vec![format!("{}={APP_RATE}/5", shop.alipay_account())];
    let config = gateway::Config { alipay_app_limits: app_limits.clone(), ..stack.gateway_config() };
    let mut reconciler_config = stack.reconciler_config();
    reconciler_config.alipay_app_limits = app_limits;
    let mut gateways: Vec<GatewayProcess> =
        (0..3).map(|_| GatewayProcess::spawn(stack.gateway_process(gateway_binary, &config))).collect();
    let spawn_reconciler =
        || KillOnDrop(stack.reconciler_process(&reconciler_binary, &reconciler_config).spawn().unwrap());
    let mut reconcilers = [spawn_reconciler(), spawn_reconciler()];
    let bases = Arc::new(std::sync::RwLock::new(gateways.iter().map(|g| g.base.clone()).collect::<Vec<_>>()));
    let mut sales = Vec::new();

    // 1. Twenty trades left UNKNOWN (never paid) want 40 queries/s from the reconcilers; their
    //    share is 4/s. Terminals of both tenants pay meanwhile, over the POS part (16/s).
    for _ in 0..20 {
        let out_trade_no = trade_no("starved");
        let body = shop.charge_body(&out_trade_no, &code("61"), "3.00");
        let (status, answer) = loop {
            match send(&bases, &shop, &body).await {
                (429, _) => tokio::time::sleep(Duration::from_millis(50)).await,
                answered => break answered,
            }
        };
        assert_eq!(status, 200, "{answer}");
        let told = answer["status"].as_str().map(str::to_owned);
        sales.push(Sale { pos: shop.clone(), out_trade_no, told, starved: true });
    }
    let stop = CancellationToken::new();
    let app_terminals: Vec<_> = (0..6)
        .map(|n| {
            let pos = if n % 2 == 0 { shop.clone() } else { annex.clone() };
            tokio::spawn(terminal(pos, n, &["00"], bases.clone(), stop.clone(), true))
        })
        .collect();
    tokio::time::sleep(Duration::from_secs(1)).await;
    let app_methods = ["alipay.trade.pay", "alipay.trade.query", "alipay.trade.cancel"];
    let (before, started) = (stack.sandbox_calls(&app_methods).await, Instant::now());
    tokio::time::sleep(Duration::from_secs(4)).await;
    let (calls, took) = (stack.sandbox_calls(&app_methods).await - before, started.elapsed());
    stop.cancel();
    for terminal in app_terminals {
        sales.extend(terminal.await.unwrap());
    }
    let budget = APP_RATE * took.as_secs_f64();
    println!(
        "one app (20/s: POS 16/s, reconcilers 4/s), two tenants over three gateways and two reconcilers: \
         {calls} calls to Alipay in {:.2} s of a budget of {budget:.0}",
        took.as_secs_f64()
    );
    assert!(within_5_percent(calls, budget), "{calls} calls to Alipay in {took:?}; the app's budget is {budget:.0}");

    // 2. One gateway and one reconciler die while terminals pay.
    let stop = CancellationToken::new();
    let terminals: Vec<_> = (0..6)
        .map(|n| tokio::spawn(terminal(busy[n % 2].clone(), n, &SUFFIXES, bases.clone(), stop.clone(), false)))
        .collect();
    tokio::time::sleep(Duration::from_millis(1500)).await;
    gateways[0].kill();
    reconcilers[0].kill();
    bases.write().unwrap().remove(0);
    // Its announcement expires (3 s), so the living gateways count one gateway fewer.
    tokio::time::sleep(Duration::from_secs(4)).await;

    // 3. Redis stops: each living gateway holds the limited tenant to its fair share.
    let living = &gateways[1..];
    let replicas = replicas_live(&living[0].admin).await;
    let stopped = Instant::now();
    redis.stop();
    let run = Duration::from_secs(3);
    let asking: Vec<_> = living
        .iter()
        .map(|gateway| tokio::spawn(queries_answered(Pos { base: gateway.base.clone(), ..counted.clone() }, 3, run)))
        .collect();
    let mut per_gateway = Vec::new();
    for asked in asking {
        per_gateway.push(asked.await.unwrap());
    }
    let share = |n: u32| f64::from((n / replicas).max(1));
    let fair = share(TENANT_RATE) + share(TENANT_RATE) * run.as_secs_f64();
    println!(
        "Redis stopped: the tenant's {TENANT_RATE}/s over {} living gateways, each of {replicas} gateways' fair share \
         ({fair:.0} in {} s): {per_gateway:?} answered",
        living.len(),
        run.as_secs()
    );
    for answered in &per_gateway {
        assert!(within_5_percent(*answered, fair), "{answered} answered by one gateway; its fair share is {fair}");
    }
    redis.restart();
    let redis_down_s = stopped.elapsed().as_secs_f64();
    tokio::time::sleep(Duration::from_secs(1)).await;
    stop.cancel();
    for terminal in terminals {
        sales.extend(terminal.await.unwrap());
    }

    // 4. Every trade final, as told, in time, as Alipay has it; none paid twice.
    let paid = pay_calls(&stack).await;
    assert!(paid <= sales.len() as u64, "I1: {paid} pay calls for {} trades", sales.len());
    let deadline = Duration::from_millis(stack.options.deadline_ms) + GRACE;
    for sale in &sales {
        let deadline = if sale.starved { Duration::from_secs(120) } else { deadline };
        invariants_hold(&stack, &sale.pos, &sale.out_trade_no, sale.told.as_deref(), deadline).await.unwrap();
    }
    println!(
        "three gateways, two reconcilers: {} trades, one gateway and one reconciler killed, Redis away \
         {redis_down_s:.1} s: every trade final, as told and as Alipay has it; {paid} pay calls",
        sales.len()
    );
    reconcilers[1].kill();
}

/// Pays one trade after another (`suffixes` in turn) until `stop`, each sent to the gateways in
/// turn and, when one does not answer, to the next. With `refusable`, a 429 (the app's budget)
/// is a payment not made: the terminal waits a little and goes on.
async fn terminal(
    pos: Pos,
    n: usize,
    suffixes: &'static [&'static str],
    bases: Arc<std::sync::RwLock<Vec<String>>>,
    stop: CancellationToken,
    refusable: bool,
) -> Vec<Sale> {
    let mut sales = Vec::new();
    for suffix in suffixes.iter().cycle().skip(n) {
        if stop.is_cancelled() {
            break;
        }
        let out_trade_no = trade_no("scale");
        let body = pos.charge_body(&out_trade_no, &code(suffix), "6.60");
        match send(&bases, &pos, &body).await {
            (200, answer) => {
                let told = answer["status"].as_str().map(str::to_owned);
                sales.push(Sale { pos: pos.clone(), out_trade_no, told, starved: false });
            }
            (429, _) if refusable => tokio::time::sleep(Duration::from_millis(5)).await,
            (status, answer) => panic!("{out_trade_no}: {status} {answer}"),
        }
    }
    sales
}

/// Sends a payment to the gateways in turn until one answers (a POS behind a load balancer).
async fn send(bases: &std::sync::RwLock<Vec<String>>, pos: &Pos, body: &Value) -> (u16, Value) {
    let give_up = Instant::now() + Duration::from_secs(60);
    let body = body.to_string().into_bytes();
    for turn in 0.. {
        let base = {
            let bases = bases.read().unwrap();
            bases[turn % bases.len()].clone()
        };
        let pos = Pos { base, ..pos.clone() };
        match pos.try_send_raw("POST", "/v1/payments", body.clone()).await {
            Ok((status, text)) if status < 500 => return (status, serde_json::from_str(&text).unwrap_or(Value::Null)),
            _ => {
                assert!(Instant::now() < give_up, "no gateway answered");
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
    }
    unreachable!()
}

/// `callers` at once ask `pos`'s gateway for a payment that does not exist (404: a call that
/// draws on the tenant's budget) for `run`; answers how many were answered.
async fn queries_answered(pos: Pos, callers: usize, run: Duration) -> u64 {
    let until = Instant::now() + run;
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..callers {
        let pos = pos.clone();
        tasks.spawn(async move {
            let mut answered = 0;
            while Instant::now() < until {
                match pos.send_raw("GET", "/v1/payments/no-such-trade", Vec::new()).await {
                    (404, _) => answered += 1,
                    (429, _) => tokio::time::sleep(Duration::from_millis(5)).await,
                    (other, body) => panic!("{other}: {body}"),
                }
            }
            answered
        });
    }
    tasks.join_all().await.into_iter().sum()
}

/// The gateways a gateway last saw announced live (`budget_replicas_live{role="gateway"}`).
async fn replicas_live(admin: &str) -> u32 {
    let metrics = reqwest::get(format!("{admin}/metrics")).await.unwrap().text().await.unwrap();
    metrics
        .lines()
        .find(|line| line.starts_with("budget_replicas_live{") && line.contains("role=\"gateway\""))
        .and_then(|line| line.rsplit(' ').next()?.parse::<f64>().ok())
        .map(|live| live as u32)
        .expect("the gateway reports the replicas it sees")
}

fn within_5_percent(got: u64, budget: f64) -> bool {
    (got as f64) >= budget * 0.95 && (got as f64) <= budget * 1.05
}
