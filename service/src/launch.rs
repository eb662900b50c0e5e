//! Starting a service binary (`gateway`, `reconciler`, `alipay-sandbox`) as a child process: the
//! one way tests (`stack`), benches and `loadtest bench` do it.
//!
//! - [`configured`]: the command, with a configuration given as `{PREFIX}_{FIELD}` variables.
//! - [`Service::start`]: starts it and waits for the first line it prints, which names its
//!   addresses (`gateway listening on http://A (admin http://B)`, `reconciler running (admin
//!   http://B)`, `alipay-sandbox listening on http://A`); what it prints after is read and dropped,
//!   so it never blocks on a full pipe. It is killed (SIGKILL) when dropped.
//! - [`ready_within`]: waits until an admin listener's `/ready` answers 200.

use std::ffi::OsStr;
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use serde::Serialize;
use serde_json::Value;

/// Why a service could not be started, or did not become ready.
#[derive(Debug, thiserror::Error)]
pub enum LaunchError {
    #[error("the configuration is not a struct of plain fields: {0}")]
    Config(String),
    #[error("{binary} could not be started: {source}")]
    Spawn { binary: String, source: std::io::Error },
    #[error("{binary} printed nothing for {within:?}")]
    Silent { binary: String, within: Duration },
    #[error("{binary} stopped before saying where it listens")]
    Exited { binary: String },
    #[error("{binary} said {line:?}, which names no http:// address")]
    NoAddress { binary: String, line: String },
    #[error("{admin}/ready did not answer 200 in time: {reason}")]
    NotReady { admin: String, reason: String },
}

/// `binary` with every field of `config` as a `{PREFIX}_{FIELD}` variable, the way the services
/// read their configuration (unset fields left out; lists as JSON).
pub fn configured(binary: impl AsRef<OsStr>, prefix: &str, config: &impl Serialize) -> Result<Command, LaunchError> {
    let mut command = Command::new(binary);
    let fields = match serde_json::to_value(config) {
        Ok(Value::Object(fields)) => fields,
        Ok(other) => return Err(LaunchError::Config(format!("not a struct: {other}"))),
        Err(error) => return Err(LaunchError::Config(error.to_string())),
    };
    for (name, value) in fields {
        let text = match value {
            Value::Null => continue,
            Value::String(text) => text,
            other => other.to_string(),
        };
        command.env(format!("{prefix}_{}", name.to_uppercase()), text);
    }
    Ok(command)
}

/// A started service, killed with SIGKILL (and reaped) when dropped, so a failing caller leaves
/// nothing running.
#[derive(Debug)]
pub struct Service {
    child: Child,
    /// The `http://host:port` addresses of its first line, in order (the gateway: partner API,
    /// admin; the reconciler: admin; the sandbox: its API).
    pub urls: Vec<String>,
}

impl Service {
    /// Starts `command` and waits at most `within` for the first line it prints.
    pub fn start(mut command: Command, within: Duration) -> Result<Service, LaunchError> {
        let binary = command.get_program().to_string_lossy().into_owned();
        let mut child = command
            .stdout(Stdio::piped())
            .spawn()
            .map_err(|source| LaunchError::Spawn { binary: binary.clone(), source })?;
        let Some(stdout) = child.stdout.take() else {
            kill(&mut child);
            return Err(LaunchError::Exited { binary });
        };
        let (first_line, said) = mpsc::channel();
        std::thread::spawn(move || {
            let mut lines = BufReader::new(stdout).lines();
            if let Some(Ok(line)) = lines.next() {
                let _ = first_line.send(line);
            }
            for _ in lines.map_while(Result::ok) {}
        });
        let line = match said.recv_timeout(within) {
            Ok(line) => line,
            Err(waited) => {
                kill(&mut child);
                return Err(match waited {
                    mpsc::RecvTimeoutError::Timeout => LaunchError::Silent { binary, within },
                    mpsc::RecvTimeoutError::Disconnected => LaunchError::Exited { binary },
                });
            }
        };
        let urls: Vec<String> = line
            .split_whitespace()
            .filter(|word| word.starts_with("http://"))
            .map(|word| word.trim_end_matches(')').to_owned())
            .collect();
        if urls.is_empty() {
            kill(&mut child);
            return Err(LaunchError::NoAddress { binary, line });
        }
        Ok(Service { child, urls })
    }

