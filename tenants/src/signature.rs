//! The partner API's request signature (design §3), used both ways: POS terminals sign their
//! requests with their API secret, and the reconciler signs the webhooks it sends merchants with
//! the tenant's webhook secret.
//!
//! ```text
//! Authorization: ACQ1-HMAC-SHA256 Credential=<key_id>, Timestamp=<unix>, Nonce=<8-64 [A-Za-z0-9_-]>, Signature=<hex>
//! string_to_sign = "ACQ1-HMAC-SHA256\n" + METHOD + "\n" + PATH_AND_QUERY + "\n" + Timestamp + "\n" + Nonce + "\n" + hex(sha256(body))
//! ```

use std::fmt::Write as _;

use aws_lc_rs::{digest, hmac};

pub const SCHEME: &str = "ACQ1-HMAC-SHA256";

/// The parts of the Authorization header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Credentials<'a> {
    pub key_id: &'a str,
    pub timestamp: i64,
    pub nonce: &'a str,
    /// HMAC-SHA256 tag, from 64 hex digits.
    pub signature: [u8; 32],
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
    let mut tag = [0u8; 32];
    hex::decode_to_slice(signature?, &mut tag).ok()?;
    Some(Credentials { key_id, timestamp, nonce, signature: tag })
}

/// The text a request's signature covers.
pub fn string_to_sign(method: &str, path_and_query: &str, timestamp: i64, nonce: &str, body: &[u8]) -> String {
    let mut body_hash = [0u8; 64];
    // 32 bytes always fill 64 hex digits.
    let _ = hex::encode_to_slice(digest::digest(&digest::SHA256, body), &mut body_hash);
    let mut text = String::with_capacity(SCHEME.len() + method.len() + path_and_query.len() + nonce.len() + 96);
    let _ = write!(text, "{SCHEME}\n{method}\n{path_and_query}\n{timestamp}\n{nonce}\n");
    text.extend(body_hash.iter().map(|&digit| char::from(digit)));
    text
}

/// Signs a request: as a POS does, and as the reconciler signs webhooks to merchants.
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signatures_match_an_independent_hmac() {
        // Python's hmac and hashlib over design §3's string_to_sign.
        let header = authorization("ak_x", "secret", "POST", "/v1/payments", 1_764_000_000, "abcdefgh", b"{}");
        assert_eq!(
            header,
            "ACQ1-HMAC-SHA256 Credential=ak_x, Timestamp=1764000000, Nonce=abcdefgh, \
             Signature=73f43d70c392e5ba40a5c31e30845b2ad559721ee620d9fa65a67a4a2aa78372"
        );
        let parsed = parse(&header).unwrap();
        assert_eq!(hex::encode(parsed.signature), "73f43d70c392e5ba40a5c31e30845b2ad559721ee620d9fa65a67a4a2aa78372");
    }

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
}
