//! Postgres connections as libpq's `sslmode` means them, over rustls (AWS-LC, as the rest of the
//! workspace), for every connection the services and the CLI make: pools, migrations and the
//! LISTEN connections. One database URL says it all, as for `psql`:
//!
//! | `sslmode` | the connection | the server's certificate |
//! |---|---|---|
//! | `disable` | plain | — |
//! | `prefer` (default) | TLS if the server offers it, else plain | not checked (chain checked if a root certificate is given) |
//! | `require` | TLS or no connection | not checked (chain checked if a root certificate is given, as libpq does) |
//! | `verify-ca` | TLS or no connection | chains to the root certificate |
//! | `verify-full` | TLS or no connection | chains to the root certificate and names the host |
//!
//! The root certificate (PEM, one or more) comes from `sslrootcert=FILE` in the URL, else
//! `PGSSLROOTCERT`, else libpq's default `~/.postgresql/root.crt` when it exists;
//! `sslrootcert=system` trusts the public web roots (webpki-roots) and, as in libpq, goes with
//! `verify-full` only. Client certificates (`sslcert`, `sslkey`) and `sslmode=allow` are refused
//! with a clear error. Errors never repeat the URL (it may hold a password).
//!
//! # Layout
//! - [`mod@self`]: [`Target`] (a URL parsed into tokio-postgres's configuration and a TLS
//!   connector), [`SslMode`], [`connect`], [`Error`].
//! - `params`: the TLS parameters tokio-postgres does not take, taken out of the URL.
//! - `verify`: how the server's certificate is checked in each mode.

mod params;
mod verify;

use std::sync::Arc;

use rustls::client::danger::ServerCertVerifier;
use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;
use rustls::{ClientConfig, RootCertStore};
use tokio_postgres::Socket;
use tokio_postgres::tls::MakeTlsConnect;
use tokio_postgres_rustls::MakeRustlsConnect;

/// The TLS connector every connection uses (also for `sslmode=disable`, where it is not used).
pub type Tls = MakeRustlsConnect;

/// A connection's background half, to be spawned (or polled for notifications).
pub type Connection = tokio_postgres::Connection<Socket, <Tls as MakeTlsConnect<Socket>>::Stream>;

/// libpq's `sslmode` (without `allow`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SslMode {
    Disable,
    Prefer,
    Require,
    VerifyCa,
    VerifyFull,
}

/// A database URL that cannot be used, or a connection that failed.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("invalid database URL: {0}")]
    Url(tokio_postgres::Error),
    #[error("invalid database URL: {0}")]
    Invalid(String),
    #[error("root certificate `{path}`: {reason}")]
    RootCert { path: String, reason: String },
    #[error("TLS set-up: {0}")]
    Tls(String),
    #[error("{}", postgres_error(.0))]
    Postgres(#[from] tokio_postgres::Error),
}

/// tokio-postgres's error with what it keeps in its source (its own text says only `db error`
/// for the server's refusals, and `error performing TLS handshake` for TLS failures).
fn postgres_error(error: &tokio_postgres::Error) -> String {
    match (error.as_db_error(), std::error::Error::source(error)) {
        (Some(db), _) => format!("{}: {}", db.severity(), db.message()),
        (None, Some(cause)) => format!("{error}: {cause}"),
        (None, None) => error.to_string(),
    }
}

/// Where to connect and how: tokio-postgres's configuration and the TLS connector the URL's
/// `sslmode` and root certificate call for.
#[derive(Clone)]
pub struct Target {
    config: tokio_postgres::Config,
    tls: Tls,
    mode: SslMode,
}

impl std::fmt::Debug for Target {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // tokio-postgres's Config hides the password in its Debug.
        f.debug_struct("Target").field("config", &self.config).field("mode", &self.mode).finish_non_exhaustive()
    }
}

