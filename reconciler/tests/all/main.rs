//! The reconciler against the real Postgres, Redis, Alipay sandbox and gateway: trades made
//! through the partner API, settled by reconcilers in this process or run as processes, checked
//! against the sandbox's ground truth.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod backlog;
mod bills;
mod crash;
mod exclusive;
mod helpers;
mod matching;
mod pools;
mod pos_notify;
mod qr;
mod refunds;
mod reversals;
mod scenarios;
mod webhooks;
