//! The OpenAPI bills over real HTTP: `alipay.data.dataservice.bill.downloadurl.query`, the
//! download link, and the files made from the sandbox's trade state, read back with `bills`.

use alipay::openapi::trade::{TradeCancel, TradePay, TradeRefund};
use alipay::{Amount, Currency, OutTradeNo, Outcome, SignType};
use bills::RowKind;
use serde_json::json;

use crate::bill_helpers::*;
use crate::helpers::*;

fn cny(text: &str) -> Amount {
    Amount::parse(text, Currency::CNY).unwrap()
}

fn pay(no: &str, amount: &str) -> TradePay {
    TradePay::new(no.parse().unwrap(), code("00").parse().unwrap(), "Noodles".parse().unwrap(), cny(amount))
}

fn refund(no: &str, request: &str, amount: &str) -> TradeRefund {
    TradeRefund::new(no.parse::<OutTradeNo>().unwrap().into(), request.parse().unwrap(), cny(amount))
}

/// (out_trade_no, refund request number, 订单金额 as written, 服务费, store).
type Line = (String, Option<String>, String, String, Option<String>);

fn lines(rows: &[bills::BillRow]) -> Vec<Line> {
    let mut lines: Vec<Line> = rows
        .iter()
        .map(|r| {
            (
                r.out_trade_no.to_string(),
                r.out_request_no().map(|n| n.to_string()),
                r.signed_amount().to_string(),
                r.fee.to_string(),
                r.store_id.as_ref().map(|s| s.to_string()),
            )
        })
        .collect();
    lines.sort();
    lines
}

fn line(no: &str, request: Option<&str>, amount: &str, fee: &str, store: Option<&str>) -> Line {
    (no.into(), request.map(Into::into), amount.into(), fee.into(), store.map(Into::into))
}

