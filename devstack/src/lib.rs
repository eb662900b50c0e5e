//! What `deploy/dev` needs beyond starting processes: the local stack's secrets and keys
//! (created once under `.dev/`), two demo tenants onboarded through the gateway's admin API and
//! registered with the sandbox, `.dev/stack.json`, a guided demo of the partner API, and signed
//! `Authorization` headers for curl.
//!
//! # Layout
//! - [`state`]: the `.dev/` directory: master key, admin token, sandbox platform key, merchants,
//!   `stack.json`.
//! - [`tenants`]: the demo tenants, ensured through the admin API (`loadtest::onboard`).
//! - [`demo`]: a paid, a refused and an UNKNOWN-then-settled payment, a refund, a QR order.
//! - [`cli`]: the `devstack` command.

pub mod cli;
pub mod demo;
pub mod state;
pub mod tenants;
