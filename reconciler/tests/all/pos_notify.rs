//! Alipay's notifications owed to front-door POS software: a paid front-door trade that carried a
//! `notify_url` is told to it in Alipay's form (here Global MAPI's, MD5-signed with the POS's key),
//! whoever recorded the payment; anything but the body `success` is retried, every attempt
//! recorded.

use std::convert::Infallible;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use alipay::{Md5Key, SignType, Verifier};
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper::{Request, Response};
use ledger::{Begin, NewTrade, Settlement, TradeKey, TradeKind};
use stack::*;
use time::OffsetDateTime;
use tokio::net::TcpListener;

use crate::helpers::*;

/// A POS's notify_url: answers `fail` to the first `failures` notifications, then `success`.
async fn pos_listening(failures: usize) -> (String, Arc<Mutex<Vec<Bytes>>>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/alipay/notify", listener.local_addr().unwrap());
    let received: Arc<Mutex<Vec<Bytes>>> = Arc::default();
    let kept = received.clone();
    tokio::spawn(async move {
        loop {
            let (stream, _) = listener.accept().await.unwrap();
            let kept = kept.clone();
            let service = service_fn(move |request: Request<Incoming>| {
                let kept = kept.clone();
                async move {
                    let body = request.into_body().collect().await.unwrap().to_bytes();
                    let mut all = kept.lock().unwrap();
                    all.push(body);
                    let answer = if all.len() <= failures { "fail" } else { "success" };
                    Ok::<_, Infallible>(Response::new(Full::new(Bytes::from_static(answer.as_bytes()))))
                }
            });
            let io = hyper_util::rt::TokioIo::new(stream);
            tokio::spawn(hyper::server::conn::http1::Builder::new().serve_connection(io, service));
        }
    });
    (url, received)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_paid_front_door_trade_is_notified_to_the_pos_signed_and_retried_until_success() {
    let stack = Stack::start(Options { notifications: false, ..Options::scaled(SCALE) }).await;
    let pos = stack.mapi_tenant().await;
    let issued = stack.enable_front_door(&pos, SignType::Md5).await;
    let md5_key = issued.md5_key.as_deref().unwrap().to_owned();
    let reconciler = stack.start_reconciler(stack.reconciler_config()).await;
    let (url, received) = pos_listening(1).await;

    // A front-door trade with the POS's notify_url, paid by whichever writer: here the store itself.
    let store = &reconciler.shared().store;
    let no = trade_no("N");
    let new = NewTrade {
        key: TradeKey::new(pos.tenant_id, &no),
        kind: TradeKind::Barcode,
        fingerprint: vec![0],
        amount: alipay::Amount::parse("30.00", alipay::Currency::USD).unwrap(),
        subject: "Dim sum".into(),
        store_id: None,
        terminal_id: None,
        operator_id: None,
        check_at: OffsetDateTime::now_utc() + Duration::from_secs(60),
        alipay_account: pos.alipay_account(),
        notify_url: Some(url),
    };
    let Begin::Started(trade) = store.begin(&new).await.unwrap() else { panic!("new trade") };
    let paid = Settlement::Paid {
        trade_no: Some("2026120522000000000000000001".into()),
        buyer_user_id: Some("2088000000000009".into()),
        paid_at: OffsetDateTime::now_utc(),
    };
    store.record(&trade, &paid).await.unwrap();

    let delivered = tokio::time::timeout(Duration::from_secs(15), async {
        loop {
            let reports = store.webhook_deliveries(pos.tenant_id, 10).await.unwrap();
            if let Some(report) =
                reports.into_iter().find(|r| r.delivery.event == "alipay.notify" && r.status == "delivered")
            {
                return report;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await
    .expect("the notification is delivered");
    assert_eq!(delivered.history.len(), 2, "`fail` was answered once: {delivered:?}");
    assert_eq!(delivered.history[0].error.as_deref(), Some("the answer was not `success`"));

    let bodies = received.lock().unwrap().clone();
    assert_eq!(bodies.len(), 2);
    let verifier = Verifier::md5(Md5Key::new(&md5_key).unwrap());
    let mut notify_ids = Vec::new();
    for body in &bodies {
        let note = alipay::notify::verify_notification(body, "_input_charset", &verifier).unwrap();
        assert_eq!(note.get("out_trade_no"), Some(no.as_str()));
        assert_eq!(note.get("trade_status"), Some("TRADE_SUCCESS"));
        assert_eq!(note.get("total_fee"), Some("30.00"));
        assert_eq!(note.get("currency"), Some("USD"));
        assert_eq!(note.get("seller_id"), Some(issued.id.as_str()), "the front door's partner, not the tenant's own");
        assert_eq!(note.get("notify_action_type"), Some("payByAccountAction"));
        notify_ids.push(note.get("notify_id").unwrap().to_owned());
    }
    assert_eq!(notify_ids[0], notify_ids[1], "notify_id stays the same across retries");
    let wrong = Verifier::md5(Md5Key::new("another-md5-key-0123").unwrap());
    assert!(alipay::notify::verify_notification(&bodies[0], "_input_charset", &wrong).is_err());
}
