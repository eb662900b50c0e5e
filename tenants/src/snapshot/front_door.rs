//! A tenant's front door as the gateway uses it: the keys that verify its POS's requests and the
//! keys that sign its answers, each with its time window, parsed once when the tenant is loaded.
//! A rotation needs no reload at its window's end: the windows are checked against `now`.

use std::fmt;
use std::sync::Arc;

use alipay::{Md5Key, PrivateKey, PublicKey, SignType, Signer, Verifier};
use time::OffsetDateTime;
use uuid::Uuid;

use super::load::TenantLoadError;
use crate::vault::{DataKey, Purpose, VaultError};

/// A tenant's front door: the Alipay-compatible gateway.do its POS software calls.
pub struct FrontDoor {
    /// The app id (OpenAPI) or partner (MAPI) the POS sends.
    pub id: String,
    pub sign_type: SignType,
    /// Verify the POS's requests: the current POS key (until: None) and, during a rotation's
    /// overlap, the previous one.
    pub pos_keys: Vec<PosKey>,
    /// Sign answers and notifications, each from its time on: RSA platform keys, or the MD5 key
    /// (from: UNIX_EPOCH).
    pub platform: Vec<PlatformKey>,
}

/// A key that verifies the POS's requests until `until` (`None`: the current key).
pub struct PosKey {
    pub verifier: Verifier,
    pub until: Option<OffsetDateTime>,
    /// MD5 front doors: the same shared key, which signs the answers to the requests it verified
    /// (during a rotation's overlap a POS still on the old key can verify only answers in it).
    pub signer: Option<Signer>,
}

/// A key that signs answers from `from` on (until a newer key's `from`).
pub struct PlatformKey {
    pub signer: Signer,
    pub from: OffsetDateTime,
    /// bare base64 SPKI (None for MD5)
    pub public_key: Option<String>,
}

impl PosKey {
    pub fn is_valid_at(&self, now: OffsetDateTime) -> bool {
        self.until.is_none_or(|end| now < end)
    }
}

impl FrontDoor {
    /// The keys that verify a POS request at `now`.
    pub fn verifiers(&self, now: OffsetDateTime) -> impl Iterator<Item = &Verifier> {
        self.pos_keys.iter().filter(move |k| k.is_valid_at(now)).map(|k| &k.verifier)
    }

    /// The key that verifies a request at `now` (`verifies` says whether a key does), and the key
    /// that signs its answer: the same shared key for MD5, the platform key at `now` for RSA.
    pub fn verify(&self, now: OffsetDateTime, verifies: impl Fn(&Verifier) -> bool) -> Option<&Signer> {
        let key = self.pos_keys.iter().filter(|k| k.is_valid_at(now)).find(|k| verifies(&k.verifier))?;
        key.signer.as_ref().or_else(|| self.signer(now))
    }

    /// The key that signs at `now`: the newest whose `from` is not after `now`.
    pub fn signer(&self, now: OffsetDateTime) -> Option<&Signer> {
        self.platform.iter().filter(|k| k.from <= now).max_by_key(|k| k.from).map(|k| &k.signer)
    }
}

/// Names the keys and their windows, never their material.
impl fmt::Debug for FrontDoor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FrontDoor")
            .field("id", &self.id)
            .field("sign_type", &self.sign_type)
            .field("pos_keys", &self.pos_keys)
            .field("platform", &self.platform)
            .finish()
    }
}

impl fmt::Debug for PosKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PosKey({}, ***, until {:?})", self.verifier.sign_type(), self.until)
    }
}

impl fmt::Debug for PlatformKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PlatformKey({}, ***, from {})", self.signer.sign_type(), self.from)
    }
}

/// One front-door key as stored.
pub(super) struct SealedWindowKey {
    pub purpose: Purpose,
    pub version: i32,
    pub sealed: Vec<u8>,
    pub valid_from: Option<OffsetDateTime>,
    pub valid_until: Option<OffsetDateTime>,
}

/// A front door as stored: its row and its live keys.
pub(super) struct SealedFrontDoor {
    pub id: String,
    pub sign_type: String,
    pub keys: Vec<SealedWindowKey>,
}

