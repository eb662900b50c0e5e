//! The daily close: each Alipay account's bill of day D, fetched at 10:00 Beijing time or later,
//! kept as downloaded (with its SHA-256) before it is read, read as a stream and matched against
//! the ledger's day a partition at a time (memory does not grow with the day), and every
//! disagreement classified by asking Alipay (the third way) and stored as a discrepancy for ops
//! to resolve; the day keeps its totals per tenant and store (the sales report's settled columns). Fetching and matching a
//! day again changes nothing; a day in progress is never fetched.
//!
//! A bill is an Alipay account's (an OpenAPI app's, asked for with the keys of one of its
//! tenants; a Global partner's, its transaction file found in the SFTP drop's folder): tenants
//! sharing the account share it.
//!
//! # Layout
//! - [`mod@self`]: [`Settlement`], the accounts, and [`Settlement::reconcile_day`] (one account,
//!   one day: what the daily job, the CLI and the tests run).
//! - [`download`]: the link (`alipay.data.dataservice.bill.downloadurl.query`) and the download.
//! - [`read`]: the kept file into rows, on a blocking thread.
//! - [`matching`]: the rows against the ledger's day; [`spill`]: the partitions on disk.
//! - [`global`]: a Global (MAPI) partner's transaction file, from the SFTP drop's folder.
//! - [`classify`]: Alipay asked, the disagreement classified.
//! - [`daily`]: the loop that runs the close for every live account.

pub mod classify;
pub mod daily;
pub mod download;
pub mod global;
pub mod matching;
pub mod read;
pub mod spill;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use ledger::Store;
use ledger::store::{DayState, MatchedDay};
use serde::Serialize;
use tenants::snapshot::{Snapshot, Snapshots, Tenant};
use time::{Date, OffsetDateTime};
use tokio::sync::mpsc;
use upstream::Upstream;
use uuid::Uuid;

use crate::config::Config;
use classify::{Asker, DayOf};
use download::{DownloadClient, DownloadLimits, FetchError};
use matching::{BillSource, MatchError};
use spill::WorkDir;

/// One Alipay account and its live tenants.
#[derive(Clone)]
pub struct Account {
    /// `openapi:<app_id>` or `mapi:<partner>` (the ledger's `alipay_account`).
    pub name: String,
    /// Its tenants (active, with keys), by id.
    pub tenants: Vec<Arc<Tenant>>,
}

impl Account {
    fn caller(&self) -> Option<&Tenant> {
        self.tenants.first().map(|t| &**t)
    }

    fn tenant_ids(&self) -> Vec<Uuid> {
        self.tenants.iter().map(|t| t.id).collect()
    }

    fn is_openapi(&self) -> bool {
        self.name.starts_with("openapi:")
    }
}

/// The live accounts of a snapshot (tenants that are active and can call Alipay).
pub fn accounts(snapshot: &Snapshot) -> Vec<Account> {
    let mut by_name: BTreeMap<String, Vec<Arc<Tenant>>> = BTreeMap::new();
    for tenant in snapshot.tenants().filter(|t| t.is_active() && t.is_ready()) {
        by_name.entry(tenant.alipay_account()).or_default().push(tenant.clone());
    }
    by_name
        .into_iter()
        .map(|(name, mut tenants)| {
            tenants.sort_by_key(|t| t.id);
            Account { name, tenants }
        })
        .collect()
}

/// What reconciling a day did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DayReport {
    pub alipay_account: String,
    #[serde(serialize_with = "ledger::store::serialize_day")]
    pub day: Date,
    pub state: DayState,
    /// Rows read from the bill.
    pub rows: u64,
    /// Disagreements found this time (stored once: a repeat run stores none again).
    pub disagreements: usize,
    /// Discrepancies stored for the first time by this run.
    pub new_discrepancies: usize,
    /// Where the raw file is kept, and its SHA-256 (hex).
    pub file: Option<(String, String)>,
}

/// Why a day was not reconciled now.
#[derive(Debug, thiserror::Error)]
pub enum SettleError {
    #[error("{day} is not over for Alipay's bill yet: it can be fetched from {} Beijing time", beijing_minute(*from))]
    NotYet { day: Date, from: OffsetDateTime },
    #[error("another reconciler is working on {0}'s bill of {1}, or it is reconciled (pass --again to redo it)")]
    Busy(String, Date),
    #[error("{0}: no tenant of it can call Alipay")]
    NoCaller(String),
    #[error("{0}: a Global (MAPI) account's files are read from bills_global_dir, which is not set")]
    Unsupported(String),
    #[error("bills_dir is not set: the daily close is off")]
    Off,
    #[error("{0}")]
    Later(String),
    #[error(transparent)]
    Store(#[from] ledger::StoreError),
}

fn beijing_minute(at: OffsetDateTime) -> String {
    let format = time::macros::format_description!("[year]-[month]-[day] [hour]:[minute]");
    at.to_offset(time::macros::offset!(+8)).format(format).unwrap_or_default()
}

/// What settlement works with.
pub struct Settlement {
    pub store: Store,
    pub snapshots: Arc<Snapshots>,
    pub upstream: Upstream,
    pub client: DownloadClient,
    pub config: Config,
}

impl Settlement {
    pub fn new(store: Store, snapshots: Arc<Snapshots>, config: Config) -> Self {
        Settlement {
            store,
            snapshots,
            upstream: Upstream::new(config.upstream_timeout),
            client: download::client(),
            config,
        }
    }

