//! Every scenario of design §5 on the Global MAPI dialect (MD5 and RSA2 merchants).

use std::time::Duration;

use alipay::mapi::services::{AcquireCancel, OverseasQuery, SpotPay};
use alipay::openapi::trade::{CancelAction, TradeStatus, YesNo};
use alipay::{Amount, Currency, Outcome, SignType, UnknownReason};

use crate::helpers::*;

fn spot_pay(merchant: &Merchant, out_trade_no: &str, scenario: &str) -> SpotPay {
    SpotPay {
        alipay_seller_id: merchant.id.parse().unwrap(),
        partner_trans_id: out_trade_no.parse().unwrap(),
        buyer_identity_code: code(scenario).parse().unwrap(),
        trans_name: "Burger set".parse().unwrap(),
        trans_amount: Amount::parse("58.00", Currency::HKD).unwrap(),
        trans_create_time: "20261125101530".into(),
        quantity: Some(1),
        memo: None,
        extend_info: Some("{\"store_id\":\"7\",\"store_name\":\"Central\"}".into()),
    }
}

fn query(out_trade_no: &str) -> OverseasQuery {
    OverseasQuery { partner_trans_id: out_trade_no.parse().unwrap() }
}

fn cancel(out_trade_no: &str) -> AcquireCancel {
    AcquireCancel { out_trade_no: out_trade_no.parse().unwrap(), timestamp: "1764036930000".into() }
}

fn is_failed(outcome: &Outcome, code: &str) -> bool {
    matches!(outcome, Outcome::Failed(f) if f.is(code))
}

async fn status_of(merchant: &Merchant, no: &str) -> Option<TradeStatus> {
    let (_, reply) = merchant.service(&query(no)).await;
    reply.answer.and_then(|a| a.alipay_trans_status)
}

