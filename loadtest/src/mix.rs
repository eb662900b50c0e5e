//! The scenario mix: which calls a run makes, in what shares, and which outcomes its payments
//! ask the sandbox for (the buyer code's last two digits pick it, design §5).

use std::fmt;
use std::str::FromStr;

use rand::Rng;

/// One kind of call.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Op {
    /// `POST /v1/payments` with a barcode.
    Pay,
    /// `GET /v1/payments/{no}` of an earlier payment.
    Query,
    /// `POST /v1/payments/{no}/refunds`: part of an earlier paid payment.
    Refund,
    /// `POST /v1/payments/{no}/cancel` of an earlier paid payment.
    Cancel,
    /// `POST /v1/qr-orders`.
    QrOrder,
}

impl Op {
    pub const ALL: [Op; 5] = [Op::Pay, Op::Query, Op::Refund, Op::Cancel, Op::QrOrder];

    pub fn name(self) -> &'static str {
        match self {
            Op::Pay => "pay",
            Op::Query => "query",
            Op::Refund => "refund",
            Op::Cancel => "cancel",
            Op::QrOrder => "qr_order",
        }
    }
}

/// Weights of the calls (`pay=90,query=5,refund=3,cancel=1,qr_order=1`) and the shares of
/// payments that fail or whose outcome is UNKNOWN at first.
#[derive(Debug, Clone, PartialEq)]
pub struct Mix {
    weights: Vec<(Op, u32)>,
    total: u32,
    /// Share of payments the buyer's bank refuses (suffix 50).
    pub failed: f64,
    /// Share of payments whose answer is UNKNOWN (suffixes 60–69): the reconciler settles them.
    pub unknown: f64,
}

impl Default for Mix {
    fn default() -> Self {
        Mix { weights: vec![(Op::Pay, 1)], total: 1, failed: 0.0, unknown: 0.0 }
    }
}

impl FromStr for Mix {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let mut weights = Vec::new();
        for part in text.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let (name, weight) = part.split_once('=').ok_or(format!("'{part}' is not name=weight"))?;
            let op = Op::ALL
                .into_iter()
                .find(|op| op.name() == name.trim() || (*op == Op::QrOrder && name.trim() == "qr"))
                .ok_or(format!("unknown call '{name}' (pay, query, refund, cancel, qr_order)"))?;
            let weight: u32 = weight.trim().parse().map_err(|_| format!("'{weight}' is not a whole number"))?;
            if weight > 1_000_000 {
                return Err(format!("weight {weight} is too large"));
            }
            weights.push((op, weight));
        }
        let total: u32 = weights.iter().map(|(_, w)| w).sum();
        if total == 0 {
            return Err("the mix needs at least one call with a weight above 0".into());
        }
        Ok(Mix { weights, total, failed: 0.0, unknown: 0.0 })
    }
}

impl fmt::Display for Mix {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let parts: Vec<String> = self.weights.iter().map(|(op, w)| format!("{}={w}", op.name())).collect();
        write!(f, "{}", parts.join(","))?;
        if self.failed > 0.0 {
            write!(f, "; {:.1}% failed", self.failed * 100.0)?;
        }
        if self.unknown > 0.0 {
            write!(f, "; {:.1}% UNKNOWN", self.unknown * 100.0)?;
        }
        Ok(())
    }
}

/// Suffixes whose payments end UNKNOWN first, then settle (design §5): paid later, never paid,
/// paid but the answer lost, no trade made.
const UNKNOWN_SUFFIXES: [&str; 6] = ["60", "61", "62", "63", "65", "68"];

impl Mix {
    /// A call drawn by weight.
    pub fn pick(&self, rng: &mut impl Rng) -> Op {
        let mut left = rng.random_range(0..self.total);
        for (op, weight) in &self.weights {
            if left < *weight {
                return *op;
            }
            left -= weight;
        }
        Op::Pay
    }

    /// The buyer code's last two digits for a new payment.
    pub fn outcome_suffix(&self, rng: &mut impl Rng) -> &'static str {
        let draw: f64 = rng.random();
        if draw < self.failed {
            "50"
        } else if draw < self.failed + self.unknown {
            UNKNOWN_SUFFIXES[rng.random_range(0..UNKNOWN_SUFFIXES.len())]
        } else {
            "00"
        }
    }

    pub fn with_outcomes(mut self, failed: f64, unknown: f64) -> Result<Self, String> {
        if !(0.0..=1.0).contains(&failed) || !(0.0..=1.0).contains(&unknown) || failed + unknown > 1.0 {
            return Err("--failed and --unknown are shares from 0 to 1 that add up to at most 1".into());
        }
        self.failed = failed;
        self.unknown = unknown;
        Ok(self)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn a_mix_reads_and_draws_by_weight() {
        let mix: Mix = "pay=3, query=1".parse().unwrap();
        let mut rng = rand::rng();
        let pays = (0..10_000).filter(|_| mix.pick(&mut rng) == Op::Pay).count();
        assert!((7_000..8_000).contains(&pays), "{pays}");
        assert_eq!(mix.to_string(), "pay=3,query=1");
    }

    #[test]
    fn bad_mixes_are_refused_with_a_reason() {
        assert!("pay".parse::<Mix>().unwrap_err().contains("name=weight"));
        assert!("fly=1".parse::<Mix>().unwrap_err().contains("unknown call"));
        assert!("pay=0".parse::<Mix>().unwrap_err().contains("at least one"));
        assert!(Mix::default().with_outcomes(0.7, 0.5).is_err());
    }

    #[test]
    fn outcome_shares_are_kept() {
        let mix = Mix::default().with_outcomes(0.1, 0.2).unwrap();
        let mut rng = rand::rng();
        let draws: Vec<&str> = (0..10_000).map(|_| mix.outcome_suffix(&mut rng)).collect();
        let failed = draws.iter().filter(|s| **s == "50").count();
        let unknown = draws.iter().filter(|s| s.starts_with('6')).count();
        assert!((800..1_200).contains(&failed), "{failed}");
        assert!((1_800..2_200).contains(&unknown), "{unknown}");
    }
}
