//! The daily close against the sandbox's bills, made from its real trade state: a day of mixed
//! traffic matches with no discrepancy; each planted discrepancy is found and classified; a
//! repeat changes nothing; a day in progress is never fetched; an expired link is asked for again.

use std::collections::BTreeMap;
use std::time::Duration;

use alipay::SignType;
use ledger::store::{DayState, DiscrepancyClass, DiscrepancyFilter};
use ledger::{TradeKey, TradeState};
use reconciler::bills::{Account, SettleError, Settlement, accounts};
use serde_json::{Value, json};
use stack::*;
use tenants::model::Dialect;
use time::{Date, OffsetDateTime};

use crate::helpers::*;

/// Today in Beijing, the day the test's trades fall on.
fn beijing_today() -> Date {
    OffsetDateTime::now_utc().to_offset(time::macros::offset!(+8)).date()
}

/// 10:05 Beijing time the day after `day`: when its bill may be fetched.
fn morning_after(day: Date) -> OffsetDateTime {
    day.next_day().unwrap().with_hms(10, 5, 0).unwrap().assume_offset(time::macros::offset!(+8))
}

async fn hook(stack: &Stack, method: reqwest::Method, path: &str, body: Value) -> Value {
    let url = format!("{}/sandbox/{path}", stack.sandbox.url());
    let answer = stack.http.request(method, url).json(&body).send().await.unwrap();
    let status = answer.status();
    let body: Value = answer.json().await.unwrap_or(Value::Null);
    assert!(status.is_success(), "{path}: {status} {body}");
    body
}

/// The sandbox's bill clock set to the morning after `day`.
async fn bills_out(stack: &Stack, day: Date) {
    let now = morning_after(day).format(&time::format_description::well_known::Rfc3339).unwrap();
    hook(stack, reqwest::Method::POST, "bills/now", json!({ "now": now })).await;
}

/// Settlement for `stack`, keeping files in a folder of its own.
async fn settlement(stack: &Stack, reconciler: &reconciler::Reconciler) -> Settlement {
    let dir = std::env::temp_dir().join(unique("bills-"));
    let config = reconciler::Config { bills_dir: Some(dir), ..stack.reconciler_config() };
    let shared = reconciler.shared();
    Settlement::new(shared.store.clone(), shared.checker.snapshots.clone(), config)
}

fn account_of(settlement: &Settlement, pos: &Pos) -> Account {
    accounts(&settlement.snapshots.current())
        .into_iter()
        .find(|a| a.name == pos.alipay_account())
        .expect("the tenant's account is live")
}

async fn paid(pos: &Pos, amount: &str) -> String {
    let no = trade_no("b");
    let (status, answer) = pos.pay(&no, &code("00"), amount).await;
    assert_eq!((status, answer["status"].as_str()), (200, Some("SUCCESS")), "{answer}");
    no
}

async fn refund(pos: &Pos, no: &str, request: &str, amount: &str) {
    let body = json!({"out_request_no": request, "amount": amount});
    let (_, answer) = pos.send("POST", &format!("/v1/payments/{no}/refunds"), Some(body)).await;
    assert_eq!(answer["status"], "SUCCESS", "{answer}");
}

async fn all_final(stack: &Stack, pos: &Pos, numbers: &[String]) {
    for no in numbers {
        let trade = final_trade(stack, pos, no, Duration::from_secs(20)).await;
        agrees_with_alipay(&trade, stack.truth(pos, no).await.as_ref()).unwrap();
    }
}

