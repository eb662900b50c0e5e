//! The third way: where the ledger and a bill disagree, Alipay is asked (a trade query, or a
//! refund query) and the disagreement classified. A payment only Alipay and its bill know is
//! recorded, as its notification would have recorded it, and the merchant told by webhook.

use alipay::openapi::trade::TradeStatus;
use alipay::unified::{Answer, Request};
use alipay::{Amount, Currency, OutRequestNo, OutTradeNo, Outcome};
use ledger::Store;
use ledger::store::{
    BilledKind, BilledRow, Disagreement, DiscrepancyClass, LedgerPayment, NewDiscrepancy, NotificationOutcome,
    NotifiedPayment, NotifiedStatus,
};
use tenants::snapshot::Tenant;
use time::Date;
use upstream::Upstream;
use uuid::Uuid;

/// What Alipay says of one trade or refund.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Said {
    /// Not asked (the day's query budget ran out, or the dialect has no such query).
    NotAsked,
    /// The answer proved nothing.
    Unclear(String),
    /// Alipay has no such trade or refund.
    NoSuch(String),
    Trade {
        status: TradeStatus,
        total_minor: Option<i64>,
        /// The Beijing day it was paid (whose bill holds it).
        paid_on: Option<Date>,
    },
    Refund {
        done: bool,
        amount_minor: Option<i64>,
        /// The Beijing day it was done (whose bill holds it).
        done_on: Option<Date>,
    },
}

impl Said {
    fn text(&self) -> String {
        match self {
            Said::NotAsked => "Alipay not asked (query budget spent)".into(),
            Said::Unclear(why) => format!("Alipay's answer proved nothing ({why})"),
            Said::NoSuch(code) => format!("Alipay has no such trade or refund ({code})"),
            Said::Trade { status, total_minor, .. } => {
                format!("Alipay: {} for {}", status.as_str(), minor_text(*total_minor))
            }
            Said::Refund { done, amount_minor, .. } => {
                format!("Alipay: refund {} for {}", if *done { "done" } else { "not done" }, minor_text(*amount_minor))
            }
        }
    }

    fn paid(&self) -> Option<bool> {
        match self {
            Said::Trade { status, .. } => Some(status.is_paid() || *status == TradeStatus::TradeClosed),
            Said::NoSuch(_) => Some(false),
            _ => None,
        }
    }

    fn minor(&self) -> Option<i64> {
        match self {
            Said::Trade { total_minor, .. } => *total_minor,
            Said::Refund { amount_minor, .. } => *amount_minor,
            _ => None,
        }
    }

    /// Alipay has the money moved on a day other than `day`: that day's bill holds it, not this
    /// one (the ledger's clock put it a little either side of midnight).
    fn moved_on_another_day(&self, day: Date) -> bool {
        match self {
            Said::Trade { status, paid_on: Some(on), .. } => status.is_paid() && *on != day,
            Said::Refund { done: true, done_on: Some(on), .. } => *on != day,
            _ => false,
        }
    }
}

fn minor_text(minor: Option<i64>) -> String {
    minor.map_or_else(|| "an amount not stated".into(), |m| format!("{m} minor units"))
}

/// Asks Alipay as one tenant of the account, within a budget of queries.
pub struct Asker<'a> {
    pub upstream: &'a Upstream,
    pub caller: &'a Tenant,
    pub budget: u32,
}

impl Asker<'_> {
    async fn ask(&mut self, request: &Request<'_>) -> Option<Answer> {
        if self.budget == 0 {
            return None;
        }
        self.budget -= 1;
        self.upstream.call_for(self.caller, None, request).await.ok()
    }

    async fn trade(&mut self, out_trade_no: &str, currency: &str) -> Said {
        let Ok(no) = out_trade_no.parse::<OutTradeNo>() else { return Said::NoSuch("not a trade number".into()) };
        let Some(answer) = self.ask(&Request::Query { out_trade_no: &no }).await else { return Said::NotAsked };
        match answer.outcome {
            Outcome::Success => match answer.facts.trade_status {
                Some(status) => Said::Trade {
                    status,
                    total_minor: to_minor(answer.facts.total, currency),
                    paid_on: beijing_day(answer.facts.moved_at.as_deref()),
                },
                None => Said::Unclear("no trade_status".into()),
            },
            Outcome::Failed(failure) => Said::NoSuch(failure.to_string()),
            Outcome::Unknown(reason) => Said::Unclear(format!("{reason:?}")),
        }
    }

    async fn refund(&mut self, out_trade_no: &str, out_request_no: &str, currency: &str) -> Said {
        if self.caller.alipay_dialect() == alipay::unified::Dialect::Mapi {
            return Said::NotAsked;
        }
        let (Ok(trade), Ok(request)) = (out_trade_no.parse::<OutTradeNo>(), out_request_no.parse::<OutRequestNo>())
        else {
            return Said::NoSuch("not a trade or refund number".into());
        };
        let query = Request::RefundQuery { out_trade_no: &trade, out_request_no: &request };
        let Some(answer) = self.ask(&query).await else { return Said::NotAsked };
        match answer.outcome {
            Outcome::Success => Said::Refund {
                done: answer.facts.refund_status.as_deref().is_none_or(|s| s == "REFUND_SUCCESS")
                    && answer.facts.refund_amount.is_some(),
                amount_minor: to_minor(answer.facts.refund_amount, currency),
                done_on: beijing_day(answer.facts.moved_at.as_deref()),
            },
            Outcome::Failed(failure) => Said::NoSuch(failure.to_string()),
            Outcome::Unknown(reason) => Said::Unclear(format!("{reason:?}")),
        }
    }
}

