//! `.dev/`: what the local stack keeps between `deploy/dev up`s. Secrets are created once, with
//! owner-only permissions; `stack.json` says where everything is and holds the demo tenants'
//! POS credentials (a tenants file for `loadtest run`).

use std::collections::BTreeMap;
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use loadtest::tenants_file::PosTenant;
use serde::{Deserialize, Serialize};

/// `.dev/stack.json`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct StackFile {
    /// The first of `gateway_urls`.
    pub gateway_url: String,
    /// Every gateway's partner API (`deploy/dev up --replicas N`: N of them, consecutive ports).
    #[serde(default)]
    pub gateway_urls: Vec<String>,
    pub admin_url: String,
    pub sandbox_url: String,
    /// The first of `reconciler_admin_urls`.
    pub reconciler_admin_url: String,
    #[serde(default)]
    pub reconciler_admin_urls: Vec<String>,
    pub database_url: String,
    pub redis_url: String,
    /// Process ids by service (`sandbox`, `gateway`, `gateway-2`, ..., `reconciler`, `reconciler-2`).
    pub pid: BTreeMap<String, u32>,
    pub tenants: Vec<PosTenant>,
}

/// The state directory.
pub struct State {
    pub dir: PathBuf,
}

impl State {
    pub fn new(dir: &Path) -> anyhow::Result<State> {
        std::fs::create_dir_all(dir).map_err(|e| anyhow::anyhow!("cannot create {}: {e}", dir.display()))?;
        Ok(State { dir: dir.to_path_buf() })
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }

    /// Creates the secrets the stack needs, once: the master key ring, the admin token, the
    /// sandbox's platform key.
    pub fn init(&self) -> anyhow::Result<()> {
        self.create_secret("master.keys", || Ok(tenants::Keyring::generate_line("dev1")?.to_string()))?;
        self.create_secret("admin.token", || {
            let bytes: [u8; 24] = rand::random();
            Ok(bytes.iter().map(|b| format!("{b:02x}")).collect())
        })?;
        self.create_secret("sandbox-platform.pem", || Ok(alipay::PrivateKey::generate()?.to_pkcs8_pem()?.to_string()))?;
        Ok(())
    }

    fn create_secret(&self, name: &str, make: impl FnOnce() -> anyhow::Result<String>) -> anyhow::Result<()> {
        let path = self.path(name);
        if path.exists() {
            return Ok(());
        }
        let mut file = std::fs::OpenOptions::new().write(true).create_new(true).mode(0o600).open(&path)?;
        file.write_all(make()?.as_bytes())?;
        Ok(())
    }

    pub fn read(&self, name: &str) -> anyhow::Result<String> {
        let path = self.path(name);
        Ok(std::fs::read_to_string(&path)
            .map_err(|e| anyhow::anyhow!("cannot read {} (run deploy/dev up): {e}", path.display()))?
            .trim()
            .to_owned())
    }

    /// `stack.json`, or an empty one.
    pub fn stack(&self) -> StackFile {
        std::fs::read(self.path("stack.json")).ok().and_then(|b| serde_json::from_slice(&b).ok()).unwrap_or_default()
    }

    /// Writes `stack.json` (owner-only: it holds POS secrets).
    pub fn write_stack(&self, stack: &StackFile) -> anyhow::Result<()> {
        let path = self.path("stack.json");
        let mut file = std::fs::OpenOptions::new().write(true).create(true).truncate(true).mode(0o600).open(&path)?;
        file.write_all(&serde_json::to_vec_pretty(stack)?)?;
        Ok(())
    }
}
