//! `POST /v1/oauth/token`: a digital menu exchanges the buyer's auth code for their Alipay user
//! id (OpenAPI tenants). Nothing is recorded.

use alipay::Outcome;
use alipay::unified::Request;
use bytes::Bytes;
use http::{Response, StatusCode};
use http_body_util::Full;
use serde_json::json;
use tenants::model::Dialect;

use super::Ctx;
use super::fields::Fields;
use super::payments::ready;
use crate::problem::{ApiError, json_response};

pub async fn token(ctx: Ctx, body: &[u8]) -> Result<Response<Full<Bytes>>, ApiError> {
    let mut fields = Fields::parse(body, &["code"])?;
    let code = fields.text_up_to("code", 128);
    if code.as_deref().is_none_or(|c| c.is_empty() || !c.bytes().all(|b| b.is_ascii_graphic())) {
        fields.reject("code", "is required: 1 to 128 printable characters");
    }
    fields.finish()?;
    let code = code.unwrap_or_default();
    if ctx.tenant.dialect != Dialect::Openapi {
        return Err(ApiError::NotSupported("oauth tokens are for OpenAPI tenants".into()));
    }
    ready(&ctx.tenant)?;
    let answer = ctx
        .state
        .upstream
        .call_for(&ctx.tenant, None, &Request::OauthToken { code: &code })
        .await
        .map_err(|e| ApiError::Unavailable(e.to_string()))?;
    match answer.outcome {
        Outcome::Success => Ok(json_response(
            StatusCode::OK,
            &json!({
                "user_id": answer.facts.user_id,
                "access_token": answer.facts.access_token,
                "expires_in": answer.facts.expires_in,
            }),
        )),
        Outcome::Failed(failure) => Err(ApiError::Refused {
            code: failure.reason_code().to_owned(),
            message: failure.message.unwrap_or_else(|| "Alipay refused the auth code".into()),
        }),
        Outcome::Unknown(reason) => Err(ApiError::Upstream(reason.to_string())),
    }
}
