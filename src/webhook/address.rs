//! Where webhook deliveries may go.
//!
//! kb sends requests to URLs its clients choose, from inside the server's own network, so
//! without these rules a client could make kb call its loopback services, the private network
//! or the cloud provider's metadata endpoint, and read back part of the answer in the delivery
//! log (server-side request forgery). Only public unicast addresses are allowed, unless the
//! operator turns that off (`allow_private`, for local development and tests).
//!
//! The rules judge addresses, not spellings: [`parse_url`] goes through the WHATWG parser, which
//! turns `http://2130706433/`, `http://0x7f.1/` and `http://127.0.0.1./` into the 127.0.0.1 they
//! mean, and IPv6 forms that carry an IPv4 address are judged by that address. Names are judged
//! by what they resolve to ([`resolve_checked`] at registration, and the delivery client's own
//! resolver at every connection, since a DNS answer can change in between); the few names
//! refused outright (`localhost`, the metadata hosts) are refused by name only so that the
//! message says what they are.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::Duration;

use url::{Host, Url};

/// The longest URL accepted, in characters: ample for any real endpoint, and it bounds what a
/// client can make kb store and send.
pub const MAX_URL_CHARS: usize = 2000;

/// How long a registration waits for DNS before calling the name unresolvable: the system
/// resolver can otherwise hold a request for as long as its own retries take.
const RESOLVE_TIMEOUT: Duration = Duration::from_secs(10);

/// Why an address may not receive deliveries.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Forbidden {
    Loopback,
    Private,
    LinkLocal,
    /// Carrier-grade NAT space (100.64.0.0/10): private to the provider's network.
    Shared,
    Multicast,
    /// "This host" or "this network": connecting to it reaches the local machine.
    Unspecified,
    Broadcast,
    /// Set aside by the IETF or IANA, never a public host.
    Reserved,
    /// Documentation and benchmarking ranges: never a real receiver.
    Documentation,
    /// A cloud provider's instance metadata endpoint, which hands out credentials.
    Metadata,
}

impl fmt::Display for Forbidden {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Loopback => "a loopback address",
            Self::Private => "a private address",
            Self::LinkLocal => "a link-local address",
            Self::Shared => "a shared (carrier-grade NAT) address",
            Self::Multicast => "a multicast address",
            Self::Unspecified => "an unspecified (this-network) address",
            Self::Broadcast => "the broadcast address",
            Self::Reserved => "a reserved address",
            Self::Documentation => "a documentation or benchmarking address",
            Self::Metadata => "a cloud metadata address",
        })
    }
}

impl std::error::Error for Forbidden {}

use Forbidden::*;

/// IPv4 ranges no delivery may reach. The first match names the reason, so the metadata
/// addresses come before the ranges that hold them and broadcast before 240.0.0.0/4.
const V4_RANGES: &[(Ipv4Addr, u8, Forbidden)] = &[
    // AWS, GCP, Azure, OpenStack, DigitalOcean and most others.
    (Ipv4Addr::new(169, 254, 169, 254), 32, Metadata),
    // AWS ECS task metadata and credentials.
    (Ipv4Addr::new(169, 254, 170, 2), 32, Metadata),
    // Alibaba Cloud.
    (Ipv4Addr::new(100, 100, 100, 200), 32, Metadata),
    // Oracle Cloud (legacy).
    (Ipv4Addr::new(192, 0, 0, 192), 32, Metadata),
    (Ipv4Addr::new(0, 0, 0, 0), 8, Unspecified),
    (Ipv4Addr::new(10, 0, 0, 0), 8, Private),
    (Ipv4Addr::new(100, 64, 0, 0), 10, Shared),
    (Ipv4Addr::new(127, 0, 0, 0), 8, Loopback),
    (Ipv4Addr::new(169, 254, 0, 0), 16, LinkLocal),
    (Ipv4Addr::new(172, 16, 0, 0), 12, Private),
    // IETF protocol assignments.
    (Ipv4Addr::new(192, 0, 0, 0), 24, Reserved),
    (Ipv4Addr::new(192, 0, 2, 0), 24, Documentation),
    (Ipv4Addr::new(192, 168, 0, 0), 16, Private),
    // Benchmarking (RFC 2544).
    (Ipv4Addr::new(198, 18, 0, 0), 15, Documentation),
    (Ipv4Addr::new(198, 51, 100, 0), 24, Documentation),
    (Ipv4Addr::new(203, 0, 113, 0), 24, Documentation),
    (Ipv4Addr::new(224, 0, 0, 0), 4, Multicast),
    (Ipv4Addr::BROADCAST, 32, Broadcast),
    (Ipv4Addr::new(240, 0, 0, 0), 4, Reserved),
];

