//! Partner API authentication (design §3):
//!
//! ```text
//! Authorization: ACQ1-HMAC-SHA256 Credential=<key_id>, Timestamp=<unix>, Nonce=<8-64 [A-Za-z0-9_-]>, Signature=<hex>
//! string_to_sign = "ACQ1-HMAC-SHA256\n" + METHOD + "\n" + PATH_AND_QUERY + "\n" + Timestamp + "\n" + Nonce + "\n" + hex(sha256(body))
//! ```
//! The signature is checked in constant time; timestamps too far from our clock and nonces seen
//! before (within twice the allowed skew) are refused. Every failure is the same 401.

use std::collections::HashSet;
use std::sync::Arc;

use aws_lc_rs::{digest, hmac};
use parking_lot::Mutex;
use tenants::snapshot::{Snapshot, Tenant};
use time::OffsetDateTime;

use crate::problem::ApiError;

pub const SCHEME: &str = "ACQ1-HMAC-SHA256";

/// The parts of the Authorization header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Credentials<'a> {
    pub key_id: &'a str,
    pub timestamp: i64,
    pub nonce: &'a str,
    pub signature: Vec<u8>,
}

fn nonce_ok(nonce: &str) -> bool {
    (8..=64).contains(&nonce.len()) && nonce.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

/// Parses the header; `None` for anything malformed.
pub fn parse(header: &str) -> Option<Credentials<'_>> {
    let rest = header.strip_prefix(SCHEME)?.strip_prefix(' ')?;
    let (mut key_id, mut timestamp, mut nonce, mut signature) = (None, None, None, None);
    for part in rest.split(',') {
        let (name, value) = part.trim().split_once('=')?;
        let slot = match name {
            "Credential" => &mut key_id,
            "Timestamp" => &mut timestamp,
            "Nonce" => &mut nonce,
            "Signature" => &mut signature,
            _ => return None,
        };
        if slot.replace(value).is_some() {
            return None;
        }
    }
    let key_id = key_id.filter(|k| !k.is_empty() && k.len() <= 64)?;
    let timestamp = timestamp.filter(|t| t.len() <= 12 && t.bytes().all(|b| b.is_ascii_digit()))?.parse().ok()?;
    let nonce = nonce.filter(|n| nonce_ok(n))?;
    let signature = signature.filter(|s| s.len() == 64).and_then(|s| hex::decode(s).ok())?;
    Some(Credentials { key_id, timestamp, nonce, signature })
}

/// The text a request's signature covers.
pub fn string_to_sign(method: &str, path_and_query: &str, timestamp: i64, nonce: &str, body: &[u8]) -> String {
    let body_hash = hex::encode(digest::digest(&digest::SHA256, body));
    format!("{SCHEME}\n{method}\n{path_and_query}\n{timestamp}\n{nonce}\n{body_hash}")
}

/// Signs a request as a POS does (for tests, loadtest and webhooks).
pub fn authorization(
    key_id: &str,
    secret: &str,
    method: &str,
    path_and_query: &str,
    timestamp: i64,
    nonce: &str,
    body: &[u8],
) -> String {
    let key = hmac::Key::new(hmac::HMAC_SHA256, secret.as_bytes());
    let tag = hmac::sign(&key, string_to_sign(method, path_and_query, timestamp, nonce, body).as_bytes());
    format!(
        "{SCHEME} Credential={key_id}, Timestamp={timestamp}, Nonce={nonce}, Signature={}",
        hex::encode(tag.as_ref())
    )
}

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
    fn headers_parse_strictly() {
        let header = authorization("ak_x", "secret", "POST", "/v1/payments", 1_764_000_000, "abcdefgh", b"{}");
        let parsed = parse(&header).unwrap();
        assert_eq!((parsed.key_id, parsed.timestamp, parsed.nonce), ("ak_x", 1_764_000_000, "abcdefgh"));
        for bad in [
            "Bearer x",
            "ACQ1-HMAC-SHA256 Credential=a",
            &header.replace("Nonce=abcdefgh", "Nonce=short"),
            &header.replace("Nonce=abcdefgh", "Nonce=abc def gh"),
            &header.replace("Timestamp=", "Timestamp=-"),
            &format!("{header}, Credential=b"),
            &header.replace("Signature=", "Signature=zz"),
        ] {
            assert_eq!(parse(bad), None, "{bad}");
        }
    }

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