impl Target {
    /// Parses a URL (`postgres://…` or `key=value …`) with libpq's TLS parameters; reads the root
    /// certificate file now.
    pub fn parse(url: &str) -> Result<Target, Error> {
        let split = params::split(url);
        if let Some(parameter) = &split.unsupported {
            return Err(Error::Invalid(format!("`{parameter}`: client certificates are not supported")));
        }
        let root = split.sslrootcert.or_else(|| std::env::var("PGSSLROOTCERT").ok()).filter(|r| !r.is_empty());
        let system = root.as_deref() == Some("system");
        let mode = match split.sslmode.as_deref() {
            None if system => SslMode::VerifyFull,
            None | Some("prefer") => SslMode::Prefer,
            Some("disable") => SslMode::Disable,
            Some("require") => SslMode::Require,
            Some("verify-ca") => SslMode::VerifyCa,
            Some("verify-full") => SslMode::VerifyFull,
            Some(other) => {
                let other: String = other.chars().take(20).filter(char::is_ascii_graphic).collect();
                return Err(Error::Invalid(format!(
                    "sslmode `{other}` is not supported: use disable, prefer, require, verify-ca or verify-full"
                )));
            }
        };
        if system && mode != SslMode::VerifyFull {
            return Err(Error::Invalid("sslrootcert=system goes with sslmode=verify-full only (as in libpq)".into()));
        }
        let mut config: tokio_postgres::Config = split.rest.parse().map_err(Error::Url)?;
        config.ssl_mode(match mode {
            SslMode::Disable => tokio_postgres::config::SslMode::Disable,
            SslMode::Prefer => tokio_postgres::config::SslMode::Prefer,
            _ => tokio_postgres::config::SslMode::Require,
        });
        let root = root.or_else(default_root);
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let tls_error = |e: &dyn std::fmt::Display| Error::Tls(e.to_string());
        let verifier: Arc<dyn ServerCertVerifier> = match (mode, root) {
            (SslMode::VerifyCa | SslMode::VerifyFull, None) => {
                return Err(Error::Invalid(
                    "sslmode=verify-ca and verify-full need a root certificate: sslrootcert=FILE in the URL, or \
                     PGSSLROOTCERT"
                        .into(),
                ));
            }
            (SslMode::Disable, _) | (_, None) => Arc::new(verify::EncryptOnly(provider.clone())),
            (SslMode::VerifyFull, Some(root)) => {
                verify::webpki(roots(&root)?, provider.clone()).map_err(|e| tls_error(&e))?
            }
            (_, Some(root)) => {
                Arc::new(verify::ChainOnly(verify::webpki(roots(&root)?, provider.clone()).map_err(|e| tls_error(&e))?))
            }
        };
        let tls = ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| tls_error(&e))?
            .dangerous()
            .with_custom_certificate_verifier(verifier)
            .with_no_client_auth();
        Ok(Target { config, tls: MakeRustlsConnect::new(tls), mode })
    }

    pub fn config(&self) -> &tokio_postgres::Config {
        &self.config
    }

    pub fn config_mut(&mut self) -> &mut tokio_postgres::Config {
        &mut self.config
    }

    /// The TLS connector (cheap to clone: the configuration is shared).
    pub fn tls(&self) -> Tls {
        self.tls.clone()
    }

    pub fn mode(&self) -> SslMode {
        self.mode
    }

    /// Opens one connection; spawn (or poll) the [`Connection`] half.
    pub async fn connect(&self) -> Result<(tokio_postgres::Client, Connection), Error> {
        Ok(self.config.connect(self.tls.clone()).await?)
    }
}

/// Parses `url` and opens one connection.
pub async fn connect(url: &str) -> Result<(tokio_postgres::Client, Connection), Error> {
    Target::parse(url)?.connect().await
}

/// libpq's default root certificate, when the file exists.
fn default_root() -> Option<String> {
    let path = std::path::Path::new(&std::env::var_os("HOME")?).join(".postgresql/root.crt");
    path.is_file().then(|| path.to_string_lossy().into_owned())
}

/// The trusted roots: the certificates in `path` (PEM), or the public web roots for `system`.
fn roots(path: &str) -> Result<RootCertStore, Error> {
    if path == "system" {
        return Ok(RootCertStore { roots: webpki_roots::TLS_SERVER_ROOTS.to_vec() });
    }
    let unusable = |reason: String| Error::RootCert { path: path.to_owned(), reason };
    let certificates = CertificateDer::pem_file_iter(path)
        .map_err(|e| unusable(e.to_string()))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| unusable(e.to_string()))?;
    let mut store = RootCertStore::empty();
    let (added, _) = store.add_parsable_certificates(certificates);
    if added == 0 {
        return Err(unusable("no usable certificate in it".into()));
    }
    Ok(store)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refused(url: &str) -> String {
        Target::parse(url).unwrap_err().to_string()
    }

    #[test]
    fn modes_follow_libpq() {
        let mode = |url: &str| Target::parse(url).unwrap().mode();
        assert_eq!(mode("postgres://db/acq"), SslMode::Prefer);
        assert_eq!(mode("postgres://db/acq?sslmode=disable"), SslMode::Disable);
        assert_eq!(mode("postgres://db/acq?sslmode=require"), SslMode::Require);
        assert_eq!(mode("host=db dbname=acq sslmode=require"), SslMode::Require);
        assert_eq!(mode("postgres://db/acq?sslrootcert=system"), SslMode::VerifyFull);
        let target = Target::parse("postgres://u:secret@db:6432/acq?sslmode=require&application_name=gw").unwrap();
        assert_eq!(target.config().get_ssl_mode(), tokio_postgres::config::SslMode::Require);
        assert_eq!(target.config().get_ports(), [6432]);
        assert_eq!(target.config().get_application_name(), Some("gw"));
        assert!(!format!("{target:?}").contains("secret"), "{target:?}");
    }

    #[test]
    fn what_cannot_work_is_refused_in_one_line_without_the_password() {
        assert!(refused("postgres://u:secret@db/acq?sslmode=verify-full").contains("need a root certificate"));
        assert!(
            refused("postgres://db/acq?sslmode=verify-ca&sslrootcert=/nonexistent/ca.pem").contains("/nonexistent")
        );
        assert!(refused("postgres://db/acq?sslmode=allow").contains("not supported"));
        assert!(refused("postgres://db/acq?sslmode=require&sslrootcert=system").contains("verify-full"));
        assert!(refused("postgres://db/acq?sslmode=require&sslkey=/k.pem").contains("client certificates"));
        let bad = refused("postgres://u:secret@db:notaport/acq");
        assert!(bad.starts_with("invalid database URL") && !bad.contains("secret"), "{bad}");
        let empty = std::env::temp_dir().join(format!("pgtls-empty-{}.pem", std::process::id()));
        std::fs::write(&empty, "not a certificate\n").unwrap();
        let url = format!("postgres://db/acq?sslmode=verify-ca&sslrootcert={}", empty.display());
        assert!(refused(&url).contains("no usable certificate"), "{}", refused(&url));
        std::fs::remove_file(empty).unwrap();
    }
}