    /// From when day `day`'s bill is asked for.
    pub fn fetchable_from(&self, day: Date) -> OffsetDateTime {
        let (_, end) = ledger::store::beijing_bounds(day);
        end + time::Duration::minutes(i64::from(self.config.bills_fetch_after_minutes))
    }

    fn folder(&self, account: &str) -> Result<PathBuf, SettleError> {
        let root = self.config.bills_dir.as_deref().ok_or(SettleError::Off)?;
        let name: String =
            account.chars().map(|c| if c.is_ascii_alphanumeric() || c == '_' { c } else { '-' }).collect();
        Ok(root.join(name))
    }

    /// Reconciles `account`'s day `day` as of `now`: fetch, keep, read, match, classify. A day
    /// already reconciled is done again only with `again` (and then changes nothing that holds).
    pub async fn reconcile_day(
        &self,
        account: &Account,
        day: Date,
        now: OffsetDateTime,
        again: bool,
    ) -> Result<DayReport, SettleError> {
        let from = self.fetchable_from(day);
        if now < from {
            return Err(SettleError::NotYet { day, from });
        }
        let folder = self.folder(&account.name)?;
        if !account.is_openapi() && self.config.bills_global_dir.is_none() {
            return Err(SettleError::Unsupported(account.name.clone()));
        }
        let caller = account.caller().ok_or_else(|| SettleError::NoCaller(account.name.clone()))?;
        let lease = self.config.bills_download_timeout + self.config.upstream_timeout * 4;
        if self.store.lease_bill_day(&account.name, day, lease, again).await?.is_none() {
            return Err(SettleError::Busy(account.name.clone(), day));
        }
        let outcome = self.fetch_and_match(account, caller, day, now, &folder).await;
        if let Err(error) = &outcome {
            let next = now + self.config.bills_retry;
            self.store.bill_day_later(&account.name, day, &error.to_string(), next).await?;
            metrics::counter!("bill_days_total", "outcome" => "later").increment(1);
        }
        outcome
    }

