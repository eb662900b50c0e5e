//! The command line.

use std::net::SocketAddr;

use clap::{Args, Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(
    name = "tenants",
    version,
    about = "Onboard and manage the gateway's tenants (restaurants) and their Alipay keys"
)]
pub struct Cli {
    /// Postgres URL. TLS as libpq means it: `?sslmode=require` (encrypted), or
    /// `?sslmode=verify-full&sslrootcert=FILE` (verified; or PGSSLROOTCERT).
    #[arg(long, env = "DATABASE_URL", default_value = "postgres://postgres@127.0.0.1:5432/acquirer", global = true)]
    pub database_url: String,
    /// File of master keys, one `<id> <base64 of 32 bytes>` per line, the current one first.
    #[arg(long, env = "ACQ_MASTER_KEY_FILE", global = true)]
    pub master_key_file: Option<String>,
    /// Master keys inline, `id:base64,...` (current first); prefer --master-key-file.
    #[arg(long, env = "ACQ_MASTER_KEYS", hide_env_values = true, global = true)]
    pub master_keys: Option<String>,
    /// Who is making the change, for the audit trail. The trail always names the OS account and
    /// host running the command (`cli:alice@ops-1`); a name given here is put before it
    /// (`ops:alice via cli:deploy@ops-1`).
    #[arg(long, env = "ACQ_ACTOR", global = true)]
    pub actor: Option<String>,
    /// Print JSON instead of tables.
    #[arg(long, global = true)]
    pub json: bool,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Apply the database migrations.
    Migrate,
    /// Print a new random master key line to add to the key ring.
    NewMasterKey {
        #[arg(long)]
        id: String,
    },
    /// Onboard a tenant; prints its partner API key and webhook secret once.
    Create(Box<CreateArgs>),
    /// List the tenants.
    List,
    /// Show one tenant (never a secret).
    Show { slug: String },
    /// Change limits, webhook, environment, Alipay id (and keys with them).
    Update(Box<UpdateArgs>),
    /// Stop a tenant's new calls; its open trades are still settled.
    Suspend { slug: String },
    /// Undo a suspension.
    Resume { slug: String },
    /// Set the app private key (RSA2 / RSA tenants), from a file or generated.
    SetAlipayKey {
        slug: String,
        /// PEM (PKCS#1 or PKCS#8) or bare base64; `-` reads stdin.
        #[arg(long, conflicts_with = "generate")]
        file: Option<String>,
        /// Generate an RSA-2048 key pair; its public half is printed to upload to Alipay.
        #[arg(long)]
        generate: bool,
        /// The app public key uploaded to Alipay: refused unless it matches the private key.
        #[arg(long)]
        public_key_file: Option<String>,
    },
    /// Set Alipay's public key (RSA2 / RSA tenants).
    SetAlipayPublicKey {
        slug: String,
        #[arg(long)]
        file: String,
    },
    /// Set the MD5 key (Global MD5 tenants); `--file -` reads stdin.
    SetMd5Key {
        slug: String,
        #[arg(long)]
        file: String,
    },
    /// Issue a new partner API secret; every older one keeps working for the overlap at most.
    ///
    /// An older key still in a longer overlap (an earlier rotation's) is shortened to this one.
    RotateApiSecret {
        slug: String,
        /// How long older secrets keep working: 30m, 24h, 7d (at most 30 days; 0s ends them now).
        #[arg(long, default_value = "24h")]
        overlap: String,
    },
    /// End one partner API key at once (a leaked secret).
    ///
    /// The running gateways refuse it within milliseconds; the audit trail names it. The tenant's
    /// last live key is kept unless --allow-last: replace it with `rotate-api-secret SLUG
    /// --overlap 0s` instead, which ends every older key and prints the new one.
    RevokeApiKey {
        slug: String,
        /// The key id (`ak_…`, as `show` lists it).
        key_id: String,
        /// Revoke it even if it is the tenant's last live key (every POS is then refused).
        #[arg(long)]
        allow_last: bool,
    },
    /// Re-wrap every data key with the current (first) master key.
    RotateMasterKey,
    /// Delete a tenant with no open trades (its secrets are destroyed).
    Delete { slug: String },
    /// Create or update many tenants (a chain) from a JSON-lines file: one object per line with
    /// `create`'s fields (docs/runbook.md §1h); each row its own transaction, a second run of the
    /// same file changes nothing. New credentials go to --credentials-out, never to the terminal.
    Import(ImportArgs),
    /// The tenant's front door: the Alipay-compatible gateway.do its POS software may call.
    #[command(subcommand)]
    FrontDoor(FrontDoorCommand),
    /// Serve the admin HTTP API (token in ACQ_ADMIN_TOKEN: 32+ characters, not deploy/'s example).
    AdminServe {
        #[arg(long, default_value = "127.0.0.1:9092")]
        listen: SocketAddr,
    },
}

#[derive(Debug, Args)]
pub struct CreateArgs {
    pub slug: String,
    #[arg(long)]
    pub name: String,
    /// `openapi` or `mapi` (Global).
    #[arg(long)]
    pub dialect: String,
    /// OpenAPI app id.
    #[arg(long, conflicts_with = "partner", required_unless_present = "partner")]
    pub app_id: Option<String>,
    /// Global partner id (2088...).
    #[arg(long)]
    pub partner: Option<String>,
    /// Global seller id, when not the partner.
    #[arg(long)]
    pub seller_id: Option<String>,
    /// RSA2, RSA or MD5.
    #[arg(long)]
    pub sign_type: String,
    /// `sandbox`, `production`, or a gateway.do URL.
    #[arg(long, default_value = "sandbox")]
    pub environment: String,
    #[command(flatten)]
    pub limits: LimitArgs,
    #[arg(long)]
    pub webhook_url: Option<String>,
    #[command(flatten)]
    pub secondary: SecondaryFields,
    #[command(flatten)]
    pub keys: KeyFiles,
}

