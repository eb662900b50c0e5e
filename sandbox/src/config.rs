//! Configuration, checked at start, and the running [`Sandbox`].

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use alipay::PrivateKey;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use crate::app::App;
use crate::billing::Billing;
use crate::clock::Clock;
use crate::faults::{Faults, Latencies};
use crate::ledger::Ledger;
use crate::merchants::{Merchants, Platform, Registration};
use crate::notify::Notifier;
use crate::oauth_codes::OauthCodes;
use crate::stats::Stats;

#[derive(Debug, Clone)]
pub struct Config {
    pub listen: SocketAddr,
    /// Multiplies every scenario delay and notification retry interval (0.1 turns 10 s into 1 s).
    pub time_scale: f64,
    /// A JSON array of merchant registrations to load at start.
    pub merchants_file: Option<PathBuf>,
    /// The platform private key (PEM or base64); a fresh one is generated when absent.
    pub platform_key_file: Option<PathBuf>,
    /// Trades kept before the oldest are forgotten.
    pub max_trades: usize,
    pub max_merchants: usize,
    /// Notifications in flight (delivering or waiting to retry) before new ones are dropped.
    pub max_pending_notifications: usize,
    pub max_connections: usize,
    /// How long a bill download link works (Alipay's: 30 s).
    pub bill_url_ttl: Duration,
    /// Where Global's files for MAPI partners are dropped (`<dir>/<partner>/...`), if anywhere.
    pub global_drop_dir: Option<PathBuf>,
    /// Alipay's answer time by dialect (none: at once); `POST /sandbox/faults` changes it.
    pub latency: Latencies,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            time_scale: 1.0,
            merchants_file: None,
            platform_key_file: None,
            max_trades: 2_000_000,
            max_merchants: 100_000,
            max_pending_notifications: 100_000,
            max_connections: 10_000,
            bill_url_ttl: Duration::from_secs(30),
            global_drop_dir: None,
            latency: Latencies::default(),
        }
    }
}

/// The sandbox could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("--time-scale must be a positive finite number")]
    TimeScale,
    #[error("cannot bind {0}: {1}")]
    Bind(SocketAddr, std::io::Error),
    #[error("cannot read {0}: {1}")]
    Read(PathBuf, std::io::Error),
    #[error("platform key refused: {0}")]
    PlatformKey(alipay::KeyError),
    #[error("merchants file is not a JSON array of registrations: {0}")]
    MerchantsFile(serde_json::Error),
    #[error("merchant #{0} in the merchants file refused: {1}")]
    Merchant(usize, crate::merchants::RegistrationError),
}

/// A running sandbox.
pub struct Sandbox {
    addr: SocketAddr,
    app: Arc<App>,
    stop: Option<oneshot::Sender<()>>,
    task: JoinHandle<()>,
}

impl Sandbox {
    /// Checks the configuration, binds, and starts serving in the background.
    pub async fn start(config: Config) -> Result<Sandbox, StartError> {
        if !(config.time_scale.is_finite() && config.time_scale > 0.0) {
            return Err(StartError::TimeScale);
        }
        let key = match &config.platform_key_file {
            Some(path) => {
                let text = std::fs::read_to_string(path).map_err(|e| StartError::Read(path.clone(), e))?;
                PrivateKey::parse(&text).map_err(StartError::PlatformKey)?
            }
            None => PrivateKey::generate().map_err(StartError::PlatformKey)?,
        };
        let platform = Arc::new(Platform::new(key).map_err(StartError::PlatformKey)?);
        let clock = Clock::new(config.time_scale);
        let stats = Arc::new(Stats::default());
        let notifier = Notifier::new(platform.clone(), clock, stats.clone(), config.max_pending_notifications);
        let listener = telemetry::server::bind(config.listen).map_err(|e| StartError::Bind(config.listen, e))?;
        let addr = listener.local_addr().map_err(|e| StartError::Bind(config.listen, e))?;
        let app = Arc::new(App {
            addr,
            clock,
            merchants: Merchants::new(config.max_merchants),
            platform,
            ledger: Ledger::new(clock, notifier, config.max_trades),
            stats,
            faults: Faults::with_latency(config.latency),
            oauth: OauthCodes::default(),
            billing: Billing::new(config.bill_url_ttl, config.global_drop_dir.clone()),
        });
        if let Some(path) = &config.merchants_file {
            let text = std::fs::read(path).map_err(|e| StartError::Read(path.clone(), e))?;
            let registrations: Vec<Registration> = serde_json::from_slice(&text).map_err(StartError::MerchantsFile)?;
            for (i, reg) in registrations.iter().enumerate() {
                app.merchants.register(reg).map_err(|e| StartError::Merchant(i, e))?;
            }
        }
        let (stop, stopped) = oneshot::channel();
        let task = tokio::spawn(crate::server::serve(listener, app.clone(), config.max_connections, async {
            let _ = stopped.await;
        }));
        Ok(Sandbox { addr, app, stop: Some(stop), task })
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://ADDR`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// `http://ADDR/gateway.do`.
    pub fn gateway_url(&self) -> String {
        format!("http://{}/gateway.do", self.addr)
    }

    /// The platform public key (PEM), which verifies the sandbox's answers and notifications.
    pub fn public_key_pem(&self) -> &str {
        self.app.platform.public_pem()
    }

    pub fn app(&self) -> &Arc<App> {
        &self.app
    }

    /// Stops accepting, drains open connections (briefly) and returns.
    pub async fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        let _ = (&mut self.task).await;
    }
}
