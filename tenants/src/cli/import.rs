//! `tenants import`: a chain's tenants from one file, each line `create`'s fields: JSON lines, or
//! a CSV file (`.csv`, UTF-8, as a spreadsheet saves it) whose header row names the same fields,
//! an empty cell being a field not given and `stores` holding `ID:NAME` entries split by `;`. A
//! tenant not there yet is created (its keys set from the files the line names); one that is
//! there is brought to what the line says (name, environment, Alipay ids, limits, webhook,
//! secondary merchant and its stores), its keys left as they are; each row is its own
//! transaction, so a second run of the same file changes nothing. Lines are read and checked
//! before the database is touched; a bad line is refused on its own. The created tenants'
//! credentials go to a file created new with mode 0600 (never to the terminal); the report says
//! per line what was done, and the command fails (exit 1) when any line was refused.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use serde_json::json;

use super::args::{CreateArgs, ImportArgs, KeyFiles, LimitArgs, SecondaryFields};
use super::front_door::SecretsOut;
use super::render::{Output, table, to_json};
use super::{Cli, CliError, key_input, new_tenant, print_out, registry};
use crate::model::Invalid;
use crate::registry::{Imported, Registry};

/// The file is read whole: a chain of 10,000 stores' tenants is a few MB.
const MAX_FILE_BYTES: u64 = 16 << 20;
const MAX_ROWS: usize = 10_000;

/// One line: `tenants create`'s options as fields (`stores` as `ID:NAME` strings).
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Row {
    slug: String,
    name: String,
    dialect: String,
    app_id: Option<String>,
    partner: Option<String>,
    seller_id: Option<String>,
    sign_type: String,
    #[serde(default = "sandbox")]
    environment: String,
    pay_rate: Option<u32>,
    pay_burst: Option<u32>,
    other_rate: Option<u32>,
    webhook_url: Option<String>,
    secondary_merchant_id: Option<String>,
    secondary_merchant_name: Option<String>,
    mcc: Option<String>,
    #[serde(default)]
    stores: Vec<String>,
    app_private_key_file: Option<String>,
    #[serde(default)]
    generate_app_key: bool,
    app_public_key_file: Option<String>,
    alipay_public_key_file: Option<String>,
    md5_key_file: Option<String>,
}

fn sandbox() -> String {
    "sandbox".into()
}

impl Row {
    /// The row as `create`'s arguments, its key files found from `folder`.
    fn create_args(self, folder: &Path) -> Result<CreateArgs, CliError> {
        let file = |path: Option<String>| -> Result<Option<String>, CliError> {
            match path.as_deref() {
                None => Ok(None),
                Some("-") => Err(Invalid("a key file cannot be stdin (-) in an import".into()).into()),
                Some(path) => Ok(Some(folder.join(path).to_string_lossy().into_owned())),
            }
        };
        Ok(CreateArgs {
            slug: self.slug,
            name: self.name,
            dialect: self.dialect,
            app_id: self.app_id,
            partner: self.partner,
            seller_id: self.seller_id,
            sign_type: self.sign_type,
            environment: self.environment,
            limits: LimitArgs { pay_rate: self.pay_rate, pay_burst: self.pay_burst, other_rate: self.other_rate },
            webhook_url: self.webhook_url,
            secondary: SecondaryFields {
                secondary_merchant_id: self.secondary_merchant_id,
                secondary_merchant_name: self.secondary_merchant_name,
                mcc: self.mcc,
                store: self.stores,
            },
            keys: KeyFiles {
                app_private_key_file: file(self.app_private_key_file)?,
                generate_app_key: self.generate_app_key,
                app_public_key_file: file(self.app_public_key_file)?,
                alipay_public_key_file: file(self.alipay_public_key_file)?,
                md5_key_file: file(self.md5_key_file)?,
            },
        })
    }
}

/// What was done with one line.
#[derive(Serialize)]
struct Done {
    line: usize,
    slug: String,
    /// `created`, `updated`, `unchanged` or `refused`.
    action: &'static str,
    detail: String,
}