/// IPv6 ranges no delivery may reach, apart from the forms that carry an IPv4 address (judged
/// by that address, see [`embedded_v4`]) and from everything outside 2000::/3 (refused as
/// reserved). None of these overlaps an IPv4-carrying form except `::` and `::1`, which must
/// be named before `::a.b.c.d` would read them as 0.0.0.0 and 0.0.0.1.
const V6_RANGES: &[(Ipv6Addr, u8, Forbidden)] = &[
    // AWS (IMDS over IPv6), before the unique-local range that holds it.
    (
        Ipv6Addr::new(0xfd00, 0xec2, 0, 0, 0, 0, 0, 0x254),
        128,
        Metadata,
    ),
    (Ipv6Addr::UNSPECIFIED, 128, Unspecified),
    (Ipv6Addr::LOCALHOST, 128, Loopback),
    // Discard-only (RFC 6666).
    (Ipv6Addr::new(0x100, 0, 0, 0, 0, 0, 0, 0), 64, Reserved),
    (
        Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 0),
        32,
        Documentation,
    ),
    // Benchmarking (RFC 5180).
    (
        Ipv6Addr::new(0x2001, 0x2, 0, 0, 0, 0, 0, 0),
        48,
        Documentation,
    ),
    // Documentation (RFC 9637).
    (
        Ipv6Addr::new(0x3fff, 0, 0, 0, 0, 0, 0, 0),
        20,
        Documentation,
    ),
    // Unique local addresses: IPv6's private networks.
    (Ipv6Addr::new(0xfc00, 0, 0, 0, 0, 0, 0, 0), 7, Private),
    (Ipv6Addr::new(0xfe80, 0, 0, 0, 0, 0, 0, 0), 10, LinkLocal),
    // Site-local, deprecated but still routed inside some networks as private space.
    (Ipv6Addr::new(0xfec0, 0, 0, 0, 0, 0, 0, 0), 10, Private),
    (Ipv6Addr::new(0xff00, 0, 0, 0, 0, 0, 0, 0), 8, Multicast),
];

/// Whether `ip` may receive deliveries: `Ok` for a public unicast address, else why not.
pub fn check_ip(ip: IpAddr) -> Result<(), Forbidden> {
    match ip {
        IpAddr::V4(ip) => check_v4(ip),
        IpAddr::V6(ip) => check_v6(ip),
    }
}

fn check_v4(ip: Ipv4Addr) -> Result<(), Forbidden> {
    let bits = u32::from(ip);
    let found = V4_RANGES.iter().find(|(net, len, _)| {
        let mask = u32::MAX.checked_shl(32 - u32::from(*len)).unwrap_or(0);
        bits & mask == u32::from(*net) & mask
    });
    match found {
        Some((_, _, reason)) => Err(*reason),
        None => Ok(()),
    }
}

fn check_v6(ip: Ipv6Addr) -> Result<(), Forbidden> {
    let bits = u128::from(ip);
    let found = V6_RANGES.iter().find(|(net, len, _)| {
        let mask = u128::MAX.checked_shl(128 - u32::from(*len)).unwrap_or(0);
        bits & mask == u128::from(*net) & mask
    });
    if let Some((_, _, reason)) = found {
        return Err(*reason);
    }
    if let Some(v4) = embedded_v4(ip) {
        check_v4(v4)?;
        // The local-use NAT64 prefix (RFC 8215) translates into whatever network its operator
        // chose, with the IPv4 address at a position of the operator's choosing too: no public
        // receiver is reached through it.
        if ip.segments()[..3] == [0x64, 0xff9b, 1] {
            return Err(Private);
        }
        return Ok(());
    }
    // Only 2000::/3 is allocated as global unicast; the rest of the space is reserved.
    if ip.segments()[0] & 0xe000 != 0x2000 {
        return Err(Reserved);
    }
    Ok(())
}

