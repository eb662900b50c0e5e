//! A fresh database per stack: created and migrated at start, dropped (with its connections)
//! afterwards.

use crate::unique;

/// The server's maintenance database (`DATABASE_ADMIN_URL`; `scripts/test` sets it).
pub fn admin_url() -> String {
    std::env::var("DATABASE_ADMIN_URL").unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into())
}

pub struct Database {
    pub name: String,
    pub url: String,
    /// The server's maintenance database, where it was created (and is dropped).
    admin_url: String,
}

impl Database {
    /// A fresh database on the machine's Postgres ([`admin_url`]).
    pub async fn new() -> Database {
        Database::on(&admin_url()).await
    }

    /// A fresh database on the server whose maintenance database is `admin_url`.
    pub async fn on(admin_url: &str) -> Database {
        let name = unique("stack_");
        let admin = tenants::db::connect(admin_url).await.expect("Postgres is reachable (scripts/test starts it)");
        admin.batch_execute(&format!("CREATE DATABASE {name}")).await.unwrap();
        // The same server and parameters (`?sslmode=…`), another database.
        let (server, query) = admin_url.split_once('?').map_or((admin_url, ""), |(s, q)| (s, q));
        let url = server.rsplit_once('/').map(|(base, _)| format!("{base}/{name}")).unwrap();
        let url = if query.is_empty() { url } else { format!("{url}?{query}") };
        tenants::db::migrate(&url).await.unwrap();
        ledger::store::migrate(&url).await.unwrap();
        Database { name, url, admin_url: admin_url.to_owned() }
    }

    /// A pool of up to 16 connections to it.
    pub fn pool(&self) -> deadpool_postgres::Pool {
        tenants::db::pool(&self.url, 16).unwrap()
    }

    pub async fn client(&self) -> tokio_postgres::Client {
        tenants::db::connect(&self.url).await.unwrap()
    }
}

impl Drop for Database {
    fn drop(&mut self) {
        let (name, admin_url) = (self.name.clone(), self.admin_url.clone());
        let _ = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
            runtime.block_on(async {
                if let Ok(admin) = tenants::db::connect(&admin_url).await {
                    let _ = admin.batch_execute(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)")).await;
                }
            });
        })
        .join();
    }
}
