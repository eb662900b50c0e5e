//! `tenants front-door enable|show|rotate-pos-key|rotate-platform-key|disable SLUG`.
//!
//! A generated POS key (an RSA private key or an MD5 key) is never printed: it goes only to the
//! file `--secrets-out` names, created new with mode 0600 before the database is touched (and
//! removed again if the operation is refused). The id and the platform public key are printed.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;

use serde_json::json;
use time::OffsetDateTime;
use zeroize::Zeroizing;

use super::args::{FrontDoorCommand, PosKeyArgs};
use super::render::{Output, short, table, to_json};
use super::{Cli, CliError, read_input, registry};
use crate::model::{Dialect, Invalid};
use crate::registry::{FrontDoorInput, FrontDoorIssued, FrontDoorView, PosKeySource, RegistryError, parse_overlap};

/// The file generated secrets go to: created (new, 0600) before the operation runs.
pub(super) struct SecretsOut {
    path: String,
    file: File,
}

impl SecretsOut {
    pub(super) fn create(path: &str) -> Result<Self, CliError> {
        let file = OpenOptions::new().write(true).create_new(true).mode(0o600).open(path).map_err(|e| {
            CliError::Invalid(Invalid(format!(
                "cannot create {path} for the generated secrets (it must not exist): {e}"
            )))
        })?;
        Ok(SecretsOut { path: path.to_owned(), file })
    }

    /// The operation was refused: the (empty) file goes.
    pub(super) fn abandon(self) {
        drop(self.file);
        let _ = std::fs::remove_file(&self.path);
    }

    /// Adds `text` and waits until it is on disk; answers what failed.
    pub(super) fn append(&mut self, text: &str) -> std::io::Result<()> {
        self.file.write_all(text.as_bytes()).and_then(|()| self.file.sync_all())
    }

    fn write(mut self, text: &str) -> Result<String, CliError> {
        self.append(text).map_err(|e| {
            CliError::Setup(format!(
                "the front door was changed but its generated secrets could not be written to {}: {e}; \
                 rotate the POS key again",
                self.path
            ))
        })?;
        Ok(self.path)
    }
}

/// The one POS key source the arguments give, and where generated secrets go.
fn pos_source(args: &PosKeyArgs) -> Result<(PosKeySource, Option<&str>), CliError> {
    let given = [args.pos_public_key_file.is_some(), args.md5_key_file.is_some(), args.generate_pos_key];
    if given.iter().filter(|g| **g).count() != 1 {
        return Err(Invalid("give one of --pos-public-key-file, --md5-key-file or --generate-pos-key".into()).into());
    }
    match (args.generate_pos_key, args.secrets_out.as_deref()) {
        (true, None) => {
            return Err(Invalid(
                "--generate-pos-key needs --secrets-out FILE: a generated key is written there, never printed".into(),
            )
            .into());
        }
        (false, Some(_)) => return Err(Invalid("--secrets-out is only for --generate-pos-key".into()).into()),
        _ => {}
    }
    let source = if let Some(path) = &args.pos_public_key_file {
        PosKeySource::PublicKey(read_input(path, "the POS public key")?.to_string())
    } else if let Some(path) = &args.md5_key_file {
        PosKeySource::Md5Key(read_input(path, "the MD5 key")?)
    } else {
        PosKeySource::Generate
    };
    Ok((source, args.secrets_out.as_deref()))
}

pub(super) async fn run(
    cli: &Cli,
    command: &FrontDoorCommand,
    actor: &str,
    output: Output,
) -> Result<String, CliError> {
    match command {
        FrontDoorCommand::Enable(args) => {
            let sign_type = args.sign_type.parse().map_err(|_| Invalid("sign type must be RSA2, RSA or MD5".into()))?;
            let (pos_key, out) = pos_source(&args.pos_key)?;
            let registry = registry(cli).await?;
            let out = out.map(SecretsOut::create).transpose()?;
            let input = FrontDoorInput { id: args.id.clone(), sign_type, pos_key };
            let result = registry.enable_front_door(actor, &args.slug, input).await;
            issued(&args.slug, "enabled", result, out, output)
        }
        FrontDoorCommand::RotatePosKey(args) => {
            let overlap = parse_overlap(&args.overlap)?;
            let (pos_key, out) = pos_source(&args.pos_key)?;
            let registry = registry(cli).await?;
            let out = out.map(SecretsOut::create).transpose()?;
            let result = registry.rotate_front_door_pos_key(actor, &args.slug, pos_key, overlap).await;
            issued(&args.slug, "has a new POS key", result, out, output)
        }
        FrontDoorCommand::RotatePlatformKey { slug, overlap } => {
            let overlap = parse_overlap(overlap)?;
            let result = registry(cli).await?.rotate_front_door_platform_key(actor, slug, overlap).await;
            issued(slug, "has a new platform key", result, None, output)
        }
        FrontDoorCommand::Show { slug } => {
            let view = registry(cli).await?.show(slug).await?;
            let door = view.front_door.ok_or_else(|| RegistryError::NoFrontDoor(slug.clone()))?;
            Ok(if output == Output::Json { to_json(&door) } else { door_table(slug, &door) })
        }
        FrontDoorCommand::Disable { slug } => {
            let door = registry(cli).await?.disable_front_door(actor, slug).await?;
            Ok(if output == Output::Json {
                to_json(&json!({ "disabled": door }))
            } else {
                format!("the front door {} of `{slug}` is disabled; its keys are destroyed", door.id)
            })
        }
    }
}

