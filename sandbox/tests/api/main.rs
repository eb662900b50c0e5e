//! The sandbox over real HTTP: every scenario in both dialects, trade state, gateway errors,
//! hostile input and notifications. Each test starts its own sandbox on port 0.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod gateway_errors;
mod helpers;
mod mapi_scenarios;
mod notifications;
mod openapi_scenarios;
mod trades;
