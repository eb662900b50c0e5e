//! The reconciler's timers under load, measured from outside (design §4, issue 5).
//!
//! - `inflight`: 10,000 UNKNOWN trades in flight at once, created over 5 s (≈ 2,000 signed
//!   queries/s for a minute, then 2,000 cancels/s), on the real schedule (query every 5 s, cancel
//!   at 60 s). The sandbox records when each query and cancel arrived; from that: timer lateness
//!   (arrival − due time) percentiles, firings lost or doubled, cancels within 1 s of the deadline;
//!   and the reconciler process's CPU per call from /proc, next to the RSA sign + verify floor.
//! - `backlog`: 50,000 overdue trades (after an outage: nothing in Redis), half due for a query,
//!   half past their deadline; the time to drain them, and errors.
//!
//! `cargo bench -p reconciler --bench timers [-- inflight|backlog] [--md5]` (default: both, RSA2
//! OpenAPI tenants; `--md5`: MD5 Global tenants).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stdout, clippy::panic)]

use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::process::{Child, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use alipay::{Amount, Currency, PrivateKey, PublicKey, SignType, Signer, Verifier};
use hdrhistogram::Histogram;
use ledger::{Begin, NewTrade, Recorded, Settlement, TradeKey, TradeKind};
use sandbox::ledger::{NewPay, PayOutcome};
use stack::process::{cpu_seconds, rss_mib};
use stack::{Options, Pos, Stack, generous};
use tenants::model::Dialect;
use time::OffsetDateTime;

const TENANTS: usize = 50;
const IN_FLIGHT: usize = 10_000;
const SPREAD: Duration = Duration::from_secs(5);
const BACKLOG: usize = 50_000;
const QUERY_EVERY_MS: i64 = 5_000;
const DEADLINE_MS: i64 = 60_000;

fn main() {
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap();
    runtime.block_on(run());
}

async fn run() {
    let args: Vec<String> = std::env::args().collect();
    let md5 = args.iter().any(|a| a == "--md5");
    let only = |name: &str| !args.iter().any(|a| a == "inflight" || a == "backlog") || args.iter().any(|a| a == name);
    let stack = Arc::new(Stack::start(Options { time_scale: 1.0, notifications: false, ..Options::default() }).await);
    let (dialect, sign_type) = if md5 { (Dialect::Mapi, SignType::Md5) } else { (Dialect::Openapi, SignType::Rsa2) };
    let mut tenants = Vec::new();
    for _ in 0..TENANTS {
        tenants.push(stack.tenant(dialect, sign_type, generous()).await);
    }
    let floor_us = if md5 { 0.0 } else { rsa2_floor_us() };
    println!(
        "tenants: {TENANTS} {} ({}); RSA2 sign + verify floor: {floor_us:.1} µs",
        sign_type.as_str(),
        if md5 { "Global MAPI" } else { "OpenAPI" }
    );
    if only("inflight") {
        in_flight(&stack, &tenants, floor_us).await;
    }
    if only("backlog") {
        backlog(&stack, &tenants, floor_us).await;
    }
}

/// One RSA2 signature and one verification, as the reconciler makes per call.
fn rsa2_floor_us() -> f64 {
    let signer = Signer::rsa2(Arc::new(PrivateKey::parse(stack::MERCHANT_PRIVATE).unwrap())).unwrap();
    let verifier = Verifier::rsa(SignType::Rsa2, &PublicKey::parse(stack::MERCHANT_PUBLIC).unwrap()).unwrap();
    let text = "app_id=2021000000000001&biz_content={\"out_trade_no\":\"T1\"}&charset=utf-8&method=alipay.trade.query";
    let signature = signer.sign(text.as_bytes()).unwrap();
    let rounds = 500;
    let started = Instant::now();
    for _ in 0..rounds {
        std::hint::black_box(signer.sign(text.as_bytes()).unwrap());
        verifier.verify(text.as_bytes(), &signature).unwrap();
    }
    started.elapsed().as_secs_f64() * 1e6 / f64::from(rounds)
}

/// A reconciler process on the real schedule; answers it and its admin URL.
fn start_reconciler(stack: &Stack) -> (Child, String) {
    let config = reconciler::Config {
        query_interval: Duration::from_millis(QUERY_EVERY_MS as u64),
        deadline: Duration::from_millis(DEADLINE_MS as u64),
        cancel_retry: Duration::from_millis(2_000),
        query_rate_per_tenant: 1_000,
        cancel_rate_per_tenant: 1_000,
        // BENCH_SWEEP_MS=N: how often the sweeper passes (default 5 s).
        sweep_interval: Duration::from_millis(
            std::env::var("BENCH_SWEEP_MS").ok().and_then(|n| n.parse().ok()).unwrap_or(5_000),
        ),
        // BENCH_THREADS=N: the reconciler's runtime threads (default: one per CPU).
        worker_threads: std::env::var("BENCH_THREADS").ok().and_then(|n| n.parse().ok()),
        ..stack.reconciler_config()
    };
    let mut child =
        stack.reconciler_process(env!("CARGO_BIN_EXE_reconciler"), &config).stdout(Stdio::piped()).spawn().unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap()).read_line(&mut line).unwrap();
    let admin = line.trim().rsplit(' ').next().unwrap().trim_end_matches(')').to_owned();
    (child, admin)
}

