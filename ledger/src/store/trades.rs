//! The trade writes of the request path, each a statement over arrays so that one statement
//! carries a batch ([`super::batch`]): intents (`INSERT … ON CONFLICT DO NOTHING`) and
//! compare-and-set settlements (`UPDATE … WHERE version = … AND state = …`). An item its
//! statement did not return (the key existed; someone moved the trade first) is answered with
//! the row as it is now.

use std::collections::HashMap;

use deadpool_postgres::{Client, GenericClient};
use time::OffsetDateTime;
use tokio_postgres::types::{ToSql, Type};
use uuid::Uuid;

use super::batch::{Batched, Written};
use super::{Begin, Recorded, StoreError, minor};
use crate::state::TradeState;
use crate::trade::{NewTrade, Settlement, TRADE_COLUMNS, Trade, TradeKey};

/// [`Store::record`] on `client` (a transaction, for writes that go with it).
pub(crate) async fn record_on(
    client: &impl GenericClient,
    trade: &Trade,
    settlement: &Settlement,
) -> Result<Recorded, StoreError> {
    let mut recorded = record_many(client, &[Record::new(trade, settlement)?]).await?;
    recorded.pop().ok_or_else(|| StoreError::Corrupt("a settlement answered nothing".into()))
}

/// The trades of `keys` that exist, in no particular order (one statement) — on a connection
/// that plans each statement (a write pool's; elsewhere, [`read_many_planned_now`]).
pub(crate) async fn read_many(client: &impl GenericClient, keys: &[&TradeKey]) -> Result<Vec<Trade>, StoreError> {
    let statement = client.prepare_cached(read_many_sql()).await?;
    let (tenants, numbers) = key_columns(keys);
    client.query(&statement, &[&tenants, &numbers]).await?.iter().map(Trade::from_row).collect()
}

/// [`read_many`] on any connection: sent unnamed with its parameters' types, so that it is
/// planned for these keys and the table as it is (the store's "Plans made for the table as it
/// is").
pub(crate) async fn read_many_planned_now(
    client: &tokio_postgres::Client,
    keys: &[&TradeKey],
) -> Result<Vec<Trade>, StoreError> {
    let (tenants, numbers) = key_columns(keys);
    let params: [(&(dyn ToSql + Sync), Type); 2] = [(&tenants, Type::UUID_ARRAY), (&numbers, Type::TEXT_ARRAY)];
    client.query_typed(read_many_sql(), &params).await?.iter().map(Trade::from_row).collect()
}

fn read_many_sql() -> &'static str {
    sql!(
        "SELECT ",
        TRADE_COLUMNS,
        " FROM trades WHERE (tenant_id, out_trade_no) IN (SELECT * FROM unnest($1::uuid[], $2::text[]))"
    )
}

fn key_columns<'a>(keys: &[&'a TradeKey]) -> (Vec<Uuid>, Vec<&'a str>) {
    (keys.iter().map(|k| k.tenant_id).collect(), keys.iter().map(|k| k.out_trade_no.as_str()).collect())
}

/// For each item, the row its statement returned, else the row as it is now (read in one
/// statement): `fresh` and `current` build the answer from each, `absent` the answer for an item
/// that has no row at all.
async fn returned_or_current<T, O>(
    client: &impl GenericClient,
    items: &[T],
    key: impl Fn(&T) -> &TradeKey,
    returned: Vec<Trade>,
    fresh: impl Fn(Trade) -> O,
    current: impl Fn(Trade) -> O,
    absent: impl Fn() -> Result<O, StoreError>,
) -> Result<Vec<O>, StoreError> {
    let mut returned: HashMap<TradeKey, Trade> = returned.into_iter().map(|t| (t.key.clone(), t)).collect();
    let mut answers: Vec<Option<O>> = items.iter().map(|item| returned.remove(key(item)).map(&fresh)).collect();
    let missing: Vec<&TradeKey> =
        items.iter().zip(&answers).filter(|(_, a)| a.is_none()).map(|(i, _)| key(i)).collect();
    if !missing.is_empty() {
        let now: HashMap<TradeKey, Trade> =
            read_many(client, &missing).await?.into_iter().map(|t| (t.key.clone(), t)).collect();
        for (item, answer) in items.iter().zip(answers.iter_mut()) {
            if answer.is_none() {
                *answer = now.get(key(item)).cloned().map(&current);
            }
        }
    }
    answers.into_iter().map(|a| a.map_or_else(&absent, Ok)).collect()
}

