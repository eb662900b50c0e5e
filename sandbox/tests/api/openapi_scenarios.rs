//! Every scenario of design §5 on the OpenAPI dialect, checked against the sandbox's ground truth.

use std::time::Duration;

use alipay::openapi::trade::{CancelAction, TradeCancel, TradePay, TradeQuery, TradeStatus, YesNo};
use alipay::{Amount, Currency, Outcome, SignType, UnknownReason};

use crate::helpers::*;

fn pay(out_trade_no: &str, scenario: &str) -> TradePay {
    TradePay::new(
        out_trade_no.parse().unwrap(),
        code(scenario).parse().unwrap(),
        "Combo meal #3".parse().unwrap(),
        Amount::parse("88.88", Currency::CNY).unwrap(),
    )
}

fn query(out_trade_no: &str) -> TradeQuery {
    TradeQuery { trade: out_trade_no.parse::<alipay::OutTradeNo>().unwrap().into() }
}

fn cancel(out_trade_no: &str) -> TradeCancel {
    TradeCancel { trade: out_trade_no.parse::<alipay::OutTradeNo>().unwrap().into() }
}

fn is_failed(outcome: &Outcome, code: &str) -> bool {
    matches!(outcome, Outcome::Failed(f) if f.is(code))
}

#[tokio::test]
async fn other_suffixes_pay_at_once_and_notify() {
    let sandbox = start(TIME_SCALE).await;
    let mut receiver = Receiver::start(0).await;
    let mut merchant = Merchant::openapi(&sandbox, SignType::Rsa2).await;
    merchant.notify_url = Some(receiver.url.clone());
    let no = trade_no("paid");
    let (status, reply) = merchant.call(&pay(&no, "00")).await;
    assert_eq!(status, 200);
    assert_eq!(reply.outcome, Outcome::Success);
    let answer = reply.answer.unwrap();
    assert_eq!(answer.out_trade_no.unwrap().as_str(), no);
    assert_eq!(answer.total_amount.unwrap().to_amount(Currency::CNY).unwrap().minor(), 8888);
    let truth = merchant.truth(&no).await;
    assert_eq!(truth["trade_status"], "TRADE_SUCCESS");
    assert_eq!(truth["total_amount"], "88.88");
    let body = receiver.until(&no, "TRADE_SUCCESS").await;
    let notification = alipay::notify::verify_notification(&body, "charset", &merchant.verifier).unwrap();
    assert_eq!(notification.get("out_trade_no"), Some(no.as_str()));
    assert_eq!(notification.get("trade_status"), Some("TRADE_SUCCESS"));
}

#[tokio::test]
async fn suffix_50_and_51_fail_without_a_trade() {
    let sandbox = start(TIME_SCALE).await;
    let merchant = Merchant::openapi(&sandbox, SignType::Rsa2).await;
    for (suffix, code) in [("50", "BUYER_BALANCE_NOT_ENOUGH"), ("51", "PAYMENT_AUTH_CODE_INVALID")] {
        let no = trade_no("fail");
        let (_, reply) = merchant.call(&pay(&no, suffix)).await;
        assert!(is_failed(&reply.outcome, code), "{suffix}: {:?}", reply.outcome);
        let (_, queried) = merchant.call(&query(&no)).await;
        assert!(is_failed(&queried.outcome, "TRADE_NOT_EXIST"));
        assert!(!merchant.has_trade(&no).await);
    }
}

#[tokio::test]
async fn suffix_60_pays_ten_seconds_later() {
    let sandbox = start(TIME_SCALE).await;
    let mut receiver = Receiver::start(0).await;
    let mut merchant = Merchant::openapi(&sandbox, SignType::Rsa2).await;
    merchant.notify_url = Some(receiver.url.clone());
    let no = trade_no("later");
    let (_, reply) = merchant.call(&pay(&no, "60")).await;
    assert_eq!(reply.outcome, Outcome::Unknown(UnknownReason::BuyerPaying));
    assert!(reply.answer.unwrap().trade_no.is_some(), "a pending trade already has a trade_no");
    let (_, queried) = merchant.call(&query(&no)).await;
    assert_eq!(queried.answer.unwrap().trade_status, Some(TradeStatus::WaitBuyerPay));
    // The buyer pays on the sandbox's timer; the notification is the event.
    let body = receiver.until(&no, "TRADE_SUCCESS").await;
    alipay::notify::verify_notification(&body, "charset", &merchant.verifier).unwrap();
    let (_, queried) = merchant.call(&query(&no)).await;
    assert_eq!(queried.answer.unwrap().trade_status, Some(TradeStatus::TradeSuccess));
}

