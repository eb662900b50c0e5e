//! The clients of `docs/clients` (docs/partner-api.md §13), run as a vendor runs them against a
//! real gateway: the Python, Node and Java clients each sign their calls, pay with a barcode the
//! sandbox pays at once, and read the payment back with `?wait=`; what they printed is checked
//! against the gateway's answer and the ledger. The Python webhook receiver verifies a real
//! delivery, whose fields are exactly those the OpenAPI document's webhook schema lists. The C#
//! client is not run (no .NET SDK here; the guide says so). A missing toolchain fails its test
//! with the tool's name: CI has python3, node and a JDK 17.

#![allow(clippy::print_stdout, reason = "what the clients printed is shown with --nocapture")]

use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use alipay::SignType;
use serde_json::Value;
use stack::*;
use tenants::model::{Dialect, TenantUpdate};
use tenants::registry::KeyInput;
use tokio::io::{AsyncBufReadExt, BufReader, Lines};
use tokio::process::{ChildStdout, Command};

fn clients() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../docs/clients")
}

/// `program` as found on `PATH`; a failure that names it when it is not there.
fn tool(program: &str) -> PathBuf {
    std::env::var_os("PATH")
        .iter()
        .flat_map(std::env::split_paths)
        .map(|dir| dir.join(program))
        .find(|path| path.is_file())
        .unwrap_or_else(|| {
            panic!(
                "`{program}` is not on PATH: this test runs the partner API clients of docs/clients \
                 (python3, node, and a JDK 17's javac and java); install it"
            )
        })
}

/// One call as a client printed it: `METHOD path -> status answer`.
#[derive(Debug)]
struct Printed {
    call: String,
    status: u16,
    answer: Value,
}

/// Runs a client to its end with `pos`'s credentials, paying `out_trade_no`; answers the calls it
/// printed.
async fn run(mut command: Command, pos: &Pos, out_trade_no: &str) -> Vec<Printed> {
    command
        .env("ACQ_BASE_URL", &pos.base)
        .env("ACQ_KEY_ID", &pos.key_id)
        .env("ACQ_SECRET", &pos.secret)
        .env("ACQ_OUT_TRADE_NO", out_trade_no)
        .env("ACQ_AUTH_CODE", code("00"))
        .env("ACQ_AMOUNT", "26.80")
        .kill_on_drop(true);
    // The program and its arguments, not the environment (the secret).
    let std = command.as_std();
    let shown =
        std::iter::once(std.get_program()).chain(std.get_args()).map(|a| a.to_string_lossy()).collect::<Vec<_>>();
    let shown = shown.join(" ");
    let output = tokio::time::timeout(Duration::from_secs(120), command.output())
        .await
        .unwrap_or_else(|_| panic!("{shown} did not finish in 120 s"))
        .unwrap_or_else(|e| panic!("{shown} does not run: {e}"));
    let (stdout, stderr) = (String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr));
    assert!(output.status.success(), "{shown} failed ({})\n{stdout}\n{stderr}", output.status);
    println!("{shown}:\n{stdout}");
    stdout
        .lines()
        .map(|line| {
            let (call, answer) = line.split_once(" -> ").unwrap_or_else(|| panic!("not a call: {line}"));
            let (status, answer) = answer.split_once(' ').unwrap_or_else(|| panic!("not a call: {line}"));
            Printed {
                call: call.to_owned(),
                status: status.parse().unwrap(),
                answer: serde_json::from_str(answer).unwrap_or_else(|e| panic!("{e}: {answer}")),
            }
        })
        .collect()
}

/// The client paid and read the payment back, as the gateway and the ledger hold it.
async fn paid_and_read_back(stack: &Stack, pos: &Pos, out_trade_no: &str, printed: &[Printed]) {
    let [pay, read] = printed else { panic!("a pay and a read, not {printed:#?}") };
    assert_eq!((pay.call.as_str(), pay.status), ("POST /v1/payments", 200), "{pay:?}");
    assert_eq!(
        (pay.answer["status"].as_str(), pay.answer["out_trade_no"].as_str(), pay.answer["amount"].as_str()),
        (Some("SUCCESS"), Some(out_trade_no), Some("26.80")),
        "{pay:?}"
    );
    let trade_no = pay.answer["trade_no"].as_str().expect("Alipay's trade number");
    assert_eq!((read.call.clone(), read.status), (format!("GET /v1/payments/{out_trade_no}?wait=30"), 200));
    assert_eq!((read.answer["status"].as_str(), read.answer["trade_no"].as_str()), (Some("SUCCESS"), Some(trade_no)));

    let (status, view) = pos.get(out_trade_no, 0).await;
    assert_eq!((status, view["status"].as_str(), view["trade_no"].as_str()), (200, Some("SUCCESS"), Some(trade_no)));
    let trade = stack.ledger(pos, out_trade_no).await.expect("the payment is in the ledger");
    assert_eq!((trade.state, trade.trade_no.as_deref()), (ledger::TradeState::Success, Some(trade_no)));
}

