//! `reconciler`: configuration → telemetry → start → run until a shutdown signal → drain.

use std::process::ExitCode;
use std::sync::Arc;

use clap::Parser;
use reconciler::cli::{Args, BillsCommand, Command};
use reconciler::{Config, Reconciler};

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    let args = Args::parse();
    telemetry::init_tracing("reconciler");
    let (config, runtime) = match service::configured(Config::load(args.config.as_deref()), |c| c.worker_threads) {
        Ok(started) => started,
        Err(code) => return code,
    };
    let done = runtime.block_on(async {
        match args.command.unwrap_or(Command::Run) {
            Command::Run => run(config).await,
            Command::Webhooks { tenant, limit, json } => {
                let reports = reconciler::cli::webhooks(&config, &tenant, limit).await?;
                print(if json { serde_json::to_string_pretty(&reports)? } else { reconciler::cli::table(&reports) });
                Ok(())
            }
            Command::Bills(command) => bills(&config, command).await,
        }
    });
    match done {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error:#}");
            ExitCode::FAILURE
        }
    }
}

async fn bills(config: &Config, command: BillsCommand) -> anyhow::Result<()> {
    use reconciler::cli;
    match command {
        BillsCommand::Fetch { day, tenant, again, json } => {
            let keyring = Arc::new(tenants::Keyring::from_env()?);
            let reports = cli::bills_fetch(config, keyring, day, tenant.as_deref(), again).await?;
            print(if json { serde_json::to_string_pretty(&reports)? } else { cli::fetched_table(&reports) });
        }
        BillsCommand::Show { since, day, tenant, all, limit, json } => {
            let shown = cli::bills_show(config, since, day, tenant.as_deref(), all, limit).await?;
            print(if json { serde_json::to_string_pretty(&shown)? } else { cli::bills_table(&shown) });
        }
        BillsCommand::Resolve { id, resolution, actor, json } => {
            let resolved = cli::bills_resolve(config, id, &resolution, actor.as_deref()).await?;
            print(if json {
                serde_json::to_string_pretty(&resolved)?
            } else {
                format!("discrepancy {} resolved by {}", resolved.id, resolved.resolved_by.unwrap_or_default())
            });
        }
    }
    Ok(())
}

#[allow(clippy::print_stdout)]
fn print(text: String) {
    println!("{text}");
}

async fn run(config: Config) -> anyhow::Result<()> {
    let keyring = Arc::new(tenants::Keyring::from_env()?);
    let reconciler = Reconciler::start(config, keyring).await?;
    #[allow(clippy::print_stdout)]
    {
        println!("reconciler running (admin http://{})", reconciler.admin_addr());
    }
    service::shutdown_signal().await;
    tracing::info!("stopping: finishing the checks under way");
    reconciler.stop().await;
    Ok(())
}
