//! Postgres over TLS: with a server of the test's own that refuses plain connections (`hostssl`
//! only), `sslmode=require` works for the pool, the migrations, the registry and the snapshot's
//! LISTEN connection; the verifying modes check the certificate as libpq does.

use std::time::Duration;

use stack::{PrivatePostgres, TestPki};
use tenants::snapshot::{Loader, RefreshConfig};

use crate::helpers::*;

async fn on_tls(client: &tokio_postgres::Client) -> bool {
    client.query_one("SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()", &[]).await.unwrap().get(0)
}

#[tokio::test]
async fn sslmode_require_works_for_every_connection_and_means_tls() {
    let pki = TestPki::new(&["localhost"]);
    let server = PrivatePostgres::start_tls_only(&pki.server_certificate, &pki.server_key);
    let base = format!("postgres://postgres@127.0.0.1:{}/postgres", server.port);

    // The server takes no plain connection: what connects below spoke TLS.
    let plain = tenants::db::connect(&format!("{base}?sslmode=disable")).await.expect_err("refused");
    assert!(
        plain.to_string().contains("no pg_hba.conf entry") && plain.to_string().contains("no encryption"),
        "{plain}"
    );

    // Migrations (tenants and ledger), then a pool, the registry and the snapshot's listener.
    let db = TestDb::on(&format!("{base}?sslmode=require")).await;
    assert!(db.url.ends_with("?sslmode=require"), "{}", db.url);
    let pool = db.pool();
    assert!(on_tls(&pool.get().await.unwrap()).await, "the pool's connections use TLS");
    let ring = keyring(&[&master_key("k1")]);
    let registry = registry(&db, &ring);
    registry.create("ops:test", openapi_tenant("noodle-bar"), rsa_keys()).await.unwrap();
    let config = RefreshConfig { database_url: db.url.clone(), full_reload_every: Duration::from_secs(60) };
    let (snapshots, task) = tenants::snapshot::start(Loader::new(db.pool(), ring), config).await.unwrap();
    let mut changes = snapshots.subscribe();
    registry.create("ops:test", mapi_tenant("burger-town"), md5_keys()).await.unwrap();
    while snapshots.current().by_slug("burger-town").is_none() {
        tokio::time::timeout(Duration::from_secs(10), changes.changed()).await.unwrap().unwrap();
    }
    task.abort();

    // The verifying modes, against the authority that signed the certificate (for `localhost`).
    let url = |host: &str, mode: &str, root: &std::path::Path| {
        format!("postgres://postgres@{host}:{}/postgres?sslmode={mode}&sslrootcert={}", server.port, root.display())
    };
    for (host, mode, root, works) in [
        ("127.0.0.1", "verify-ca", &pki.ca_file, true),
        ("127.0.0.1", "verify-ca", &pki.other_ca_file, false),
        ("localhost", "verify-full", &pki.ca_file, true),
        ("127.0.0.1", "verify-full", &pki.ca_file, false),
        ("localhost", "verify-full", &pki.other_ca_file, false),
        ("127.0.0.1", "require", &pki.other_ca_file, false),
    ] {
        let connected = tenants::db::connect(&url(host, mode, root)).await;
        match connected {
            Ok(client) => assert!(works && on_tls(&client).await, "{host} {mode} {}: connected", root.display()),
            Err(error) => {
                assert!(!works, "{host} {mode} {}: {error}", root.display());
                assert!(error.to_string().contains("invalid peer certificate"), "{error}");
            }
        }
    }
}
