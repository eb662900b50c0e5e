//! The gateway against the real Postgres, Redis and Alipay sandbox; every POS a real HTTP client.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod admin;
mod front_door;
mod front_door_sdks;
mod hostile;
mod idempotency;
mod isolation;
mod ledger_busy;
mod monitoring;
mod notifications;
mod openapi;
mod operations;
mod partner_clients;
mod postgres_restart;
mod postgres_tls;
mod replay;
mod report_flood;
mod scenarios;
mod secrets;
mod shared_limits;
mod slow_clients;
mod version;
