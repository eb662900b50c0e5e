//! Alipay's notifications: a forged one is refused and not applied; a genuine one delivered 8
//! times applies once; a static QR payment the gateway never started lands in the ledger.

use std::time::Duration;

use alipay::notify::sign_notification;
use alipay::{Params, SignType, Signer};
use ledger::{TradeKey, TradeState};
use serde_json::json;

use stack::*;

fn notification(pos: &Pos, out_trade_no: &str, status: &str, amount: &str, notify_id: &str, signer: &Signer) -> String {
    let mut params = Params::new();
    for (key, value) in [
        ("notify_time", "2026-11-25 10:15:32"),
        ("notify_type", "trade_status_sync"),
        ("notify_id", notify_id),
        ("app_id", pos.alipay_id.as_str()),
        ("charset", "utf-8"),
        ("version", "1.0"),
        ("trade_no", "2026112522001425130509999999"),
        ("out_trade_no", out_trade_no),
        ("trade_status", status),
        ("total_amount", amount),
        ("gmt_payment", "2026-11-25 10:15:31"),
    ] {
        params.set(key, value);
    }
    sign_notification(&mut params, signer, alipay::Charset::Utf8).unwrap();
    params.to_form(alipay::Charset::Utf8).unwrap()
}

async fn post(stack: &Stack, pos: &Pos, body: String) -> (u16, String) {
    let url = format!("{}/notify/{}", stack.base(), pos.tenant_id);
    let response = stack
        .http
        .post(url)
        .header("content-type", "application/x-www-form-urlencoded")
        .body(body)
        .send()
        .await
        .unwrap();
    (response.status().as_u16(), response.text().await.unwrap())
}

fn alipay_signer() -> Signer {
    Signer::from_secret(SignType::Rsa2, &std::fs::read_to_string(ALIPAY_PRIVATE_FILE).unwrap()).unwrap()
}

#[tokio::test]
async fn forged_notifications_are_refused_and_genuine_ones_apply_once() {
    let stack = Stack::start(Options::default()).await;
    let pos = stack.openapi_tenant().await;
    let no = trade_no("n");
    assert_eq!(pos.pay(&no, &code("61"), "12.50").await.1["status"], "UNKNOWN");
    let alipay = alipay_signer();
    let merchant = Signer::from_secret(SignType::Rsa2, MERCHANT_PRIVATE).unwrap();

    let forged = notification(&pos, &no, "TRADE_SUCCESS", "12.50", "f1", &merchant);
    assert_eq!(post(&stack, &pos, forged).await, (400, "fail".into()));
    let tampered = notification(&pos, &no, "TRADE_SUCCESS", "12.50", "f2", &alipay).replace("12.50", "1.25");
    assert_eq!(post(&stack, &pos, tampered).await.1, "fail");
    let other_app = notification(
        &Pos { alipay_id: "2021999999999999".into(), ..pos.clone() },
        &no,
        "TRADE_SUCCESS",
        "12.50",
        "f3",
        &alipay,
    );
    assert_eq!(post(&stack, &pos, other_app).await.1, "fail");
    let wrong_amount = notification(&pos, &no, "TRADE_SUCCESS", "1.25", "f4", &alipay);
    assert_eq!(post(&stack, &pos, wrong_amount).await, (409, "fail".into()));
    assert_eq!(stack.ledger(&pos, &no).await.unwrap().state, TradeState::Unknown, "nothing forged was applied");

    let genuine = notification(&pos, &no, "TRADE_SUCCESS", "12.50", "g1", &alipay);
    for _ in 0..8 {
        assert_eq!(post(&stack, &pos, genuine.clone()).await, (200, "success".into()));
    }
    let trade = stack.ledger(&pos, &no).await.unwrap();
    assert_eq!(trade.state, TradeState::Success);
    let client = stack.db.client().await;
    let outbox: i64 = client.query_one("SELECT count(*) FROM webhook_outbox", &[]).await.unwrap().get(0);
    let received: i32 = client
        .query_one("SELECT times_received FROM alipay_notifications WHERE notify_id = 'g1'", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!((outbox, received), (1, 8), "applied once, received eight times");
    let (_, answer) = pos.get(&no, 0).await;
    assert_eq!(answer["status"], "SUCCESS");
}

#[tokio::test]
async fn a_static_qr_payment_is_created_from_its_notification() {
    let stack = Stack::start(Options::default()).await;
    let pos = stack.openapi_tenant().await;
    let notify_url = format!("{}/notify/{}", stack.base(), pos.tenant_id);
    let hook = format!("{}/sandbox/static-qr/pay", stack.sandbox.url());
    let paid: serde_json::Value = stack
        .http
        .post(hook)
        .json(&json!({"app_id": pos.alipay_id, "amount": "18.80", "notify_url": notify_url}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let no = paid["out_trade_no"].as_str().unwrap();
    let key = TradeKey::new(pos.tenant_id, no);
    let state = stack.gateway.state();
    let found = tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            let mut waiting = state.finals.wait_for(&key);
            if let Some(trade) = state.store.get(&key).await.unwrap() {
                return trade;
            }
            waiting.finished().await;
        }
    })
    .await
    .expect("the notification created the trade");
    assert_eq!(
        (found.kind, found.state, found.amount.to_string()),
        (ledger::TradeKind::StaticQr, TradeState::Success, "18.80".to_owned())
    );
    let (status, body) = pos.get(no, 0).await;
    assert_eq!((status, body["kind"].as_str()), (200, Some("static_qr")));
}

