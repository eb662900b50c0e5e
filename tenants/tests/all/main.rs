//! The tenants crate against the real Postgres here: a fresh database per test.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod admin_api;
mod cli;
mod front_door;
mod front_door_ops;
mod helpers;
mod no_plaintext;
mod pools;
mod postgres_tls;
mod registry;
mod revocation;
mod signing_example;
mod snapshot;
mod url_policy;
