//! A gateway running as a process of its own, for tests that kill it: its addresses are read from
//! the line it prints once listening; it is killed with SIGKILL when dropped.

use std::io::{BufRead, BufReader};
use std::process::{Child, ChildStdout, Command, Stdio};

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
