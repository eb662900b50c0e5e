//! Partner API authentication (design §3; the scheme is [`tenants::signature`]). The signature
//! is checked in constant time; timestamps too far from our clock and nonces seen before (within
//! twice the allowed skew) are refused. Every failure is the same 401.

use std::collections::HashSet;
use std::sync::Arc;

use aws_lc_rs::hmac;
use parking_lot::Mutex;
use tenants::signature::{parse, string_to_sign};
use tenants::snapshot::{Snapshot, Tenant};
use time::OffsetDateTime;

use crate::problem::ApiError;

/// Nonces seen recently, per key id: two generations, each as long as the allowed window.
pub struct Nonces {
    window_secs: i64,
    max_per_generation: usize,
    inner: Mutex<Generations>,
}

struct Generations {
    started: i64,
    current: HashSet<String>,
    previous: HashSet<String>,
}

impl Nonces {
    pub fn new(window_secs: i64, max_per_generation: usize) -> Self {
        let inner = Generations { started: 0, current: HashSet::new(), previous: HashSet::new() };
        Nonces { window_secs, max_per_generation, inner: Mutex::new(inner) }
    }

    /// Records `nonce`; `false` if it was seen within the window (a replay).
    pub fn first_use(&self, key_id: &str, nonce: &str, now: i64) -> bool {
        let entry = format!("{key_id}:{nonce}");
        let mut inner = self.inner.lock();
        if now - inner.started >= self.window_secs || inner.current.len() >= self.max_per_generation {
            inner.previous = std::mem::take(&mut inner.current);
            inner.started = now;
        }
        if inner.previous.contains(&entry) {
            return false;
        }
        inner.current.insert(entry)
    }
}

/// What of a request its signature covers.
#[derive(Debug, Clone, Copy)]
pub struct SignedRequest<'a> {
    pub authorization: Option<&'a str>,
    pub method: &'a str,
    pub path_and_query: &'a str,
    pub body: &'a [u8],
}

/// Authenticates a request against the snapshot: the tenant it comes from.
pub fn authenticate(
    snapshot: &Snapshot,
    nonces: &Nonces,
    skew_secs: i64,
    request: SignedRequest<'_>,
    now: OffsetDateTime,
) -> Result<Arc<Tenant>, ApiError> {
    let SignedRequest { authorization, method, path_and_query, body } = request;
    let credentials = authorization.and_then(parse).ok_or(ApiError::Unauthorized)?;
    let (tenant, key) = snapshot.authenticate(credentials.key_id, now).ok_or(ApiError::Unauthorized)?;
    let now_secs = now.unix_timestamp();
    if (now_secs - credentials.timestamp).abs() > skew_secs {
        return Err(ApiError::Unauthorized);
    }
    let message = string_to_sign(method, path_and_query, credentials.timestamp, credentials.nonce, body);
    let hmac_key = hmac::Key::new(hmac::HMAC_SHA256, key.secret.expose().as_bytes());
    hmac::verify(&hmac_key, message.as_bytes(), &credentials.signature).map_err(|_| ApiError::Unauthorized)?;
    if !nonces.first_use(credentials.key_id, credentials.nonce, now_secs) {
        return Err(ApiError::Unauthorized);
    }
    Ok(tenant.clone())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nonces_are_single_use_within_the_window() {
        let nonces = Nonces::new(600, 10);
        assert!(nonces.first_use("k", "n1", 1000));
        assert!(!nonces.first_use("k", "n1", 1001));
        assert!(nonces.first_use("other", "n1", 1001));
        assert!(!nonces.first_use("k", "n1", 1700), "still in the previous generation");
        assert!(nonces.first_use("k", "n1", 2500), "two windows later it is forgotten");
    }
}
