//! A gateway running as a process of its own, for tests that kill it, started by the shared
//! launcher ([`service::launch`]): its addresses are read from the line it prints once
//! listening; it is killed with SIGKILL when dropped.

use std::process::{Child, Command};
use std::time::Duration;

use service::launch::{self, Service};

/// How long a gateway may take to print where it listens.
const START_WITHIN: Duration = Duration::from_secs(60);

pub struct GatewayProcess {
    service: Service,
    /// The partner API, `http://host:port`.
    pub base: String,
    /// The admin listener, `http://host:port`.
    pub admin: String,
}

impl GatewayProcess {
    /// Spawns `command` (see [`crate::Stack::gateway_process`]) and waits until it listens.
    pub fn spawn(command: Command) -> GatewayProcess {
        let service = Service::start(command, START_WITHIN).unwrap_or_else(|error| panic!("the gateway: {error}"));
        let [base, admin] = [0, 1].map(|n| service.url(n).expect("the gateway names two addresses").to_owned());
        GatewayProcess { service, base, admin }
    }

    pub fn pid(&self) -> u32 {
        self.service.pid()
    }

    /// `kill -9`, then waits until the process is gone.
    pub fn kill(&mut self) {
        self.service.kill();
    }
}

/// Waits until the gateway whose admin listener is `admin` (`http://host:port`) answers `/ready`
/// with 200 ([`launch::ready_within`]); answers when. Panics with the last reason after `within`.
pub async fn ready_within(admin: &str, within: Duration) -> tokio::time::Instant {
    launch::ready_within(admin, within).await.unwrap_or_else(|error| panic!("the gateway is not ready: {error}"))
}

/// Any child process (a reconciler, say), killed with SIGKILL when dropped, so a failing test
/// leaves nothing running.
pub struct KillOnDrop(pub Child);

impl KillOnDrop {
    /// `kill -9`, then waits until the process is gone.
    pub fn kill(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        self.kill();
    }
}
