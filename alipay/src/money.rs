//! Money as integer minor units, with ISO 4217 exponents.
//!
//! Alipay writes amounts as decimal strings in the major unit (`"88.88"`). [`Amount`] parses them
//! strictly (digits, at most one `.`, no sign, no exponent, no more decimals than the currency
//! has, no leading zeros) and bounded to Alipay's range, and formats them back exactly.
//! [`Decimal`] is the looser reading used for what Alipay sends back (exchange rates, amounts
//! with trailing zeros), converted to an [`Amount`] once the currency is known.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// The largest amount Alipay accepts, in major units (`100000000.00`).
pub const MAX_MAJOR_UNITS: u64 = 100_000_000;

macro_rules! currencies {
    ($($code:ident = $exp:literal),+ $(,)?) => {
        /// A currency Alipay settles or prices in, with its ISO 4217 minor-unit exponent.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum Currency { $($code),+ }

        impl Currency {
            /// Every supported currency.
            pub const ALL: &'static [Currency] = &[$(Currency::$code),+];

            /// Number of decimal places in the minor unit (CNY 2, JPY 0).
            pub const fn exponent(self) -> u8 {
                match self { $(Currency::$code => $exp),+ }
            }

            /// The three-letter ISO code.
            pub const fn code(self) -> &'static str {
                match self { $(Currency::$code => stringify!($code)),+ }
            }
        }

        impl FromStr for Currency {
            type Err = MoneyError;
            fn from_str(s: &str) -> Result<Self, MoneyError> {
                match s {
                    $(stringify!($code) => Ok(Currency::$code),)+
                    _ => Err(MoneyError::UnknownCurrency),
                }
            }
        }
    };
}

currencies! {
    CNY = 2, HKD = 2, USD = 2, EUR = 2, GBP = 2, SGD = 2, AUD = 2, CAD = 2, NZD = 2, CHF = 2,
    SEK = 2, DKK = 2, NOK = 2, THB = 2, MOP = 2, TWD = 2, LKR = 2, MYR = 2, PHP = 2, IDR = 2,
    AED = 2, JPY = 0, KRW = 0, VND = 0,
}

impl fmt::Display for Currency {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.code())
    }
}

impl Serialize for Currency {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.code())
    }
}

impl<'de> Deserialize<'de> for Currency {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

/// Why an amount or currency was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum MoneyError {
    #[error("amount is not a plain decimal number")]
    Malformed,
    #[error("amount has more decimal places than the currency allows")]
    TooManyDecimals,
    #[error("amount is outside Alipay's range (0.01 to 100000000)")]
    OutOfRange,
    #[error("amount must be greater than zero")]
    NotPositive,
    #[error("unknown or unsupported currency")]
    UnknownCurrency,
}

/// An amount of money: integer minor units of one currency, `0 ..= 100000000` major units.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Amount {
    minor: u64,
    currency: Currency,
}

/// The value of ASCII digits (at most 19 of them: no overflow), or `None` if one is not a digit.
fn digits(text: &[u8]) -> Option<u64> {
    text.iter().try_fold(0u64, |value, &b| b.is_ascii_digit().then(|| value * 10 + u64::from(b - b'0')))
}

const fn pow10(exp: u8) -> u64 {
    let mut value = 1u64;
    let mut i = 0;
    while i < exp {
        value *= 10;
        i += 1;
    }
    value
}

impl Amount {
    /// Builds an amount from minor units, refusing anything above Alipay's maximum.
    pub fn from_minor(minor: u64, currency: Currency) -> Result<Self, MoneyError> {
        if minor > Self::max_minor(currency) {
            return Err(MoneyError::OutOfRange);
        }
        Ok(Self { minor, currency })
    }

    /// Zero in `currency`.
    pub const fn zero(currency: Currency) -> Self {
        Self { minor: 0, currency }
    }

    fn max_minor(currency: Currency) -> u64 {
        MAX_MAJOR_UNITS * pow10(currency.exponent())
    }

    /// Parses a decimal string in the major unit, strictly; zero is allowed. One pass over the
    /// bytes (a bill row has eleven amounts).
    pub fn parse(text: &str, currency: Currency) -> Result<Self, MoneyError> {
        let exp = currency.exponent();
        let bytes = text.as_bytes();
        let (int, frac) = match bytes.iter().position(|&b| b == b'.') {
            Some(dot) => (&bytes[..dot], Some(&bytes[dot + 1..])),
            None => (bytes, None),
        };
        let leading_zero = int.len() > 1 && int[0] == b'0';
        let int_value = match int.len() {
            1..=9 if !leading_zero => digits(int).ok_or(MoneyError::Malformed)?,
            _ => return Err(MoneyError::Malformed),
        };
        let frac = match frac {
            Some([]) => return Err(MoneyError::Malformed),
            Some(frac) => frac,
            None => &[],
        };
        if frac.len() > usize::from(exp) {
            let digits_only = frac.iter().all(u8::is_ascii_digit);
            return Err(if digits_only { MoneyError::TooManyDecimals } else { MoneyError::Malformed });
        }
        // At most `exp` digits (checked just above): no overflow, and the shift cannot underflow.
        let frac_value = digits(frac).ok_or(MoneyError::Malformed)?;
        let shift = exp - u8::try_from(frac.len()).map_err(|_| MoneyError::Malformed)?;
        let minor = int_value
            .checked_mul(pow10(exp))
            .and_then(|v| v.checked_add(frac_value * pow10(shift)))
            .ok_or(MoneyError::OutOfRange)?;
        Self::from_minor(minor, currency)
    }

