//! Where a webhook may point. klar POSTs signed bodies to a URL a tenant's
//! API key chose, so without a check any key could make klar call its own
//! host (`127.0.0.1:22`), the network behind it (`10.0.0.1`) or a cloud's
//! metadata service (`169.254.169.254`): server-side request forgery.
//!
//! A webhook must therefore be `http://` or `https://`, carry no user name or
//! password, and resolve only to public addresses. The check runs when the
//! URL is set and again on every connection, inside the HTTP client's
//! resolver, so a name that re-resolves to a private address later is caught
//! and the address connected to is the one checked. Redirects are not
//! followed. An operator may allow named private hosts (an on-premises CRM)
//! with `webhook_allow_private` in klar.toml or `KLAR_WEBHOOK_ALLOW_PRIVATE`.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, ToSocketAddrs};

/// The longest webhook URL klar takes.
pub const MAX_URL: usize = 2_000;

/// Which hosts may be private: none unless the operator names them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Targets {
    allowed: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TargetError {
    #[error("{0:?} is not an http:// or https:// URL")]
    NotHttp(String),
    #[error("a webhook URL must not carry a user name or password")]
    Credentials,
    #[error("the webhook URL is longer than {MAX_URL} characters")]
    TooLong,
    #[error("cannot resolve {host}: {reason}")]
    Unresolved { host: String, reason: String },
    #[error(
        "{host} is {addr}, a {kind} address: klar posts only to public addresses. \
         An operator can allow an on-premises receiver by name with \
         webhook_allow_private in klar.toml or KLAR_WEBHOOK_ALLOW_PRIVATE"
    )]
    NotPublic {
        host: String,
        addr: IpAddr,
        kind: &'static str,
    },
}

/// A URL's host and port, as klar will connect to them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    pub host: String,
    pub port: u16,
}

/// Checks a URL's form: scheme, no credentials, a host, a sane length.
pub fn parse(url: &str) -> Result<Target, TargetError> {
    if url.len() > MAX_URL {
        return Err(TargetError::TooLong);
    }
    let not_http = || TargetError::NotHttp(url.to_owned());
    if url.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(not_http());
    }
    let uri: ureq::http::Uri = url.parse().map_err(|_| not_http())?;
    let port = match uri.scheme_str() {
        Some("http") => 80,
        Some("https") => 443,
        _ => return Err(not_http()),
    };
    let authority = uri.authority().ok_or_else(not_http)?;
    if authority.as_str().contains('@') {
        return Err(TargetError::Credentials);
    }
    let host = bare(authority.host());
    if host.is_empty() {
        return Err(not_http());
    }
    Ok(Target {
        host,
        port: authority.port_u16().unwrap_or(port),
    })
}

/// A host as written in a URL, without IPv6 brackets, in lower case.
fn bare(host: &str) -> String {
    host.trim_start_matches('[')
        .trim_end_matches(']')
        .to_ascii_lowercase()
}

impl Targets {
    /// Allows these hosts (names or addresses, as written in the URL) to be
    /// private; empty entries are ignored.
    pub fn allowing<S: AsRef<str>>(hosts: impl IntoIterator<Item = S>) -> Targets {
        Targets {
            allowed: hosts
                .into_iter()
                .map(|h| bare(h.as_ref().trim()))
                .filter(|h| !h.is_empty())
                .collect(),
        }
    }

    /// The hosts allowed to be private.
    pub fn allowed(&self) -> &[String] {
        &self.allowed
    }

    /// Checks a URL's form and where its host resolves now.
    pub fn check(&self, url: &str) -> Result<Target, TargetError> {
        let target = parse(url)?;
        let addrs = (target.host.as_str(), target.port)
            .to_socket_addrs()
            .map_err(|e| TargetError::Unresolved {
                host: target.host.clone(),
                reason: e.to_string(),
            })?;
        self.check_addrs(&target.host, addrs)?;
        Ok(target)
    }

    /// Refuses `host` if any address it resolved to is not public, unless the
    /// operator allowed the host by name.
    pub fn check_addrs(
        &self,
        host: &str,
        addrs: impl IntoIterator<Item = SocketAddr>,
    ) -> Result<(), TargetError> {
        let host = bare(host);
        if self.allowed.contains(&host) {
            return Ok(());
        }
        for addr in addrs {
            if let Some(kind) = non_public(addr.ip()) {
                return Err(TargetError::NotPublic {
                    host,
                    addr: addr.ip(),
                    kind,
                });
            }
        }
        Ok(())
    }

    /// An HTTP client that connects only where these rules allow and does
    /// not follow redirects.
    pub fn agent(&self, timeout: std::time::Duration) -> ureq::Agent {
        let config = ureq::Agent::config_builder()
            .timeout_global(Some(timeout))
            .http_status_as_error(false)
            .max_redirects(0)
            .build();
        ureq::Agent::with_parts(
            config,
            ureq::unversioned::transport::DefaultConnector::new(),
            Guard {
                targets: self.clone(),
            },
        )
    }
}

/// The resolver of [`Targets::agent`]: the standard lookup, then the check,
/// so the address connected to is the address checked.
#[derive(Debug)]
struct Guard {
    targets: Targets,
}

