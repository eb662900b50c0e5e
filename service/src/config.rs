//! A service's configuration: defaults, then a TOML file, then `PREFIX_*` environment variables;
//! durations written in the file as whole milliseconds or seconds (`first_check_ms = 5000`) and
//! held as [`Duration`]s (`#[serde(rename = "first_check_ms", with = "service::millis")]`).

use std::path::Path;
use std::time::Duration;

use figment::Figment;
use figment::providers::{Env, Format, Serialized, Toml};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// `T::default()`, then `file` (if given; it must exist), then `{prefix}*` variables
/// (`GATEWAY_LISTEN=0.0.0.0:8080`). The error is one line naming what is wrong.
pub fn load_config<T: Serialize + DeserializeOwned + Default>(file: Option<&Path>, prefix: &str) -> Result<T, String> {
    let mut figment = Figment::from(Serialized::defaults(T::default()));
    if let Some(file) = file {
        if !file.exists() {
            return Err(format!("{} does not exist", file.display()));
        }
        figment = figment.merge(Toml::file(file));
    }
    // `{prefix}CONFIG` names the file itself (the binaries' `--config`), not a setting.
    figment.merge(Env::prefixed(prefix).ignore(&["config"])).extract().map_err(|e| e.to_string())
}

/// A [`Duration`] written as whole milliseconds.
pub mod millis {
    use super::{Deserialize, Deserializer, Duration, Serializer};

    pub fn serialize<S: Serializer>(duration: &Duration, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_u64(u64::try_from(duration.as_millis()).unwrap_or(u64::MAX))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Duration, D::Error> {
        u64::deserialize(deserializer).map(Duration::from_millis)
    }
}

/// A [`Duration`] written as whole seconds.
pub mod seconds {
    use super::{Deserialize, Deserializer, Duration, Serializer};

    pub fn serialize<S: Serializer>(duration: &Duration, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_u64(duration.as_secs())
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Duration, D::Error> {
        u64::deserialize(deserializer).map(Duration::from_secs)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[derive(Debug, PartialEq, Serialize, Deserialize)]
    struct Timers {
        #[serde(rename = "check_ms", with = "millis")]
        check: Duration,
        #[serde(rename = "expiry_secs", with = "seconds")]
        expiry: Duration,
    }

    #[test]
    fn durations_are_read_and_written_in_the_units_their_keys_name() {
        let timers: Timers = serde_json::from_str(r#"{"check_ms": 1500, "expiry_secs": 60}"#).unwrap();
        assert_eq!(timers, Timers { check: Duration::from_millis(1500), expiry: Duration::from_secs(60) });
        assert_eq!(serde_json::to_string(&timers).unwrap(), r#"{"check_ms":1500,"expiry_secs":60}"#);
        assert!(serde_json::from_str::<Timers>(r#"{"check_ms": -1, "expiry_secs": 60}"#).is_err());
    }
}
