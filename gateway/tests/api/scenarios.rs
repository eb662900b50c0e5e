//! Every sandbox scenario of design §5 gives the POS the right answer and the ledger the right
//! state; nothing becomes FAILED without proof.

use ledger::TradeState;
use serde_json::Value;

use stack::*;

struct Expect {
    suffix: &'static str,
    /// What the POS hears. Where Alipay paid but its answer is lost (62, 64, 65, 66), Alipay's
    /// notification may prove the payment first: SUCCESS is then the right answer too.
    answer: &'static str,
    /// What the ledger holds right after.
    ledger: TradeState,
    /// Whether Alipay's ground truth has a paid trade.
    paid_at_alipay: Option<bool>,
}

const fn expect(
    suffix: &'static str,
    answer: &'static str,
    ledger: TradeState,
    paid_at_alipay: Option<bool>,
) -> Expect {
    Expect { suffix, answer, ledger, paid_at_alipay }
}

const SCENARIOS: [Expect; 13] = [
    expect("00", "SUCCESS", TradeState::Success, Some(true)),
    expect("50", "FAILED", TradeState::Failed, None),
    expect("51", "FAILED", TradeState::Failed, None),
    expect("60", "UNKNOWN", TradeState::Unknown, Some(false)),
    expect("61", "UNKNOWN", TradeState::Unknown, Some(false)),
    expect("62", "UNKNOWN", TradeState::Unknown, Some(true)),
    expect("63", "UNKNOWN", TradeState::Unknown, None),
    expect("64", "UNKNOWN", TradeState::Unknown, Some(true)),
    expect("65", "UNKNOWN", TradeState::Unknown, Some(true)),
    expect("66", "UNKNOWN", TradeState::Unknown, Some(true)),
    expect("67", "UNKNOWN", TradeState::Unknown, None),
    expect("68", "UNKNOWN", TradeState::Unknown, Some(false)),
    expect("69", "UNKNOWN", TradeState::Unknown, Some(false)),
];

async fn run_all(stack: &Stack, pos: &Pos, currency: Option<&str>) {
    let index = stack.due_index();
    for case in SCENARIOS {
        let no = trade_no(&format!("s{}", case.suffix));
        let (status, body) = match currency {
            None => pos.pay(&no, &code(case.suffix), "88.88").await,
            Some(currency) => pos.pay_in(&no, &code(case.suffix), "58.00", currency).await,
        };
        assert_eq!(status, 200, "{}: {body}", case.suffix);
        let proven_by_notification = case.paid_at_alipay == Some(true) && case.answer == "UNKNOWN";
        let answered = body["status"].as_str().unwrap();
        assert!(
            answered == case.answer || (proven_by_notification && answered == "SUCCESS"),
            "{}: {body}",
            case.suffix
        );
        let trade = stack.ledger(pos, &no).await.unwrap();
        let state_ok = trade.state == case.ledger || (proven_by_notification && trade.state == TradeState::Success);
        assert!(state_ok, "{}: {}", case.suffix, trade.state);
        if case.answer != "FAILED" {
            assert_ne!(trade.state, TradeState::Failed, "{}: FAILED needs proof", case.suffix);
        }
        if case.answer == "FAILED" {
            assert!(body["failure"]["code"].as_str().is_some_and(|c| !c.is_empty()), "{body}");
        }
        if trade.state == TradeState::Unknown {
            assert!(
                trade.next_check_at.is_some() && trade.deadline.is_some(),
                "{}: UNKNOWN trades are scheduled",
                case.suffix
            );
            // Armed, unless Alipay's notification settled the trade (and disarmed it) meanwhile.
            let armed = index.due_at(&trade.key).await.unwrap();
            let settled_since = || async { stack.ledger(pos, &no).await.unwrap().state.is_final() };
            assert!(armed.is_some() || settled_since().await, "{}: the due-index is armed", case.suffix);
        }
        let truth = stack.truth(pos, &no).await;
        match case.paid_at_alipay {
            None => assert!(truth.is_none(), "{}: no trade at Alipay", case.suffix),
            Some(paid) => {
                let truth: Value = truth.unwrap();
                let status = truth["trade_status"].as_str().unwrap();
                assert_eq!(status == "TRADE_SUCCESS", paid, "{}: {truth}", case.suffix);
            }
        }
    }
}

