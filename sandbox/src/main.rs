//! `alipay-sandbox`: an Alipay for tests and load tests. Prints the bound address first.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;
use sandbox::{Config, Sandbox};

#[derive(Debug, Parser)]
#[command(name = "alipay-sandbox", version, about = "An Alipay that behaves like Alipay, for tests and load tests")]
struct Args {
    /// Address to listen on (`127.0.0.1:0` picks a free port).
    #[arg(long, default_value = "127.0.0.1:8090")]
    listen: SocketAddr,
    /// Multiplies every scenario delay and notification retry interval.
    #[arg(long, default_value_t = 1.0)]
    time_scale: f64,
    /// JSON array of merchant registrations to load at start.
    #[arg(long)]
    merchants: Option<PathBuf>,
    /// Platform private key (PEM or base64); generated at start when absent.
    #[arg(long)]
    platform_key: Option<PathBuf>,
    /// Worker threads (default: one per CPU).
    #[arg(long)]
    threads: Option<usize>,
    /// Trades kept in memory before the oldest are forgotten.
    #[arg(long, default_value_t = 2_000_000)]
    max_trades: usize,
    /// Folder where Global's transaction and settlement files of MAPI partners are dropped
    /// (`<dir>/<partner>/...`, on `POST /sandbox/bills/drop`).
    #[arg(long)]
    global_drop_dir: Option<PathBuf>,
    /// Alipay's answer time, both dialects: log-normal with this median and 99th percentile in
    /// milliseconds, `P50/P99` (`150/600`); at once when absent.
    #[arg(long)]
    latency: Option<sandbox::faults::LatencyModel>,
}

fn main() -> ExitCode {
    let args = Args::parse();
    match run(args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(args: Args) -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()))
        .with_writer(std::io::stderr)
        .init();
    let mut runtime = tokio::runtime::Builder::new_multi_thread();
    if let Some(threads) = args.threads {
        runtime.worker_threads(threads.max(1));
    }
    let runtime = runtime.enable_all().build()?;
    runtime.block_on(async {
        let config = Config {
            listen: args.listen,
            time_scale: args.time_scale,
            merchants_file: args.merchants,
            platform_key_file: args.platform_key,
            max_trades: args.max_trades,
            global_drop_dir: args.global_drop_dir,
            latency: args.latency.map(sandbox::faults::Latencies::both).unwrap_or_default(),
            ..Config::default()
        };
        let sandbox = Sandbox::start(config).await?;
        #[allow(clippy::print_stdout)]
        {
            println!("alipay-sandbox listening on {}", sandbox.url());
        }
        tracing::info!(addr = %sandbox.addr(), time_scale = args.time_scale, "started");
        service::shutdown_signal().await;
        tracing::info!("stopping");
        sandbox.stop().await;
        Ok(())
    })
}
