//! The date and time forms the files write, all Beijing time (GMT+8): `2019-09-16 10:55:16` in
//! rows, `2019年09月16日 00:00:00` in the trade bill's comment lines, `2019-09-16` and
//! `20190916` in Global's header line and file names. Read and written by hand: rows hold two
//! each, and this is on the parsing path of every row.

use alipay::time_text::BEIJING;
use time::{Date, Month, OffsetDateTime, PrimitiveDateTime, Time};

fn number(bytes: &[u8]) -> Option<u32> {
    if bytes.is_empty() || !bytes.iter().all(u8::is_ascii_digit) {
        return None;
    }
    Some(bytes.iter().fold(0u32, |n, &b| n * 10 + u32::from(b - b'0')))
}

fn date(year: u32, month: u32, day: u32) -> Option<Date> {
    let month = Month::try_from(u8::try_from(month).ok()?).ok()?;
    Date::from_calendar_date(i32::try_from(year).ok()?, month, u8::try_from(day).ok()?).ok()
}

fn clock(hour: u32, minute: u32, second: u32) -> Option<Time> {
    Time::from_hms(u8::try_from(hour).ok()?, u8::try_from(minute).ok()?, u8::try_from(second).ok()?).ok()
}

/// `HH:mm:ss` at `b` (8 bytes).
fn parse_clock(b: &[u8]) -> Option<Time> {
    if b.len() != 8 || b[2] != b':' || b[5] != b':' {
        return None;
    }
    clock(number(&b[0..2])?, number(&b[3..5])?, number(&b[6..8])?)
}

/// `yyyy-MM-dd`.
pub(crate) fn parse_date(text: &str) -> Option<Date> {
    let b = text.as_bytes();
    if b.len() != 10 || b[4] != b'-' || b[7] != b'-' {
        return None;
    }
    date(number(&b[0..4])?, number(&b[5..7])?, number(&b[8..10])?)
}

/// `yyyy-MM-dd HH:mm:ss`, Beijing time.
pub(crate) fn parse_datetime(text: &str) -> Option<OffsetDateTime> {
    let b = text.as_bytes();
    if b.len() != 19 || b[10] != b' ' {
        return None;
    }
    let day = parse_date(text.get(..10)?)?;
    Some(PrimitiveDateTime::new(day, parse_clock(&b[11..])?).assume_offset(BEIJING))
}

/// `yyyy年MM月dd日 HH:mm:ss`, Beijing time.
pub(crate) fn parse_cn_datetime(text: &str) -> Option<OffsetDateTime> {
    let (year, rest) = text.split_once('年')?;
    let (month, rest) = rest.split_once('月')?;
    let (day, rest) = rest.split_once('日')?;
    let hms = rest.strip_prefix(' ')?;
    if year.len() != 4 || month.len() != 2 || day.len() != 2 {
        return None;
    }
    let day = date(number(year.as_bytes())?, number(month.as_bytes())?, number(day.as_bytes())?)?;
    Some(PrimitiveDateTime::new(day, parse_clock(hms.as_bytes())?).assume_offset(BEIJING))
}

fn push_padded(out: &mut String, value: u32, width: usize) {
    let digits = value.to_string();
    for _ in digits.len()..width {
        out.push('0');
    }
    out.push_str(&digits);
}

/// `at` in Beijing time, if its year has four digits.
fn beijing(at: OffsetDateTime) -> Option<PrimitiveDateTime> {
    let at = at.checked_to_offset(BEIJING)?;
    (0..=9999).contains(&at.year()).then(|| PrimitiveDateTime::new(at.date(), at.time()))
}

fn year(date: Date) -> Option<u32> {
    u32::try_from(date.year()).ok().filter(|y| *y <= 9999)
}

/// Appends `yyyy-MM-dd`; `None` if the year does not have four digits.
pub(crate) fn push_date(out: &mut String, day: Date) -> Option<()> {
    push_padded(out, year(day)?, 4);
    out.push('-');
    push_padded(out, u32::from(u8::from(day.month())), 2);
    out.push('-');
    push_padded(out, u32::from(day.day()), 2);
    Some(())
}

/// Appends `yyyyMMdd`.
pub(crate) fn push_compact_date(out: &mut String, day: Date) -> Option<()> {
    push_padded(out, year(day)?, 4);
    push_padded(out, u32::from(u8::from(day.month())), 2);
    push_padded(out, u32::from(day.day()), 2);
    Some(())
}

fn push_clock(out: &mut String, t: Time) {
    push_padded(out, u32::from(t.hour()), 2);
    out.push(':');
    push_padded(out, u32::from(t.minute()), 2);
    out.push(':');
    push_padded(out, u32::from(t.second()), 2);
}

/// Appends `yyyy-MM-dd HH:mm:ss` in Beijing time (to the second).
pub(crate) fn push_datetime(out: &mut String, at: OffsetDateTime) -> Option<()> {
    let at = beijing(at)?;
    push_date(out, at.date())?;
    out.push(' ');
    push_clock(out, at.time());
    Some(())
}

/// Appends `yyyy年MM月dd日 HH:mm:ss` in Beijing time.
pub(crate) fn push_cn_datetime(out: &mut String, at: OffsetDateTime) -> Option<()> {
    let at = beijing(at)?;
    let day = at.date();
    push_padded(out, year(day)?, 4);
    out.push('年');
    push_padded(out, u32::from(u8::from(day.month())), 2);
    out.push('月');
    push_padded(out, u32::from(day.day()), 2);
    out.push_str("日 ");
    push_clock(out, at.time());
    Some(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_and_writes_each_form() {
        let at = parse_datetime("2019-09-16 10:55:16").unwrap();
        assert_eq!(at.unix_timestamp(), 1_568_602_516);
        let mut out = String::new();
        push_datetime(&mut out, at).unwrap();
        assert_eq!(out, "2019-09-16 10:55:16");

        let midnight = parse_cn_datetime("2019年09月17日 00:00:00").unwrap();
        let mut out = String::new();
        push_cn_datetime(&mut out, midnight).unwrap();
        assert_eq!(out, "2019年09月17日 00:00:00");

        let day = parse_date("2019-09-16").unwrap();
        let mut out = String::new();
        push_compact_date(&mut out, day).unwrap();
        assert_eq!(out, "20190916");
    }

    #[test]
    fn refuses_what_is_not_a_valid_time() {
        for bad in ["2019-02-30 10:00:00", "2019-09-16 24:00:00", "2019-09-16T10:00:00", "2019-9-16 10:00:00", ""] {
            assert_eq!(parse_datetime(bad), None, "{bad:?}");
        }
        assert_eq!(parse_cn_datetime("2019年9月17日 00:00:00"), None);
        assert_eq!(parse_date("+019-01-01"), None);
    }
}