fn scenario_options() -> Options {
    Options { upstream_timeout_ms: 1_000, time_scale: 0.2, ..Options::default() }
}

#[tokio::test]
async fn every_scenario_on_an_openapi_tenant() {
    // At this scale the buyer of scenario 60 pays after 2 s (long after the checks below), and
    // scenario 64's 6 s hold outlasts a 1 s upstream deadline, which a loaded machine still meets.
    let stack = Stack::start(scenario_options()).await;
    let pos = stack.openapi_tenant().await;
    run_all(&stack, &pos, None).await;
}

#[tokio::test]
async fn every_scenario_on_a_global_md5_tenant() {
    let stack = Stack::start(scenario_options()).await;
    let pos = stack.mapi_tenant().await;
    run_all(&stack, &pos, Some("HKD")).await;
}

#[tokio::test]
async fn a_payment_confirmed_later_reaches_a_waiting_pos() {
    let stack = Stack::start(Options::default()).await;
    let pos = stack.openapi_tenant().await;
    let no = trade_no("later");
    let (_, body) = pos.pay(&no, &code("60"), "10.00").await;
    assert_eq!(body["status"], "UNKNOWN");
    // The sandbox's buyer pays 10 s (scaled: 100 ms) later and notifies the gateway, whose
    // notification handler settles the trade and wakes this wait.
    let (status, body) = pos.get(&no, 10).await;
    assert_eq!((status, body["status"].as_str()), (200, Some("SUCCESS")), "{body}");
    let (_, replay) = pos.pay(&no, &code("60"), "10.00").await;
    assert_eq!(replay["status"], "SUCCESS", "a replay gives the stored answer");
}

#[tokio::test]
async fn the_pay_call_can_wait_for_the_final_answer() {
    let stack = Stack::start(Options::default()).await;
    let pos = stack.openapi_tenant().await;
    let no = trade_no("wait");
    let body = serde_json::json!({"out_trade_no": no, "auth_code": code("60"), "amount": "3.00", "subject": "Tea"});
    let (status, answer) = pos.send("POST", "/v1/payments?wait=10", Some(body)).await;
    assert_eq!((status, answer["status"].as_str()), (200, Some("SUCCESS")), "{answer}");
}

/// I1 (one charge per trade) is held per trade, from the calls Alipay's ground truth lists: a
/// second pay of one trade reaching Alipay — as a gateway that sent a payment twice would make it —
/// breaks it for that trade, whatever the totals.
#[tokio::test]
async fn a_trade_paid_twice_at_alipay_breaks_i1() {
    let stack = Stack::start(Options::default()).await;
    let pos = stack.openapi_tenant().await;
    let no = trade_no("i1");
    let (_, paid) = pos.pay(&no, &code("00"), "8.00").await;
    let deadline = std::time::Duration::from_secs(60);
    invariants_hold(&stack, &pos, &no, paid["status"].as_str(), deadline).await.unwrap();

    let tenant = stack.gateway.state().snapshots.current().by_id(&pos.tenant_id).unwrap().clone();
    let (number, auth_code, subject) = (no.parse().unwrap(), code("00").parse().unwrap(), "Noodles".parse().unwrap());
    let order = alipay::unified::Order {
        out_trade_no: &number,
        subject: &subject,
        amount: alipay::Amount::parse("8.00", alipay::Currency::CNY).unwrap(),
        store_id: None,
        terminal_id: None,
        operator_id: None,
    };
    let again = alipay::unified::Request::Pay { order, auth_code: &auth_code };
    upstream::Upstream::new(std::time::Duration::from_secs(5)).call_for(&tenant, None, &again).await.unwrap();
    let broken = invariants_hold(&stack, &pos, &no, paid["status"].as_str(), deadline).await.unwrap_err();
    assert!(broken.starts_with("I1:"), "{broken}");
}