#[derive(Debug, Args)]
pub struct ImportArgs {
    /// One JSON object per line, or a CSV file (`.csv`, UTF-8) whose header row names the same
    /// fields (`stores`: `ID:NAME` entries split by `;`); key file paths are relative to the
    /// file's folder.
    #[arg(long)]
    pub file: String,
    /// Where the created tenants' credentials go, one JSON object per line: created new, mode 0600.
    #[arg(long)]
    pub credentials_out: String,
}

#[derive(Debug, Args)]
pub struct UpdateArgs {
    pub slug: String,
    #[arg(long)]
    pub name: Option<String>,
    #[arg(long)]
    pub environment: Option<String>,
    #[arg(long, conflicts_with = "partner")]
    pub app_id: Option<String>,
    #[arg(long)]
    pub partner: Option<String>,
    #[arg(long)]
    pub seller_id: Option<String>,
    #[command(flatten)]
    pub limits: LimitArgs,
    #[arg(long, conflicts_with = "no_webhook")]
    pub webhook_url: Option<String>,
    /// Remove the webhook URL.
    #[arg(long)]
    pub no_webhook: bool,
    #[command(flatten)]
    pub secondary: SecondaryFields,
    #[command(flatten)]
    pub keys: KeyFiles,
}

#[derive(Debug, Args)]
pub struct LimitArgs {
    /// Payments per second.
    #[arg(long)]
    pub pay_rate: Option<u32>,
    /// Payments allowed in a burst.
    #[arg(long)]
    pub pay_burst: Option<u32>,
    /// Queries, cancels and refunds per second.
    #[arg(long)]
    pub other_rate: Option<u32>,
}

#[derive(Debug, Args, Default)]
pub struct SecondaryFields {
    #[arg(long)]
    pub secondary_merchant_id: Option<String>,
    #[arg(long)]
    pub secondary_merchant_name: Option<String>,
    /// Merchant category code (4 digits).
    #[arg(long)]
    pub mcc: Option<String>,
    /// A store as `ID:NAME`; repeat for more.
    #[arg(long)]
    pub store: Vec<String>,
}

#[derive(Debug, Args, Default)]
pub struct KeyFiles {
    /// App private key file (PEM or bare base64; `-` reads stdin).
    #[arg(long)]
    pub app_private_key_file: Option<String>,
    /// Generate the app key pair; its public half is printed to upload to Alipay.
    #[arg(long)]
    pub generate_app_key: bool,
    /// The app public key: refused unless it matches the private key.
    #[arg(long)]
    pub app_public_key_file: Option<String>,
    /// Alipay's public key file.
    #[arg(long)]
    pub alipay_public_key_file: Option<String>,
    /// MD5 key file (`-` reads stdin).
    #[arg(long)]
    pub md5_key_file: Option<String>,
}

#[derive(Debug, Subcommand)]
pub enum FrontDoorCommand {
    /// Enable the front door: its id, its POS key and (RSA2 / RSA) a new platform key pair.
    ///
    /// Prints the id and the platform public key (to install in the POS as "Alipay's public
    /// key"); a generated POS key goes only to --secrets-out.
    Enable(Box<EnableFrontDoorArgs>),
    /// Show the front door (public keys and fingerprints only).
    Show { slug: String },
    /// Replace the POS key; the previous one keeps verifying for the overlap.
    RotatePosKey(Box<RotatePosKeyArgs>),
    /// Generate a new platform key pair: published now, it signs once the overlap ends (the old one
    /// signs until then); POS operators install its public key meanwhile.
    RotatePlatformKey {
        slug: String,
        /// When the new key starts signing: 30m, 24h, 7d (at most 30 days; 0s: now).
        #[arg(long, default_value = "24h")]
        overlap: String,
    },
    /// Remove the front door (its keys are destroyed; its id becomes free).
    Disable { slug: String },
}

#[derive(Debug, Args)]
pub struct EnableFrontDoorArgs {
    pub slug: String,
    /// RSA2 or RSA (OpenAPI tenants); MD5, RSA or RSA2 (Global MAPI tenants).
    #[arg(long)]
    pub sign_type: String,
    /// The app id (OpenAPI, 1 to 32 digits) or partner (MAPI, 2088 and 12 digits) the POS will
    /// send; generated when absent.
    #[arg(long)]
    pub id: Option<String>,
    #[command(flatten)]
    pub pos_key: PosKeyArgs,
}

#[derive(Debug, Args)]
pub struct RotatePosKeyArgs {
    pub slug: String,
    /// How long the previous POS key keeps verifying: 30m, 24h, 7d (at most 30 days; 0s ends it now).
    #[arg(long, default_value = "24h")]
    pub overlap: String,
    #[command(flatten)]
    pub pos_key: PosKeyArgs,
}

/// The POS key: exactly one source.
#[derive(Debug, Args)]
pub struct PosKeyArgs {
    /// The POS's public key file (RSA2 / RSA; PEM or bare base64; `-` reads stdin).
    #[arg(long)]
    pub pos_public_key_file: Option<String>,
    /// The MD5 key file (MD5; `-` reads stdin).
    #[arg(long)]
    pub md5_key_file: Option<String>,
    /// Generate the POS key (an RSA-2048 key pair, or an MD5 key); needs --secrets-out.
    #[arg(long)]
    pub generate_pos_key: bool,
    /// Where the generated POS key goes: a new file (it must not exist), mode 0600. Generated
    /// secrets are never printed.
    #[arg(long)]
    pub secrets_out: Option<String>,
}
