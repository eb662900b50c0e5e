//! Keeping the snapshot fresh: LISTEN `tenants_changed` on a dedicated connection and reload the
//! tenants it names; every `full_reload_every`, and after every reconnect, compare all versions
//! with Postgres and reload what differs (so a notification lost with a connection is not a
//! change lost).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio_postgres::AsyncMessage;
use uuid::Uuid;

use super::{Loader, Snapshots};
use crate::registry::RegistryError;

/// Notifications buffered before the listener falls back to a full comparison.
const NOTIFY_BUFFER: usize = 4096;
/// Most tenants reloaded in one batch.
const MAX_BATCH: usize = 1000;
const MAX_BACKOFF: Duration = Duration::from_secs(10);

#[derive(Debug, Clone)]
pub struct RefreshConfig {
    /// Where to LISTEN (a dedicated connection outside the pool).
    pub database_url: String,
    /// The safety net's period.
    pub full_reload_every: Duration,
}

struct Listener {
    _client: tokio_postgres::Client,
    ids: mpsc::Receiver<Uuid>,
    overflowed: Arc<AtomicBool>,
}

async fn listen(url: &str) -> Result<Listener, pgtls::Error> {
    let (client, mut connection) = pgtls::connect(url).await?;
    let (tx, ids) = mpsc::channel(NOTIFY_BUFFER);
    let overflowed = Arc::new(AtomicBool::new(false));
    let flag = overflowed.clone();
    tokio::spawn(async move {
        loop {
            match std::future::poll_fn(|cx| connection.poll_message(cx)).await {
                Some(Ok(AsyncMessage::Notification(note))) => {
                    if let Ok(id) = note.payload().parse::<Uuid>()
                        && tx.try_send(id).is_err()
                    {
                        flag.store(true, Ordering::Relaxed);
                    }
                }
                Some(Ok(_)) => {}
                Some(Err(error)) => {
                    tracing::warn!(%error, "tenant change listener connection failed");
                    break;
                }
                None => break,
            }
        }
    });
    client.batch_execute("LISTEN tenants_changed").await?;
    Ok(Listener { _client: client, ids, overflowed })
}

/// Loads the snapshot and keeps it fresh in the background. Listening starts before the first
/// load, so no change made in between is missed.
pub async fn start(loader: Loader, config: RefreshConfig) -> Result<(Arc<Snapshots>, JoinHandle<()>), RegistryError> {
    let listener = listen(&config.database_url).await?;
    let snapshots = Arc::new(Snapshots::new(loader.load_all().await?));
    let task = tokio::spawn(run(loader, snapshots.clone(), config, Some(listener)));
    Ok((snapshots, task))
}

async fn run(loader: Loader, snapshots: Arc<Snapshots>, config: RefreshConfig, mut listener: Option<Listener>) {
    let mut safety_net = tokio::time::interval(config.full_reload_every);
    safety_net.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    safety_net.tick().await;
    let mut backoff = Duration::from_millis(100);
    // A comparison with Postgres is owed (after a reconnect, an overflow or a failed reload).
    let mut owed = false;
    loop {
        if owed {
            owed = !sync(&loader, &snapshots).await;
            if owed {
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(MAX_BACKOFF);
                continue;
            }
        }
        let Some(active) = listener.as_mut() else {
            match listen(&config.database_url).await {
                Ok(reconnected) => {
                    tracing::info!("tenant change listener reconnected");
                    listener = Some(reconnected);
                    backoff = Duration::from_millis(100);
                    owed = true;
                }
                Err(error) => {
                    tracing::warn!(%error, ?backoff, "cannot listen for tenant changes; retrying");
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(MAX_BACKOFF);
                }
            }
            continue;
        };
        tokio::select! {
            id = active.ids.recv() => match id {
                Some(id) => {
                    let mut ids = vec![id];
                    while ids.len() < MAX_BATCH {
                        match active.ids.try_recv() {
                            Ok(more) if !ids.contains(&more) => ids.push(more),
                            Ok(_) => {}
                            Err(_) => break,
                        }
                    }
                    owed = active.overflowed.swap(false, Ordering::Relaxed) || !reload(&loader, &snapshots, &ids).await;
                }
                None => listener = None,
            },
            _ = safety_net.tick() => owed = true,
        }
    }
}

/// Reloads `ids`; answers whether it could.
async fn reload(loader: &Loader, snapshots: &Snapshots, ids: &[Uuid]) -> bool {
    match loader.load_some(ids).await {
        Ok(updates) => {
            snapshots.publish(snapshots.current().with_changes(updates));
            true
        }
        Err(error) => {
            tracing::warn!(%error, "tenant reload failed; retrying with a full comparison");
            false
        }
    }
}

/// Reloads every tenant whose version differs from Postgres, and drops the ones gone; answers
/// whether it could.
async fn sync(loader: &Loader, snapshots: &Snapshots) -> bool {
    let stored = match loader.versions().await {
        Ok(versions) => versions,
        Err(error) => {
            tracing::warn!(%error, "tenant version check failed");
            return false;
        }
    };
    let held = snapshots.current().versions();
    let mut ids: Vec<Uuid> = stored.iter().filter(|(id, v)| held.get(id) != Some(v)).map(|(id, _)| *id).collect();
    ids.extend(held.keys().filter(|id| !stored.contains_key(id)));
    for batch in ids.chunks(MAX_BATCH) {
        if !reload(loader, snapshots, batch).await {
            return false;
        }
    }
    true
}
