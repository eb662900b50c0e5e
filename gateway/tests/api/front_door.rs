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

/// A Global POS on Alipay's MAPI (PID + MD5, XML answers) through `/alipay/mapi/gateway.do`.
mod mapi {
    use alipay::mapi::services::{AcquireCancel, OverseasQuery, SpotPay, SpotRefund};
    use alipay::mapi::{RequestMeta, Service, build_request, read_reply};
    use alipay::openapi::trade::{CancelAction, TradeStatus};
    use alipay::{Amount, Charset, Currency, Md5Key, Outcome, Partner, Signer, Verifier};
    use stack::{Options, Stack, code, trade_no};

    #[derive(Clone)]
    struct MapiPos {
        http: reqwest::Client,
        url: String,
        partner: Partner,
        key: String,
    }

    impl MapiPos {
        async fn send<S: Service>(&self, service: &S, key: &str) -> String {
            let meta = RequestMeta { partner: &self.partner, charset: Charset::Utf8, notify_url: None };
            let signer = Signer::md5(Md5Key::new(key).unwrap());
            let form = build_request(service, &meta, &signer).unwrap().to_form(Charset::Utf8).unwrap();
            let response = self
                .http
                .post(&self.url)
                .header("content-type", "application/x-www-form-urlencoded")
                .body(form)
                .send()
                .await
                .unwrap();
            assert_eq!(response.status(), 200);
            response.text().await.unwrap()
        }

        async fn exec<S: Service>(&self, service: &S) -> alipay::openapi::Reply<S::Answer> {
            let body = self.send(service, &self.key).await;
            read_reply::<S>(body.as_bytes(), Charset::Utf8, &Verifier::md5(Md5Key::new(&self.key).unwrap()))
        }
    }

    fn usd(text: &str) -> Amount {
        Amount::parse(text, Currency::USD).unwrap()
    }

    fn spot_pay(seller: &Partner, no: &str, scenario: &str) -> SpotPay {
        SpotPay {
            alipay_seller_id: seller.clone(),
            partner_trans_id: no.parse().unwrap(),
            buyer_identity_code: code(scenario).parse().unwrap(),
            trans_name: "Dim sum".parse().unwrap(),
            trans_amount: usd("30.00"),
            trans_create_time: alipay::time_text::beijing_compact(time::OffsetDateTime::now_utc()),
            quantity: None,
            memo: None,
            extend_info: None,
        }
    }

    fn millis() -> String {
        (time::OffsetDateTime::now_utc().unix_timestamp_nanos() / 1_000_000).to_string()
    }

    #[tokio::test]
    async fn a_global_pos_pays_queries_refunds_and_cancels_through_the_mapi_front_door() {
        let stack = Stack::start(Options::scaled(super::SCALE)).await;
        let tenant = stack.mapi_tenant().await;
        let issued = stack.enable_front_door(&tenant, alipay::SignType::Md5).await;
        let partner: Partner = issued.id.parse().unwrap();
        let pos = MapiPos {
            http: reqwest::Client::new(),
            url: format!("{}/alipay/mapi/gateway.do", stack.base()),
            partner: partner.clone(),
            key: issued.md5_key.as_deref().unwrap().to_owned(),
        };

        let no = trade_no("MP");
        let paid = pos.exec(&spot_pay(&partner, &no, "00")).await;
        assert_eq!(paid.outcome, Outcome::Success, "{paid:?}");
        let query = pos.exec(&OverseasQuery { partner_trans_id: no.parse().unwrap() }).await;
        assert_eq!(query.answer.unwrap().alipay_trans_status, Some(TradeStatus::TradeSuccess));
        let refund = SpotRefund {
            partner_trans_id: no.parse().unwrap(),
            partner_refund_id: "R1".parse().unwrap(),
            refund_amount: usd("5.00"),
            refund_reason: None,
        };
        let refunded = pos.exec(&refund).await;
        assert_eq!(refunded.outcome, Outcome::Success, "{refunded:?}");
        assert_eq!(pos.exec(&refund).await.outcome, Outcome::Success, "the same refund again is the same refund");
        let trade = stack.ledger(&tenant, &no).await.unwrap();
        assert_eq!((trade.state, trade.refunded), (ledger::TradeState::PartiallyRefunded, usd("5.00")));
        assert_eq!(stack.truth(&tenant, &no).await.unwrap()["refunded_amount"], "5.00", "Alipay refunded it once");

        // The buyer never confirms: UNKNOW, then the POS cancels and the trade is closed.
        let unpaid = trade_no("MU");
        let paying = pos.exec(&spot_pay(&partner, &unpaid, "61")).await;
        assert_eq!(paying.answer.unwrap().error.as_deref(), Some("ORDER_SUCCESS_PAY_INPROCESS"));
        let cancel = AcquireCancel { out_trade_no: unpaid.parse().unwrap(), timestamp: millis() };
        let mut cancelled = pos.exec(&cancel).await;
        for _ in 0..10 {
            if cancelled.outcome == Outcome::Success {
                break;
            }
            cancelled = pos.exec(&cancel).await;
        }
        assert_eq!(cancelled.answer.unwrap().action, Some(CancelAction::Close));
        assert_eq!(stack.ledger(&tenant, &unpaid).await.unwrap().state, ledger::TradeState::Cancelled);

        // A wrong key, an unknown service: Alipay's unsigned refusals.
        let forged = pos.send(&OverseasQuery { partner_trans_id: no.parse().unwrap() }, "0123456789abcdef0123").await;
        assert!(
            forged.contains("<is_success>F</is_success>") && forged.contains("<error>ILLEGAL_SIGN</error>"),
            "{forged}"
        );
        let other_partner = MapiPos { partner: tenant.alipay_id.parse().unwrap(), ..pos.clone() };
        let unknown =
            other_partner.send(&OverseasQuery { partner_trans_id: no.parse().unwrap() }, &other_partner.key).await;
        assert!(
            unknown.contains("<error>ILLEGAL_PARTNER</error>"),
            "the tenant's own partner is not its front door: {unknown}"
        );

        // A new MD5 key with an hour's overlap: terminals on either key are answered in their own.
        let source = tenants::registry::PosKeySource::Generate;
        let overlap = std::time::Duration::from_secs(3600);
        let rotated = stack.registry.rotate_front_door_pos_key("test", &tenant.slug, source, overlap).await.unwrap();
        let snapshots = stack.gateway.state().snapshots.clone();
        let mut changes = snapshots.subscribe();
        let keys = || {
            let snapshot = snapshots.current();
            let door = snapshot.by_front_door(tenant.dialect, &issued.id).and_then(|t| t.front_door.as_ref());
            door.map_or(0, |d| d.pos_keys.len())
        };
        while keys() < 2 {
            tokio::time::timeout(std::time::Duration::from_secs(10), changes.changed()).await.unwrap().unwrap();
        }
        let renewed = MapiPos { key: rotated.md5_key.as_deref().unwrap().to_owned(), ..pos.clone() };
        for terminal in [&pos, &renewed] {
            let query = terminal.exec(&OverseasQuery { partner_trans_id: no.parse().unwrap() }).await;
            assert_eq!(query.outcome, Outcome::Success, "{query:?}");
        }
    }
}

