//! `loadtest` against a real stack (gateway, sandbox, reconciler, Postgres, Redis): provisioned
//! tenants, a mixed open-loop run with refused and UNKNOWN payments, and verification that finds
//! nothing wrong — and finds a trade whose ledger row disagrees with Alipay; and the same through
//! the tenants' front doors (Alipay's own OpenAPI, `--api alipay`), verified as strictly.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::Arc;
use std::time::Duration;

use loadtest::client::Http;
use loadtest::client::alipay::FrontDoors;
use loadtest::mix::Mix;
use loadtest::provision::{Onboarding, ProvisionOptions, provision};
use loadtest::run::{Api, Load, RunOptions, run};
use loadtest::schedule::Schedule;
use loadtest::tenants_file::{PosTenant, TenantsFile};
use loadtest::verify::{VerifyOptions, verify};
use stack::{Options, Stack};
use tenants::Keyring;

/// Four tenants (two MD5), two provisioned straight into the registry and two through the
/// gateway's admin API, with their front doors (OpenAPI ones) if `front_door`.
async fn provisioned(stack: &Stack, front_door: bool) -> loadtest::tenants_file::TenantsFile {
    let options = |prefix: &str| ProvisionOptions {
        count: 2,
        md5_share: 0.5,
        prefix: stack::unique(prefix),
        database_url: Some(stack.db.url.clone()),
        sandbox_url: stack.sandbox.url(),
        gateway_url: Some(stack.base()),
        limits: loadtest::cli::generous_limits(),
        front_door,
    };
    let keyring = Arc::new(Keyring::parse(&stack.master_key).unwrap());
    let mut file = provision(&options("reg"), Onboarding::Registry(keyring)).await.unwrap();
    let admin = Onboarding::AdminApi {
        url: format!("http://{}", stack.gateway.admin_addr()),
        token: stack::ADMIN_TOKEN.into(),
    };
    file.tenants.extend(provision(&options("api"), admin).await.unwrap().tenants);
    assert!(file.tenants.iter().all(|t| t.outside_production()), "provisioned on the sandbox: {:?}", file.tenants);
    file
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_mixed_run_is_measured_and_every_answer_verified() {
    let _alone = stack::alone().await;
    let stack = Stack::start(Options::scaled(0.01)).await;
    let _reconciler = stack.start_reconciler(stack.reconciler_config()).await;
    // Half onboarded straight into the registry, half through the gateway's admin API.
    let file = provisioned(&stack, false).await;
    assert_eq!(file.tenants.len(), 4);
    assert_eq!(file.only(Some("MD5")).len(), 2);
    let client = loadtest::client::Client::new(&stack.base(), Duration::from_secs(5), 1);
    for tenant in &file.tenants {
        assert!(client.wait_until_known(tenant).await, "the gateway learns of {}", tenant.slug);
    }

    let mix: Mix = "pay=80,query=10,refund=5,cancel=5".parse().unwrap();
    let run_options = RunOptions {
        title: "mixed".into(),
        targets: vec![stack.base()],
        spread: loadtest::run::Spread::RoundRobin,
        tenants: file.tenants.clone(),
        api: Api::Partner,
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
    assert_eq!(report.errors, 0, "{:?} {:?}", report.errors_by_kind, report.status_mix);
    let heard = |status: &str| trades.iter().filter(|t| t.heard == status).count();
    assert!(heard("SUCCESS") > 0 && heard("FAILED") > 0 && heard("UNKNOWN") > 0, "{:?}", report.status_mix);
    assert!(report.by_operation.contains_key("query"), "{:?}", report.by_operation.keys());
    assert!(report.latency.p99_ms > 0.0 && report.latency.p50_ms <= report.latency.p99_ms);
    assert_eq!(report.timeline.iter().map(|s| s.completed).sum::<u64>(), report.requests);
    // What the gateway said of its own part (`Server-Timing`): for every call, and for the calls
    // to Alipay the intent's commit within it.
    let (added, intent) = (report.added_by_gateway.unwrap(), report.intent_commit.unwrap());
    assert!(added.p50_ms > 0.0 && intent.p50_ms > 0.0, "{added:?} {intent:?}");

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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_through_the_front_doors_is_verified_as_strictly() {
    let _alone = stack::alone().await;
    let stack = Stack::start(Options::scaled(0.01)).await;
    let _reconciler = stack.start_reconciler(stack.reconciler_config()).await;
    // Front doors enabled both ways: straight in the registry, and through the admin API.
    let file = provisioned(&stack, true).await;
    assert!(file.only(Some("MD5")).iter().all(|t| t.front_door.is_none()), "Global MD5 tenants have none");
    let tenants = file.only(Some("RSA2"));
    assert_eq!(tenants.len(), 2);
    let door = tenants[0].front_door.as_ref().unwrap();
    assert_eq!(door.gateway_url, format!("{}/alipay/gateway.do", stack.base()));
    assert!(door.app_private_key.as_deref().unwrap().starts_with("-----BEGIN RSA PRIVATE KEY-----"));
    let doors = FrontDoors::new(&tenants, &Http::new(Duration::from_secs(5), 1)).unwrap();
    for (n, tenant) in tenants.iter().enumerate() {
        assert!(doors.wait_until_known(n).await, "the gateway learns of {}'s front door", tenant.slug);
    }

    let mix: Mix = "pay=75,query=10,refund=5,cancel=5,qr_order=5".parse().unwrap();
    let run_options = RunOptions {
        title: "front door".into(),
        targets: vec![stack.base()],
        spread: loadtest::run::Spread::RoundRobin,
        tenants: tenants.clone(),
        api: Api::Alipay,
        mix: mix.with_outcomes(0.1, 0.1).unwrap(),
        load: Load::Open(Schedule::Constant(100.0)),
        duration: Some(Duration::from_secs(2)),
        requests: None,
        timeout: Duration::from_secs(10),
        max_in_flight: 1_000,
        progress: false,
    };
    let (report, trades) = run(run_options).await.unwrap();
    assert!((150..=250).contains(&report.requests), "about 100/s for 2 s: {}", report.requests);
    assert_eq!(report.errors, 0, "{:?} {:?}", report.errors_by_kind, report.status_mix);
    assert!(report.mode.contains("front door"), "{}", report.mode);
    let heard = |status: &str| trades.iter().filter(|t| t.heard == status).count();
    assert!(heard("SUCCESS") > 0 && heard("FAILED") > 0 && heard("UNKNOWN") > 0, "{:?}", report.status_mix);
    for label in ["10000 SUCCESS", "40004 FAILED", "10003 UNKNOWN"] {
        assert!(report.status_mix.contains_key(label), "{label} in {:?}", report.status_mix);
    }
    assert!(report.by_operation.contains_key("query"), "{:?}", report.by_operation.keys());

    let verify_options = VerifyOptions {
        database_url: stack.db.url.clone(),
        sandbox_url: stack.sandbox.url(),
        wait: Duration::from_secs(30),
    };
    let verified = verify(&tenants, &trades, &verify_options).await.unwrap();
    assert_eq!(verified.checked, trades.len() as u64);
    assert_eq!(
        (verified.mismatches, verified.double_charges, verified.non_final),
        (0, 0, 0),
        "{:?}",
        verified.examples
    );
}

/// Two gateways of one stack (replicas on one Postgres and Redis), calls spread over both in
/// turn: the report splits its figures by gateway, and every answer verifies as strictly (a
/// query, refund or cancel often reaches the other gateway than its payment did).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_over_two_gateways_is_split_by_target_and_verified() {
    let _alone = stack::alone().await;
    let stack = Stack::start(Options::scaled(0.01)).await;
    let _reconciler = stack.start_reconciler(stack.reconciler_config()).await;
    let replica = stack.replica().await;
    let file = provisioned(&stack, false).await;
    let targets = vec![stack.base(), format!("http://{}", replica.addr())];
    for target in &targets {
        let client = loadtest::client::Client::new(target, Duration::from_secs(5), 1);
        for tenant in &file.tenants {
            assert!(client.wait_until_known(tenant).await, "{target} learns of {}", tenant.slug);
        }
    }
    let mix: Mix = "pay=70,query=15,refund=5,cancel=10".parse().unwrap();
    let run_options = RunOptions {
        title: "two gateways".into(),
        targets: targets.clone(),
        spread: loadtest::run::Spread::RoundRobin,
        tenants: file.tenants.clone(),
        api: Api::Partner,
        mix: mix.with_outcomes(0.1, 0.1).unwrap(),
        load: Load::Open(Schedule::Constant(100.0)),
        duration: Some(Duration::from_secs(2)),
        requests: None,
        timeout: Duration::from_secs(10),
        max_in_flight: 1_000,
        progress: false,
    };
    let (report, trades) = run(run_options).await.unwrap();
    assert_eq!(report.errors, 0, "{:?} {:?}", report.errors_by_kind, report.status_mix);
    let split: Vec<u64> = targets.iter().map(|t| report.by_target[t].requests).collect();
    println!("two gateways, in turn: {split:?} requests of {}", report.requests);
    assert_eq!(split.iter().sum::<u64>(), report.requests);
    assert!(split.iter().all(|n| n.abs_diff(report.requests / 2) <= 1), "in turn: {split:?}");
    assert!(loadtest::render::run_markdown(&report).contains("### By target"));

    let verify_options = VerifyOptions {
        database_url: stack.db.url.clone(),
        sandbox_url: stack.sandbox.url(),
        wait: Duration::from_secs(30),
    };
    let verified = verify(&file.tenants, &trades, &verify_options).await.unwrap();
    assert_eq!(
        (verified.checked, verified.mismatches, verified.double_charges, verified.non_final),
        (trades.len() as u64, 0, 0, 0),
        "{:?}",
        verified.examples
    );
    replica.stop().await;
}

/// `loadtest run` makes up barcodes and amounts: it refuses tenants that may be in Alipay's
/// production (said so, or not saying) unless told `--allow-production`, before sending anything.
/// (No stack: the gateway it would send to is a listener that counts connections.)
#[test]
fn run_refuses_tenants_that_may_be_in_production() {
    let gateway = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    gateway.set_nonblocking(true).unwrap();
    let tenant = |slug: &str, environment: Option<&str>| PosTenant {
        slug: slug.into(),
        key_id: "ak_x".into(),
        secret: "s".into(),
        app_id: "2021000000000001".into(),
        tenant_id: None,
        dialect: "openapi".into(),
        sign_type: "RSA2".into(),
        currency: None,
        front_door: None,
        environment: environment.map(str::to_owned),
    };
    let file = TenantsFile {
        gateway_url: Some(format!("http://{}", gateway.local_addr().unwrap())),
        tenants: vec![
            tenant("live", Some("production")),
            tenant("live-url", Some("https://openapi.alipay.com/gateway.do")),
            tenant("unsaid", None),
            tenant("test", Some("http://127.0.0.1:8090/gateway.do")),
        ],
        ..TenantsFile::default()
    };
    let path = std::env::temp_dir().join(format!("{}.json", stack::unique("lt-prod")));
    file.write(&path).unwrap();
    let refused = std::process::Command::new(env!("CARGO_BIN_EXE_loadtest"))
        .args(["run", "--tenants", &path.to_string_lossy(), "--rate", "50", "--duration", "1s", "--quiet"])
        .output()
        .unwrap();
    let _ = std::fs::remove_file(&path);
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(!refused.status.success(), "{stderr}");
    assert!(stderr.contains("3 tenant(s) may be in Alipay's production (live, live-url, unsaid)"), "{stderr}");
    assert!(stderr.contains("--allow-production"), "{stderr}");
    assert!(gateway.accept().is_err(), "nothing was sent");
}
