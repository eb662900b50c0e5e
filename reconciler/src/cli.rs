//! The `reconciler` command line: `run` (the default) runs the loops until SIGTERM or Ctrl-C;
//! `webhooks` lists a tenant's webhook deliveries with every attempt, for ops.

use std::path::PathBuf;

use clap::{Parser, Subcommand};
use comfy_table::Table;
use ledger::Store;
use ledger::store::DeliveryReport;

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
}

/// A tenant's latest `limit` deliveries (the tenant by slug or id), or a one-line error.
pub async fn webhooks(config: &Config, tenant: &str, limit: i64) -> anyhow::Result<Vec<DeliveryReport>> {
    let pool = tenants::db::bounded_pool(&config.database_url, config.pool_limits(2))?;
    let tenant_id = match tenant.parse::<uuid::Uuid>() {
        Ok(id) => id,
        Err(_) => tenants::Registry::new(pool.clone(), None).show(tenant).await?.id,
    };
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