impl ureq::unversioned::resolver::Resolver for Guard {
    fn resolve(
        &self,
        uri: &ureq::http::Uri,
        config: &ureq::config::Config,
        timeout: ureq::unversioned::transport::NextTimeout,
    ) -> Result<ureq::unversioned::resolver::ResolvedSocketAddrs, ureq::Error> {
        let addrs = ureq::unversioned::resolver::DefaultResolver::default()
            .resolve(uri, config, timeout)?;
        let host = uri.host().unwrap_or_default();
        self.targets
            .check_addrs(host, addrs.iter().copied())
            .map_err(|e| {
                ureq::Error::Io(std::io::Error::new(
                    std::io::ErrorKind::PermissionDenied,
                    e.to_string(),
                ))
            })?;
        Ok(addrs)
    }
}

/// What kind of non-public address `ip` is, or `None` for a public one.
pub fn non_public(ip: IpAddr) -> Option<&'static str> {
    match ip {
        IpAddr::V4(v4) => non_public_v4(v4),
        IpAddr::V6(v6) => non_public_v6(v6),
    }
}

fn non_public_v4(ip: Ipv4Addr) -> Option<&'static str> {
    let [a, b, c, _] = ip.octets();
    Some(match (a, b, c) {
        _ if ip.is_loopback() => "loopback",
        (0, ..) => "\"this network\"",
        (10, ..) | (192, 168, _) => "private",
        (172, 16..=31, _) => "private",
        (169, 254, _) => "link-local (cloud metadata)",
        (100, 64..=127, _) => "carrier-grade NAT",
        (192, 0, 0) => "IETF protocol",
        (192, 0, 2) | (198, 51, 100) | (203, 0, 113) => "documentation",
        (198, 18..=19, _) => "benchmarking",
        (224..=239, ..) => "multicast",
        (240..=255, ..) => "reserved",
        _ => return None,
    })
}

fn non_public_v6(ip: Ipv6Addr) -> Option<&'static str> {
    if let Some(v4) = ip.to_ipv4_mapped() {
        return non_public_v4(v4);
    }
    let s = ip.segments();
    Some(match s {
        _ if ip.is_unspecified() => "unspecified",
        _ if ip.is_loopback() => "loopback",
        // NAT64 (64:ff9b::/96) reaches the IPv4 address in its low bits.
        [0x64, 0xff9b, 0, 0, 0, 0, ..] => {
            let [.., hi, lo] = s;
            let v4 = Ipv4Addr::from((u32::from(hi) << 16) | u32::from(lo));
            return non_public_v4(v4).or(Some("NAT64"));
        }
        [first, ..] if first & 0xfe00 == 0xfc00 => "unique local (private)",
        [first, ..] if first & 0xffc0 == 0xfe80 => "link-local",
        [first, ..] if first & 0xffc0 == 0xfec0 => "site-local",
        [first, ..] if first & 0xff00 == 0xff00 => "multicast",
        [0x2001, 0x0db8, ..] => "documentation",
        // IPv4-compatible (::a.b.c.d), deprecated but still routed by some stacks.
        [0, 0, 0, 0, 0, 0, ..] => "IPv4-compatible",
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refused(url: &str) -> TargetError {
        Targets::default().check(url).expect_err(url)
    }

    #[test]
    fn the_addresses_of_the_report_are_refused() {
        for url in [
            "http://127.0.0.1:22/x",
            "http://169.254.169.254/latest/meta-data/",
            "http://localhost:8080/v1/keys",
            "http://[::1]/",
            "http://10.0.0.1/",
            "http://[::ffff:127.0.0.1]/",
            "http://[fd00:ec2::254]/",
            "http://0.0.0.0:8080/",
            "http://[64:ff9b::a9fe:a9fe]/",
        ] {
            assert!(
                matches!(refused(url), TargetError::NotPublic { .. }),
                "{url}"
            );
        }
        assert_eq!(
            refused("http://user:pass@10.0.0.1/"),
            TargetError::Credentials
        );
        assert!(matches!(
            refused("ftp://crm.example/"),
            TargetError::NotHttp(_)
        ));
        assert!(matches!(refused("http:///nohost"), TargetError::NotHttp(_)));
        let long = format!("https://crm.example/{}", "a".repeat(MAX_URL));
        assert_eq!(refused(&long), TargetError::TooLong);
    }

    #[test]
    fn public_addresses_pass() {
        for ip in ["93.184.215.14", "2a00:1450:4001:80b::200e", "8.8.8.8"] {
            let ip: IpAddr = ip.parse().expect("an address");
            assert_eq!(non_public(ip), None, "{ip}");
        }
        let target = Targets::default()
            .check("https://93.184.215.14:8443/klar")
            .expect("public");
        assert_eq!(target.port, 8443);
    }

    #[test]
    fn an_operator_can_allow_a_named_private_host() {
        let targets = Targets::allowing(["127.0.0.1", " [::1] ", ""]);
        assert_eq!(targets.allowed(), ["127.0.0.1", "::1"]);
        targets.check("http://127.0.0.1:9/klar").expect("allowed");
        targets.check("http://[::1]:9/klar").expect("allowed");
        let err = targets.check("http://10.0.0.1/").expect_err("not named");
        assert!(err.to_string().contains("webhook_allow_private"), "{err}");
    }
}
