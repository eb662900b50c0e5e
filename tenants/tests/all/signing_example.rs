//! The worked signing example of `docs/partner-api.md` (§2), read from the page itself: its inputs
//! from the example's table, its string to sign from the block under it. The string to sign, the
//! body hash, the signature and the whole `Authorization` header must be what the gateway's own
//! signing code makes of those inputs (and an HMAC computed here apart from it), so the page a
//! vendor checks an implementation against cannot drift from the code.

use std::path::PathBuf;

use aws_lc_rs::{digest, hmac};
use tenants::signature;

fn guide() -> String {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../docs/partner-api.md");
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// The example's section: from its heading to the next section.
fn example(guide: &str) -> &str {
    let start = guide.find("\n### A worked example\n").expect("the guide has its worked example");
    let rest = &guide[start + 1..];
    rest.find("\n## ").map_or(rest, |end| &rest[..end])
}

/// The value of the example table's row `label`: what is between its first pair of backticks.
fn row<'a>(guide: &'a str, label: &str) -> &'a str {
    let start = format!("| {label} | `");
    let line = guide.lines().find(|line| line.starts_with(&start)).unwrap_or_else(|| panic!("no row `{label}`"));
    let value = &line[start.len()..];
    let end = value.find("` |").unwrap_or_else(|| panic!("row `{label}` has no closing backtick"));
    &value[..end]
}

/// The lines of the first fenced block after the line that starts with `intro`, joined by `\n`.
fn block_after(guide: &str, intro: &str) -> String {
    let mut lines = guide.lines().skip_while(|line| !line.starts_with(intro));
    assert!(lines.next().is_some(), "no line starting `{intro}`");
    let mut lines = lines.skip_while(|line| !line.starts_with("```"));
    assert!(lines.next().is_some(), "no block after `{intro}`");
    lines.take_while(|line| !line.starts_with("```")).collect::<Vec<_>>().join("\n")
}

#[test]
fn the_guides_worked_example_is_what_the_gateway_computes() {
    let whole = guide();
    let guide = example(&whole);
    let (key_id, secret, method, path) =
        (row(guide, "key id"), row(guide, "secret"), row(guide, "method"), row(guide, "path and query"));
    let timestamp: i64 = row(guide, "timestamp").parse().unwrap();
    let (nonce, body) = (row(guide, "nonce"), row(guide, "body").as_bytes());

    let string_to_sign = signature::string_to_sign(method, path, timestamp, nonce, body);
    assert_eq!(block_after(guide, "String to sign"), string_to_sign, "the string to sign");
    let body_hash = hex::encode(digest::digest(&digest::SHA256, body));
    assert_eq!(row(guide, "body SHA-256"), body_hash);
    assert!(string_to_sign.ends_with(&format!("\n{body_hash}")), "the last line is the body's hash");

    let key = hmac::Key::new(hmac::HMAC_SHA256, secret.as_bytes());
    let tag = hex::encode(hmac::sign(&key, string_to_sign.as_bytes()));
    assert_eq!(row(guide, "signature"), tag, "the signature");
    let header = signature::authorization(key_id, secret, method, path, timestamp, nonce, body);
    assert_eq!(row(guide, "authorization"), header, "the Authorization header");

    // The header parses back to the same parts, as the gateway reads it.
    let parsed = signature::parse(&header).unwrap();
    assert_eq!((parsed.key_id, parsed.timestamp, parsed.nonce), (key_id, timestamp, nonce));
    assert_eq!(hex::encode(parsed.signature), tag);
    // The empty body's hash the guide quotes for GETs and cancels.
    assert!(whole.contains(&hex::encode(digest::digest(&digest::SHA256, b""))), "the empty body's hash");
}