#[tokio::test]
async fn every_scenario_on_md5_and_rsa2_merchants() {
    let sandbox = start(TIME_SCALE).await;
    for sign_type in [SignType::Md5, SignType::Rsa2] {
        let mut receiver = Receiver::start(0).await;
        let mut merchant = Merchant::mapi(&sandbox, sign_type).await;
        merchant.notify_url = Some(receiver.url.clone());

        // other: paid at once, notified.
        let no = trade_no("m");
        let (_, reply) = merchant.service(&spot_pay(&merchant, &no, "00")).await;
        assert_eq!(reply.outcome, Outcome::Success, "{sign_type}");
        assert_eq!(reply.answer.unwrap().trans_amount.unwrap().to_amount(Currency::HKD).unwrap().minor(), 5800);
        assert_eq!(merchant.truth(&no).await["trade_status"], "TRADE_SUCCESS");
        let body = receiver.until(&no, "TRADE_SUCCESS").await;
        let notification = alipay::notify::verify_notification(&body, "_input_charset", &merchant.verifier).unwrap();
        assert_eq!(notification.get("out_trade_no"), Some(no.as_str()));

        // 50, 51: refused, no trade.
        for (suffix, error) in [("50", "BUYER_BALANCE_NOT_ENOUGH"), ("51", "SOUNDWAVE_PARSER_FAIL")] {
            let no = trade_no("m");
            let (_, reply) = merchant.service(&spot_pay(&merchant, &no, suffix)).await;
            assert!(is_failed(&reply.outcome, error), "{suffix}: {:?}", reply.outcome);
            let (_, queried) = merchant.service(&query(&no)).await;
            assert!(is_failed(&queried.outcome, "TRADE_NOT_EXIST"));
        }

        // 60: paying, pays 10 s later (the notification is the event).
        let no = trade_no("m");
        let (_, reply) = merchant.service(&spot_pay(&merchant, &no, "60")).await;
        assert_eq!(reply.outcome, Outcome::Unknown(UnknownReason::BuyerPaying));
        assert_eq!(status_of(&merchant, &no).await, Some(TradeStatus::WaitBuyerPay));
        receiver.until(&no, "TRADE_SUCCESS").await;
        assert_eq!(status_of(&merchant, &no).await, Some(TradeStatus::TradeSuccess));

        // 61: never pays; a cancel closes it.
        let no = trade_no("m");
        let (_, reply) = merchant.service(&spot_pay(&merchant, &no, "61")).await;
        assert_eq!(reply.outcome, Outcome::Unknown(UnknownReason::BuyerPaying));
        assert_eq!(status_of(&merchant, &no).await, Some(TradeStatus::WaitBuyerPay));
        let (_, cancelled) = merchant.service(&cancel(&no)).await;
        assert_eq!(cancelled.outcome, Outcome::Success);
        assert_eq!(cancelled.answer.unwrap().action, Some(CancelAction::Close));
        let truth = merchant.truth(&no).await;
        assert_eq!(truth["trade_status"], "TRADE_CLOSED");
        let calls: Vec<_> = truth["calls"].as_array().unwrap().iter().map(|c| c["call"].as_str().unwrap()).collect();
        assert_eq!(calls, ["pay", "query", "cancel"], "the ground truth lists the calls made about the trade");

        // 62: system error, yet paid. 63 and 67: system error, nothing created.
        let no = trade_no("m");
        let (_, reply) = merchant.service(&spot_pay(&merchant, &no, "62")).await;
        assert!(matches!(reply.outcome, Outcome::Unknown(UnknownReason::SystemError { .. })));
        assert_eq!(merchant.truth(&no).await["trade_status"], "TRADE_SUCCESS");
        for suffix in ["63", "67"] {
            let no = trade_no("m");
            let (_, reply) = merchant.service(&spot_pay(&merchant, &no, suffix)).await;
            assert!(matches!(reply.outcome, Outcome::Unknown(UnknownReason::SystemError { .. })), "{suffix}");
            assert!(!merchant.has_trade(&no).await);
        }

        // 65: a 502 page, yet paid. 66: a wrong signature, yet paid.
        let no = trade_no("m");
        let (status, reply) = merchant.service(&spot_pay(&merchant, &no, "65")).await;
        assert_eq!(status, 502);
        assert_eq!(reply.outcome, Outcome::Unknown(UnknownReason::Unreadable));
        assert_eq!(merchant.truth(&no).await["trade_status"], "TRADE_SUCCESS");
        let no = trade_no("m");
        let (status, reply) = merchant.service(&spot_pay(&merchant, &no, "66")).await;
        assert_eq!(status, 200);
        assert_eq!(reply.outcome, Outcome::Unknown(UnknownReason::BadSignature));
        assert_eq!(merchant.truth(&no).await["trade_status"], "TRADE_SUCCESS");

        // 68: pays at 58 s; the cancel after that refunds.
        let no = trade_no("m");
        merchant.service(&spot_pay(&merchant, &no, "68")).await;
        receiver.until(&no, "TRADE_SUCCESS").await;
        let (_, cancelled) = merchant.service(&cancel(&no)).await;
        assert_eq!(cancelled.answer.unwrap().action, Some(CancelAction::Refund));
        assert_eq!(merchant.truth(&no).await["refunded_amount"], "58.00");

        // 69: two cancels answer retry_flag=Y, the third closes.
        let no = trade_no("m");
        merchant.service(&spot_pay(&merchant, &no, "69")).await;
        for _ in 0..2 {
            let (_, cancelled) = merchant.service(&cancel(&no)).await;
            assert_eq!(cancelled.outcome, Outcome::Unknown(UnknownReason::RetryLater));
            assert_eq!(cancelled.answer.unwrap().retry_flag, Some(YesNo::Y));
        }
        let (_, cancelled) = merchant.service(&cancel(&no)).await;
        assert_eq!(cancelled.outcome, Outcome::Success);
        assert_eq!(merchant.truth(&no).await["trade_status"], "TRADE_CLOSED");
    }
}

#[tokio::test]
async fn suffix_64_holds_the_mapi_answer() {
    let sandbox = start(TIME_SCALE).await;
    let mut merchant = Merchant::mapi(&sandbox, SignType::Md5).await;
    merchant.http = reqwest::Client::builder().timeout(Duration::from_millis(50)).build().unwrap();
    let no = trade_no("slow");
    let partner = merchant.id.parse().unwrap();
    let meta = alipay::mapi::RequestMeta { partner: &partner, charset: merchant.charset, notify_url: None };
    let form = alipay::mapi::build_request(&spot_pay(&merchant, &no, "64"), &meta, &merchant.signer).unwrap();
    let sent = merchant.http.post(&merchant.gateway).body(form.to_form(merchant.charset).unwrap()).send().await;
    assert!(sent.is_err_and(|e| e.is_timeout()));
    assert_eq!(merchant.truth(&no).await["trade_status"], "TRADE_SUCCESS");
    merchant.http = reqwest::Client::new();
    let (_, reply) = merchant.service(&spot_pay(&merchant, &trade_no("slow"), "64")).await;
    assert_eq!(reply.outcome, Outcome::Success);
}
