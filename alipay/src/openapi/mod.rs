//! The OpenAPI dialect: `gateway.do?method=...`, business parameters in a `biz_content` JSON
//! string, JSON answers wrapped as `{"<method>_response": {...}, "sign": "..."}`.
//!
//! # Layout
//! - [`mod@self`]: the [`Call`] trait, common parameters, request signing and verification.
//! - [`answer`]: the envelope: finding the signed member, verifying it, classifying the answer.
//! - [`trade`]: trade.pay, query, cancel, refund, fastpay.refund.query, precreate, close.
//! - [`oauth`]: the oauth.token exchange of an auth code for a user id.
//! - [`bill`]: bill.downloadurl.query, where to download a day's or a month's bill.

pub mod answer;
pub mod bill;
pub mod oauth;
pub mod trade;

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::charset::{Charset, CharsetError};
use crate::ids::AppId;
use crate::outcome::Outcome;
use crate::params::{Params, Unsigned, canonical};
use crate::sign::{BadSignature, SignError, Signer, Verifier};

pub use answer::{Reply, Status, read_reply, write_answer};

/// One OpenAPI method with its request and answer types.
pub trait Call: Serialize {
    /// `method`, e.g. `alipay.trade.pay`.
    const METHOD: &'static str;
    /// The answer's member name, e.g. `alipay_trade_pay_response`.
    const RESPONSE_KEY: &'static str;
    type Answer: DeserializeOwned + Serialize;

    /// Adds the business parameters; by default the request itself as `biz_content`.
    fn write_params(&self, params: &mut Params) -> Result<(), serde_json::Error> {
        params.set("biz_content", serde_json::to_string(self)?);
        Ok(())
    }

    /// What a readable, verified (or legitimately unsigned) answer proves.
    fn classify(answer: &Self::Answer) -> Outcome;
}

/// The common parameters of one request.
#[derive(Debug, Clone, Copy)]
pub struct RequestMeta<'a> {
    pub app_id: &'a AppId,
    pub charset: Charset,
    /// `yyyy-MM-dd HH:mm:ss` in GMT+8, see [`crate::time_text::beijing_datetime`].
    pub timestamp: &'a str,
    pub notify_url: Option<&'a str>,
    pub app_auth_token: Option<&'a str>,
}

/// A request could not be built.
#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    #[error("request text cannot be written in the request charset")]
    Charset(#[from] CharsetError),
    #[error("request could not be serialised: {0}")]
    Json(#[from] serde_json::Error),
    #[error(transparent)]
    Sign(#[from] SignError),
}

/// Builds and signs the full parameter set of `call` (including `sign`).
pub fn build_request<C: Call>(call: &C, meta: &RequestMeta<'_>, signer: &Signer) -> Result<Params, BuildError> {
    let mut params = Params::new();
    params.set("app_id", meta.app_id.as_str());
    params.set("method", C::METHOD);
    params.set("format", "JSON");
    params.set("charset", meta.charset.label());
    params.set("sign_type", signer.sign_type().as_str());
    params.set("timestamp", meta.timestamp);
    params.set("version", "1.0");
    params.set_opt("notify_url", meta.notify_url);
    params.set_opt("app_auth_token", meta.app_auth_token);
    call.write_params(&mut params)?;
    let text = params.canonical(Unsigned::Sign);
    let sign = signer.sign(&meta.charset.encode(&text)?)?;
    params.set("sign", sign);
    Ok(params)
}

/// The text an OpenAPI request's signature covers (everything but `sign`, empty values dropped).
pub fn request_signed_text<'a>(pairs: impl IntoIterator<Item = (&'a str, &'a str)>) -> String {
    canonical(pairs, Unsigned::Sign)
}

/// Verifies a received request's `sign` over its other parameters, encoded in `charset`.
pub fn verify_request(params: &[(String, String)], charset: Charset, verifier: &Verifier) -> Result<(), BadSignature> {
    let sign = params.iter().find(|(k, _)| k == "sign").map(|(_, v)| v.as_str()).ok_or(BadSignature)?;
    let text = request_signed_text(params.iter().map(|(k, v)| (k.as_str(), v.as_str())));
    let bytes = charset.encode(&text).map_err(|_| BadSignature)?;
    verifier.verify(&bytes, sign)
}
