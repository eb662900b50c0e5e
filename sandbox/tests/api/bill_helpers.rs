//! What the bill tests share: merchants with a fee rate, the bill clock, bill URL queries in any
//! form, downloads and reading the archives.

use std::io::{Cursor, Read};

use alipay::openapi::bill::{BillDownloadUrlAnswer, BillDownloadUrlQuery};
use alipay::openapi::{Call, Reply};
use alipay::time_text::BEIJING;
use alipay::{Outcome, SignType};
use bills::{BillRow, Summary, TradeBill};
use sandbox::{Dialect, Registration};
use serde::Serialize;
use serde_json::json;
use time::format_description::well_known::Rfc3339;
use time::{Date, OffsetDateTime};

use crate::helpers::*;

/// Re-registers `merchant` with a fee rate (and a PID, for an OpenAPI app).
pub async fn with_fee(merchant: Merchant, fee_rate_bp: u32, pid: Option<&str>) -> Merchant {
    let mut registration = if merchant.id.starts_with("2088") && pid.is_none() {
        Registration::md5(&merchant.id, MD5_KEY)
    } else {
        Registration::rsa(Dialect::Openapi, &merchant.id, SignType::Rsa2, MERCHANT_PUBLIC_B64)
    };
    registration.fee_rate_bp = Some(fee_rate_bp);
    registration.pid = pid.map(str::to_owned);
    let response =
        merchant.http.post(format!("{}/merchants", merchant.hooks)).json(&registration).send().await.unwrap();
    assert_eq!(response.status(), 200, "re-registered");
    merchant
}

/// Today in Beijing.
pub fn today() -> Date {
    OffsetDateTime::now_utc().to_offset(BEIJING).date()
}

/// `day` at `hh:mm` Beijing time.
pub fn beijing(day: Date, hour: u8, minute: u8) -> OffsetDateTime {
    day.with_hms(hour, minute, 0).unwrap().assume_offset(BEIJING)
}

pub async fn set_bill_clock(merchant: &Merchant, at: OffsetDateTime) {
    let (status, answer) = merchant.hook("bills/now", json!({ "now": at.format(&Rfc3339).unwrap() })).await;
    assert_eq!((status.as_u16(), answer["set"].as_bool()), (200, Some(true)), "{answer}");
}

/// A bill URL query whose fields are any text.
#[derive(Serialize)]
pub struct RawBillQuery {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bill_type: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bill_date: Option<String>,
}

impl RawBillQuery {
    pub fn new(bill_type: &str, bill_date: &str) -> Self {
        RawBillQuery { bill_type: Some(bill_type.into()), bill_date: Some(bill_date.into()) }
    }
}

impl Call for RawBillQuery {
    const METHOD: &'static str = BillDownloadUrlQuery::METHOD;
    const RESPONSE_KEY: &'static str = BillDownloadUrlQuery::RESPONSE_KEY;
    type Answer = BillDownloadUrlAnswer;

    fn classify(answer: &BillDownloadUrlAnswer) -> Outcome {
        BillDownloadUrlQuery::classify(answer)
    }
}

/// The sub_code of a signed refusal.
pub fn sub_code(reply: &Reply<BillDownloadUrlAnswer>) -> String {
    let answer = reply.answer.as_ref().expect("a signed answer");
    assert_eq!(answer.code.as_deref(), Some("40004"), "{answer:?}");
    answer.sub_code.clone().unwrap_or_default()
}

/// Asks for the bill of `bill_type` and `bill_date`; answers its link.
pub async fn bill_url(merchant: &Merchant, bill_type: &str, bill_date: &str) -> String {
    let (status, reply) = merchant.call(&RawBillQuery::new(bill_type, bill_date)).await;
    assert_eq!((status.as_u16(), &reply.outcome), (200, &Outcome::Success), "{:?}", reply.answer);
    reply.answer.unwrap().bill_download_url.unwrap()
}

/// Downloads `url`: the content type and the bytes.
pub async fn download(url: &str) -> (String, Vec<u8>) {
    let response = reqwest::get(url).await.unwrap();
    assert_eq!(response.status(), 200);
    let content_type = response.headers()["content-type"].to_str().unwrap().to_owned();
    (content_type, response.bytes().await.unwrap().to_vec())
}

/// Reads a trade bill: its summary and its rows (the footer and summary checked by the reader).
pub fn read_trade_bill(zip: Vec<u8>) -> (Summary, Vec<BillRow>) {
    let mut bill = TradeBill::open(Cursor::new(zip)).expect("a well-formed bill");
    let summary = bill.summary().clone();
    let rows = bill.rows().unwrap().collect::<Result<Vec<_>, _>>().expect("rows that add up to the footer");
    (summary, rows)
}

/// The entries of a bill archive, names and contents GBK-decoded, sorted by name.
pub fn unzip_gbk(zip: Vec<u8>) -> Vec<(String, String)> {
    let mut archive = zip::ZipArchive::new(Cursor::new(zip)).unwrap();
    let mut entries = Vec::new();
    for i in 0..archive.len() {
        let mut entry = archive.by_index(i).unwrap();
        let (name, _, _) = encoding_rs::GBK.decode(entry.name_raw());
        let name = name.into_owned();
        let mut bytes = Vec::new();
        entry.read_to_end(&mut bytes).unwrap();
        let (text, _, bad) = encoding_rs::GBK.decode(&bytes);
        assert!(!bad, "{name} is GBK");
        entries.push((name, text.into_owned()));
    }
    entries.sort();
    entries
}
