//! A Postgres server of a test's own (for tests that crash and restart it, or that need it to
//! speak TLS only), on a free port, its cluster in a fresh directory under the system's temporary
//! directory; stopped and removed when dropped. When the test runs as root, the server runs as
//! the `postgres` user (Postgres refuses to run as root).

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use crate::unique;

pub struct PrivatePostgres {
    pub port: u16,
    dir: PathBuf,
    bin: PathBuf,
    /// Server settings beyond the port and the sockets (`-c name=value …`).
    settings: String,
}

impl PrivatePostgres {
    /// A new cluster (trust authentication for `postgres`), started.
    pub fn start() -> PrivatePostgres {
        PrivatePostgres::start_with("")
    }

    /// [`PrivatePostgres::start`] with server settings of the test's own (`-c name=value …`).
    pub fn start_with(settings: &str) -> PrivatePostgres {
        let mut postgres = PrivatePostgres::init();
        postgres.settings = settings.to_owned();
        postgres.start_server();
        postgres
    }

    /// A new cluster that speaks TLS only (`ssl=on` with the certificate and key given, PEM;
    /// `pg_hba.conf` has `hostssl` lines only, so a plain TCP connection is refused), started.
    pub fn start_tls_only(certificate_pem: &str, key_pem: &str) -> PrivatePostgres {
        let mut postgres = PrivatePostgres::init();
        let (certificate, key) = (postgres.dir.join("server.crt"), postgres.dir.join("server.key"));
        std::fs::write(&certificate, certificate_pem).unwrap();
        std::fs::write(&key, key_pem).unwrap();
        let hba = "local all all trust\nhostssl all all 127.0.0.1/32 trust\nhostssl all all ::1/128 trust\n";
        std::fs::write(std::path::Path::new(&postgres.data()).join("pg_hba.conf"), hba).unwrap();
        for file in [&certificate, &key] {
            postgres.own(file);
            assert!(Command::new("chmod").arg("600").arg(file).status().unwrap().success());
        }
        postgres.settings =
            format!("-c ssl=on -c ssl_cert_file={} -c ssl_key_file={}", certificate.display(), key.display());
        postgres.start_server();
        postgres
    }

    /// A new cluster, not started.
    fn init() -> PrivatePostgres {
        let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let dir = std::env::temp_dir().join(unique("acq-pg-"));
        std::fs::create_dir(&dir).unwrap();
        let postgres = PrivatePostgres { port, dir, bin: bindir(), settings: String::new() };
        postgres.own(&postgres.dir);
        let data = postgres.data();
        postgres.run("initdb", &["-D", &data, "-U", "postgres", "-A", "trust", "--no-sync", "-E", "UTF8"]);
        postgres
    }

    /// Gives `path` to the server's user (when we are root, the server runs as `postgres`).
    fn own(&self, path: &Path) {
        if as_root() {
            assert!(Command::new("chown").args(["postgres:postgres"]).arg(path).status().unwrap().success());
        }
    }

