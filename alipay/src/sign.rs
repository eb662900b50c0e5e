//! Signing and verifying canonical strings: `RSA2` (SHA256withRSA), `RSA` (SHA1withRSA), both
//! PKCS#1 v1.5 with base64 signatures, and MAPI's `MD5` (lowercase hex of md5(text + key)).

use std::fmt;
use std::str::FromStr;
use std::sync::Arc;

use aws_lc_rs::constant_time;
use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{self, ParsedPublicKey};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use md5::{Digest as _, Md5};

use crate::keys::{KeyError, MIN_RSA_BITS, MIN_RSA2_BITS, Md5Key, PrivateKey, PublicKey, Sha1RsaKey};

/// The `sign_type` parameter.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SignType {
    Rsa2,
    Rsa,
    Md5,
}

impl SignType {
    pub const fn as_str(self) -> &'static str {
        match self {
            SignType::Rsa2 => "RSA2",
            SignType::Rsa => "RSA",
            SignType::Md5 => "MD5",
        }
    }
}

impl fmt::Display for SignType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// `sign_type` is not one of `RSA2`, `RSA`, `MD5` (upper case, as Alipay requires).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("unsupported sign_type")]
pub struct UnknownSignType;

impl FromStr for SignType {
    type Err = UnknownSignType;

    fn from_str(s: &str) -> Result<Self, UnknownSignType> {
        match s {
            "RSA2" => Ok(SignType::Rsa2),
            "RSA" => Ok(SignType::Rsa),
            "MD5" => Ok(SignType::Md5),
            _ => Err(UnknownSignType),
        }
    }
}

/// The signing primitive failed (an AWS-LC internal error; never caused by input).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("signing failed inside the crypto library")]
pub struct SignError;

/// The signature does not verify.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("signature does not verify")]
pub struct BadSignature;

enum SignerKind {
    Rsa2(Arc<PrivateKey>),
    Rsa(Sha1RsaKey),
    Md5(Md5Key),
}

/// A merchant's (or Alipay's) signing key for one sign type, ready to sign many messages.
pub struct Signer {
    kind: SignerKind,
}

impl Signer {
    /// An `RSA2` signer; the key must have at least 2048 bits.
    pub fn rsa2(key: Arc<PrivateKey>) -> Result<Self, KeyError> {
        check_bits(key.bits(), MIN_RSA2_BITS)?;
        Ok(Self { kind: SignerKind::Rsa2(key) })
    }

    /// An `RSA` (SHA1withRSA) signer.
    pub fn rsa(key: &PrivateKey) -> Result<Self, KeyError> {
        Ok(Self { kind: SignerKind::Rsa(key.sha1_key()?) })
    }

    pub fn md5(key: Md5Key) -> Self {
        Self { kind: SignerKind::Md5(key) }
    }

    /// Parses `secret` (private key text, or the MD5 key) for `sign_type`.
    pub fn from_secret(sign_type: SignType, secret: &str) -> Result<Self, KeyError> {
        match sign_type {
            SignType::Rsa2 => Self::rsa2(Arc::new(PrivateKey::parse(secret)?)),
            SignType::Rsa => Self::rsa(&PrivateKey::parse(secret)?),
            SignType::Md5 => Ok(Self::md5(Md5Key::new(secret)?)),
        }
    }

    pub fn sign_type(&self) -> SignType {
        match self.kind {
            SignerKind::Rsa2(_) => SignType::Rsa2,
            SignerKind::Rsa(_) => SignType::Rsa,
            SignerKind::Md5(_) => SignType::Md5,
        }
    }

    /// Signs `message` (the canonical string, already in the request charset).
    pub fn sign(&self, message: &[u8]) -> Result<String, SignError> {
        match &self.kind {
            SignerKind::Rsa2(key) => {
                let pair = key.pair();
                let mut out = vec![0u8; pair.public_modulus_len()];
                pair.sign(&signature::RSA_PKCS1_SHA256, &SystemRandom::new(), message, &mut out)
                    .map_err(|_| SignError)?;
                Ok(BASE64.encode(out))
            }
            SignerKind::Rsa(key) => key.sign(message).map(|sig| BASE64.encode(sig)).ok_or(SignError),
            SignerKind::Md5(key) => Ok(md5_hex(message, key)),
        }
    }
}

