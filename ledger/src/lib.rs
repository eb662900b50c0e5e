//! The ledger: every trade, refund and notification, and the merchant-webhook outbox.
//!
//! Postgres is the truth. The intent row is committed before anything goes to Alipay, every
//! transition is a compare-and-set on `(state, version)`, and `next_check_at` says when the
//! reconciler must look at a trade next. Redis holds only a rebuildable due-index of it.
//!
//! # Layout
//! - [`state`]: the trade state machine of design §4 (pure).
//! - [`trade`]: trade and refund rows, intents and settlements.
//! - [`proven`]: what Alipay's answers prove (the settlement to record), and recording a
//!   confirmed cancel.
//! - [`store`]: the Postgres store (migrations, payments, refunds, notifications, reports).
//! - [`due_index`]: the Redis sorted set of due trades.
//! - [`announce`]: telling every process that trades became final (batched NOTIFY).
//! - [`finals`]: waiting for a trade to become final (LISTEN `trade_settled`).

pub mod announce;
pub mod due_index;
pub mod finals;
pub mod proven;
pub mod state;
pub mod store;
pub mod trade;

pub use announce::Announcer;
pub use due_index::DueIndex;
pub use finals::Finals;
pub use proven::{CancelRecorded, Recheck, record_cancel};
pub use state::{RefundState, TradeKind, TradeState};
pub use store::{Begin, BeginRefund, Recorded, Store, StoreError};
pub use trade::{CancelAction, NewRefund, NewTrade, Refund, RefundSettlement, Settlement, Trade, TradeKey};
