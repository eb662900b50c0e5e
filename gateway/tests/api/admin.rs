//! The admin listener's hardening: the example admin token of the deployment files stops the
//! gateway at start, and failed admin authentications are logged (peer and route, never the
//! token) and counted.

use std::io::{BufRead, Write};
use std::process::Stdio;
use std::sync::{Arc, Mutex};

use stack::*;
use tracing_subscriber::util::SubscriberInitExt;

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

/// Log lines, as the service's stderr would get them.
#[derive(Clone, Default)]
struct Logs(Arc<Mutex<Vec<u8>>>);

impl Write for Logs {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

fn failures_counted(metrics: &str) -> f64 {
    metrics
        .lines()
        .filter(|line| line.starts_with("admin_auth_failures_total"))
        .filter_map(|line| line.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

// One thread (the current-thread runtime) runs the whole stack, so this thread's log subscriber
// hears the admin listener.
#[tokio::test]
async fn failed_admin_authentications_are_logged_and_counted_without_the_token() {
    let logs = Logs::default();
    let writer = logs.clone();
    let _logging =
        tracing_subscriber::fmt().with_ansi(false).with_writer(move || writer.clone()).finish().set_default();
    let stack = Stack::start(Options::default()).await;
    let admin = format!("http://{}", stack.gateway.admin_addr());
    let metrics = || async { stack.http.get(format!("{admin}/metrics")).send().await.unwrap().text().await.unwrap() };
    let before = failures_counted(&metrics().await);

    let guess = "a-guessed-admin-token-0123456789abcdef";
    let wrong = stack.http.get(format!("{admin}/admin/tenants")).bearer_auth(guess).send().await.unwrap();
    assert_eq!(wrong.status(), 401);
    let basic = stack.http.post(format!("{admin}/admin/master-key/rotate")).basic_auth("ops", Some(guess));
    assert_eq!(basic.send().await.unwrap().status(), 401);
    let ok = stack.http.get(format!("{admin}/admin/tenants")).bearer_auth(ADMIN_TOKEN).send().await.unwrap();
    assert_eq!(ok.status(), 200);

    let text = String::from_utf8(logs.0.lock().unwrap().clone()).unwrap();
    let failures: Vec<&str> = text.lines().filter(|l| l.contains("admin authentication failed")).collect();
    assert_eq!(failures.len(), 2, "{text}");
    assert!(failures[0].contains("peer=127.0.0.1") && failures[0].contains("route=/admin/tenants"), "{text}");
    assert!(failures[1].contains("method=POST") && failures[1].contains("route=/admin/master-key/rotate"), "{text}");
    assert!(!text.contains(guess) && !text.contains(ADMIN_TOKEN), "a token in the logs: {text}");
    // Counted (the recorder is the process's: other tests may add to it, never take away).
    assert!(failures_counted(&metrics().await) >= before + 2.0);
}
