//! Who is asking, and over what: the client address and whether the request
//! came over TLS, taken from the socket, or from `X-Forwarded-For` and
//! `X-Forwarded-Proto` only when the socket's peer is a proxy the operator
//! trusts (`serve --trusted-proxy CIDR`). Anyone else's forwarding headers
//! are ignored, so a client cannot choose the address it is throttled and
//! audited under.
//!
//! Also the clock of the sign-in throttle, which tests replace.

use std::net::{IpAddr, SocketAddr};
use std::str::FromStr;
use std::time::Instant;

use axum::extract::{ConnectInfo, Request, State};
use axum::http::{HeaderMap, Uri};
use axum::middleware::Next;
use axum::response::Response;

use crate::AppState;

/// A network in CIDR notation (`10.0.0.0/8`, `2001:db8::/32`), or one
/// address.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cidr {
    network: IpAddr,
    prefix: u8,
}

#[derive(Debug, thiserror::Error)]
#[error("not an address or network in CIDR notation (such as 10.0.0.0/8 or 2001:db8::/32): {0}")]
pub struct CidrError(String);

impl FromStr for Cidr {
    type Err = CidrError;

    fn from_str(text: &str) -> Result<Cidr, CidrError> {
        let refuse = || CidrError(text.to_owned());
        let (address, prefix) = match text.trim().split_once('/') {
            Some((address, prefix)) => (address, Some(prefix.parse::<u8>().map_err(|_| refuse())?)),
            None => (text.trim(), None),
        };
        let network = normalise(address.parse::<IpAddr>().map_err(|_| refuse())?);
        let bits = if network.is_ipv4() { 32 } else { 128 };
        let prefix = prefix.unwrap_or(bits);
        if prefix > bits {
            return Err(refuse());
        }
        Ok(Cidr {
            network: mask(network, prefix),
            prefix,
        })
    }
}

impl Cidr {
    pub fn contains(&self, address: IpAddr) -> bool {
        let address = normalise(address);
        address.is_ipv4() == self.network.is_ipv4() && mask(address, self.prefix) == self.network
    }
}

fn normalise(address: IpAddr) -> IpAddr {
    match address {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(address, IpAddr::V4),
        IpAddr::V4(_) => address,
    }
}

fn mask(address: IpAddr, prefix: u8) -> IpAddr {
    match address {
        IpAddr::V4(v4) => {
            let keep = u32::MAX.checked_shl(32 - u32::from(prefix)).unwrap_or(0);
            IpAddr::V4((u32::from(v4) & keep).into())
        }
        IpAddr::V6(v6) => {
            let keep = u128::MAX.checked_shl(128 - u32::from(prefix)).unwrap_or(0);
            IpAddr::V6((u128::from(v6) & keep).into())
        }
    }
}

/// The client of one request, in its extensions (set by [`client_info`]).
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct ClientInfo {
    /// None without a socket (the router's own tests).
    pub(crate) address: Option<IpAddr>,
    /// The request came over TLS: directly (an `https` URI), or per
    /// `X-Forwarded-Proto` from a trusted proxy.
    pub(crate) https: bool,
}

impl ClientInfo {
    pub(crate) fn resolve(
        peer: Option<IpAddr>,
        uri: &Uri,
        headers: &HeaderMap,
        trusted: &[Cidr],
    ) -> ClientInfo {
        let is_trusted = |address: IpAddr| trusted.iter().any(|cidr| cidr.contains(address));
        let direct_tls = uri
            .scheme_str()
            .is_some_and(|scheme| scheme.eq_ignore_ascii_case("https"));
        let Some(peer) = peer.filter(|peer| is_trusted(*peer)) else {
            return ClientInfo {
                address: peer.map(normalise),
                https: direct_tls,
            };
        };
        // The nearest address that is not one of our proxies: the ones to
        // its left were written by the client and prove nothing.
        let forwarded: Vec<&str> = headers
            .get_all("x-forwarded-for")
            .iter()
            .filter_map(|value| value.to_str().ok())
            .flat_map(|value| value.split(','))
            .map(str::trim)
            .collect();
        let mut address = normalise(peer);
        for hop in forwarded.iter().rev() {
            let Ok(hop) = hop.parse::<IpAddr>() else {
                break;
            };
            address = normalise(hop);
            if !is_trusted(address) {
                break;
            }
        }
        let proto = headers
            .get_all("x-forwarded-proto")
            .iter()
            .filter_map(|value| value.to_str().ok())
            .flat_map(|value| value.split(','))
            .map(str::trim)
            .next_back();
        let https = direct_tls || proto.is_some_and(|proto| proto.eq_ignore_ascii_case("https"));
        ClientInfo {
            address: Some(address),
            https,
        }
    }
}

