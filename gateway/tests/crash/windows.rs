//! Crash windows (reliability family 1): the gateway is killed with SIGKILL while payments stand
//! at each point where a crash could lose money or an answer: after the intent is committed, after
//! Alipay answered, and after the outcome is committed but before the POS heard it.
//!
//! A failpoint (`FAILPOINTS=pay::…=pause`; compiled into every test build of the
//! gateway) holds the
//! gateway's only worker thread at the point, so every payment in flight stops wherever it
//! stands; the test sees the evidence (the intent row, Alipay's call, the outcome row) and kills
//! the process. A fresh gateway and a reconciler take over, and every POS sends its payment again.
//! Then, for every trade: Alipay was asked to pay it at most once and the repeat asked nothing
//! (I1); what the POS was told is what the ledger ends with (I2); it is final by its deadline plus
//! a grace (I3), and as Alipay has it (I4).

use std::time::Duration;

use ledger::TradeState;
use serde_json::Value;
use stack::*;

use crate::pay_calls;

/// Design §4's 5 s / 60 s become 500 ms / 6 s.
const SCALE: f64 = 0.1;
/// Paid at once (00, 11, 22), refused (50, 51), paid 10 s later (60), 20000 yet paid (62), 20000
/// and no trade (63).
pub(crate) const SUFFIXES: [&str; 8] = ["00", "50", "60", "62", "63", "11", "51", "22"];
pub(crate) const WINDOWS: [&str; 3] = ["pay::after_intent", "pay::after_call", "pay::after_outcome"];
const GRACE: Duration = Duration::from_secs(2);

pub(crate) struct Payment {
    pub pos: Pos,
    pub out_trade_no: String,
    pub body: Vec<u8>,
    pub window: &'static str,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_gateway_killed_in_any_crash_window_loses_nothing() {
    let _alone = stack::alone().await;
    let stack = Stack::start(Options { notifications: false, ..Options::scaled(SCALE) }).await;
    let reconciler = stack.start_reconciler(stack.reconciler_config()).await;
    let tenants = [stack.openapi_tenant().await, stack.mapi_tenant().await];
    let binary = env!("CARGO_BIN_EXE_gateway");
    let config = gateway::Config { worker_threads: Some(1), ..stack.gateway_config() };

    let mut payments = Vec::new();
    for window in WINDOWS {
        for tenant in &tenants {
            let mut command = stack.gateway_process(binary, &config);
            command.env("FAILPOINTS", format!("{window}=pause"));
            let mut doomed = GatewayProcess::spawn(command);
            let pos = Pos { base: doomed.base.clone(), ..tenant.clone() };
            let life = one_of_each_scenario(&pos, "c", window);
            let calls_before = pay_calls(&stack).await;
            let sent = send_all(&life);
            held_at(&stack, window, &life, calls_before).await;
            doomed.kill();
            for (payment, answer) in life.iter().zip(sent) {
                let answer = answer.await.unwrap();
                assert!(
                    answer.is_err(),
                    "{window}: {} was answered by a gateway held there: {answer:?}",
                    payment.out_trade_no
                );
            }
            payments.extend(life);
        }
    }

    // A fresh gateway takes over; every POS sends its payment again.
    let survivor = GatewayProcess::spawn(stack.gateway_process(binary, &stack.gateway_config()));
    let calls_before_repeats = pay_calls(&stack).await;
    let mut told = Vec::new();
    let mut resent = 0;
    for payment in &mut payments {
        payment.pos.base = survivor.base.clone();
        let recorded = stack.ledger(&payment.pos, &payment.out_trade_no).await.is_some();
        resent += usize::from(!recorded);
        let (status, text) = payment.pos.send_raw("POST", "/v1/payments", payment.body.clone()).await;
        assert_eq!(status, 200, "{}: {text}", payment.out_trade_no);
        let answer: Value = serde_json::from_str(&text).unwrap();
        told.push(answer["status"].as_str().unwrap().to_owned());
    }
    let calls_after_repeats = pay_calls(&stack).await;
    // Only payments the dead gateway never recorded may reach Alipay now (as new ones).
    assert!(calls_after_repeats - calls_before_repeats <= resent as u64, "a repeat reached Alipay again");
    assert!(calls_after_repeats <= payments.len() as u64, "I1: a trade was sent to Alipay twice");

    let deadline = Duration::from_millis(stack.options.deadline_ms) + GRACE;
    for (Payment { pos, out_trade_no, window, .. }, told) in payments.iter().zip(&told) {
        invariants_hold(&stack, pos, out_trade_no, Some(told), deadline)
            .await
            .map_err(|e| format!("{window}: {e}"))
            .unwrap();
    }
    eprintln!(
        "crash windows: {} kills, {} payments, {} recorded before their gateway died, {} pay calls reached Alipay, 0 violations",
        WINDOWS.len() * tenants.len(),
        payments.len(),
        payments.len() - resent,
        calls_after_repeats
    );
    drop(survivor);
    reconciler.stop().await;
}

/// One payment of each scenario of [`SUFFIXES`] by `pos`, numbered with `prefix`.
pub(crate) fn one_of_each_scenario(pos: &Pos, prefix: &str, window: &'static str) -> Vec<Payment> {
    SUFFIXES
        .iter()
        .map(|suffix| {
            let out_trade_no = trade_no(&format!("{prefix}{suffix}"));
            let body = pos.charge_body(&out_trade_no, &code(suffix), "12.30").to_string().into_bytes();
            Payment { pos: pos.clone(), out_trade_no, body, window }
        })
        .collect()
}

/// Sends every payment at once; each task answers what its POS heard, or why nothing.
pub(crate) fn send_all(life: &[Payment]) -> Vec<tokio::task::JoinHandle<Result<(u16, String), reqwest::Error>>> {
    life.iter()
        .map(|p| {
            let (pos, body) = (p.pos.clone(), p.body.clone());
            tokio::spawn(async move { pos.try_send_raw("POST", "/v1/payments", body).await })
        })
        .collect()
}

/// Waits until the doomed gateway holds a payment at `window`: an intent is committed, Alipay was
/// asked, or an outcome is committed. (Nothing passes the held point: the gateway's only worker
/// thread is held there.)
pub(crate) async fn held_at(stack: &Stack, window: &str, life: &[Payment], calls_before: u64) {
    let give_up = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let reached = match window {
            "pay::after_call" => pay_calls(stack).await > calls_before,
            _ => {
                let mut states = Vec::new();
                for p in life {
                    states.extend(stack.ledger(&p.pos, &p.out_trade_no).await.map(|t| t.state));
                }
                match window {
                    "pay::after_intent" => !states.is_empty(),
                    _ => states.iter().any(|s| *s != TradeState::Paying),
                }
            }
        };
        if reached {
            return;
        }
        assert!(tokio::time::Instant::now() < give_up, "no payment reached {window}");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}
