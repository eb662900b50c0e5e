//! What the CLI prints: tables for people, JSON for scripts.

use comfy_table::{Table, presets::UTF8_BORDERS_ONLY};
use serde_json::json;

use crate::registry::{Created, IssuedCredential, MasterKeyRotation, Revoked, TenantView};

/// How the CLI prints its results.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Output {
    /// Tables and sentences, for people.
    Table,
    /// JSON, for scripts (`--json`).
    Json,
}

pub(super) fn to_json(value: &impl serde::Serialize) -> String {
    serde_json::to_string_pretty(value).unwrap_or_else(|e| format!("{{\"error\":\"{e}\"}}"))
}

pub(super) fn table(header: &[&str]) -> Table {
    let mut table = Table::new();
    table.load_style(UTF8_BORDERS_ONLY).set_header(header.to_vec());
    table
}

pub(super) fn short(fingerprint: &Option<String>) -> String {
    fingerprint.as_deref().map_or_else(|| "-".into(), |f| format!("sha256:{}", &f[..f.len().min(16)]))
}

pub fn migrated(applied: usize, output: Output) -> String {
    if output == Output::Json {
        to_json(&json!({ "applied": applied }))
    } else {
        format!("{applied} migration(s) applied")
    }
}

pub fn list(tenants: &[TenantView], output: Output) -> String {
    if output == Output::Json {
        return to_json(&tenants);
    }
    let mut out = table(&["slug", "name", "status", "dialect", "alipay id", "sign", "environment", "ready"]);
    for t in tenants {
        out.add_row(vec![
            t.slug.clone(),
            t.name.clone(),
            t.status.as_str().into(),
            t.dialect.as_str().into(),
            t.alipay_id.clone(),
            t.sign_type.as_str().into(),
            t.environment.kind().into(),
            if t.ready { "yes".into() } else { "no".into() },
        ]);
    }
    format!("{out}\n{} tenant(s)", tenants.len())
}

pub fn tenant(t: &TenantView, output: Output) -> String {
    if output == Output::Json {
        return to_json(t);
    }
    let mut out = table(&["field", "value"]);
    let credentials: Vec<String> = t
        .credentials
        .iter()
        .map(|c| match c.expires_at {
            Some(end) => format!("{} (expires {end})", c.key_id),
            None => c.key_id.clone(),
        })
        .collect();
    let rows: Vec<(&str, String)> = vec![
        ("slug", t.slug.clone()),
        ("name", t.name.clone()),
        ("id", t.id.to_string()),
        ("status", t.status.as_str().into()),
        ("dialect", t.dialect.as_str().into()),
        ("alipay id", t.alipay_id.clone()),
        ("seller id", t.seller_id.clone().unwrap_or_else(|| "-".into())),
        ("sign type", t.sign_type.as_str().into()),
        ("environment", t.environment.kind().into()),
        ("gateway", t.gateway_url.clone()),
        ("pay rate / burst", format!("{}/s, burst {}", t.limits.pay_rate, t.limits.pay_burst)),
        ("other rate", format!("{}/s", t.limits.other_rate)),
        ("webhook", t.webhook_url.clone().unwrap_or_else(|| "-".into())),
        (
            "secondary merchant",
            t.secondary_merchant.as_ref().map_or_else(
                || "-".into(),
                |s| format!("{} {} (MCC {}, {} store(s))", s.merchant_id, s.name, s.mcc, s.stores.len()),
            ),
        ),
        ("app key", short(&t.keys.app_key)),
        ("Alipay public key", short(&t.keys.alipay_public_key)),
        ("MD5 key", if t.keys.md5_key { "set".into() } else { "-".into() }),
        ("ready", if t.ready { "yes".into() } else { "no: keys missing".into() }),
        ("API keys", credentials.join(", ")),
        (
            "front door",
            t.front_door.as_ref().map_or_else(|| "-".into(), |d| format!("{} ({})", d.id, d.sign_type.as_str())),
        ),
        ("version", t.version.to_string()),
    ];
    for (field, value) in rows {
        out.add_row(vec![field.to_owned(), value]);
    }
    out.to_string()
}

pub fn created(created: &Created, output: Output) -> String {
    if output == Output::Json {
        return to_json(created);
    }
    let mut out = tenant(&created.tenant, Output::Table);
    out.push_str("\n\nPartner API credential (shown once; give it to the POS integrator):\n");
    out.push_str(&format!(
        "  key id: {}\n  secret: {}\n",
        created.credential.key_id,
        created.credential.secret.expose()
    ));
    out.push_str(&format!("Webhook secret (shown once): {}", created.webhook_secret.expose()));
    if let Some(public) = &created.app_public_key {
        out.push_str(&format!("\n\nApp public key to upload to Alipay:\n{public}"));
    }
    out
}

pub fn keys_set(view: &TenantView, public: Option<&str>, output: Output) -> String {
    if output == Output::Json {
        return to_json(&json!({ "tenant": view, "app_public_key": public }));
    }
    let mut out = tenant(view, Output::Table);
    if let Some(public) = public {
        out.push_str(&format!("\n\nApp public key to upload to Alipay:\n{public}"));
    }
    out
}

pub fn credential(issued: &IssuedCredential, output: Output) -> String {
    if output == Output::Json {
        return to_json(issued);
    }
    format!(
        "New partner API credential (shown once):\n  key id: {}\n  secret: {}\nOlder ones keep working until their overlap ends (at most this rotation's overlap).",
        issued.key_id,
        issued.secret.expose()
    )
}

pub fn revoked(revoked: &Revoked, output: Output) -> String {
    if output == Output::Json {
        return to_json(revoked);
    }
    format!(
        "API key {} revoked: the gateways refuse it as soon as their snapshots reload (milliseconds).\n\n{}",
        revoked.revoked,
        tenant(&revoked.tenant, Output::Table)
    )
}

pub fn rotation(report: &MasterKeyRotation, output: Output) -> String {
    if output == Output::Json {
        return to_json(report);
    }
    format!(
        "{} data key(s) re-wrapped with the current master key; {} already were. Older master keys can now be removed.",
        report.rewrapped, report.already_current
    )
}

pub fn deleted(slug: &str, output: Output) -> String {
    if output == Output::Json {
        to_json(&json!({ "deleted": slug }))
    } else {
        format!("tenant `{slug}` deleted; its secrets are destroyed")
    }
}
