//! After a run of every kind of call — paid, refused and UNKNOWN payments, a refund, a cancel, a
//! QR order, Alipay's notifications, webhooks queued, and hostile requests — no secret shows in
//! what anyone outside the vault can read: answers (bodies and headers), the logs (every level,
//! every crate, the `log` records of tokio-postgres included), the metrics, or a `pg_dump` of the
//! whole database.

use std::io::Write;
use std::process::Command;
use std::sync::{Arc, Mutex};

use serde_json::{Value, json};
use stack::*;
use tenants::model::{Dialect, Limits};
use tracing_subscriber::util::SubscriberInitExt;

/// Log lines, as the service's stderr would get them.
#[derive(Clone, Default)]
struct Logs(Arc<Mutex<Vec<u8>>>);

impl Write for Logs {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

// One thread (the current-thread runtime) runs the whole stack, so this thread's log subscriber
// hears every part of it.
#[tokio::test]
async fn no_secret_leaks_into_answers_logs_metrics_or_the_database() {
    let logs = Logs::default();
    let writer = logs.clone();
    let _logging = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_ansi(false)
        .with_writer(move || writer.clone())
        .finish()
        .set_default();
    let stack = Stack::start(Options::default()).await;
    let limits = Limits { pay_rate: 1000, pay_burst: 1000, other_rate: 1000 };
    let rsa = stack.openapi_tenant().await;
    let (md5, webhook_secret) = stack
        .tenant_with_webhook(Dialect::Mapi, alipay::SignType::Md5, limits, Some("http://127.0.0.1:9/hook".into()))
        .await;
    let http = reqwest::Client::new();
    let mut seen = String::new();
    let mut keep = |status: u16, body: &Value| seen.push_str(&format!("{status} {body}\n"));

    for (pos, currency) in [(&rsa, "CNY"), (&md5, "HKD")] {
        let paid = trade_no("paid");
        for (no, suffix) in [(paid.clone(), "00"), (trade_no("refused"), "50"), (trade_no("later"), "60")] {
            let (status, body) = pos.pay_in(&no, &code(suffix), "20.00", currency).await;
            keep(status, &body);
        }
        let refund = json!({"out_request_no": format!("{paid}r"), "amount": "5.00"});
        let (status, body) = pos.send("POST", &format!("/v1/payments/{paid}/refunds"), Some(refund)).await;
        keep(status, &body);
        let (status, body) = pos.send("POST", &format!("/v1/payments/{paid}/cancel"), None).await;
        keep(status, &body);
        let order = json!({"out_trade_no": trade_no("qr"), "amount": "9.00", "currency": currency, "subject": "Tea"});
        let (status, body) = pos.send("POST", "/v1/qr-orders", Some(order)).await;
        keep(status, &body);
        let (status, body) = pos.get(&paid, 2).await;
        keep(status, &body);
        // A POS with the wrong secret, and hostile headers and bodies.
        let wrong = Pos { secret: "not-the-secret-0000000000000000".into(), ..pos.clone() };
        let (status, body) = wrong.pay(&trade_no("wrong"), &code("00"), "1.00").await;
        keep(status, &body);
    }
    for (authorization, body) in [
        ("ACQ1-HMAC-SHA256 Credential=", "{}"),
        ("Bearer x", "{\"out_trade_no\":"),
        (&*format!("ACQ1-HMAC-SHA256 Credential={}, Timestamp=1, Nonce=abcdefgh, Signature=00", rsa.key_id), "{}"),
    ] {
        let response = http
            .post(format!("{}/v1/payments", stack.base()))
            .header("authorization", authorization)
            .body(body.to_owned())
            .send()
            .await
            .unwrap();
        let headers = format!("{:?}", response.headers());
        seen.push_str(&format!("{headers} {}\n", response.text().await.unwrap()));
    }
    let forged = http
        .post(format!("{}/notify/{}", stack.base(), md5.tenant_id))
        .body("sign=x&out_trade_no=y")
        .send()
        .await
        .unwrap();
    seen.push_str(&forged.text().await.unwrap());

    let metrics =
        http.get(format!("http://{}/metrics", stack.gateway.admin_addr())).send().await.unwrap().text().await.unwrap();
    assert!(metrics.contains("alipay_calls_total"), "the metrics were read");
    let dump = pg_dump(&stack);
    assert!(dump.contains(&rsa.key_id) && dump.contains("trades"), "the dump holds the run");
    let heard = || String::from_utf8_lossy(&logs.0.lock().unwrap()).into_owned();
    let logged = heard();
    assert!(logged.contains(&rsa.key_id) || logged.contains("INSERT INTO trades"), "the logs were heard");

    // What must never show: POS secrets, the webhook secret, the MD5 key, the app private key
    // (any line of its PEM body), the master key, the admin token.
    let master = stack.master_key.split_whitespace().last().unwrap().to_owned();
    let mut secrets = vec![rsa.secret.clone(), md5.secret.clone(), webhook_secret.clone(), MD5_KEY.to_owned(), master];
    secrets.extend(MERCHANT_PRIVATE.lines().filter(|l| !l.starts_with("-----") && l.len() > 20).map(str::to_owned));
    secrets.push(ADMIN_TOKEN.to_owned());
    let channels = [("answers", seen.clone()), ("logs", logged), ("metrics", metrics.clone()), ("pg_dump", dump)];
    assert_eq!(found(&channels, &secrets), Vec::<String>::new(), "no secret shows anywhere");

    // The scan finds what is there: a secret planted in a log line, in a row of the database (read
    // back by a fresh pg_dump), in an answer and in the metrics is found, each where it was put.
    tracing::warn!(token = ADMIN_TOKEN, "a leak planted by the test");
    let logged = heard();
    // (Read before the planting statement below, which tokio-postgres logs with its parameters.)
    let client = stack.db.client().await;
    client
        .execute(
            "INSERT INTO alipay_notifications (tenant_id, notify_id, out_trade_no, trade_status) \
             VALUES ($1, $2, 'planted', 'TRADE_SUCCESS')",
            &[&md5.tenant_id, &MD5_KEY],
        )
        .await
        .unwrap();
    let planted = [
        ("answers", format!("{seen}{}", rsa.secret)),
        ("logs", logged),
        ("metrics", format!("{metrics}# {webhook_secret}")),
        ("pg_dump", pg_dump(&stack)),
    ];
    let index = |secret: &str| secrets.iter().position(|s| s == secret).unwrap();
    let expected: Vec<String> = [
        ("answers", &rsa.secret),
        ("logs", &ADMIN_TOKEN.to_owned()),
        ("metrics", &webhook_secret),
        ("pg_dump", &MD5_KEY.to_owned()),
    ]
    .into_iter()
    .map(|(what, secret)| format!("secret #{} in the {what}", index(secret)))
    .collect();
    assert_eq!(found(&planted, &secrets), expected);
}

/// Where each of `secrets` shows in each named text (`secret #i in the what`), in order.
fn found(channels: &[(&str, String)], secrets: &[String]) -> Vec<String> {
    channels
        .iter()
        .flat_map(|(what, text)| {
            secrets
                .iter()
                .enumerate()
                .filter(|(_, secret)| text.contains(secret.as_str()))
                .map(move |(i, _)| format!("secret #{i} in the {what}"))
        })
        .collect()
}

fn pg_dump(stack: &Stack) -> String {
    let dump = Command::new("pg_dump").arg("--data-only").arg(&stack.db.url).output().unwrap();
    assert!(dump.status.success(), "{}", String::from_utf8_lossy(&dump.stderr));
    String::from_utf8_lossy(&dump.stdout).into_owned()
}
