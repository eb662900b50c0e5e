//! What every service's `main` does the same way: load its configuration (defaults, then a TOML
//! file, then `PREFIX_*` environment variables) and build its runtime.

use std::path::Path;

use figment::Figment;
use figment::providers::{Env, Format, Serialized, Toml};
use serde::Serialize;
use serde::de::DeserializeOwned;

/// `T::default()`, then `file` (if given; it must exist), then `{prefix}*` variables
/// (`GATEWAY_LISTEN=0.0.0.0:8080`). The error is one line naming what is wrong.
pub fn load_config<T: Serialize + DeserializeOwned + Default>(file: Option<&Path>, prefix: &str) -> Result<T, String> {
    let mut figment = Figment::from(Serialized::defaults(T::default()));
    if let Some(file) = file {
        if !file.exists() {
            return Err(format!("{} does not exist", file.display()));
        }
        figment = figment.merge(Toml::file(file));
    }
    // `{prefix}CONFIG` names the file itself (the binaries' `--config`), not a setting.
    figment.merge(Env::prefixed(prefix).ignore(&["config"])).extract().map_err(|e| e.to_string())
}

/// The runtime: `Some(1)` worker thread is the current-thread scheduler (no work-stealing
/// machinery to pay for), `Some(n)` that many workers, `None` one per CPU.
pub fn runtime(worker_threads: Option<usize>) -> std::io::Result<tokio::runtime::Runtime> {
    let mut builder = match worker_threads {
        Some(1) => tokio::runtime::Builder::new_current_thread(),
        Some(threads) => {
            let mut builder = tokio::runtime::Builder::new_multi_thread();
            builder.worker_threads(threads);
            builder
        }
        None => tokio::runtime::Builder::new_multi_thread(),
    };
    builder.enable_all().build()
}
