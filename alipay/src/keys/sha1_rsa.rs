//! SHA1withRSA signing (Alipay's `RSA` sign type) through AWS-LC.
//!
//! aws-lc-rs verifies SHA-1 signatures but does not offer SHA-1 *signing*, which legacy `RSA`
//! merchants still need. This module calls the same AWS-LC library directly: `RSA_sign` with
//! `NID_sha1` is PKCS#1 v1.5, deterministic, and thread-safe on a shared `RSA`.
#![allow(unsafe_code)]

use std::ptr::NonNull;

use aws_lc_rs::digest;
use aws_lc_sys as sys;

/// An RSA private key held by AWS-LC, used only for SHA1withRSA.
pub(crate) struct Sha1RsaKey {
    rsa: NonNull<sys::RSA>,
    size: usize,
}

// SAFETY: AWS-LC's RSA objects may be used for signing from several threads at once; the lazily
// built Montgomery and blinding state is guarded by the object's own lock.
unsafe impl Send for Sha1RsaKey {}
// SAFETY: as above; `sign` only performs AWS-LC's thread-safe private-key operation.
unsafe impl Sync for Sha1RsaKey {}

impl Sha1RsaKey {
    /// Parses an unencrypted PKCS#8 RSA private key.
    pub(crate) fn from_pkcs8(der: &[u8]) -> Option<Self> {
        let mut cbs = sys::CBS { data: std::ptr::null(), len: 0 };
        // SAFETY: `cbs` is initialised over `der`, which outlives every use of it below; the
        // EVP_PKEY is freed once the RSA reference has been taken (get1 adds its own reference).
        unsafe {
            sys::CBS_init(&mut cbs, der.as_ptr(), der.len());
            let pkey = sys::EVP_parse_private_key(&mut cbs);
            if pkey.is_null() {
                return None;
            }
            let rsa = sys::EVP_PKEY_get1_RSA(pkey);
            sys::EVP_PKEY_free(pkey);
            let rsa = NonNull::new(rsa)?;
            let size = sys::RSA_size(rsa.as_ptr()) as usize;
            Some(Self { rsa, size })
        }
    }

    /// Signs `message` with SHA1withRSA (PKCS#1 v1.5).
    pub(crate) fn sign(&self, message: &[u8]) -> Option<Vec<u8>> {
        let hash = digest::digest(&digest::SHA1_FOR_LEGACY_USE_ONLY, message);
        let mut out = vec![0u8; self.size];
        let mut out_len: std::os::raw::c_uint = 0;
        // SAFETY: `out` holds RSA_size bytes as RSA_sign requires; `hash` is a 20-byte SHA-1
        // digest; the RSA pointer is valid for the lifetime of `self`.
        let ok = unsafe {
            sys::RSA_sign(
                sys::NID_sha1,
                hash.as_ref().as_ptr(),
                hash.as_ref().len(),
                out.as_mut_ptr(),
                &mut out_len,
                self.rsa.as_ptr(),
            )
        };
        if ok != 1 {
            return None;
        }
        out.truncate(out_len as usize);
        Some(out)
    }
}

impl Drop for Sha1RsaKey {
    fn drop(&mut self) {
        // SAFETY: we own one reference to the RSA object; AWS-LC clears key material on free.
        unsafe { sys::RSA_free(self.rsa.as_ptr()) }
    }
}
