//! Whose bill and which days: the account (`<PID>0156`), the Beijing day or month it covers, and
//! the names the archive and its entries take from them.

use std::fmt;
use std::str::FromStr;

use alipay::Partner;
use alipay::time_text::BEIJING;
use time::{Date, Month, OffsetDateTime, Time};

use crate::times;

/// The suffix Alipay puts after the merchant's PID in bill accounts and file names.
const ACCOUNT_SUFFIX: &str = "0156";

/// A bill account, `<PID>0156`: the merchant's PID (the authorising merchant's, in ISV calls)
/// with Alipay's suffix.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Account(Partner);

impl Account {
    pub fn new(partner: Partner) -> Self {
        Account(partner)
    }

    pub fn partner(&self) -> &Partner {
        &self.0
    }
}

impl fmt::Display for Account {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}{ACCOUNT_SUFFIX}", self.0)
    }
}

/// The text is not `<PID>0156`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("a bill account is a 16-digit PID followed by 0156")]
pub struct InvalidAccount;

impl FromStr for Account {
    type Err = InvalidAccount;

    fn from_str(text: &str) -> Result<Self, InvalidAccount> {
        let pid = text.strip_suffix(ACCOUNT_SUFFIX).ok_or(InvalidAccount)?;
        pid.parse().map(Account).map_err(|_| InvalidAccount)
    }
}

/// The days a bill covers: one Beijing day (a daily bill) or one Beijing month (a monthly bill),
/// from midnight to midnight.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct BillPeriod {
    start: Date,
    end: Date,
    monthly: bool,
}

impl BillPeriod {
    /// The daily bill of `day`; `None` past year 9998.
    pub fn day(day: Date) -> Option<Self> {
        Self::checked(day, day.next_day()?, false)
    }

    /// The monthly bill of `month` of `year`; `None` outside years 0 to 9998.
    pub fn month(year: i32, month: Month) -> Option<Self> {
        let start = Date::from_calendar_date(year, month, 1).ok()?;
        let (next_year, next_month) =
            if month == Month::December { (year + 1, Month::January) } else { (year, month.next()) };
        Self::checked(start, Date::from_calendar_date(next_year, next_month, 1).ok()?, true)
    }

    fn checked(start: Date, end: Date, monthly: bool) -> Option<Self> {
        ((0..=9999).contains(&start.year()) && (0..=9999).contains(&end.year())).then_some(BillPeriod {
            start,
            end,
            monthly,
        })
    }

    /// The period a `[start] [end]` window covers, if it is exactly a day or a month.
    pub(crate) fn from_window(start: OffsetDateTime, end: OffsetDateTime) -> Option<Self> {
        let (start, end) = (start.checked_to_offset(BEIJING)?, end.checked_to_offset(BEIJING)?);
        if start.time() != Time::MIDNIGHT || end.time() != Time::MIDNIGHT {
            return None;
        }
        let day = Self::day(start.date()).filter(|p| p.end == end.date());
        day.or_else(|| {
            (start.day() == 1)
                .then(|| Self::month(start.year(), start.month()))
                .flatten()
                .filter(|p| p.end == end.date())
        })
    }

    /// The first day.
    pub fn start(&self) -> Date {
        self.start
    }

    /// The day after the last.
    pub fn end(&self) -> Date {
        self.end
    }

    pub fn is_monthly(&self) -> bool {
        self.monthly
    }

    /// Midnight starting the first day, Beijing time.
    pub fn starts_at(&self) -> OffsetDateTime {
        self.start.midnight().assume_offset(BEIJING)
    }

    /// Midnight ending the last day, Beijing time.
    pub fn ends_at(&self) -> OffsetDateTime {
        self.end.midnight().assume_offset(BEIJING)
    }

    /// `yyyyMMdd` for a day, `yyyyMM` for a month, as file names carry it.
    pub fn stamp(&self) -> String {
        let mut out = String::with_capacity(8);
        // Years are 0..=9999 by construction.
        let _ = times::push_compact_date(&mut out, self.start);
        if self.monthly {
            out.truncate(6);
        }
        out
    }
}

/// Whose bill it is and which days it covers: what the comment lines of both entries state.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct BillHeader {
    pub account: Account,
    pub period: BillPeriod,
}

impl BillHeader {
    /// `<PID>0156_<yyyyMMdd>`, the stem of every name in the bill.
    fn stem(&self) -> String {
        format!("{}_{}", self.account, self.period.stamp())
    }

    /// The archive's name, `<PID>0156_<yyyyMMdd>.csv.zip`.
    pub fn archive_name(&self) -> String {
        format!("{}.csv.zip", self.stem())
    }

    /// The detail entry's name, `<PID>0156_<yyyyMMdd>_业务明细.csv`.
    pub fn detail_entry_name(&self) -> String {
        format!("{}_业务明细.csv", self.stem())
    }

    /// The summary entry's name, `<PID>0156_<yyyyMMdd>_业务明细(汇总).csv` (ASCII parentheses, as
    /// the code that selects it has them).
    pub fn summary_entry_name(&self) -> String {
        format!("{}_业务明细(汇总).csv", self.stem())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::{date, datetime};

    fn header(period: BillPeriod) -> BillHeader {
        BillHeader { account: "20880211096256330156".parse().unwrap(), period }
    }

    #[test]
    fn names_follow_the_account_and_the_day() {
        let day = header(BillPeriod::day(date!(2019 - 09 - 16)).unwrap());
        assert_eq!(day.archive_name(), "20880211096256330156_20190916.csv.zip");
        assert_eq!(day.detail_entry_name(), "20880211096256330156_20190916_业务明细.csv");
        assert_eq!(day.summary_entry_name(), "20880211096256330156_20190916_业务明细(汇总).csv");
        let month = header(BillPeriod::month(2019, Month::December).unwrap());
        assert_eq!(month.archive_name(), "20880211096256330156_201912.csv.zip");
        assert_eq!(month.period.end(), date!(2020 - 01 - 01));
    }

    #[test]
    fn accounts_are_a_pid_and_0156() {
        let account: Account = "20880211096256330156".parse().unwrap();
        assert_eq!(account.partner().as_str(), "2088021109625633");
        assert_eq!(account.to_string(), "20880211096256330156");
        for bad in ["2088021109625633", "20880211096256330157", "1088021109625633 0156", ""] {
            assert_eq!(bad.parse::<Account>(), Err(InvalidAccount), "{bad:?}");
        }
    }

    #[test]
    fn windows_are_a_day_or_a_month() {
        let at = |dt: time::PrimitiveDateTime| dt.assume_offset(BEIJING);
        let day = BillPeriod::from_window(at(datetime!(2019-09-16 0:00)), at(datetime!(2019-09-17 0:00))).unwrap();
        assert!(!day.is_monthly());
        let month = BillPeriod::from_window(at(datetime!(2019-02-01 0:00)), at(datetime!(2019-03-01 0:00))).unwrap();
        assert!(month.is_monthly());
        assert_eq!(BillPeriod::from_window(at(datetime!(2019-09-16 0:00)), at(datetime!(2019-09-18 0:00))), None);
        assert_eq!(BillPeriod::from_window(at(datetime!(2019-09-16 1:00)), at(datetime!(2019-09-17 1:00))), None);
        assert_eq!(BillPeriod::day(date!(9999 - 12 - 31)), None);
    }
}