impl Batched for NewTrade {
    type Out = Begin;

    fn write<'a>(client: &'a Client, items: &'a [Self]) -> Written<'a, Begin> {
        Box::pin(async move {
            let sql = sql!(
                "INSERT INTO trades (tenant_id, out_trade_no, kind, state, fingerprint, currency, amount_minor, \
                 subject, store_id, terminal_id, operator_id, next_check_at, alipay_account, notify_url) \
                 SELECT n.tenant_id, n.out_trade_no, n.kind, 'PAYING', n.fingerprint, n.currency, n.amount_minor, \
                 n.subject, n.store_id, n.terminal_id, n.operator_id, n.next_check_at, n.alipay_account, n.notify_url \
                 FROM unnest($1::uuid[], $2::text[], $3::text[], $4::bytea[], $5::text[], $6::bigint[], $7::text[], \
                 $8::text[], $9::text[], $10::text[], $11::timestamptz[], $12::text[], $13::text[]) AS n (tenant_id, \
                 out_trade_no, kind, fingerprint, currency, amount_minor, subject, store_id, terminal_id, operator_id, \
                 next_check_at, alipay_account, notify_url) \
                 ON CONFLICT DO NOTHING RETURNING ",
                TRADE_COLUMNS
            );
            let statement = client.prepare_cached(sql).await?;
            let column = |f: fn(&NewTrade) -> Option<&str>| items.iter().map(f).collect::<Vec<_>>();
            let inserted = client
                .query(
                    &statement,
                    &[
                        &items.iter().map(|n| n.key.tenant_id).collect::<Vec<_>>(),
                        &column(|n| Some(&n.key.out_trade_no)),
                        &column(|n| Some(n.kind.as_str())),
                        &items.iter().map(|n| n.fingerprint.as_slice()).collect::<Vec<_>>(),
                        &column(|n| Some(n.amount.currency().code())),
                        &items.iter().map(|n| minor(n.amount)).collect::<Vec<_>>(),
                        &column(|n| Some(&n.subject)),
                        &column(|n| n.store_id.as_deref()),
                        &column(|n| n.terminal_id.as_deref()),
                        &column(|n| n.operator_id.as_deref()),
                        &items.iter().map(|n| n.check_at).collect::<Vec<_>>(),
                        &column(|n| Some(&n.alipay_account)),
                        &column(|n| n.notify_url.as_deref()),
                    ],
                )
                .await?
                .iter()
                .map(Trade::from_row)
                .collect::<Result<Vec<_>, _>>()?;
            // Not inserted and not the tenant's: another tenant of the Alipay account holds it.
            let taken = || Ok(Begin::Taken);
            returned_or_current(client, items, |n| &n.key, inserted, Begin::Started, Begin::Existing, taken).await
        })
    }
}

/// A compare-and-set of one trade: from `(state, version)` to what `settlement` proved.
pub(crate) struct Record {
    key: TradeKey,
    version: i32,
    from: TradeState,
    settlement: Settlement,
}

impl Record {
    /// Refused at once if design §4 does not allow the step.
    pub(crate) fn new(trade: &Trade, settlement: &Settlement) -> Result<Self, StoreError> {
        let next = settlement.state();
        if !trade.state.can_become(next) {
            return Err(StoreError::Transition { from: trade.state, to: next });
        }
        Ok(Record { key: trade.key.clone(), version: trade.version, from: trade.state, settlement: settlement.clone() })
    }
}

/// The columns a settlement writes (None: left as they are, or cleared, as the statement says).
#[derive(Default)]
struct Columns<'a> {
    trade_no: Option<&'a str>,
    buyer: Option<&'a str>,
    paid_at: Option<OffsetDateTime>,
    code: Option<&'a str>,
    message: Option<&'a str>,
    reason: Option<&'a str>,
    action: Option<&'a str>,
    qr_code: Option<&'a str>,
    deadline: Option<OffsetDateTime>,
    next_check_at: Option<OffsetDateTime>,
}

