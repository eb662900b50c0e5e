//! Keys as Alipay and merchants hand them out, parsed once.
//!
//! Private keys come as PEM PKCS#1 (`RSA PRIVATE KEY`), PEM PKCS#8 (`PRIVATE KEY`) or the bare
//! one-line base64 of either; public keys as PEM SPKI (`PUBLIC KEY`), PEM PKCS#1
//! (`RSA PUBLIC KEY`) or bare base64. MD5 keys are the merchant's shared secret string.
//! Secret material is masked in `Debug` and zeroized when dropped.

mod sha1_rsa;

use std::fmt;

use aws_lc_rs::encoding::AsDer;
use aws_lc_rs::rsa;
use aws_lc_rs::signature::{self, KeyPair as _, ParsedPublicKey};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use zeroize::Zeroizing;

pub(crate) use sha1_rsa::Sha1RsaKey;

/// The smallest RSA key Alipay accepts for `RSA2`, and that we sign with at all.
pub const MIN_RSA2_BITS: usize = 2048;
/// The smallest RSA public key we verify `RSA` (SHA-1) signatures with (Alipay's legacy keys).
pub const MIN_RSA_BITS: usize = 1024;

/// Why a key was refused. Never carries any of the key's text.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum KeyError {
    #[error("key is neither PEM nor base64")]
    Unreadable,
    #[error("PEM block `{0}` is not an RSA key of a supported kind (encrypted keys are not accepted)")]
    UnsupportedPem(PemKind),
    #[error("key bytes are not a valid RSA key")]
    Invalid,
    #[error("RSA key has {bits} bits; at least {min} are required")]
    TooSmall { bits: usize, min: usize },
    #[error("MD5 key must be 1 to 64 printable ASCII characters")]
    BadMd5Key,
    #[error("the public key does not belong to the private key")]
    Mismatch,
}

/// The kind of PEM block found, for error messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PemKind {
    EncryptedPrivateKey,
    Certificate,
    Other,
}

impl fmt::Display for PemKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            PemKind::EncryptedPrivateKey => "ENCRYPTED PRIVATE KEY",
            PemKind::Certificate => "CERTIFICATE",
            PemKind::Other => "other",
        })
    }
}

enum PrivateDer {
    Pkcs1(Zeroizing<Vec<u8>>),
    Pkcs8(Zeroizing<Vec<u8>>),
    Unlabelled(Zeroizing<Vec<u8>>),
}

enum PublicDer {
    Labelled(Vec<u8>),
    Unlabelled(Vec<u8>),
}

fn pem_kind(tag: &str) -> PemKind {
    match tag {
        "ENCRYPTED PRIVATE KEY" => PemKind::EncryptedPrivateKey,
        "CERTIFICATE" => PemKind::Certificate,
        _ => PemKind::Other,
    }
}

fn bare_base64(text: &str) -> Result<Zeroizing<Vec<u8>>, KeyError> {
    let compact: Zeroizing<String> = Zeroizing::new(text.chars().filter(|c| !c.is_ascii_whitespace()).collect());
    if compact.is_empty() {
        return Err(KeyError::Unreadable);
    }
    BASE64.decode(compact.as_bytes()).map(Zeroizing::new).map_err(|_| KeyError::Unreadable)
}

fn private_der(text: &str) -> Result<PrivateDer, KeyError> {
    let trimmed = text.trim();
    if trimmed.starts_with("-----BEGIN") {
        let block = pem::parse(trimmed).map_err(|_| KeyError::Unreadable)?;
        let tag = block.tag().to_owned();
        let der = Zeroizing::new(block.into_contents());
        return match tag.as_str() {
            "RSA PRIVATE KEY" => Ok(PrivateDer::Pkcs1(der)),
            "PRIVATE KEY" => Ok(PrivateDer::Pkcs8(der)),
            other => Err(KeyError::UnsupportedPem(pem_kind(other))),
        };
    }
    bare_base64(trimmed).map(PrivateDer::Unlabelled)
}

fn public_der(text: &str) -> Result<PublicDer, KeyError> {
    let trimmed = text.trim();
    if trimmed.starts_with("-----BEGIN") {
        let block = pem::parse(trimmed).map_err(|_| KeyError::Unreadable)?;
        return match block.tag() {
            "PUBLIC KEY" | "RSA PUBLIC KEY" => Ok(PublicDer::Labelled(block.into_contents())),
            other => Err(KeyError::UnsupportedPem(pem_kind(other))),
        };
    }
    bare_base64(trimmed).map(|der| PublicDer::Unlabelled(der.to_vec()))
}

