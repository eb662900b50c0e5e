//! The reconciler: settles every trade the gateway could not, the way Alipay asks (design §4):
//! an UNKNOWN trade is queried every 5 s and cancelled 60 s after it began (the cancel retried
//! while Alipay says so); a waiting QR order is polled until it expires, then closed; a PAYING
//! intent whose gateway died is found and settled the same way. Several replicas may run at
//! once: each claims due trades with a lease, and every write is a compare-and-set. It also
//! settles refunds whose outcome was not known, and delivers the merchant webhooks of the outbox (and Alipay's notifications to front-door POS
//! software).
//!
//! Postgres is the truth; Redis holds the due-index, which the sweeper rebuilds from Postgres.
//! Without Redis, trades are claimed from Postgres alone.
//!
//! # Layout
//! - [`config`]: [`Config`], every interval in milliseconds.
//! - [`app`]: [`Reconciler`]: start, the loops, stop.
//! - [`plan`]: what to do with an open trade now, and when next (pure).
//! - [`check`]: one check: query, cancel or close, each an `upstream::call::Call` (the path
//!   every call on a trade's behalf takes); record what Alipay proved (`ledger::proven`).
//! - [`claimer`]: the claim loop (Redis lease, or Postgres while Redis is away).
//! - [`writer`]: the batched due-index writes that follow checks.
//! - [`sweeper`]: re-arms, from Postgres, every open trade missing from Redis.
//! - [`budget`]: per-tenant query and cancel budgets.
//! - [`refunds`]: refunds whose outcome is not known, sent again (idempotent, as a `Call`) until
//!   it is.
//! - [`webhooks`]: signed merchant webhooks, retried for about a day, every attempt recorded.
//! - [`pos_notify`]: Alipay's notifications owed to front-door POS software (through the
//!   webhook worker, on Alipay's retry schedule).
//! - [`bills`]: the daily close: Alipay's bills fetched, kept, read, matched against the ledger
//!   and every disagreement classified and stored for ops.
//! - [`cli`]: the `reconciler` command line (`run`, `webhooks`, `bills`).

pub mod app;
pub mod bills;
pub mod budget;
pub mod check;
pub mod claimer;
pub mod cli;
pub mod config;
pub mod plan;
pub mod pos_notify;
pub mod refunds;
pub mod sweeper;
pub mod webhooks;
pub mod writer;

pub use app::{Reconciler, StartError};
pub use config::Config;
