//! Real trade state: refunds, repeats of an out_trade_no, order QR codes, close, oauth and the
//! static QR code, on both dialects where the dialect has the call.

use alipay::mapi::services::{AcquirePrecreate, SpotPay, SpotRefund};
use alipay::openapi::oauth::OauthToken;
use alipay::openapi::trade::{
    RefundQuery, TradeClose, TradePay, TradePrecreate, TradeQuery, TradeRefund, TradeStatus, YesNo,
};
use alipay::{Amount, Currency, OutTradeNo, Outcome, SignType, UnknownReason};
use serde_json::json;

use crate::helpers::*;

fn cny(text: &str) -> Amount {
    Amount::parse(text, Currency::CNY).unwrap()
}

fn pay(no: &str, code: &str, amount: &str) -> TradePay {
    TradePay::new(no.parse().unwrap(), code.parse().unwrap(), "Noodles".parse().unwrap(), cny(amount))
}

fn refund(no: &str, request: &str, amount: &str) -> TradeRefund {
    TradeRefund::new(no.parse::<OutTradeNo>().unwrap().into(), request.parse().unwrap(), cny(amount))
}

fn failed_with(outcome: &Outcome, code: &str) -> bool {
    matches!(outcome, Outcome::Failed(f) if f.is(code))
}

#[tokio::test]
async fn refunds_are_cumulative_and_idempotent() {
    let sandbox = start(TIME_SCALE).await;
    let merchant = Merchant::openapi(&sandbox, SignType::Rsa2).await;
    let no = trade_no("r");
    assert_eq!(merchant.call(&pay(&no, &code("00"), "100.00")).await.1.outcome, Outcome::Success);

    let (_, first) = merchant.call(&refund(&no, "r1", "30.00")).await;
    let first = first.answer.unwrap();
    assert_eq!((first.fund_change, first.refund_fee.unwrap().to_string()), (Some(YesNo::Y), "30.00".into()));
    let (_, again) = merchant.call(&refund(&no, "r1", "30.00")).await;
    let again = again.answer.unwrap();
    assert_eq!((again.fund_change, again.refund_fee.unwrap().to_string()), (Some(YesNo::N), "30.00".into()));
    let (_, changed) = merchant.call(&refund(&no, "r1", "31.00")).await;
    assert!(failed_with(&changed.outcome, "DISCORDANT_REPEAT_REQUEST"));
    let (_, too_much) = merchant.call(&refund(&no, "r2", "70.01")).await;
    assert!(failed_with(&too_much.outcome, "REFUND_AMT_NOT_EQUAL_TOTAL"));
    let (_, second) = merchant.call(&refund(&no, "r2", "70.00")).await;
    assert_eq!(second.answer.unwrap().refund_fee.unwrap().to_string(), "100.00");
    let truth = merchant.truth(&no).await;
    assert_eq!(
        (truth["refunded_amount"].as_str(), truth["trade_status"].as_str()),
        (Some("100.00"), Some("TRADE_CLOSED"))
    );

    let query = RefundQuery { trade: no.parse::<OutTradeNo>().unwrap().into(), out_request_no: "r2".parse().unwrap() };
    let found = merchant.call(&query).await.1.answer.unwrap();
    assert_eq!(found.refund_status.as_deref(), Some("REFUND_SUCCESS"));
    assert_eq!(found.refund_amount.unwrap().to_string(), "70.00");
    let unknown =
        RefundQuery { trade: no.parse::<OutTradeNo>().unwrap().into(), out_request_no: "r9".parse().unwrap() };
    let (_, none) = merchant.call(&unknown).await;
    assert_eq!(none.outcome, Outcome::Success);
    assert_eq!(none.answer.unwrap().refund_status, None);

    let unpaid = trade_no("r");
    merchant.call(&pay(&unpaid, &code("61"), "5.00")).await;
    assert!(failed_with(&merchant.call(&refund(&unpaid, "r1", "5.00")).await.1.outcome, "TRADE_STATUS_ERROR"));
    assert!(failed_with(&merchant.call(&refund(&trade_no("none"), "r1", "5.00")).await.1.outcome, "TRADE_NOT_EXIST"));
}

