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
    /// The Alipay account its trades are made in.
    pub fn alipay_account(&self) -> String {
        tenants::registry::alipay_account(self.dialect, &self.alipay_id)
    }

    /// The `Authorization` header for one call, signed now with a fresh nonce.
    pub fn authorization(&self, method: &str, path: &str, body: &[u8]) -> String {
        let nonce = format!("n{}", uuid::Uuid::new_v4().simple());
        let now = time::OffsetDateTime::now_utc().unix_timestamp();
        tenants::signature::authorization(&self.key_id, &self.secret, method, path, now, &nonce, body)
    }

    /// Sends `body` exactly as given, signed; answers the status and the body's text.
    pub async fn send_raw(&self, method: &str, path: &str, body: Vec<u8>) -> (u16, String) {
        self.try_send_raw(method, path, body).await.unwrap()
    }

    /// [`Pos::send_raw`] to a gateway that may not answer (e.g. one being killed).
    pub async fn try_send_raw(&self, method: &str, path: &str, body: Vec<u8>) -> Result<(u16, String), reqwest::Error> {
        let auth = self.authorization(method, path, &body);
        let method: reqwest::Method = method.parse().unwrap();
        let response = self
            .http
            .request(method, format!("{}{path}", self.base))
            .header("authorization", auth)
            .header("content-type", "application/json")
            .body(body)
            .send()
            .await?;
        Ok((response.status().as_u16(), response.text().await?))
    }

    pub async fn send(&self, method: &str, path: &str, body: Option<Value>) -> (u16, Value) {
        let body = body.map(|b| b.to_string()).unwrap_or_default();
        let (status, text) = self.send_raw(method, path, body.into_bytes()).await;
        (status, serde_json::from_str(&text).unwrap_or(Value::Null))
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
        self.send("POST", "/v1/payments", Some(self.charge_body(out_trade_no, auth_code, amount))).await
    }

    /// The body of [`Pos::charge`].
    pub fn charge_body(&self, out_trade_no: &str, auth_code: &str, amount: &str) -> Value {
        match self.dialect {
            tenants::model::Dialect::Openapi => {
                json!({"out_trade_no": out_trade_no, "auth_code": auth_code, "amount": amount, "subject": "Noodles", "store_id": "S1"})
            }
            tenants::model::Dialect::Mapi => {
                json!({"out_trade_no": out_trade_no, "auth_code": auth_code, "amount": amount, "currency": "USD", "subject": "Burger set"})
            }
        }
    }

    /// The payment as the ledger holds it, held up to `wait` seconds until final.
    pub async fn get(&self, out_trade_no: &str, wait: u64) -> (u16, Value) {
        self.send("GET", &format!("/v1/payments/{out_trade_no}?wait={wait}"), None).await
    }
}
