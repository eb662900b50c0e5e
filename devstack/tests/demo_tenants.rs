//! The demo tenants onboard through the admin API, the sandbox knows them, and each pays; a second
//! `ensure` keeps their credentials, and one that lost `stack.json` gets a working new secret.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::Duration;

use devstack::state::{StackFile, State};
use devstack::tenants::{Endpoints, ensure};
use loadtest::tenants_file::PosTenant;
use stack::{Options, Pos, Stack};
use tenants::model::Dialect;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_demo_tenants_onboard_and_pay() {
    let stack = Stack::start(Options::scaled(0.01)).await;
    let state = State::new(&std::env::temp_dir().join(stack::unique("devstack-"))).unwrap();
    let endpoints = Endpoints {
        admin_url: format!("http://{}", stack.gateway.admin_addr()),
        sandbox_url: stack.sandbox.url(),
        token: stack::ADMIN_TOKEN.into(),
    };
    let mut file = StackFile::default();
    ensure(&state, &endpoints, &mut file).await.unwrap();
    assert_eq!(file.tenants.len(), 2);
    for tenant in &file.tenants {
        pays(&stack, tenant).await;
    }
    let registrations: Vec<sandbox::Registration> =
        serde_json::from_slice(&std::fs::read(state.path("sandbox-merchants.json")).unwrap()).unwrap();
    assert_eq!(registrations.len(), 2, "both registrations kept for the next start");

    let first = file.clone();
    ensure(&state, &endpoints, &mut file).await.unwrap();
    assert_eq!(file.tenants, first.tenants, "existing tenants keep their credentials");

    let mut lost = StackFile::default();
    ensure(&state, &endpoints, &mut lost).await.unwrap();
    for (rotated, old) in lost.tenants.iter().zip(&first.tenants) {
        assert_ne!(rotated.key_id, old.key_id, "a lost secret is rotated");
        assert_eq!(rotated.tenant_id, old.tenant_id);
        pays(&stack, rotated).await;
    }
    std::fs::remove_dir_all(&state.dir).unwrap();
}

/// `tenant` pays (once the gateway knows its credential) and the sandbox agrees.
async fn pays(stack: &Stack, tenant: &PosTenant) {
    let client = loadtest::client::Client::new(&stack.base(), Duration::from_secs(5), 1);
    assert!(client.wait_until_known(tenant).await, "the gateway learns of {}", tenant.slug);
    let dialect: Dialect = tenant.dialect.parse().unwrap();
    let pos = Pos {
        http: reqwest::Client::new(),
        base: stack.base(),
        key_id: tenant.key_id.clone(),
        secret: tenant.secret.clone(),
        alipay_id: tenant.app_id.clone(),
        tenant_id: tenant.tenant_id.unwrap(),
        slug: tenant.slug.clone(),
        dialect,
    };
    let no = stack::trade_no("demo");
    let (status, body) = match dialect {
        Dialect::Openapi => pos.pay(&no, &stack::code("00"), "32.00").await,
        Dialect::Mapi => pos.pay_in(&no, &stack::code("00"), "88.00", tenant.currency.as_deref().unwrap()).await,
    };
    assert_eq!((status, body["status"].as_str()), (200, Some("SUCCESS")), "{}: {body}", tenant.slug);
    let truth = stack.truth(&pos, &no).await.expect("Alipay has the trade");
    assert_eq!(truth["trade_status"], "TRADE_SUCCESS", "{truth}");
}