#[tokio::test]
async fn a_days_bills_hold_every_payment_and_refund_with_its_fee() {
    let sandbox = start(TIME_SCALE).await;
    let merchant = Merchant::openapi(&sandbox, SignType::Rsa2).await;
    let merchant = with_fee(merchant, 60, Some("2088123412341234")).await;
    let day = today();
    let (a, b, c, e) = (trade_no("ba"), trade_no("bb"), trade_no("bc"), trade_no("be"));
    let mut at_store = pay(&a, "100.00");
    at_store.store_id = Some("S01".parse().unwrap());
    at_store.terminal_id = Some("T1".parse().unwrap());
    at_store.operator_id = Some("op1".parse().unwrap());
    for call in [at_store, pay(&b, "50.00"), pay(&c, "20.00"), pay(&e, "10.00")] {
        assert_eq!(merchant.call(&call).await.1.outcome, Outcome::Success);
    }
    assert_eq!(merchant.call(&refund(&a, "ra1", "30.00")).await.1.outcome, Outcome::Success);
    assert_eq!(merchant.call(&refund(&b, "rb1", "50.00")).await.1.outcome, Outcome::Success);
    let cancel = TradeCancel { trade: c.parse::<OutTradeNo>().unwrap().into() };
    assert_eq!(merchant.call(&cancel).await.1.outcome, Outcome::Success);
    let (status, silent) =
        merchant.hook("static-qr/pay", json!({"app_id": merchant.id, "amount": "8.88", "notify": false})).await;
    assert_eq!(status, 201);
    let d = silent["out_trade_no"].as_str().unwrap().to_owned();
    let (status, portal) =
        merchant.hook("refunds", json!({"app_id": merchant.id, "out_trade_no": e, "amount": "2.50"})).await;
    assert_eq!(status, 201, "{portal}");
    let batch = portal["out_request_no"].as_str().unwrap().to_owned();
    assert!(batch.starts_with("HZ"), "{batch}");
    assert_eq!(merchant.truth(&e).await["refunds"][0]["via"], "portal");
    let (status, over) =
        merchant.hook("refunds", json!({"app_id": merchant.id, "out_trade_no": e, "amount": "7.51"})).await;
    assert_eq!(status, 409, "{over}");

    set_bill_clock(&merchant, beijing(day.next_day().unwrap(), 10, 5)).await;
    let stamp = format!("{:04}{:02}{:02}", day.year(), u8::from(day.month()), day.day());
    let url = bill_url(&merchant, "trade", &day.to_string()).await;
    let prefix = format!(
        "{}/downloadBillFile.resource?bizType=trade&userId=20881234123412340156&fileType=csv.zip&bizDates={stamp}&downloadFileName=20881234123412340156_{stamp}.csv.zip&fileId=",
        sandbox.url()
    );
    assert!(url.starts_with(&prefix), "{url}");
    let (content_type, zip) = download(&url).await;
    assert_eq!(content_type, "application/zip");
    let (summary, rows) = read_trade_bill(zip);
    assert_eq!(summary.header.account.to_string(), "20881234123412340156");
    assert_eq!((summary.total.payments, summary.total.refunds), (5, 4));
    assert_eq!(lines(&rows), {
        let mut expected = vec![
            line(&a, None, "100.00", "-0.60", Some("S01")),
            line(&a, Some("ra1"), "-30.00", "0.18", Some("S01")),
            line(&b, None, "50.00", "-0.30", None),
            line(&b, Some("rb1"), "-50.00", "0.30", None),
            line(&c, None, "20.00", "-0.12", None),
            line(&c, Some(&c), "-20.00", "0.12", None),
            line(&d, None, "8.88", "-0.05", None),
            line(&e, None, "10.00", "-0.06", None),
            line(&e, Some(&batch), "-2.50", "0.02", None),
        ];
        expected.sort();
        expected
    });
    let paid_at_store = rows.iter().find(|r| r.out_trade_no.as_str() == a && r.kind == RowKind::Payment).unwrap();
    assert_eq!(
        (paid_at_store.terminal_id.as_ref().unwrap().as_str(), paid_at_store.operator_id.as_ref().unwrap().as_str()),
        ("T1", "op1")
    );
    assert!(paid_at_store.counterparty.contains("****"));
    assert!(rows.iter().all(|r| r.received == r.amount));
    let refund_row = rows.iter().find(|r| r.out_request_no().is_some_and(|n| n.as_str() == "ra1")).unwrap();
    assert_eq!(refund_row.trade_no, paid_at_store.trade_no);
    assert_eq!(refund_row.created_at, paid_at_store.created_at);

    // The account bill: every balance movement, the balance running from 0.
    let url = bill_url(&merchant, "signcustomer", &day.to_string()).await;
    assert!(url.contains("bizType=fnd&userId=20881234123412340156"), "{url}");
    let entries = unzip_gbk(download(&url).await.1);
    let names: Vec<&str> = entries.iter().map(|(name, _)| name.as_str()).collect();
    assert_eq!(
        names,
        [
            format!("20881234123412340156_{stamp}_账务明细(汇总).csv"),
            format!("20881234123412340156_{stamp}_账务明细.csv")
        ]
    );
    let detail = &entries[1].1;
    assert!(detail.starts_with("#支付宝账务明细查询\n#账号：[20881234123412340156]\n"), "{detail}");
    assert_eq!(detail.matches(",在线支付,").count(), 5);
    assert_eq!(detail.matches(",交易退款,").count(), 4);
    assert!(detail.contains("#收入合计：9笔，共189.50元\n#支出合计：9笔，共-103.63元\n"), "{detail}");
    let last_row = detail.lines().rfind(|l| !l.starts_with('#')).unwrap();
    assert_eq!(last_row.split(',').nth(8), Some("85.87"), "{last_row}");

    // The month's bill, once ready (the 3rd of the next month).
    let next_month = day.replace_day(1).unwrap().checked_add(time::Duration::days(32)).unwrap().replace_day(3).unwrap();
    set_bill_clock(&merchant, beijing(next_month, 9, 30)).await;
    let month = format!("{:04}-{:02}", day.year(), u8::from(day.month()));
    let (summary, monthly) = read_trade_bill(download(&bill_url(&merchant, "trade", &month).await).await.1);
    assert!(summary.header.period.is_monthly());
    assert_eq!(lines(&monthly), lines(&rows));
}

#[tokio::test]
async fn bill_dates_are_refused_as_alipay_refuses_them() {
    let sandbox = start(TIME_SCALE).await;
    let merchant = Merchant::openapi(&sandbox, SignType::Rsa2).await;
    let idle = Merchant::openapi(&sandbox, SignType::Rsa2).await;
    assert_eq!(merchant.call(&pay(&trade_no("bd"), "5.00")).await.1.outcome, Outcome::Success);
    let day = today();
    let refused = |bill_type: &str, date: &str| RawBillQuery::new(bill_type, date);
    let this_month = format!("{:04}-{:02}", day.year(), u8::from(day.month()));
    let next_year = format!("{}-01-01", day.year() + 1);
    for query in [
        refused("trade", &day.to_string()),
        refused("trade", &next_year),
        refused("trade", &this_month),
        refused("trade", "2026-13-01"),
        refused("trade", "20260101"),
        refused("invoice", "2020-01-01"),
        RawBillQuery { bill_type: Some("trade".into()), bill_date: None },
    ] {
        let (_, reply) = merchant.call(&query).await;
        assert_eq!(sub_code(&reply), "isv.invalid_arguments", "{:?}", query.bill_date);
    }

    let tomorrow = day.next_day().unwrap();
    set_bill_clock(&merchant, beijing(tomorrow, 8, 0)).await;
    let (_, early) = merchant.call(&RawBillQuery::new("trade", &day.to_string())).await;
    assert_eq!(sub_code(&early), "isp.bill_not_exist");

    set_bill_clock(&merchant, beijing(tomorrow, 10, 5)).await;
    let (_, nothing) = idle.call(&RawBillQuery::new("trade", &day.to_string())).await;
    assert_eq!(sub_code(&nothing), "isp.bill_not_exist");
    let (_, nothing) = idle.call(&RawBillQuery::new("signcustomer", &day.to_string())).await;
    assert_eq!(sub_code(&nothing), "isp.bill_not_exist");
    bill_url(&merchant, "trade", &day.to_string()).await;

    let (status, clock) = merchant.hook("bills/now", json!({ "now": null })).await;
    assert_eq!((status.as_u16(), clock["set"].as_bool()), (200, Some(false)));
    let (status, _) = merchant.hook("bills/now", json!({ "now": "tomorrow" })).await;
    assert_eq!(status, 400);
}

