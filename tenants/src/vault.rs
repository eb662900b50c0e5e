//! Envelope encryption of tenant secrets.
//!
//! A master key (32 bytes, outside the database, named by a key id) wraps one random data key per
//! tenant; the data key seals each secret with AES-256-GCM. The associated data binds every sealed
//! value to its tenant, its purpose and its version, so a value copied to another tenant, purpose or
//! version does not open. Several master keys may be loaded at once (the first is current): data
//! keys wrapped by an older one still open while `rotate-master-key` re-wraps them.
//!
//! Sealed format: `0x01 || nonce (12) || ciphertext || tag (16)`.

use std::fmt;

use aws_lc_rs::aead::{AES_256_GCM, Aad, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use uuid::Uuid;
use zeroize::Zeroizing;

const FORMAT: u8 = 1;
const KEY_LEN: usize = 32;

/// What a sealed value is; part of its associated data.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Purpose {
    AppPrivateKey,
    Md5Key,
    AlipayPublicKey,
    WebhookSecret,
    ApiSecret,
    /// A front door's POS key: the POS's RSA public key, or the MD5 key.
    FrontDoorPosKey,
    /// A front door's platform key: the RSA private key that signs its answers.
    FrontDoorPlatformKey,
}

impl Purpose {
    pub const fn as_str(self) -> &'static str {
        match self {
            Purpose::AppPrivateKey => "app_private_key",
            Purpose::Md5Key => "md5_key",
            Purpose::AlipayPublicKey => "alipay_public_key",
            Purpose::WebhookSecret => "webhook_secret",
            Purpose::ApiSecret => "api_secret",
            Purpose::FrontDoorPosKey => "front_door_pos_key",
            Purpose::FrontDoorPlatformKey => "front_door_platform_key",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        [
            Purpose::AppPrivateKey,
            Purpose::Md5Key,
            Purpose::AlipayPublicKey,
            Purpose::WebhookSecret,
            Purpose::ApiSecret,
            Purpose::FrontDoorPosKey,
            Purpose::FrontDoorPlatformKey,
        ]
        .into_iter()
        .find(|p| p.as_str() == text)
    }
}

/// The vault refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VaultError {
    #[error("master key ring: {0}")]
    Keyring(String),
    #[error("no master key with id `{0}` is loaded")]
    UnknownMasterKey(String),
    #[error("sealed value does not open (wrong key, tenant, purpose or version, or damaged)")]
    DoesNotOpen,
    #[error("the crypto library failed")]
    Crypto,
}

fn aead_key(bytes: &[u8]) -> Result<LessSafeKey, VaultError> {
    Ok(LessSafeKey::new(UnboundKey::new(&AES_256_GCM, bytes).map_err(|_| VaultError::Crypto)?))
}

fn seal_with(key: &LessSafeKey, aad: &str, plaintext: &[u8]) -> Result<Vec<u8>, VaultError> {
    let mut nonce = [0u8; NONCE_LEN];
    aws_lc_rs::rand::fill(&mut nonce).map_err(|_| VaultError::Crypto)?;
    let mut out = Vec::with_capacity(1 + NONCE_LEN + plaintext.len() + 16);
    out.push(FORMAT);
    out.extend_from_slice(&nonce);
    let mut body = plaintext.to_vec();
    key.seal_in_place_append_tag(Nonce::assume_unique_for_key(nonce), Aad::from(aad.as_bytes()), &mut body)
        .map_err(|_| VaultError::Crypto)?;
    out.extend_from_slice(&body);
    Ok(out)
}

fn open_with(key: &LessSafeKey, aad: &str, sealed: &[u8]) -> Result<Zeroizing<Vec<u8>>, VaultError> {
    if sealed.len() < 1 + NONCE_LEN + 16 || sealed[0] != FORMAT {
        return Err(VaultError::DoesNotOpen);
    }
    let nonce = Nonce::try_assume_unique_for_key(&sealed[1..1 + NONCE_LEN]).map_err(|_| VaultError::DoesNotOpen)?;
    let mut body = Zeroizing::new(sealed[1 + NONCE_LEN..].to_vec());
    let plain_len =
        key.open_in_place(nonce, Aad::from(aad.as_bytes()), &mut body).map_err(|_| VaultError::DoesNotOpen)?.len();
    body.truncate(plain_len);
    Ok(body)
}

/// One master key.
struct MasterKey {
    id: String,
    key: LessSafeKey,
}

/// The loaded master keys; the first wraps new data keys.
pub struct Keyring {
    keys: Vec<MasterKey>,
}

impl fmt::Debug for Keyring {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let ids: Vec<&str> = self.keys.iter().map(|k| k.id.as_str()).collect();
        write!(f, "Keyring({ids:?}, ***)")
    }
}

