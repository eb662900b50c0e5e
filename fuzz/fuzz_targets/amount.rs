//! Any text as an amount, in every currency: `Amount::parse` and `parse_positive` never panic,
//! and whatever they accept is a plain decimal in range that formats back to itself.

#![no_main]

use alipay::money::MAX_MAJOR_UNITS;
use alipay::{Amount, Currency, Decimal, MoneyError};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let decimal = text.parse::<Decimal>();
    if let Ok(d) = decimal {
        // The looser reading of answers round-trips too.
        assert_eq!(d.to_string().parse::<Decimal>(), Ok(d), "{text:?}");
    }
    for &currency in Currency::ALL {
        check(text, currency, decimal);
    }
});

fn check(text: &str, currency: Currency, decimal: Result<Decimal, MoneyError>) {
    let exp = usize::from(currency.exponent());
    let parsed = Amount::parse(text, currency);
    let positive = Amount::parse_positive(text, currency);
    match parsed {
        Ok(a) if a.is_zero() => assert_eq!(positive, Err(MoneyError::NotPositive), "{text:?} {currency}"),
        other => assert_eq!(positive, other, "{text:?} {currency}"),
    }
    if let Ok(p) = positive {
        assert!(p.minor() > 0, "{text:?} {currency}");
    }
    let Ok(a) = parsed else {
        return;
    };
    assert_eq!(a.currency(), currency);
    assert_eq!(a.is_zero(), a.minor() == 0);
    let unit = 10u64.pow(u32::from(currency.exponent()));
    assert!(a.minor() <= MAX_MAJOR_UNITS * unit, "{text:?} {currency}: above the maximum");
    assert_eq!(Amount::from_minor(a.minor(), currency), Ok(a));

    // Strict: digits, at most one `.`, no more decimals than the currency has, no leading zero.
    let (int, frac) = text.split_once('.').unwrap_or((text, ""));
    assert!(!int.is_empty() && int.bytes().all(|b| b.is_ascii_digit()), "{text:?} {currency}");
    assert!(frac.bytes().all(|b| b.is_ascii_digit()), "{text:?} {currency}");
    assert!(frac.len() <= exp && frac.is_empty() != text.contains('.'), "{text:?} {currency}");
    assert!(int == "0" || !int.starts_with('0'), "{text:?} {currency}");

    // Minor units are the text's value scaled by the currency's exponent, computed apart.
    let int_value: u128 = int.parse().unwrap_or_else(|_| panic!("{text:?}"));
    let frac_value: u128 = if frac.is_empty() { 0 } else { frac.parse().unwrap_or_else(|_| panic!("{text:?}")) };
    let scale = |n: usize| 10u128.pow(u32::try_from(n).unwrap_or(u32::MAX));
    let expected = int_value * scale(exp) + frac_value * scale(exp - frac.len());
    assert_eq!(u128::from(a.minor()), expected, "{text:?} {currency}");

    // Formats as Alipay writes it: exactly `exp` decimals, and back to the same amount.
    let shown = a.to_string();
    match shown.split_once('.') {
        Some((_, decimals)) => assert_eq!(decimals.len(), exp, "{shown:?} {currency}"),
        None => assert_eq!(exp, 0, "{shown:?} {currency}"),
    }
    assert_eq!(Amount::parse(&shown, currency), Ok(a), "{text:?} -> {shown:?} {currency}");
    if frac.len() == exp {
        assert_eq!(shown, text, "{currency}: canonical text formats as itself");
    }

    // The answer-side reading agrees.
    let d = decimal.unwrap_or_else(|e| panic!("{text:?}: an amount but not a decimal ({e})"));
    assert_eq!(d.to_amount(currency), Ok(a), "{text:?} {currency}");
    assert_eq!(Decimal::from(a).to_string(), shown, "{currency}");

    // Sums stay in range and in the currency.
    assert_eq!(a.checked_sub(a), Some(Amount::zero(currency)));
    match a.checked_add(a) {
        Some(sum) => assert_eq!(sum.minor(), a.minor() * 2),
        None => assert!(a.minor() * 2 > MAX_MAJOR_UNITS * unit),
    }
}