#[tokio::test]
async fn the_python_client_pays_and_reads_the_payment_back() {
    let python = tool("python3");
    let stack = Stack::start(Options::default()).await;
    let pos = stack.openapi_tenant().await;
    let no = trade_no("py-");
    let mut command = Command::new(python);
    command.arg(clients().join("python/pay.py"));
    let printed = run(command, &pos, &no).await;
    paid_and_read_back(&stack, &pos, &no, &printed).await;
}

#[tokio::test]
async fn the_node_client_pays_and_reads_the_payment_back() {
    let node = tool("node");
    let stack = Stack::start(Options::default()).await;
    let pos = stack.openapi_tenant().await;
    let no = trade_no("node-");
    let mut command = Command::new(node);
    command.arg(clients().join("node/pay.mjs"));
    let printed = run(command, &pos, &no).await;
    paid_and_read_back(&stack, &pos, &no, &printed).await;
}

#[tokio::test]
async fn the_java_client_pays_and_reads_the_payment_back() {
    let (javac, java) = (tool("javac"), tool("java"));
    let classes = std::env::temp_dir().join(unique("partner-java-"));
    // JDK 17's API only, and not a warning.
    let compiled = Command::new(javac)
        .args(["--release", "17", "-Xlint:all", "-Werror", "-d"])
        .arg(&classes)
        .arg(clients().join("java/PayExample.java"))
        .output()
        .await
        .unwrap();
    assert!(compiled.status.success(), "javac: {}", String::from_utf8_lossy(&compiled.stderr));
    let stack = Stack::start(Options::default()).await;
    let pos = stack.openapi_tenant().await;
    let no = trade_no("java-");
    let mut command = Command::new(java);
    command.arg("-cp").arg(&classes).arg("PayExample");
    let printed = run(command, &pos, &no).await;
    let _ = std::fs::remove_dir_all(&classes);
    paid_and_read_back(&stack, &pos, &no, &printed).await;
}

/// The next line the receiver prints.
async fn next_line(lines: &mut Lines<BufReader<ChildStdout>>) -> String {
    tokio::time::timeout(Duration::from_secs(30), lines.next_line())
        .await
        .expect("the receiver says something within 30 s")
        .unwrap()
        .expect("the receiver is running")
}

/// The fields the OpenAPI document gives a webhook's body.
fn documented_webhook_fields() -> Vec<String> {
    let document: Value = serde_json::from_str(gateway::routes::OPENAPI).unwrap();
    let mut fields: Vec<String> =
        document["components"]["schemas"]["WebhookEvent"]["properties"].as_object().unwrap().keys().cloned().collect();
    fields.sort();
    fields
}

#[tokio::test]
async fn the_python_webhook_receiver_verifies_a_real_delivery() {
    let python = tool("python3");
    let stack = Stack::start(Options::scaled(0.05)).await;
    let (pos, webhook_secret) = stack.tenant_with_webhook(Dialect::Openapi, SignType::Rsa2, generous(), None).await;
    let mut receiver = Command::new(python)
        .arg(clients().join("python/webhook_receiver.py"))
        .env("ACQ_WEBHOOK_SECRET", &webhook_secret)
        .env("ACQ_TENANT_ID", pos.tenant_id.to_string())
        .stdout(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(receiver.stdout.take().unwrap()).lines();
    let listening = next_line(&mut lines).await;
    let url = listening.strip_prefix("listening on ").unwrap_or_else(|| panic!("{listening}"));
    // A query in the registered URL is signed too.
    let change = TenantUpdate { webhook_url: Some(Some(format!("{url}?shop=S1"))), ..TenantUpdate::default() };
    stack.registry.update("ops:test", &pos.slug, change, KeyInput::default()).await.unwrap();
    let _reconciler = stack.start_reconciler(stack.reconciler_config()).await;

    // The buyer confirms a moment later: the POS hears UNKNOWN, the merchant's webhook the end.
    let no = trade_no("hook-");
    let (status, answer) = pos.charge(&no, &code("60"), "18.50").await;
    assert_eq!((status, answer["status"].as_str()), (200, Some("UNKNOWN")), "{answer}");
    let line = next_line(&mut lines).await;
    let delivered = line
        .strip_prefix(&format!("verified payment.succeeded {no} "))
        .unwrap_or_else(|| panic!("a verified payment.succeeded of {no}, not: {line}"));
    println!("the receiver: {line}");
    let event: Value = serde_json::from_str(delivered).unwrap();
    assert_eq!(
        (event["event"].as_str(), event["status"].as_str(), event["amount"].as_str()),
        (Some("payment.succeeded"), Some("SUCCESS"), Some("18.50")),
        "{event}"
    );
    assert!(event["delivery_id"].is_i64(), "{event}");
    let mut sent: Vec<String> = event.as_object().unwrap().keys().cloned().collect();
    sent.sort();
    assert_eq!(sent, documented_webhook_fields(), "the webhook's fields are the ones documented");
}
