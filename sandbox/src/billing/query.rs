//! `alipay.data.dataservice.bill.downloadurl.query` and `GET /downloadBillFile.resource`: the
//! bill is built from the trade state when the link is issued and kept with its token, so a
//! download is exactly the file of that moment. A dead or unknown token gets what Alipay's CDN
//! answers: HTTP 200, `下载超时，请重新下载`.

use alipay::openapi::Status;
use alipay::openapi::bill::{BILL_NOT_EXIST, BillDate, BillDownloadUrlAnswer, BillType, INVALID_ARGUMENTS};
use bytes::Bytes;
use http::StatusCode;
use serde_json::{Map, Value};
use time::OffsetDateTime;

use crate::app::{Answer, App};
use crate::billing::calendar::{Unavailable, bill_period};
use crate::billing::movements::{Window, movements, trades_of};
use crate::billing::{account_bill, trade_bill};
use crate::merchants::Merchant;

/// The download endpoint's path.
pub const DOWNLOAD_PATH: &str = "/downloadBillFile.resource";
/// What a dead link answers.
pub const TIMED_OUT: &str = "下载超时，请重新下载";

fn invalid(message: &str) -> BillDownloadUrlAnswer {
    BillDownloadUrlAnswer::failed(INVALID_ARGUMENTS, message)
}

fn not_exist() -> BillDownloadUrlAnswer {
    BillDownloadUrlAnswer::failed(BILL_NOT_EXIST, "账单不存在")
}

/// Answers the bill URL query of `merchant` (`biz` is its `biz_content`, or why it is none).
pub fn bill_url(app: &App, merchant: &Merchant, biz: Result<Map<String, Value>, Status>) -> BillDownloadUrlAnswer {
    let Ok(biz) = biz else { return invalid("biz_content must be a JSON object") };
    let text = |field: &str| biz.get(field).and_then(Value::as_str);
    let bill_type = match text("bill_type") {
        Some("trade") => BillType::Trade,
        Some("signcustomer") => BillType::Signcustomer,
        _ => return invalid("bill_type must be trade or signcustomer"),
    };
    let Some(date) = text("bill_date").and_then(|d| d.parse::<BillDate>().ok()) else {
        return invalid("bill_date must be yyyy-MM-dd or yyyy-MM");
    };
    let now = app.billing.now();
    let period = match bill_period(date, now) {
        Ok(period) => period,
        Err(Unavailable::Invalid(message)) => return invalid(message),
        Err(Unavailable::NotReady) => return not_exist(),
    };
    let window = Window { from: period.starts_at(), to: period.ends_at() };
    let trades = trades_of(&app.ledger, &merchant.id, window);
    let moved = movements(&trades, &app.billing.overrides, window);
    let (file, name) = match bill_type {
        BillType::Trade => (
            trade_bill::write(&merchant.pid, period, merchant.fee_rate, &moved, now),
            trade_bill::header(&merchant.pid, period).archive_name(),
        ),
        BillType::Signcustomer => (
            account_bill::write(&merchant.pid, period, merchant.fee_rate, &moved, now),
            account_bill::archive_name(&merchant.pid, period),
        ),
    };
    let file = match file {
        Ok(Some(file)) => file,
        Ok(None) => return not_exist(),
        Err(error) => {
            tracing::warn!(%error, merchant = %merchant.id, "bill not written");
            return BillDownloadUrlAnswer {
                code: Some("20000".into()),
                msg: Some("Service Currently Unavailable".into()),
                sub_code: Some("isp.unknow-error".into()),
                sub_msg: Some("系统繁忙".into()),
                bill_download_url: None,
            };
        }
    };
    let token = app.billing.links.issue(Bytes::from(file));
    let biz_type = if bill_type == BillType::Trade { "trade" } else { "fnd" };
    let url = format!(
        "http://{}{DOWNLOAD_PATH}?bizType={biz_type}&userId={}0156&fileType=csv.zip&bizDates={}&downloadFileName={name}&fileId={}&timestamp={}&token={token}",
        app.addr,
        merchant.pid,
        period.stamp(),
        rand::random::<u64>() % 10_000_000_000_000,
        OffsetDateTime::now_utc().unix_timestamp_nanos() / 1_000_000,
    );
    BillDownloadUrlAnswer::url(url)
}

/// `GET /downloadBillFile.resource?...&token=...`.
pub fn download(app: &App, query: Option<&str>) -> Answer {
    let token = query.unwrap_or("").split('&').find_map(|pair| pair.strip_prefix("token="));
    match token.and_then(|token| app.billing.links.fetch(token)) {
        Some(file) => Answer::text(StatusCode::OK, "application/zip", file),
        None => Answer::text(StatusCode::OK, "text/plain;charset=utf-8", TIMED_OUT),
    }
}
