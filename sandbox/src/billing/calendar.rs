//! Which Beijing days a `bill_date` covers, and whether its bill can be had at a given moment of
//! the bill clock: never for today, the current month or the future (nor before 2016); a day's
//! bill from 09:00 the next day, a month's from 09:00 on the 3rd of the next month
//! (../shared/reference/bills.md §1.1).

use alipay::openapi::bill::BillDate;
use alipay::time_text::BEIJING;
use bills::BillPeriod;
use time::{Date, OffsetDateTime, Time};

/// The earliest day Alipay answers for.
const EARLIEST_YEAR: i32 = 2016;

/// When a bill is made, Beijing time.
const READY_AT: Time = match Time::from_hms(9, 0, 0) {
    Ok(t) => t,
    Err(_) => Time::MIDNIGHT,
};

/// Why a bill cannot be had.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Unavailable {
    /// Today, the current month, the future, or before 2016: `isv.invalid_arguments`.
    #[error("{0}")]
    Invalid(&'static str),
    /// Not made yet: `isp.bill_not_exist`.
    #[error("the bill is not ready yet")]
    NotReady,
}

/// The period `date` names, if its bill is ready at `now` (by the bill clock).
pub fn bill_period(date: BillDate, now: OffsetDateTime) -> Result<BillPeriod, Unavailable> {
    let today = now.to_offset(BEIJING).date();
    match date {
        BillDate::Day(day) => {
            if day.year() < EARLIEST_YEAR {
                return Err(Unavailable::Invalid("bill_date is before 2016-01-01"));
            }
            if day >= today {
                return Err(Unavailable::Invalid("bill_date must be a day before today"));
            }
            let period = BillPeriod::day(day).ok_or(Unavailable::Invalid("bill_date is out of range"))?;
            if now < ready_at(period.end(), 0) {
                return Err(Unavailable::NotReady);
            }
            Ok(period)
        }
        BillDate::Month { year, month } => {
            if year < EARLIEST_YEAR {
                return Err(Unavailable::Invalid("bill_date is before 2016-01"));
            }
            if (year, month as u8) >= (today.year(), today.month() as u8) {
                return Err(Unavailable::Invalid("bill_date must be a month before this one"));
            }
            let period = BillPeriod::month(year, month).ok_or(Unavailable::Invalid("bill_date is out of range"))?;
            // The 3rd of the next month: its first day plus two.
            if now < ready_at(period.end(), 2) {
                return Err(Unavailable::NotReady);
            }
            Ok(period)
        }
    }
}

/// 09:00 Beijing, `days` after `day`.
pub fn ready_at(day: Date, days: i64) -> OffsetDateTime {
    let day = day.checked_add(time::Duration::days(days)).unwrap_or(day);
    day.with_time(READY_AT).assume_offset(BEIJING)
}

/// Whether day `day`'s Global files are made by `now` (from 09:00 the next day, Beijing).
pub fn day_is_complete(day: Date, now: OffsetDateTime) -> bool {
    day.next_day().is_some_and(|next| now >= ready_at(next, 0))
}

#[cfg(test)]
mod tests {
    use time::Month;
    use time::macros::{date, datetime};

    use super::*;

    fn beijing(at: time::PrimitiveDateTime) -> OffsetDateTime {
        at.assume_offset(BEIJING)
    }

    #[test]
    fn a_day_is_ready_from_nine_the_next_morning_and_never_today() {
        let day = BillDate::Day(date!(2026 - 03 - 10));
        assert_eq!(
            bill_period(day, beijing(datetime!(2026-03-10 23:00))),
            Err(Unavailable::Invalid("bill_date must be a day before today"))
        );
        assert_eq!(bill_period(day, beijing(datetime!(2026-03-11 08:59:59))), Err(Unavailable::NotReady));
        assert!(bill_period(day, beijing(datetime!(2026-03-11 09:00))).is_ok());
        // 01:00 UTC on the 11th is 09:00 in Beijing.
        assert!(bill_period(day, datetime!(2026-03-11 01:00 UTC)).is_ok());
        assert!(matches!(
            bill_period(BillDate::Day(date!(2015 - 12 - 31)), beijing(datetime!(2026-03-11 10:00))),
            Err(Unavailable::Invalid(_))
        ));
    }

    #[test]
    fn a_month_is_ready_from_the_third_of_the_next() {
        let month = BillDate::Month { year: 2026, month: Month::February };
        assert!(matches!(bill_period(month, beijing(datetime!(2026-02-28 10:00))), Err(Unavailable::Invalid(_))));
        assert_eq!(bill_period(month, beijing(datetime!(2026-03-03 08:00))), Err(Unavailable::NotReady));
        let period = bill_period(month, beijing(datetime!(2026-03-03 09:00))).unwrap();
        assert!(period.is_monthly());
        assert!(day_is_complete(date!(2026 - 03 - 10), beijing(datetime!(2026-03-11 09:00))));
        assert!(!day_is_complete(date!(2026 - 03 - 10), beijing(datetime!(2026-03-11 08:00))));
    }
}
