//! Announcing that trades became final, to every process that waits on them (the gateways'
//! `?wait=`): their keys, gathered for as long as one NOTIFY takes, go out as one `NOTIFY
//! trade_settled` (keys separated by newlines). In Postgres a transaction that notifies holds a
//! global lock through its commit, so a NOTIFY per settlement caps settlements near 3,000/s on
//! this machine; batched, they cost next to nothing. An announcement is a hint: waiters also
//! re-read the trade on their own now and then, so one lost in a crash delays, never strands.

use deadpool_postgres::Pool;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use crate::trade::TradeKey;

/// Postgres refuses NOTIFY payloads of 8,000 bytes or more.
const MAX_PAYLOAD: usize = 7_900;
/// Keys queued at most; past it an announcement is dropped (and counted).
const QUEUE: usize = 16 * 1024;

/// Queues announcements; cheap to clone.
#[derive(Clone)]
pub struct Announcer {
    queue: mpsc::Sender<TradeKey>,
}

impl Announcer {
    /// Starts the task that sends the announcements over `pool`.
    pub fn start(pool: Pool) -> (Announcer, JoinHandle<()>) {
        let (queue, receiver) = mpsc::channel(QUEUE);
        (Announcer { queue }, tokio::spawn(run(pool, receiver)))
    }

    /// Announces that `key` became final (never waits).
    pub fn announce(&self, key: &TradeKey) {
        if self.queue.try_send(key.clone()).is_err() {
            metrics::counter!("ledger_announcements_dropped_total").increment(1);
        }
    }
}

async fn run(pool: Pool, mut receiver: mpsc::Receiver<TradeKey>) {
    let mut carried: Option<String> = None;
    while let Some(first) = match carried.take() {
        Some(member) => Some(member),
        None => receiver.recv().await.map(|key| key.encode()),
    } {
        let mut payload = first;
        while let Ok(key) = receiver.try_recv() {
            let member = key.encode();
            if payload.len() + 1 + member.len() > MAX_PAYLOAD {
                carried = Some(member);
                break;
            }
            payload.push('\n');
            payload.push_str(&member);
        }
        let client = match pool.get().await {
            Ok(client) => client,
            Err(error) => {
                tracing::warn!(%error, "settlements not announced: no database connection");
                continue;
            }
        };
        if let Err(error) = notify(&client, &payload).await {
            tracing::warn!(%error, "settlements not announced");
        }
    }
}

/// One `NOTIFY trade_settled`, over a statement prepared once per connection (a bare string
/// would be parsed in a round trip of its own).
async fn notify(client: &deadpool_postgres::Client, payload: &str) -> Result<(), tokio_postgres::Error> {
    let statement = client.prepare_cached("SELECT pg_notify('trade_settled', $1)").await?;
    client.execute(&statement, &[&payload]).await?;
    Ok(())
}
