//! Calls to Alipay for a tenant, through the shared [`upstream::Upstream`] client.

use alipay::unified::{Answer, Request};
use tenants::snapshot::Tenant;
pub use upstream::{NotSent, Upstream};

fn store_of<'a>(request: &Request<'a>) -> Option<&'a str> {
    match request {
        Request::Pay { order, .. } | Request::Precreate { order, .. } => order.store_id.map(|s| s.as_str()),
        _ => None,
    }
}

/// Signs `request` with `tenant`'s key and sends it to the tenant's gateway.
pub async fn call(
    upstream: &Upstream,
    tenant: &Tenant,
    notify_url: Option<&str>,
    request: &Request<'_>,
) -> Result<Answer, NotSent> {
    let extend = tenant.extend_info(store_of(request));
    let (Some(merchant), Some(verifier)) =
        (tenant.merchant(notify_url, extend.as_deref()), tenant.alipay_verifier.as_deref())
    else {
        return Err(NotSent("the tenant's keys are not set".into()));
    };
    let target = upstream::Target { url: &tenant.gateway_url, merchant, verifier };
    upstream.call(&target, request).await
}
