//! Tenants: the restaurants (merchants) the gateway serves, their Alipay identity and keys.
//!
//! Acquirer ops onboard, change, suspend, rotate and delete tenants with the `tenants` CLI or the
//! admin API; the gateway and reconciler read the [`snapshot`], which holds every live tenant with
//! its signer already parsed. No plaintext secret touches the database: each is sealed with the
//! tenant's data key, itself wrapped by a master key kept outside it ([`vault`]). A tenant may
//! also have a front door: an Alipay-compatible `gateway.do` of ours its POS software calls, with
//! keys of its own ([`registry::front_door`], [`snapshot::FrontDoor`]).
//!
//! # Layout
//! - [`model`]: validated tenant fields (slug, environment, limits, secondary merchant, identity).
//! - [`vault`]: envelope encryption (master key ring, data keys, AES-256-GCM with bound AAD).
//! - [`secret`]: secrets in memory and API key ids.
//! - [`signature`]: the partner API's request signature (POS requests, merchant webhooks).
//! - [`url_policy`]: where we may send on a merchant's behalf (https and public addresses in
//!   production), checked when a URL is saved and when sending.
//! - [`db`]: the bounded pools (wait limits, statement timeouts) and the migrations (`migrations/`).
//! - [`registry`]: every ops operation, validated then written with its audit row.
//! - [`snapshot`]: the in-memory snapshot, its loader and its LISTEN/NOTIFY refresher.
//! - [`admin`]: the token-protected admin HTTP API; its request bodies are public, for its clients.
//! - [`cli`]: the `tenants` command line.

pub mod admin;
pub mod cli;
pub mod db;
pub mod model;
pub mod registry;
pub mod secret;
pub mod signature;
pub mod snapshot;
pub mod url_policy;
pub mod vault;

pub use registry::{Registry, RegistryError};
pub use snapshot::{Snapshot, Snapshots, Tenant};
pub use vault::Keyring;
