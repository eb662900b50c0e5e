//! The `devstack` command, as `deploy/dev` calls it.

#![allow(clippy::print_stdout, reason = "a command-line tool: stdout is where its results go")]

use std::path::PathBuf;

use clap::{Parser, Subcommand};

use crate::state::State;
use crate::tenants::{Endpoints, ensure};

#[derive(Debug, Parser)]
#[command(name = "devstack", version, about = "The local stack's helper (run by deploy/dev)")]
pub struct Cli {
    /// The state directory.
    #[arg(long, default_value = ".dev")]
    pub state: PathBuf,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Creates the master key ring, the admin token and the sandbox's platform key, once.
    Init,
    /// Makes sure the demo tenants exist; writes stack.json with where everything is.
    Tenants {
        /// Every gateway's partner API, repeated (the first is the one onboarding goes through).
        #[arg(long = "gateway-url", required = true)]
        gateway_urls: Vec<String>,
        #[arg(long)]
        admin_url: String,
        #[arg(long)]
        sandbox_url: String,
        /// Every reconciler's admin listener, repeated.
        #[arg(long = "reconciler-admin-url", required = true)]
        reconciler_admin_urls: Vec<String>,
        #[arg(long)]
        database_url: String,
        #[arg(long)]
        redis_url: String,
        /// `service=pid`, repeated.
        #[arg(long = "pid", value_parser = parse_pid)]
        pids: Vec<(String, u32)>,
    },
    /// Walks through a paid, a refused and an UNKNOWN-then-settled payment, a refund, a QR order.
    Demo,
    /// Prints the `Authorization` header for one partner API call, for curl.
    Sign {
        #[arg(long, default_value = "noodle-bar")]
        tenant: String,
        method: String,
        /// Path and query, e.g. `/v1/payments/demo-1`.
        path: String,
        /// The JSON body, exactly as curl will send it.
        #[arg(default_value = "")]
        body: String,
    },
}

fn parse_pid(text: &str) -> Result<(String, u32), String> {
    let (name, pid) = text.split_once('=').ok_or("give service=pid")?;
    Ok((name.to_owned(), pid.parse().map_err(|_| format!("'{pid}' is not a process id"))?))
}

pub async fn main(cli: Cli) -> anyhow::Result<()> {
    let state = State::new(&cli.state)?;
    match cli.command {
        Command::Init => state.init(),
        Command::Tenants {
            gateway_urls,
            admin_url,
            sandbox_url,
            reconciler_admin_urls,
            database_url,
            redis_url,
            pids,
        } => {
            let mut stack = state.stack();
            let endpoints = Endpoints {
                admin_url: admin_url.clone(),
                sandbox_url: sandbox_url.clone(),
                token: state.read("admin.token")?,
            };
            stack.gateway_url = gateway_urls.first().cloned().unwrap_or_default();
            stack.gateway_urls = gateway_urls;
            stack.admin_url = admin_url;
            stack.sandbox_url = sandbox_url;
            stack.reconciler_admin_url = reconciler_admin_urls.first().cloned().unwrap_or_default();
            stack.reconciler_admin_urls = reconciler_admin_urls;
            stack.database_url = database_url;
            stack.redis_url = redis_url;
            stack.pid = pids.into_iter().collect();
            ensure(&state, &endpoints, &mut stack).await?;
            state.write_stack(&stack)?;
            // Each gateway's tenant snapshot follows the registry a moment after onboarding.
            for gateway in &stack.gateway_urls {
                let client = loadtest::client::Client::new(gateway, std::time::Duration::from_secs(5), 1);
                for tenant in &stack.tenants {
                    if !client.wait_until_known(tenant).await {
                        anyhow::bail!("the gateway at {gateway} does not know {} after 30 s", tenant.slug);
                    }
                }
            }
            Ok(())
        }
        Command::Demo => crate::demo::run(&state.stack()).await,
        Command::Sign { tenant, method, path, body } => {
            let stack = state.stack();
            let tenant = stack
                .tenants
                .iter()
                .find(|t| t.slug == tenant)
                .ok_or_else(|| anyhow::anyhow!("no tenant {tenant} in {}", state.path("stack.json").display()))?;
            println!("{}", loadtest::client::authorization(tenant, &method.to_uppercase(), &path, body.as_bytes()));
            Ok(())
        }
    }
}
