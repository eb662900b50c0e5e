//! Asking Alipay where a day's bill is, and downloading it at once (the link works for 30 s):
//! streamed to a file in the account's folder while its SHA-256 is taken, bounded in size and
//! time, synced, then renamed to a name that carries the day and the hash, so a bill that
//! changes is kept beside the one before. A link that has expired (Alipay's CDN then answers
//! `下载超时，请重新下载` instead of a ZIP) is asked for again.

use std::path::{Path, PathBuf};
use std::time::Duration;

use alipay::Outcome;
use alipay::openapi::bill::{BILL_NOT_EXIST, BillDate, BillType};
use alipay::unified::Request;
use aws_lc_rs::digest;
use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioTimer};
use tenants::snapshot::Tenant;
use time::Date;
use tokio::io::AsyncWriteExt;
use upstream::Upstream;

/// What a ZIP file starts with.
const ZIP_MAGIC: &[u8] = b"PK\x03\x04";
/// What Alipay's CDN answers for a link past its 30 s.
const EXPIRED_TEXT: &str = "下载超时";
/// Links asked for again after one expired before its download.
const MAX_RELINKS: usize = 3;

/// The client bills are downloaded with.
pub type DownloadClient = Client<HttpsConnector<HttpConnector>, Empty<Bytes>>;

pub fn client() -> DownloadClient {
    let connector =
        hyper_rustls::HttpsConnectorBuilder::new().with_webpki_roots().https_or_http().enable_http1().build();
    Client::builder(TokioExecutor::new())
        .pool_timer(TokioTimer::new())
        .pool_idle_timeout(Duration::from_secs(30))
        .build(connector)
}

/// A bill kept on disk.
#[derive(Debug, Clone)]
pub struct Kept {
    pub path: PathBuf,
    pub sha256: Vec<u8>,
    pub bytes: u64,
}

/// Why no bill was kept.
#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    /// `isp.bill_not_exist`: not made yet, or nothing happened that day.
    #[error("Alipay has no bill for the day (isp.bill_not_exist)")]
    NotExist,
    #[error("Alipay refused the bill: {0}")]
    Refused(String),
    #[error("Alipay's answer proves nothing: {0}")]
    Unknown(String),
    #[error("the download link expired {0} times in a row")]
    Expired(usize),
    #[error("the download is not a bill: {0}")]
    NotABill(String),
    #[error("download: {0}")]
    Transport(String),
    #[error("the bill is larger than bills_max_file_bytes ({0})")]
    TooLarge(u64),
    #[error("keeping the file: {0}")]
    Disk(#[from] std::io::Error),
}

/// Limits of one download.
#[derive(Debug, Clone, Copy)]
pub struct DownloadLimits {
    pub max_bytes: u64,
    pub timeout: Duration,
}

/// Asks for the trade bill of `day` as `caller` and keeps it in `folder`.
pub async fn fetch_trade_bill(
    upstream: &Upstream,
    client: &DownloadClient,
    caller: &Tenant,
    day: Date,
    folder: &Path,
    limits: DownloadLimits,
) -> Result<Kept, FetchError> {
    let request = Request::BillUrl { bill_type: BillType::Trade, bill_date: BillDate::Day(day) };
    for _ in 0..MAX_RELINKS {
        let answer = upstream.call_for(caller, None, &request).await.map_err(|e| FetchError::Refused(e.to_string()))?;
        let url = match answer.outcome {
            Outcome::Success => answer.facts.bill_download_url.ok_or_else(|| FetchError::Unknown("no link".into()))?,
            Outcome::Failed(failure) if failure.is(BILL_NOT_EXIST) => return Err(FetchError::NotExist),
            Outcome::Failed(failure) => return Err(FetchError::Refused(failure.to_string())),
            Outcome::Unknown(reason) => return Err(FetchError::Unknown(format!("{reason:?}"))),
        };
        match download(client, &url, day, folder, limits).await {
            Err(FetchError::Expired(_)) => {
                metrics::counter!("bill_links_expired_total").increment(1);
                continue;
            }
            done => return done,
        }
    }
    Err(FetchError::Expired(MAX_RELINKS))
}

async fn download(
    client: &DownloadClient,
    url: &str,
    day: Date,
    folder: &Path,
    limits: DownloadLimits,
) -> Result<Kept, FetchError> {
    tokio::fs::create_dir_all(folder).await?;
    let part = folder.join(format!(".{day}.part"));
    let work = async {
        let uri: http::Uri = url.parse().map_err(|_| FetchError::Transport("the link is not a URL".into()))?;
        let request = http::Request::get(uri)
            .header(http::header::USER_AGENT, "acquirer-reconciler")
            .body(Empty::new())
            .map_err(|e| FetchError::Transport(e.to_string()))?;
        let response = client.request(request).await.map_err(|e| FetchError::Transport(e.to_string()))?;
        if response.status() != http::StatusCode::OK {
            return Err(FetchError::Transport(format!("HTTP {}", response.status())));
        }
        let mut body = response.into_body();
        let mut file = tokio::fs::File::create(&part).await?;
        let mut hash = digest::Context::new(&digest::SHA256);
        let mut head = Vec::new();
        let mut bytes = 0u64;
        while let Some(frame) = body.frame().await {
            let frame = frame.map_err(|e| FetchError::Transport(e.to_string()))?;
            let Ok(data) = frame.into_data() else { continue };
            bytes += data.len() as u64;
            if bytes > limits.max_bytes {
                return Err(FetchError::TooLarge(limits.max_bytes));
            }
            if head.len() < 4096 {
                head.extend_from_slice(&data[..data.len().min(4096 - head.len())]);
            }
            hash.update(&data);
            file.write_all(&data).await?;
        }
        if !head.starts_with(ZIP_MAGIC) {
            let text = String::from_utf8_lossy(&head);
            if text.contains(EXPIRED_TEXT) {
                return Err(FetchError::Expired(1));
            }
            return Err(FetchError::NotABill(text.chars().take(80).collect()));
        }
        file.sync_all().await?;
        Ok((hash.finish().as_ref().to_vec(), bytes))
    };
    let outcome = match tokio::time::timeout(limits.timeout, work).await {
        Ok(outcome) => outcome,
        Err(_) => Err(FetchError::Transport(format!("no whole file within {} s", limits.timeout.as_secs()))),
    };
    let (sha256, bytes) = match outcome {
        Ok(done) => done,
        Err(error) => {
            let _ = tokio::fs::remove_file(&part).await;
            return Err(error);
        }
    };
    let hex: String = sha256.iter().take(8).map(|b| format!("{b:02x}")).collect();
    let path = folder.join(format!("{day}-{hex}.csv.zip"));
    tokio::fs::rename(&part, &path).await?;
    Ok(Kept { path, sha256, bytes })
}
