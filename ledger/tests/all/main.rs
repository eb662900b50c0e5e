//! The ledger against the real Postgres and Redis here: a fresh database and key prefix per test.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod helpers;
mod planning;
mod reconcile;
mod state_machine;
mod store;
