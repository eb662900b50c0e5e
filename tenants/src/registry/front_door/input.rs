//! A front door's inputs as ops give them, checked (and generated) before anything is written: its
//! id for the tenant's dialect, its sign type, the POS key, and the platform key pair.

use std::fmt;
use std::sync::Arc;

use alipay::{AppId, Md5Key, Partner, PrivateKey, PublicKey, SignType, Signer, Verifier};
use zeroize::Zeroizing;

use crate::model::{Dialect, Invalid};
use crate::registry::RegistryError;
use crate::vault::VaultError;

/// The POS key: given, or generated here.
pub enum PosKeySource {
    /// RSA2 / RSA: the POS's public key (PEM or bare base64).
    PublicKey(String),
    /// MD5: the MD5 key (16 to 64 printable ASCII characters).
    Md5Key(Zeroizing<String>),
    /// An RSA-2048 key pair (RSA2 / RSA; its private half is handed back once, only its public half
    /// is kept) or an MD5 key of 32 random letters and digits (handed back once).
    Generate,
}

/// Says which kind of key is given, never the key.
impl fmt::Debug for PosKeySource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            PosKeySource::PublicKey(_) => "PosKeySource::PublicKey(..)",
            PosKeySource::Md5Key(_) => "PosKeySource::Md5Key(***)",
            PosKeySource::Generate => "PosKeySource::Generate",
        })
    }
}

/// A front door to enable.
#[derive(Debug)]
pub struct FrontDoorInput {
    /// The app id (OpenAPI: 1 to 32 digits) or partner (MAPI: 2088 and 12 digits) the POS will
    /// send; generated when `None` (`2099` and 12 digits, or `208899` and 10 digits).
    pub id: Option<String>,
    /// OpenAPI: RSA2 or RSA. MAPI: MD5, RSA or RSA2.
    pub sign_type: SignType,
    pub pos_key: PosKeySource,
}

/// Secrets generated here, handed back once.
#[derive(Default)]
pub(super) struct Generated {
    pub pkcs1_pem: Option<Zeroizing<String>>,
    pub pkcs8_pem: Option<Zeroizing<String>>,
    pub md5_key: Option<Zeroizing<String>>,
}

/// A checked POS key, ready to seal.
pub(super) struct ValidPosKey {
    /// What is sealed: the SPKI PEM of the POS's public key, or the MD5 key.
    pub stored: Zeroizing<String>,
    /// SHA-256 of the public key (None for MD5).
    pub fingerprint: Option<String>,
    pub generated: Generated,
}

/// A new platform key pair.
pub(super) struct PlatformPair {
    /// PKCS#8 PEM, to seal.
    pub private_pem: Zeroizing<String>,
    pub public: PublicKey,
}

/// The shortest MD5 key accepted: it is all that authenticates the POS.
const MIN_MD5_KEY: usize = 16;
const MD5_KEY_LEN: usize = 32;

fn crypto_failure<E>(_: E) -> RegistryError {
    RegistryError::Vault(VaultError::Crypto)
}

/// Whether `sign_type` may be a front door's in `dialect`.
pub(super) fn check_sign_type(dialect: Dialect, sign_type: SignType) -> Result<(), Invalid> {
    if dialect == Dialect::Openapi && sign_type == SignType::Md5 {
        return Err(Invalid("OpenAPI front doors sign with RSA2 or RSA, not MD5".into()));
    }
    Ok(())
}

/// Checks an id given by ops for a front door in `dialect`.
pub(super) fn check_id(dialect: Dialect, id: &str) -> Result<String, Invalid> {
    let id = id.trim();
    let (valid, rule) = match dialect {
        Dialect::Openapi => (id.parse::<AppId>().is_ok(), "front door app id must be 1 to 32 digits"),
        Dialect::Mapi => (id.parse::<Partner>().is_ok(), "front door partner must be 2088 followed by 12 digits"),
    };
    if valid { Ok(id.to_owned()) } else { Err(Invalid(rule.into())) }
}

/// A new id for a front door in `dialect`: `2099` and 12 random digits (app id), or `208899` and
/// 10 random digits (partner).
pub(super) fn generate_id(dialect: Dialect) -> Result<String, RegistryError> {
    let (prefix, digits) = match dialect {
        Dialect::Openapi => ("2099", 12),
        Dialect::Mapi => ("208899", 10),
    };
    Ok(format!("{prefix}{}", random_chars(b"0123456789", digits)?.as_str()))
}

/// `len` characters drawn uniformly from `alphabet` (rejection sampling over random bytes).
fn random_chars(alphabet: &[u8], len: usize) -> Result<Zeroizing<String>, RegistryError> {
    let n = alphabet.len();
    let limit = 256 - 256 % n;
    let mut out = Zeroizing::new(String::with_capacity(len));
    while out.len() < len {
        let mut bytes = Zeroizing::new([0u8; 64]);
        aws_lc_rs::rand::fill(bytes.as_mut()).map_err(crypto_failure)?;
        for &b in bytes.iter().filter(|b| usize::from(**b) < limit) {
            if out.len() < len {
                out.push(char::from(alphabet[usize::from(b) % n]));
            }
        }
    }
    Ok(out)
}

