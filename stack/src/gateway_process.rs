//! A gateway running as a process of its own, for tests that kill it: its addresses are read from
//! the line it prints once listening; it is killed with SIGKILL when dropped.

use std::io::{BufRead, BufReader};
use std::process::{Child, ChildStdout, Command, Stdio};
use std::time::Duration;

pub struct GatewayProcess {
    child: Child,
    /// Kept open: the gateway's stdout.
    _stdout: BufReader<ChildStdout>,
    /// The partner API, `http://host:port`.
    pub base: String,
    /// The admin listener, `http://host:port`.
    pub admin: String,
}

impl GatewayProcess {
    /// Spawns `command` (see [`crate::Stack::gateway_process`]) and waits until it listens.
    pub fn spawn(mut command: Command) -> GatewayProcess {
        let mut child = command.stdout(Stdio::piped()).spawn().expect("the gateway binary runs");
        let mut stdout = BufReader::new(child.stdout.take().unwrap());
        let mut line = String::new();
        stdout.read_line(&mut line).unwrap();
        // "gateway listening on http://A (admin http://B)"
        let words: Vec<&str> = line.split_whitespace().collect();
        let [_, "listening", "on", base, "(admin", admin] = words[..] else {
            panic!("the gateway did not start: {line:?}")
        };
        let (base, admin) = (base.to_owned(), admin.trim_end_matches(')').to_owned());
        GatewayProcess { child, _stdout: stdout, base, admin }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// `kill -9`, then waits until the process is gone.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for GatewayProcess {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Waits until the gateway whose admin listener is `admin` (`http://host:port`) answers `/ready`
/// with 200 (an unreachable listener counts as not ready); answers when. Panics with the last
/// reason after `within`.
pub async fn ready_within(http: &reqwest::Client, admin: &str, within: Duration) -> tokio::time::Instant {
    let give_up = tokio::time::Instant::now() + within;
    loop {
        let reason = match http.get(format!("{admin}/ready")).send().await {
            Ok(ready) if ready.status() == 200 => return tokio::time::Instant::now(),
            Ok(ready) => ready.text().await.unwrap_or_default(),
            Err(error) => error.to_string(),
        };
        assert!(tokio::time::Instant::now() < give_up, "the gateway is not ready: {reason}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
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