/// An RSA private key, parsed and validated once.
pub struct PrivateKey {
    pair: signature::RsaKeyPair,
}

impl PrivateKey {
    /// Parses PEM (PKCS#1 or PKCS#8) or bare base64 (PKCS#8 or PKCS#1) text.
    pub fn parse(text: &str) -> Result<Self, KeyError> {
        let pair = match private_der(text)? {
            PrivateDer::Pkcs1(der) => signature::RsaKeyPair::from_der(&der),
            PrivateDer::Pkcs8(der) => signature::RsaKeyPair::from_pkcs8(&der),
            PrivateDer::Unlabelled(der) => {
                signature::RsaKeyPair::from_pkcs8(&der).or_else(|_| signature::RsaKeyPair::from_der(&der))
            }
        }
        .map_err(|_| KeyError::Invalid)?;
        Ok(Self { pair })
    }

    /// A fresh 2048-bit key (for the sandbox's platform key and for tests).
    pub fn generate() -> Result<Self, KeyError> {
        let pair = signature::RsaKeyPair::generate(rsa::KeySize::Rsa2048).map_err(|_| KeyError::Invalid)?;
        Ok(Self { pair })
    }

    pub fn bits(&self) -> usize {
        self.pair.public_modulus_len() * 8
    }

    /// The matching public key.
    pub fn public_key(&self) -> Result<PublicKey, KeyError> {
        PublicKey::from_der(self.pair.public_key().as_ref())
    }

    /// The key as PKCS#8 PEM (to write it to a file once, at generation).
    pub fn to_pkcs8_pem(&self) -> Result<Zeroizing<String>, KeyError> {
        let der = self.pkcs8_der()?;
        Ok(Zeroizing::new(pem::encode(&pem::Pem::new("PRIVATE KEY", der.to_vec()))))
    }

    /// The key as PKCS#1 PEM (`RSA PRIVATE KEY`), the form many POS SDKs take.
    pub fn to_pkcs1_pem(&self) -> Result<Zeroizing<String>, KeyError> {
        let pkcs8 = self.pkcs8_der()?;
        let pkcs1 = pkcs1_of_pkcs8(&pkcs8).ok_or(KeyError::Invalid)?;
        Ok(Zeroizing::new(pem::encode(&pem::Pem::new("RSA PRIVATE KEY", pkcs1.to_vec()))))
    }

    fn pkcs8_der(&self) -> Result<Zeroizing<Vec<u8>>, KeyError> {
        let der = self.pair.as_der().map_err(|_| KeyError::Invalid)?;
        Ok(Zeroizing::new(der.as_ref().to_vec()))
    }

    /// Whether `public` is this key's public half.
    pub fn matches(&self, public: &PublicKey) -> bool {
        self.pair.public_key().as_ref() == public.pkcs1_der.as_slice()
    }

    pub(crate) fn pair(&self) -> &signature::RsaKeyPair {
        &self.pair
    }

    pub(crate) fn sha1_key(&self) -> Result<Sha1RsaKey, KeyError> {
        Sha1RsaKey::from_pkcs8(&self.pkcs8_der()?).ok_or(KeyError::Invalid)
    }
}

/// One DER element: `(tag, contents, the rest after it)`.
fn der_element(input: &[u8]) -> Option<(u8, &[u8], &[u8])> {
    let (&tag, rest) = input.split_first()?;
    let (&first, rest) = rest.split_first()?;
    let (len, rest) = if first < 0x80 {
        (usize::from(first), rest)
    } else {
        let n = usize::from(first & 0x7f);
        if n == 0 || n > 4 || rest.len() < n {
            return None;
        }
        let (len, rest) = rest.split_at(n);
        (len.iter().fold(0usize, |acc, b| (acc << 8) | usize::from(*b)), rest)
    };
    (rest.len() >= len).then(|| (tag, &rest[..len], &rest[len..]))
}

/// The PKCS#1 `RSAPrivateKey` a PKCS#8 `PrivateKeyInfo` holds (SEQUENCE { version INTEGER,
/// algorithm SEQUENCE, privateKey OCTET STRING, ... }).
fn pkcs1_of_pkcs8(der: &[u8]) -> Option<&[u8]> {
    let (0x30, info, _) = der_element(der)? else { return None };
    let (0x02, _, rest) = der_element(info)? else { return None };
    let (0x30, _, rest) = der_element(rest)? else { return None };
    let (0x04, key, _) = der_element(rest)? else { return None };
    signature::RsaKeyPair::from_der(key).ok()?;
    Some(key)
}

