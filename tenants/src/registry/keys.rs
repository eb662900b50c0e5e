//! Key material as ops hand it over, validated before anything is written: it parses, an RSA2 key
//! has at least 2048 bits, a private key matches the public key given with it, and each key fits
//! the tenant's sign type.

use std::sync::Arc;

use alipay::{Md5Key, PrivateKey, PublicKey, SignType, Signer, Verifier};
use zeroize::Zeroizing;

use crate::model::Invalid;

/// The tenant's app private key: given, or to be generated.
#[derive(Debug)]
pub enum AppKeySource {
    /// PEM (PKCS#1 or PKCS#8) or bare base64.
    Text(Zeroizing<String>),
    Generate,
}

/// Keys to set, as given.
#[derive(Debug, Default)]
pub struct KeyInput {
    pub app_private_key: Option<AppKeySource>,
    /// The app public key the ops uploaded to Alipay: checked against the private key if given.
    pub app_public_key: Option<String>,
    pub alipay_public_key: Option<String>,
    pub md5_key: Option<Zeroizing<String>>,
}

impl KeyInput {
    pub fn is_empty(&self) -> bool {
        self.app_private_key.is_none() && self.alipay_public_key.is_none() && self.md5_key.is_none()
    }
}

/// Validated keys, normalised for sealing.
pub struct ValidKeys {
    /// PKCS#8 PEM of the app private key, and its public half.
    pub app_private_key: Option<(Zeroizing<String>, PublicKey)>,
    /// SPKI PEM of Alipay's public key.
    pub alipay_public_key: Option<PublicKey>,
    pub md5_key: Option<Zeroizing<String>>,
    /// Whether the private key was generated here (its public half is for ops to upload).
    pub generated: bool,
}

fn key_error(what: &str, error: alipay::KeyError) -> Invalid {
    Invalid(format!("{what}: {error}"))
}

/// Checks `input` for a tenant signing with `sign_type`.
pub fn validate(sign_type: SignType, input: KeyInput) -> Result<ValidKeys, Invalid> {
    let is_md5 = sign_type == SignType::Md5;
    if is_md5 && (input.app_private_key.is_some() || input.alipay_public_key.is_some()) {
        return Err(Invalid("MD5 tenants sign with their MD5 key; they have no RSA keys".into()));
    }
    if !is_md5 && input.md5_key.is_some() {
        return Err(Invalid(format!("{sign_type} tenants have no MD5 key")));
    }
    if input.app_public_key.is_some() && input.app_private_key.is_none() {
        return Err(Invalid("an app public key is only checked against an app private key given with it".into()));
    }
    let mut generated = false;
    let app_private_key = match input.app_private_key {
        None => None,
        Some(source) => {
            let key = match source {
                AppKeySource::Text(text) => PrivateKey::parse(&text).map_err(|e| key_error("app private key", e))?,
                AppKeySource::Generate => {
                    generated = true;
                    PrivateKey::generate().map_err(|e| key_error("generated key", e))?
                }
            };
            let public = key.public_key().map_err(|e| key_error("app private key", e))?;
            if let Some(expected) = &input.app_public_key {
                let expected = PublicKey::parse(expected).map_err(|e| key_error("app public key", e))?;
                alipay::sign::check_key_pair(&key, &expected).map_err(|e| key_error("app keys", e))?;
            }
            let pem = key.to_pkcs8_pem().map_err(|e| key_error("app private key", e))?;
            // Building the signer applies the sign type's rules (RSA2: at least 2048 bits).
            match sign_type {
                SignType::Rsa2 => Signer::rsa2(Arc::new(key)).map(drop),
                _ => Signer::rsa(&key).map(drop),
            }
            .map_err(|e| key_error("app private key", e))?;
            Some((pem, public))
        }
    };
    let alipay_public_key = match input.alipay_public_key {
        None => None,
        Some(text) => {
            let key = PublicKey::parse(&text).map_err(|e| key_error("Alipay public key", e))?;
            Verifier::rsa(sign_type, &key).map_err(|e| key_error("Alipay public key", e))?;
            Some(key)
        }
    };
    let md5_key = match input.md5_key {
        None => None,
        Some(text) => {
            Md5Key::new(text.trim()).map_err(|e| key_error("MD5 key", e))?;
            Some(Zeroizing::new(text.trim().to_owned()))
        }
    };
    Ok(ValidKeys { app_private_key, alipay_public_key, md5_key, generated })
}
