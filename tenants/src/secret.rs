//! Secrets in memory: masked in `Debug`, zeroized on drop, shown only through [`Secret::expose`].

use std::fmt;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use zeroize::Zeroizing;

/// A secret string (an API secret, a webhook secret, an MD5 key).
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(Zeroizing<String>);

impl Secret {
    pub fn new(text: String) -> Self {
        Secret(Zeroizing::new(text))
    }

    /// 32 random bytes as unpadded base64url (43 characters).
    pub fn generate() -> Result<Self, aws_lc_rs::error::Unspecified> {
        let mut bytes = Zeroizing::new([0u8; 32]);
        aws_lc_rs::rand::fill(bytes.as_mut())?;
        Ok(Secret::new(URL_SAFE_NO_PAD.encode(bytes.as_ref())))
    }

    /// The secret itself: for HMAC keys, sealing, and the one time it is shown.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(***)")
    }
}

/// A new partner API key id: `ak_` and 20 lowercase letters and digits.
pub fn new_key_id() -> Result<String, aws_lc_rs::error::Unspecified> {
    const ALPHABET: &[u8] = b"abcdefghijklmnopqrstuvwxyz234567";
    let mut bytes = [0u8; 20];
    aws_lc_rs::rand::fill(&mut bytes)?;
    Ok(format!("ak_{}", bytes.iter().map(|b| char::from(ALPHABET[usize::from(b & 31)])).collect::<String>()))
}
