//! `reconciler`: configuration → telemetry → start → run until a shutdown signal → drain.

use std::process::ExitCode;
use std::sync::Arc;

use clap::Parser;
use reconciler::cli::{Args, Command};
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
                let text =
                    if json { serde_json::to_string_pretty(&reports)? } else { reconciler::cli::table(&reports) };
                #[allow(clippy::print_stdout)]
                {
                    println!("{text}");
                }
                Ok(())
            }
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
