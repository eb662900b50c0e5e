//! The TLS parameters of a database URL that tokio-postgres does not take (`sslmode=verify-ca`,
//! `verify-full`, `sslrootcert`), taken out of it; the rest is left for tokio-postgres to parse.
//! Both forms libpq accepts: `postgres://…?sslmode=require&sslrootcert=/etc/ca.pem` and
//! `host=… sslmode=require sslrootcert=/etc/ca.pem`.

use percent_encoding::percent_decode_str;

/// A URL with its TLS parameters taken out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Split {
    /// The URL tokio-postgres parses (without `sslmode` and `sslrootcert`).
    pub rest: String,
    pub sslmode: Option<String>,
    pub sslrootcert: Option<String>,
    /// A client-certificate parameter given (not supported: named in the error).
    pub unsupported: Option<String>,
}

const UNSUPPORTED: [&str; 5] = ["sslcert", "sslkey", "sslpassword", "sslcrl", "sslcrldir"];

pub(crate) fn split(url: &str) -> Split {
    let mut split = Split { rest: String::new(), sslmode: None, sslrootcert: None, unsupported: None };
    if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        let (base, query) = url.split_once('?').unwrap_or((url, ""));
        let mut kept = Vec::new();
        for pair in query.split('&').filter(|p| !p.is_empty()) {
            let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
            let decoded = percent_decode_str(value).decode_utf8_lossy().into_owned();
            if !take(&mut split, &percent_decode_str(key).decode_utf8_lossy(), decoded) {
                kept.push(pair);
            }
        }
        split.rest = if kept.is_empty() { base.to_owned() } else { format!("{base}?{}", kept.join("&")) };
    } else {
        // key=value pairs separated by spaces; a quoted value with spaces is left whole.
        let mut kept = Vec::new();
        for word in url.split(' ').filter(|w| !w.is_empty()) {
            let taken = word.split_once('=').is_some_and(|(key, value)| {
                take(&mut split, key, value.trim_matches('\'').replace("\\'", "'").replace("\\\\", "\\"))
            });
            if !taken {
                kept.push(word);
            }
        }
        split.rest = kept.join(" ");
    }
    split
}

/// Keeps `key` if it is one of ours; answers whether it was.
fn take(split: &mut Split, key: &str, value: String) -> bool {
    match key {
        "sslmode" => split.sslmode = Some(value),
        "sslrootcert" => split.sslrootcert = Some(value),
        other if UNSUPPORTED.contains(&other) => split.unsupported = Some(other.to_owned()),
        _ => return false,
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn url_form_parameters_are_taken_out_and_decoded() {
        let split = split(
            "postgres://u:p%40ss@db:5432/acq?sslmode=verify-full&application_name=gw&sslrootcert=%2Fetc%2Fca%20x.pem",
        );
        assert_eq!(split.rest, "postgres://u:p%40ss@db:5432/acq?application_name=gw");
        assert_eq!(split.sslmode.as_deref(), Some("verify-full"));
        assert_eq!(split.sslrootcert.as_deref(), Some("/etc/ca x.pem"));
        assert_eq!(split.unsupported, None);
        let plain = super::split("postgresql://db/acq?sslmode=require");
        assert_eq!((plain.rest.as_str(), plain.sslmode.as_deref()), ("postgresql://db/acq", Some("require")));
        assert_eq!(super::split("postgres://db/acq").sslmode, None);
        assert_eq!(super::split("postgres://db/acq?sslcert=/c.pem").unsupported.as_deref(), Some("sslcert"));
    }

    #[test]
    fn key_value_form_parameters_are_taken_out() {
        let split = split("host=db user=acq  sslmode=verify-ca sslrootcert='/etc/ca.pem' dbname=acq");
        assert_eq!(split.rest, "host=db user=acq dbname=acq");
        assert_eq!(split.sslmode.as_deref(), Some("verify-ca"));
        assert_eq!(split.sslrootcert.as_deref(), Some("/etc/ca.pem"));
    }
}
