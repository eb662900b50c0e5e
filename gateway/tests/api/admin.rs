//! The admin listener's hardening: the example admin token of the deployment files stops the
//! gateway at start, and failed admin authentications are logged (peer and route, never the
//! token) and counted.

use std::io::BufRead;
use std::process::Stdio;

use stack::*;

/// The example value of `deploy/systemd/gateway-secrets.env.example`.
const EXAMPLE_TOKEN: &str = "CHANGE-ME-at-least-32-characters-long";

#[tokio::test]
async fn the_example_admin_token_stops_the_gateway_at_start() {
    let stack = Stack::start(Options::default()).await;
    let mut command = stack.gateway_process(env!("CARGO_BIN_EXE_gateway"), &stack.gateway_config());
    command.env("ACQ_ADMIN_TOKEN", EXAMPLE_TOKEN).stdout(Stdio::piped()).stderr(Stdio::piped());
    let mut child = KillOnDrop(command.spawn().unwrap());
    // It either says where it listens (it took the token) or ends.
    let mut first = String::new();
    std::io::BufReader::new(child.0.stdout.take().unwrap()).read_line(&mut first).unwrap();
    assert!(first.is_empty(), "the gateway started with the example admin token: {first}");
    let status = child.0.wait().unwrap();
    let mut stderr = String::new();
    std::io::Read::read_to_string(&mut child.0.stderr.take().unwrap(), &mut stderr).unwrap();
    assert!(!status.success());
    // One line says why (the others are log records: logging starts first).
    let errors: Vec<&str> = stderr.lines().filter(|l| l.starts_with("error")).collect();
    assert_eq!(errors.len(), 1, "one line: {stderr}");
    assert!(errors[0].starts_with("error: ACQ_ADMIN_TOKEN: ") && errors[0].contains("example"), "{stderr}");
    assert_eq!(stderr.lines().last(), Some(errors[0]), "{stderr}");
    assert!(!stderr.contains(EXAMPLE_TOKEN), "the token is not repeated: {stderr}");
}

fn counted(metrics: &str, reason: &str) -> Option<f64> {
    let series = format!("admin_auth_failures_total{{reason=\"{reason}\"}} ");
    metrics.lines().find_map(|line| line.strip_prefix(&series)?.parse().ok())
}

#[tokio::test]
async fn failed_admin_authentications_are_logged_and_counted_without_the_token() {
    let stack = Stack::start(Options::default()).await;
    let mut command = stack.gateway_process(env!("CARGO_BIN_EXE_gateway"), &stack.gateway_config());
    command.env_remove("RUST_LOG").stdout(Stdio::piped()).stderr(Stdio::piped());
    let mut child = KillOnDrop(command.spawn().unwrap());
    // "gateway listening on http://A (admin http://B)"
    let mut first = String::new();
    std::io::BufReader::new(child.0.stdout.take().unwrap()).read_line(&mut first).unwrap();
    let admin = first.trim().trim_end_matches(')').rsplit(' ').next().unwrap().to_owned();
    assert!(admin.starts_with("http://127.0.0.1:"), "{first}");

    let guess = "a-guessed-admin-token-0123456789abcdef";
    let wrong = stack.http.get(format!("{admin}/admin/tenants")).bearer_auth(guess).send().await.unwrap();
    assert_eq!(wrong.status(), 401);
    let basic = stack.http.post(format!("{admin}/admin/master-key/rotate")).basic_auth("ops", Some(guess));
    assert_eq!(basic.send().await.unwrap().status(), 401);
    let missing = stack.http.get(format!("{admin}/admin/tenants")).send().await.unwrap();
    assert_eq!(missing.status(), 401);
    let ok = stack.http.get(format!("{admin}/admin/tenants")).bearer_auth(ADMIN_TOKEN).send().await.unwrap();
    assert_eq!(ok.status(), 200);
    let metrics = stack.http.get(format!("{admin}/metrics")).send().await.unwrap().text().await.unwrap();
    assert_eq!((counted(&metrics, "wrong"), counted(&metrics, "missing")), (Some(2.0), Some(1.0)), "{metrics}");

    child.kill();
    let mut text = String::new();
    std::io::Read::read_to_string(&mut child.0.stderr.take().unwrap(), &mut text).unwrap();
    let failures: Vec<&str> = text.lines().filter(|l| l.contains("admin authentication failed")).collect();
    assert_eq!(failures.len(), 3, "{text}");
    assert!(failures[0].contains("peer=127.0.0.1") && failures[0].contains("route=/admin/tenants"), "{text}");
    assert!(failures[1].contains("method=POST") && failures[1].contains("route=/admin/master-key/rotate"), "{text}");
    assert!(failures[2].contains("reason=missing"), "{text}");
    assert!(!text.contains(guess) && !text.contains(ADMIN_TOKEN), "a token in the logs: {text}");
}
