//! A sandbox on port 0 per test, merchants that sign with the vector keys, a client that speaks
//! both dialects through the `alipay` crate, and a notification receiver.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use alipay::charset::Charset;
use alipay::mapi::{self, Service};
use alipay::openapi::{self, Call, Reply};
use alipay::time_text::beijing_datetime;
use alipay::{AppId, Partner, PublicKey, SignType, Signer, Verifier};
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use sandbox::{Config, Dialect, Registration, Sandbox};
use serde_json::Value;
use tokio::sync::mpsc;

pub use alipay::test_keys::{MD5_KEY, MERCHANT_PRIVATE, MERCHANT_PUBLIC_B64};

/// Scenario delays at this scale: 10 s → 100 ms, 58 s → 580 ms, 30 s → 300 ms.
pub const TIME_SCALE: f64 = 0.01;

pub async fn start(time_scale: f64) -> Sandbox {
    Sandbox::start(Config { time_scale, ..Config::default() }).await.expect("sandbox starts")
}

/// A unique merchant trade number per call.
pub fn trade_no(prefix: &str) -> String {
    static N: AtomicUsize = AtomicUsize::new(0);
    format!("{prefix}{}x{}", std::process::id(), N.fetch_add(1, Ordering::Relaxed))
}

/// A buyer barcode that plays `scenario` (its last two digits).
pub fn code(scenario: &str) -> String {
    format!("2812345678901234{scenario}")
}

/// A merchant client, as a gateway would be: it signs requests and verifies answers.
pub struct Merchant {
    pub http: reqwest::Client,
    pub gateway: String,
    pub hooks: String,
    pub id: String,
    pub signer: Signer,
    /// Verifies the sandbox's answers and notifications.
    pub verifier: Verifier,
    pub charset: Charset,
    pub notify_url: Option<String>,
}

impl Merchant {
    pub async fn openapi(sandbox: &Sandbox, sign_type: SignType) -> Merchant {
        let id = format!("20210000{:08}", next_id());
        register(sandbox, &Registration::rsa(Dialect::Openapi, &id, sign_type, MERCHANT_PUBLIC_B64)).await;
        Merchant::new(sandbox, id, Signer::from_secret(sign_type, MERCHANT_PRIVATE).unwrap(), sign_type).await
    }

    pub async fn mapi(sandbox: &Sandbox, sign_type: SignType) -> Merchant {
        let id = format!("2088{:012}", next_id());
        let (registration, signer) = match sign_type {
            SignType::Md5 => (Registration::md5(&id, MD5_KEY), Signer::from_secret(SignType::Md5, MD5_KEY).unwrap()),
            rsa => (
                Registration::rsa(Dialect::Mapi, &id, rsa, MERCHANT_PUBLIC_B64),
                Signer::from_secret(rsa, MERCHANT_PRIVATE).unwrap(),
            ),
        };
        register(sandbox, &registration).await;
        Merchant::new(sandbox, id, signer, sign_type).await
    }

    async fn new(sandbox: &Sandbox, id: String, signer: Signer, sign_type: SignType) -> Merchant {
        let verifier = match sign_type {
            SignType::Md5 => Verifier::from_key_text(SignType::Md5, MD5_KEY).unwrap(),
            rsa => Verifier::rsa(rsa, &PublicKey::parse(sandbox.public_key_pem()).unwrap()).unwrap(),
        };
        Merchant {
            http: reqwest::Client::new(),
            gateway: sandbox.gateway_url(),
            hooks: format!("{}/sandbox", sandbox.url()),
            id,
            signer,
            verifier,
            charset: Charset::Utf8,
            notify_url: None,
        }
    }

    /// The signed form of an OpenAPI call.
    pub fn openapi_form<C: Call>(&self, call: &C) -> String {
        let app_id: AppId = self.id.parse().unwrap();
        let timestamp = beijing_datetime(time::OffsetDateTime::now_utc());
        let meta = openapi::RequestMeta {
            app_id: &app_id,
            charset: self.charset,
            timestamp: &timestamp,
            notify_url: self.notify_url.as_deref(),
            app_auth_token: None,
        };
        openapi::build_request(call, &meta, &self.signer).unwrap().to_form(self.charset).unwrap()
    }

    pub async fn post(&self, form: String) -> (reqwest::StatusCode, Bytes) {
        let response = self
            .http
            .post(&self.gateway)
            .header("content-type", format!("application/x-www-form-urlencoded;charset={}", self.charset.label()))
            .body(form)
            .send()
            .await
            .unwrap();
        let status = response.status();
        (status, response.bytes().await.unwrap())
    }

