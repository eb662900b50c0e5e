//! The `bills` crate from outside: round trips, the forms real files come in, every refusal, and
//! properties over generated rows.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod global;
mod helpers;
mod props;
mod refusals;
mod trade;
