//! Postgres crashes and comes back under load (reliability family 5): POS terminals keep paying
//! while the ledger's server is killed the way a crash would (`pg_ctl stop -m immediate`) and
//! started again. Afterwards: every answer a POS got is in the ledger and is what the ledger ends
//! with (no acknowledged trade missing); a payment refused while the ledger was away never reached
//! Alipay; every trade is final in time and as Alipay has it; the pools recover (the gateway is
//! ready and pays again); no transaction is left open.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use serde_json::Value;
use stack::*;

/// Paid at once (00, 11, 22), refused (50), 20000 yet paid (62: UNKNOWN, then settled).
const SUFFIXES: [&str; 5] = ["00", "50", "11", "62", "22"];
const TERMINALS: usize = 8;

struct Attempt {
    pos: Pos,
    out_trade_no: String,
    status: u16,
    answer: Value,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_postgres_crash_under_load_loses_no_acknowledged_trade() {
    let postgres = Arc::new(PrivatePostgres::start());
    let options = Options { notifications: false, postgres_admin_url: postgres.admin_url(), ..Options::scaled(0.1) };
    let stack = Stack::start(options).await;
    let reconciler = stack.start_reconciler(stack.reconciler_config()).await;
    let tenants = [stack.openapi_tenant().await, stack.mapi_tenant().await];

    // Terminals pay one trade after another until told to stop; `paid` counts 200 answers.
    let paid = Arc::new(AtomicUsize::new(0));
    let stop = tokio_util::sync::CancellationToken::new();
    let terminals: Vec<_> = (0..TERMINALS)
        .map(|i| {
            let (pos, paid, stop) = (tenants[i % tenants.len()].clone(), paid.clone(), stop.clone());
            tokio::spawn(async move {
                let mut attempts = Vec::new();
                for suffix in SUFFIXES.iter().cycle() {
                    if stop.is_cancelled() {
                        break;
                    }
                    let out_trade_no = trade_no("pg");
                    let body = pos.charge_body(&out_trade_no, &code(suffix), "8.80").to_string().into_bytes();
                    let (status, text) = pos.send_raw("POST", "/v1/payments", body).await;
                    paid.fetch_add(usize::from(status == 200), Ordering::Relaxed);
                    let answer = serde_json::from_str(&text).unwrap_or(Value::Null);
                    attempts.push(Attempt { pos: pos.clone(), out_trade_no, status, answer });
                }
                attempts
            })
        })
        .collect();

    paid_at_least(&paid, 40).await;
    let before = paid.load(Ordering::Relaxed);
    let crashing = postgres.clone();
    tokio::task::spawn_blocking(move || crashing.crash_and_restart()).await.unwrap();
    let restarted = tokio::time::Instant::now();
    // The pools recover: payments are answered again after the restart.
    paid_at_least(&paid, before + 40).await;
    stop.cancel();
    let mut attempts = Vec::new();
    for terminal in terminals {
        attempts.extend(terminal.await.unwrap());
    }

    let admin = format!("http://{}", stack.gateway.admin_addr());
    let ready_again = ready_within(&admin, Duration::from_secs(5)).await - restarted;
    let (mut refused, mut statuses) = (0, std::collections::BTreeMap::<String, usize>::new());
    let deadline = Duration::from_millis(stack.options.deadline_ms) + Duration::from_secs(2);
    for Attempt { pos, out_trade_no, status, answer } in &attempts {
        let recorded = stack.ledger(pos, out_trade_no).await;
        match status {
            200 => {
                let told = answer["status"].as_str().unwrap();
                *statuses.entry(told.to_owned()).or_default() += 1;
                assert!(recorded.is_some(), "I2: {out_trade_no} was answered {told} but is not in the ledger");
            }
            // Refused while the ledger was away (503), or, as terminals retried at once, over the
            // tenant's rate (429): neither may have reached Alipay.
            503 | 429 => {
                refused += 1;
                let truth = stack.truth(pos, out_trade_no).await;
                assert!(truth.is_none(), "{out_trade_no} was refused ({status}) yet reached Alipay: {truth:?}");
            }
            other => panic!("{out_trade_no}: {other} {answer}"),
        }
        // A refused payment whose intent was committed anyway (the commit's acknowledgement lost in
        // the crash) is a trade like any other: it must end final too.
        if recorded.is_none() {
            continue;
        }
        let told = answer["status"].as_str();
        invariants_hold(&stack, pos, out_trade_no, told, deadline).await.unwrap();
    }
    let open = postgres.open_transactions(&stack.db.name).await;
    assert_eq!(open, 0, "transactions left open after the restart");
    eprintln!(
        "postgres crash under load: {} payments ({statuses:?} answered, {refused} refused with 503 or 429), ready again {} ms after the restart, 0 violations",
        attempts.len(),
        ready_again.as_millis()
    );
    reconciler.stop().await;
}

/// Waits until at least `n` payments were answered 200 (the load runs meanwhile).
async fn paid_at_least(paid: &AtomicUsize, n: usize) {
    let give_up = tokio::time::Instant::now() + Duration::from_secs(30);
    while paid.load(Ordering::Relaxed) < n {
        assert!(tokio::time::Instant::now() < give_up, "payments stopped being answered");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}