#[tokio::test]
async fn reusing_an_out_trade_no_gives_its_real_status() {
    let sandbox = start(TIME_SCALE).await;
    let merchant = Merchant::openapi(&sandbox, SignType::Rsa2).await;
    let no = trade_no("re");
    merchant.call(&pay(&no, &code("00"), "10.00")).await;
    let (_, same) = merchant.call(&pay(&no, &code("00"), "10.00")).await;
    assert_eq!(
        same.outcome,
        Outcome::Unknown(UnknownReason::AlreadyProcessed { code: "ACQ.TRADE_HAS_SUCCESS".into() })
    );
    let (_, other_buyer) = merchant.call(&pay(&no, "289999999999999900", "10.00")).await;
    assert!(failed_with(&other_buyer.outcome, "TRADE_BUYER_NOT_MATCH"));
    let (_, other_amount) = merchant.call(&pay(&no, &code("00"), "10.01")).await;
    assert!(failed_with(&other_amount.outcome, "CONTEXT_INCONSISTENT"));

    let pending = trade_no("re");
    merchant.call(&pay(&pending, &code("61"), "10.00")).await;
    let (_, still) = merchant.call(&pay(&pending, &code("61"), "10.00")).await;
    assert_eq!(still.outcome, Outcome::Unknown(UnknownReason::BuyerPaying));
    merchant.call(&alipay::openapi::trade::TradeCancel { trade: pending.parse::<OutTradeNo>().unwrap().into() }).await;
    let (_, closed) = merchant.call(&pay(&pending, &code("61"), "10.00")).await;
    assert!(failed_with(&closed.outcome, "TRADE_HAS_CLOSE"));

    let mapi = Merchant::mapi(&sandbox, SignType::Md5).await;
    let spot = |code: &str, amount: &str| SpotPay {
        alipay_seller_id: mapi.id.parse().unwrap(),
        partner_trans_id: no.parse().unwrap(),
        buyer_identity_code: code.parse().unwrap(),
        trans_name: "Noodles".parse().unwrap(),
        trans_amount: Amount::parse(amount, Currency::HKD).unwrap(),
        trans_create_time: "20261125101530".into(),
        quantity: None,
        memo: None,
        extend_info: None,
    };
    assert_eq!(mapi.service(&spot(&code("00"), "10.00")).await.1.outcome, Outcome::Success);
    let (_, other_buyer) = mapi.service(&spot("289999999999999900", "10.00")).await;
    assert!(failed_with(&other_buyer.outcome, "TRADE_BUYER_NOT_MATCH"));
    let (_, other_amount) = mapi.service(&spot(&code("00"), "11.00")).await;
    assert!(failed_with(&other_amount.outcome, "CONTEXT_INCONSISTENT"));
}

#[tokio::test]
async fn order_qr_codes_are_paid_by_a_scanning_buyer_and_can_be_closed() {
    let sandbox = start(TIME_SCALE).await;
    let mut receiver = Receiver::start(0).await;
    let mut merchant = Merchant::openapi(&sandbox, SignType::Rsa2).await;
    merchant.notify_url = Some(receiver.url.clone());
    let no = trade_no("qr");
    let order = TradePrecreate::new(no.parse().unwrap(), "Table 4".parse().unwrap(), cny("42.00"));
    let (_, created) = merchant.call(&order).await;
    assert_eq!(created.outcome, Outcome::Success);
    let qr_code = created.answer.unwrap().qr_code.unwrap();
    assert!(qr_code.starts_with("https://qr.alipay.com/"));
    let (_, again) = merchant.call(&order).await;
    assert_eq!(again.answer.unwrap().qr_code.unwrap(), qr_code, "a repeat gives the same code");
    let query = TradeQuery { trade: no.parse::<OutTradeNo>().unwrap().into() };
    assert!(failed_with(&merchant.call(&query).await.1.outcome, "TRADE_NOT_EXIST"), "not shown until scanned");

    let (status, scanned) = merchant.hook("qr/scan", json!({"qr_code": qr_code})).await;
    assert_eq!((status.as_u16(), scanned["trade_status"].as_str()), (200, Some("TRADE_SUCCESS")));
    receiver.until(&no, "TRADE_SUCCESS").await;
    assert_eq!(merchant.call(&query).await.1.answer.unwrap().trade_status, Some(TradeStatus::TradeSuccess));
    let close = TradeClose { trade: no.parse::<OutTradeNo>().unwrap().into(), operator_id: None };
    assert!(failed_with(&merchant.call(&close).await.1.outcome, "TRADE_STATUS_ERROR"));

    // Scanned but not paid: close works, and the code can no longer be paid.
    let unpaid = trade_no("qr");
    let order = TradePrecreate::new(unpaid.parse().unwrap(), "Table 5".parse().unwrap(), cny("8.00"));
    let qr_code = merchant.call(&order).await.1.answer.unwrap().qr_code.unwrap();
    merchant.hook("qr/scan", json!({"qr_code": qr_code, "pay": false})).await;
    let close = TradeClose { trade: unpaid.parse::<OutTradeNo>().unwrap().into(), operator_id: None };
    assert_eq!(merchant.call(&close).await.1.outcome, Outcome::Success);
    let (status, _) = merchant.hook("qr/scan", json!({"qr_code": qr_code})).await;
    assert_eq!(status, 409);
    assert_eq!(merchant.truth(&unpaid).await["trade_status"], "TRADE_CLOSED");
}