/// Checks (or generates) the POS key for a front door signing with `sign_type`.
pub(super) fn pos_key(sign_type: SignType, source: PosKeySource) -> Result<ValidPosKey, RegistryError> {
    match (sign_type, source) {
        (SignType::Md5, PosKeySource::Md5Key(text)) => {
            let text = Zeroizing::new(text.trim().to_owned());
            Md5Key::new(&text).map_err(|e| Invalid(format!("MD5 key: {e}")))?;
            if text.len() < MIN_MD5_KEY {
                return Err(Invalid(format!("MD5 key must be at least {MIN_MD5_KEY} characters")).into());
            }
            Ok(ValidPosKey { stored: text, fingerprint: None, generated: Generated::default() })
        }
        (SignType::Md5, PosKeySource::Generate) => {
            const ALNUM: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
            let key = random_chars(ALNUM, MD5_KEY_LEN)?;
            let generated = Generated { md5_key: Some(key.clone()), ..Generated::default() };
            Ok(ValidPosKey { stored: key, fingerprint: None, generated })
        }
        (SignType::Md5, PosKeySource::PublicKey(_)) => {
            Err(Invalid("MD5 front doors take an MD5 key, not a public key".into()).into())
        }
        (rsa, PosKeySource::PublicKey(text)) => {
            let public = PublicKey::parse(&text).map_err(|e| Invalid(format!("POS public key: {e}")))?;
            Verifier::rsa(rsa, &public).map_err(|e| Invalid(format!("POS public key: {e}")))?;
            Ok(ValidPosKey {
                stored: Zeroizing::new(public.to_pem()),
                fingerprint: Some(public.fingerprint()),
                generated: Generated::default(),
            })
        }
        (rsa, PosKeySource::Generate) => {
            let private = PrivateKey::generate().map_err(crypto_failure)?;
            let public = private.public_key().map_err(crypto_failure)?;
            Verifier::rsa(rsa, &public).map_err(crypto_failure)?;
            let generated = Generated {
                pkcs1_pem: Some(private.to_pkcs1_pem().map_err(crypto_failure)?),
                pkcs8_pem: Some(private.to_pkcs8_pem().map_err(crypto_failure)?),
                md5_key: None,
            };
            Ok(ValidPosKey {
                stored: Zeroizing::new(public.to_pem()),
                fingerprint: Some(public.fingerprint()),
                generated,
            })
        }
        (rsa, PosKeySource::Md5Key(_)) => Err(Invalid(format!("{rsa} front doors take a POS public key")).into()),
    }
}

/// A new RSA-2048 platform key pair for a front door signing with `sign_type` (RSA2 / RSA).
pub(super) fn platform_pair(sign_type: SignType) -> Result<PlatformPair, RegistryError> {
    let private = PrivateKey::generate().map_err(crypto_failure)?;
    let public = private.public_key().map_err(crypto_failure)?;
    let private_pem = private.to_pkcs8_pem().map_err(crypto_failure)?;
    match sign_type {
        SignType::Rsa2 => Signer::rsa2(Arc::new(private)).map(drop),
        SignType::Rsa => Signer::rsa(&private).map(drop),
        SignType::Md5 => return Err(Invalid("MD5 front doors sign with their MD5 key".into()).into()),
    }
    .map_err(crypto_failure)?;
    Ok(PlatformPair { private_pem, public })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_fit_their_dialect() {
        let app = generate_id(Dialect::Openapi).unwrap();
        assert!(app.len() == 16 && app.starts_with("2099") && app.bytes().all(|b| b.is_ascii_digit()), "{app}");
        let partner = generate_id(Dialect::Mapi).unwrap();
        assert!(partner.starts_with("208899") && partner.parse::<Partner>().is_ok(), "{partner}");
        assert_eq!(check_id(Dialect::Openapi, " 7 ").unwrap(), "7");
        assert!(check_id(Dialect::Openapi, &"1".repeat(33)).is_err());
        assert!(check_id(Dialect::Openapi, "12a").is_err());
        assert!(check_id(Dialect::Mapi, "2021000000000001").is_err());
        assert_eq!(check_id(Dialect::Mapi, "2088990000000001").unwrap(), "2088990000000001");
    }

    #[test]
    fn md5_keys_are_long_enough_and_generated_ones_are_alphanumeric() {
        assert!(pos_key(SignType::Md5, PosKeySource::Md5Key(Zeroizing::new("short".into()))).is_err());
        let generated = pos_key(SignType::Md5, PosKeySource::Generate).unwrap();
        let key = generated.generated.md5_key.unwrap();
        assert!(key.len() == 32 && key.bytes().all(|b| b.is_ascii_alphanumeric()));
        assert!(pos_key(SignType::Rsa2, PosKeySource::Md5Key(key)).is_err());
        assert!(check_sign_type(Dialect::Openapi, SignType::Md5).is_err());
        assert!(check_sign_type(Dialect::Mapi, SignType::Md5).is_ok());
    }
}
