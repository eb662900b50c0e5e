//! The gateway: the partner API POS terminals call (design §3). It authenticates the POS,
//! rate-limits per tenant, records every trade before anything goes to Alipay, signs the call
//! with the tenant's own key in the tenant's dialect, verifies Alipay's answer, and answers
//! SUCCESS, FAILED or UNKNOWN; it also receives Alipay's notifications.
//!
//! A payment's life:
//! ```text
//! POS ─▶ read body ─▶ authenticate ─▶ nonce unused? ─▶ tenant active? ─▶ budget ─▶ validate
//!     ─▶ lead (or follow an identical call) ─▶ intent row (PAYING, committed)
//!     ─▶ sign ─▶ Alipay ─▶ verify + classify ─▶ CAS outcome ─▶ arm due-index if UNKNOWN ─▶ answer
//! ```
//! Everything from the intent on is an `upstream::call::Call` ([`api::calls`]), run detached from
//! the POS connection: the same path QR orders, cancels, refunds and the reconciler's calls take.
//!
//! # Layout
//! - [`config`]: configuration, validated at start (the listeners' caps and deadlines among it).
//! - [`app`]: starting and stopping ([`Gateway`]); the partner API (HTTP/1.1 and h2c) and admin
//!   listeners run `telemetry::server`, with their caps and deadlines.
//! - [`state`]: what every request may use.
//! - [`routes`]: routing and the steps before every handler.
//! - [`auth`]: the ACQ1-HMAC-SHA256 scheme (signature and clock skew).
//! - [`replay`]: each nonce used once across every replica (memory, then Redis; the process
//!   start when Redis is away).
//! - [`limits`]: the budgets a call draws on (its tenant's pay, other or report budget; its
//!   Alipay app's), held across every replica through Redis (`budgets`).
//! - [`admission`]: an authenticated request's nonce claim and budget check, one Redis round trip.
//! - [`api`]: the partner API's handlers, the calls they make, and views.
//! - [`inflight`]: one call to Alipay per trade at a time.
//! - [`notify`]: Alipay's notifications.
//! - [`front_door`]: Alipay's own `gateway.do`, for POS software written on Alipay's SDKs.
//! - [`problem`]: errors as `application/problem+json` (the one place).
//! - [`admin_bills`]: the admin API's settlement resources (bill days, discrepancies, resolve).

pub mod admin_bills;
pub mod admission;
pub mod api;
pub mod app;
pub mod auth;
pub mod config;
pub mod front_door;
pub mod inflight;
pub mod limits;
pub mod notify;
pub mod problem;
pub mod replay;
pub mod routes;
pub mod state;

pub use app::{Gateway, Secrets, StartError};
pub use config::Config;
