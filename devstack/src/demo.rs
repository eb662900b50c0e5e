//! The guided demo: what a POS sees, step by step, against the local stack.

#![allow(clippy::print_stdout, reason = "the demo is printed for the person who ran it")]

use std::time::Instant;

use loadtest::tenants_file::PosTenant;
use serde_json::{Value, json};

use crate::state::StackFile;

/// A POS of one tenant: signs each call (ACQ1-HMAC) and shows the answer.
pub struct Pos<'a> {
    pub http: reqwest::Client,
    pub gateway: &'a str,
    pub tenant: &'a PosTenant,
}

impl Pos<'_> {
    pub async fn call(&self, method: &str, path: &str, body: Option<&Value>) -> anyhow::Result<(u16, Value)> {
        let bytes = body.map(serde_json::to_vec).transpose()?.unwrap_or_default();
        let authorization = loadtest::client::authorization(self.tenant, method, path, &bytes);
        let method: reqwest::Method = method.parse()?;
        let mut request =
            self.http.request(method, format!("{}{path}", self.gateway)).header("authorization", authorization);
        if body.is_some() {
            request = request.header("content-type", "application/json").body(bytes);
        }
        let response = request.send().await.map_err(|e| anyhow::anyhow!("the gateway at {}: {e}", self.gateway))?;
        let status = response.status().as_u16();
        Ok((status, response.json().await.unwrap_or(Value::Null)))
    }
}

fn trade_no(what: &str) -> String {
    format!("demo-{what}-{}", time::OffsetDateTime::now_utc().unix_timestamp_nanos() / 1_000_000)
}

/// A buyer's barcode whose last two digits pick the sandbox's scenario (design §5).
fn barcode(suffix: &str) -> String {
    format!("2812345678901234{suffix}")
}

fn show(step: &str, status: u16, body: &Value) {
    let fields = ["status", "amount", "currency", "refunded_amount", "trade_no", "qr_code", "cancel_action"];
    let mut shown: Vec<String> = fields
        .iter()
        .filter_map(|f| {
            body.get(*f).filter(|v| !v.is_null()).map(|v| format!("{f}={}", v.as_str().unwrap_or(&v.to_string())))
        })
        .collect();
    if let Some(code) = body.pointer("/failure/code").and_then(Value::as_str) {
        shown.push(format!("failure={code}"));
    }
    if let Some(title) = body.get("title").and_then(Value::as_str) {
        shown.push(format!("problem=\"{title}\""));
    }
    println!("  {step:<46} HTTP {status}  {}", shown.join("  "));
}

/// Runs the demo against `stack`; fails if an answer is not what the step expects.
pub async fn run(stack: &StackFile) -> anyhow::Result<()> {
    let find = |slug: &str| {
        stack.tenants.iter().find(|t| t.slug == slug).ok_or_else(|| anyhow::anyhow!("no tenant {slug} in stack.json"))
    };
    let http = reqwest::Client::new();
    let noodles = Pos { http: http.clone(), gateway: &stack.gateway_url, tenant: find("noodle-bar")? };
    let dim_sum = Pos { http: http.clone(), gateway: &stack.gateway_url, tenant: find("dim-sum-hk")? };

    println!("noodle-bar (OpenAPI, RSA2), a customer shows an Alipay barcode:");
    let paid = trade_no("paid");
    let pay = |no: &str, suffix: &str, amount: &str| json!({"out_trade_no": no, "auth_code": barcode(suffix), "amount": amount, "subject": "Beef noodles"});
    let (status, body) = noodles.call("POST", "/v1/payments", Some(&pay(&paid, "00", "32.00"))).await?;
    show("paid at once", status, &body);
    expect(&body, "SUCCESS")?;

    let (status, body) = noodles.call("POST", "/v1/payments", Some(&pay(&trade_no("refused"), "50", "32.00"))).await?;
    show("refused by the buyer's bank", status, &body);
    expect(&body, "FAILED")?;

    let later = trade_no("later");
    let (status, body) = noodles.call("POST", "/v1/payments", Some(&pay(&later, "60", "18.50"))).await?;
    show("the buyer is still confirming", status, &body);
    expect(&body, "UNKNOWN")?;
    let waited = Instant::now();
    let (status, body) = noodles.call("GET", &format!("/v1/payments/{later}?wait=30"), None).await?;
    show(&format!("…settled {:.1} s later (?wait=30)", waited.elapsed().as_secs_f64()), status, &body);
    expect(&body, "SUCCESS")?;

    let refund = json!({"out_request_no": format!("{paid}-r1"), "amount": "12.00", "reason": "one bowl sent back"});
    let (status, body) = noodles.call("POST", &format!("/v1/payments/{paid}/refunds"), Some(&refund)).await?;
    show("refund 12.00 of the first payment", status, &body);
    let (status, body) = noodles.call("GET", &format!("/v1/payments/{paid}"), None).await?;
    show("the first payment now", status, &body);
    expect(&body, "PARTIALLY_REFUNDED")?;

    println!("dim-sum-hk (Global, MD5), a QR code on the table:");
    let order = trade_no("qr");
    let body = json!({"out_trade_no": order, "amount": "88.00", "currency": "HKD", "subject": "Dim sum for two"});
    let (status, body) = dim_sum.call("POST", "/v1/qr-orders", Some(&body)).await?;
    show("order code made", status, &body);
    expect(&body, "WAITING")?;
    let qr_code = body["qr_code"].as_str().unwrap_or_default().to_owned();
    let scanned =
        http.post(format!("{}/sandbox/qr/scan", stack.sandbox_url)).json(&json!({"qr_code": qr_code})).send().await?;
    println!("  {:<46} HTTP {}", "the customer scans and pays (sandbox hook)", scanned.status().as_u16());
    let (status, body) = dim_sum.call("GET", &format!("/v1/payments/{order}?wait=30"), None).await?;
    show("…the order", status, &body);
    expect(&body, "SUCCESS")?;
    Ok(())
}

fn expect(body: &Value, status: &str) -> anyhow::Result<()> {
    match body.get("status").and_then(Value::as_str) {
        Some(got) if got == status => Ok(()),
        other => anyhow::bail!("expected {status}, got {other:?}: {body}"),
    }
}
