//! Where we may send on a merchant's behalf (the tenant's webhook URL today; notify URLs a POS
//! gives tomorrow). For a production tenant a URL must be `https://` and every address its host
//! resolves to must be public: not loopback, private, link-local, shared (CGNAT), unique-local,
//! multicast, unspecified, reserved or a cloud metadata address (the server-side request forgery
//! targets inside our own network). Sandbox and custom-environment tenants may use any http(s)
//! URL, local ones included: the dev stack needs them.
//!
//! The check runs when a URL is saved ([`check_resolving`]) and again when sending: [`check`] for
//! the URL itself (scheme, address literals), then [`PublicResolver`] as the HTTP client's
//! resolver, which resolves the host, refuses it unless every address is public, and hands the
//! connector only the addresses it checked, so a name that resolves elsewhere between the check
//! and the connection (DNS rebinding) reaches nothing it should not.

use std::future::Future;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use hyper_util::client::legacy::connect::dns::Name;

use crate::model::Environment;

/// How long resolving a host may take when a URL is saved.
const RESOLVE_TIMEOUT: Duration = Duration::from_secs(5);

/// Which URLs a tenant may have us send to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UrlPolicy {
    /// Production: `https://`, public addresses only.
    Public,
    /// Sandbox and custom environments: any `http(s)://` URL, local ones included.
    Local,
}

impl UrlPolicy {
    pub fn for_environment(environment: &Environment) -> UrlPolicy {
        match environment {
            Environment::Production => UrlPolicy::Public,
            Environment::Sandbox | Environment::Custom(_) => UrlPolicy::Local,
        }
    }
}

/// Why a URL is refused (says which host and which address, never the whole URL: it may hold
/// credentials).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refused {
    #[error("must be an http:// or https:// URL with a host")]
    NotAUrl,
    #[error("must be https:// for a production tenant")]
    NotHttps,
    #[error("host `{host}` is a {class} address ({ip}); a production tenant's URL must reach a public address")]
    Address { host: String, ip: IpAddr, class: &'static str },
    #[error("host `{host}` does not resolve: {reason}")]
    Unresolved { host: String, reason: String },
}

/// Where a URL sends to: its host (brackets removed) and port.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Destination {
    pub host: String,
    pub port: u16,
}

/// The class of a non-public address, `None` for a public one. IPv4 inside IPv6 (mapped, NAT64,
/// 6to4) is judged by the IPv4 address it carries.
pub fn non_public(ip: IpAddr) -> Option<&'static str> {
    match ip {
        IpAddr::V4(v4) => non_public_v4(v4),
        IpAddr::V6(v6) => non_public_v6(v6),
    }
}

/// Cloud metadata services: AWS, GCP, Azure, Oracle, DigitalOcean (169.254.169.254), AWS ECS
/// (169.254.170.2), Alibaba Cloud (100.100.100.200), Azure's wire server (168.63.129.16, a public
/// address), AWS over IPv6 (fd00:ec2::254).
const METADATA: [IpAddr; 5] = [
    IpAddr::V4(Ipv4Addr::new(169, 254, 169, 254)),
    IpAddr::V4(Ipv4Addr::new(169, 254, 170, 2)),
    IpAddr::V4(Ipv4Addr::new(100, 100, 100, 200)),
    IpAddr::V4(Ipv4Addr::new(168, 63, 129, 16)),
    IpAddr::V6(Ipv6Addr::new(0xfd00, 0xec2, 0, 0, 0, 0, 0, 0x254)),
];

fn non_public_v4(ip: Ipv4Addr) -> Option<&'static str> {
    let [a, b, c, _] = ip.octets();
    Some(match (a, b, c) {
        _ if METADATA.contains(&IpAddr::V4(ip)) => "cloud metadata",
        (0, _, _) => "unspecified",
        (127, _, _) => "loopback",
        (10, _, _) | (172, 16..=31, _) | (192, 168, _) => "private",
        (100, 64..=127, _) => "shared (CGNAT)",
        (169, 254, _) => "link-local",
        (192, 0, 0) | (192, 88, 99) => "reserved",
        (192, 0, 2) | (198, 51, 100) | (203, 0, 113) => "documentation",
        (198, 18..=19, _) => "benchmarking",
        (224..=239, _, _) => "multicast",
        (240..=255, _, _) => "reserved",
        _ => return None,
    })
}