/// The IPv4 address an IPv6 address stands for, in the forms that reach an IPv4 host: mapped
/// (`::ffff:a.b.c.d`), compatible (`::a.b.c.d`, deprecated), NAT64 (`64:ff9b::a.b.c.d`, and the
/// local-use `64:ff9b:1::/48` read the same way) and 6to4 (`2002:aabb:ccdd::/48`).
fn embedded_v4(ip: Ipv6Addr) -> Option<Ipv4Addr> {
    let s = ip.segments();
    let o = ip.octets();
    let low = Ipv4Addr::new(o[12], o[13], o[14], o[15]);
    match s {
        [0, 0, 0, 0, 0, 0xffff, _, _] | [0, 0, 0, 0, 0, 0, _, _] => Some(low),
        [0x64, 0xff9b, 0, 0, 0, 0, _, _] | [0x64, 0xff9b, 1, ..] => Some(low),
        [0x2002, ..] => Some(Ipv4Addr::new(o[2], o[3], o[4], o[5])),
        _ => None,
    }
}

/// Host names refused without asking DNS: the machine itself and the metadata services'
/// well-known names (which resolve only inside the cloud, where they are most dangerous).
fn reserved_name(name: &str) -> Option<Forbidden> {
    let name = name.trim_end_matches('.').to_ascii_lowercase();
    if name == "localhost" || name.ends_with(".localhost") {
        return Some(Loopback);
    }
    match name.as_str() {
        "metadata.google.internal"
        | "metadata"
        | "instance-data"
        | "instance-data.ec2.internal" => Some(Metadata),
        _ => None,
    }
}

/// Why a webhook URL is refused. Each message is meant for the client that sent the URL (a 422).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UrlError {
    /// Not an acceptable URL: the text says what is wrong.
    Invalid(String),
    /// The URL's host is, or resolves to, an address deliveries may not reach. `host` is the
    /// name that resolved to it, `None` for an IP-literal host.
    Forbidden {
        address: IpAddr,
        reason: Forbidden,
        host: Option<String>,
    },
    /// The URL's host is a name refused as such (`localhost`, a metadata host).
    ForbiddenName { host: String, reason: Forbidden },
    /// The host name does not resolve (now): the text says why. Distinct from the others
    /// because it may be transient, so the caller decides whether to refuse.
    Unresolvable(String),
}

impl fmt::Display for UrlError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Invalid(message) | Self::Unresolvable(message) => f.write_str(message),
            Self::Forbidden {
                address,
                reason,
                host: None,
            } => write!(f, "address {address} is {reason}"),
            Self::Forbidden {
                address,
                reason,
                host: Some(host),
            } => write!(f, "{host} resolves to {address}, which is {reason}"),
            Self::ForbiddenName { host, reason } => write!(f, "host {host} names {reason}"),
        }
    }
}

impl std::error::Error for UrlError {}

fn invalid(message: impl Into<String>) -> UrlError {
    UrlError::Invalid(message.into())
}