    /// Parses an amount that must be payable: at least one minor unit.
    pub fn parse_positive(text: &str, currency: Currency) -> Result<Self, MoneyError> {
        let amount = Self::parse(text, currency)?;
        if amount.minor == 0 {
            return Err(MoneyError::NotPositive);
        }
        Ok(amount)
    }

    /// Integer minor units (fen for CNY, yen for JPY).
    pub const fn minor(self) -> u64 {
        self.minor
    }

    pub const fn currency(self) -> Currency {
        self.currency
    }

    pub const fn is_zero(self) -> bool {
        self.minor == 0
    }

    /// `self + other`, if both are in the same currency and the sum stays in range.
    pub fn checked_add(self, other: Amount) -> Option<Amount> {
        if self.currency != other.currency {
            return None;
        }
        Amount::from_minor(self.minor.checked_add(other.minor)?, self.currency).ok()
    }

    /// `self - other`, if both are in the same currency and the result is not negative.
    pub fn checked_sub(self, other: Amount) -> Option<Amount> {
        if self.currency != other.currency {
            return None;
        }
        Some(Amount { minor: self.minor.checked_sub(other.minor)?, currency: self.currency })
    }
}

impl fmt::Display for Amount {
    /// Exactly as Alipay writes it: `88.88`, `58.00`, `100` for JPY.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let exp = self.currency.exponent();
        if exp == 0 {
            return write!(f, "{}", self.minor);
        }
        let unit = pow10(exp);
        write!(f, "{}.{:0width$}", self.minor / unit, self.minor % unit, width = usize::from(exp))
    }
}

impl Serialize for Amount {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

/// A non-negative decimal number as Alipay sends it back (`"0.00"`, `"0.91730000"`).
///
/// Kept exact as `digits / 10^scale`; becomes an [`Amount`] once its currency is known.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Decimal {
    digits: u64,
    scale: u8,
}

/// At most this many decimal places in a [`Decimal`].
const MAX_DECIMAL_SCALE: usize = 12;

impl Decimal {
    /// The value as an amount of `currency`; extra decimal places must be zeros.
    pub fn to_amount(self, currency: Currency) -> Result<Amount, MoneyError> {
        let exp = currency.exponent();
        let minor = if self.scale <= exp {
            self.digits.checked_mul(pow10(exp - self.scale)).ok_or(MoneyError::OutOfRange)?
        } else {
            let drop = pow10(self.scale - exp);
            if !self.digits.is_multiple_of(drop) {
                return Err(MoneyError::TooManyDecimals);
            }
            self.digits / drop
        };
        Amount::from_minor(minor, currency)
    }

    pub const fn is_zero(self) -> bool {
        self.digits == 0
    }
}

impl From<Amount> for Decimal {
    fn from(amount: Amount) -> Self {
        Decimal { digits: amount.minor, scale: amount.currency.exponent() }
    }
}

impl FromStr for Decimal {
    type Err = MoneyError;

    fn from_str(text: &str) -> Result<Self, MoneyError> {
        let (int, frac) = text.split_once('.').unwrap_or((text, ""));
        let digits_ok = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
        if int.is_empty() || !digits_ok(int) || !digits_ok(frac) || frac.len() > MAX_DECIMAL_SCALE {
            return Err(MoneyError::Malformed);
        }
        if text.ends_with('.') {
            return Err(MoneyError::Malformed);
        }
        let mut digits: u64 = 0;
        for b in int.bytes().chain(frac.bytes()) {
            digits = digits
                .checked_mul(10)
                .and_then(|d| d.checked_add(u64::from(b - b'0')))
                .ok_or(MoneyError::OutOfRange)?;
        }
        let scale = u8::try_from(frac.len()).map_err(|_| MoneyError::Malformed)?;
        Ok(Decimal { digits, scale })
    }
}

impl fmt::Display for Decimal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.scale == 0 {
            return write!(f, "{}", self.digits);
        }
        let unit = pow10(self.scale);
        write!(f, "{}.{:0width$}", self.digits / unit, self.digits % unit, width = usize::from(self.scale))
    }
}

impl Serialize for Decimal {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Decimal {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn parses_and_formats_exactly() {
        let a = Amount::parse("88.88", Currency::CNY).unwrap();
        assert_eq!(a.minor(), 8888);
        assert_eq!(a.to_string(), "88.88");
        assert_eq!(Amount::parse("58", Currency::HKD).unwrap().to_string(), "58.00");
        assert_eq!(Amount::parse("0.5", Currency::USD).unwrap().minor(), 50);
        assert_eq!(Amount::parse("1200", Currency::JPY).unwrap().to_string(), "1200");
        assert_eq!(Amount::parse("100000000.00", Currency::CNY).unwrap().minor(), 10_000_000_000);
    }