/// A day of every kind of traffic: payments, partial and full refunds, a refused payment, an
/// UNKNOWN one settled paid and one cancelled, a POS's cancel of a paid trade, QR orders paid and
/// unpaid (the paid one's notification lost), a static-QR payment told by its notification.
async fn mixed_day(stack: &Stack, pos: &Pos) -> Vec<String> {
    let mut numbers = Vec::new();
    for amount in ["12.00", "0.01", "388.88"] {
        numbers.push(paid(pos, amount).await);
    }
    let partly = paid(pos, "100.00").await;
    refund(pos, &partly, "R1", "30.00").await;
    refund(pos, &partly, "R2", "0.50").await;
    let whole = paid(pos, "45.60").await;
    refund(pos, &whole, "R1", "45.60").await;
    numbers.extend([partly, whole]);

    let refused = trade_no("b");
    assert_eq!(pos.pay(&refused, &code("50"), "9.99").await.1["status"], "FAILED");
    for scenario in ["60", "61", "68"] {
        let no = trade_no("b");
        pos.pay(&no, &code(scenario), "23.00").await;
        numbers.push(no);
    }
    let reversed = paid(pos, "77.70").await;
    let (status, answer) = pos.send("POST", &format!("/v1/payments/{reversed}/cancel"), None).await;
    assert!(status == 200 || status == 202, "{answer}");
    numbers.push(reversed);

    for pay in [true, false] {
        let no = trade_no("q");
        let body = json!({"out_trade_no": no, "amount": "18.00", "subject": "Dumplings", "expires_in": 600});
        let (_, order) = pos.send("POST", "/v1/qr-orders", Some(body)).await;
        // The paid order's notification is lost: the reconciler's polling settles it.
        let scan = json!({"qr_code": order["qr_code"], "pay": pay, "notify": false});
        hook(stack, reqwest::Method::POST, "qr/scan", scan).await;
        if pay {
            numbers.push(no);
        } else {
            let client = stack.db.client().await;
            let sql = "UPDATE trades SET deadline = now() WHERE tenant_id = $1 AND out_trade_no = $2";
            client.execute(sql, &[&pos.tenant_id, &no]).await.unwrap();
            numbers.push(no);
        }
    }
    let notify_url = format!("{}/notify/{}", stack.base(), pos.tenant_id);
    let qr = json!({"app_id": pos.alipay_id, "amount": "66.00", "notify_url": notify_url});
    let static_qr = hook(stack, reqwest::Method::POST, "static-qr/pay", qr).await;
    let static_no = static_qr["out_trade_no"].as_str().unwrap().to_owned();
    let key = TradeKey::new(pos.tenant_id, static_no.clone());
    let give_up = tokio::time::Instant::now() + Duration::from_secs(10);
    while stack.gateway.state().store.get(&key).await.unwrap().is_none() {
        assert!(tokio::time::Instant::now() < give_up, "the static-QR payment's notification was not applied");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    numbers.push(static_no);
    all_final(stack, pos, &numbers).await;
    numbers
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_day_of_mixed_traffic_reconciles_with_no_discrepancy_and_again_changes_nothing() {
    let stack = Stack::start(Options::scaled(SCALE)).await;
    let reconciler = stack.start_reconciler(stack.reconciler_config()).await;
    let pos = stack.openapi_tenant().await;
    let day = beijing_today();
    mixed_day(&stack, &pos).await;
    let settlement = settlement(&stack, &reconciler).await;
    let account = account_of(&settlement, &pos);

    // A day in progress is never fetched.
    let early = settlement.reconcile_day(&account, day, OffsetDateTime::now_utc(), false).await;
    assert!(matches!(early, Err(SettleError::NotYet { .. })), "{early:?}");
    assert_eq!(stack.sandbox_calls(&["alipay.data.dataservice.bill.downloadurl.query"]).await, 0);

    let sales = format!("/v1/reports/sales?from={day}&to={day}");
    let (_, before) = pos.send("GET", &sales, None).await;
    assert_eq!(before["unreconciled_days"], json!([day.to_string()]), "{before}");
    assert!(before["days"].as_array().unwrap().iter().all(|row| row["fees"].is_null() && row["net_settled"].is_null()));

    bills_out(&stack, day).await;
    let report = settlement.reconcile_day(&account, day, morning_after(day), false).await.unwrap();
    let found = settlement.store.discrepancies(&DiscrepancyFilter { limit: 100, ..Default::default() }).await.unwrap();
    assert_eq!((report.state, report.disagreements, found.len()), (DayState::Matched, 0, 0), "{found:#?}");
    // One row per paid trade and per refund (a reversal is a refund): 14 or 15, as scenario 68's
    // buyer paid before or after the reconciler's last query (then its cancel reverses it).
    let client = stack.db.client().await;
    let sql = "SELECT (SELECT count(*) FROM trades WHERE tenant_id = $1 AND (state IN ('SUCCESS', \
               'PARTIALLY_REFUNDED', 'REFUNDED') OR cancel_action = 'refund')) \
               + (SELECT count(*) FROM refunds WHERE tenant_id = $1 AND state = 'SUCCESS') \
               + (SELECT count(*) FROM trades WHERE tenant_id = $1 AND cancel_action = 'refund')";
    let expected: i64 = client.query_one(sql, &[&pos.tenant_id]).await.unwrap().get(0);
    assert!((14..=15).contains(&expected), "{expected}");
    assert_eq!(report.rows, expected as u64);
    let (path, sha) = report.file.clone().unwrap();
    let kept = std::fs::read(&path).unwrap();
    assert_eq!(sha, hex_sha256(&kept), "the raw file is kept as its hash says");
    eprintln!("mixed day: {} bill rows, 0 discrepancies; kept {} ({} bytes)", report.rows, path, kept.len());

    // The sales report now carries Alipay's fees and what it settles, per store, as the bill has
    // them (0.6% charged per payment and returned per refund, rounded half up).
    let (_, after) = pos.send("GET", &sales, None).await;
    assert_eq!(after["unreconciled_days"], json!([]), "{after}");
    let sum = |field: &str| -> i64 {
        let cents = |v: &Value| {
            let text = v.as_str().unwrap();
            let minor = |t: &str| alipay::Amount::parse(t, alipay::Currency::CNY).unwrap().minor() as i64;
            text.strip_prefix('-').map_or_else(|| minor(text), |t| -minor(t))
        };
        after["days"].as_array().unwrap().iter().map(|row| cents(&row[field])).sum()
    };
    // Summed from the kept file itself.
    let billed: (i64, i64) = {
        let mut bill = bills::TradeBill::open(std::io::BufReader::new(std::fs::File::open(&path).unwrap())).unwrap();
        bill.rows().unwrap().map(Result::unwrap).fold((0, 0), |(fees, net), row| {
            let amount = row.amount.minor() as i64;
            let signed = if matches!(row.kind, bills::RowKind::Payment) { amount } else { -amount };
            (fees + row.fee.minor(), net + signed + row.fee.minor())
        })
    };
    assert!(billed.0 < 0, "fees are charged");
    assert_eq!((sum("fees"), sum("net_settled")), billed, "{after}");
    eprintln!("sales report of the day: fees {} and net settled {} (minor units)", billed.0, billed.1);

    let days = settlement.store.bill_days(Some(&account.name), day, 10).await.unwrap();
    let again = settlement.reconcile_day(&account, day, morning_after(day), true).await.unwrap();
    assert_eq!((again.rows, again.disagreements, again.new_discrepancies), (report.rows, 0, 0));
    let after = settlement.store.bill_days(Some(&account.name), day, 10).await.unwrap();
    assert_eq!(
        (after[0].payments, after[0].refunds, after[0].state),
        (days[0].payments, days[0].refunds, days[0].state)
    );
    // Without --again a reconciled day is left alone.
    let done = settlement.reconcile_day(&account, day, morning_after(day), false).await;
    assert!(matches!(done, Err(SettleError::Busy(..))), "{done:?}");
    reconciler.stop().await;
}

fn hex_sha256(bytes: &[u8]) -> String {
    aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, bytes).as_ref().iter().map(|b| format!("{b:02x}")).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_planted_discrepancy_is_found_classified_and_resolved_by_an_ops_action() {
    let stack = Stack::start(Options::scaled(SCALE)).await;
    let reconciler = stack.start_reconciler(stack.reconciler_config()).await;
    let (pos, webhooks) = stack.tenant_with_webhook(Dialect::Openapi, SignType::Rsa2, generous(), None).await;
    let _ = webhooks;
    let day = beijing_today();
    let matched = paid(&pos, "10.00").await;
    let differs = paid(&pos, "20.00").await;
    let omitted = paid(&pos, "30.00").await;
    let portal = paid(&pos, "40.00").await;
    // A payment only Alipay knows (its notification never came).
    let qr = json!({"app_id": pos.alipay_id, "amount": "50.00", "notify": false});
    let unknown =
        hook(&stack, reqwest::Method::POST, "static-qr/pay", qr).await["out_trade_no"].as_str().unwrap().to_owned();
    // A refund made in Alipay's merchant portal.
    let refund = json!({"app_id": pos.alipay_id, "out_trade_no": portal, "amount": "5.00", "out_request_no": "HZ01"});
    hook(&stack, reqwest::Method::POST, "refunds", refund).await;
    // The bill states another amount for one payment, and leaves another out.
    let amount = json!({"app_id": pos.alipay_id, "out_trade_no": differs, "amount": "21.00"});
    hook(&stack, reqwest::Method::POST, "bills/overrides", amount).await;
    let omit = json!({"app_id": pos.alipay_id, "out_trade_no": omitted, "omit": true});
    hook(&stack, reqwest::Method::POST, "bills/overrides", omit).await;
    assert!(stack.ledger(&pos, &unknown).await.is_none());

    bills_out(&stack, day).await;
    let settlement = settlement(&stack, &reconciler).await;
    let account = account_of(&settlement, &pos);
    let report = settlement.reconcile_day(&account, day, morning_after(day), false).await.unwrap();
    let filter = DiscrepancyFilter { tenant_id: Some(pos.tenant_id), limit: 100, ..Default::default() };
    let found = settlement.store.discrepancies(&filter).await.unwrap();
    let classes: BTreeMap<&str, DiscrepancyClass> = found.iter().map(|d| (d.out_trade_no.as_str(), d.class)).collect();
    let expected = BTreeMap::from([
        (unknown.as_str(), DiscrepancyClass::MissingFromLedger),
        (differs.as_str(), DiscrepancyClass::AmountMismatch),
        (omitted.as_str(), DiscrepancyClass::MissingFromBill),
        (portal.as_str(), DiscrepancyClass::RefundMismatch),
    ]);
    assert_eq!(classes, expected, "{found:#?}");
    assert_eq!((report.disagreements, report.new_discrepancies), (4, 4));
    assert!(!classes.contains_key(matched.as_str()));
    let by = |no: &str| found.iter().find(|d| d.out_trade_no == no).unwrap();
    // Alipay sides with the ledger on the amount; the portal refund is Alipay's.
    assert_eq!(
        (by(&differs).ledger_minor, by(&differs).bill_minor, by(&differs).alipay_minor),
        (Some(2000), Some(2100), Some(2000))
    );
    assert_eq!(
        (by(&portal).out_request_no.as_str(), by(&portal).bill_minor, by(&portal).ledger_minor),
        ("HZ01", Some(500), None)
    );
    assert_eq!(by(&omitted).alipay_minor, Some(3000));

    // The payment only Alipay knew is now the tenant's trade, and its merchant was told.
    let recorded = stack.ledger(&pos, &unknown).await.expect("recorded from the bill");
    assert_eq!((recorded.state, recorded.amount.to_string()), (TradeState::Success, "50.00".to_owned()));
    let client = stack.db.client().await;
    let told: i64 = client
        .query_one(
            "SELECT count(*) FROM webhook_outbox WHERE tenant_id = $1 AND out_trade_no = $2",
            &[&pos.tenant_id, &unknown],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(told, 1);

    // Listed and resolved through the admin API, by a recorded ops action naming its actor.
    let admin = format!("http://{}/admin/bills/discrepancies", stack.gateway.admin_addr());
    let unauthorised = stack.http.get(&admin).send().await.unwrap();
    assert_eq!(unauthorised.status(), 401);
    let listed: Value = stack
        .http
        .get(format!("{admin}?tenant={}&day={day}", pos.slug))
        .bearer_auth(ADMIN_TOKEN)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(listed["discrepancies"].as_array().map(Vec::len), Some(4), "{listed}");
    let first = by(&omitted).id;
    let resolve = |resolution: &str| {
        stack
            .http
            .post(format!("{admin}/{first}/resolve"))
            .bearer_auth(ADMIN_TOKEN)
            .header("acq-actor", "ops:alice")
            .json(&json!({ "resolution": resolution }))
            .send()
    };
    let resolved = resolve("asked Alipay support, case 77").await.unwrap();
    assert_eq!(resolved.status(), 200);
    let resolved: Value = resolved.json().await.unwrap();
    assert_eq!(resolved["resolved_by"], "ops:alice via admin-api@127.0.0.1", "{resolved}");
    assert_eq!(resolve("again").await.unwrap().status(), 404, "a resolution is never overwritten");
    assert_eq!(resolve(" ").await.unwrap().status(), 400);
    // A repeat finds the same and stores nothing new.
    let again = settlement.reconcile_day(&account, day, morning_after(day), true).await.unwrap();
    assert_eq!((again.disagreements, again.new_discrepancies), (3, 0), "the recorded payment now matches");
    let after = settlement.store.discrepancies(&filter).await.unwrap();
    assert_eq!(after.len(), 4);
    let kept = after.iter().find(|d| d.id == first).unwrap();
    assert_eq!(
        (kept.resolved_by.as_deref(), kept.resolution.as_deref()),
        (Some("ops:alice via admin-api@127.0.0.1"), Some("asked Alipay support, case 77"))
    );
    let open = settlement.store.open_discrepancies().await.unwrap();
    assert_eq!(open.iter().map(|(_, n)| n).sum::<i64>(), 3);
    reconciler.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_expired_link_is_asked_for_again_and_a_day_with_nothing_is_empty() {
    let stack = Stack::start(Options::scaled(SCALE)).await;
    let reconciler = stack.start_reconciler(stack.reconciler_config()).await;
    let pos = stack.openapi_tenant().await;
    let day = beijing_today();
    paid(&pos, "8.80").await;
    bills_out(&stack, day).await;
    hook(&stack, reqwest::Method::POST, "bills/expire", json!({"next": 2})).await;
    let settlement = settlement(&stack, &reconciler).await;
    let account = account_of(&settlement, &pos);
    let report = settlement.reconcile_day(&account, day, morning_after(day), false).await.unwrap();
    assert_eq!((report.state, report.rows, report.disagreements), (DayState::Matched, 1, 0));
    assert_eq!(stack.sandbox_calls(&["alipay.data.dataservice.bill.downloadurl.query"]).await, 3);

    // The day before: no bill at Alipay, nothing in the ledger.
    let before = day.previous_day().unwrap();
    let empty = settlement.reconcile_day(&account, before, morning_after(day), false).await.unwrap();
    assert_eq!((empty.state, empty.rows), (DayState::Empty, 0));

    // Ops by the command line: the days as reconciled; today refused in one line, nothing fetched.
    let cli = |args: &[&str]| {
        std::process::Command::new(env!("CARGO_BIN_EXE_reconciler"))
            .args(args)
            .env("RECONCILER_DATABASE_URL", &stack.db.url)
            .env("RECONCILER_BILLS_DIR", std::env::temp_dir().join(unique("bills-cli-")))
            .env("ACQ_MASTER_KEYS", stack.master_key.as_str())
            .output()
            .unwrap()
    };
    let shown = cli(&["bills", "show", "--since", &before.to_string(), "--json"]);
    assert!(shown.status.success(), "{}", String::from_utf8_lossy(&shown.stderr));
    let shown: Value = serde_json::from_slice(&shown.stdout).unwrap();
    let states: Vec<(&str, &str)> = shown["days"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| (d["day"].as_str().unwrap(), d["state"].as_str().unwrap()))
        .collect();
    assert_eq!(states, [(day.to_string().as_str(), "matched"), (before.to_string().as_str(), "empty")]);
    let calls = stack.sandbox_calls(&["alipay.data.dataservice.bill.downloadurl.query"]).await;
    let today = cli(&["bills", "fetch", "--day", &day.to_string(), "--tenant", &pos.slug]);
    let error = String::from_utf8_lossy(&today.stderr);
    assert!(!today.status.success() && error.contains("is not over"), "{error}");
    assert_eq!(error.lines().filter(|l| l.starts_with("error:")).count(), 1, "{error}");
    assert_eq!(stack.sandbox_calls(&["alipay.data.dataservice.bill.downloadurl.query"]).await, calls);
    reconciler.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bill_cut_short_is_refused_with_its_reason_kept_raw_and_nothing_recorded() {
    let stack = Stack::start(Options::scaled(SCALE)).await;
    let reconciler = stack.start_reconciler(stack.reconciler_config()).await;
    let pos = stack.openapi_tenant().await;
    let day = beijing_today();
    paid(&pos, "8.80").await;
    let omitted = paid(&pos, "9.90").await;
    let omit = json!({"app_id": pos.alipay_id, "out_trade_no": omitted, "omit": true});
    hook(&stack, reqwest::Method::POST, "bills/overrides", omit).await;
    bills_out(&stack, day).await;
    hook(&stack, reqwest::Method::POST, "bills/cut", json!({"next": 1, "keep_bytes": 300})).await;
    let settlement = settlement(&stack, &reconciler).await;
    let account = account_of(&settlement, &pos);

    let refused = settlement.reconcile_day(&account, day, morning_after(day), false).await;
    let Err(SettleError::Later(why)) = refused else { panic!("{refused:?}") };
    let days = settlement.store.bill_days(Some(&account.name), day, 1).await.unwrap();
    assert_eq!((days[0].state, days[0].last_error.as_deref()), (DayState::Pending, Some(why.as_str())));
    assert_eq!(days[0].file_bytes, Some(300), "the file is kept as it came");
    let client = stack.db.client().await;
    let totals: i64 = client.query_one("SELECT count(*) FROM bill_totals", &[]).await.unwrap().get(0);
    let found: i64 = client.query_one("SELECT count(*) FROM bill_discrepancies", &[]).await.unwrap().get(0);
    assert_eq!((totals, found), (0, 0), "nothing of a refused file is recorded ({why})");
    eprintln!("a bill cut to 300 bytes: refused ({why})");

    // Asked again, the whole file matches (and finds the trade the bill leaves out).
    let report = settlement.reconcile_day(&account, day, morning_after(day), false).await.unwrap();
    assert_eq!((report.state, report.rows, report.disagreements), (DayState::Matched, 1, 1));
    reconciler.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_global_partners_drop_file_is_matched_and_its_discrepancies_classified() {
    let drop_dir = std::env::temp_dir().join(unique("drop-"));
    let stack = Stack::start(Options { global_drop_dir: Some(drop_dir.clone()), ..Options::scaled(SCALE) }).await;
    let reconciler = stack.start_reconciler(stack.reconciler_config()).await;
    let pos = stack.tenant(Dialect::Mapi, SignType::Md5, generous()).await;
    let day = beijing_today();
    let pay = |amount: &'static str| {
        let pos = &pos;
        async move {
            let no = trade_no("g");
            let (_, answer) = pos.pay_in(&no, &code("00"), amount, "HKD").await;
            assert_eq!(answer["status"], "SUCCESS", "{answer}");
            no
        }
    };
    pay("12.00").await;
    let partly = pay("100.00").await;
    refund(&pos, &partly, "R1", "40.00").await;
    let reversed = pay("33.30").await;
    let (status, answer) = pos.send("POST", &format!("/v1/payments/{reversed}/cancel"), None).await;
    assert!(status == 200 || status == 202, "{answer}");
    final_trade(&stack, &pos, &reversed, Duration::from_secs(10)).await;
    let portal = pay("50.00").await;
    let refund = json!({"partner": pos.alipay_id, "out_trade_no": portal, "amount": "5.00", "out_request_no": "HZ02"});
    hook(&stack, reqwest::Method::POST, "refunds", refund).await;
    let omitted = pay("60.00").await;
    let omit = json!({"partner": pos.alipay_id, "out_trade_no": omitted, "omit": true});
    hook(&stack, reqwest::Method::POST, "bills/overrides", omit).await;

    bills_out(&stack, day).await;
    let dropped = hook(&stack, reqwest::Method::POST, "bills/drop", json!({"date": day.to_string()})).await;
    assert_eq!(dropped["files"].as_array().map(Vec::len), Some(2), "{dropped}");
    let mut settlement = settlement(&stack, &reconciler).await;
    let account = account_of(&settlement, &pos);
    let refused = settlement.reconcile_day(&account, day, morning_after(day), false).await;
    assert!(matches!(refused, Err(SettleError::Unsupported(_))), "without bills_global_dir: {refused:?}");
    settlement.config.bills_global_dir = Some(drop_dir.clone());
    let report = settlement.reconcile_day(&account, day, morning_after(day), false).await.unwrap();
    // 5 payments less the one left out, a refund, a reversal and the portal's refund.
    assert_eq!((report.state, report.rows), (DayState::Matched, 7));
    let filter = DiscrepancyFilter { alipay_account: Some(account.name.clone()), limit: 100, ..Default::default() };
    let found = settlement.store.discrepancies(&filter).await.unwrap();
    let classes: BTreeMap<(&str, &str), DiscrepancyClass> =
        found.iter().map(|d| ((d.out_trade_no.as_str(), d.out_request_no.as_str()), d.class)).collect();
    let expected = BTreeMap::from([
        ((omitted.as_str(), ""), DiscrepancyClass::MissingFromBill),
        ((portal.as_str(), "HZ02"), DiscrepancyClass::RefundMismatch),
    ]);
    assert_eq!(classes, expected, "{found:#?}");
    let days = settlement.store.bill_days(Some(&account.name), day, 1).await.unwrap();
    assert!(days[0].file_path.as_deref().is_some_and(|p| p.ends_with(".txt")), "{:?}", days[0]);
    reconciler.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_daily_round_closes_every_finished_day_of_every_live_account_once() {
    let stack = Stack::start(Options::scaled(SCALE)).await;
    let reconciler = stack.start_reconciler(stack.reconciler_config()).await;
    let (first, second) = (stack.openapi_tenant().await, stack.openapi_tenant().await);
    let day = beijing_today();
    paid(&first, "1.00").await;
    paid(&second, "2.00").await;
    bills_out(&stack, day).await;
    let settlement = settlement(&stack, &reconciler).await;
    reconciler::bills::daily::round(&settlement, morning_after(day)).await.unwrap();
    let lookback = i64::from(settlement.config.bills_lookback_days);
    for pos in [&first, &second] {
        let days =
            settlement.store.bill_days(Some(&pos.alipay_account()), day - time::Duration::days(30), 100).await.unwrap();
        let states: Vec<(Date, DayState, i32)> = days.iter().map(|d| (d.day, d.state, d.attempts)).collect();
        let mut expected = vec![(day, DayState::Matched, 1)];
        expected.extend((1..lookback).map(|n| (day - time::Duration::days(n), DayState::Empty, 1)));
        assert_eq!(states, expected);
    }
    // A second round finds nothing to do.
    let calls = stack.sandbox_calls(&["alipay.data.dataservice.bill.downloadurl.query"]).await;
    reconciler::bills::daily::round(&settlement, morning_after(day)).await.unwrap();
    assert_eq!(stack.sandbox_calls(&["alipay.data.dataservice.bill.downloadurl.query"]).await, calls);
    reconciler.stop().await;
}