#[tokio::test]
async fn mapi_precreate_and_refund() {
    let sandbox = start(TIME_SCALE).await;
    let merchant = Merchant::mapi(&sandbox, SignType::Rsa2).await;
    let no = trade_no("mq");
    let order = AcquirePrecreate {
        out_trade_no: no.parse().unwrap(),
        subject: "Table 9".parse().unwrap(),
        total_fee: Amount::parse("20.00", Currency::HKD).unwrap(),
        timestamp: "1764036930000".into(),
        extend_params: None,
    };
    let (_, created) = merchant.service(&order).await;
    assert_eq!(created.outcome, Outcome::Success);
    let qr_code = created.answer.unwrap().qr_code.unwrap();
    merchant.hook("qr/scan", json!({"qr_code": qr_code})).await;
    let refund = |id: &str, amount: &str| SpotRefund {
        partner_trans_id: no.parse().unwrap(),
        partner_refund_id: id.parse().unwrap(),
        refund_amount: Amount::parse(amount, Currency::HKD).unwrap(),
        refund_reason: None,
    };
    assert_eq!(merchant.service(&refund("f1", "5.00")).await.1.outcome, Outcome::Success);
    assert_eq!(merchant.service(&refund("f1", "5.00")).await.1.outcome, Outcome::Success);
    assert!(failed_with(&merchant.service(&refund("f1", "6.00")).await.1.outcome, "REPEATED_REFUNDMENT_REQUEST"));
    assert!(failed_with(&merchant.service(&refund("f2", "15.01")).await.1.outcome, "RETURN_AMOUNT_EXCEED"));
    assert_eq!(merchant.truth(&no).await["refunded_amount"], "5.00");
}

#[tokio::test]
async fn oauth_codes_work_once() {
    let sandbox = start(TIME_SCALE).await;
    let merchant = Merchant::openapi(&sandbox, SignType::Rsa2).await;
    let (status, issued) =
        merchant.hook("oauth/codes", json!({"app_id": merchant.id, "user_id": "2088102146225135"})).await;
    assert_eq!(status, 201);
    let code = issued["code"].as_str().unwrap();
    let (_, reply) = merchant.call(&OauthToken::with_code(code)).await;
    assert_eq!(reply.outcome, Outcome::Success);
    let answer = reply.answer.unwrap();
    assert_eq!(answer.user_id.unwrap().as_str(), "2088102146225135");
    assert!(answer.access_token.is_some());
    let (_, reused) = merchant.call(&OauthToken::with_code(code)).await;
    assert!(failed_with(&reused.outcome, "isv.code-invalid"), "{:?}", reused.outcome);
}

#[tokio::test]
async fn a_static_qr_payment_exists_only_at_alipay_and_is_notified() {
    let sandbox = start(TIME_SCALE).await;
    let mut receiver = Receiver::start(0).await;
    for merchant in [Merchant::openapi(&sandbox, SignType::Rsa2).await, Merchant::mapi(&sandbox, SignType::Md5).await] {
        let id_field = if merchant.id.starts_with("2088") { "partner" } else { "app_id" };
        let (status, trade) = merchant
            .hook("static-qr/pay", json!({id_field: merchant.id, "amount": "23.50", "notify_url": receiver.url}))
            .await;
        assert_eq!(status, 201, "{trade}");
        let no = trade["out_trade_no"].as_str().unwrap();
        let body = receiver.until(no, "TRADE_SUCCESS").await;
        let field = if id_field == "partner" { "_input_charset" } else { "charset" };
        let notification = alipay::notify::verify_notification(&body, field, &merchant.verifier).unwrap();
        let amount_field = if id_field == "partner" { "total_fee" } else { "total_amount" };
        assert_eq!(notification.get(amount_field), Some("23.50"));
    }
}

#[tokio::test]
async fn concurrent_identical_payments_make_one_trade() {
    let sandbox = start(TIME_SCALE).await;
    let mut receiver = Receiver::start(0).await;
    let mut merchant = Merchant::openapi(&sandbox, SignType::Rsa2).await;
    merchant.notify_url = Some(receiver.url.clone());
    let merchant = std::sync::Arc::new(merchant);
    let no = trade_no("dup");
    let calls: Vec<_> = (0..50)
        .map(|_| {
            let merchant = merchant.clone();
            let no = no.clone();
            tokio::spawn(async move { merchant.call(&pay(&no, &code("00"), "9.99")).await.1.outcome })
        })
        .collect();
    let mut successes = 0;
    for call in calls {
        match call.await.unwrap() {
            Outcome::Success => successes += 1,
            Outcome::Unknown(UnknownReason::AlreadyProcessed { .. }) => {}
            other => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!(successes, 1, "exactly one request created (and paid) the trade");
    let first = receiver.until(&no, "TRADE_SUCCESS").await;
    let stats: serde_json::Value =
        reqwest::get(format!("{}/stats", merchant.hooks)).await.unwrap().json().await.unwrap();
    assert_eq!(stats["trades"], 1);
    assert!(!first.is_empty());
}
