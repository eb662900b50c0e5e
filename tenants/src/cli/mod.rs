//! The `tenants` ops CLI: every operation of the [`Registry`](crate::registry::Registry), with
//! readable tables by default and `--json` for scripts. Inputs (ids, URLs, key files) are read and
//! checked before the database is touched; any failure is one line on stderr and a non-zero exit.
//!
//! # Layout
//! - [`mod@self`]: running a command, its inputs, who acts.
//! - `args`: the command line (clap).
//! - `render`: tables and JSON.
//! - `front_door`: the `front-door` commands (generated secrets only to a 0600 file).
//! - `import`: `import`, a chain's tenants from one JSON-lines file.

mod args;
mod front_door;
mod import;
mod render;

use std::io::Read;
use std::process::ExitCode;
use std::sync::Arc;

use clap::Parser;
use zeroize::Zeroizing;

pub use args::{Cli, Command, FrontDoorCommand};

use crate::model::{AlipayIdentity, Invalid, Limits, NewTenant, SecondaryMerchant, Status, TenantUpdate};
use crate::registry::{AppKeySource, KeyInput, Registry, RegistryError, parse_overlap};
use crate::vault::Keyring;
use crate::{admin, db};

/// Exit codes: 1 the request was refused (bad input, unknown tenant, conflict), 2 usage (clap),
/// 3 we could not do it (database, configuration).
const REFUSED: u8 = 1;
const FAILED: u8 = 3;

/// Why a command stopped.
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    #[error("{0}")]
    Invalid(#[from] Invalid),
    #[error(transparent)]
    Registry(#[from] RegistryError),
    #[error("{0}")]
    Setup(String),
}

impl CliError {
    fn exit_code(&self) -> u8 {
        match self {
            CliError::Invalid(_) => REFUSED,
            CliError::Registry(e) if e.fault() == crate::registry::Fault::Caller => REFUSED,
            _ => FAILED,
        }
    }
}

/// Parses the command line, runs it, prints its result or a one-line error.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("error: cannot start: {error}");
            return ExitCode::from(FAILED);
        }
    };
    match runtime.block_on(run(cli)) {
        Ok(output) => {
            if !output.is_empty() {
                print_out(&output);
            }
            ExitCode::SUCCESS
        }
        Err(error) => {
            eprintln!("error: {error}");
            ExitCode::from(error.exit_code())
        }
    }
}

/// A long-running `admin-serve` logs (failed authentications, failed operations) to stderr,
/// filtered by `RUST_LOG` (default `info`); one-shot commands print one line and log nothing.
fn log_to_stderr() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let _ = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).with_ansi(false).try_init();
}

#[allow(clippy::print_stdout)]
fn print_out(text: &str) {
    println!("{text}");
}

fn read_input(path: &str, what: &str) -> Result<Zeroizing<String>, CliError> {
    let mut text = Zeroizing::new(String::new());
    let result = if path == "-" {
        std::io::stdin().read_to_string(&mut text).map(drop)
    } else {
        std::fs::File::open(path).and_then(|mut f| f.read_to_string(&mut text)).map(drop)
    };
    result.map_err(|e| CliError::Invalid(Invalid(format!("cannot read {what} from {path}: {e}"))))?;
    Ok(text)
}

fn keyring(cli: &Cli) -> Result<Option<Arc<Keyring>>, CliError> {
    let text = match (&cli.master_key_file, &cli.master_keys) {
        (Some(path), _) => read_input(path, "the master key file")?,
        (None, Some(keys)) => Zeroizing::new(keys.clone()),
        (None, None) => return Ok(None),
    };
    Keyring::parse(&text).map(|k| Some(Arc::new(k))).map_err(|e| CliError::Setup(e.to_string()))
}

fn key_input(keys: &args::KeyFiles) -> Result<KeyInput, CliError> {
    let app_private_key = match (&keys.app_private_key_file, keys.generate_app_key) {
        (Some(path), false) => Some(AppKeySource::Text(read_input(path, "the app private key")?)),
        (None, true) => Some(AppKeySource::Generate),
        (None, false) => None,
        (Some(_), true) => {
            return Err(Invalid("give an app private key file or --generate-app-key, not both".into()).into());
        }
    };
    Ok(KeyInput {
        app_private_key,
        app_public_key: keys
            .app_public_key_file
            .as_deref()
            .map(|p| read_input(p, "the app public key"))
            .transpose()?
            .map(|t| t.to_string()),
        alipay_public_key: keys
            .alipay_public_key_file
            .as_deref()
            .map(|p| read_input(p, "the Alipay public key"))
            .transpose()?
            .map(|t| t.to_string()),
        md5_key: keys.md5_key_file.as_deref().map(|p| read_input(p, "the MD5 key")).transpose()?,
    })
}

