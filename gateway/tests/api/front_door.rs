//! The front door (Alipay's own `gateway.do`) as a POS on Alipay's protocol sees it: answers
//! signed with the front door's platform key, the ledger and Alipay's truth agreeing, a forged
//! signature refused with Alipay's code, one tenant's key unable to touch another's trades, and a
//! POS that gives up on an UNKNOWN trade still leaving it final.

use std::time::Duration;

use alipay::openapi::trade::{TradeCancel, TradePay, TradeQuery, TradeRef, TradeRefund, TradeStatus};
use alipay::{Amount, Currency, Outcome, PrivateKey, Signer};
use stack::{Options, Stack, agrees_with_alipay, code, final_trade, trade_no};

const SCALE: f64 = 0.1;

fn cny(text: &str) -> Amount {
    Amount::parse(text, Currency::CNY).unwrap()
}

fn pay(no: &str, scenario: &str, amount: &str) -> TradePay {
    TradePay::new(no.parse().unwrap(), code(scenario).parse().unwrap(), "Combo meal".parse().unwrap(), cny(amount))
}

fn by_number(no: &str) -> TradeRef {
    TradeRef::from(no.parse::<alipay::OutTradeNo>().unwrap())
}

#[tokio::test]
async fn the_front_door_answers_as_alipay_signed_and_the_ledger_agrees() {
    let stack = Stack::start(Options::scaled(SCALE)).await;
    let tenant = stack.openapi_tenant().await;
    let pos = stack.front_door(&tenant).await;

    let no = trade_no("FD");
    let paid = pos.exec(&pay(&no, "00", "88.88"), None).await;
    assert_eq!(paid.outcome, Outcome::Success, "{paid:?}");
    let answer = paid.answer.unwrap();
    assert!(answer.trade_no.is_some());
    assert_eq!(answer.total_amount.unwrap().to_string(), "88.88");
    let trade = stack.ledger(&tenant, &no).await.unwrap();
    assert_eq!(trade.state, ledger::TradeState::Success);
    agrees_with_alipay(&trade, stack.truth(&tenant, &no).await.as_ref()).unwrap();

    let refused = pos.exec(&pay(&trade_no("FD"), "50", "10.00"), None).await;
    let Outcome::Failed(failure) = refused.outcome else { panic!("{refused:?}") };
    assert_eq!((failure.code.as_str(), failure.reason_code()), ("40004", "ACQ.BUYER_BALANCE_NOT_ENOUGH"));

    let query = pos.exec(&TradeQuery { trade: by_number(&no) }, None).await;
    assert_eq!(query.answer.unwrap().trade_status, Some(TradeStatus::TradeSuccess));

    let refund = TradeRefund::new(by_number(&no), "r1".parse().unwrap(), cny("8.88"));
    let first = pos.exec(&refund, None).await.answer.unwrap();
    let again = pos.exec(&refund, None).await.answer.unwrap();
    assert_eq!(
        (first.status.code.as_str(), first.fund_change, first.refund_fee.unwrap().to_string().as_str()),
        ("10000", Some(alipay::openapi::trade::YesNo::Y), "8.88")
    );
    assert_eq!(
        (again.fund_change, again.refund_fee.unwrap().to_string().as_str()),
        (Some(alipay::openapi::trade::YesNo::N), "8.88")
    );
    assert_eq!(stack.ledger(&tenant, &no).await.unwrap().refunded, cny("8.88"));

    // Signed with a key the front door does not know: Alipay's code, signed by the front door.
    let forger = pos.with_signer(Signer::rsa2(PrivateKey::generate().unwrap().into()).unwrap().into());
    let forged = forger.exec(&TradeQuery { trade: by_number(&no) }, None).await;
    let Outcome::Failed(failure) = forged.outcome else { panic!("{forged:?}") };
    assert_eq!((failure.code.as_str(), failure.reason_code()), ("40002", "isv.invalid-signature"));

    // A method the front door does not serve: Alipay's invalid-method answer, not a 404.
    let mut params = pos.params(&TradeQuery { trade: by_number(&no) }, None);
    params.set("method", "alipay.trade.nonexistent");
    pos.sign(&mut params);
    let text = pos.send(&params).await;
    assert!(text.starts_with("{\"alipay_trade_nonexistent_response\":{\"code\":\"40002\""), "{text}");
    assert!(text.contains("isv.invalid-method"), "{text}");
}

#[tokio::test]
async fn one_tenants_front_door_cannot_touch_another_tenants_trades() {
    let stack = Stack::start(Options::scaled(SCALE)).await;
    let (a, b) = (stack.openapi_tenant().await, stack.openapi_tenant().await);
    let (pos_a, pos_b) = (stack.front_door(&a).await, stack.front_door(&b).await);
    let no = trade_no("B");
    assert_eq!(pos_b.exec(&pay(&no, "00", "20.00"), None).await.outcome, Outcome::Success);

    let query = pos_a.exec(&TradeQuery { trade: by_number(&no) }, None).await;
    let Outcome::Failed(failure) = query.outcome else { panic!("{query:?}") };
    assert_eq!(failure.reason_code(), "ACQ.TRADE_NOT_EXIST");
    let refund = pos_a.exec(&TradeRefund::new(by_number(&no), "x1".parse().unwrap(), cny("20.00")), None).await;
    assert!(matches!(refund.outcome, Outcome::Failed(ref f) if f.reason_code() == "ACQ.TRADE_NOT_EXIST"), "{refund:?}");
    let cancel = pos_a.exec(&TradeCancel { trade: by_number(&no) }, None).await;
    assert_eq!(cancel.answer.unwrap().action, None, "nothing of A's to cancel");
    // A's key under B's app id is a forgery (answered under B's platform key).
    let posing = pos_a.with_app_id(pos_b.app_id.clone());
    let forged = posing.send(&posing.params(&TradeCancel { trade: by_number(&no) }, None)).await;
    assert!(forged.contains("\"sub_code\":\"isv.invalid-signature\""), "{forged}");

    let trade = stack.ledger(&b, &no).await.unwrap();
    assert_eq!((trade.state, trade.refunded), (ledger::TradeState::Success, cny("0.00")));
    agrees_with_alipay(&trade, stack.truth(&b, &no).await.as_ref()).unwrap();
}

#[tokio::test]
async fn a_pos_that_gives_up_on_an_unknown_payment_still_gets_a_final_trade() {
    let stack = Stack::start(Options::scaled(SCALE)).await;
    let _reconciler = stack.start_reconciler(stack.reconciler_config()).await;
    let tenant = stack.openapi_tenant().await;
    let pos = stack.front_door(&tenant).await;
    let no = trade_no("GU");
    // The buyer never confirms (scenario 61): Alipay's 10003, and the POS walks away.
    let paying = pos.exec(&pay(&no, "61", "12.00"), None).await;
    assert_eq!(paying.answer.unwrap().status.code, "10003");
    let trade = final_trade(&stack, &tenant, &no, Duration::from_secs(30)).await;
    assert_eq!(trade.state, ledger::TradeState::Cancelled);
    agrees_with_alipay(&trade, stack.truth(&tenant, &no).await.as_ref()).unwrap();
    let query = pos.exec(&TradeQuery { trade: by_number(&no) }, None).await;
    assert_eq!(query.answer.unwrap().trade_status, Some(TradeStatus::TradeClosed));
}