pub(super) async fn run(cli: &Cli, import: &ImportArgs, actor: &str, output: Output) -> Result<String, CliError> {
    let rows = read_rows(&import.file)?;
    let mut out = SecretsOut::create(&import.credentials_out)?;
    let registry = match registry(cli).await {
        Ok(registry) => registry,
        Err(error) => {
            out.abandon();
            return Err(error);
        }
    };
    let mut done = Vec::with_capacity(rows.len());
    let mut created = 0;
    for (line, slug, row) in rows {
        let result = match row {
            Ok(create) => import_row(&registry, actor, create, &mut out).await,
            Err(error) => Err(error),
        };
        let (action, detail) = result.unwrap_or_else(|error| ("refused", error.to_string()));
        created += usize::from(action == "created");
        done.push(Done { line, slug, action, detail });
    }
    if created == 0 {
        out.abandon();
    }
    let refused = done.iter().filter(|d| d.action == "refused").count();
    print_out(&report(&done, created, &import.credentials_out, output));
    if refused > 0 {
        return Err(Invalid(format!("{refused} of {} lines refused (the report above says why)", done.len())).into());
    }
    Ok(String::new())
}

/// Each line of `path` with its number and slug: the tenant it describes, or why not.
type Rows = Vec<(usize, String, Result<CreateArgs, CliError>)>;

fn read_rows(path: &str) -> Result<Rows, CliError> {
    let cannot = |e: std::io::Error| CliError::Invalid(Invalid(format!("cannot read {path}: {e}")));
    let size = std::fs::metadata(path).map_err(cannot)?.len();
    if size > MAX_FILE_BYTES {
        return Err(Invalid(format!("{path} is over {} MiB", MAX_FILE_BYTES >> 20)).into());
    }
    let bytes = std::fs::read(path).map_err(cannot)?;
    let text = String::from_utf8(bytes).map_err(|e| {
        Invalid(format!(
            "{path} is not UTF-8 (byte {}); save it as UTF-8 (\"CSV UTF-8\")",
            e.utf8_error().valid_up_to()
        ))
    })?;
    // A spreadsheet's UTF-8 files often start with a byte-order mark.
    let text = text.strip_prefix('\u{feff}').unwrap_or(&text);
    let lines = match Path::new(path).extension().is_some_and(|e| e.eq_ignore_ascii_case("csv")) {
        true => csv_lines(path, text)?,
        false => json_lines(text),
    };
    let folder = Path::new(path).parent().map_or_else(PathBuf::new, Path::to_path_buf);
    let mut rows: Rows = Vec::new();
    let mut slugs = std::collections::HashSet::new();
    for (n, line) in lines {
        if rows.len() == MAX_ROWS {
            return Err(Invalid(format!("{path} has more than {MAX_ROWS} tenants; split it")).into());
        }
        // The slug, for the report, even from a line that is not a tenant.
        let slug = line
            .as_ref()
            .ok()
            .and_then(|v| v.get("slug")?.as_str().map(str::to_owned))
            .unwrap_or_else(|| "-".to_owned());
        let parsed = line.and_then(|v| serde_json::from_value::<Row>(v).map_err(|e| Invalid(e.to_string())));
        let row = parsed.map_err(CliError::from).and_then(|row| row.create_args(&folder));
        let row = match row {
            Ok(_) if !slugs.insert(slug.clone()) => Err(Invalid(format!("{slug} is on an earlier line too")).into()),
            other => other,
        };
        rows.push((n, slug, row));
    }
    if rows.is_empty() {
        return Err(Invalid(format!("{path} holds no tenant")).into());
    }
    Ok(rows)
}

/// Each line of a file: its number, and its object or why it is not one.
type Lines = Vec<(usize, Result<serde_json::Value, Invalid>)>;

/// One JSON object per line; blank lines and `#` comments skipped.
fn json_lines(text: &str) -> Lines {
    let lines = text.lines().enumerate().map(|(n, line)| (n + 1, line.trim()));
    let lines = lines.filter(|(_, line)| !line.is_empty() && !line.starts_with('#'));
    lines.map(|(n, line)| (n, serde_json::from_str(line).map_err(|e| Invalid(e.to_string())))).collect()
}

/// The fields a CSV cell gives as a number, a yes/no, or a list.
const NUMBERS: [&str; 3] = ["pay_rate", "pay_burst", "other_rate"];
const FLAGS: [&str; 1] = ["generate_app_key"];
const LISTS: [&str; 1] = ["stores"];