fn non_public_v6(ip: Ipv6Addr) -> Option<&'static str> {
    let s = ip.segments();
    let embedded_v4 = |hi: u16, lo: u16| Ipv4Addr::new((hi >> 8) as u8, hi as u8, (lo >> 8) as u8, lo as u8);
    if METADATA.contains(&IpAddr::V6(ip)) {
        return Some("cloud metadata");
    }
    if ip.is_unspecified() {
        return Some("unspecified");
    }
    if ip.is_loopback() {
        return Some("loopback");
    }
    Some(match s {
        // ::ffff:a.b.c.d (mapped) and 64:ff9b::a.b.c.d (NAT64): the IPv4 address decides.
        [0, 0, 0, 0, 0, 0xffff, hi, lo] | [0x64, 0xff9b, 0, 0, 0, 0, hi, lo] => {
            return non_public_v4(embedded_v4(hi, lo));
        }
        // 6to4 (2002:a.b.c.d::/48).
        [0x2002, hi, lo, ..] => return non_public_v4(embedded_v4(hi, lo)),
        [0, 0, 0, 0, 0, 0, _, _] => "IPv4-compatible (deprecated)",
        [0x64, 0xff9b, 1, ..] => "local-use NAT64",
        [0x100, 0, 0, 0, ..] => "discard",
        [0x2001, 0xdb8, ..] => "documentation",
        [0x2001, 0, ..] => "Teredo",
        [0x2001, 0x10..=0x2f, ..] => "reserved (ORCHID)",
        [first, ..] if first & 0xfe00 == 0xfc00 => "unique-local",
        [first, ..] if first & 0xffc0 == 0xfe80 => "link-local",
        [first, ..] if first & 0xffc0 == 0xfec0 => "site-local (deprecated)",
        [first, ..] if first & 0xff00 == 0xff00 => "multicast",
        // Outside 2000::/3 nothing is assigned for public use.
        [first, ..] if first & 0xe000 != 0x2000 => "reserved",
        _ => return None,
    })
}

/// Checks the URL itself: an http(s) URL with a host; under [`UrlPolicy::Public`] `https://`, and
/// a host given as an address must be public. A host name is judged by [`resolve_public`].
pub fn check(url: &str, policy: UrlPolicy) -> Result<Destination, Refused> {
    let uri: http::Uri = url.parse().map_err(|_| Refused::NotAUrl)?;
    let https = match uri.scheme_str() {
        Some("https") => true,
        Some("http") => false,
        _ => return Err(Refused::NotAUrl),
    };
    let host = uri.host().filter(|h| !h.is_empty()).ok_or(Refused::NotAUrl)?;
    let host = host.trim_start_matches('[').trim_end_matches(']').to_owned();
    let port = uri.port_u16().unwrap_or(if https { 443 } else { 80 });
    if policy == UrlPolicy::Public {
        if !https {
            return Err(Refused::NotHttps);
        }
        if let Ok(ip) = host.parse::<IpAddr>()
            && let Some(class) = non_public(ip)
        {
            return Err(Refused::Address { host, ip, class });
        }
    }
    Ok(Destination { host, port })
}

/// Resolves `host` and answers its addresses (port 0) if every one is public; refuses if any is
/// not (a name that resolves to a private address among public ones is refused whole).
pub async fn resolve_public(host: &str) -> Result<Vec<SocketAddr>, Refused> {
    let unresolved = |reason: String| Refused::Unresolved { host: host.to_owned(), reason };
    let addresses: Vec<SocketAddr> =
        tokio::net::lookup_host((host, 0)).await.map_err(|e| unresolved(e.to_string()))?.collect();
    if addresses.is_empty() {
        return Err(unresolved("no address".into()));
    }
    for address in &addresses {
        if let Some(class) = non_public(address.ip()) {
            return Err(Refused::Address { host: host.to_owned(), ip: address.ip(), class });
        }
    }
    Ok(addresses)
}

