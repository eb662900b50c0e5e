//! A trade and a refund as the ledger holds them, and what may be written into them.

use alipay::{Amount, Currency};
use serde::Serialize;
use time::OffsetDateTime;
use tokio_postgres::Row;
use uuid::Uuid;

use crate::state::{RefundState, TradeKind, TradeState};
use crate::store::StoreError;

/// Which trade: the tenant's own number, scoped to the tenant.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TradeKey {
    pub tenant_id: Uuid,
    pub out_trade_no: String,
}

impl TradeKey {
    pub fn new(tenant_id: Uuid, out_trade_no: impl Into<String>) -> Self {
        TradeKey { tenant_id, out_trade_no: out_trade_no.into() }
    }

    /// `tenant_id out_trade_no`: the due-index member and the `trade_settled` payload.
    pub fn encode(&self) -> String {
        format!("{} {}", self.tenant_id, self.out_trade_no)
    }

    pub fn decode(text: &str) -> Option<Self> {
        let (tenant, out_trade_no) = text.split_once(' ')?;
        Some(TradeKey { tenant_id: tenant.parse().ok()?, out_trade_no: out_trade_no.to_owned() })
    }
}

/// A cancel's effect: the unpaid trade closed, or the paid one refunded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum CancelAction {
    Close,
    Refund,
}

impl CancelAction {
    pub const fn as_str(self) -> &'static str {
        match self {
            CancelAction::Close => "close",
            CancelAction::Refund => "refund",
        }
    }
}

/// A trade row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Trade {
    pub key: TradeKey,
    pub kind: TradeKind,
    pub state: TradeState,
    pub version: i32,
    pub fingerprint: Vec<u8>,
    pub amount: Amount,
    pub refunded: Amount,
    pub subject: String,
    pub store_id: Option<String>,
    pub terminal_id: Option<String>,
    pub operator_id: Option<String>,
    pub trade_no: Option<String>,
    pub buyer_user_id: Option<String>,
    pub qr_code: Option<String>,
    pub failure_code: Option<String>,
    pub failure_message: Option<String>,
    pub unknown_reason: Option<String>,
    pub cancel_action: Option<CancelAction>,
    pub cancel_requested: bool,
    /// When the cancel was first asked for (its retries back off from then).
    pub cancel_requested_at: Option<OffsetDateTime>,
    pub created_at: OffsetDateTime,
    pub updated_at: OffsetDateTime,
    pub paid_at: Option<OffsetDateTime>,
    pub deadline: Option<OffsetDateTime>,
    pub next_check_at: Option<OffsetDateTime>,
}

/// The columns every trade read selects, in the order [`Trade::from_row`] reads them by position.
pub(crate) const TRADE_COLUMNS: &str = "tenant_id, out_trade_no, kind, state, version, fingerprint, currency, \
    amount_minor, refunded_minor, subject, store_id, terminal_id, operator_id, trade_no, buyer_user_id, qr_code, \
    failure_code, failure_message, unknown_reason, cancel_action, cancel_requested, created_at, updated_at, paid_at, \
    deadline, next_check_at, cancel_requested_at";

/// [`TRADE_COLUMNS`] qualified by a table alias (`t.tenant_id, t.out_trade_no, …`).
pub(crate) fn trade_columns_of(alias: &str) -> String {
    TRADE_COLUMNS.split(", ").map(|column| format!("{alias}.{column}")).collect::<Vec<_>>().join(", ")
}

fn corrupt(what: impl std::fmt::Display) -> StoreError {
    StoreError::Corrupt(what.to_string())
}

fn amount(currency: Currency, minor: i64) -> Result<Amount, StoreError> {
    let minor = u64::try_from(minor).map_err(|_| corrupt("negative amount"))?;
    Amount::from_minor(minor, currency).map_err(corrupt)
}

impl Trade {
    /// Reads a row selected with [`TRADE_COLUMNS`], by position (the hot path reads many).
    pub(crate) fn from_row(row: &Row) -> Result<Self, StoreError> {
        let currency: Currency = row.try_get::<_, &str>(6)?.parse().map_err(corrupt)?;
        let cancel_action = match row.try_get::<_, Option<&str>>(19)? {
            None => None,
            Some("close") => Some(CancelAction::Close),
            Some("refund") => Some(CancelAction::Refund),
            Some(other) => return Err(corrupt(format!("cancel action {other}"))),
        };
        Ok(Trade {
            key: TradeKey { tenant_id: row.try_get(0)?, out_trade_no: row.try_get(1)? },
            kind: row.try_get::<_, &str>(2)?.parse().map_err(corrupt)?,
            state: row.try_get::<_, &str>(3)?.parse().map_err(corrupt)?,
            version: row.try_get(4)?,
            fingerprint: row.try_get(5)?,
            amount: amount(currency, row.try_get(7)?)?,
            refunded: amount(currency, row.try_get(8)?)?,
            subject: row.try_get(9)?,
            store_id: row.try_get(10)?,
            terminal_id: row.try_get(11)?,
            operator_id: row.try_get(12)?,
            trade_no: row.try_get(13)?,
            buyer_user_id: row.try_get(14)?,
            qr_code: row.try_get(15)?,
            failure_code: row.try_get(16)?,
            failure_message: row.try_get(17)?,
            unknown_reason: row.try_get(18)?,
            cancel_action,
            cancel_requested: row.try_get(20)?,
            created_at: row.try_get(21)?,
            updated_at: row.try_get(22)?,
            paid_at: row.try_get(23)?,
            deadline: row.try_get(24)?,
            next_check_at: row.try_get(25)?,
            cancel_requested_at: row.try_get(26)?,
        })
    }
}

