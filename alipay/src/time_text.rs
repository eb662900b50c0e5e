//! The time formats Alipay writes, always in Beijing time (GMT+8), as the SDKs do.

use time::macros::{format_description, offset};
use time::{OffsetDateTime, PrimitiveDateTime, UtcOffset};

/// Beijing time.
pub const BEIJING: UtcOffset = offset!(+8);

/// `yyyy-MM-dd HH:mm:ss` (OpenAPI `timestamp`, `gmt_payment`, `notify_time`).
pub fn beijing_datetime(at: OffsetDateTime) -> String {
    let format = format_description!("[year]-[month]-[day] [hour]:[minute]:[second]");
    at.to_offset(BEIJING).format(format).unwrap_or_default()
}

/// `yyyyMMddHHmmss` (MAPI `trans_create_time`, `alipay_pay_time`).
pub fn beijing_compact(at: OffsetDateTime) -> String {
    let format = format_description!("[year][month][day][hour][minute][second]");
    at.to_offset(BEIJING).format(format).unwrap_or_default()
}

/// Parses `yyyy-MM-dd HH:mm:ss` as Beijing time.
pub fn parse_beijing_datetime(text: &str) -> Option<OffsetDateTime> {
    let format = format_description!("[year]-[month]-[day] [hour]:[minute]:[second]");
    PrimitiveDateTime::parse(text, format).ok().map(|t| t.assume_offset(BEIJING))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_in_gmt8() {
        let at = OffsetDateTime::from_unix_timestamp(1_764_036_930).unwrap(); // 2025-11-25 02:15:30 UTC
        assert_eq!(beijing_datetime(at), "2025-11-25 10:15:30");
        assert_eq!(beijing_compact(at), "20251125101530");
        assert_eq!(parse_beijing_datetime("2025-11-25 10:15:30"), Some(at));
        assert_eq!(parse_beijing_datetime("2025-13-25 10:15:30"), None);
    }
}