/// The whole check, as a URL is saved: [`check`], then under [`UrlPolicy::Public`] the host
/// resolved (within 5 s) and every address judged.
pub async fn check_resolving(url: &str, policy: UrlPolicy) -> Result<(), Refused> {
    let destination = check(url, policy)?;
    if policy == UrlPolicy::Local || destination.host.parse::<IpAddr>().is_ok() {
        return Ok(());
    }
    let unresolved = Refused::Unresolved { host: destination.host.clone(), reason: "timed out".into() };
    tokio::time::timeout(RESOLVE_TIMEOUT, resolve_public(&destination.host)).await.map_err(|_| unresolved)?.map(drop)
}

/// The resolver of an HTTP client that sends only to public addresses
/// (`HttpConnector::new_with_resolver`): each connection resolves its host once, is refused
/// unless every address is public, and is made to one of the addresses checked. The connector
/// skips the resolver for an address literal: [`check`] the URL first.
#[derive(Debug, Clone, Copy, Default)]
pub struct PublicResolver;

impl tower_service::Service<Name> for PublicResolver {
    type Response = std::vec::IntoIter<SocketAddr>;
    type Error = Refused;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, Refused>> + Send>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Refused>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, name: Name) -> Self::Future {
        Box::pin(async move { resolve_public(name.as_str()).await.map(Vec::into_iter) })
    }
}