/// A header row naming the fields, then one tenant per row, each as the object a JSON line
/// would be (so both are checked alike); a row with another number of cells is refused on its
/// own.
fn csv_lines(path: &str, text: &str) -> Result<Lines, CliError> {
    let mut reader = csv::ReaderBuilder::new().flexible(true).from_reader(text.as_bytes());
    let header = reader.headers().map_err(|e| Invalid(format!("{path}: its header row: {e}")))?.clone();
    let names: Vec<&str> = header.iter().map(str::trim).collect();
    if let Some(name) = names.iter().enumerate().find_map(|(i, name)| names[..i].contains(name).then_some(name)) {
        return Err(Invalid(format!("{path}: the column {name} is named twice")).into());
    }
    let mut lines = Vec::new();
    let mut record = csv::StringRecord::new();
    while reader.read_record(&mut record).map_err(|e| Invalid(format!("{path}: {e}")))? {
        let n = record.position().map_or(0, |p| line_at(text, p.byte()));
        if record.iter().all(|cell| cell.trim().is_empty()) {
            continue;
        }
        let line = match record.len() == names.len() {
            true => Ok(csv_object(&names, &record)),
            false => Err(Invalid(format!("{} cells where the header names {}", record.len(), names.len()))),
        };
        lines.push((n, line));
    }
    Ok(lines)
}

/// The line (1-based) of the record the reader says starts at `byte`: the reader's own line count
/// lags a line ending behind, and its start may be the ending before the record.
fn line_at(text: &str, byte: u64) -> usize {
    let bytes = text.as_bytes();
    let start = usize::try_from(byte).unwrap_or(usize::MAX).min(bytes.len());
    let start = start + bytes[start..].iter().take_while(|&&b| matches!(b, b'\r' | b'\n')).count();
    bytes[..start].iter().filter(|&&b| b == b'\n').count() + 1
}

/// A CSV row as a JSON line's object: empty cells left out, numbers and flags typed where they
/// read as such (else left as text, for the field's own error), lists split.
fn csv_object(names: &[&str], record: &csv::StringRecord) -> serde_json::Value {
    let mut object = serde_json::Map::new();
    for (name, cell) in names.iter().zip(record) {
        let cell = cell.trim();
        if cell.is_empty() {
            continue;
        }
        let value = if NUMBERS.contains(name) {
            cell.parse::<u64>().map_or_else(|_| json!(cell), |n| json!(n))
        } else if FLAGS.contains(name) {
            // A spreadsheet writes TRUE and FALSE.
            cell.to_ascii_lowercase().parse::<bool>().map_or_else(|_| json!(cell), |b| json!(b))
        } else if LISTS.contains(name) {
            json!(cell.split(';').map(str::trim).filter(|s| !s.is_empty()).collect::<Vec<_>>())
        } else {
            json!(cell)
        };
        object.insert((*name).to_owned(), value);
    }
    serde_json::Value::Object(object)
}

/// Creates the tenant of `create`, or brings the existing one to it.
async fn import_row(
    registry: &Registry,
    actor: &str,
    create: CreateArgs,
    out: &mut SecretsOut,
) -> Result<(&'static str, String), CliError> {
    let new = new_tenant(&create)?;
    let keys = key_input(&create.keys)?;
    let keys_note = if keys.is_empty() { "" } else { "; its keys left as they are (set-alipay-key, set-md5-key)" };
    Ok(match registry.import(actor, new, keys).await? {
        Imported::Created(created) => {
            let line = json!({
                "slug": created.tenant.slug,
                "key_id": created.credential.key_id,
                "secret": created.credential.secret.expose(),
                "webhook_secret": created.webhook_secret.expose(),
                "app_public_key": created.app_public_key,
            });
            out.append(&format!("{line}\n")).map_err(|e| {
                CliError::Setup(format!(
                    "{} was created but its credentials could not be written: {e}; rotate its API secret",
                    created.tenant.slug
                ))
            })?;
            let ready = if created.tenant.ready { "ready" } else { "keys still to set" };
            ("created", format!("{}; {ready}", created.credential.key_id))
        }
        Imported::Updated { changed, .. } => ("updated", format!("{}{keys_note}", changed.join(", "))),
        Imported::Unchanged { .. } => ("unchanged", format!("as the file says{keys_note}")),
    })
}

fn report(done: &[Done], created: usize, credentials: &str, output: Output) -> String {
    let count = |action: &str| done.iter().filter(|d| d.action == action).count();
    let (updated, unchanged, refused) = (count("updated"), count("unchanged"), count("refused"));
    if output == Output::Json {
        let credentials = (created > 0).then_some(credentials);
        return to_json(&json!({ "lines": done, "credentials_out": credentials }));
    }
    let mut rows = table(&["line", "tenant", "done", "detail"]);
    for d in done {
        rows.add_row(vec![d.line.to_string(), d.slug.clone(), d.action.to_owned(), d.detail.clone()]);
    }
    let mut text = format!("{rows}\n{created} created, {updated} updated, {unchanged} unchanged, {refused} refused.");
    if created > 0 {
        text.push_str(&format!(
            "\nThe new credentials are in {credentials} (readable only by you): give each to its POS integrator."
        ));
    }
    text
}