fn beijing_day(text: Option<&str>) -> Option<Date> {
    Some(alipay::time_text::parse_beijing_datetime(text?)?.to_offset(alipay::time_text::BEIJING).date())
}

fn to_minor(value: Option<alipay::money::Decimal>, currency: &str) -> Option<i64> {
    let currency = currency.parse::<Currency>().ok()?;
    i64::try_from(value?.to_amount(currency).ok()?.minor()).ok()
}

/// The account a day's matching is about.
pub struct DayOf<'a> {
    pub account: &'a str,
    pub day: Date,
    /// The tenant a payment only Alipay knows is recorded for: the account's only tenant
    /// (`None` when several share it: a payment cannot be told apart as one's).
    pub sole_tenant: Option<Uuid>,
}

/// Classifies one disagreement, asking Alipay, and records a payment only Alipay knows. `None`:
/// no discrepancy after all (what the ledger holds as done on the day and the day's bill does not,
/// Alipay has done on another day: that day's bill holds it).
pub async fn classify(
    store: &Store,
    asker: &mut Asker<'_>,
    of: &DayOf<'_>,
    disagreement: Disagreement,
) -> Result<Option<NewDiscrepancy>, ledger::StoreError> {
    let base = |class, kind, out_trade_no: &str, out_request_no: &str| NewDiscrepancy {
        alipay_account: of.account.to_owned(),
        day: of.day,
        tenant_id: None,
        class,
        kind,
        out_trade_no: out_trade_no.to_owned(),
        out_request_no: out_request_no.to_owned(),
        trade_no: None,
        currency: None,
        ledger_minor: None,
        bill_minor: None,
        alipay_minor: None,
        detail: String::new(),
    };
    Ok(Some(match disagreement {
        Disagreement::PaymentNotInLedger { row } => {
            let said = asker.trade(&row.out_trade_no, &row.currency).await;
            let mut found =
                billed(base(DiscrepancyClass::MissingFromLedger, BilledKind::Payment, &row.out_trade_no, ""), &row);
            found.alipay_minor = said.minor();
            found.tenant_id = of.sole_tenant;
            let recorded = match (&said, of.sole_tenant) {
                (Said::Trade { status, .. }, Some(tenant)) if status.is_paid() => {
                    record(store, of, tenant, &row).await?
                }
                (Said::Trade { status, .. }, None) if status.is_paid() => {
                    "not recorded: several tenants share the account, so the payment is no one's for sure".into()
                }
                _ => "not recorded: Alipay does not show it paid".into(),
            };
            found.detail = format!("{}; {recorded}", said.text());
            found
        }
        Disagreement::PaymentDiffers { row, ledger } => {
            let said = asker.trade(&row.out_trade_no, &row.currency).await;
            let paid = matches!(ledger.state.as_str(), "SUCCESS" | "PARTIALLY_REFUNDED" | "REFUNDED" | "CANCELLED");
            let class = if paid && ledger.amount_minor != row.amount_minor {
                DiscrepancyClass::AmountMismatch
            } else {
                DiscrepancyClass::StatusMismatch
            };
            let mut found = of_ledger(billed(base(class, BilledKind::Payment, &row.out_trade_no, ""), &row), &ledger);
            found.alipay_minor = said.minor();
            found.detail = format!(
                "bill: paid {} ({}); ledger: {} {} ({}); {}",
                row.amount_minor,
                row.trade_no,
                ledger.state,
                ledger.amount_minor,
                ledger.trade_no.as_deref().unwrap_or("no trade_no"),
                said.text()
            );
            found
        }
        Disagreement::RefundDiffers { row, tenant_id, ledger_minor } => {
            let said = asker.refund(&row.out_trade_no, &row.out_request_no, &row.currency).await;
            let mut found = billed(
                base(DiscrepancyClass::RefundMismatch, BilledKind::Refund, &row.out_trade_no, &row.out_request_no),
                &row,
            );
            found.tenant_id = tenant_id;
            found.ledger_minor = ledger_minor;
            found.alipay_minor = said.minor();
            let ledger_text = match ledger_minor {
                None => "the ledger has no such refund done".to_owned(),
                Some(minor) => format!("the ledger refunded {minor}"),
            };
            found.detail = format!("bill: refunded {}; {ledger_text}; {}", row.amount_minor, said.text());
            found
        }
        Disagreement::PaymentNotInBill { ledger } => {
            let said = asker.trade(&ledger.out_trade_no, &ledger.currency).await;
            if said.moved_on_another_day(of.day) {
                return Ok(None);
            }
            let class = if said.paid() == Some(false) {
                DiscrepancyClass::StatusMismatch
            } else {
                DiscrepancyClass::MissingFromBill
            };
            let mut found = of_ledger(base(class, BilledKind::Payment, &ledger.out_trade_no, ""), &ledger);
            found.alipay_minor = said.minor();
            found.detail = format!(
                "the ledger has it {} on the day and the day's bill does not hold it; {}",
                ledger.state,
                said.text()
            );
            found
        }
        Disagreement::RefundNotInBill { ledger, out_request_no, amount_minor } => {
            let said = asker.refund(&ledger.out_trade_no, &out_request_no, &ledger.currency).await;
            if said.moved_on_another_day(of.day) {
                return Ok(None);
            }
            let mut found = of_ledger(
                base(DiscrepancyClass::RefundMismatch, BilledKind::Refund, &ledger.out_trade_no, &out_request_no),
                &ledger,
            );
            found.ledger_minor = Some(amount_minor);
            found.alipay_minor = said.minor();
            found.detail = format!(
                "the ledger refunded {amount_minor} on the day and the day's bill does not hold it; {}",
                said.text()
            );
            found
        }
    }))
}

