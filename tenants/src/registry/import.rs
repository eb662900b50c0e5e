//! Creating a tenant or bringing an existing one to what a list says (`tenants import`,
//! `POST /admin/tenants/import`): one line of a chain's onboarding, its own transaction, so the
//! same list applied twice changes nothing the second time.

use serde::Serialize;

use super::{Created, KeyInput, Registry, RegistryError, TenantView};
use crate::model::{Invalid, NewTenant, TenantUpdate};

/// What importing one tenant did.
#[derive(Debug, Serialize)]
#[serde(tag = "action", rename_all = "lowercase")]
pub enum Imported {
    /// It was not there: created with the keys given (its credentials are in here, once).
    Created(Box<Created>),
    /// It was there and differed: these fields were changed (its keys left as they were).
    Updated { tenant: Box<TenantView>, changed: Vec<&'static str> },
    /// It was there as described.
    Unchanged { tenant: Box<TenantView> },
}

impl Registry {
    /// Creates `new` with `keys` if its slug is free; else changes the tenant of that slug to what
    /// `new` says (name, environment, Alipay ids, limits, webhook, secondary merchant), leaving
    /// its keys as they are (keys are set once, or with `set_keys`).
    pub async fn import(&self, actor: &str, new: NewTenant, keys: KeyInput) -> Result<Imported, RegistryError> {
        let slug = new.slug.to_string();
        let current = match self.show(&slug).await {
            Ok(current) => current,
            Err(RegistryError::NotFound(_)) => {
                return Ok(Imported::Created(Box::new(self.create(actor, new, keys).await?)));
            }
            Err(error) => return Err(error),
        };
        let (change, changed) = difference(&current, &new)?;
        if changed.is_empty() {
            return Ok(Imported::Unchanged { tenant: Box::new(current) });
        }
        let tenant = self.update(actor, &slug, change, KeyInput::default()).await?;
        Ok(Imported::Updated { tenant: Box::new(tenant), changed })
    }
}

/// The update that brings `current` to `new`, and the names of the fields it changes.
fn difference(current: &TenantView, new: &NewTenant) -> Result<(TenantUpdate, Vec<&'static str>), RegistryError> {
    if current.dialect != new.identity.dialect || current.sign_type != new.identity.sign_type {
        return Err(Invalid("its dialect and sign type cannot change (create another tenant)".into()).into());
    }
    let mut changed = Vec::new();
    let mut differs = |name: &'static str, differs: bool| {
        if differs {
            changed.push(name);
        }
        differs
    };
    let (limits, wanted) = (current.limits, new.limits);
    let change = TenantUpdate {
        name: differs("name", current.name != new.name).then(|| new.name.clone()),
        environment: differs("environment", current.environment != new.environment).then(|| new.environment.clone()),
        alipay_id: differs("alipay_id", current.alipay_id != new.identity.alipay_id)
            .then(|| new.identity.alipay_id.clone()),
        seller_id: differs("seller_id", current.seller_id != new.identity.seller_id)
            .then(|| new.identity.seller_id.clone()),
        pay_rate: differs("pay_rate", limits.pay_rate != wanted.pay_rate).then_some(wanted.pay_rate),
        pay_burst: differs("pay_burst", limits.pay_burst != wanted.pay_burst).then_some(wanted.pay_burst),
        other_rate: differs("other_rate", limits.other_rate != wanted.other_rate).then_some(wanted.other_rate),
        webhook_url: differs("webhook_url", current.webhook_url != new.webhook_url).then(|| new.webhook_url.clone()),
        secondary_merchant: differs("secondary_merchant", current.secondary_merchant != new.secondary_merchant)
            .then(|| new.secondary_merchant.clone()),
    };
    Ok((change, changed))
}