/// A Global (MAPI) notification signed RSA2 is verified with Alipay's platform key, which signs
/// for every merchant: one that does not name the tenant as its seller proves nothing about the
/// tenant's trades, even genuinely signed.
#[tokio::test]
async fn a_global_notification_must_name_the_tenant_as_its_seller() {
    let stack = Stack::start(Options::default()).await;
    let victim = stack.tenant(tenants::model::Dialect::Mapi, SignType::Rsa2, generous()).await;
    let no = trade_no("gn");
    assert_eq!(victim.pay_in(&no, &code("61"), "12.50", "HKD").await.1["status"], "UNKNOWN");
    let alipay = alipay_signer();
    let mapi = |out_trade_no: &str, notify_id: &str, seller: Option<&str>| {
        let mut params = Params::new();
        for (key, value) in [
            ("notify_time", "2026-11-25 10:15:32"),
            ("notify_type", "trade_status_sync"),
            ("notify_id", notify_id),
            ("notify_action_type", "payByAccountAction"),
            ("out_trade_no", out_trade_no),
            ("trade_no", "2026112522001425130509999998"),
            ("trade_status", "TRADE_SUCCESS"),
            ("total_fee", "12.50"),
            ("currency", "HKD"),
            ("gmt_payment", "2026-11-25 10:15:31"),
        ] {
            params.set(key, value);
        }
        if let Some(seller) = seller {
            params.set("seller_id", seller);
        }
        sign_notification(&mut params, &alipay, alipay::Charset::Utf8).unwrap();
        params.to_form(alipay::Charset::Utf8).unwrap()
    };
    // Another merchant's genuine notification, without a seller: neither its trade nor a new one.
    let unnamed = mapi(&no, "m1", None);
    assert_eq!(post(&stack, &victim, unnamed).await, (400, "fail".into()));
    let static_qr = trade_no("gq");
    assert_eq!(post(&stack, &victim, mapi(&static_qr, "m2", None)).await, (400, "fail".into()));
    let other_seller = mapi(&no, "m3", Some("2088999999999999"));
    assert_eq!(post(&stack, &victim, other_seller).await, (400, "fail".into()));
    assert_eq!(stack.ledger(&victim, &no).await.unwrap().state, TradeState::Unknown, "nothing applied");
    assert!(stack.ledger(&victim, &static_qr).await.is_none(), "no trade created");
    let outbox: i64 =
        stack.db.client().await.query_one("SELECT count(*) FROM webhook_outbox", &[]).await.unwrap().get(0);
    assert_eq!(outbox, 0, "no webhook");
    // Naming the tenant's partner, it applies.
    let named = mapi(&no, "m4", Some(&victim.alipay_id));
    assert_eq!(post(&stack, &victim, named).await, (200, "success".into()));
    assert_eq!(stack.ledger(&victim, &no).await.unwrap().state, TradeState::Success);
}

/// A genuine notification of tenant A's trade, posted to the URL of tenant B on the same Alipay
/// app, is not B's: it neither changes A's trade through B nor creates a trade for B.
#[tokio::test]
async fn a_notification_of_one_tenant_posted_to_another_on_its_app_does_not_apply() {
    let stack = Stack::start(Options::default()).await;
    let a = stack.openapi_tenant().await;
    let b = stack.tenant_sharing_account(&a, SignType::Rsa2).await;
    let no = trade_no("x");
    assert_eq!(a.pay(&no, &code("61"), "12.50").await.1["status"], "UNKNOWN");
    let genuine = notification(&a, &no, "TRADE_SUCCESS", "12.50", "x1", &alipay_signer());
    let (status, body) = post(&stack, &b, genuine.clone()).await;
    assert_eq!((status / 100, body.as_str()), (4, "fail"));
    assert!(stack.ledger(&b, &no).await.is_none(), "B has no such trade");
    assert_eq!(stack.ledger(&a, &no).await.unwrap().state, TradeState::Unknown, "A's trade untouched through B");
    // A payment the ledger does not know, on an app two tenants share, cannot be told apart as
    // either's: it is refused (the bill reconciliation finds it), not given to whoever it reached.
    let unknown = notification(&a, &trade_no("x"), "TRADE_SUCCESS", "8.00", "x2", &alipay_signer());
    assert_eq!(post(&stack, &b, unknown.clone()).await.1, "fail");
    assert_eq!(post(&stack, &a, unknown).await.1, "fail");
    let outbox: i64 =
        stack.db.client().await.query_one("SELECT count(*) FROM webhook_outbox", &[]).await.unwrap().get(0);
    assert_eq!(outbox, 0, "no webhook");
    assert_eq!(post(&stack, &a, genuine).await, (200, "success".into()), "at A's own URL it applies");
}