/// The refusal somewhere in `error`'s chain of sources (an HTTP client's error wraps the
/// resolver's), if that is why it failed.
pub fn refusal_in<'a>(error: &'a (dyn std::error::Error + 'static)) -> Option<&'a Refused> {
    let mut next = Some(error);
    while let Some(error) = next {
        if let Some(refused) = error.downcast_ref::<Refused>() {
            return Some(refused);
        }
        next = error.source();
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn class(ip: &str) -> Option<&'static str> {
        non_public(ip.parse().unwrap())
    }

    #[test]
    fn every_non_public_class_is_named_and_public_addresses_pass() {
        for (ip, expected) in [
            ("127.0.0.1", "loopback"),
            ("127.255.255.254", "loopback"),
            ("0.0.0.0", "unspecified"),
            ("10.0.0.1", "private"),
            ("172.16.0.1", "private"),
            ("172.31.255.255", "private"),
            ("192.168.0.10", "private"),
            ("100.64.0.1", "shared (CGNAT)"),
            ("100.127.255.255", "shared (CGNAT)"),
            ("169.254.1.1", "link-local"),
            ("169.254.169.254", "cloud metadata"),
            ("169.254.170.2", "cloud metadata"),
            ("100.100.100.200", "cloud metadata"),
            ("168.63.129.16", "cloud metadata"),
            ("192.0.2.1", "documentation"),
            ("198.18.0.1", "benchmarking"),
            ("224.0.0.1", "multicast"),
            ("239.255.255.250", "multicast"),
            ("240.0.0.1", "reserved"),
            ("255.255.255.255", "reserved"),
            ("::", "unspecified"),
            ("::1", "loopback"),
            ("::ffff:127.0.0.1", "loopback"),
            ("::ffff:169.254.169.254", "cloud metadata"),
            ("64:ff9b::a9fe:a9fe", "cloud metadata"),
            ("2002:c0a8:0101::1", "private"),
            ("::127.0.0.1", "IPv4-compatible (deprecated)"),
            ("fd00:ec2::254", "cloud metadata"),
            ("fc00::1", "unique-local"),
            ("fd12:3456::1", "unique-local"),
            ("fe80::1", "link-local"),
            ("fec0::1", "site-local (deprecated)"),
            ("ff02::1", "multicast"),
            ("2001:db8::1", "documentation"),
            ("2001::1", "Teredo"),
            ("100::1", "discard"),
            ("4000::1", "reserved"),
        ] {
            assert_eq!(class(ip), Some(expected), "{ip}");
        }
        for public in [
            "93.184.215.14",
            "8.8.8.8",
            "1.1.1.1",
            "172.32.0.1",
            "172.15.255.255",
            "100.63.255.255",
            "100.128.0.1",
            "169.253.0.1",
            "2606:4700::1111",
            "2a00:1450:4001::200e",
            "::ffff:8.8.8.8",
            "64:ff9b::808:808",
        ] {
            assert_eq!(class(public), None, "{public}");
        }
    }

    #[test]
    fn production_urls_are_https_and_address_literals_public() {
        let public = UrlPolicy::Public;
        assert_eq!(
            check("https://pos.example.com:8443/hook?x=1", public),
            Ok(Destination { host: "pos.example.com".into(), port: 8443 })
        );
        assert_eq!(check("https://[2606:4700::1111]/h", public).map(|d| d.port), Ok(443));
        assert_eq!(check("http://pos.example.com/hook", public), Err(Refused::NotHttps));
        assert_eq!(check("ftp://pos.example.com/", public), Err(Refused::NotAUrl));
        assert_eq!(check("not a url", public), Err(Refused::NotAUrl));
        let refused = check("https://[::ffff:10.1.2.3]/", public).unwrap_err();
        assert!(matches!(refused, Refused::Address { class: "private", .. }), "{refused}");
        assert!(refused.to_string().contains("private address (::ffff:10.1.2.3)"), "{refused}");
        // Elsewhere local http URLs are fine.
        let local = UrlPolicy::Local;
        assert_eq!(check("http://127.0.0.1:8080/hook", local).map(|d| d.port), Ok(8080));
        assert_eq!(check("gopher://127.0.0.1/", local), Err(Refused::NotAUrl));
        assert_eq!(UrlPolicy::for_environment(&Environment::Production), public);
        assert_eq!(UrlPolicy::for_environment(&Environment::Sandbox), local);
        assert_eq!(UrlPolicy::for_environment(&Environment::Custom("http://127.0.0.1/gateway.do".into())), local);
    }

    #[tokio::test]
    async fn a_name_is_judged_by_every_address_it_resolves_to() {
        let refused = check_resolving("https://localhost/hook", UrlPolicy::Public).await.unwrap_err();
        assert!(matches!(refused, Refused::Address { class: "loopback", .. }), "{refused}");
        // Numeric forms the resolver understands are resolved, then judged.
        let refused = check_resolving("https://2130706433/hook", UrlPolicy::Public).await.unwrap_err();
        assert!(matches!(refused, Refused::Address { class: "loopback", .. }), "{refused}");
        let unresolved = check_resolving("https://no-such-host.invalid/hook", UrlPolicy::Public).await.unwrap_err();
        assert!(matches!(unresolved, Refused::Unresolved { .. }), "{unresolved}");
        assert_eq!(check_resolving("http://localhost:8080/hook", UrlPolicy::Local).await, Ok(()));
        let mut resolver = PublicResolver;
        let name: Name = "localhost".parse().unwrap();
        let refused = tower_service::Service::call(&mut resolver, name).await.unwrap_err();
        // As an HTTP client reports it: its error, whose source is the connector's, whose is ours.
        #[derive(Debug)]
        struct Wrapped(Box<dyn std::error::Error + Send + Sync>);
        impl std::fmt::Display for Wrapped {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("client error (Connect)")
            }
        }
        impl std::error::Error for Wrapped {
            fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
                Some(self.0.as_ref())
            }
        }
        let wrapped = Wrapped(Box::new(Wrapped(Box::new(refused.clone()))));
        assert_eq!(refusal_in(&wrapped), Some(&refused));
        assert_eq!(refusal_in(&Wrapped(Box::new(std::io::Error::other("reset")))), None);
    }
}