#[tokio::test]
async fn suffix_61_never_pays_and_a_cancel_closes_it() {
    let sandbox = start(TIME_SCALE).await;
    let merchant = Merchant::openapi(&sandbox, SignType::Rsa2).await;
    let no = trade_no("never");
    let (_, reply) = merchant.call(&pay(&no, "61")).await;
    assert_eq!(reply.outcome, Outcome::Unknown(UnknownReason::BuyerPaying));
    let (_, cancelled) = merchant.call(&cancel(&no)).await;
    assert_eq!(cancelled.outcome, Outcome::Success);
    let answer = cancelled.answer.unwrap();
    assert_eq!(answer.action, Some(CancelAction::Close));
    assert_eq!(answer.retry_flag, Some(YesNo::N));
    assert_eq!(merchant.truth(&no).await["trade_status"], "TRADE_CLOSED");
    assert_eq!(merchant.truth(&no).await["refunded_amount"], "0.00");
}

#[tokio::test]
async fn suffix_62_answers_system_error_yet_paid() {
    let sandbox = start(TIME_SCALE).await;
    let merchant = Merchant::openapi(&sandbox, SignType::Rsa2).await;
    let no = trade_no("se");
    let (_, reply) = merchant.call(&pay(&no, "62")).await;
    assert!(matches!(reply.outcome, Outcome::Unknown(UnknownReason::SystemError { .. })), "{:?}", reply.outcome);
    assert_eq!(merchant.truth(&no).await["trade_status"], "TRADE_SUCCESS");
    let (_, queried) = merchant.call(&query(&no)).await;
    assert_eq!(queried.answer.unwrap().trade_status, Some(TradeStatus::TradeSuccess));
}

#[tokio::test]
async fn suffix_63_answers_system_error_and_creates_nothing() {
    let sandbox = start(TIME_SCALE).await;
    let merchant = Merchant::openapi(&sandbox, SignType::Rsa2).await;
    let no = trade_no("se");
    let (_, reply) = merchant.call(&pay(&no, "63")).await;
    assert!(matches!(reply.outcome, Outcome::Unknown(UnknownReason::SystemError { .. })));
    let (_, queried) = merchant.call(&query(&no)).await;
    assert!(is_failed(&queried.outcome, "TRADE_NOT_EXIST"));
}

#[tokio::test]
async fn suffix_64_holds_the_answer_thirty_seconds() {
    let sandbox = start(TIME_SCALE).await;
    let mut merchant = Merchant::openapi(&sandbox, SignType::Rsa2).await;
    // A client that gives up well before the 300 ms (30 s scaled) hold times out...
    merchant.http = reqwest::Client::builder().timeout(Duration::from_millis(50)).build().unwrap();
    let no = trade_no("slow");
    let form = merchant.openapi_form(&pay(&no, "64"));
    let timed_out = merchant.http.post(&merchant.gateway).body(form).send().await;
    assert!(timed_out.is_err_and(|e| e.is_timeout()));
    // ...while the trade was paid all the same, and a patient client hears success.
    assert_eq!(merchant.truth(&no).await["trade_status"], "TRADE_SUCCESS");
    merchant.http = reqwest::Client::new();
    let other = trade_no("slow");
    let (_, reply) = merchant.call(&pay(&other, "64")).await;
    assert_eq!(reply.outcome, Outcome::Success);
}

#[tokio::test]
async fn suffix_65_is_a_502_page_yet_paid() {
    let sandbox = start(TIME_SCALE).await;
    let merchant = Merchant::openapi(&sandbox, SignType::Rsa2).await;
    let no = trade_no("gw");
    let (status, body) = merchant.post(merchant.openapi_form(&pay(&no, "65"))).await;
    assert_eq!(status, 502);
    assert!(String::from_utf8_lossy(&body).contains("<html>"));
    let reply = alipay::openapi::read_reply::<TradePay>(&body, merchant.charset, &merchant.verifier);
    assert_eq!(reply.outcome, Outcome::Unknown(UnknownReason::Unreadable));
    assert_eq!(merchant.truth(&no).await["trade_status"], "TRADE_SUCCESS");
}

