//! `loadtest` against a real stack (gateway, sandbox, reconciler, Postgres, Redis): provisioned
//! tenants, a mixed open-loop run with refused and UNKNOWN payments, and verification that finds
//! nothing wrong — and finds a trade whose ledger row disagrees with Alipay.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::Arc;
use std::time::Duration;

use loadtest::mix::Mix;
use loadtest::provision::{Onboarding, ProvisionOptions, provision};
use loadtest::run::{Load, RunOptions, run};
use loadtest::schedule::Schedule;
use loadtest::verify::{VerifyOptions, verify};
use stack::{Options, Stack};
use tenants::Keyring;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_mixed_run_is_measured_and_every_answer_verified() {
    let stack = Stack::start(Options::scaled(0.01)).await;
    let _reconciler = stack.start_reconciler(stack.reconciler_config()).await;
    // Half onboarded straight into the registry, half through the gateway's admin API.
    let options = |prefix: &str| ProvisionOptions {
        count: 2,
        md5_share: 0.5,
        prefix: stack::unique(prefix),
        database_url: Some(stack.db.url.clone()),
        sandbox_url: stack.sandbox.url(),
        gateway_url: Some(stack.base()),
        limits: loadtest::cli::generous_limits(),
    };
    let keyring = Arc::new(Keyring::parse(&stack.master_key).unwrap());
    let mut file = provision(&options("reg"), Onboarding::Registry(keyring)).await.unwrap();
    let admin = Onboarding::AdminApi {
        url: format!("http://{}", stack.gateway.admin_addr()),
        token: stack::ADMIN_TOKEN.into(),
    };
    file.tenants.extend(provision(&options("api"), admin).await.unwrap().tenants);
    assert_eq!(file.tenants.len(), 4);
    assert_eq!(file.only(Some("MD5")).len(), 2);
    let client = loadtest::client::Client::new(&stack.base(), Duration::from_secs(5), 1);
    for tenant in &file.tenants {
        assert!(client.wait_until_known(tenant).await, "the gateway learns of {}", tenant.slug);
    }

    let mix: Mix = "pay=80,query=10,refund=5,cancel=5".parse().unwrap();
    let run_options = RunOptions {
        title: "mixed".into(),
        target: stack.base(),
        tenants: file.tenants.clone(),
        mix: mix.with_outcomes(0.1, 0.1).unwrap(),
        load: Load::Open(Schedule::Constant(200.0)),
        duration: Some(Duration::from_secs(2)),
        requests: None,
        timeout: Duration::from_secs(10),
        max_in_flight: 1_000,
        progress: false,
    };
    let (report, trades) = run(run_options).await.unwrap();
    assert!((350..=450).contains(&report.requests), "about 200/s for 2 s: {}", report.requests);
    assert_eq!(report.errors, 0, "{:?}", report.errors_by_kind);
    let heard = |status: &str| trades.iter().filter(|t| t.heard == status).count();
    assert!(heard("SUCCESS") > 0 && heard("FAILED") > 0 && heard("UNKNOWN") > 0, "{:?}", report.status_mix);
    assert!(report.by_operation.contains_key("query"), "{:?}", report.by_operation.keys());
    assert!(report.latency.p99_ms > 0.0 && report.latency.p50_ms <= report.latency.p99_ms);
    assert_eq!(report.timeline.iter().map(|s| s.completed).sum::<u64>(), report.requests);

    let verify_options = VerifyOptions {
        database_url: stack.db.url.clone(),
        sandbox_url: stack.sandbox.url(),
        wait: Duration::from_secs(30),
    };
    let verified = verify(&file.tenants, &trades, &verify_options).await.unwrap();
    assert_eq!(verified.checked, trades.len() as u64);
    assert_eq!(
        (verified.mismatches, verified.double_charges, verified.non_final),
        (0, 0, 0),
        "{:?}",
        verified.examples
    );

    // A paid trade the ledger wrongly shows as failed: Alipay holds money the merchant's
    // records do not — verification must count it.
    let paid = trades.iter().find(|t| t.heard == "SUCCESS" && !t.cancelled).unwrap();
    let tenant_id = file.tenants[paid.tenant].tenant_id.unwrap();
    stack
        .db
        .client()
        .await
        .execute(
            "UPDATE trades SET state = 'FAILED', refunded_minor = 0 WHERE tenant_id = $1 AND out_trade_no = $2",
            &[&tenant_id, &paid.out_trade_no],
        )
        .await
        .unwrap();
    let tampered = verify(&file.tenants, &trades, &verify_options).await.unwrap();
    assert_eq!(tampered.double_charges, 1, "{:?}", tampered.examples);
    assert!(tampered.examples[0].contains(&paid.out_trade_no));
}
