//! The gateway killed with SIGKILL, as processes of their own against the real Postgres, Redis
//! and sandbox (they need the `failpoints` feature, which the gateway's dev-dependency on itself
//! turns on for every test build, so a plain `cargo test --workspace` runs them):
//! - [`windows`]: in each crash window of a payment, held there by a failpoint.
//! - [`postgres_windows`]: Postgres killed in each crash window (alone, and with the gateway).
//! - [`scale_out`]: three gateways and two reconcilers; one of each killed, Redis stopped.
//! - [`soak`]: load for minutes while every part of the stack fails in turn (`scripts/soak`;
//!   ignored by the test command).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod postgres_windows;
mod scale_out;
mod soak;
mod windows;

use stack::Stack;

/// Pay calls Alipay (the sandbox) received, both dialects.
async fn pay_calls(stack: &Stack) -> u64 {
    stack.sandbox_calls(&["alipay.trade.pay", "alipay.acquire.overseas.spot.pay"]).await
}
