//! Merchants registered with the sandbox, and the platform key that signs its answers.

use std::collections::HashMap;
use std::sync::Arc;

use alipay::{AppId, KeyError, Md5Key, Partner, PrivateKey, PublicKey, SignType, Signer, Verifier};
use parking_lot::RwLock;
use serde::{Deserialize, Serialize};

use crate::billing::FeeRate;

/// Which wire dialect a merchant speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Dialect {
    Openapi,
    Mapi,
}

/// A merchant registration, as `POST /sandbox/merchants` and the `--merchants` file take it
/// (and as clients write it: [`Registration::rsa`], [`Registration::md5`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Registration {
    pub dialect: Dialect,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub app_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub partner: Option<String>,
    pub sign_type: String,
    /// The merchant's RSA public key, PEM or bare base64 (RSA2 and RSA).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub public_key: Option<String>,
    /// The merchant's MD5 key (MAPI MD5 only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub md5_key: Option<String>,
    /// Where notifications of trades made without a `notify_url` go (the static QR code's).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub notify_url: Option<String>,
    /// The merchant's PID (`2088` and 12 digits), whose account (`<PID>0156`) names its bills. An
    /// OpenAPI app's is derived from its app_id when absent ([`derive_pid`]); a MAPI partner's is
    /// the partner.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pid: Option<String>,
    /// Alipay's fee in basis points (at most 10000), [`DEFAULT_FEE_RATE_BP`] when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fee_rate_bp: Option<u32>,
}

impl Registration {
    /// A merchant signing with RSA2 or RSA: an OpenAPI app (`alipay_id` its app id) or a MAPI
    /// partner, and its app public key (PEM or bare base64).
    pub fn rsa(dialect: Dialect, alipay_id: &str, sign_type: SignType, public_key: &str) -> Registration {
        let mut registration = Registration::of(dialect, alipay_id, sign_type);
        registration.public_key = Some(public_key.to_owned());
        registration
    }

    /// A MAPI partner signing with its MD5 key.
    pub fn md5(partner: &str, md5_key: &str) -> Registration {
        let mut registration = Registration::of(Dialect::Mapi, partner, SignType::Md5);
        registration.md5_key = Some(md5_key.to_owned());
        registration
    }

    fn of(dialect: Dialect, alipay_id: &str, sign_type: SignType) -> Registration {
        let id = Some(alipay_id.to_owned());
        let (app_id, partner) = match dialect {
            Dialect::Openapi => (id, None),
            Dialect::Mapi => (None, id),
        };
        Registration {
            dialect,
            app_id,
            partner,
            sign_type: sign_type.as_str().to_owned(),
            public_key: None,
            md5_key: None,
            notify_url: None,
            pid: None,
            fee_rate_bp: None,
        }
    }

    /// The app id (OpenAPI) or partner (MAPI) registered.
    pub fn alipay_id(&self) -> Option<&str> {
        self.app_id.as_deref().or(self.partner.as_deref())
    }
}

/// A registration was refused.
#[derive(Debug, thiserror::Error)]
pub enum RegistrationError {
    #[error("openapi merchants need a valid app_id; mapi merchants a valid partner (2088 and 12 digits)")]
    BadId,
    #[error("sign_type must be RSA2 or RSA (openapi), or MD5, RSA or RSA2 (mapi)")]
    BadSignType,
    #[error("{0} needs {1}")]
    MissingKey(SignType, &'static str),
    #[error("key refused: {0}")]
    Key(#[from] KeyError),
    #[error("notify_url must be an http:// or https:// URL of at most 256 characters")]
    BadNotifyUrl,
    #[error("pid must be 2088 and 12 digits (a mapi merchant's is its partner)")]
    BadPid,
    #[error("fee_rate_bp must be at most 10000 (100%)")]
    BadFeeRate,
    #[error("too many merchants registered")]
    Full,
}

/// The fee Alipay charges when a registration names none: 60 bp, 0.6%.
pub const DEFAULT_FEE_RATE_BP: u32 = 60;

/// An OpenAPI app's PID when its registration names none: `2088` and the app_id's last 12 digits
/// when it has 12 or more, else 12 digits of a hash of it (FNV-1a), so one app_id always gives one
/// PID. (Always `Some`: `2088` and 12 digits is a partner.)
pub fn derive_pid(app_id: &AppId) -> Option<Partner> {
    let id = app_id.as_str();
    let tail = match id.get(id.len().saturating_sub(12)..) {
        Some(tail) if tail.len() == 12 => tail.to_owned(),
        _ => {
            let hash =
                id.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3));
            format!("{:012}", hash % 1_000_000_000_000)
        }
    };
    format!("2088{tail}").parse().ok()
}

