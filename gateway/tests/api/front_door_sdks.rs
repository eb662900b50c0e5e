//! Alipay's official SDKs, used as a restaurant POS uses them (Node `alipay-sdk` and Python
//! `alipay-sdk-python`, verification of answers and notifications on), run unchanged against the
//! front door: pay (paid, refused, UNKNOWN settled by the POS's own query loop, UNKNOWN cancelled
//! by the POS), precreate then paid with its notification, query, partial refunds and their
//! idempotent repeat, refund query, cancel both ways, oauth token, a forged signature and an
//! unknown method refused with Alipay's codes. The scripts are `tests/pos-sdk/{node,python}`;
//! the README's test command installs them first (`tests/pos-sdk/install`).

#![allow(clippy::print_stdout, reason = "the SDK runs are shown with --nocapture")]

use std::path::{Path, PathBuf};

use stack::{AlipayPos, Options, Stack};

/// The sandbox's time scale: the pays-later buyer confirms after 1 s, the reconciler queries
/// every 500 ms; the POS queries every 500 ms, as it would every 5 s against Alipay.
const SCALE: f64 = 0.1;

fn sdk_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/pos-sdk")
}

async fn run(stack: &Stack, upstream_app_id: &str, pos: &AlipayPos, program: &Path, script: &str) {
    let output = tokio::process::Command::new(program)
        .arg(script)
        .current_dir(sdk_dir())
        .env("ALIPAY_GATEWAY", &pos.url)
        .env("APP_ID", pos.app_id.as_str())
        .env("APP_PRIVATE_KEY", bare_base64(&pos.private_key_pem))
        .env("ALIPAY_PUBLIC_KEY", &pos.platform_public_key)
        .env("SIGN_TYPE", "RSA2")
        .env("SANDBOX_URL", stack.sandbox.url())
        .env("UPSTREAM_APP_ID", upstream_app_id)
        .env("QUERY_INTERVAL_MS", "500")
        .env("QUERY_ROUNDS", "24")
        .env("GIVE_UP_ROUNDS", "2")
        .kill_on_drop(true)
        .output()
        .await
        .unwrap_or_else(|e| panic!("{} runs: {e}", program.display()));
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{script} failed\n{stdout}\n{stderr}");
    assert!(stdout.contains("all POS SDK checks passed"), "{stdout}");
    println!("{script}:\n{stdout}");
}

/// A PEM key as Alipay's key tool hands it out: the base64 alone, on one line.
fn bare_base64(pem: &str) -> String {
    pem.lines().filter(|line| !line.starts_with("-----")).collect()
}

#[tokio::test]
async fn alipays_official_sdks_work_unchanged_against_the_front_door() {
    let dir = sdk_dir();
    let python = dir.join("python/.venv/bin/python");
    assert!(
        dir.join("node/node_modules/alipay-sdk/package.json").exists() && python.exists(),
        "the SDKs are not installed: run gateway/tests/pos-sdk/install (scripts/test does)"
    );
    let stack = Stack::start(Options::scaled(SCALE)).await;
    let _reconciler = stack.start_reconciler(stack.reconciler_config()).await;
    let tenant = stack.openapi_tenant().await;
    let pos = stack.front_door(&tenant).await;
    run(&stack, &tenant.alipay_id, &pos, Path::new("node"), "node/pos.mjs").await;
    // The Python SDK reaches only a gateway on its scheme's default port (it drops any port in
    // the URL): a second gateway of the stack answers on port 80 of a loopback address of its own.
    let (_door, pos) = match port_80_gateway(&stack).await {
        Some(door) => {
            let url = format!("http://{}/alipay/gateway.do", door.addr().ip());
            (Some(door), pos.with_url(url))
        }
        None => {
            println!("port 80 cannot be bound here: the Python SDK runs with its port fix (see pos.py)");
            (None, pos)
        }
    };
    run(&stack, &tenant.alipay_id, &pos, &python, "python/pos.py").await;
}

/// A gateway of the stack on port 80 of a loopback address nobody else uses (`None` where
/// binding port 80 is not allowed).
async fn port_80_gateway(stack: &Stack) -> Option<gateway::Gateway> {
    let pid = std::process::id();
    let ip = std::net::Ipv4Addr::new(127, 80, (pid >> 8) as u8, pid as u8);
    std::net::TcpListener::bind((ip, 80)).ok()?;
    let mut config = stack.gateway_config();
    config.listen = (ip, 80).into();
    let secrets = gateway::Secrets { keyring: stack.keyring.clone(), admin_token: None };
    Some(gateway::Gateway::start(config, secrets).await.unwrap())
}
