//! `alipay.data.dataservice.bill.downloadurl.query`: where to download a day's or a month's bill.
//!
//! The answer carries only `bill_download_url`, a link that stops working 30 s after it is
//! issued. A day with nothing (or whose bill is not made yet) is refused with
//! `isp.bill_not_exist`; today, the current month and the future with `isv.invalid_arguments`
//! (../shared/reference/bills.md §1.1, §1.6).

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_with::skip_serializing_none;
use time::{Date, Month};

use super::{Call, Status};
use crate::outcome::{Outcome, UnknownReason};

/// The sub-code of a bill that does not exist (yet, or at all: a day with nothing).
pub const BILL_NOT_EXIST: &str = "isp.bill_not_exist";
/// The sub-code of a date Alipay will not answer for (today, the current month, the future, a
/// malformed date).
pub const INVALID_ARGUMENTS: &str = "isv.invalid_arguments";

/// Which bill.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum BillType {
    /// The business bill of acquiring transactions (`业务明细`).
    Trade,
    /// The accounting bill of balance income and expense (`账务明细`).
    Signcustomer,
}

impl BillType {
    pub const fn as_str(self) -> &'static str {
        match self {
            BillType::Trade => "trade",
            BillType::Signcustomer => "signcustomer",
        }
    }
}

/// `bill_date`: `yyyy-MM-dd` for a daily bill, `yyyy-MM` for a monthly one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum BillDate {
    Day(Date),
    Month { year: i32, month: Month },
}

/// A `bill_date` that is neither `yyyy-MM-dd` nor `yyyy-MM`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("bill_date must be yyyy-MM-dd or yyyy-MM")]
pub struct InvalidBillDate;

impl FromStr for BillDate {
    type Err = InvalidBillDate;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let digits = |s: &str, n: usize| s.len() == n && s.bytes().all(|b| b.is_ascii_digit());
        let parts: Vec<&str> = text.split('-').collect();
        let (year, month) = match parts.as_slice() {
            [y, m] | [y, m, _] if digits(y, 4) && digits(m, 2) => (y.parse::<i32>(), m.parse::<u8>()),
            _ => return Err(InvalidBillDate),
        };
        let year = year.map_err(|_| InvalidBillDate)?;
        let month = month.ok().and_then(|m| Month::try_from(m).ok()).ok_or(InvalidBillDate)?;
        match parts.as_slice() {
            [_, _] => Ok(BillDate::Month { year, month }),
            [_, _, d] if digits(d, 2) => {
                let day = d.parse::<u8>().map_err(|_| InvalidBillDate)?;
                Date::from_calendar_date(year, month, day).map(BillDate::Day).map_err(|_| InvalidBillDate)
            }
            _ => Err(InvalidBillDate),
        }
    }
}

impl fmt::Display for BillDate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BillDate::Day(day) => write!(f, "{:04}-{:02}-{:02}", day.year(), u8::from(day.month()), day.day()),
            BillDate::Month { year, month } => write!(f, "{year:04}-{:02}", u8::from(*month)),
        }
    }
}

impl Serialize for BillDate {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for BillDate {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

/// The request's `biz_content`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BillDownloadUrlQuery {
    pub bill_type: BillType,
    pub bill_date: BillDate,
}

#[skip_serializing_none]
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct BillDownloadUrlAnswer {
    pub code: Option<String>,
    pub msg: Option<String>,
    pub sub_code: Option<String>,
    pub sub_msg: Option<String>,
    pub bill_download_url: Option<String>,
}

impl BillDownloadUrlAnswer {
    pub fn url(url: impl Into<String>) -> Self {
        BillDownloadUrlAnswer {
            code: Some("10000".into()),
            msg: Some("Success".into()),
            bill_download_url: Some(url.into()),
            ..Self::default()
        }
    }

    /// A refusal: `40004` with `sub_code` and its text.
    pub fn failed(sub_code: &str, sub_msg: &str) -> Self {
        BillDownloadUrlAnswer {
            code: Some("40004".into()),
            msg: Some("Business Failed".into()),
            sub_code: Some(sub_code.into()),
            sub_msg: Some(sub_msg.into()),
            bill_download_url: None,
        }
    }
}

impl Call for BillDownloadUrlQuery {
    const METHOD: &'static str = "alipay.data.dataservice.bill.downloadurl.query";
    const RESPONSE_KEY: &'static str = "alipay_data_dataservice_bill_downloadurl_query_response";
    type Answer = BillDownloadUrlAnswer;

    fn classify(answer: &BillDownloadUrlAnswer) -> Outcome {
        let Some(code) = &answer.code else { return Outcome::Unknown(UnknownReason::Unreadable) };
        let status = Status {
            code: code.clone(),
            msg: answer.msg.clone().unwrap_or_default(),
            sub_code: answer.sub_code.clone(),
            sub_msg: answer.sub_msg.clone(),
        };
        match status.classify() {
            // A success without a link proves nothing.
            Outcome::Success if answer.bill_download_url.is_none() => Outcome::Unknown(UnknownReason::Unreadable),
            outcome => outcome,
        }
    }
}

#[cfg(test)]
mod tests {
    use time::macros::date;

    use super::*;

    #[test]
    fn bill_dates_read_and_write_both_forms_and_refuse_the_rest() {
        assert_eq!("2026-12-04".parse(), Ok(BillDate::Day(date!(2026 - 12 - 04))));
        assert_eq!("2026-02".parse(), Ok(BillDate::Month { year: 2026, month: Month::February }));
        for bad in ["2026-02-30", "2026-13", "26-01-01", "2026-1-01", "2026/01/01", "", "2026-01-01-01", "２０２６-01"]
        {
            assert_eq!(bad.parse::<BillDate>(), Err(InvalidBillDate), "{bad}");
        }
        assert_eq!(BillDate::Day(date!(2026 - 01 - 05)).to_string(), "2026-01-05");
        assert_eq!(BillDate::Month { year: 2026, month: Month::March }.to_string(), "2026-03");
        let query =
            BillDownloadUrlQuery { bill_type: BillType::Trade, bill_date: BillDate::Day(date!(2026 - 01 - 05)) };
        assert_eq!(serde_json::to_string(&query).unwrap(), r#"{"bill_type":"trade","bill_date":"2026-01-05"}"#);
    }

    #[test]
    fn not_exist_is_a_proven_refusal_and_a_link_less_success_proves_nothing() {
        let refused = BillDownloadUrlQuery::classify(&BillDownloadUrlAnswer::failed(BILL_NOT_EXIST, "账单不存在"));
        assert!(matches!(refused, Outcome::Failed(f) if f.is(BILL_NOT_EXIST)));
        let mut empty = BillDownloadUrlAnswer::url("x");
        empty.bill_download_url = None;
        assert_eq!(BillDownloadUrlQuery::classify(&empty), Outcome::Unknown(UnknownReason::Unreadable));
        assert_eq!(BillDownloadUrlQuery::classify(&BillDownloadUrlAnswer::url("http://x/y")), Outcome::Success);
    }
}