impl fmt::Debug for Signer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Signer({}, ***)", self.sign_type())
    }
}

fn check_bits(bits: usize, min: usize) -> Result<(), KeyError> {
    if bits < min { Err(KeyError::TooSmall { bits, min }) } else { Ok(()) }
}

fn md5_hex(message: &[u8], key: &Md5Key) -> String {
    let mut hasher = Md5::new();
    hasher.update(message);
    hasher.update(key.expose().as_bytes());
    let digest = hasher.finalize();
    let mut hex = String::with_capacity(32);
    for byte in digest.iter() {
        hex.push(char::from(b"0123456789abcdef"[usize::from(byte >> 4)]));
        hex.push(char::from(b"0123456789abcdef"[usize::from(byte & 0xf)]));
    }
    hex
}

enum VerifierKind {
    Rsa { key: ParsedPublicKey, sign_type: SignType },
    Md5(Md5Key),
}

/// A key that checks signatures of one sign type: Alipay's public key, a merchant's public key,
/// or a merchant's MD5 key.
pub struct Verifier {
    kind: VerifierKind,
}

impl Verifier {
    /// Verifies `RSA2` (at least 2048 bits) or `RSA` (at least 1024 bits) signatures with `key`.
    pub fn rsa(sign_type: SignType, key: &PublicKey) -> Result<Self, KeyError> {
        let parsed = match sign_type {
            SignType::Rsa2 => key.parsed(&signature::RSA_PKCS1_2048_8192_SHA256, MIN_RSA2_BITS)?,
            SignType::Rsa => key.parsed(&signature::RSA_PKCS1_1024_8192_SHA1_FOR_LEGACY_USE_ONLY, MIN_RSA_BITS)?,
            SignType::Md5 => return Err(KeyError::Invalid),
        };
        Ok(Self { kind: VerifierKind::Rsa { key: parsed, sign_type } })
    }

    pub fn md5(key: Md5Key) -> Self {
        Self { kind: VerifierKind::Md5(key) }
    }

    /// Parses `key_text` (public key text, or the MD5 key) for `sign_type`.
    pub fn from_key_text(sign_type: SignType, key_text: &str) -> Result<Self, KeyError> {
        match sign_type {
            SignType::Md5 => Ok(Self::md5(Md5Key::new(key_text)?)),
            rsa => Self::rsa(rsa, &PublicKey::parse(key_text)?),
        }
    }

    pub fn sign_type(&self) -> SignType {
        match &self.kind {
            VerifierKind::Rsa { sign_type, .. } => *sign_type,
            VerifierKind::Md5(_) => SignType::Md5,
        }
    }

    /// Checks `signature` (base64 for RSA, hex for MD5) over `message`.
    pub fn verify(&self, message: &[u8], signature: &str) -> Result<(), BadSignature> {
        match &self.kind {
            VerifierKind::Rsa { key, .. } => {
                let raw = BASE64.decode(signature.trim()).map_err(|_| BadSignature)?;
                key.verify_sig(message, &raw).map_err(|_| BadSignature)
            }
            VerifierKind::Md5(key) => {
                let expected = md5_hex(message, key);
                constant_time::verify_slices_are_equal(expected.as_bytes(), signature.as_bytes())
                    .map_err(|_| BadSignature)
            }
        }
    }
}

impl fmt::Debug for Verifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Verifier({})", self.sign_type())
    }
}

/// Checks that a merchant's public key belongs to its private key (on onboarding and rotation).
pub fn check_key_pair(private: &PrivateKey, public: &PublicKey) -> Result<(), KeyError> {
    if private.matches(public) { Ok(()) } else { Err(KeyError::Mismatch) }
}
