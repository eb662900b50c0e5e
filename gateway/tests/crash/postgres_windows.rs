//! Postgres killed in each crash window (reliability families 1 and 5; docs/durability.md): the
//! pay path waits for one durable commit, its intent's; the outcomes Alipay gives back (SUCCESS,
//! UNKNOWN) commit without waiting for the flush, so a crash of Postgres may lose them after the
//! POS heard them. This test makes that loss happen and shows it changes nothing a POS was told.
//!
//! Postgres's WAL writer is stopped (SIGSTOP) in each window, so an outcome committed without the
//! flush stays in memory until the kill unless a later intent's commit flushes it. In each window (after the intent, after Alipay's answer,
//! after the outcome) a failpoint holds the gateway's only worker thread for 2 s while every
//! process of Postgres is killed with SIGKILL and started again: for one tenant Postgres alone
//! (the gateway then carries on and answers), for the other the gateway too (a machine lost).
//! Then a fresh gateway takes the repeats and a reconciler settles what was left, and for every
//! trade: Alipay was asked to pay it at most once (I1); what the POS was told is what the ledger
//! ends with (I2); it is final in time (I3) and as Alipay has it (I4). And outcomes were really
//! lost: of those seen committed before the crash after the outcome, some are PAYING again after.

use std::time::Duration;

use ledger::TradeState;
use serde_json::Value;
use stack::*;

use crate::pay_calls;
use crate::windows::{Payment, WINDOWS, held_at, one_of_each_scenario, send_all};

const SCALE: f64 = 0.1;
/// The crash tests' grace, plus the 2 s the failpoint holds a pay (its Alipay call comes later).
const GRACE: Duration = Duration::from_secs(4);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_killed_in_any_crash_window_changes_nothing_a_pos_was_told() {
    let _alone = stack::alone().await;
    let postgres = std::sync::Arc::new(PrivatePostgres::start());
    let options = Options { notifications: false, postgres_admin_url: postgres.admin_url(), ..Options::scaled(SCALE) };
    let stack = Stack::start(options).await;
    let tenants = [stack.openapi_tenant().await, stack.mapi_tenant().await];
    let binary = env!("CARGO_BIN_EXE_gateway");
    let config = gateway::Config { worker_threads: Some(1), ..stack.gateway_config() };

    // (payment, what its POS heard from the gateway that was there when Postgres died)
    let mut payments: Vec<(Payment, Option<String>)> = Vec::new();
    let mut outcomes_lost = 0;
    for window in WINDOWS {
        for (n, tenant) in tenants.iter().enumerate() {
            let machine_lost = n == 1;
            postgres.hold_wal_writer().await;
            let mut command = stack.gateway_process(binary, &config);
            // After the outcome, every payment's is committed before the hold (the last one holds).
            let hold = if window == "pay::after_outcome" { "7*off->1*sleep(2000)" } else { "1*sleep(2000)" };
            command.env("FAILPOINTS", format!("{window}={hold}"));
            let mut held = GatewayProcess::spawn(command);
            let pos = Pos { base: held.base.clone(), ..tenant.clone() };
            let life = one_of_each_scenario(&pos, "p", window);
            let calls_before = pay_calls(&stack).await;
            let sent = send_all(&life);
            held_at(&stack, window, &life, calls_before).await;
            if window == "pay::after_outcome" {
                all_recorded(&stack, &life).await;
            }
            if machine_lost {
                held.kill();
            }
            let crashing = postgres.clone();
            tokio::task::spawn_blocking(move || crashing.crash_and_restart()).await.unwrap();
            for (payment, answer) in life.into_iter().zip(sent) {
                let told = match answer.await.unwrap() {
                    Ok((200, text)) => {
                        serde_json::from_str::<Value>(&text).unwrap()["status"].as_str().map(str::to_owned)
                    }
                    // Refused while the ledger was away: it must not have reached Alipay.
                    Ok((503, _)) => {
                        let truth = stack.truth(&payment.pos, &payment.out_trade_no).await;
                        assert!(truth.is_none(), "{window}: {} was refused yet reached Alipay", payment.out_trade_no);
                        None
                    }
                    Ok((status, text)) => panic!("{window}: {} was answered {status}: {text}", payment.out_trade_no),
                    Err(_) => {
                        assert!(machine_lost, "{window}: {} got no answer from a living gateway", payment.out_trade_no);
                        None
                    }
                };
                // Every outcome was seen committed before the crash; nothing but the gateways writes
                // to the ledger yet (no reconciler runs).
                let now = stack.ledger(&payment.pos, &payment.out_trade_no).await.map(|t| t.state);
                if window == "pay::after_outcome" && now == Some(TradeState::Paying) {
                    outcomes_lost += 1;
                }
                payments.push((payment, told));
            }
        }
    }

    let reconciler = stack.start_reconciler(stack.reconciler_config()).await;
    let survivor = GatewayProcess::spawn(stack.gateway_process(binary, &stack.gateway_config()));
    let mut last_told = Vec::new();
    for (payment, told) in &mut payments {
        payment.pos.base = survivor.base.clone();
        let (status, text) = payment.pos.send_raw("POST", "/v1/payments", payment.body.clone()).await;
        assert_eq!(status, 200, "{}: {text}", payment.out_trade_no);
        let again: Value = serde_json::from_str(&text).unwrap();
        // What the POS heard first stands, unless it was UNKNOWN or nothing.
        let heard = match told.as_deref() {
            Some("SUCCESS" | "FAILED") => told.clone(),
            _ => again["status"].as_str().map(str::to_owned),
        };
        last_told.push(heard);
    }
    let calls = pay_calls(&stack).await;
    assert!(calls <= payments.len() as u64, "I1: a trade was sent to Alipay twice");

    let deadline = Duration::from_millis(stack.options.deadline_ms) + GRACE;
    for ((Payment { pos, out_trade_no, window, .. }, _), told) in payments.iter().zip(&last_told) {
        invariants_hold(&stack, pos, out_trade_no, told.as_deref(), deadline)
            .await
            .map_err(|e| format!("{window}: {e}"))
            .unwrap();
    }
    assert!(outcomes_lost > 0, "no outcome was lost in the crashes: the test did not reach what it is for");
    eprintln!(
        "postgres crash windows: {} crashes of Postgres ({} with the gateway), {} payments, {outcomes_lost} of 16 \
         outcomes committed before the crash lost in it (settled again from Alipay), {calls} pay calls reached Alipay, 0 violations",
        WINDOWS.len() * tenants.len(),
        WINDOWS.len(),
        payments.len(),
    );
    drop(survivor);
    reconciler.stop().await;
}

/// Waits until every payment of `life` has its outcome in the ledger.
async fn all_recorded(stack: &Stack, life: &[Payment]) {
    let give_up = tokio::time::Instant::now() + Duration::from_secs(10);
    for p in life {
        while stack.ledger(&p.pos, &p.out_trade_no).await.is_none_or(|t| t.state == TradeState::Paying) {
            assert!(tokio::time::Instant::now() < give_up, "{} has no outcome", p.out_trade_no);
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }
}