fn key_error(what: &'static str) -> impl Fn(alipay::KeyError) -> TenantLoadError {
    move |e| TenantLoadError::Key(what, e)
}

/// Opens and parses a front door's keys (with `tenant`'s data key).
pub(super) fn build(data_key: &DataKey, tenant: Uuid, sealed: SealedFrontDoor) -> Result<FrontDoor, TenantLoadError> {
    let sign_type: SignType = sealed.sign_type.parse().map_err(|_| TenantLoadError::Corrupt("front door sign type"))?;
    let mut keys = sealed.keys;
    // Newest first: most requests are signed with the current key.
    keys.sort_by_key(|k| std::cmp::Reverse(k.version));
    let mut pos_keys = Vec::new();
    let mut platform = Vec::new();
    for key in keys {
        let plain = data_key.open(tenant, key.purpose, &key.version.to_string(), &key.sealed)?;
        let text = std::str::from_utf8(&plain).map_err(|_| VaultError::DoesNotOpen)?;
        match (key.purpose, sign_type) {
            (Purpose::FrontDoorPosKey, SignType::Md5) => {
                let md5 = Md5Key::new(text).map_err(key_error("front door MD5 key"))?;
                if key.valid_until.is_none() {
                    platform.push(PlatformKey {
                        signer: Signer::md5(md5.clone()),
                        from: OffsetDateTime::UNIX_EPOCH,
                        public_key: None,
                    });
                }
                pos_keys.push(PosKey {
                    verifier: Verifier::md5(md5.clone()),
                    until: key.valid_until,
                    signer: Some(Signer::md5(md5)),
                });
            }
            (Purpose::FrontDoorPosKey, rsa) => {
                let public = PublicKey::parse(text).map_err(key_error("front door POS public key"))?;
                let verifier = Verifier::rsa(rsa, &public).map_err(key_error("front door POS public key"))?;
                pos_keys.push(PosKey { verifier, until: key.valid_until, signer: None });
            }
            (Purpose::FrontDoorPlatformKey, SignType::Rsa2 | SignType::Rsa) => {
                let private = PrivateKey::parse(text).map_err(key_error("front door platform key"))?;
                let public = private.public_key().map_err(key_error("front door platform key"))?.to_base64();
                let signer = match sign_type {
                    SignType::Rsa => Signer::rsa(&private),
                    _ => Signer::rsa2(Arc::new(private)),
                }
                .map_err(key_error("front door platform key"))?;
                let from = key.valid_from.unwrap_or(OffsetDateTime::UNIX_EPOCH);
                platform.push(PlatformKey { signer, from, public_key: Some(public) });
            }
            _ => return Err(TenantLoadError::Corrupt("front door key")),
        }
    }
    if !pos_keys.iter().any(|k| k.until.is_none()) || platform.is_empty() {
        return Err(TenantLoadError::Corrupt("front door (a current key is missing)"));
    }
    platform.sort_by_key(|k| k.from);
    Ok(FrontDoor { id: sealed.id, sign_type, pos_keys, platform })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn md5_door(until: Option<OffsetDateTime>) -> FrontDoor {
        let key = Md5Key::new("k3y").unwrap();
        FrontDoor {
            id: "2088990000000001".into(),
            sign_type: SignType::Md5,
            pos_keys: vec![PosKey {
                verifier: Verifier::md5(key.clone()),
                until,
                signer: Some(Signer::md5(key.clone())),
            }],
            platform: vec![PlatformKey {
                signer: Signer::md5(key),
                from: OffsetDateTime::UNIX_EPOCH,
                public_key: None,
            }],
        }
    }

    #[test]
    fn windows_are_checked_against_now_and_debug_shows_no_key() {
        let now = OffsetDateTime::now_utc();
        let door = md5_door(Some(now));
        assert_eq!(door.verifiers(now - time::Duration::SECOND).count(), 1);
        assert_eq!(door.verifiers(now).count(), 0);
        assert!(door.signer(now).is_some());
        assert!(!format!("{door:?}").contains("k3y"));
    }
}