impl Keyring {
    /// Parses `id base64-of-32-bytes` lines (or `id:base64`, comma-separated, as an environment
    /// variable holds them); the first key is current. `#` starts a comment.
    pub fn parse(text: &str) -> Result<Keyring, VaultError> {
        let mut keys: Vec<MasterKey> = Vec::new();
        let entries = text.lines().flat_map(|line| line.split(',')).map(|e| e.split('#').next().unwrap_or("").trim());
        for entry in entries.filter(|e| !e.is_empty()) {
            let (id, material) = entry
                .split_once(|c: char| c == ':' || c.is_ascii_whitespace())
                .ok_or_else(|| VaultError::Keyring("each key is `<id> <base64 of 32 bytes>`".into()))?;
            let (id, material) = (id.trim(), material.trim());
            if id.is_empty() || id.len() > 64 || !id.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
            {
                return Err(VaultError::Keyring(format!(
                    "master key id `{id}` must be 1 to 64 letters, digits, '-' or '_'"
                )));
            }
            let bytes = Zeroizing::new(
                BASE64.decode(material).map_err(|_| VaultError::Keyring(format!("master key `{id}` is not base64")))?,
            );
            if bytes.len() != KEY_LEN {
                return Err(VaultError::Keyring(format!("master key `{id}` must be 32 bytes, not {}", bytes.len())));
            }
            if keys.iter().any(|k| k.id == id) {
                return Err(VaultError::Keyring(format!("master key id `{id}` appears twice")));
            }
            keys.push(MasterKey { id: id.to_owned(), key: aead_key(&bytes)? });
        }
        if keys.is_empty() {
            return Err(VaultError::Keyring("no master key given".into()));
        }
        Ok(Keyring { keys })
    }

    /// A new random master key line, `id base64`, to add to a key ring.
    /// The ring the services are given: the file named by `ACQ_MASTER_KEY_FILE`, or else the
    /// keys in `ACQ_MASTER_KEYS`.
    pub fn from_env() -> Result<Keyring, VaultError> {
        let text = match (std::env::var("ACQ_MASTER_KEY_FILE"), std::env::var("ACQ_MASTER_KEYS")) {
            (Ok(path), _) => Zeroizing::new(
                std::fs::read_to_string(&path).map_err(|e| VaultError::Keyring(format!("cannot read {path}: {e}")))?,
            ),
            (Err(_), Ok(keys)) => Zeroizing::new(keys),
            _ => return Err(VaultError::Keyring("set ACQ_MASTER_KEY_FILE or ACQ_MASTER_KEYS".into())),
        };
        Keyring::parse(&text)
    }

    pub fn generate_line(id: &str) -> Result<Zeroizing<String>, VaultError> {
        let mut bytes = Zeroizing::new([0u8; KEY_LEN]);
        aws_lc_rs::rand::fill(bytes.as_mut()).map_err(|_| VaultError::Crypto)?;
        let line = Zeroizing::new(format!("{id} {}", BASE64.encode(bytes.as_ref())));
        Keyring::parse(&line)?;
        Ok(line)
    }

    /// The id of the key that wraps new data keys.
    pub fn current_id(&self) -> &str {
        &self.keys[0].id
    }

    fn key(&self, id: &str) -> Result<&MasterKey, VaultError> {
        self.keys.iter().find(|k| k.id == id).ok_or_else(|| VaultError::UnknownMasterKey(id.to_owned()))
    }

    fn wrap_aad(tenant: Uuid, master_id: &str) -> String {
        format!("acq1|tenant={tenant}|data-key|master={master_id}")
    }

    /// Wraps `data_key` with the current master key: `(master key id, wrapped bytes)`.
    pub fn wrap(&self, tenant: Uuid, data_key: &DataKey) -> Result<(String, Vec<u8>), VaultError> {
        let master = &self.keys[0];
        let wrapped = seal_with(&master.key, &Self::wrap_aad(tenant, &master.id), data_key.raw.as_ref())?;
        Ok((master.id.clone(), wrapped))
    }

    /// Unwraps a tenant's data key.
    pub fn unwrap(&self, tenant: Uuid, master_id: &str, wrapped: &[u8]) -> Result<DataKey, VaultError> {
        let master = self.key(master_id)?;
        let raw = open_with(&master.key, &Self::wrap_aad(tenant, master_id), wrapped)?;
        DataKey::from_raw(&raw)
    }
}

/// A tenant's data key.
pub struct DataKey {
    raw: Zeroizing<[u8; KEY_LEN]>,
    key: LessSafeKey,
}

impl fmt::Debug for DataKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("DataKey(***)")
    }
}

