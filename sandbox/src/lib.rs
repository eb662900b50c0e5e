//! An Alipay that behaves like Alipay, for tests and load tests on machines with no internet.
//!
//! It serves both dialects on `GET|POST /gateway.do` (OpenAPI by `method`, Global MAPI by
//! `service`), verifies each request against the merchant key registered with it, keeps real
//! per-merchant trade state, plays the scenarios of design §5 (picked by the barcode's last two
//! digits, every delay scaled by `--time-scale`), signs its answers with its platform key (or the
//! merchant's MD5 key), and sends signed notifications on Alipay's retry schedule. It makes Alipay's
//! bill files from that trade state ([`billing`]). Test hooks live under `/sandbox/` (see
//! [`hooks`]). Never linked into production binaries.
//!
//! # Layout
//! - [`config`]: [`Config`] and [`Sandbox`], which binds, serves and stops.
//! - [`server`]: the listener (the shared `telemetry::server`, its caps and deadlines) and routing.
//! - [`openapi`], [`mapi`]: each dialect's methods and answers (requests are read, and OpenAPI's
//!   common checks made, by `alipay::server`, which the gateway's front door shares).
//! - [`ledger`]: the trades and their state machine, shared by both dialects.
//! - [`trade`]: one trade, its status, its buyer, its place and its refunds.
//! - [`billing`]: the bill files made from the trades (the OpenAPI trade and account bills
//!   behind `alipay.data.dataservice.bill.downloadurl.query` and `GET /downloadBillFile.resource`,
//!   Global's files dropped for MAPI partners), the bill clock and the bill hooks.
//! - [`scenario`]: what a barcode's suffix makes happen.
//! - [`notify`]: signed notifications with retries.
//! - [`merchants`]: [`Registration`] (what `POST /sandbox/merchants` takes and clients send),
//!   registered merchants and the platform key.
//! - [`hooks`]: the `/sandbox/` test hooks.
//! - [`oauth_codes`], [`faults`], [`stats`], [`clock`]: auth codes, injected faults, counters, scaled time.
//! - [`app`]: the shared state and the answer type.

pub mod app;
pub mod billing;
pub mod clock;
pub mod config;
pub mod faults;
pub mod hooks;
pub mod ledger;
pub mod mapi;
pub mod merchants;
pub mod notify;
pub mod oauth_codes;
pub mod openapi;
pub mod scenario;
pub mod server;
pub mod stats;
pub mod trade;

pub use config::{Config, Sandbox, StartError};
pub use merchants::{Dialect, Registration};
pub use scenario::Scenario;
