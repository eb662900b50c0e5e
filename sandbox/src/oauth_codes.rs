//! Auth codes and tokens for `alipay.system.oauth.token`: a test hook issues a code for a user
//! (as the buyer's wallet would after consent); the code works once.

use std::collections::HashMap;

use parking_lot::Mutex;
use rand::Rng;

/// Most codes and refresh tokens held at once.
pub const MAX_GRANTS: usize = 100_000;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Grant {
    pub app_id: String,
    pub user_id: String,
}

/// Issued tokens for one exchange.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tokens {
    pub user_id: String,
    pub access_token: String,
    pub refresh_token: String,
}

#[derive(Default)]
pub struct OauthCodes {
    codes: Mutex<HashMap<String, Grant>>,
    refresh: Mutex<HashMap<String, Grant>>,
}

fn token(prefix: &str) -> String {
    let tail: String = rand::rng().sample_iter(rand::distr::Alphanumeric).take(32).map(char::from).collect();
    format!("{prefix}{tail}")
}

impl OauthCodes {
    /// Issues a one-time code for `user_id` (or a fresh user) of `app_id`; `None` when full.
    pub fn issue(&self, app_id: &str, user_id: Option<String>) -> Option<(String, String)> {
        let user_id =
            user_id.unwrap_or_else(|| format!("2088{:012}", rand::rng().random_range(0..1_000_000_000_000u64)));
        let mut codes = self.codes.lock();
        if codes.len() >= MAX_GRANTS {
            return None;
        }
        let code = token("");
        codes.insert(code.clone(), Grant { app_id: app_id.to_owned(), user_id: user_id.clone() });
        Some((code, user_id))
    }

    /// Exchanges a code (once) for tokens.
    pub fn exchange_code(&self, app_id: &str, code: &str) -> Option<Tokens> {
        let grant = {
            let mut codes = self.codes.lock();
            match codes.get(code) {
                Some(grant) if grant.app_id == app_id => codes.remove(code),
                _ => None,
            }
        }?;
        self.tokens_for(grant)
    }

    /// Exchanges a refresh token (once) for new tokens.
    pub fn exchange_refresh(&self, app_id: &str, refresh_token: &str) -> Option<Tokens> {
        let grant = {
            let mut refresh = self.refresh.lock();
            match refresh.get(refresh_token) {
                Some(grant) if grant.app_id == app_id => refresh.remove(refresh_token),
                _ => None,
            }
        }?;
        self.tokens_for(grant)
    }

    fn tokens_for(&self, grant: Grant) -> Option<Tokens> {
        let mut refresh = self.refresh.lock();
        if refresh.len() >= MAX_GRANTS {
            return None;
        }
        let tokens = Tokens {
            user_id: grant.user_id.clone(),
            access_token: token("authusrB"),
            refresh_token: token("authusrB"),
        };
        refresh.insert(tokens.refresh_token.clone(), grant);
        Some(tokens)
    }
}