    async fn fetch_and_match(
        &self,
        account: &Account,
        caller: &Tenant,
        day: Date,
        now: OffsetDateTime,
        folder: &Path,
    ) -> Result<DayReport, SettleError> {
        let limits =
            DownloadLimits { max_bytes: self.config.bills_max_file_bytes, timeout: self.config.bills_download_timeout };
        let tenants = account.tenant_ids();
        let fetched = match account.name.strip_prefix("mapi:") {
            None => download::fetch_trade_bill(&self.upstream, &self.client, caller, day, folder, limits).await,
            Some(partner) => {
                let drop_dir = self.config.bills_global_dir.clone().ok_or(SettleError::Off)?;
                let (partner, folder, max) = (partner.to_owned(), folder.to_owned(), limits.max_bytes);
                tokio::task::spawn_blocking(move || global::keep(&drop_dir, &partner, day, &folder, max))
                    .await
                    .map_err(|e| SettleError::Later(format!("the file copy stopped: {e}")))?
            }
        };
        let kept = match fetched {
            Ok(kept) => Some(kept),
            Err(FetchError::NotExist) => {
                if !self.store.ledger_has_day(&account.name, &tenants, day).await? {
                    self.store.bill_day_empty(&account.name, day).await?;
                    metrics::counter!("bill_days_total", "outcome" => "empty").increment(1);
                    return Ok(report(account, day, DayState::Empty, 0, 0, 0, None));
                }
                let give_up =
                    self.fetchable_from(day) + time::Duration::days(i64::from(self.config.bills_give_up_days));
                if now < give_up {
                    return Err(SettleError::Later(format!(
                        "Alipay has no bill yet while the ledger has trades of the day; asked again until {} Beijing time",
                        beijing_minute(give_up)
                    )));
                }
                None
            }
            Err(error) => return Err(SettleError::Later(error.to_string())),
        };
        if let Some(kept) = &kept {
            let size = i64::try_from(kept.bytes).unwrap_or(i64::MAX);
            let path = kept.path.display().to_string();
            self.store.bill_day_fetched(&account.name, day, &path, &kept.sha256, size).await?;
        }

        let (bill, reader) = match (&kept, account.name.strip_prefix("mapi:")) {
            (Some(kept), None) => (BillSource::TradeBill { path: kept.path.clone(), day }, None),
            (Some(kept), Some(partner)) => {
                let trades = self.refund_trades(account, partner, &kept.path, day).await?;
                let (path, partner) = (kept.path.clone(), partner.to_owned());
                let (feed, rows) = mpsc::channel(read::CHANNEL);
                let reader =
                    tokio::task::spawn_blocking(move || global::transaction_file(path, partner, day, trades, feed));
                (BillSource::Feed(rows), Some(reader))
            }
            // Matched against an empty bill: every ledger entry of the day is missing from it.
            (None, _) => (BillSource::Empty, None),
        };
        let sole_tenant = match account.tenants.as_slice() {
            [only] => Some(only.id),
            _ => None,
        };
        let work = WorkDir::create(folder, &day.to_string()).map_err(|e| SettleError::Later(e.to_string()))?;
        // The ledger's day is read over a connection of its own, beside the pool.
        let day_reader = tenants::db::target(&self.config.database_url, self.config.pool_limits(1))
            .map_err(|e| SettleError::Later(e.to_string()))?;
        let ledger = matching::Ledger { store: &self.store, day_reader };
        let matched = matching::match_day(ledger, &account.name, &tenants, sole_tenant, day, bill, work).await;
        if let Some(reader) = reader {
            let _ = reader.await;
        }
        let matched = matched.map_err(|error| match error {
            MatchError::Store(error) => SettleError::Store(error),
            MatchError::Disk(error) => SettleError::Later(error.to_string()),
            refused => {
                metrics::counter!("bill_files_refused_total").increment(1);
                SettleError::Later(refused.to_string())
            }
        })?;

        let found = matched.disagreements.len() as u64 + matched.more;
        let of = DayOf { account: &account.name, day, sole_tenant };
        let mut asker = Asker { upstream: &self.upstream, caller, budget: self.config.bills_max_queries };
        let (mut new, mut elsewhere) = (0, 0u64);
        for disagreement in matched.disagreements {
            let Some(discrepancy) = classify::classify(&self.store, &mut asker, &of, disagreement).await? else {
                elsewhere += 1;
                continue;
            };
            if self.store.record_discrepancy(&discrepancy).await? {
                new += 1;
                metrics::counter!("bill_discrepancies_total", "class" => discrepancy.class.as_str()).increment(1);
            }
        }
        let found = found - elsewhere;
        let day_figures = MatchedDay {
            payments: matched.payments,
            refunds: matched.refunds,
            discrepancies: i64::try_from(found).unwrap_or(i64::MAX),
            totals: matched.totals,
        };
        self.store.bill_day_matched(&account.name, day, &day_figures).await?;
        metrics::counter!("bill_days_total", "outcome" => "matched").increment(1);
        let count = matched.payments.unsigned_abs() + matched.refunds.unsigned_abs();
        metrics::counter!("bill_rows_total").increment(count);
        let file = kept.map(|k| (k.path.display().to_string(), k.sha256.iter().map(|b| format!("{b:02x}")).collect()));
        let found = usize::try_from(found).unwrap_or(usize::MAX);
        Ok(report(account, day, DayState::Matched, count, found, new, file))
    }
}

impl Settlement {
    /// Whose trade each refund row of a Global transaction file is (its first pass).
    async fn refund_trades(
        &self,
        account: &Account,
        partner: &str,
        path: &Path,
        day: Date,
    ) -> Result<global::RefundTrades, SettleError> {
        let (path, partner_id) = (path.to_owned(), partner.to_owned());
        let refunds = tokio::task::spawn_blocking(move || global::refunds(&path, &partner_id, day))
            .await
            .map_err(|e| SettleError::Later(format!("the file read stopped: {e}")))?
            .map_err(|why| {
                metrics::counter!("bill_files_refused_total").increment(1);
                SettleError::Later(format!("the bill was refused: {why}"))
            })?;
        if refunds.is_empty() {
            return Ok(global::RefundTrades::default());
        }
        let (refund_nos, trade_nos): (Vec<String>, Vec<String>) = refunds.into_iter().unzip();
        // A refund may come long after its payment: a year of the account's trades.
        let since = ledger::store::beijing_bounds(day).0 - time::Duration::days(366);
        let (by_refund, by_trade_no) =
            self.store.trades_of_refunds(&account.name, &account.tenant_ids(), &refund_nos, &trade_nos, since).await?;
        Ok(global::RefundTrades {
            by_refund: by_refund.into_iter().collect(),
            by_trade_no: by_trade_no.into_iter().collect(),
        })
    }
}

fn report(
    account: &Account,
    day: Date,
    state: DayState,
    rows: u64,
    disagreements: usize,
    new_discrepancies: usize,
    file: Option<(String, String)>,
) -> DayReport {
    DayReport { alipay_account: account.name.clone(), day, state, rows, disagreements, new_discrepancies, file }
}
