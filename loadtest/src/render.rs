//! Reports as text: a run ([`Report`](crate::report::Report)) as a Markdown section and as an SVG
//! chart of its timeline, and a bench ([`BenchReport`](crate::report::BenchReport)) as the whole
//! `BENCHMARKS.md`. Pure functions, data in and text out, with no I/O; every figure renders,
//! NaN and infinite ones as 0, and nothing panics.
//!
//! # Layout
//! - [`mod@self`]: number formatting shared by both.
//! - `markdown`: [`run_markdown`], [`bench_markdown`] and [`slug`] (a run's chart file name).
//! - `svg`: [`chart_svg`].

mod markdown;
mod svg;

pub use markdown::{bench_markdown, run_markdown, slug};
pub use svg::chart_svg;

/// `x`, or 0 when it is NaN or infinite, so a broken figure reads as 0 rather than "NaN".
fn finite(x: f64) -> f64 {
    if x.is_finite() { x } else { 0.0 }
}

/// A count with thousands separators: 12345 → "12,345".
fn count(n: u64) -> String {
    group_thousands(&n.to_string())
}

/// `x` rounded to `places` decimals, with thousands separators: (12345.67, 1) → "12,345.7".
fn decimal(x: f64, places: usize) -> String {
    let text = format!("{:.*}", places, finite(x));
    let (sign, unsigned) = match text.strip_prefix('-') {
        Some(rest) => ("-", rest),
        None => ("", text.as_str()),
    };
    match unsigned.split_once('.') {
        Some((whole, fraction)) => format!("{sign}{}.{fraction}", group_thousands(whole)),
        None => format!("{sign}{}", group_thousands(unsigned)),
    }
}

/// Milliseconds: two decimals below 10 ms, one from there up ("0.42", "12.3", "1,234.5").
fn ms(x: f64) -> String {
    decimal(x, if finite(x).abs() < 10.0 { 2 } else { 1 })
}

/// Requests per second: whole numbers above 100 ("2,346"), one decimal below ("42.5").
fn rps(x: f64) -> String {
    decimal(x, if finite(x).abs() > 100.0 { 0 } else { 1 })
}

/// A run of ASCII digits with a comma before every group of three from the right.
fn group_thousands(digits: &str) -> String {
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, digit) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(digit);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_have_thousands_separators() {
        assert_eq!(count(0), "0");
        assert_eq!(count(999), "999");
        assert_eq!(count(1_000), "1,000");
        assert_eq!(count(12_345), "12,345");
        assert_eq!(count(1_234_567), "1,234,567");
    }

    #[test]
    fn decimals_round_and_group() {
        assert_eq!(decimal(12_345.67, 1), "12,345.7");
        assert_eq!(decimal(-1_234.4, 0), "-1,234");
        assert_eq!(decimal(f64::NAN, 2), "0.00");
        assert_eq!(decimal(f64::INFINITY, 0), "0");
    }

    #[test]
    fn milliseconds_keep_one_or_two_decimals() {
        assert_eq!(ms(0.4213), "0.42");
        assert_eq!(ms(9.5), "9.50");
        assert_eq!(ms(12.34), "12.3");
        assert_eq!(ms(1_234.56), "1,234.6");
    }

    #[test]
    fn throughput_drops_decimals_above_100() {
        assert_eq!(rps(2_345.6), "2,346");
        assert_eq!(rps(42.46), "42.5");
    }
}
