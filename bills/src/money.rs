//! Signed money as the files write it, in integer minor units: one cell ([`SignedAmount`], within
//! Alipay's per-trade range, built on [`Amount`]) and a sum of many ([`Total`], a day's totals
//! may exceed any one trade's maximum).

use std::fmt;

use alipay::{Amount, Currency, MoneyError};

/// An amount with a sign, as a bill cell writes it (`-0.01`). Zero is never negative.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct SignedAmount {
    magnitude: Amount,
    negative: bool,
}

impl SignedAmount {
    /// `magnitude`, negative if `negative` and not zero.
    pub const fn new(magnitude: Amount, negative: bool) -> Self {
        SignedAmount { magnitude, negative: negative && !magnitude.is_zero() }
    }

    pub const fn positive(magnitude: Amount) -> Self {
        Self::new(magnitude, false)
    }

    pub const fn negative(magnitude: Amount) -> Self {
        Self::new(magnitude, true)
    }

    pub const fn zero(currency: Currency) -> Self {
        Self::positive(Amount::zero(currency))
    }

    pub const fn magnitude(self) -> Amount {
        self.magnitude
    }

    pub const fn is_negative(self) -> bool {
        self.negative
    }

    pub const fn is_zero(self) -> bool {
        self.magnitude.is_zero()
    }

    pub const fn currency(self) -> Currency {
        self.magnitude.currency()
    }

    /// Signed minor units (Alipay's range fits an `i64` many times over).
    pub fn minor(self) -> i64 {
        let minor = i64::try_from(self.magnitude.minor()).unwrap_or(i64::MAX);
        if self.negative { -minor } else { minor }
    }

    /// Parses an optional `-` and an amount as [`Amount::parse`] reads it; `-0.00` is zero.
    pub fn parse(text: &str, currency: Currency) -> Result<Self, MoneyError> {
        let (negative, digits) = match text.strip_prefix('-') {
            Some(rest) => (true, rest),
            None => (false, text),
        };
        Ok(Self::new(Amount::parse(digits, currency)?, negative))
    }
}

impl fmt::Display for SignedAmount {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.negative {
            f.write_str("-")?;
        }
        write!(f, "{}", self.magnitude)
    }
}

/// A signed sum in minor units: a footer's or a summary's total.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Total {
    minor: i64,
    currency: Currency,
}

/// At most this many digits before the decimal point in a total.
const MAX_TOTAL_DIGITS: usize = 15;

impl Total {
    pub const fn zero(currency: Currency) -> Self {
        Total { minor: 0, currency }
    }

    pub const fn from_minor(minor: i64, currency: Currency) -> Self {
        Total { minor, currency }
    }

    /// Signed minor units.
    pub const fn minor(self) -> i64 {
        self.minor
    }

    pub const fn currency(self) -> Currency {
        self.currency
    }

    /// `self + amount`, if in the same currency and without overflow.
    pub fn checked_add(self, amount: SignedAmount) -> Option<Self> {
        if amount.currency() != self.currency {
            return None;
        }
        Some(Total { minor: self.minor.checked_add(amount.minor())?, currency: self.currency })
    }

    /// `self + other`, if in the same currency and without overflow.
    pub fn checked_add_total(self, other: Total) -> Option<Self> {
        if other.currency != self.currency {
            return None;
        }
        Some(Total { minor: self.minor.checked_add(other.minor)?, currency: self.currency })
    }

    /// Parses `[-]digits[.decimals]`, at most as many decimals as the currency has.
    pub fn parse(text: &str, currency: Currency) -> Result<Self, MoneyError> {
        let (negative, digits) = match text.strip_prefix('-') {
            Some(rest) => (true, rest),
            None => (false, text),
        };
        let (int, frac) = match digits.split_once('.') {
            Some((int, frac)) if !frac.is_empty() => (int, frac),
            Some(_) => return Err(MoneyError::Malformed),
            None => (digits, ""),
        };
        let all_digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
        if int.is_empty() || int.len() > MAX_TOTAL_DIGITS || !all_digits(int) || !all_digits(frac) {
            return Err(MoneyError::Malformed);
        }
        let exp = usize::from(currency.exponent());
        if frac.len() > exp {
            return Err(MoneyError::TooManyDecimals);
        }
        let mut minor: i64 = 0;
        let padded = frac.bytes().chain(std::iter::repeat_n(b'0', exp - frac.len()));
        for b in int.bytes().chain(padded) {
            minor =
                minor.checked_mul(10).and_then(|m| m.checked_add(i64::from(b - b'0'))).ok_or(MoneyError::OutOfRange)?;
        }
        Ok(Total { minor: if negative { -minor } else { minor }, currency })
    }
}

impl fmt::Display for Total {
    /// `-0.04`, `0.06`, `1200` for JPY.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.minor < 0 {
            f.write_str("-")?;
        }
        let abs = self.minor.unsigned_abs();
        let exp = self.currency.exponent();
        if exp == 0 {
            return write!(f, "{abs}");
        }
        let unit = 10u64.pow(u32::from(exp));
        write!(f, "{}.{:0width$}", abs / unit, abs % unit, width = usize::from(exp))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const CNY: Currency = Currency::CNY;

    #[test]
    fn signed_cells_read_and_write_exactly() {
        for text in ["0.00", "-0.01", "88.88", "-100000000.00"] {
            assert_eq!(SignedAmount::parse(text, CNY).unwrap().to_string(), text);
        }
        let zero = SignedAmount::parse("-0.00", CNY).unwrap();
        assert!(!zero.is_negative());
        assert_eq!(zero, SignedAmount::zero(CNY));
        assert_eq!(SignedAmount::parse("-1.5", CNY).unwrap().minor(), -150);
        for bad in ["", "-", "--1", "+1", "1e3", "1.001", " 1"] {
            assert!(SignedAmount::parse(bad, CNY).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn totals_exceed_one_trade_and_keep_their_sign() {
        let big = Total::parse("123456789012.34", CNY).unwrap();
        assert_eq!(big.minor(), 12_345_678_901_234);
        assert_eq!(big.to_string(), "123456789012.34");
        assert_eq!(Total::parse("-0.04", CNY).unwrap().to_string(), "-0.04");
        assert_eq!(Total::parse("5", CNY).unwrap().to_string(), "5.00");
        assert_eq!(Total::parse("1200", Currency::JPY).unwrap().to_string(), "1200");
        assert_eq!(Total::parse("-0.00", CNY).unwrap(), Total::zero(CNY));
        for bad in ["", "1.", ".5", "1.234", "1,0", "9999999999999999", "-"] {
            assert!(Total::parse(bad, CNY).is_err(), "{bad:?}");
        }
        let sum = Total::zero(CNY).checked_add(SignedAmount::parse("-0.01", CNY).unwrap()).unwrap();
        assert_eq!(sum.to_string(), "-0.01");
        assert_eq!(sum.checked_add(SignedAmount::zero(Currency::HKD)), None);
    }
}