    #[test]
    fn refuses_everything_that_is_not_a_plain_amount() {
        for bad in ["", "-1", "+1", "1e3", " 1", "1 ", "1.", ".5", "1,00", "NaN", "inf", "01.00", "1.2.3", "１"] {
            assert_eq!(Amount::parse(bad, Currency::CNY), Err(MoneyError::Malformed), "{bad:?}");
        }
        assert_eq!(Amount::parse("1.001", Currency::CNY), Err(MoneyError::TooManyDecimals));
        assert_eq!(Amount::parse("1.0", Currency::JPY), Err(MoneyError::TooManyDecimals));
        assert_eq!(Amount::parse("100000000.01", Currency::CNY), Err(MoneyError::OutOfRange));
        assert_eq!(Amount::parse("999999999", Currency::CNY), Err(MoneyError::OutOfRange));
        assert_eq!(Amount::parse_positive("0.00", Currency::CNY), Err(MoneyError::NotPositive));
        assert_eq!(Amount::parse_positive("0.01", Currency::CNY).unwrap().minor(), 1);
    }

    #[test]
    fn decimal_converts_only_without_loss() {
        let d: Decimal = "12.500".parse().unwrap();
        assert_eq!(d.to_amount(Currency::CNY).unwrap().minor(), 1250);
        let d: Decimal = "12.505".parse().unwrap();
        assert_eq!(d.to_amount(Currency::CNY), Err(MoneyError::TooManyDecimals));
        assert_eq!("0.91730000".parse::<Decimal>().unwrap().to_string(), "0.91730000");
        assert!("-1".parse::<Decimal>().is_err());
        assert!("1.".parse::<Decimal>().is_err());
    }

    #[test]
    fn sums_stay_in_one_currency() {
        let a = Amount::parse("1.00", Currency::CNY).unwrap();
        let b = Amount::parse("1.00", Currency::HKD).unwrap();
        assert_eq!(a.checked_add(b), None);
        assert_eq!(a.checked_sub(a.checked_add(a).unwrap()), None);
    }

    /// The parse before the one-pass one, kept as the reference it must agree with.
    fn split_and_parse(text: &str, currency: Currency) -> Result<Amount, MoneyError> {
        let exp = currency.exponent();
        let (int, frac) = match text.split_once('.') {
            Some((int, frac)) => (int, Some(frac)),
            None => (text, None),
        };
        if int.is_empty() || int.len() > 9 || !int.bytes().all(|b| b.is_ascii_digit()) {
            return Err(MoneyError::Malformed);
        }
        if int.len() > 1 && int.starts_with('0') {
            return Err(MoneyError::Malformed);
        }
        let frac = frac.unwrap_or("");
        if text.contains('.') && frac.is_empty() {
            return Err(MoneyError::Malformed);
        }
        if !frac.bytes().all(|b| b.is_ascii_digit()) {
            return Err(MoneyError::Malformed);
        }
        if frac.len() > usize::from(exp) {
            return Err(MoneyError::TooManyDecimals);
        }
        let int_value: u64 = int.parse().map_err(|_| MoneyError::Malformed)?;
        let frac_value: u64 = if frac.is_empty() { 0 } else { frac.parse().map_err(|_| MoneyError::Malformed)? };
        let shift = exp - u8::try_from(frac.len()).map_err(|_| MoneyError::Malformed)?;
        let minor = int_value
            .checked_mul(pow10(exp))
            .and_then(|v| v.checked_add(frac_value * pow10(shift)))
            .ok_or(MoneyError::OutOfRange)?;
        Amount::from_minor(minor, currency)
    }

    proptest! {
        #[test]
        fn format_then_parse_is_identity(minor in 0u64..=10_000_000_000, cur in prop::sample::select(Currency::ALL)) {
            if let Ok(a) = Amount::from_minor(minor, cur) {
                prop_assert_eq!(Amount::parse(&a.to_string(), cur).unwrap(), a);
            }
        }

        /// The one-pass parse answers as the parse it replaced (split at the dot, each part
        /// checked, then parsed by `str::parse`) on every text of digits and dots, and on any.
        #[test]
        fn parse_answers_as_the_split_and_parse_it_replaced(
            text in prop_oneof!["[0-9.]{0,14}", "[0-9]{0,10}[.][0-9]{0,4}", "\\PC{0,12}"],
            cur in prop::sample::select(Currency::ALL),
        ) {
            prop_assert_eq!(Amount::parse(&text, cur), split_and_parse(&text, cur));
        }

        #[test]
        fn parse_never_panics(text in "\\PC{0,24}") {
            let _ = Amount::parse(&text, Currency::CNY);
            let _ = text.parse::<Decimal>();
        }
    }
}