fn currency(pos: &Pos) -> Currency {
    if pos.dialect == Dialect::Mapi { Currency::USD } else { Currency::CNY }
}

/// Alipay's side of a trade whose buyer never pays (scenario 61), made without a call.
fn alipay_trade(stack: &Stack, pos: &Pos, no: &str) {
    let app = stack.sandbox.app();
    let created = app.ledger.pay(NewPay {
        merchant: app.merchants.get(&pos.alipay_id).unwrap(),
        out_trade_no: no.to_owned(),
        buyer_code: "281234567890123461".into(),
        subject: "Noodles".into(),
        total: Amount::from_minor(1_000, currency(pos)).unwrap(),
        notify_url: None,
        charset: alipay::Charset::Utf8,
    });
    assert!(matches!(created, PayOutcome::Created(_)));
}

/// What the gateway does for a payment whose answer was UNKNOWN: the intent, the UNKNOWN
/// settlement (first check 5 s, deadline 60 s after creation), the due-index armed.
async fn unknown_trade(stack: &Stack, pos: &Pos, no: &str) -> (OffsetDateTime, OffsetDateTime) {
    alipay_trade(stack, pos, no);
    let store = &stack.gateway.state().store;
    let new = NewTrade {
        key: TradeKey::new(pos.tenant_id, no),
        kind: TradeKind::Barcode,
        fingerprint: vec![0],
        amount: Amount::from_minor(1_000, currency(pos)).unwrap(),
        subject: "Noodles".into(),
        store_id: None,
        terminal_id: None,
        operator_id: None,
        check_at: OffsetDateTime::now_utc() + Duration::from_secs(12),
        alipay_account: pos.alipay_account(),
        notify_url: None,
    };
    let Begin::Started(trade) = store.begin(&new).await.unwrap() else { panic!("new") };
    let (next, deadline) = (
        trade.created_at + Duration::from_millis(QUERY_EVERY_MS as u64),
        trade.created_at + Duration::from_millis(DEADLINE_MS as u64),
    );
    let unknown = Settlement::Unknown { reason: "buyer paying".into(), next_check_at: next, deadline };
    let Recorded::Applied(_) = store.record(&trade, &unknown).await.unwrap() else { panic!("fresh") };
    stack.gateway.state().arm(&trade.key, next).await;
    (trade.created_at, deadline)
}

async fn open_trades(stack: &Stack) -> i64 {
    let client = stack.db.client().await;
    client.query_one("SELECT count(*) FROM trades WHERE next_check_at IS NOT NULL", &[]).await.unwrap().get(0)
}