fn id_label(dialect: Dialect) -> &'static str {
    match dialect {
        Dialect::Openapi => "app id",
        Dialect::Mapi => "partner",
    }
}

/// Writes the generated secrets (if any) to their file and renders the rest.
fn issued(
    slug: &str,
    what: &str,
    result: Result<FrontDoorIssued, RegistryError>,
    out: Option<SecretsOut>,
    output: Output,
) -> Result<String, CliError> {
    let issued = match result {
        Ok(issued) => issued,
        Err(error) => {
            if let Some(out) = out {
                out.abandon();
            }
            return Err(error.into());
        }
    };
    let written = match out {
        Some(out) => Some(out.write(&secrets_text(slug, &issued, output))?),
        None => None,
    };
    if output == Output::Json {
        return Ok(to_json(&json!({
            "id": issued.id,
            "sign_type": issued.sign_type.as_str(),
            "platform_public_key": issued.platform_public_key,
            "secrets_out": written,
            "front_door": issued.front_door,
        })));
    }
    let door = &issued.front_door;
    let mut text = format!(
        "The front door of `{slug}` {what}: {} {}, sign type {}.\n",
        id_label(door.dialect),
        issued.id,
        issued.sign_type
    );
    if let Some(public) = &issued.platform_public_key {
        text.push_str(&format!(
            "\nPlatform public key (install it in the POS as \"Alipay's public key\"):\n{public}\n"
        ));
    }
    if let Some(path) = written {
        text.push_str(&format!(
            "\nThe generated POS key is in {path} (mode 0600): hand it to the POS vendor, then delete the file.\n"
        ));
    }
    text.push('\n');
    text.push_str(&door_table(slug, door));
    Ok(text)
}

/// The secrets file: JSON with `--json`, else text with the PEM blocks as POS vendors take them.
fn secrets_text(slug: &str, issued: &FrontDoorIssued, output: Output) -> Zeroizing<String> {
    if output == Output::Json {
        return Zeroizing::new(to_json(issued));
    }
    let mut text = Zeroizing::new(format!(
        "# The front door of `{slug}`: generated secrets, shown once. Hand them to the POS vendor, then delete \
         this file.\n{}: {}\nsign_type: {}\n",
        id_label(issued.front_door.dialect).replace(' ', "_"),
        issued.id,
        issued.sign_type
    ));
    let blocks = [
        ("POS private key, PKCS#1 PEM", &issued.pos_private_key_pkcs1_pem),
        ("POS private key, PKCS#8 PEM", &issued.pos_private_key_pkcs8_pem),
        ("MD5 key", &issued.md5_key),
    ];
    for (name, secret) in blocks {
        if let Some(secret) = secret {
            text.push_str(&format!("\n# {name}:\n{}\n", secret.trim_end()));
        }
    }
    if let Some(public) = &issued.platform_public_key {
        text.push_str(&format!("\n# Platform public key (\"Alipay's public key\" for the POS), base64:\n{public}\n"));
    }
    text
}

fn door_table(slug: &str, door: &FrontDoorView) -> String {
    let mut out = table(&["field", "value"]);
    let now = OffsetDateTime::now_utc();
    let pos_keys: Vec<String> = door
        .pos_keys
        .iter()
        .map(|k| {
            let name = if k.fingerprint.is_some() { short(&k.fingerprint) } else { format!("MD5 key v{}", k.version) };
            match k.until {
                Some(until) => format!("{name} (verifies until {until})"),
                None => format!("{name} (current)"),
            }
        })
        .collect();
    let platform_keys: Vec<String> = door
        .platform_keys
        .iter()
        .map(|k| {
            let name = short(&Some(k.fingerprint.clone()));
            match k.until {
                _ if k.from > now => format!("{name} (signs from {})", k.from),
                Some(until) => format!("{name} (signing until {until})"),
                None => format!("{name} (signing)"),
            }
        })
        .collect();
    let rows: Vec<(&str, String)> = vec![
        ("tenant", slug.to_owned()),
        (id_label(door.dialect), door.id.clone()),
        ("dialect", door.dialect.as_str().into()),
        ("sign type", door.sign_type.as_str().into()),
        ("POS keys", pos_keys.join("\n")),
        (
            "platform keys",
            if platform_keys.is_empty() { "- (the MD5 key signs)".into() } else { platform_keys.join("\n") },
        ),
        ("enabled", door.created_at.to_string()),
    ];
    for (field, value) in rows {
        out.add_row(vec![field.to_owned(), value]);
    }
    let mut text = out.to_string();
    if let Some(newest) = door.platform_keys.iter().max_by_key(|k| k.from) {
        text.push_str(&format!("\nNewest platform public key (base64):\n{}", newest.public_key));
    }
    text
}
