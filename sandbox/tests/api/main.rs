//! The sandbox over real HTTP: every scenario in both dialects, trade state, gateway errors,
//! hostile input, notifications and the bill files. Each test starts its own sandbox on port 0.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod bill_download;
mod bill_helpers;
mod gateway_errors;
mod global_drop;
mod helpers;
mod mapi_scenarios;
mod notifications;
mod openapi_scenarios;
mod trades;