    /// The server's maintenance database, as `DATABASE_ADMIN_URL` would give it.
    pub fn admin_url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.port)
    }

    /// Kills every process of the server with SIGKILL (the postmaster stopped first, so it
    /// starts no new ones), as a crash would: what sat in its write-ahead log buffers, not yet
    /// written out, is gone. Then starts it again; it recovers from its write-ahead log.
    pub fn crash_and_restart(&self) {
        let pid_file = std::fs::read_to_string(Path::new(&self.data()).join("postmaster.pid")).unwrap();
        let postmaster: u32 = pid_file.lines().next().and_then(|l| l.trim().parse().ok()).unwrap();
        signal("STOP", postmaster);
        let children = Command::new("pgrep").args(["-P", &postmaster.to_string()]).output().unwrap();
        let mut pids: Vec<u32> =
            String::from_utf8_lossy(&children.stdout).split_whitespace().filter_map(|p| p.parse().ok()).collect();
        pids.push(postmaster);
        for &pid in &pids {
            signal("KILL", pid);
        }
        let give_up = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while pids.iter().any(|&pid| alive(pid)) {
            assert!(std::time::Instant::now() < give_up, "Postgres's processes outlived SIGKILL");
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
        // As after a reboot: the dead postmaster's lock files go (where nothing reaps the killed
        // processes, a zombie keeps its PID, and a new postmaster would take it for a live one).
        std::fs::remove_file(Path::new(&self.data()).join("postmaster.pid")).unwrap();
        std::fs::remove_file(self.dir.join(format!(".s.PGSQL.{}.lock", self.port))).unwrap();
        self.start_server();
    }

    /// Stops Postgres's WAL writer (SIGSTOP) until the next crash: a commit that does not wait
    /// for the flush then stays in Postgres's memory until a later commit that waits flushes it,
    /// however long the wait (the WAL writer, left running, writes it out within
    /// `3 × wal_writer_delay`, sooner when woken from hibernation).
    pub async fn hold_wal_writer(&self) {
        let admin = tenants::db::connect(&self.admin_url()).await.unwrap();
        let sql = "SELECT pid FROM pg_stat_activity WHERE backend_type = 'walwriter'";
        let pid: i32 = admin.query_one(sql, &[]).await.unwrap().get(0);
        signal("STOP", pid.unsigned_abs());
    }

    /// Sessions of `database` idle inside a transaction (a leaked transaction holds its locks).
    pub async fn open_transactions(&self, database: &str) -> i64 {
        let admin = tenants::db::connect(&self.admin_url()).await.unwrap();
        let sql = "SELECT count(*) FROM pg_stat_activity WHERE datname = $1 AND state LIKE 'idle in transaction%'";
        admin.query_one(sql, &[&database]).await.unwrap().get(0)
    }

    fn start_server(&self) {
        let options = format!(
            "-p {} -c listen_addresses=127.0.0.1 -c unix_socket_directories={} -c max_connections=200 {}",
            self.port,
            self.dir.display(),
            self.settings
        );
        let log = self.dir.join("server.log");
        let args = ["start", "-D", &self.data(), "-w", "-l", &log.to_string_lossy(), "-o", &options];
        let status = self.program("pg_ctl").args(args).status().expect("Postgres's programs are installed");
        let log = std::fs::read_to_string(&log).unwrap_or_default();
        let tail: Vec<&str> = log.lines().rev().take(8).collect();
        assert!(status.success(), "Postgres did not start; its log ends (last line first): {tail:#?}");
    }

    fn data(&self) -> String {
        self.dir.join("data").to_string_lossy().into_owned()
    }

    /// Runs one of the server's programs; it must succeed.
    fn run(&self, program: &str, args: &[&str]) {
        let status = self.program(program).args(args).status().expect("Postgres's programs are installed");
        assert!(status.success(), "{program} {args:?} failed");
    }

    /// One of the server's programs, run as `postgres` when we are root.
    fn program(&self, program: &str) -> Command {
        let path = self.bin.join(program);
        let mut command = if as_root() {
            let mut command = Command::new("runuser");
            command.args(["-u", "postgres", "--"]).arg(path);
            command
        } else {
            Command::new(path)
        };
        command.stdout(Stdio::null());
        command
    }
}

impl Drop for PrivatePostgres {
    fn drop(&mut self) {
        let _ = self.program("pg_ctl").args(["stop", "-D", &self.data(), "-m", "immediate"]).status();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn signal(name: &str, pid: u32) {
    let _ = Command::new("kill").arg(format!("-{name}")).arg(pid.to_string()).status();
}

/// Whether `pid` runs (a zombie, dead but not yet reaped, does not).
fn alive(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .is_ok_and(|stat| stat.rsplit_once(") ").is_some_and(|(_, rest)| !rest.starts_with('Z')))
}

fn as_root() -> bool {
    Command::new("id").arg("-u").output().is_ok_and(|out| out.stdout.starts_with(b"0\n"))
}

/// Where `initdb` and `pg_ctl` are: `pg_config --bindir`, else the highest version under
/// /usr/lib/postgresql (Debian), else the PATH.
fn bindir() -> PathBuf {
    if let Ok(out) = Command::new("pg_config").arg("--bindir").output()
        && out.status.success()
    {
        let dir = PathBuf::from(String::from_utf8_lossy(&out.stdout).trim());
        if dir.join("initdb").exists() {
            return dir;
        }
    }
    let mut versions: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .map(|entry| entry.path().join("bin"))
        .filter(|bin| bin.join("initdb").exists())
        .collect();
    versions.sort_by_key(|bin| bin.parent().and_then(Path::file_name).and_then(|v| v.to_str()?.parse::<u32>().ok()));
    versions.pop().unwrap_or_default()
}