async fn in_flight(stack: &Arc<Stack>, tenants: &[Pos], floor_us: f64) {
    let (mut child, admin) = start_reconciler(stack);
    let pid = child.id();
    let cpu_before = cpu_seconds(pid);
    println!("\n## {IN_FLIGHT} UNKNOWN trades in flight, created over {} s", SPREAD.as_secs());
    let started = Instant::now();
    let mut seeding = Vec::new();
    for i in 0..IN_FLIGHT {
        let due = SPREAD.mul_f64(i as f64 / IN_FLIGHT as f64);
        if let Some(wait) = due.checked_sub(started.elapsed()) {
            tokio::time::sleep(wait).await;
        }
        let pos = tenants[i % tenants.len()].clone();
        let stack = stack.clone();
        seeding.push(tokio::spawn(async move {
            let no = format!("F{i}");
            let (created, deadline) = unknown_trade(&stack, &pos, &no).await;
            (pos, no, created, deadline)
        }));
    }
    let mut trades = Vec::with_capacity(IN_FLIGHT);
    for task in seeding {
        trades.push(task.await.unwrap());
    }
    println!("seeded in {:.2} s", started.elapsed().as_secs_f64());
    // BENCH_PERF=FILE: a CPU profile of the reconciler while it queries.
    let profiler = std::env::var("BENCH_PERF").ok().map(|file| {
        std::process::Command::new("perf")
            .args(["record", "-F", "999", "-g", "-p", &pid.to_string(), "-o", &file, "--", "sleep", "40"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap()
    });
    let mut peak_rss: f64 = 0.0;
    loop {
        let open = open_trades(stack).await;
        peak_rss = peak_rss.max(rss_mib(pid));
        if open == 0 || started.elapsed() > Duration::from_secs(150) {
            break;
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    let cpu = cpu_seconds(pid) - cpu_before;
    let metrics = reqwest::get(format!("{admin}/metrics")).await.unwrap().text().await.unwrap();
    child.kill().unwrap();
    child.wait().unwrap();
    if let Some(mut profiler) = profiler {
        profiler.wait().unwrap();
    }

    let mut lateness = Histogram::<u64>::new(3).unwrap();
    let mut cancel_late = Histogram::<u64>::new(3).unwrap();
    let (mut lost, mut doubled, mut stray, mut calls, mut cancels_within_1s, mut cancels) = (0, 0, 0, 0u64, 0, 0);
    let app = stack.sandbox.app();
    for (pos, no, created, deadline) in &trades {
        let truth = app.ledger.get(&pos.alipay_id, no).unwrap();
        let mut slots: HashMap<i64, u32> = HashMap::new();
        for call in &truth.calls {
            calls += 1;
            let since = (call.at - *created).whole_milliseconds() as i64;
            match call.kind {
                "query" => {
                    let slot = (since as f64 / QUERY_EVERY_MS as f64).round() as i64;
                    if !(1..DEADLINE_MS / QUERY_EVERY_MS).contains(&slot) {
                        stray += 1;
                        continue;
                    }
                    *slots.entry(slot).or_default() += 1;
                    let late_us = (call.at - (*created + Duration::from_millis((slot * QUERY_EVERY_MS) as u64)))
                        .whole_microseconds()
                        .max(0);
                    lateness.record(late_us as u64).unwrap();
                }
                "cancel" => {
                    cancels += 1;
                    let late = (call.at - *deadline).whole_microseconds().max(0) as u64;
                    cancel_late.record(late).unwrap();
                    if late <= 1_000_000 {
                        cancels_within_1s += 1;
                    }
                }
                _ => stray += 1,
            }
        }
        for slot in 1..DEADLINE_MS / QUERY_EVERY_MS {
            match slots.get(&slot).copied().unwrap_or(0) {
                0 => lost += 1,
                1 => {}
                _ => doubled += 1,
            }
        }
    }
    let ms = |h: &Histogram<u64>, q: f64| h.value_at_quantile(q) as f64 / 1000.0;
    println!("| figure | value |\n|---|---|");
    println!("| queries | {} (expected {}) |", lateness.len(), IN_FLIGHT * 11);
    println!("| firings lost / doubled / stray | {lost} / {doubled} / {stray} |");
    println!(
        "| query lateness p50 / p99 / p99.9 / max | {:.1} / {:.1} / {:.1} / {:.1} ms |",
        ms(&lateness, 0.5),
        ms(&lateness, 0.99),
        ms(&lateness, 0.999),
        lateness.max() as f64 / 1000.0
    );
    println!(
        "| cancels | {cancels}, {:.2}% within 1 s of the deadline (p99 {:.1} ms, max {:.1} ms) |",
        100.0 * f64::from(cancels_within_1s) / f64::from(cancels.max(1)),
        ms(&cancel_late, 0.99),
        cancel_late.max() as f64 / 1000.0
    );
    let per_call = cpu * 1e6 / calls as f64;
    println!(
        "| reconciler CPU per call | {per_call:.1} µs ({:.1} µs beyond the sign + verify floor) |",
        per_call - floor_us
    );
    println!("| reconciler CPU, whole run | {cpu:.1} s for {calls} calls; peak RSS {peak_rss:.1} MiB |");
    let fraction = |le: &str| {
        let bucket = stack_metric(&metrics, "reconciler_timer_lateness_seconds_bucket", &format!("le=\"{le}\""));
        bucket / stack_metric(&metrics, "reconciler_timer_lateness_seconds_count", "").max(1.0)
    };
    println!(
        "| reconciler's own lateness histogram | {:.3}% ≤ 50 ms, {:.3}% ≤ 100 ms |",
        100.0 * fraction("0.05"),
        100.0 * fraction("0.1")
    );
}

fn stack_metric(metrics: &str, name: &str, labels: &str) -> f64 {
    metrics
        .lines()
        .filter(|line| line.starts_with(name) && line.contains(labels))
        .filter_map(|line| line.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

async fn backlog(stack: &Stack, tenants: &[Pos], floor_us: f64) {
    println!("\n## a backlog of {BACKLOG} overdue trades (nothing in Redis)");
    let now = OffsetDateTime::now_utc();
    let (mut tenant_ids, mut numbers, mut created) = (Vec::new(), Vec::new(), Vec::new());
    for i in 0..BACKLOG {
        let pos = &tenants[i % tenants.len()];
        let no = format!("B{i}");
        alipay_trade(stack, pos, &no);
        tenant_ids.push(pos.tenant_id);
        numbers.push(no);
        // Half still within their minute (due for a query), half past it (due for a cancel).
        created.push(now - Duration::from_secs(if i % 2 == 0 { 30 } else { 120 }));
    }
    let client = stack.db.client().await;
    let currency = currency(&tenants[0]).code();
    for chunk in 0..BACKLOG.div_ceil(5_000) {
        let range = chunk * 5_000..((chunk + 1) * 5_000).min(BACKLOG);
        client
            .execute(
                "INSERT INTO trades (tenant_id, out_trade_no, kind, state, version, fingerprint, currency, amount_minor, \
                 subject, created_at, updated_at, deadline, next_check_at, unknown_reason, alipay_account) \
                 SELECT t, n, 'barcode', 'UNKNOWN', 2, '\\x00'::bytea, $4, 1000, 'Noodles', c, c, \
                 c + interval '60 seconds', c + interval '5 seconds', 'timeout', 'tenant:' || t \
                 FROM unnest($1::uuid[], $2::text[], $3::timestamptz[]) AS x(t, n, c)",
                &[&&tenant_ids[range.clone()], &&numbers[range.clone()], &&created[range], &currency],
            )
            .await
            .unwrap();
    }
    let calls_before = sandbox_calls(stack).await;
    let started = Instant::now();
    let (mut child, admin) = start_reconciler(stack);
    let pid = child.id();
    let cpu_before = cpu_seconds(pid);
    loop {
        let done = sandbox_calls(stack).await - calls_before;
        if done >= BACKLOG as u64 || started.elapsed() > Duration::from_secs(300) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let took = started.elapsed().as_secs_f64();
    let cpu = cpu_seconds(pid) - cpu_before;
    let metrics = reqwest::get(format!("{admin}/metrics")).await.unwrap().text().await.unwrap();
    child.kill().unwrap();
    child.wait().unwrap();
    let cancelled: i64 = client
        .query_one("SELECT count(*) FROM trades WHERE state = 'CANCELLED' AND out_trade_no LIKE 'B%'", &[])
        .await
        .unwrap()
        .get(0);
    let errors = stack_metric(&metrics, "reconciler_store_errors_total", "")
        + stack_metric(&metrics, "reconciler_checks_total", "result=\"not_sent\"")
        + stack_metric(&metrics, "upstream_answers_total", "outcome=\"unknown\"");
    println!("| figure | value |\n|---|---|");
    println!("| drained (one call each, from a cold start) | {took:.1} s, {:.0} calls/s |", BACKLOG as f64 / took);
    println!("| cancelled (past their deadline) | {cancelled} of {} |", BACKLOG / 2);
    println!("| errors (ledger, not sent, unknown answers) | {} |", errors as u64);
    println!(
        "| reconciler CPU per call | {:.1} µs ({:.1} µs beyond the floor) |",
        cpu * 1e6 / BACKLOG as f64,
        cpu * 1e6 / BACKLOG as f64 - floor_us
    );
}

async fn sandbox_calls(stack: &Stack) -> u64 {
    let methods =
        ["alipay.trade.query", "alipay.trade.cancel", "alipay.acquire.overseas.query", "alipay.acquire.cancel"];
    stack.sandbox_calls(&methods).await
}
