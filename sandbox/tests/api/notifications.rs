//! Notifications are retried on Alipay's schedule, with the same notify_id, until `success`.

use std::time::Duration;

use alipay::openapi::trade::TradePay;
use alipay::{Amount, Currency, SignType};

use crate::helpers::*;

#[tokio::test]
async fn retried_with_the_same_notify_id_until_acknowledged() {
    // 4 min → 240 ms, 10 min → 600 ms.
    let sandbox = start(0.001).await;
    let mut receiver = Receiver::start(2).await;
    let mut merchant = Merchant::openapi(&sandbox, SignType::Rsa2).await;
    merchant.notify_url = Some(receiver.url.clone());
    let no = trade_no("n");
    let pay = TradePay::new(
        no.parse().unwrap(),
        code("00").parse().unwrap(),
        "x".parse().unwrap(),
        Amount::parse("1.00", Currency::CNY).unwrap(),
    );
    merchant.call(&pay).await;
    let mut ids = Vec::new();
    for _ in 0..3 {
        let body = receiver.until(&no, "TRADE_SUCCESS").await;
        let notification = alipay::notify::verify_notification(&body, "charset", &merchant.verifier).unwrap();
        ids.push(notification.get("notify_id").unwrap().to_owned());
    }
    assert!(ids.windows(2).all(|w| w[0] == w[1]), "{ids:?}");
    let stats: serde_json::Value =
        reqwest::get(format!("{}/stats", merchant.hooks)).await.unwrap().json().await.unwrap();
    // The third delivery was acknowledged; the counter follows the ack, so wait for it.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    let mut stats = stats;
    while stats["stats"]["notify_acked"] != 1 && tokio::time::Instant::now() < deadline {
        tokio::task::yield_now().await;
        stats = reqwest::get(format!("{}/stats", merchant.hooks)).await.unwrap().json().await.unwrap();
    }
    assert_eq!(stats["stats"]["notify_acked"], 1);
    assert_eq!(stats["stats"]["notify_failed"], 2);
}
