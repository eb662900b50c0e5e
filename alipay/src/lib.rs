//! Alipay's two wire dialects, with no I/O: canonical strings, signing and verification (RSA2,
//! RSA, MD5), key parsing, typed messages, answer and notification verification, and the
//! classification of every answer into Success, Failed or Unknown.
//!
//! Everything here is pure and synchronous, so the gateway, the reconciler and the sandbox share
//! one definition of the protocol, and the signature vectors test exactly the code in production.
//!
//! # Layout
//! - [`money`]: [`Amount`] in integer minor units with ISO 4217 exponents; [`Decimal`] for answers.
//! - [`ids`]: parsed identifiers (`AppId`, `Partner`, `OutTradeNo`, `AuthCode`, ...).
//! - [`charset`]: UTF-8 / GBK, and form encoding in either.
//! - [`keys`]: private and public RSA keys and MD5 keys, parsed once, secrets masked and zeroized.
//! - [`sign`]: [`SignType`], [`Signer`], [`Verifier`].
//! - [`params`]: flat parameters and the canonical string.
//! - [`outcome`]: [`Outcome`] (Success / Failed / Unknown) and why.
//! - [`openapi`]: the OpenAPI dialect (`method=`, `biz_content`, JSON answers).
//! - [`mapi`]: the Global MAPI dialect (`service=`, flat parameters, XML answers).
//! - [`notify`]: asynchronous notification verification and signing.
//! - [`server`]: Alipay's side of `gateway.do` (request reading, gateway checks, answers), shared
//!   by the sandbox and the gateway's front door.
//! - [`time_text`]: Beijing-time formats.
//! - [`unified`]: one call in either dialect, in neutral terms (what the services use).
//! - `test_keys` (feature `test-keys`): the test RSA key pairs and MD5 key, for tests and benches.

pub mod charset;
pub mod ids;
pub mod keys;
pub mod mapi;
pub mod money;
pub mod notify;
pub mod openapi;
pub mod outcome;
pub mod params;
pub mod server;
pub mod sign;
#[cfg(feature = "test-keys")]
pub mod test_keys;
pub mod time_text;
pub mod unified;

#[doc(hidden)]
pub use serde as __serde;

pub use charset::Charset;
pub use ids::{AppId, AuthCode, InvalidId, MerchantRef, OutRequestNo, OutTradeNo, Partner, Subject, TradeNo, UserId};
pub use keys::{KeyError, Md5Key, PrivateKey, PublicKey};
pub use money::{Amount, Currency, Decimal, MoneyError};
pub use outcome::{Failure, Outcome, UnknownReason};
pub use params::Params;
pub use sign::{BadSignature, SignType, Signer, Verifier};