fn secondary(fields: &args::SecondaryFields) -> Result<Option<SecondaryMerchant>, CliError> {
    match (&fields.secondary_merchant_id, &fields.secondary_merchant_name, &fields.mcc) {
        (None, None, None) if fields.store.is_empty() => Ok(None),
        (Some(id), Some(name), Some(mcc)) => {
            let stores = fields.store.iter().map(|s| s.parse()).collect::<Result<Vec<_>, _>>()?;
            let merchant = SecondaryMerchant { merchant_id: id.clone(), name: name.clone(), mcc: mcc.clone(), stores };
            Ok(Some(merchant.validate()?))
        }
        _ => {
            Err(Invalid("secondary merchant needs --secondary-merchant-id, --secondary-merchant-name and --mcc".into())
                .into())
        }
    }
}

/// The tenant `create` describes, checked.
fn new_tenant(create: &args::CreateArgs) -> Result<NewTenant, CliError> {
    let identity = AlipayIdentity::new(
        create.dialect.parse()?,
        create.app_id.as_deref().or(create.partner.as_deref()).unwrap_or_default(),
        create.seller_id.as_deref(),
        create.sign_type.parse().map_err(|_| Invalid("sign type must be RSA2, RSA or MD5".into()))?,
    )?;
    Ok(NewTenant {
        slug: create.slug.parse()?,
        name: crate::model::display_name(&create.name)?,
        identity,
        environment: create.environment.parse()?,
        limits: Limits {
            pay_rate: create.limits.pay_rate.unwrap_or(Limits::default().pay_rate),
            pay_burst: create.limits.pay_burst.unwrap_or(Limits::default().pay_burst),
            other_rate: create.limits.other_rate.unwrap_or(Limits::default().other_rate),
        }
        .validate()?,
        webhook_url: create.webhook_url.as_deref().map(|u| crate::model::http_url("webhook URL", u)).transpose()?,
        secondary_merchant: secondary(&create.secondary)?,
    }
    .validate()?)
}

async fn registry(cli: &Cli) -> Result<Registry, CliError> {
    let pool = db::pool(&cli.database_url, 2).map_err(|e| CliError::Setup(e.to_string()))?;
    Ok(Registry::new(pool, keyring(cli)?))
}

fn actor(cli: &Cli) -> String {
    command_line_actor(cli.actor.as_deref())
}

/// Who acts on the command line, for an audit trail: always the operating-system account running
/// the command and the host (`cli:alice@ops-1`, from the process's real uid, not from `$USER`,
/// which may be unset or anything), after the name `given` (`--actor`) when there is one
/// (`ops:alice via cli:deploy@ops-1`, for shared accounts).
pub fn command_line_actor(given: Option<&str>) -> String {
    let uid = nix::unistd::getuid();
    let user = match nix::unistd::User::from_uid(uid) {
        Ok(Some(user)) => user.name,
        _ => format!("uid{uid}"),
    };
    let host = nix::unistd::gethostname()
        .ok()
        .and_then(|h| h.into_string().ok())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "unknown-host".into());
    let os = format!("cli:{user}@{host}");
    match given {
        Some(given) => format!("{given} via {os}"),
        None => os,
    }
}