fn billed(mut found: NewDiscrepancy, row: &BilledRow) -> NewDiscrepancy {
    found.trade_no = Some(row.trade_no.clone());
    found.currency = Some(row.currency.clone());
    found.bill_minor = Some(row.amount_minor);
    found
}

fn of_ledger(mut found: NewDiscrepancy, ledger: &LedgerPayment) -> NewDiscrepancy {
    found.tenant_id = Some(ledger.tenant_id);
    found.trade_no = found.trade_no.or_else(|| ledger.trade_no.clone());
    found.currency = Some(ledger.currency.clone());
    found.ledger_minor = Some(ledger.amount_minor);
    found
}

/// Records a payment only Alipay knew as `tenant`'s, as its notification would have.
async fn record(store: &Store, of: &DayOf<'_>, tenant: Uuid, row: &BilledRow) -> Result<String, ledger::StoreError> {
    let amount = row
        .currency
        .parse::<Currency>()
        .ok()
        .and_then(|currency| Amount::from_minor(u64::try_from(row.amount_minor).ok()?, currency).ok());
    let Some(amount) = amount else { return Ok("not recorded: the bill's amount is not one".into()) };
    let note = NotifiedPayment {
        tenant_id: tenant,
        notify_id: format!("bill:{}:{}", of.day, row.trade_no),
        out_trade_no: row.out_trade_no.clone(),
        status: NotifiedStatus::Paid {
            trade_no: Some(row.trade_no.clone()),
            buyer_user_id: None,
            paid_at: row.finished_at,
        },
        amount,
        subject: None,
        alipay_account: of.account.to_owned(),
        account_shared: false,
    };
    Ok(match store.apply_notification(&note).await? {
        NotificationOutcome::Created(_) => "recorded in the ledger as the tenant's payment; its webhook queued".into(),
        NotificationOutcome::Applied(trade) => format!("the ledger's trade moved to {}", trade.state.as_str()),
        NotificationOutcome::AlreadyKnown(_) => "already in the ledger".into(),
        NotificationOutcome::Refused(why) => format!("not recorded: {why}"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::date;

    #[test]
    fn money_alipay_moved_on_another_beijing_day_belongs_to_that_days_bill() {
        let day = date!(2026 - 03 - 14);
        let paid = |at: &str| Said::Trade {
            status: TradeStatus::TradeSuccess,
            total_minor: Some(100),
            paid_on: beijing_day(Some(at)),
        };
        assert!(!paid("2026-03-14 23:59:59").moved_on_another_day(day));
        assert!(paid("2026-03-15 00:00:01").moved_on_another_day(day));
        assert!(paid("2026-03-13 23:59:59").moved_on_another_day(day));
        let closed =
            Said::Trade { status: TradeStatus::TradeClosed, total_minor: None, paid_on: Some(date!(2026 - 03 - 15)) };
        assert!(!closed.moved_on_another_day(day), "not paid at all: a discrepancy of the day");
        let refund = |done, at: &str| Said::Refund { done, amount_minor: Some(5), done_on: beijing_day(Some(at)) };
        assert!(refund(true, "2026-03-15 00:00:00").moved_on_another_day(day));
        assert!(!refund(false, "2026-03-15 00:00:00").moved_on_another_day(day));
        assert!(!refund(true, "2026-03-14 00:00:00").moved_on_another_day(day));
        assert!(
            !Said::Trade { status: TradeStatus::TradeSuccess, total_minor: None, paid_on: beijing_day(Some("soon")) }
                .moved_on_another_day(day)
        );
    }
}
