//! The admin API's bearer token: at least 32 characters, never one of the example values the
//! deployment files show (`deploy/`), compared in constant time, never printed.

use std::sync::Arc;

use zeroize::Zeroizing;

/// The example tokens written in `deploy/` (the systemd `*.example` env files; the Kubernetes and
/// compose files generate theirs). A test reads `deploy/` and fails if one is missing here.
const EXAMPLE_TOKENS: &[&str] = &["CHANGE-ME-at-least-32-characters-long"];

/// The bearer token that opens the admin API.
#[derive(Clone)]
pub struct AdminToken(Arc<Zeroizing<String>>);

impl AdminToken {
    /// At least 32 characters, and not an example from `deploy/` (nor any `CHANGE-ME` value).
    pub fn new(token: &str) -> Result<Self, String> {
        if is_example(token) {
            return Err("the admin token is the example value of the deployment files (deploy/): make a real one \
                        with `head -c 24 /dev/urandom | base64`"
                .into());
        }
        if token.len() < 32 {
            return Err("the admin token must be at least 32 characters".into());
        }
        Ok(AdminToken(Arc::new(Zeroizing::new(token.to_owned()))))
    }

    /// From `ACQ_ADMIN_TOKEN`.
    pub fn from_env() -> Result<Self, String> {
        let token =
            std::env::var("ACQ_ADMIN_TOKEN").map_err(|_| "set ACQ_ADMIN_TOKEN to serve the admin API".to_owned())?;
        Self::new(&token).map_err(|e| format!("ACQ_ADMIN_TOKEN: {e}"))
    }

    /// Whether `header` is `Bearer <this token>` (constant time).
    pub(crate) fn accepts(&self, header: Option<&str>) -> bool {
        let given = header.and_then(|h| h.strip_prefix("Bearer ")).unwrap_or("");
        aws_lc_rs::constant_time::verify_slices_are_equal(given.as_bytes(), self.0.as_bytes()).is_ok()
    }
}

fn is_example(token: &str) -> bool {
    let folded: String = token.trim().chars().filter(|c| c.is_ascii_alphanumeric()).collect::<String>();
    let folded = folded.to_ascii_lowercase();
    EXAMPLE_TOKENS.iter().any(|example| example.eq_ignore_ascii_case(token.trim())) || folded.contains("changeme")
}

impl std::fmt::Debug for AdminToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("AdminToken(***)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every literal admin token in `deploy/` (`ACQ_ADMIN_TOKEN=…`, `admin-token=…`), values that
    /// come from a variable or a command left out.
    fn tokens_in_deploy() -> Vec<(String, String)> {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy");
        let mut found = Vec::new();
        let mut dirs = vec![root];
        while let Some(dir) = dirs.pop() {
            for entry in std::fs::read_dir(&dir).unwrap().flatten() {
                let path = entry.path();
                if path.is_dir() {
                    dirs.push(path);
                    continue;
                }
                let Ok(text) = std::fs::read_to_string(&path) else { continue };
                for line in text.lines() {
                    for key in ["ACQ_ADMIN_TOKEN=", "ACQ_ADMIN_TOKEN: ", "admin-token="] {
                        let Some((_, value)) = line.split_once(key) else { continue };
                        let value = value.split_whitespace().next().unwrap_or("").trim_matches(['"', '\'']);
                        if !value.is_empty() && !value.starts_with('$') && value != "..." {
                            found.push((path.display().to_string(), value.to_owned()));
                        }
                    }
                }
            }
        }
        found
    }

    #[test]
    fn every_example_token_of_the_deployment_files_is_refused() {
        let found = tokens_in_deploy();
        assert!(!found.is_empty(), "the systemd example env file shows one");
        for (file, token) in found {
            let refused = AdminToken::new(&token).expect_err(&format!("{file}: its example token must be refused"));
            assert!(refused.contains("example"), "{refused}");
            assert!(!refused.contains(&token), "the error never repeats the token");
        }
    }

    #[test]
    fn short_and_change_me_tokens_are_refused_real_ones_accepted() {
        assert!(AdminToken::new("short").unwrap_err().contains("32 characters"));
        assert!(AdminToken::new("please-change-me-0123456789abcdef0123").is_err());
        assert!(AdminToken::new("ChangeMe_ChangeMe_ChangeMe_ChangeMe_").is_err());
        let real = AdminToken::new("Qm9ZcW5hX3Rva2VuX2Zvcl90ZXN0c19vbmx5").unwrap();
        assert!(real.accepts(Some("Bearer Qm9ZcW5hX3Rva2VuX2Zvcl90ZXN0c19vbmx5")));
        assert!(!real.accepts(Some("Bearer Qm9ZcW5hX3Rva2VuX2Zvcl90ZXN0c19vbmx")));
        assert!(!real.accepts(None));
        assert_eq!(format!("{real:?}"), "AdminToken(***)");
    }
}