impl fmt::Debug for PrivateKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PrivateKey(RSA-{}, ***)", self.bits())
    }
}

/// An RSA public key.
#[derive(Clone)]
pub struct PublicKey {
    /// PKCS#1 `RSAPublicKey` DER, the form compared by [`PrivateKey::matches`].
    pkcs1_der: Vec<u8>,
    spki_der: Vec<u8>,
    bits: usize,
}

impl PublicKey {
    /// Parses PEM (SPKI or PKCS#1) or bare base64 (either) text.
    pub fn parse(text: &str) -> Result<Self, KeyError> {
        match public_der(text)? {
            PublicDer::Labelled(der) | PublicDer::Unlabelled(der) => Self::from_der(&der),
        }
    }

    fn from_der(der: &[u8]) -> Result<Self, KeyError> {
        let key = rsa::PublicKey::from_der(der).map_err(|_| KeyError::Invalid)?;
        let spki = key.as_der().map_err(|_| KeyError::Invalid)?;
        Ok(Self { pkcs1_der: key.as_ref().to_vec(), spki_der: spki.as_ref().to_vec(), bits: key.modulus_len() * 8 })
    }

    pub fn bits(&self) -> usize {
        self.bits
    }

    /// SPKI PEM, as Alipay's console shows it.
    pub fn to_pem(&self) -> String {
        pem::encode(&pem::Pem::new("PUBLIC KEY", self.spki_der.clone()))
    }

    /// The SubjectPublicKeyInfo DER.
    pub fn spki_der(&self) -> &[u8] {
        &self.spki_der
    }

    /// Lowercase hex SHA-256 of the SPKI: tells keys apart without showing them.
    pub fn fingerprint(&self) -> String {
        let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, &self.spki_der);
        digest.as_ref().iter().map(|b| format!("{b:02x}")).collect()
    }

    /// Bare one-line base64 of the SPKI, as Alipay's key tool hands it out.
    pub fn to_base64(&self) -> String {
        BASE64.encode(&self.spki_der)
    }

    pub(crate) fn parsed(
        &self,
        algorithm: &'static signature::RsaParameters,
        min_bits: usize,
    ) -> Result<ParsedPublicKey, KeyError> {
        if self.bits < min_bits {
            return Err(KeyError::TooSmall { bits: self.bits, min: min_bits });
        }
        ParsedPublicKey::new(algorithm, &self.spki_der).map_err(|_| KeyError::Invalid)
    }
}

impl fmt::Debug for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PublicKey(RSA-{})", self.bits)
    }
}

impl PartialEq for PublicKey {
    fn eq(&self, other: &Self) -> bool {
        self.pkcs1_der == other.pkcs1_der
    }
}

/// A merchant's MD5 key (the shared secret appended before hashing).
#[derive(Clone)]
pub struct Md5Key(Zeroizing<String>);

impl Md5Key {
    pub fn new(key: &str) -> Result<Self, KeyError> {
        if key.is_empty() || key.len() > 64 || !key.bytes().all(|b| b.is_ascii_graphic()) {
            return Err(KeyError::BadMd5Key);
        }
        Ok(Self(Zeroizing::new(key.to_owned())))
    }

    pub(crate) fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Md5Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Md5Key(***)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_keys::{MERCHANT_PRIVATE, MERCHANT_PRIVATE_PKCS1};

    #[test]
    fn pkcs1_pem_is_the_same_key_as_openssl_writes_it() {
        let key = PrivateKey::parse(MERCHANT_PRIVATE).unwrap();
        let pkcs1 = key.to_pkcs1_pem().unwrap();
        assert!(pkcs1.starts_with("-----BEGIN RSA PRIVATE KEY-----"));
        let ours = pem::parse(pkcs1.as_bytes()).unwrap();
        let openssl = pem::parse(MERCHANT_PRIVATE_PKCS1).unwrap();
        assert_eq!(ours.contents(), openssl.contents());
        let generated = PrivateKey::generate().unwrap();
        let again = PrivateKey::parse(&generated.to_pkcs1_pem().unwrap()).unwrap();
        assert!(again.matches(&generated.public_key().unwrap()));
        assert!(pkcs1_of_pkcs8(b"\x30\x03\x02\x01\x00").is_none());
    }
}
