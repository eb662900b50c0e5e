//! `gateway`: configuration → telemetry → start → run until a shutdown signal → drain.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use clap::Parser;
use gateway::{Config, Gateway, Secrets};

/// mimalloc: the hot path allocates small buffers per request; glibc's malloc spent ~10% of it.
/// Transparent huge pages are turned off for this process (see `main`). The `system-allocator`
/// feature leaves the system's in place, for heap profilers (bench/gateway_heap.sh).
#[cfg(not(feature = "system-allocator"))]
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Debug, Parser)]
#[command(name = "gateway", version, about = "The Alipay acquirer gateway's partner API")]
struct Args {
    /// TOML configuration file; `GATEWAY_*` variables override it.
    #[arg(long, env = "GATEWAY_CONFIG")]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Debug, clap::Subcommand)]
enum Command {
    /// Applies the tenants and ledger schemas to the configured database, then exits (a
    /// deployment's migration step; several at once apply them once).
    Migrate,
}

fn main() -> ExitCode {
    // mimalloc asks for transparent huge pages, so memory first touched during a burst of new
    // connections is faulted in 2 MiB at a time, each zeroed on the spot: a quarter of the
    // gateway's CPU during such a burst, with every request on the thread waiting. 4 KiB pages
    // cost that a little at a time (and the gateway starts at 22 MiB resident, not 37).
    if let Err(error) = nix::sys::prctl::set_thp_disable(true) {
        eprintln!("warning: transparent huge pages stay on: {error}");
    }
    let args = Args::parse();
    // Test builds only: `FAILPOINTS` holds payments at the named points (the crash-window tests).
    #[cfg(feature = "failpoints")]
    let _failpoints = fail::FailScenario::setup();
    telemetry::init_tracing("gateway");
    let (config, runtime) = match service::configured(Config::load(args.config.as_deref()), |c| c.worker_threads) {
        Ok(started) => started,
        Err(code) => return code,
    };
    let done = match args.command {
        Some(Command::Migrate) => runtime.block_on(migrate(&config.database_url)),
        None => runtime.block_on(run(config)),
    };
    match done {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error:#}");
            ExitCode::FAILURE
        }
    }
}

async fn migrate(database_url: &str) -> anyhow::Result<()> {
    let tenants = tenants::db::migrate(database_url).await?;
    let ledger = ledger::store::migrate(database_url).await?;
    tracing::info!(tenants, ledger, "migrations applied");
    Ok(())
}

async fn run(config: Config) -> anyhow::Result<()> {
    let keyring = Arc::new(tenants::Keyring::from_env()?);
    let admin_token = match std::env::var("ACQ_ADMIN_TOKEN") {
        // Refused here, before anything starts: too short, or the deployment files' example.
        Ok(token) => {
            Some(tenants::admin::AdminToken::new(&token).map_err(|e| anyhow::anyhow!("ACQ_ADMIN_TOKEN: {e}"))?)
        }
        Err(_) => None,
    };
    let gateway = Gateway::start(config, Secrets { keyring, admin_token }).await?;
    #[allow(clippy::print_stdout)]
    {
        println!("gateway listening on http://{} (admin http://{})", gateway.addr(), gateway.admin_addr());
    }
    service::shutdown_signal().await;
    tracing::info!("stopping: draining requests and payment tasks");
    gateway.stop().await;
    Ok(())
}
