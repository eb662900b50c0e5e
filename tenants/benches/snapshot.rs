//! The snapshot at scale: 10,000 tenants (80% RSA2 OpenAPI with their own sealed private key and
//! Alipay's public key, 20% MD5 Global) loaded into memory, timed and weighed; then the time from a
//! `tenants suspend` run by ops to every snapshot seeing it.
//! `cargo bench -p tenants --bench snapshot` (needs the Postgres the tests use).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stdout)]

use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use alipay::test_keys::ALIPAY_PUBLIC;
use alipay::{PrivateKey, SignType};
use tenants::model::{AlipayIdentity, Dialect, Environment, Limits, NewTenant, Status};
use tenants::registry::{AppKeySource, KeyInput};
use tenants::snapshot::{Loader, RefreshConfig};
use tenants::{Keyring, Registry};
use zeroize::Zeroizing;

const TENANTS: usize = 10_000;
const DISTINCT_RSA_KEYS: usize = 32;

/// Bytes allocated with malloc right now, Rust's and AWS-LC's alike (glibc's own count).
fn heap_bytes() -> u64 {
    // SAFETY: mallinfo2 only reads the allocator's counters.
    #[allow(unsafe_code)]
    let info = unsafe { libc::mallinfo2() };
    (info.uordblks + info.hblkhd) as u64
}

fn main() {
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap();
    runtime.block_on(run());
}

async fn run() {
    let admin_url =
        std::env::var("DATABASE_ADMIN_URL").unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into());
    let name = format!("tenants_bench_{}", std::process::id());
    let admin = tenants::db::connect(&admin_url).await.unwrap();
    admin.batch_execute(&format!("CREATE DATABASE {name}")).await.unwrap();
    let url = admin_url.rsplit_once('/').map(|(base, _)| format!("{base}/{name}")).unwrap();
    tenants::db::migrate(&url).await.unwrap();
    let master = Keyring::generate_line("k1").unwrap();
    let ring = Arc::new(Keyring::parse(&master).unwrap());
    let registry = Registry::new(tenants::db::pool(&url, 8).unwrap(), Some(ring.clone()));

    let keys: Vec<Arc<String>> = (0..DISTINCT_RSA_KEYS)
        .map(|_| Arc::new(PrivateKey::generate().unwrap().to_pkcs8_pem().unwrap().to_string()))
        .collect();
    let seeding = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..TENANTS {
        let registry = registry.clone();
        let key = keys[i % DISTINCT_RSA_KEYS].clone();
        tasks.spawn(async move {
            let md5 = i % 5 == 0;
            let identity = if md5 {
                AlipayIdentity::new(Dialect::Mapi, &format!("2088{i:012}"), None, SignType::Md5).unwrap()
            } else {
                AlipayIdentity::new(Dialect::Openapi, &format!("2021{i:012}"), None, SignType::Rsa2).unwrap()
            };
            let tenant = NewTenant {
                slug: format!("tenant-{i}").parse().unwrap(),
                name: format!("Restaurant {i}"),
                identity,
                environment: Environment::Production,
                limits: Limits::default(),
                webhook_url: None,
                secondary_merchant: None,
            };
            let keys = if md5 {
                KeyInput { md5_key: Some(Zeroizing::new(format!("md5key{i:026}"))), ..KeyInput::default() }
            } else {
                KeyInput {
                    app_private_key: Some(AppKeySource::Text(Zeroizing::new(key.to_string()))),
                    alipay_public_key: Some(ALIPAY_PUBLIC.into()),
                    ..KeyInput::default()
                }
            };
            registry.create("bench", tenant, keys).await.unwrap();
        });
        while tasks.len() >= 16 {
            tasks.join_next().await;
        }
    }
    while tasks.join_next().await.is_some() {}
    println!("seeded {TENANTS} tenants in {:.1} s", seeding.elapsed().as_secs_f64());

    let loader = Loader::new(tenants::db::pool(&url, 4).unwrap(), ring.clone());
    let mut samples = Vec::new();
    for _ in 0..3 {
        let heap_before = heap_bytes();
        let started = Instant::now();
        let snapshot = loader.load_all().await.unwrap();
        let took = started.elapsed();
        let heap_after = heap_bytes();
        assert_eq!(snapshot.len(), TENANTS);
        assert!(snapshot.tenants().all(|t| t.is_ready()));
        samples.push((took, heap_after.saturating_sub(heap_before)));
        drop(snapshot);
    }
    for (took, bytes) in &samples {
        println!(
            "load {TENANTS} tenants: {:.0} ms, snapshot holds {:.1} MiB of heap",
            took.as_secs_f64() * 1000.0,
            *bytes as f64 / (1024.0 * 1024.0)
        );
    }

    let config = RefreshConfig { database_url: url.clone(), full_reload_every: Duration::from_secs(60) };
    let (snapshots, task) = tenants::snapshot::start(loader.clone(), config).await.unwrap();
    let mut latencies = Vec::new();
    for round in 0..20 {
        let (command, wanted) =
            if round % 2 == 0 { ("suspend", Status::Suspended) } else { ("resume", Status::Active) };
        let mut changes = snapshots.subscribe();
        let started = Instant::now();
        let status = Command::new(env!("CARGO_BIN_EXE_tenants"))
            .args([command, "tenant-42"])
            .env("DATABASE_URL", &url)
            .env("ACQ_MASTER_KEYS", master.as_str())
            .stdout(std::process::Stdio::null())
            .status()
            .unwrap();
        assert!(status.success());
        let cli_done = started.elapsed();
        while snapshots.current().by_slug("tenant-42").map(|t| t.status) != Some(wanted) {
            tokio::time::timeout(Duration::from_secs(5), changes.changed()).await.unwrap().unwrap();
        }
        latencies.push((started.elapsed(), cli_done));
    }
    latencies.sort();
    let median = latencies[latencies.len() / 2];
    let worst = latencies[latencies.len() - 1];
    println!(
        "`tenants suspend|resume` → snapshot: median {:.1} ms (the CLI run itself {:.1} ms), worst {:.1} ms",
        median.0.as_secs_f64() * 1000.0,
        median.1.as_secs_f64() * 1000.0,
        worst.0.as_secs_f64() * 1000.0
    );
    task.abort();
    drop(registry);
    drop(loader);
    drop(snapshots);
    admin.batch_execute(&format!("DROP DATABASE {name} WITH (FORCE)")).await.unwrap();
}
