//! Asynchronous notifications (both dialects): form POSTs signed by Alipay.
//!
//! Verification (alipay-protocol.md A7, B3): decode the form values once, drop `sign` and
//! `sign_type` and empty values, sort, join, verify in the declared charset. The receiver answers
//! the body `success` only after it has stored what the notification says.

use std::str::FromStr;

use crate::charset::{Charset, CharsetError, declared_charset, decode_form};
use crate::params::{Params, Unsigned, canonical};
use crate::sign::{SignError, Signer, Verifier};

/// The exact body a receiver answers once the notification is durable.
pub const ACK_BODY: &str = "success";

/// Why a notification was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NotifyError {
    #[error("notification body is not a form in a supported charset")]
    Unreadable,
    #[error("notification names parameter `{0}` twice")]
    DuplicateField(String),
    #[error("notification has no sign")]
    MissingSign,
    #[error("notification's sign_type is not the one configured")]
    WrongSignType,
    #[error("notification signature does not verify")]
    BadSignature,
}

impl From<CharsetError> for NotifyError {
    fn from(_: CharsetError) -> Self {
        NotifyError::Unreadable
    }
}

/// A verified notification: its decoded fields, in the order received.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Notification {
    fields: Vec<(String, String)>,
}

impl Notification {
    pub fn get(&self, key: &str) -> Option<&str> {
        self.fields.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str())
    }

    /// Parses one field into its type; `None` if absent, `Err` if malformed.
    pub fn parse<T: FromStr>(&self, key: &str) -> Option<Result<T, T::Err>> {
        self.get(key).map(str::parse)
    }

    pub fn fields(&self) -> impl Iterator<Item = (&str, &str)> {
        self.fields.iter().map(|(k, v)| (k.as_str(), v.as_str()))
    }
}

/// Verifies a notification body. `charset_field` is `charset` (OpenAPI) or `_input_charset` (MAPI).
pub fn verify_notification(body: &[u8], charset_field: &str, verifier: &Verifier) -> Result<Notification, NotifyError> {
    let charset = declared_charset(body, charset_field)?;
    let fields = decode_form(body, charset)?;
    for (i, (key, _)) in fields.iter().enumerate() {
        if fields[..i].iter().any(|(k, _)| k == key) {
            return Err(NotifyError::DuplicateField(key.clone()));
        }
    }
    let notification = Notification { fields };
    let sign = notification.get("sign").filter(|s| !s.is_empty()).ok_or(NotifyError::MissingSign)?;
    if let Some(declared) = notification.get("sign_type")
        && declared != verifier.sign_type().as_str()
    {
        return Err(NotifyError::WrongSignType);
    }
    let text = canonical(notification.fields(), Unsigned::SignAndSignType);
    let bytes = charset.encode(&text)?;
    verifier.verify(&bytes, sign).map_err(|_| NotifyError::BadSignature)?;
    Ok(notification)
}

/// Signs a notification's parameters (sandbox side): sets `sign_type` and `sign`.
pub fn sign_notification(params: &mut Params, signer: &Signer, charset: Charset) -> Result<(), SignError> {
    let text = params.canonical(Unsigned::SignAndSignType);
    let bytes = charset.encode(&text).map_err(|_| SignError)?;
    let sign = signer.sign(&bytes)?;
    params.set("sign_type", signer.sign_type().as_str());
    params.set("sign", sign);
    Ok(())
}
