//! The `reconciler` command line: `run` (the default) runs the loops until SIGTERM or Ctrl-C;
//! `webhooks` lists a tenant's webhook deliveries with every attempt, for ops; `bills fetch`,
//! `bills show` and `bills resolve` are the daily close by hand.

use std::path::PathBuf;

use clap::{Parser, Subcommand};
use comfy_table::Table;
use ledger::Store;
use ledger::store::DeliveryReport;

use std::sync::Arc;

use ledger::store::{BillDay, Discrepancy, DiscrepancyFilter};
use serde::Serialize;
use tenants::snapshot::{Loader, Snapshots};
use time::{Date, OffsetDateTime};

use crate::bills::{DayReport, Settlement};
use crate::config::Config;

#[derive(Debug, Parser)]
#[command(name = "reconciler", version, about = "Settles UNKNOWN trades with Alipay and delivers merchant webhooks")]
pub struct Args {
    /// TOML configuration file; `RECONCILER_*` variables override it.
    #[arg(long, env = "RECONCILER_CONFIG", global = true)]
    pub config: Option<PathBuf>,
    #[command(subcommand)]
    pub command: Option<Command>,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the reconciler (the default).
    Run,
    /// List a tenant's newest webhook deliveries, each with every attempt.
    Webhooks {
        /// The tenant's slug or id.
        #[arg(long)]
        tenant: String,
        #[arg(long, default_value_t = 20, value_parser = clap::value_parser!(i64).range(1..=1000))]
        limit: i64,
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// The daily close by hand: Alipay's bills and the discrepancies found in them.
    #[command(subcommand)]
    Bills(BillsCommand),
}

#[derive(Debug, Subcommand)]
pub enum BillsCommand {
    /// Fetch and match one finished day's bill of the account of a tenant (or of every live
    /// account): what the daily job does at 10:00 Beijing time. A day already reconciled is
    /// done again only with --again (and that changes nothing that holds).
    Fetch {
        /// The Beijing day, yyyy-mm-dd.
        #[arg(long, value_parser = parse_day)]
        day: Date,
        /// The tenant (slug or id) whose Alipay account's bill to fetch; every live account when
        /// absent.
        #[arg(long)]
        tenant: Option<String>,
        #[arg(long)]
        again: bool,
        #[arg(long)]
        json: bool,
    },
    /// The days reconciled (from --since on) and the discrepancies found.
    Show {
        /// The first day shown (default: 7 days ago).
        #[arg(long, value_parser = parse_day)]
        since: Option<Date>,
        /// Only this day's discrepancies.
        #[arg(long, value_parser = parse_day)]
        day: Option<Date>,
        /// Only this tenant's discrepancies (slug or id).
        #[arg(long)]
        tenant: Option<String>,
        /// Resolved discrepancies too.
        #[arg(long)]
        all: bool,
        #[arg(long, default_value_t = 100, value_parser = clap::value_parser!(i64).range(1..=10_000))]
        limit: i64,
        #[arg(long)]
        json: bool,
    },
    /// Resolve a discrepancy by a recorded ops action: what was done, and by whom.
    Resolve {
        #[arg(long)]
        id: i64,
        /// What was done (for example "refunded the buyer in the merchant portal, ticket 4411").
        #[arg(long)]
        resolution: String,
        /// Who acts (the audit always names the OS account and host as well).
        #[arg(long, env = "ACQ_ACTOR")]
        actor: Option<String>,
        #[arg(long)]
        json: bool,
    },
}

fn parse_day(text: &str) -> Result<Date, String> {
    Date::parse(text, time::macros::format_description!("[year]-[month]-[day]"))
        .map_err(|_| format!("`{text}` is not a day (yyyy-mm-dd)"))
}

/// The days and discrepancies `bills show` prints.
#[derive(Debug, Serialize)]
pub struct BillsShown {
    pub days: Vec<BillDay>,
    pub discrepancies: Vec<Discrepancy>,
}

async fn tenant_id(pool: &deadpool_postgres::Pool, tenant: &str) -> anyhow::Result<uuid::Uuid> {
    Ok(match tenant.parse::<uuid::Uuid>() {
        Ok(id) => id,
        Err(_) => tenants::Registry::new(pool.clone(), None).show(tenant).await?.id,
    })
}

/// `bills fetch`: reconciles `day` for the tenant's account, or every live account.
pub async fn bills_fetch(
    config: &Config,
    keyring: Arc<tenants::Keyring>,
    day: Date,
    tenant: Option<&str>,
    again: bool,
) -> anyhow::Result<Vec<DayReport>> {
    let pool = tenants::db::bounded_pool(&config.database_url, config.pool_limits(4))?;
    let snapshot = Loader::new(pool.clone(), keyring).load_all().await?;
    let wanted = match tenant {
        Some(tenant) => Some(tenant_id(&pool, tenant).await?),
        None => None,
    };
    let accounts: Vec<_> = crate::bills::accounts(&snapshot)
        .into_iter()
        .filter(|a| wanted.is_none_or(|id| a.tenants.iter().any(|t| t.id == id)))
        .collect();
    if accounts.is_empty() {
        anyhow::bail!("no live tenant (active, with its keys) matches");
    }
    let settlement = Settlement::new(Store::new(pool), Arc::new(Snapshots::new(snapshot)), config.clone());
    let mut reports = Vec::new();
    for account in accounts {
        reports.push(settlement.reconcile_day(&account, day, OffsetDateTime::now_utc(), again).await?);
    }
    Ok(reports)
}

/// `bills show`.
pub async fn bills_show(
    config: &Config,
    since: Option<Date>,
    day: Option<Date>,
    tenant: Option<&str>,
    all: bool,
    limit: i64,
) -> anyhow::Result<BillsShown> {
    let pool = tenants::db::bounded_pool(&config.database_url, config.pool_limits(2))?;
    let tenant_id = match tenant {
        Some(tenant) => Some(tenant_id(&pool, tenant).await?),
        None => None,
    };
    let store = Store::new(pool);
    let today = OffsetDateTime::now_utc().to_offset(time::macros::offset!(+8)).date();
    let since = since.or(day).unwrap_or(today - time::Duration::days(7));
    let days = store.bill_days(None, since, limit).await?;
    let filter = DiscrepancyFilter { tenant_id, alipay_account: None, day, open_only: !all, limit };
    Ok(BillsShown { days, discrepancies: store.discrepancies(&filter).await? })
}

/// `bills resolve`.
pub async fn bills_resolve(
    config: &Config,
    id: i64,
    resolution: &str,
    actor: Option<&str>,
) -> anyhow::Result<Discrepancy> {
    if resolution.trim().is_empty() || resolution.len() > 2000 {
        anyhow::bail!("--resolution must say what was done, in 1 to 2000 characters");
    }
    let pool = tenants::db::bounded_pool(&config.database_url, config.pool_limits(2))?;
    let actor = tenants::cli::command_line_actor(actor);
    Store::new(pool)
        .resolve_discrepancy(id, &actor, resolution.trim())
        .await?
        .ok_or_else(|| anyhow::anyhow!("no open discrepancy {id} (no such id, or resolved already)"))
}

/// `bills show` as tables, for people.
pub fn bills_table(shown: &BillsShown) -> String {
    let mut days = Table::new();
    days.load_style(comfy_table::presets::UTF8_BORDERS_ONLY);
    days.set_header(["day", "account", "state", "payments", "refunds", "discrepancies", "tries", "last error"]);
    let count = |n: Option<i64>| n.map_or_else(String::new, |n| n.to_string());
    for day in &shown.days {
        days.add_row([
            day.day.to_string(),
            day.alipay_account.clone(),
            day.state.as_str().to_owned(),
            count(day.payments),
            count(day.refunds),
            count(day.discrepancies),
            day.attempts.to_string(),
            day.last_error.clone().unwrap_or_default(),
        ]);
    }
    let mut found = Table::new();
    found.load_style(comfy_table::presets::UTF8_BORDERS_ONLY);
    found.set_header(["id", "day", "class", "trade", "refund", "ledger", "bill", "alipay", "resolved", "detail"]);
    for d in &shown.discrepancies {
        found.add_row([
            d.id.to_string(),
            d.day.to_string(),
            d.class.as_str().to_owned(),
            d.out_trade_no.clone(),
            d.out_request_no.clone(),
            count(d.ledger_minor),
            count(d.bill_minor),
            count(d.alipay_minor),
            d.resolved_by.clone().unwrap_or_default(),
            d.detail.clone(),
        ]);
    }
    format!("{days}\n{found}")
}

/// A tenant's latest `limit` deliveries (the tenant by slug or id), or a one-line error.
pub async fn webhooks(config: &Config, tenant: &str, limit: i64) -> anyhow::Result<Vec<DeliveryReport>> {
    let pool = tenants::db::bounded_pool(&config.database_url, config.pool_limits(2))?;
    let tenant_id = tenant_id(&pool, tenant).await?;
    Ok(Store::new(pool).webhook_deliveries(tenant_id, limit).await?)
}

/// Deliveries as a table, for people (`--json` prints them as they are).
pub fn table(reports: &[DeliveryReport]) -> String {
    let mut table = Table::new();
    table.load_style(comfy_table::presets::UTF8_BORDERS_ONLY);
    table.set_header(["id", "event", "trade", "status", "attempts", "last"]);
    for report in reports {
        let last = report.history.last().map_or_else(String::new, |a| {
            let outcome = a.error.clone().unwrap_or_else(|| format!("HTTP {}", a.http_status.unwrap_or_default()));
            format!("{} ({} ms)", outcome, a.took_ms)
        });
        table.add_row([
            report.delivery.id.to_string(),
            report.delivery.event.clone(),
            report.delivery.out_trade_no.clone(),
            report.status.to_owned(),
            report.history.len().to_string(),
            last,
        ]);
    }
    table.to_string()
}

/// `bills fetch` as a table.
pub fn fetched_table(reports: &[DayReport]) -> String {
    let mut table = Table::new();
    table.load_style(comfy_table::presets::UTF8_BORDERS_ONLY);
    table.set_header(["day", "account", "state", "rows", "disagreements", "new discrepancies", "file", "sha256"]);
    for report in reports {
        let (path, sha) = report.file.clone().unwrap_or_default();
        table.add_row([
            report.day.to_string(),
            report.alipay_account.clone(),
            report.state.as_str().to_owned(),
            report.rows.to_string(),
            report.disagreements.to_string(),
            report.new_discrepancies.to_string(),
            path,
            sha,
        ]);
    }
    table.to_string()
}