    /// An OpenAPI call: its HTTP status and what the answer proves.
    pub async fn call<C: Call>(&self, call: &C) -> (reqwest::StatusCode, Reply<C::Answer>) {
        let (status, body) = self.post(self.openapi_form(call)).await;
        (status, openapi::read_reply::<C>(&body, self.charset, &self.verifier))
    }

    /// A MAPI call.
    pub async fn service<S: Service>(&self, service: &S) -> (reqwest::StatusCode, Reply<S::Answer>) {
        let partner: Partner = self.id.parse().unwrap();
        let meta =
            mapi::RequestMeta { partner: &partner, charset: self.charset, notify_url: self.notify_url.as_deref() };
        let form = mapi::build_request(service, &meta, &self.signer).unwrap().to_form(self.charset).unwrap();
        let (status, body) = self.post(form).await;
        (status, mapi::read_reply::<S>(&body, self.charset, &self.verifier))
    }

    /// The sandbox's ground truth for one of this merchant's trades.
    pub async fn truth(&self, out_trade_no: &str) -> Value {
        let url = format!("{}/trades/{}/{}", self.hooks, self.id, out_trade_no);
        let response = self.http.get(url).send().await.unwrap();
        assert_eq!(response.status(), 200, "trade {out_trade_no} exists at the sandbox");
        response.json().await.unwrap()
    }

    pub async fn has_trade(&self, out_trade_no: &str) -> bool {
        let url = format!("{}/trades/{}/{}", self.hooks, self.id, out_trade_no);
        self.http.get(url).send().await.unwrap().status() == 200
    }

    pub async fn hook(&self, path: &str, body: Value) -> (reqwest::StatusCode, Value) {
        let response = self.http.post(format!("{}/{path}", self.hooks)).json(&body).send().await.unwrap();
        let status = response.status();
        (status, response.json().await.unwrap_or(Value::Null))
    }
}

fn next_id() -> usize {
    static N: AtomicUsize = AtomicUsize::new(1);
    N.fetch_add(1, Ordering::Relaxed) + std::process::id() as usize * 1000
}

pub async fn register(sandbox: &Sandbox, registration: &Registration) {
    let response = reqwest::Client::new()
        .post(format!("{}/sandbox/merchants", sandbox.url()))
        .json(registration)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 201, "{}", response.text().await.unwrap_or_default());
}

/// A merchant's notify_url endpoint: records every delivery; fails the first `fail_first` ones.
pub struct Receiver {
    pub url: String,
    deliveries: mpsc::UnboundedReceiver<Bytes>,
}

impl Receiver {
    pub async fn start(fail_first: usize) -> Receiver {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/notify", listener.local_addr().unwrap());
        let (tx, deliveries) = mpsc::unbounded_channel();
        let failures = Arc::new(AtomicUsize::new(fail_first));
        tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else { return };
                let tx = tx.clone();
                let failures = failures.clone();
                let service = service_fn(move |req: hyper::Request<hyper::body::Incoming>| {
                    let tx = tx.clone();
                    let failures = failures.clone();
                    async move {
                        let body = req.into_body().collect().await.map(|b| b.to_bytes()).unwrap_or_default();
                        let _ = tx.send(body);
                        let fail =
                            failures.fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1)).is_ok();
                        let answer = if fail { "fail" } else { "success" };
                        Ok::<_, std::convert::Infallible>(hyper::Response::new(Full::new(Bytes::from(answer))))
                    }
                });
                tokio::spawn(
                    hyper::server::conn::http1::Builder::new().serve_connection(TokioIo::new(stream), service),
                );
            }
        });
        Receiver { url, deliveries }
    }

    /// The next delivery (waits at most `within`).
    pub async fn next(&mut self, within: Duration) -> Bytes {
        tokio::time::timeout(within, self.deliveries.recv()).await.expect("a notification arrives in time").unwrap()
    }

    /// Skips deliveries until one says `out_trade_no` reached `trade_status`; returns its body.
    pub async fn until(&mut self, out_trade_no: &str, trade_status: &str) -> Bytes {
        loop {
            let body = self.next(Duration::from_secs(10)).await;
            let fields = alipay::charset::decode_form(&body, Charset::Utf8).unwrap();
            let has = |k: &str, v: &str| fields.iter().any(|(key, value)| key == k && value == v);
            if has("out_trade_no", out_trade_no) && has("trade_status", trade_status) {
                return body;
            }
        }
    }
}
