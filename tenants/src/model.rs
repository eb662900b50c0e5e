//! A tenant's fields, each a validated type: built once from ops input, valid in the database.

use std::fmt;
use std::str::FromStr;

use alipay::{AppId, Partner, SignType};
use serde::{Deserialize, Serialize};

/// A field failed validation: one line that says which and why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct Invalid(pub String);

fn invalid(message: impl Into<String>) -> Invalid {
    Invalid(message.into())
}

/// The ops-facing name of a tenant: 2 to 63 lowercase letters, digits and inner hyphens.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Slug(String);

impl Slug {
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl FromStr for Slug {
    type Err = Invalid;
    fn from_str(s: &str) -> Result<Self, Invalid> {
        let ok = (2..=63).contains(&s.len())
            && s.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
            && !s.starts_with('-')
            && !s.ends_with('-');
        if ok {
            Ok(Slug(s.to_owned()))
        } else {
            Err(invalid(format!(
                "slug `{}` must be 2 to 63 lowercase letters, digits or inner hyphens",
                s.chars().take(70).collect::<String>()
            )))
        }
    }
}

impl TryFrom<String> for Slug {
    type Error = Invalid;
    fn try_from(s: String) -> Result<Self, Invalid> {
        s.parse()
    }
}

impl From<Slug> for String {
    fn from(slug: Slug) -> String {
        slug.0
    }
}

impl fmt::Display for Slug {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A display name: 1 to 200 characters, no control characters.
pub fn display_name(text: &str) -> Result<String, Invalid> {
    let trimmed = text.trim();
    if trimmed.is_empty() || trimmed.chars().count() > 200 || trimmed.chars().any(char::is_control) {
        return Err(invalid("name must be 1 to 200 characters without control characters"));
    }
    Ok(trimmed.to_owned())
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Active,
    Suspended,
}

impl Status {
    pub const fn as_str(self) -> &'static str {
        match self {
            Status::Active => "active",
            Status::Suspended => "suspended",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Dialect {
    Openapi,
    Mapi,
}

impl Dialect {
    pub const fn as_str(self) -> &'static str {
        match self {
            Dialect::Openapi => "openapi",
            Dialect::Mapi => "mapi",
        }
    }
}

impl FromStr for Dialect {
    type Err = Invalid;
    fn from_str(s: &str) -> Result<Self, Invalid> {
        match s {
            "openapi" => Ok(Dialect::Openapi),
            "mapi" => Ok(Dialect::Mapi),
            _ => Err(invalid("dialect must be `openapi` or `mapi`")),
        }
    }
}

/// Checks an http(s) URL with a host, at most 512 characters.
pub fn http_url(what: &str, url: &str) -> Result<String, Invalid> {
    let ok = url.len() <= 512
        && (url.starts_with("http://") || url.starts_with("https://"))
        && url.parse::<http::Uri>().is_ok_and(|u| u.host().is_some_and(|h| !h.is_empty()));
    if ok { Ok(url.to_owned()) } else { Err(invalid(format!("{what} must be an http:// or https:// URL with a host"))) }
}

/// Which Alipay the tenant's calls go to.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase", tag = "kind", content = "url")]
pub enum Environment {
    Sandbox,
    Production,
    /// Any other gateway.do, such as our own alipay-sandbox.
    Custom(String),
}

impl Environment {
    pub fn kind(&self) -> &'static str {
        match self {
            Environment::Sandbox => "sandbox",
            Environment::Production => "production",
            Environment::Custom(_) => "custom",
        }
    }

    /// The `gateway.do` this environment means for `dialect`.
    pub fn gateway_url(&self, dialect: Dialect) -> &str {
        match (self, dialect) {
            (Environment::Sandbox, Dialect::Openapi) => "https://openapi-sandbox.dl.alipaydev.com/gateway.do",
            (Environment::Sandbox, Dialect::Mapi) => "https://mapi.alipaydev.com/gateway.do",
            (Environment::Production, Dialect::Openapi) => "https://openapi.alipay.com/gateway.do",
            (Environment::Production, Dialect::Mapi) => "https://globalmapi.alipay.com/gateway.do",
            (Environment::Custom(url), _) => url,
        }
    }

