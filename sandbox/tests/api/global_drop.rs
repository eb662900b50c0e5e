//! Global's files for MAPI partners, dropped in the partner's folder and read back with `bills`.

use std::fs::File;

use alipay::mapi::services::{AcquireCancel, SpotPay, SpotRefund};
use alipay::{Amount, Currency, Outcome, SignType};
use bills::Limits;
use bills::global::{SettlementReader, SettlementType, TransactionReader, TransactionType};
use sandbox::{Config, Sandbox};
use serde_json::json;

use crate::bill_helpers::*;
use crate::helpers::*;

fn hkd(text: &str) -> Amount {
    Amount::parse(text, Currency::HKD).unwrap()
}

fn spot_pay(merchant: &Merchant, no: &str, amount: &str) -> SpotPay {
    SpotPay {
        alipay_seller_id: merchant.id.parse().unwrap(),
        partner_trans_id: no.parse().unwrap(),
        buyer_identity_code: code("00").parse().unwrap(),
        trans_name: "Burger set".parse().unwrap(),
        trans_amount: hkd(amount),
        trans_create_time: "20261125101530".into(),
        quantity: Some(1),
        memo: None,
        extend_info: Some("{\"store_id\":\"7\"}".into()),
    }
}

#[tokio::test]
async fn the_drop_leaves_both_files_in_the_partners_folder() {
    let dir = std::env::temp_dir().join(format!("sandbox-global-drop-{:x}", rand_suffix()));
    let sandbox =
        Sandbox::start(Config { time_scale: TIME_SCALE, global_drop_dir: Some(dir.clone()), ..Config::default() })
            .await
            .unwrap();
    let merchant = Merchant::mapi(&sandbox, SignType::Md5).await;
    let merchant = with_fee(merchant, 100, None).await;
    let (paid, cancelled, omitted) = (trade_no("gp"), trade_no("gc"), trade_no("go"));
    for (no, amount) in [(&paid, "58.00"), (&cancelled, "20.00"), (&omitted, "5.00")] {
        assert_eq!(merchant.service(&spot_pay(&merchant, no, amount)).await.1.outcome, Outcome::Success);
    }
    let refund = SpotRefund {
        partner_trans_id: paid.parse().unwrap(),
        partner_refund_id: "f1".parse().unwrap(),
        refund_amount: hkd("8.00"),
        refund_reason: None,
    };
    assert_eq!(merchant.service(&refund).await.1.outcome, Outcome::Success);
    let cancel = AcquireCancel { out_trade_no: cancelled.parse().unwrap(), timestamp: "1764036930000".into() };
    assert_eq!(merchant.service(&cancel).await.1.outcome, Outcome::Success);
    assert_eq!(merchant.truth(&paid).await["store_id"], "7");
    let (status, _) =
        merchant.hook("bills/overrides", json!({"partner": merchant.id, "out_trade_no": omitted, "omit": true})).await;
    assert_eq!(status, 200);

    let day = today();
    let (status, _) = merchant.hook("bills/drop", json!({"date": day.to_string()})).await;
    assert_eq!(status, 409, "today is not complete");
    set_bill_clock(&merchant, beijing(day.next_day().unwrap(), 10, 5)).await;
    let (status, dropped) = merchant.hook("bills/drop", json!({"date": day.to_string(), "partner": merchant.id})).await;
    assert_eq!(status, 200, "{dropped}");
    let files = dropped["files"].as_array().unwrap();
    let stamp = format!("{:04}{:02}{:02}", day.year(), u8::from(day.month()), day.day());
    let folder = dir.join(&merchant.id);
    let expected = [
        folder.join(format!("{}_transaction_{stamp}.txt", merchant.id)),
        folder.join(format!("{}_settlement_{stamp}.txt", merchant.id)),
    ];
    let paths: Vec<&str> = files.iter().map(|f| f["path"].as_str().unwrap()).collect();
    assert_eq!(paths, expected.iter().map(|p| p.to_str().unwrap()).collect::<Vec<_>>());
    assert!(files.iter().all(|f| f["written"] == true));

    let mut transactions = TransactionReader::new(File::open(&expected[0]).unwrap(), &Limits::default()).unwrap();
    assert_eq!(transactions.header().partner.as_str(), merchant.id);
    assert_eq!(transactions.header().date, day);
    let mut rows: Vec<(String, TransactionType, String, String)> = transactions
        .by_ref()
        .map(|row| {
            let row = row.unwrap();
            (row.partner_transaction_id.to_string(), row.kind, row.amount.to_string(), row.fee.to_string())
        })
        .collect();
    rows.sort_by(|a, b| (&a.0, a.1.as_str()).cmp(&(&b.0, b.1.as_str())));
    let mut expected_rows = vec![
        (paid.clone(), TransactionType::Payment, "58.00".to_owned(), "0.58".to_owned()),
        ("f1".to_owned(), TransactionType::Refund, "8.00".to_owned(), "0.08".to_owned()),
        (cancelled.clone(), TransactionType::Payment, "20.00".to_owned(), "0.20".to_owned()),
        (cancelled.clone(), TransactionType::Reversal, "20.00".to_owned(), "0.20".to_owned()),
    ];
    expected_rows.sort_by(|a, b| (&a.0, a.1.as_str()).cmp(&(&b.0, b.1.as_str())));
    assert_eq!(rows, expected_rows);

    let settlements: Vec<_> = SettlementReader::new(File::open(&expected[1]).unwrap(), &Limits::default())
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(settlements.len(), 4);
    let payment = settlements.iter().find(|s| s.partner_transaction_id.as_str() == paid).unwrap();
    assert_eq!(payment.kind, SettlementType::Payment);
    assert_eq!(
        (payment.amount.to_string(), payment.fee.to_string(), payment.settlement.to_string()),
        ("58.00".into(), "0.58".into(), "57.42".into())
    );
    assert_eq!(payment.amount.currency(), Currency::HKD);
    assert_eq!(payment.rmb_amount.currency(), Currency::CNY);
    let reversal = settlements.iter().filter(|s| s.partner_transaction_id.as_str() == cancelled).count();
    assert_eq!(reversal, 2);
    assert!(settlements.iter().any(|s| s.partner_transaction_id.as_str() == "f1" && s.kind == SettlementType::Refund));

    let (_, again) = merchant.hook("bills/drop", json!({"date": day.to_string()})).await;
    assert!(again["files"].as_array().unwrap().iter().all(|f| f["written"] == false), "{again}");
    let (status, _) = merchant.hook("bills/drop", json!({"date": "2026-1-01"})).await;
    assert_eq!(status, 400);
    std::fs::remove_dir_all(&dir).unwrap();
}

fn rand_suffix() -> u64 {
    u64::from(std::process::id()) << 32 | u64::from(time::OffsetDateTime::now_utc().nanosecond())
}
