//! Alipay's fee: a rate in basis points, charged on a payment and returned on a refund, each
//! rounded half up to the currency's minor unit.

use alipay::Amount;

/// A fee rate in basis points (60 = 0.6%), at most [`FeeRate::MAX_BP`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FeeRate(u32);

impl FeeRate {
    /// 100%.
    pub const MAX_BP: u32 = 10_000;

    pub fn from_bp(bp: u32) -> Option<Self> {
        (bp <= Self::MAX_BP).then_some(FeeRate(bp))
    }

    pub fn bp(self) -> u32 {
        self.0
    }

    /// `round_half_up(amount × bp / 10000)`, in `amount`'s currency (never more than `amount`).
    pub fn fee(self, amount: Amount) -> Amount {
        let minor = (u128::from(amount.minor()) * u128::from(self.0) + 5_000) / 10_000;
        u64::try_from(minor)
            .ok()
            .and_then(|minor| Amount::from_minor(minor, amount.currency()).ok())
            .unwrap_or(Amount::zero(amount.currency()))
    }
}

#[cfg(test)]
mod tests {
    use alipay::Currency;

    use super::*;

    fn cny(text: &str) -> Amount {
        Amount::parse(text, Currency::CNY).unwrap()
    }

    #[test]
    fn fees_round_half_up_in_minor_units() {
        let rate = FeeRate::from_bp(60).unwrap();
        assert_eq!(rate.fee(cny("100.00")).to_string(), "0.60");
        assert_eq!(rate.fee(cny("1.00")).to_string(), "0.01"); // 0.6 fen → 1
        assert_eq!(rate.fee(cny("0.83")).to_string(), "0.00"); // 0.498 fen → 0
        assert_eq!(rate.fee(cny("2.50")).to_string(), "0.02"); // 1.5 fen → 2
        assert_eq!(FeeRate::from_bp(10_000).unwrap().fee(cny("7.77")).to_string(), "7.77");
        assert_eq!(FeeRate::from_bp(10_001), None);
        assert_eq!(FeeRate::from_bp(0).unwrap().fee(cny("5.00")).to_string(), "0.00");
    }
}
