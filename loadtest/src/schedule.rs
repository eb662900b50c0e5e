//! The offered rate over time: constant, steps, or a ramp.

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

/// Requests per second as a function of time since the start.
#[derive(Debug, Clone, PartialEq)]
pub enum Schedule {
    /// `2000`
    Constant(f64),
    /// `500:10s,1000:10s`: each rate for its time, then the last one on.
    Steps(Vec<(f64, Duration)>),
    /// `100..2000:30s`: linear from one rate to the other, then the second on.
    Ramp { from: f64, to: f64, over: Duration },
}

impl Schedule {
    pub fn rate_at(&self, elapsed: Duration) -> f64 {
        match self {
            Schedule::Constant(rate) => *rate,
            Schedule::Steps(steps) => {
                let mut end = Duration::ZERO;
                for (rate, length) in steps {
                    end += *length;
                    if elapsed < end {
                        return *rate;
                    }
                }
                steps.last().map_or(0.0, |(rate, _)| *rate)
            }
            Schedule::Ramp { from, to, over } => {
                let share = (elapsed.as_secs_f64() / over.as_secs_f64().max(1e-9)).min(1.0);
                from + (to - from) * share
            }
        }
    }

    /// How long the schedule takes to reach its last rate (zero for a constant one).
    pub fn length(&self) -> Duration {
        match self {
            Schedule::Constant(_) => Duration::ZERO,
            Schedule::Steps(steps) => steps.iter().map(|(_, d)| *d).sum(),
            Schedule::Ramp { over, .. } => *over,
        }
    }
}

/// `30s`, `2m`, `500ms`, or plain seconds.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let (number, unit) = match text.find(|c: char| c.is_ascii_alphabetic()) {
        Some(at) => text.split_at(at),
        None => (text, "s"),
    };
    let value: f64 = number.trim().parse().map_err(|_| format!("'{text}' is not a duration like 30s, 2m or 500ms"))?;
    let seconds = match unit {
        "ms" => value / 1000.0,
        "s" => value,
        "m" => value * 60.0,
        "h" => value * 3600.0,
        _ => return Err(format!("'{text}': the unit must be ms, s, m or h")),
    };
    if !seconds.is_finite() || !(0.0..=86_400.0 * 7.0).contains(&seconds) {
        return Err(format!("'{text}' is out of range"));
    }
    Ok(Duration::from_secs_f64(seconds))
}

fn parse_rate(text: &str) -> Result<f64, String> {
    let rate: f64 = text
        .trim()
        .trim_end_matches("/s")
        .parse()
        .map_err(|_| format!("'{text}' is not a rate (requests per second)"))?;
    if !rate.is_finite() || rate <= 0.0 || rate > 10_000_000.0 {
        return Err(format!("the rate {text} must be above 0 and at most 10,000,000/s"));
    }
    Ok(rate)
}

impl FromStr for Schedule {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        if let Some((rates, over)) = text.split_once("..").and_then(|(a, rest)| {
            let (b, over) = rest.split_once(':')?;
            Some(((a, b), over))
        }) {
            return Ok(Schedule::Ramp {
                from: parse_rate(rates.0)?,
                to: parse_rate(rates.1)?,
                over: parse_duration(over)?,
            });
        }
        if text.contains(':') {
            let steps = text
                .split(',')
                .map(|step| {
                    let (rate, length) = step.split_once(':').ok_or(format!("'{step}' is not rate:duration"))?;
                    Ok((parse_rate(rate)?, parse_duration(length)?))
                })
                .collect::<Result<Vec<_>, String>>()?;
            return Ok(Schedule::Steps(steps));
        }
        parse_rate(text).map(Schedule::Constant)
    }
}

impl fmt::Display for Schedule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Schedule::Constant(rate) => write!(f, "{rate:.0}/s"),
            Schedule::Steps(steps) => {
                let parts: Vec<String> =
                    steps.iter().map(|(r, d)| format!("{r:.0}/s for {:.0} s", d.as_secs_f64())).collect();
                write!(f, "steps {}", parts.join(", "))
            }
            Schedule::Ramp { from, to, over } => {
                write!(f, "ramp {from:.0}/s to {to:.0}/s over {:.0} s", over.as_secs_f64())
            }
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn schedules_read_and_give_the_rate_at_a_time() {
        let constant: Schedule = "2000".parse().unwrap();
        assert_eq!(constant.rate_at(Duration::from_secs(99)), 2000.0);
        let steps: Schedule = "500:10s,1000:5s".parse().unwrap();
        assert_eq!(steps.rate_at(Duration::from_secs(3)), 500.0);
        assert_eq!(steps.rate_at(Duration::from_secs(12)), 1000.0);
        assert_eq!(steps.rate_at(Duration::from_secs(60)), 1000.0, "the last step goes on");
        assert_eq!(steps.length(), Duration::from_secs(15));
        let ramp: Schedule = "100..1100:10s".parse().unwrap();
        assert_eq!(ramp.rate_at(Duration::from_secs(5)), 600.0);
        assert_eq!(ramp.rate_at(Duration::from_secs(50)), 1100.0);
    }

    #[test]
    fn bad_schedules_say_why() {
        assert!("fast".parse::<Schedule>().unwrap_err().contains("not a rate"));
        assert!("0".parse::<Schedule>().unwrap_err().contains("above 0"));
        assert!("500:10x".parse::<Schedule>().unwrap_err().contains("unit"));
        assert_eq!(parse_duration("2m").unwrap(), Duration::from_secs(120));
        assert_eq!(parse_duration("250ms").unwrap(), Duration::from_millis(250));
    }
}
