//! A tenant's POS terminal: signs every request with the tenant's partner API credential.

use serde_json::{Value, json};

#[derive(Clone)]
pub struct Pos {
    pub http: reqwest::Client,
    pub base: String,
    pub key_id: String,
    pub secret: String,
    /// `app_id` or `partner` at the sandbox.
    pub alipay_id: String,
    pub tenant_id: uuid::Uuid,
    pub slug: String,
    pub dialect: tenants::model::Dialect,
}

impl Pos {
    pub async fn send(&self, method: &str, path: &str, body: Option<Value>) -> (u16, Value) {
        let body = body.map(|b| b.to_string()).unwrap_or_default();
        let nonce = format!("n{}", uuid::Uuid::new_v4().simple());
        let now = time::OffsetDateTime::now_utc().unix_timestamp();
        let auth =
            tenants::signature::authorization(&self.key_id, &self.secret, method, path, now, &nonce, body.as_bytes());
        let method: reqwest::Method = method.parse().unwrap();
        let response = self
            .http
            .request(method, format!("{}{path}", self.base))
            .header("authorization", auth)
            .header("content-type", "application/json")
            .body(body)
            .send()
            .await
            .unwrap();
        let status = response.status().as_u16();
        (status, response.json().await.unwrap_or(Value::Null))
    }

    pub async fn pay(&self, out_trade_no: &str, auth_code: &str, amount: &str) -> (u16, Value) {
        let body = json!({"out_trade_no": out_trade_no, "auth_code": auth_code, "amount": amount, "subject": "Noodles", "store_id": "S1"});
        self.send("POST", "/v1/payments", Some(body)).await
    }

    pub async fn pay_in(&self, out_trade_no: &str, auth_code: &str, amount: &str, currency: &str) -> (u16, Value) {
        let body = json!({"out_trade_no": out_trade_no, "auth_code": auth_code, "amount": amount, "currency": currency, "subject": "Burger set"});
        self.send("POST", "/v1/payments", Some(body)).await
    }

    /// Pays in the tenant's usual currency: CNY (implied) for OpenAPI, USD for Global (MAPI).
    pub async fn charge(&self, out_trade_no: &str, auth_code: &str, amount: &str) -> (u16, Value) {
        match self.dialect {
            tenants::model::Dialect::Openapi => self.pay(out_trade_no, auth_code, amount).await,
            tenants::model::Dialect::Mapi => self.pay_in(out_trade_no, auth_code, amount, "USD").await,
        }
    }

    /// The payment as the ledger holds it, held up to `wait` seconds until final.
    pub async fn get(&self, out_trade_no: &str, wait: u64) -> (u16, Value) {
        self.send("GET", &format!("/v1/payments/{out_trade_no}?wait={wait}"), None).await
    }
}