async fn record_many(client: &impl GenericClient, items: &[Record]) -> Result<Vec<Recorded>, StoreError> {
    let sql = sql!(
        "UPDATE trades SET state = s_state, version = version + 1, updated_at = now(), \
         trade_no = COALESCE(s_trade_no, trade_no), buyer_user_id = COALESCE(s_buyer, buyer_user_id), \
         paid_at = COALESCE(s_paid_at, paid_at), failure_code = s_code, failure_message = s_message, \
         unknown_reason = s_reason, cancel_action = COALESCE(s_action, cancel_action), \
         qr_code = COALESCE(s_qr_code, qr_code), deadline = COALESCE(s_deadline, deadline), \
         next_check_at = CASE WHEN cancel_requested AND s_state = 'SUCCESS' THEN COALESCE(s_next, next_check_at, now()) \
         ELSE s_next END, \
         refunded_minor = CASE WHEN s_action = 'refund' THEN amount_minor ELSE refunded_minor END, \
         cancel_requested = cancel_requested AND s_state NOT IN ('CANCELLED', 'FAILED') \
         FROM unnest($1::uuid[], $2::text[], $3::int[], $4::text[], $5::text[], $6::text[], $7::text[], \
         $8::timestamptz[], $9::text[], $10::text[], $11::text[], $12::text[], $13::text[], $14::timestamptz[], \
         $15::timestamptz[]) AS s (s_tenant, s_no, s_version, s_from, s_state, s_trade_no, s_buyer, s_paid_at, \
         s_code, s_message, s_reason, s_action, s_qr_code, s_deadline, s_next) \
         WHERE tenant_id = s_tenant AND out_trade_no = s_no AND version = s_version AND state = s_from RETURNING ",
        TRADE_COLUMNS
    );
    let statement = client.prepare_cached(sql).await?;
    let written: Vec<Columns<'_>> = items.iter().map(|item| written(&item.settlement)).collect();
    fn text<'a>(written: &[Columns<'a>], f: fn(&Columns<'a>) -> Option<&'a str>) -> Vec<Option<&'a str>> {
        written.iter().map(f).collect()
    }
    fn time(written: &[Columns<'_>], f: fn(&Columns<'_>) -> Option<OffsetDateTime>) -> Vec<Option<OffsetDateTime>> {
        written.iter().map(f).collect()
    }
    let updated = client
        .query(
            &statement,
            &[
                &items.iter().map(|s| s.key.tenant_id).collect::<Vec<_>>(),
                &items.iter().map(|s| s.key.out_trade_no.as_str()).collect::<Vec<_>>(),
                &items.iter().map(|s| s.version).collect::<Vec<_>>(),
                &items.iter().map(|s| s.from.as_str()).collect::<Vec<_>>(),
                &items.iter().map(|s| s.settlement.state().as_str()).collect::<Vec<_>>(),
                &text(&written, |w| w.trade_no),
                &text(&written, |w| w.buyer),
                &time(&written, |w| w.paid_at),
                &text(&written, |w| w.code),
                &text(&written, |w| w.message),
                &text(&written, |w| w.reason),
                &text(&written, |w| w.action),
                &text(&written, |w| w.qr_code),
                &time(&written, |w| w.deadline),
                &time(&written, |w| w.next_check_at),
            ],
        )
        .await?
        .iter()
        .map(Trade::from_row)
        .collect::<Result<Vec<_>, _>>()?;
    let vanished = || Err(StoreError::Corrupt("a trade vanished while being written".into()));
    returned_or_current(client, items, |s| &s.key, updated, Recorded::Applied, Recorded::Stale, vanished).await
}

fn written(settlement: &Settlement) -> Columns<'_> {
    match settlement {
        Settlement::Paid { trade_no, buyer_user_id, paid_at } => Columns {
            trade_no: trade_no.as_deref(),
            buyer: buyer_user_id.as_deref(),
            paid_at: Some(*paid_at),
            ..Columns::default()
        },
        Settlement::Failed { code, message } => {
            Columns { code: Some(code.as_str()), message: message.as_deref(), ..Columns::default() }
        }
        Settlement::Unknown { reason, next_check_at, deadline } => Columns {
            reason: Some(reason.as_str()),
            next_check_at: Some(*next_check_at),
            deadline: Some(*deadline),
            ..Columns::default()
        },
        Settlement::Waiting { qr_code, next_check_at, deadline } => Columns {
            qr_code: Some(qr_code.as_str()),
            next_check_at: Some(*next_check_at),
            deadline: Some(*deadline),
            ..Columns::default()
        },
        Settlement::Cancelled { action } => Columns { action: Some(action.as_str()), ..Columns::default() },
    }
}

impl Batched for Record {
    type Out = Recorded;

    fn write<'a>(client: &'a Client, items: &'a [Self]) -> Written<'a, Recorded> {
        Box::pin(record_many(client, items))
    }
}
