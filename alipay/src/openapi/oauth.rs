//! `alipay.system.oauth.token`: exchange an auth code for the buyer's user id and token.
//!
//! Its parameters are top-level, not `biz_content`; its successful answer has no `code`, and
//! its errors come as `error_response`.

use serde::{Deserialize, Serialize};
use serde_with::skip_serializing_none;

use super::{Call, Status};
use crate::ids::UserId;
use crate::outcome::{Outcome, UnknownReason};
use crate::params::Params;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum GrantType {
    AuthorizationCode,
    RefreshToken,
}

impl GrantType {
    pub const fn as_str(self) -> &'static str {
        match self {
            GrantType::AuthorizationCode => "authorization_code",
            GrantType::RefreshToken => "refresh_token",
        }
    }
}

#[skip_serializing_none]
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct OauthToken {
    pub grant_type: GrantType,
    pub code: Option<String>,
    pub refresh_token: Option<String>,
}

impl OauthToken {
    pub fn with_code(code: impl Into<String>) -> Self {
        OauthToken { grant_type: GrantType::AuthorizationCode, code: Some(code.into()), refresh_token: None }
    }
}

#[skip_serializing_none]
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct OauthTokenAnswer {
    pub code: Option<String>,
    pub msg: Option<String>,
    pub sub_code: Option<String>,
    pub sub_msg: Option<String>,
    pub user_id: Option<UserId>,
    pub open_id: Option<String>,
    pub access_token: Option<String>,
    pub expires_in: Option<u64>,
    pub re_expires_in: Option<u64>,
    pub refresh_token: Option<String>,
    pub auth_start: Option<String>,
}

impl Call for OauthToken {
    const METHOD: &'static str = "alipay.system.oauth.token";
    const RESPONSE_KEY: &'static str = "alipay_system_oauth_token_response";
    type Answer = OauthTokenAnswer;

    fn write_params(&self, params: &mut Params) -> Result<(), serde_json::Error> {
        params.set("grant_type", self.grant_type.as_str());
        params.set_opt("code", self.code.clone());
        params.set_opt("refresh_token", self.refresh_token.clone());
        Ok(())
    }

    fn classify(answer: &OauthTokenAnswer) -> Outcome {
        match &answer.code {
            None | Some(_) if answer.access_token.is_some() && answer.sub_code.is_none() => Outcome::Success,
            Some(code) => Status {
                code: code.clone(),
                msg: answer.msg.clone().unwrap_or_default(),
                sub_code: answer.sub_code.clone(),
                sub_msg: answer.sub_msg.clone(),
            }
            .classify(),
            None => Outcome::Unknown(UnknownReason::Unreadable),
        }
    }
}