/// Parses a webhook URL as a client gives it, refusing what could never be a receiver: more
/// than [`MAX_URL_CHARS`] characters, a scheme other than `https` (`http` too when
/// `allow_private`), credentials, a fragment, no host. Unless `allow_private`, an IP-literal
/// host must pass [`check_ip`] and `localhost` or a metadata host name is refused; other names
/// are left to [`resolve_checked`].
///
/// The URL returned is the normalised one (lower-case host, IPv4 in dotted decimal): the one to
/// store and to send to.
pub fn parse_url(text: &str, allow_private: bool) -> Result<Url, UrlError> {
    if text.chars().count() > MAX_URL_CHARS {
        return Err(invalid(format!(
            "the URL is longer than {MAX_URL_CHARS} characters"
        )));
    }
    let url = Url::parse(text).map_err(|e| invalid(format!("not a valid URL: {e}")))?;
    let schemes = if allow_private {
        "https or http"
    } else {
        "https"
    };
    match url.scheme() {
        "https" => {}
        "http" if allow_private => {}
        other => {
            return Err(invalid(format!("the URL must use {schemes}, not {other}")));
        }
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(invalid("the URL must not contain a user name or password"));
    }
    if url.fragment().is_some() {
        return Err(invalid(
            "the URL must not contain a fragment (#...): it is never sent to the receiver",
        ));
    }
    let Some(host) = url.host() else {
        return Err(invalid("the URL has no host"));
    };
    if !allow_private {
        match host {
            Host::Ipv4(ip) => check_literal(ip.into())?,
            Host::Ipv6(ip) => check_literal(ip.into())?,
            Host::Domain(name) => {
                if let Some(reason) = reserved_name(name) {
                    return Err(UrlError::ForbiddenName {
                        host: name.to_owned(),
                        reason,
                    });
                }
            }
        }
    }
    Ok(url)
}

fn check_literal(address: IpAddr) -> Result<(), UrlError> {
    check_ip(address).map_err(|reason| UrlError::Forbidden {
        address,
        reason,
        host: None,
    })
}

/// Resolves the host of `url` (its port, or the scheme's) and, unless `allow_private`, refuses
/// it when any of its addresses is forbidden: whoever controls the name controls the mix of
/// answers, and the client may connect to any of them. An IP-literal host resolves to itself.
///
/// For registration, where a clear answer helps the client; deliveries check again at connect
/// time (see [`crate::webhook::client`]).
pub async fn resolve_checked(url: &Url, allow_private: bool) -> Result<Vec<SocketAddr>, UrlError> {
    let port = url
        .port_or_known_default()
        .ok_or_else(|| invalid("the URL has no port and its scheme has no default one"))?;
    let name = match url.host() {
        None => return Err(invalid("the URL has no host")),
        Some(Host::Ipv4(ip)) => return literal(ip.into(), port, allow_private),
        Some(Host::Ipv6(ip)) => return literal(ip.into(), port, allow_private),
        Some(Host::Domain(name)) => name,
    };
    let addrs = lookup(name, port).await?;
    check_resolved(name, addrs, allow_private)
}

fn literal(ip: IpAddr, port: u16, allow_private: bool) -> Result<Vec<SocketAddr>, UrlError> {
    if !allow_private {
        check_literal(ip)?;
    }
    Ok(vec![SocketAddr::new(ip, port)])
}

/// The addresses of `name` from the system resolver, within [`RESOLVE_TIMEOUT`].
pub(crate) async fn lookup(name: &str, port: u16) -> Result<Vec<SocketAddr>, UrlError> {
    match tokio::time::timeout(RESOLVE_TIMEOUT, tokio::net::lookup_host((name, port))).await {
        Err(_) => Err(UrlError::Unresolvable(format!(
            "host {name} did not resolve within {RESOLVE_TIMEOUT:?}"
        ))),
        Ok(Err(e)) => Err(UrlError::Unresolvable(format!(
            "host {name} does not resolve: {e}"
        ))),
        Ok(Ok(addrs)) => Ok(addrs.collect()),
    }
}