async fn run(cli: Cli) -> Result<String, CliError> {
    let output = if cli.json { render::Output::Json } else { render::Output::Table };
    let actor = actor(&cli);
    match &cli.command {
        Command::Migrate => {
            let applied = db::migrate(&cli.database_url).await.map_err(|e| CliError::Setup(e.to_string()))?;
            Ok(render::migrated(applied, output))
        }
        Command::NewMasterKey { id } => {
            let line = Keyring::generate_line(id).map_err(|e| CliError::Invalid(Invalid(e.to_string())))?;
            Ok(line.to_string())
        }
        Command::Create(create) => {
            let new = new_tenant(create)?;
            let keys = key_input(&create.keys)?;
            let created = registry(&cli).await?.create(&actor, new, keys).await?;
            Ok(render::created(&created, output))
        }
        Command::List => Ok(render::list(&registry(&cli).await?.list().await?, output)),
        Command::Show { slug } => Ok(render::tenant(&registry(&cli).await?.show(slug).await?, output)),
        Command::Update(update) => {
            let change = TenantUpdate {
                name: update.name.clone(),
                environment: update.environment.as_deref().map(str::parse).transpose()?,
                alipay_id: update.app_id.clone().or_else(|| update.partner.clone()),
                seller_id: update.seller_id.clone().map(Some),
                pay_rate: update.limits.pay_rate,
                pay_burst: update.limits.pay_burst,
                other_rate: update.limits.other_rate,
                webhook_url: if update.no_webhook { Some(None) } else { update.webhook_url.clone().map(Some) },
                secondary_merchant: secondary(&update.secondary)?.map(Some),
            };
            let keys = key_input(&update.keys)?;
            Ok(render::tenant(&registry(&cli).await?.update(&actor, &update.slug, change, keys).await?, output))
        }
        Command::Suspend { slug } => {
            Ok(render::tenant(&registry(&cli).await?.set_status(&actor, slug, Status::Suspended).await?, output))
        }
        Command::Resume { slug } => {
            Ok(render::tenant(&registry(&cli).await?.set_status(&actor, slug, Status::Active).await?, output))
        }
        Command::SetAlipayKey { slug, file, generate, public_key_file } => {
            let keys = key_input(&args::KeyFiles {
                app_private_key_file: file.clone(),
                generate_app_key: *generate,
                app_public_key_file: public_key_file.clone(),
                ..args::KeyFiles::default()
            })?;
            if keys.app_private_key.is_none() {
                return Err(Invalid("give --file FILE or --generate".into()).into());
            }
            let (view, public) = registry(&cli).await?.set_keys(&actor, slug, keys).await?;
            Ok(render::keys_set(&view, public.as_deref(), output))
        }
        Command::SetAlipayPublicKey { slug, file } => {
            let keys = KeyInput {
                alipay_public_key: Some(read_input(file, "the Alipay public key")?.to_string()),
                ..KeyInput::default()
            };
            let (view, _) = registry(&cli).await?.set_keys(&actor, slug, keys).await?;
            Ok(render::keys_set(&view, None, output))
        }
        Command::SetMd5Key { slug, file } => {
            let keys = KeyInput { md5_key: Some(read_input(file, "the MD5 key")?), ..KeyInput::default() };
            let (view, _) = registry(&cli).await?.set_keys(&actor, slug, keys).await?;
            Ok(render::keys_set(&view, None, output))
        }
        Command::RotateApiSecret { slug, overlap } => {
            let overlap = parse_overlap(overlap)?;
            let issued = registry(&cli).await?.rotate_api_secret(&actor, slug, overlap).await?;
            Ok(render::credential(&issued, output))
        }
        Command::RevokeApiKey { slug, key_id, allow_last } => {
            let revoked = registry(&cli).await?.revoke_api_key(&actor, slug, key_id, *allow_last).await?;
            Ok(render::revoked(&revoked, output))
        }
        Command::RotateMasterKey => {
            let report = registry(&cli).await?.rotate_master_key(&actor).await?;
            Ok(render::rotation(&report, output))
        }
        Command::Delete { slug } => {
            registry(&cli).await?.delete(&actor, slug).await?;
            Ok(render::deleted(slug, output))
        }
        Command::FrontDoor(command) => front_door::run(&cli, command, &actor, output).await,
        Command::Import(import) => import::run(&cli, import, &actor, output).await,
        Command::AdminServe { listen } => {
            let token = admin::AdminToken::from_env().map_err(CliError::Setup)?;
            log_to_stderr();
            let listener =
                telemetry::server::bind(*listen).map_err(|e| CliError::Setup(format!("cannot bind {listen}: {e}")))?;
            let addr = listener.local_addr().map_err(|e| CliError::Setup(e.to_string()))?;
            print_out(&format!("tenants admin API listening on http://{addr}"));
            admin::serve(listener, registry(&cli).await?, token, service::shutdown_signal()).await;
            Ok(String::new())
        }
    }
}