    /// The `n`th address of its first line (see [`Service::urls`]).
    pub fn url(&self, n: usize) -> Option<&str> {
        self.urls.get(n).map(String::as_str)
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// `kill -9`, then waits until the process is gone.
    pub fn kill(&mut self) {
        kill(&mut self.child);
    }
}

impl Drop for Service {
    fn drop(&mut self) {
        self.kill();
    }
}

fn kill(child: &mut Child) {
    let _ = child.kill();
    let _ = child.wait();
}

/// Waits until the admin listener at `admin` (`http://host:port`) answers `/ready` with 200 (an
/// unreachable listener counts as not ready); answers when. After `within`, the last reason.
pub async fn ready_within(admin: &str, within: Duration) -> Result<tokio::time::Instant, LaunchError> {
    let client =
        hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new()).build_http::<Empty<Bytes>>();
    let uri: http::Uri = format!("{admin}/ready").parse().map_err(|error: http::uri::InvalidUri| {
        LaunchError::NotReady { admin: admin.into(), reason: error.to_string() }
    })?;
    let give_up = tokio::time::Instant::now() + within;
    loop {
        let reason = match client.get(uri.clone()).await {
            Ok(ready) if ready.status() == http::StatusCode::OK => return Ok(tokio::time::Instant::now()),
            Ok(not_ready) => match not_ready.into_body().collect().await {
                Ok(body) => String::from_utf8_lossy(&body.to_bytes()).into_owned(),
                Err(error) => error.to_string(),
            },
            Err(error) => error.to_string(),
        };
        if tokio::time::Instant::now() >= give_up {
            return Err(LaunchError::NotReady { admin: admin.into(), reason });
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Serialize)]
    struct Example {
        listen: String,
        pool_size: usize,
        public_url: Option<String>,
        retry_ms: Vec<u64>,
    }

    #[test]
    fn every_set_field_becomes_a_variable() {
        let config = Example { listen: "127.0.0.1:0".into(), pool_size: 8, public_url: None, retry_ms: vec![100, 200] };
        let command = configured("gateway", "GATEWAY", &config).unwrap();
        let mut variables: Vec<(String, String)> = command
            .get_envs()
            .filter_map(|(name, value)| Some((name.to_str()?.to_owned(), value?.to_str()?.to_owned())))
            .collect();
        variables.sort();
        let expected =
            [("GATEWAY_LISTEN", "127.0.0.1:0"), ("GATEWAY_POOL_SIZE", "8"), ("GATEWAY_RETRY_MS", "[100,200]")];
        assert_eq!(variables, expected.map(|(n, v)| (n.to_owned(), v.to_owned())));
    }

    #[test]
    fn the_addresses_come_from_the_first_line() {
        let mut command = Command::new("sh");
        command.args(["-c", "echo 'gateway listening on http://127.0.0.1:1 (admin http://127.0.0.1:2)'; sleep 30"]);
        let service = Service::start(command, Duration::from_secs(10)).unwrap();
        assert_eq!(service.urls, ["http://127.0.0.1:1", "http://127.0.0.1:2"]);
    }

    #[test]
    fn a_service_that_stops_at_once_is_an_error() {
        let mut command = Command::new("sh");
        command.args(["-c", "exit 3"]);
        let error = Service::start(command, Duration::from_secs(10)).unwrap_err();
        assert!(matches!(error, LaunchError::Exited { .. }), "{error}");
    }
}