impl Trade {
    /// Whether the reconciler still has work on the trade: its outcome is not known yet, or a
    /// cancel the POS asked for must still reverse its payment.
    pub fn is_open(&self) -> bool {
        !self.state.is_final() || (self.cancel_requested && self.state.is_paid())
    }

    /// Whether an answer's facts are about this trade: its number and amount, where the answer
    /// states them. A payment is recorded only from an answer that matches.
    pub fn matches(&self, facts: &alipay::unified::Facts) -> bool {
        let same_trade = facts.out_trade_no.as_deref().is_none_or(|no| no == self.key.out_trade_no);
        let same_amount = facts.total.is_none_or(|total| total.to_amount(self.amount.currency()) == Ok(self.amount));
        same_trade && same_amount
    }
}

/// The intent row written before anything goes to Alipay.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewTrade {
    pub key: TradeKey,
    pub kind: TradeKind,
    pub fingerprint: Vec<u8>,
    pub amount: Amount,
    pub subject: String,
    pub store_id: Option<String>,
    pub terminal_id: Option<String>,
    pub operator_id: Option<String>,
    /// When the reconciler looks at the intent if its caller never records an answer (the
    /// caller died mid-call): past the caller's own deadline for the call.
    pub check_at: OffsetDateTime,
    /// The Alipay account the trade is made in (`tenants::registry::alipay_account`): its number
    /// must be free there too.
    pub alipay_account: String,
    /// Where the POS wants Alipay's asynchronous notification of the payment (front-door trades).
    pub notify_url: Option<String>,
}

/// What a call to Alipay (or a query, a cancel, a notification) proved about a trade.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Settlement {
    Paid {
        trade_no: Option<String>,
        buyer_user_id: Option<String>,
        paid_at: OffsetDateTime,
    },
    Failed {
        code: String,
        message: Option<String>,
    },
    /// Not proven: look again at `next_check_at`; cancel at `deadline`.
    Unknown {
        reason: String,
        next_check_at: OffsetDateTime,
        deadline: OffsetDateTime,
    },
    /// An order QR code now waits for the buyer until `deadline`.
    Waiting {
        qr_code: String,
        next_check_at: OffsetDateTime,
        deadline: OffsetDateTime,
    },
    Cancelled {
        action: CancelAction,
    },
}

impl Settlement {
    pub fn state(&self) -> TradeState {
        match self {
            Settlement::Paid { .. } => TradeState::Success,
            Settlement::Failed { .. } => TradeState::Failed,
            Settlement::Unknown { .. } => TradeState::Unknown,
            Settlement::Waiting { .. } => TradeState::Waiting,
            Settlement::Cancelled { .. } => TradeState::Cancelled,
        }
    }

    /// Whether Alipay's answer to a query gives this settlement back whole, so that losing it
    /// (written without waiting for the disk, then a crash) loses nothing: the trade is left as
    /// it was (PAYING, due) and the reconciler asks Alipay. A payment (TRADE_SUCCESS with its
    /// trade_no, buyer and time) and an UNKNOWN (the reconciler's own starting point) come back;
    /// a FAILED's code and message, a QR code and a cancel's action do not.
    /// docs/durability.md says why.
    pub fn alipay_gives_it_back(&self) -> bool {
        matches!(self, Settlement::Paid { .. } | Settlement::Unknown { .. })
    }
}

/// A refund row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refund {
    pub key: TradeKey,
    pub out_request_no: String,
    /// Its number at Alipay: `out_request_no` where Alipay scopes refund numbers to their trade
    /// (OpenAPI), one unique per partner where it does not (MAPI).
    pub wire_request_no: String,
    pub state: RefundState,
    pub version: i32,
    pub fingerprint: Vec<u8>,
    pub amount: Amount,
    pub reason: Option<String>,
    pub failure_code: Option<String>,
    pub failure_message: Option<String>,
    pub created_at: OffsetDateTime,
    pub refunded_at: Option<OffsetDateTime>,
}

pub(crate) const REFUND_COLUMNS: &str = "r.tenant_id, r.out_trade_no, r.out_request_no, r.state, r.version, \
    r.fingerprint, r.amount_minor, r.reason, r.failure_code, r.failure_message, r.created_at, r.refunded_at, t.currency, \
    r.wire_request_no";

impl Refund {
    pub(crate) fn from_row(row: &Row) -> Result<Self, StoreError> {
        let currency: Currency = row.try_get::<_, &str>("currency")?.parse().map_err(corrupt)?;
        Ok(Refund {
            key: TradeKey { tenant_id: row.try_get("tenant_id")?, out_trade_no: row.try_get("out_trade_no")? },
            out_request_no: row.try_get("out_request_no")?,
            wire_request_no: row.try_get("wire_request_no")?,
            state: row.try_get::<_, &str>("state")?.parse().map_err(corrupt)?,
            version: row.try_get("version")?,
            fingerprint: row.try_get("fingerprint")?,
            amount: amount(currency, row.try_get("amount_minor")?)?,
            reason: row.try_get("reason")?,
            failure_code: row.try_get("failure_code")?,
            failure_message: row.try_get("failure_message")?,
            created_at: row.try_get("created_at")?,
            refunded_at: row.try_get("refunded_at")?,
        })
    }
}

/// A refund request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewRefund {
    pub key: TradeKey,
    pub out_request_no: String,
    /// The refund's number as sent to Alipay (see [`Refund::wire_request_no`]).
    pub wire_request_no: String,
    pub fingerprint: Vec<u8>,
    pub amount: Amount,
    pub reason: Option<String>,
    /// When the reconciler takes the refund over if its caller never records an answer.
    pub check_at: OffsetDateTime,
}

/// What a refund call proved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RefundSettlement {
    Refunded { at: OffsetDateTime },
    Failed { code: String, message: Option<String> },
    Unknown { reason: String, next_check_at: OffsetDateTime },
}