#[tokio::test]
async fn a_dead_link_answers_the_timeout_text_and_a_new_one_works() {
    let sandbox = start(TIME_SCALE).await;
    let merchant = Merchant::openapi(&sandbox, SignType::Rsa2).await;
    assert_eq!(merchant.call(&pay(&trade_no("bx"), "5.00")).await.1.outcome, Outcome::Success);
    let day = today();
    set_bill_clock(&merchant, beijing(day.next_day().unwrap(), 10, 5)).await;
    let (status, _) = merchant.hook("bills/expire", json!({ "next": 1 })).await;
    assert_eq!(status, 200);
    let (content_type, body) = download(&bill_url(&merchant, "trade", &day.to_string()).await).await;
    assert_eq!(content_type, "text/plain;charset=utf-8");
    assert_eq!(String::from_utf8(body).unwrap(), "下载超时，请重新下载");
    let (content_type, zip) = download(&bill_url(&merchant, "trade", &day.to_string()).await).await;
    assert_eq!(content_type, "application/zip");
    assert_eq!(read_trade_bill(zip).1.len(), 1);
    let (_, body) = download(&format!("{}/downloadBillFile.resource?token=0123", sandbox.url())).await;
    assert_eq!(String::from_utf8(body).unwrap(), "下载超时，请重新下载");
}

#[tokio::test]
async fn overrides_bend_the_files_while_queries_keep_the_truth() {
    let sandbox = start(TIME_SCALE).await;
    let merchant = Merchant::openapi(&sandbox, SignType::Rsa2).await;
    let (kept, bent, omitted) = (trade_no("ok"), trade_no("ob"), trade_no("oo"));
    for no in [&kept, &bent, &omitted] {
        assert_eq!(merchant.call(&pay(no, "10.00")).await.1.outcome, Outcome::Success);
    }
    assert_eq!(merchant.call(&refund(&omitted, "ro1", "1.00")).await.1.outcome, Outcome::Success);
    let id = merchant.id.clone();
    let (status, _) =
        merchant.hook("bills/overrides", json!({"app_id": id, "out_trade_no": bent, "amount": "12.34"})).await;
    assert_eq!(status, 200);
    let (status, _) =
        merchant.hook("bills/overrides", json!({"app_id": id, "out_trade_no": omitted, "omit": true})).await;
    assert_eq!(status, 200);
    let (status, _) = merchant
        .hook("bills/overrides", json!({"app_id": id, "out_trade_no": kept, "omit": true, "amount": "1"}))
        .await;
    assert_eq!(status, 400);
    let (status, _) =
        merchant.hook("bills/overrides", json!({"app_id": id, "out_trade_no": "nope", "omit": true})).await;
    assert_eq!(status, 404);

    let day = today();
    set_bill_clock(&merchant, beijing(day.next_day().unwrap(), 10, 5)).await;
    let (_, rows) = read_trade_bill(download(&bill_url(&merchant, "trade", &day.to_string()).await).await.1);
    assert_eq!(lines(&rows), {
        let mut expected = vec![line(&bent, None, "12.34", "-0.07", None), line(&kept, None, "10.00", "-0.06", None)];
        expected.sort();
        expected
    });
    assert_eq!(merchant.truth(&bent).await["total_amount"], "10.00");
    assert_eq!(merchant.truth(&omitted).await["refunded_amount"], "1.00");

    let response = merchant.http.delete(format!("{}/bills/overrides", merchant.hooks)).send().await.unwrap();
    assert_eq!(response.status(), 200);
    let (_, rows) = read_trade_bill(download(&bill_url(&merchant, "trade", &day.to_string()).await).await.1);
    assert_eq!(rows.len(), 4);

    let (status, _) = merchant.hook("bills/drop", json!({"date": day.to_string()})).await;
    assert_eq!(status, 400, "no drop dir");
}