#[tokio::test]
async fn suffix_66_is_wrongly_signed_yet_paid() {
    let sandbox = start(TIME_SCALE).await;
    let merchant = Merchant::openapi(&sandbox, SignType::Rsa2).await;
    let no = trade_no("sig");
    let (status, reply) = merchant.call(&pay(&no, "66")).await;
    assert_eq!(status, 200);
    assert_eq!(reply.outcome, Outcome::Unknown(UnknownReason::BadSignature));
    assert_eq!(merchant.truth(&no).await["trade_status"], "TRADE_SUCCESS");
}

#[tokio::test]
async fn suffix_67_is_call_limited_and_creates_nothing() {
    let sandbox = start(TIME_SCALE).await;
    let merchant = Merchant::openapi(&sandbox, SignType::Rsa2).await;
    let no = trade_no("limit");
    let (_, reply) = merchant.call(&pay(&no, "67")).await;
    assert_eq!(reply.outcome, Outcome::Unknown(UnknownReason::RateLimited));
    assert!(!merchant.has_trade(&no).await);
}

#[tokio::test]
async fn suffix_68_pays_at_58_seconds_so_the_cancel_at_60_refunds() {
    let sandbox = start(TIME_SCALE).await;
    let mut receiver = Receiver::start(0).await;
    let mut merchant = Merchant::openapi(&sandbox, SignType::Rsa2).await;
    merchant.notify_url = Some(receiver.url.clone());
    let no = trade_no("race");
    let (_, reply) = merchant.call(&pay(&no, "68")).await;
    assert_eq!(reply.outcome, Outcome::Unknown(UnknownReason::BuyerPaying));
    assert_eq!(merchant.truth(&no).await["trade_status"], "WAIT_BUYER_PAY");
    receiver.until(&no, "TRADE_SUCCESS").await;
    let (_, cancelled) = merchant.call(&cancel(&no)).await;
    assert_eq!(cancelled.outcome, Outcome::Success);
    assert_eq!(cancelled.answer.unwrap().action, Some(CancelAction::Refund));
    let truth = merchant.truth(&no).await;
    assert_eq!(truth["trade_status"], "TRADE_CLOSED");
    assert_eq!(truth["refunded_amount"], "88.88");
}

#[tokio::test]
async fn suffix_69_needs_two_cancel_retries() {
    let sandbox = start(TIME_SCALE).await;
    let merchant = Merchant::openapi(&sandbox, SignType::Rsa2).await;
    let no = trade_no("retry");
    let (_, reply) = merchant.call(&pay(&no, "69")).await;
    assert_eq!(reply.outcome, Outcome::Unknown(UnknownReason::BuyerPaying));
    for _ in 0..2 {
        let (_, cancelled) = merchant.call(&cancel(&no)).await;
        assert_eq!(cancelled.outcome, Outcome::Unknown(UnknownReason::RetryLater));
        assert_eq!(cancelled.answer.unwrap().retry_flag, Some(YesNo::Y));
        assert_eq!(merchant.truth(&no).await["trade_status"], "WAIT_BUYER_PAY");
    }
    let (_, cancelled) = merchant.call(&cancel(&no)).await;
    assert_eq!(cancelled.outcome, Outcome::Success);
    assert_eq!(cancelled.answer.unwrap().action, Some(CancelAction::Close));
    assert_eq!(merchant.truth(&no).await["trade_status"], "TRADE_CLOSED");
}

#[tokio::test]
async fn rsa_merchants_get_sha1_signed_answers() {
    let sandbox = start(TIME_SCALE).await;
    let merchant = Merchant::openapi(&sandbox, SignType::Rsa).await;
    let no = trade_no("rsa");
    let (_, reply) = merchant.call(&pay(&no, "00")).await;
    assert_eq!(reply.outcome, Outcome::Success);
}