/// A registered merchant.
pub struct Merchant {
    pub dialect: Dialect,
    /// `app_id` or `partner`.
    pub id: String,
    pub sign_type: SignType,
    /// Checks the merchant's request signatures.
    pub verifier: Verifier,
    /// Signs answers and notifications of MD5 merchants (with the merchant's own key).
    pub md5_signer: Option<Signer>,
    pub notify_url: Option<String>,
    /// Whose account (`<PID>0156`) the merchant's bills are.
    pub pid: Partner,
    /// Alipay's fee on the merchant's payments (and returned on refunds).
    pub fee_rate: FeeRate,
}

impl std::fmt::Debug for Merchant {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Merchant({:?} {} {})", self.dialect, self.id, self.sign_type)
    }
}

/// Whether `url` can be a notify_url.
pub fn valid_notify_url(url: &str) -> bool {
    url.len() <= 256
        && (url.starts_with("http://") || url.starts_with("https://"))
        && url.parse::<http::Uri>().is_ok_and(|uri| uri.host().is_some())
}

impl Merchant {
    pub fn from_registration(reg: &Registration) -> Result<Self, RegistrationError> {
        let sign_type: SignType = reg.sign_type.parse().map_err(|_| RegistrationError::BadSignType)?;
        let named_pid =
            reg.pid.as_deref().map(str::parse::<Partner>).transpose().map_err(|_| RegistrationError::BadPid)?;
        let (id, pid) = match reg.dialect {
            Dialect::Openapi => {
                if sign_type == SignType::Md5 {
                    return Err(RegistrationError::BadSignType);
                }
                let app_id =
                    reg.app_id.as_deref().and_then(|id| id.parse::<AppId>().ok()).ok_or(RegistrationError::BadId)?;
                let pid = named_pid.or_else(|| derive_pid(&app_id)).ok_or(RegistrationError::BadPid)?;
                (app_id.to_string(), pid)
            }
            Dialect::Mapi => {
                let partner =
                    reg.partner.as_deref().and_then(|id| id.parse::<Partner>().ok()).ok_or(RegistrationError::BadId)?;
                if named_pid.as_ref().is_some_and(|pid| *pid != partner) {
                    return Err(RegistrationError::BadPid);
                }
                (partner.to_string(), partner)
            }
        };
        let fee_rate =
            FeeRate::from_bp(reg.fee_rate_bp.unwrap_or(DEFAULT_FEE_RATE_BP)).ok_or(RegistrationError::BadFeeRate)?;
        if let Some(url) = &reg.notify_url
            && !valid_notify_url(url)
        {
            return Err(RegistrationError::BadNotifyUrl);
        }
        let (verifier, md5_signer) = match sign_type {
            SignType::Md5 => {
                let key =
                    Md5Key::new(reg.md5_key.as_deref().ok_or(RegistrationError::MissingKey(sign_type, "md5_key"))?)?;
                (Verifier::md5(key.clone()), Some(Signer::md5(key)))
            }
            rsa => {
                let text = reg.public_key.as_deref().ok_or(RegistrationError::MissingKey(sign_type, "public_key"))?;
                (Verifier::rsa(rsa, &PublicKey::parse(text)?)?, None)
            }
        };
        Ok(Merchant {
            dialect: reg.dialect,
            id,
            sign_type,
            verifier,
            md5_signer,
            notify_url: reg.notify_url.clone(),
            pid,
            fee_rate,
        })
    }
}

/// All registered merchants, by `app_id` / `partner`.
pub struct Merchants {
    map: RwLock<HashMap<String, Arc<Merchant>>>,
    max: usize,
}

impl Merchants {
    pub fn new(max: usize) -> Self {
        Self { map: RwLock::new(HashMap::new()), max }
    }