impl DataKey {
    pub fn generate() -> Result<DataKey, VaultError> {
        let mut raw = Zeroizing::new([0u8; KEY_LEN]);
        aws_lc_rs::rand::fill(raw.as_mut()).map_err(|_| VaultError::Crypto)?;
        DataKey::from_raw(raw.as_ref())
    }

    fn from_raw(bytes: &[u8]) -> Result<DataKey, VaultError> {
        let mut raw = Zeroizing::new([0u8; KEY_LEN]);
        if bytes.len() != KEY_LEN {
            return Err(VaultError::DoesNotOpen);
        }
        raw.copy_from_slice(bytes);
        let key = aead_key(raw.as_ref())?;
        Ok(DataKey { raw, key })
    }

    fn aad(tenant: Uuid, purpose: Purpose, version: &str) -> String {
        format!("acq1|tenant={tenant}|purpose={}|version={version}", purpose.as_str())
    }

    /// Seals `plaintext` for `tenant`, `purpose` and `version` (a number, or an API key id).
    pub fn seal(&self, tenant: Uuid, purpose: Purpose, version: &str, plaintext: &[u8]) -> Result<Vec<u8>, VaultError> {
        seal_with(&self.key, &Self::aad(tenant, purpose, version), plaintext)
    }

    pub fn open(
        &self,
        tenant: Uuid,
        purpose: Purpose,
        version: &str,
        sealed: &[u8],
    ) -> Result<Zeroizing<Vec<u8>>, VaultError> {
        open_with(&self.key, &Self::aad(tenant, purpose, version), sealed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ring(lines: &[&str]) -> Keyring {
        let text: Vec<String> = lines.iter().map(|id| Keyring::generate_line(id).unwrap().to_string()).collect();
        Keyring::parse(&text.join("\n")).unwrap()
    }

    #[test]
    fn sealed_values_open_only_where_they_belong() {
        let key = DataKey::generate().unwrap();
        let (a, b) = (Uuid::new_v4(), Uuid::new_v4());
        let sealed = key.seal(a, Purpose::Md5Key, "1", b"secret").unwrap();
        assert_eq!(key.open(a, Purpose::Md5Key, "1", &sealed).unwrap().as_slice(), b"secret");
        assert_eq!(key.open(b, Purpose::Md5Key, "1", &sealed), Err(VaultError::DoesNotOpen));
        assert_eq!(key.open(a, Purpose::WebhookSecret, "1", &sealed), Err(VaultError::DoesNotOpen));
        assert_eq!(key.open(a, Purpose::Md5Key, "2", &sealed), Err(VaultError::DoesNotOpen));
        let mut damaged = sealed.clone();
        let last = damaged.len() - 1;
        damaged[last] ^= 1;
        assert_eq!(key.open(a, Purpose::Md5Key, "1", &damaged), Err(VaultError::DoesNotOpen));
        assert!(!sealed.windows(6).any(|w| w == b"secret"));
    }

    #[test]
    fn data_keys_unwrap_with_any_loaded_master_key_and_only_for_their_tenant() {
        let k1 = Keyring::generate_line("k1").unwrap();
        let old = Keyring::parse(&k1).unwrap();
        let tenant = Uuid::new_v4();
        let data = DataKey::generate().unwrap();
        let (id, wrapped) = old.wrap(tenant, &data).unwrap();
        let sealed = data.seal(tenant, Purpose::ApiSecret, "ak_x", b"s").unwrap();
        let both =
            Keyring::parse(&format!("{}\n{}", Keyring::generate_line("k2").unwrap().as_str(), k1.as_str())).unwrap();
        assert_eq!(both.current_id(), "k2");
        let unwrapped = both.unwrap(tenant, &id, &wrapped).unwrap();
        assert_eq!(unwrapped.open(tenant, Purpose::ApiSecret, "ak_x", &sealed).unwrap().as_slice(), b"s");
        assert!(both.unwrap(Uuid::new_v4(), &id, &wrapped).is_err());
        assert_eq!(ring(&["k3"]).unwrap(tenant, &id, &wrapped).unwrap_err(), VaultError::UnknownMasterKey("k1".into()));
    }

    #[test]
    fn key_rings_are_checked() {
        assert!(Keyring::parse("").is_err());
        assert!(Keyring::parse("k1 AAAA").is_err());
        assert!(Keyring::parse("bad id! AAAA").is_err());
        let line = Keyring::generate_line("k1").unwrap();
        assert!(Keyring::parse(&format!("{}\n{}", line.as_str(), line.as_str())).is_err());
        let env_style = line.replacen(' ', ":", 1);
        assert_eq!(Keyring::parse(&env_style).unwrap().current_id(), "k1");
        assert!(!format!("{:?}", Keyring::parse(&line).unwrap()).contains(&line[3..10]));
    }
}