/// `addrs` as resolved for `name`, or why they may not be used: none at all, or (unless
/// `allow_private`) the first forbidden one.
pub(crate) fn check_resolved(
    name: &str,
    addrs: Vec<SocketAddr>,
    allow_private: bool,
) -> Result<Vec<SocketAddr>, UrlError> {
    if addrs.is_empty() {
        return Err(UrlError::Unresolvable(format!(
            "host {name} has no addresses"
        )));
    }
    if !allow_private {
        for addr in &addrs {
            check_ip(addr.ip()).map_err(|reason| UrlError::Forbidden {
                address: addr.ip(),
                reason,
                host: Some(name.to_owned()),
            })?;
        }
    }
    Ok(addrs)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(text: &str) -> IpAddr {
        text.parse().expect("a test address")
    }

    #[test]
    fn every_forbidden_range_is_refused_with_its_reason() {
        let cases: &[(&str, Forbidden)] = &[
            // Loopback.
            ("127.0.0.1", Loopback),
            ("127.255.255.254", Loopback),
            ("::1", Loopback),
            // Private.
            ("10.0.0.1", Private),
            ("10.255.255.255", Private),
            ("172.16.0.1", Private),
            ("172.31.255.255", Private),
            ("192.168.0.1", Private),
            ("192.168.255.255", Private),
            ("fc00::1", Private),
            ("fd12:3456:789a::1", Private),
            ("fdff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", Private),
            ("fec0::1", Private),
            ("feff::1", Private),
            // Link-local.
            ("169.254.0.1", LinkLocal),
            ("169.254.255.255", LinkLocal),
            ("fe80::1", LinkLocal),
            ("febf::1", LinkLocal),
            // Shared (carrier-grade NAT).
            ("100.64.0.1", Shared),
            ("100.127.255.255", Shared),
            // Multicast.
            ("224.0.0.1", Multicast),
            ("239.255.255.255", Multicast),
            ("ff02::1", Multicast),
            ("ff0e::1", Multicast),
            // Unspecified, "this network".
            ("0.0.0.0", Unspecified),
            ("0.1.2.3", Unspecified),
            ("::", Unspecified),
            // Broadcast and reserved.
            ("255.255.255.255", Broadcast),
            ("240.0.0.1", Reserved),
            ("255.255.255.254", Reserved),
            ("192.0.0.1", Reserved),
            ("192.0.0.170", Reserved),
            ("100::1", Reserved),
            ("100::ffff:ffff:ffff:ffff", Reserved),
            ("1::1", Reserved),
            ("4000::1", Reserved),
            ("::ffff:0:7f00:1", Reserved),
            // Documentation and benchmarking.
            ("192.0.2.1", Documentation),
            ("198.51.100.7", Documentation),
            ("203.0.113.255", Documentation),
            ("198.18.0.1", Documentation),
            ("198.19.255.255", Documentation),
            ("2001:db8::1", Documentation),
            ("2001:db8:ffff::1", Documentation),
            ("2001:2::1", Documentation),
            ("3fff::1", Documentation),
            // Cloud metadata, named even where a range above holds them.
            ("169.254.169.254", Metadata),
            ("169.254.170.2", Metadata),
            ("100.100.100.200", Metadata),
            ("192.0.0.192", Metadata),
            ("fd00:ec2::254", Metadata),
        ];
        for (text, reason) in cases {
            assert_eq!(check_ip(ip(text)), Err(*reason), "{text}");
        }
    }

    #[test]
    fn ipv6_forms_carrying_an_ipv4_address_are_judged_by_it() {
        let cases: &[(&str, Forbidden)] = &[
            // IPv4-mapped.
            ("::ffff:127.0.0.1", Loopback),
            ("::ffff:10.1.2.3", Private),
            ("::ffff:169.254.169.254", Metadata),
            ("::ffff:0.0.0.0", Unspecified),
            ("::ffff:255.255.255.255", Broadcast),
            // IPv4-compatible (deprecated).
            ("::127.0.0.1", Loopback),
            ("::192.168.1.1", Private),
            ("::169.254.169.254", Metadata),
            // NAT64, well-known prefix and local-use prefix.
            ("64:ff9b::127.0.0.1", Loopback),
            ("64:ff9b::10.0.0.1", Private),
            ("64:ff9b::169.254.169.254", Metadata),
            ("64:ff9b:1::127.0.0.1", Loopback),
            ("64:ff9b:1::100.100.100.200", Metadata),
            // 6to4: the IPv4 address is the second and third groups.
            ("2002:7f00:1::", Loopback),
            ("2002:7f00:1::1", Loopback),
            ("2002:a9fe:a9fe::1", Metadata),
            ("2002:c0a8:101::1", Private),
            ("2002:e000:1::", Multicast),
        ];
        for (text, reason) in cases {
            assert_eq!(check_ip(ip(text)), Err(*reason), "{text}");
        }
    }

    #[test]
    fn the_local_use_nat64_prefix_is_private_even_around_a_public_address() {
        assert_eq!(check_ip(ip("64:ff9b:1::93.184.215.14")), Err(Private));
        assert_eq!(check_ip(ip("64:ff9b:1:abcd::5db8:d70e")), Err(Private));
    }

    #[test]
    fn public_addresses_pass() {
        for text in [
            "93.184.215.14",
            "1.1.1.1",
            "8.8.8.8",
            "100.63.255.255",
            "100.128.0.0",
            "172.15.255.255",
            "172.32.0.0",
            "192.0.1.255",
            "192.169.0.1",
            "198.17.255.255",
            "198.20.0.0",
            "223.255.255.255",
            "2606:4700::1111",
            "2001:4860:4860::8888",
            "2a00:1450:4001::1",
            "::ffff:93.184.215.14",
            "64:ff9b::93.184.215.14",
            "2002:5db8:d70e::1",
        ] {
            assert_eq!(check_ip(ip(text)), Ok(()), "{text}");
        }
    }

    #[test]
    fn reasons_read_as_a_short_phrase() {
        assert_eq!(Loopback.to_string(), "a loopback address");
        assert_eq!(Metadata.to_string(), "a cloud metadata address");
        assert_eq!(
            UrlError::Forbidden {
                address: ip("127.0.0.1"),
                reason: Loopback,
                host: None
            }
            .to_string(),
            "address 127.0.0.1 is a loopback address"
        );
        assert_eq!(
            UrlError::Forbidden {
                address: ip("10.0.0.1"),
                reason: Private,
                host: Some("evil.example".into())
            }
            .to_string(),
            "evil.example resolves to 10.0.0.1, which is a private address"
        );
    }

    fn forbidden_address(text: &str) -> Option<(IpAddr, Forbidden)> {
        match parse_url(text, false) {
            Err(UrlError::Forbidden {
                address, reason, ..
            }) => Some((address, reason)),
            _ => None,
        }
    }

    #[test]
    fn every_spelling_of_loopback_in_a_url_is_refused() {
        let loopback = Some((ip("127.0.0.1"), Loopback));
        for text in [
            "https://127.0.0.1/",
            "https://127.0.0.1:8443/hook",
            "https://2130706433/",
            "https://0177.0.0.1/",
            "https://0x7f.1/",
            "https://0x7f000001/",
            "https://127.1/",
            "https://127.0.1/",
            "https://127.0.0.1./",
            "https://0x7F.0.0.1/",
            "https://%31%32%37.0.0.1/",
        ] {
            assert_eq!(forbidden_address(text), loopback, "{text}");
        }
        let ipv6_loopback = Some((ip("::1"), Loopback));
        assert_eq!(forbidden_address("https://[::1]/"), ipv6_loopback);
        assert_eq!(
            forbidden_address("https://[0:0:0:0:0:0:0:1]/"),
            ipv6_loopback
        );
        for text in [
            "https://[::ffff:127.0.0.1]/",
            "https://[::ffff:7f00:1]/",
            "https://[::127.0.0.1]/",
            "https://[64:ff9b::7f00:1]/",
            "https://[2002:7f00:1::]/",
        ] {
            assert_eq!(
                forbidden_address(text).map(|(_, reason)| reason),
                Some(Loopback),
                "{text}"
            );
        }
    }

    #[test]
    fn other_forbidden_literals_in_a_url_are_refused() {
        let cases: &[(&str, Forbidden)] = &[
            ("https://10.0.0.1/", Private),
            ("https://0xa000001/", Private),
            ("https://169.254.169.254/latest/meta-data/", Metadata),
            ("https://2852039166/", Metadata),
            ("https://[fd00:ec2::254]/", Metadata),
            ("https://0.0.0.0/", Unspecified),
            ("https://0/", Unspecified),
            ("https://[::]/", Unspecified),
            ("https://[fe80::1]/", LinkLocal),
            ("https://100.64.1.1/", Shared),
            ("https://224.0.0.1/", Multicast),
            ("https://255.255.255.255/", Broadcast),
            ("https://192.0.2.1/", Documentation),
        ];
        for (text, reason) in cases {
            assert_eq!(
                forbidden_address(text).map(|(_, r)| r),
                Some(*reason),
                "{text}"
            );
        }
    }

    #[test]
    fn reserved_names_are_refused_in_any_case_and_with_a_trailing_dot() {
        let cases: &[(&str, Forbidden)] = &[
            ("https://localhost/", Loopback),
            ("https://localhost./", Loopback),
            ("https://LocalHost:8443/", Loopback),
            ("https://api.localhost/", Loopback),
            ("https://a.b.LOCALHOST./", Loopback),
            (
                "https://metadata.google.internal/computeMetadata/v1/",
                Metadata,
            ),
            ("https://METADATA.GOOGLE.INTERNAL./", Metadata),
            ("https://metadata/", Metadata),
            ("https://metadata./", Metadata),
            ("https://instance-data/", Metadata),
            ("https://Instance-Data./", Metadata),
            ("https://instance-data.ec2.internal/", Metadata),
        ];
        for (text, reason) in cases {
            match parse_url(text, false) {
                Err(UrlError::ForbiddenName { reason: r, .. }) => assert_eq!(r, *reason, "{text}"),
                other => panic!("{text}: {other:?}"),
            }
        }
        assert_eq!(
            parse_url("https://localhost./", false)
                .unwrap_err()
                .to_string(),
            "host localhost. names a loopback address"
        );
        // Names that merely contain them are ordinary names.
        for text in [
            "https://localhost.example.com/",
            "https://mylocalhost/",
            "https://metadata.example.com/",
            "https://instance-data.example/",
        ] {
            assert!(parse_url(text, false).is_ok(), "{text}");
        }
    }

    fn invalid_message(text: &str, allow_private: bool) -> String {
        match parse_url(text, allow_private) {
            Err(UrlError::Invalid(message)) => message,
            other => panic!("{text}: {other:?}"),
        }
    }

    #[test]
    fn malformed_or_unfit_urls_are_invalid_with_a_reason() {
        assert!(invalid_message("not a url", false).starts_with("not a valid URL"));
        assert!(invalid_message("/relative/path", false).starts_with("not a valid URL"));
        assert!(invalid_message("https://", false).starts_with("not a valid URL"));
        assert!(invalid_message("https://exa mple.com/", false).starts_with("not a valid URL"));
        assert!(
            invalid_message("https://example.com:99999/", false).starts_with("not a valid URL")
        );
        assert_eq!(
            invalid_message("http://example.com/", false),
            "the URL must use https, not http"
        );
        assert_eq!(
            invalid_message("ftp://example.com/", true),
            "the URL must use https or http, not ftp"
        );
        for text in [
            "file:///etc/passwd",
            "gopher://example.com/",
            "ws://example.com/",
            "data:text/plain,hi",
            "javascript:alert(1)",
        ] {
            assert!(
                invalid_message(text, false).starts_with("the URL must use https"),
                "{text}"
            );
        }
        for text in [
            "https://user@example.com/",
            "https://user:pass@example.com/",
            "https://:pass@example.com/",
        ] {
            assert_eq!(
                invalid_message(text, false),
                "the URL must not contain a user name or password",
                "{text}"
            );
        }
        for text in ["https://example.com/#frag", "https://example.com/#"] {
            assert!(invalid_message(text, false).contains("fragment"), "{text}");
        }
    }

    #[test]
    fn urls_are_limited_to_2000_characters() {
        let base = "https://example.com/";
        let longest = format!("{base}{}", "a".repeat(MAX_URL_CHARS - base.len()));
        assert!(parse_url(&longest, false).is_ok());
        let too_long = format!("{longest}a");
        assert_eq!(
            invalid_message(&too_long, false),
            "the URL is longer than 2000 characters"
        );
    }

    #[test]
    fn good_urls_are_accepted_and_normalised() {
        let url = parse_url("https://Example.COM:8443/hooks/kb?token=abc", false).unwrap();
        assert_eq!(url.as_str(), "https://example.com:8443/hooks/kb?token=abc");
        let url = parse_url("https://93.184.215.14/", false).unwrap();
        assert_eq!(
            url.host(),
            Some(Host::Ipv4(Ipv4Addr::new(93, 184, 215, 14)))
        );
        assert!(parse_url("https://[2606:4700::1111]/", false).is_ok());
        assert!(parse_url("https://[::ffff:93.184.215.14]/", false).is_ok());
        assert_eq!(
            parse_url("https://bücher.example/", false)
                .unwrap()
                .host_str(),
            Some("xn--bcher-kva.example")
        );
    }

    #[test]
    fn allow_private_permits_http_and_private_hosts_but_keeps_the_other_rules() {
        for text in [
            "http://127.0.0.1:8080/hook",
            "http://localhost:3000/",
            "https://10.0.0.5/",
            "http://[::1]/",
            "http://metadata.google.internal/",
        ] {
            assert!(parse_url(text, true).is_ok(), "{text}");
        }
        assert!(parse_url("http://u:p@localhost/", true).is_err());
        assert!(parse_url("http://localhost/#x", true).is_err());
        assert!(parse_url("ftp://localhost/", true).is_err());
    }

    #[tokio::test]
    async fn a_literal_host_resolves_to_itself_and_is_checked() {
        let url = Url::parse("https://93.184.215.14/").unwrap();
        assert_eq!(
            resolve_checked(&url, false).await.unwrap(),
            vec!["93.184.215.14:443".parse::<SocketAddr>().unwrap()]
        );
        let url = Url::parse("http://[2606:4700::1111]:8080/").unwrap();
        assert_eq!(
            resolve_checked(&url, false).await.unwrap(),
            vec!["[2606:4700::1111]:8080".parse::<SocketAddr>().unwrap()]
        );
        let url = Url::parse("http://127.0.0.1:9/").unwrap();
        assert_eq!(
            resolve_checked(&url, false).await,
            Err(UrlError::Forbidden {
                address: ip("127.0.0.1"),
                reason: Loopback,
                host: None
            })
        );
        assert_eq!(
            resolve_checked(&url, true).await.unwrap(),
            vec!["127.0.0.1:9".parse::<SocketAddr>().unwrap()]
        );
    }

    #[tokio::test]
    async fn a_name_resolving_to_loopback_is_refused_unless_private_is_allowed() {
        // `localhost` is answered from the hosts file, so this asks no DNS server.
        let url = Url::parse("https://localhost:8443/").unwrap();
        match resolve_checked(&url, false).await {
            Err(UrlError::Forbidden {
                address,
                reason: Loopback,
                host: Some(host),
            }) => {
                assert!(address.is_loopback());
                assert_eq!(host, "localhost");
            }
            other => panic!("{other:?}"),
        }
        let addrs = resolve_checked(&url, true).await.unwrap();
        assert!(!addrs.is_empty());
        assert!(
            addrs
                .iter()
                .all(|a| a.ip().is_loopback() && a.port() == 8443)
        );
    }

    #[test]
    fn any_forbidden_answer_refuses_the_name() {
        let public: SocketAddr = "93.184.215.14:443".parse().unwrap();
        let private: SocketAddr = "10.0.0.1:443".parse().unwrap();
        assert_eq!(
            check_resolved("ok.example", vec![public], false),
            Ok(vec![public])
        );
        // The attacker controls the mix: one bad answer among good ones is enough.
        assert_eq!(
            check_resolved("mixed.example", vec![public, private], false),
            Err(UrlError::Forbidden {
                address: private.ip(),
                reason: Private,
                host: Some("mixed.example".into())
            })
        );
        assert_eq!(
            check_resolved("mixed.example", vec![public, private], true),
            Ok(vec![public, private])
        );
        assert!(matches!(
            check_resolved("empty.example", vec![], true),
            Err(UrlError::Unresolvable(_))
        ));
    }
}