    /// Registers (or replaces) a merchant; answers whether it replaced one.
    pub fn register(&self, reg: &Registration) -> Result<(Arc<Merchant>, bool), RegistrationError> {
        let merchant = Arc::new(Merchant::from_registration(reg)?);
        let mut map = self.map.write();
        if !map.contains_key(&merchant.id) && map.len() >= self.max {
            return Err(RegistrationError::Full);
        }
        let replaced = map.insert(merchant.id.clone(), merchant.clone()).is_some();
        Ok((merchant, replaced))
    }

    pub fn get(&self, id: &str) -> Option<Arc<Merchant>> {
        self.map.read().get(id).cloned()
    }

    pub fn len(&self) -> usize {
        self.map.read().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Alipay's own key: signs answers and notifications of RSA and RSA2 merchants.
pub struct Platform {
    rsa2: Signer,
    rsa: Signer,
    public_pem: String,
}

impl Platform {
    pub fn new(key: PrivateKey) -> Result<Self, KeyError> {
        let public_pem = key.public_key()?.to_pem();
        let rsa = Signer::rsa(&key)?;
        let rsa2 = Signer::rsa2(Arc::new(key))?;
        Ok(Self { rsa2, rsa, public_pem })
    }

    pub fn public_pem(&self) -> &str {
        &self.public_pem
    }

    /// The key that signs what the sandbox sends `merchant`: the merchant's MD5 key, or the
    /// platform key with the merchant's RSA algorithm.
    pub fn signer_for<'a>(&'a self, merchant: &'a Merchant) -> &'a Signer {
        match (&merchant.md5_signer, merchant.sign_type) {
            (Some(md5), _) => md5,
            (None, SignType::Rsa) => &self.rsa,
            _ => &self.rsa2,
        }
    }
}

/// Damages a signature so it stays well-formed (same length and alphabet) but no longer verifies.
pub fn corrupt_signature(sign: &str) -> String {
    let mut chars: Vec<char> = sign.chars().collect();
    if let Some(first) = chars.first_mut() {
        *first = match *first {
            '9' => '0',
            'f' => 'a',
            'z' => 'a',
            'Z' => 'A',
            c @ ('0'..='8' | 'a'..='y' | 'A'..='Y') => char::from(c as u8 + 1),
            _ => 'A',
        };
    }
    chars.into_iter().collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_apps_pid_is_named_or_derived_and_a_partners_is_itself() {
        let long: AppId = "2021000000004242".parse().unwrap();
        assert_eq!(derive_pid(&long).unwrap().as_str(), "2088000000004242");
        let short: AppId = "42".parse().unwrap();
        let derived = derive_pid(&short).unwrap();
        assert!(derived.as_str().starts_with("2088"));
        assert_eq!(derive_pid(&short), Some(derived));

        let key = alipay::test_keys::MERCHANT_PUBLIC_B64;
        let mut app = Registration::rsa(Dialect::Openapi, "2021000000004242", SignType::Rsa2, key);
        let merchant = Merchant::from_registration(&app).unwrap();
        assert_eq!((merchant.pid.as_str(), merchant.fee_rate.bp()), ("2088000000004242", DEFAULT_FEE_RATE_BP));
        app.pid = Some("2088111122223333".into());
        app.fee_rate_bp = Some(10_000);
        let merchant = Merchant::from_registration(&app).unwrap();
        assert_eq!((merchant.pid.as_str(), merchant.fee_rate.bp()), ("2088111122223333", 10_000));
        app.fee_rate_bp = Some(10_001);
        assert!(matches!(Merchant::from_registration(&app), Err(RegistrationError::BadFeeRate)));
        app.fee_rate_bp = None;
        app.pid = Some("1088111122223333".into());
        assert!(matches!(Merchant::from_registration(&app), Err(RegistrationError::BadPid)));

        let mut partner = Registration::md5("2088000000000001", alipay::test_keys::MD5_KEY);
        assert_eq!(Merchant::from_registration(&partner).unwrap().pid.as_str(), "2088000000000001");
        partner.pid = Some("2088000000000002".into());
        assert!(matches!(Merchant::from_registration(&partner), Err(RegistrationError::BadPid)));
    }
}