/// The middleware that puts a [`ClientInfo`] in every request.
pub(crate) async fn client_info(
    State(state): State<AppState>,
    mut request: Request,
    next: Next,
) -> Response {
    let peer = request
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|info| info.0.ip());
    let info = ClientInfo::resolve(
        peer,
        request.uri(),
        request.headers(),
        &state.trusted_proxies,
    );
    request.extensions_mut().insert(info);
    next.run(request).await
}

/// The time the sign-in throttle goes by; tests move it by hand.
pub trait Clock: Send + Sync {
    fn now(&self) -> Instant;
}

/// The real clock.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> Instant {
        Instant::now()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn resolve(
        peer: &str,
        forwarded_for: Option<&str>,
        proto: Option<&str>,
        trusted: &[&str],
    ) -> ClientInfo {
        let mut headers = HeaderMap::new();
        if let Some(value) = forwarded_for {
            headers.insert("x-forwarded-for", value.parse().unwrap());
        }
        if let Some(value) = proto {
            headers.insert("x-forwarded-proto", value.parse().unwrap());
        }
        let trusted: Vec<Cidr> = trusted.iter().map(|t| t.parse().unwrap()).collect();
        ClientInfo::resolve(
            Some(peer.parse().unwrap()),
            &Uri::from_static("/login"),
            &headers,
            &trusted,
        )
    }

    #[test]
    fn cidr() {
        let net: Cidr = "10.1.0.0/16".parse().unwrap();
        assert!(net.contains("10.1.200.3".parse().unwrap()));
        assert!(net.contains("::ffff:10.1.0.1".parse().unwrap()));
        assert!(!net.contains("10.2.0.1".parse().unwrap()));
        let v6: Cidr = "2001:db8::/32".parse().unwrap();
        assert!(v6.contains("2001:db8:ffff::1".parse().unwrap()));
        assert!(!v6.contains("10.1.0.1".parse().unwrap()));
        let one: Cidr = "192.0.2.7".parse().unwrap();
        assert!(
            one.contains("192.0.2.7".parse().unwrap())
                && !one.contains("192.0.2.8".parse().unwrap())
        );
        assert!(
            "0.0.0.0/0"
                .parse::<Cidr>()
                .unwrap()
                .contains("8.8.8.8".parse().unwrap())
        );
        for bad in ["10.0.0.0/33", "nonsense", "10.0.0.0/x", ""] {
            assert!(bad.parse::<Cidr>().is_err(), "{bad}");
        }
    }

    #[test]
    fn forwarded_headers_count_only_from_trusted_proxies() {
        let untrusted = resolve(
            "198.51.100.9",
            Some("203.0.113.5"),
            Some("https"),
            &["10.0.0.0/8"],
        );
        assert_eq!(untrusted.address, Some("198.51.100.9".parse().unwrap()));
        assert!(!untrusted.https);
        let trusted = resolve(
            "10.0.0.2",
            Some("1.2.3.4, 203.0.113.5, 10.0.0.3"),
            Some("https"),
            &["10.0.0.0/8"],
        );
        assert_eq!(
            trusted.address,
            Some("203.0.113.5".parse().unwrap()),
            "the nearest untrusted hop, not the client's claim"
        );
        assert!(trusted.https);
        let plain = resolve("10.0.0.2", None, Some("http"), &["10.0.0.0/8"]);
        assert_eq!(plain.address, Some("10.0.0.2".parse().unwrap()));
        assert!(!plain.https);
        let garbage = resolve("10.0.0.2", Some("unknown"), None, &["10.0.0.0/8"]);
        assert_eq!(garbage.address, Some("10.0.0.2".parse().unwrap()));
    }
}