    pub fn custom_url(&self) -> Option<&str> {
        match self {
            Environment::Custom(url) => Some(url),
            _ => None,
        }
    }

    pub fn from_parts(kind: &str, url: Option<String>) -> Result<Self, Invalid> {
        match (kind, url) {
            ("sandbox", None) => Ok(Environment::Sandbox),
            ("production", None) => Ok(Environment::Production),
            ("custom", Some(url)) => Ok(Environment::Custom(http_url("environment URL", &url)?)),
            _ => Err(invalid("environment must be `sandbox`, `production` or a gateway URL")),
        }
    }
}

impl FromStr for Environment {
    type Err = Invalid;
    /// `sandbox`, `production`, or a custom `http(s)://.../gateway.do`.
    fn from_str(s: &str) -> Result<Self, Invalid> {
        match s {
            "sandbox" => Ok(Environment::Sandbox),
            "production" => Ok(Environment::Production),
            url => Ok(Environment::Custom(
                http_url("environment", url)
                    .map_err(|_| invalid("environment must be `sandbox`, `production` or a gateway URL"))?,
            )),
        }
    }
}

/// Per-tenant rate limits, requests per second.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Limits {
    pub pay_rate: u32,
    pub pay_burst: u32,
    /// Query, cancel and refund calls.
    pub other_rate: u32,
}

/// The highest rate or burst a tenant may be given.
pub const MAX_RATE: u32 = 100_000;

impl Default for Limits {
    fn default() -> Self {
        Limits { pay_rate: 50, pay_burst: 100, other_rate: 100 }
    }
}

impl Limits {
    pub fn validate(self) -> Result<Self, Invalid> {
        for (name, value) in
            [("pay rate", self.pay_rate), ("pay burst", self.pay_burst), ("other rate", self.other_rate)]
        {
            if value == 0 || value > MAX_RATE {
                return Err(invalid(format!("{name} must be between 1 and {MAX_RATE} per second")));
            }
        }
        Ok(self)
    }
}

/// One store of a Global (MAPI) secondary merchant.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Store {
    pub id: String,
    pub name: String,
}

/// The secondary-merchant fields the Global dialect sends in `extend_info`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SecondaryMerchant {
    pub merchant_id: String,
    pub name: String,
    /// Merchant category code: 4 digits.
    pub mcc: String,
    #[serde(default)]
    pub stores: Vec<Store>,
}

impl SecondaryMerchant {
    pub fn validate(self) -> Result<Self, Invalid> {
        let text_ok =
            |s: &str, max: usize| !s.trim().is_empty() && s.chars().count() <= max && !s.chars().any(char::is_control);
        if !text_ok(&self.merchant_id, 64) || !text_ok(&self.name, 128) {
            return Err(invalid("secondary merchant id (≤ 64) and name (≤ 128) are required"));
        }
        if self.mcc.len() != 4 || !self.mcc.bytes().all(|b| b.is_ascii_digit()) {
            return Err(invalid("MCC must be 4 digits"));
        }
        if self.stores.len() > 1000 || self.stores.iter().any(|s| !text_ok(&s.id, 32) || !text_ok(&s.name, 128)) {
            return Err(invalid("each store needs an id (≤ 32) and a name (≤ 128); at most 1000 stores"));
        }
        Ok(self)
    }
}

/// Parses `ID:NAME` as a store.
impl FromStr for Store {
    type Err = Invalid;
    fn from_str(s: &str) -> Result<Self, Invalid> {
        let (id, name) = s.split_once(':').ok_or_else(|| invalid("a store is `ID:NAME`"))?;
        Ok(Store { id: id.trim().to_owned(), name: name.trim().to_owned() })
    }
}

/// The tenant's Alipay identity: which dialect, which id, which sign type. Checked together.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AlipayIdentity {
    pub dialect: Dialect,
    /// `app_id` (OpenAPI) or `partner` (MAPI).
    pub alipay_id: String,
    /// MAPI `alipay_seller_id`, when it is not the partner itself.
    pub seller_id: Option<String>,
    pub sign_type: SignType,
}

