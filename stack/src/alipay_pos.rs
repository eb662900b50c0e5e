//! A POS that speaks Alipay's own OpenAPI to the gateway's front door, as the official SDKs do:
//! requests signed with the POS's key, answers verified with the front door's platform key.

use alipay::openapi::{Call, Reply, RequestMeta, build_request, read_reply};
use alipay::time_text::beijing_datetime;
use std::sync::Arc;

use alipay::{AppId, Charset, Params, Signer, Verifier};

#[derive(Clone)]
pub struct AlipayPos {
    pub http: reqwest::Client,
    /// The front door's `gateway.do`.
    pub url: String,
    pub app_id: AppId,
    /// The POS's own key.
    pub signer: Arc<Signer>,
    /// The front door's platform public key ("Alipay's public key" to the POS).
    pub verifier: Arc<Verifier>,
    /// The POS's private key (PKCS#1 PEM) and the platform public key (bare base64), as a POS
    /// vendor configures them in an SDK.
    pub private_key_pem: String,
    pub platform_public_key: String,
}

impl AlipayPos {
    /// Signs and sends `call` (with `notify_url`, if given); the verified answer.
    pub async fn exec<C: Call>(&self, call: &C, notify_url: Option<&str>) -> Reply<C::Answer> {
        let body = self.send(&self.params(call, notify_url)).await;
        read_reply::<C>(body.as_bytes(), Charset::Utf8, &self.verifier)
    }

    /// The signed parameters of `call`, to send as they are or changed.
    pub fn params<C: Call>(&self, call: &C, notify_url: Option<&str>) -> Params {
        let timestamp = beijing_datetime(time::OffsetDateTime::now_utc());
        let meta = RequestMeta {
            app_id: &self.app_id,
            charset: Charset::Utf8,
            timestamp: &timestamp,
            notify_url,
            app_auth_token: None,
        };
        build_request(call, &meta, &self.signer).unwrap()
    }

    /// Signs `params` again (after a change), as the POS's SDK would have.
    pub fn sign(&self, params: &mut Params) {
        let text = params.canonical(alipay::params::Unsigned::Sign);
        params.set("sign", self.signer.sign(text.as_bytes()).unwrap());
    }

    /// Posts `params` as a form; the answer's body.
    pub async fn send(&self, params: &Params) -> String {
        let form = params.to_form(Charset::Utf8).unwrap();
        let response = self
            .http
            .post(&self.url)
            .header("content-type", "application/x-www-form-urlencoded;charset=utf-8")
            .body(form)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200, "Alipay answers every call with HTTP 200");
        response.text().await.unwrap()
    }
}