/// Hostile input to both front doors: unsigned bytes of every kind, and hostile `biz_content`
/// signed with the POS's own key. Each gets Alipay's refusal (HTTP 200, as Alipay answers; 413
/// past the body limit), and nothing is written.
#[tokio::test]
async fn hostile_requests_to_the_front_doors_are_refused_as_alipay_refuses_and_write_nothing() {
    use super::hostile::{everything, hostile_bodies};
    let stack = Stack::start(Options::scaled(SCALE)).await;
    let tenant = stack.openapi_tenant().await;
    let pos = stack.front_door(&tenant).await;
    let global = stack.mapi_tenant().await;
    stack.enable_front_door(&global, alipay::SignType::Md5).await;
    let paid = trade_no("H");
    assert_eq!(pos.exec(&pay(&paid, "00", "10.00"), None).await.outcome, Outcome::Success);
    let client = stack.db.client().await;
    let before = everything(&client).await;
    let doors = [pos.url.clone(), format!("{}/alipay/mapi/gateway.do", stack.base())];
    for door in &doors {
        for (what, body) in hostile_bodies() {
            let response = stack
                .http
                .post(door)
                .header("content-type", "application/x-www-form-urlencoded")
                .body(body)
                .send()
                .await
                .unwrap();
            let status = response.status().as_u16();
            let text = response.text().await.unwrap();
            if what == "over the limit" {
                assert_eq!(status, 413, "{what} to {door}: {text}");
                continue;
            }
            assert_eq!(status, 200, "{what} to {door}: {text}");
            let refused = text.contains("\"code\":\"4000") || text.contains("<is_success>F</is_success>");
            assert!(refused, "{what} to {door}: {text}");
        }
    }
    for method in ["alipay.trade.pay", "alipay.trade.precreate", "alipay.trade.refund", "alipay.trade.cancel"] {
        for (what, body) in hostile_bodies() {
            let mut params = pos.params(&TradeQuery { trade: by_number(&paid) }, None);
            params.set("method", method);
            params.set("biz_content", String::from_utf8_lossy(&body).into_owned());
            pos.sign(&mut params);
            let response = stack.http.post(&pos.url).body(params.to_form(alipay::Charset::Utf8).unwrap());
            let response = response.header("content-type", "application/x-www-form-urlencoded").send().await.unwrap();
            let status = response.status().as_u16();
            let text = response.text().await.unwrap();
            if status == 413 {
                continue; // the form-encoded body grew past the limit
            }
            assert_eq!(status, 200, "{what} as {method}: {text}");
            let refused =
                ["\"code\":\"40002\"", "\"code\":\"40004\"", "\"code\":\"40001\""].iter().any(|c| text.contains(c));
            // Cancelling a trade that does not exist is Alipay's 10000 with nothing done.
            let nothing_to_cancel = method == "alipay.trade.cancel" && !text.contains("\"action\"");
            assert!(refused || nothing_to_cancel, "{what} as {method}: {text}");
        }
    }
    assert_eq!(everything(&client).await, before, "nothing written");
}