impl AlipayIdentity {
    pub fn new(
        dialect: Dialect,
        alipay_id: &str,
        seller_id: Option<&str>,
        sign_type: SignType,
    ) -> Result<Self, Invalid> {
        match dialect {
            Dialect::Openapi => {
                alipay_id.parse::<AppId>().map_err(|_| invalid("app id must be 1 to 32 digits"))?;
                if sign_type == SignType::Md5 {
                    return Err(invalid("OpenAPI tenants sign with RSA2 or RSA, not MD5"));
                }
                if seller_id.is_some() {
                    return Err(invalid("seller id is for Global (mapi) tenants"));
                }
            }
            Dialect::Mapi => {
                alipay_id.parse::<Partner>().map_err(|_| invalid("partner id must be 2088 followed by 12 digits"))?;
                if let Some(seller) = seller_id {
                    seller.parse::<Partner>().map_err(|_| invalid("seller id must be 2088 followed by 12 digits"))?;
                }
            }
        }
        Ok(AlipayIdentity {
            dialect,
            alipay_id: alipay_id.to_owned(),
            seller_id: seller_id.map(str::to_owned),
            sign_type,
        })
    }
}

/// Everything needed to create a tenant (keys are set afterwards, or in the same call).
#[derive(Debug, Clone)]
pub struct NewTenant {
    pub slug: Slug,
    pub name: String,
    pub identity: AlipayIdentity,
    pub environment: Environment,
    pub limits: Limits,
    pub webhook_url: Option<String>,
    pub secondary_merchant: Option<SecondaryMerchant>,
}

impl NewTenant {
    /// Cross-field checks.
    pub fn validate(self) -> Result<Self, Invalid> {
        if self.secondary_merchant.is_some() && self.identity.dialect != Dialect::Mapi {
            return Err(invalid("secondary merchant fields are for Global (mapi) tenants"));
        }
        Ok(self)
    }
}

/// A change to a tenant's settings; `None` leaves a field as it is.
#[derive(Debug, Clone, Default)]
pub struct TenantUpdate {
    pub name: Option<String>,
    pub environment: Option<Environment>,
    /// New app_id / partner (moving from the sandbox to production changes it).
    pub alipay_id: Option<String>,
    pub seller_id: Option<Option<String>>,
    pub pay_rate: Option<u32>,
    pub pay_burst: Option<u32>,
    pub other_rate: Option<u32>,
    pub webhook_url: Option<Option<String>>,
    pub secondary_merchant: Option<Option<SecondaryMerchant>>,
}

impl TenantUpdate {
    pub fn is_empty(&self) -> bool {
        self.name.is_none()
            && self.environment.is_none()
            && self.alipay_id.is_none()
            && self.seller_id.is_none()
            && self.pay_rate.is_none()
            && self.pay_burst.is_none()
            && self.other_rate.is_none()
            && self.webhook_url.is_none()
            && self.secondary_merchant.is_none()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_are_validated() {
        assert!("noodle-bar".parse::<Slug>().is_ok());
        for bad in ["a", "-a", "a-", "A1", "a_b", &"a".repeat(64)] {
            assert!(bad.parse::<Slug>().is_err(), "{bad}");
        }
        assert_eq!("sandbox".parse::<Environment>().unwrap(), Environment::Sandbox);
        assert!(matches!("http://127.0.0.1:8090/gateway.do".parse::<Environment>(), Ok(Environment::Custom(_))));
        assert!("ftp://x".parse::<Environment>().is_err());
        assert!(Limits { pay_rate: 0, ..Limits::default() }.validate().is_err());
        assert!(AlipayIdentity::new(Dialect::Openapi, "2021000000000001", None, SignType::Md5).is_err());
        assert!(AlipayIdentity::new(Dialect::Mapi, "2021000000000001", None, SignType::Md5).is_err());
        assert!(AlipayIdentity::new(Dialect::Mapi, "2088000000000001", Some("x"), SignType::Md5).is_err());
        let sm = SecondaryMerchant {
            merchant_id: "R-7".into(),
            name: "Burger Town".into(),
            mcc: "58x2".into(),
            stores: vec![],
        };
        assert!(sm.validate().is_err());
    }
}
