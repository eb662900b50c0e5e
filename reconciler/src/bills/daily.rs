//! The daily close's loop: every `bills_poll`, each live account's finished days within
//! `bills_lookback_days` that are fetchable (10:00 Beijing the next day, by default) and still
//! pending and due are reconciled, one at a time (a lease keeps other reconcilers off a day).
//! Open discrepancies are counted in the `bill_discrepancies_open` gauge.

use std::sync::Arc;

use ledger::store::{DayState, DiscrepancyClass};
use time::OffsetDateTime;

use super::{SettleError, Settlement, accounts};

pub async fn run(settlement: Arc<Settlement>) {
    loop {
        if let Err(error) = round(&settlement, OffsetDateTime::now_utc()).await {
            tracing::warn!(%error, "daily close: a round failed");
        }
        tokio::time::sleep(settlement.config.bills_poll).await;
    }
}

/// One pass over every live account's due days.
pub async fn round(settlement: &Settlement, now: OffsetDateTime) -> Result<(), SettleError> {
    let today = now.to_offset(time::macros::offset!(+8)).date();
    let lookback = i64::from(settlement.config.bills_lookback_days);
    let first = today - time::Duration::days(lookback);
    let snapshot = settlement.snapshots.current();
    let global = settlement.config.bills_global_dir.is_some();
    for account in accounts(&snapshot).into_iter().filter(|a| a.name.starts_with("openapi:") || global) {
        let known = settlement.store.bill_days(Some(&account.name), first, lookback + 1).await?;
        let mut day = first;
        while day < today {
            let record = known.iter().find(|d| d.day == day);
            let due = record.is_none_or(|d| d.state == DayState::Pending && d.next_try_at <= now);
            if due && settlement.fetchable_from(day) <= now {
                match settlement.reconcile_day(&account, day, now, false).await {
                    Ok(report) => tracing::info!(account = %report.alipay_account, %day, state = ?report.state,
                        rows = report.rows, discrepancies = report.disagreements, "bill reconciled"),
                    Err(SettleError::Busy(..)) => {}
                    Err(error) => tracing::warn!(account = %account.name, %day, %error, "bill not reconciled yet"),
                }
            }
            day = day.next_day().unwrap_or(today);
        }
    }
    let open = settlement.store.open_discrepancies().await?;
    for class in DiscrepancyClass::ALL {
        let count = open.iter().find(|(c, _)| *c == class).map_or(0, |(_, n)| *n);
        metrics::gauge!("bill_discrepancies_open", "class" => class.as_str()).set(count as f64);
    }
    Ok(())
}
