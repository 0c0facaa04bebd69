//! The client's address: the peer, or, when the peer is a trusted proxy,
//! the nearest untrusted address in `X-Forwarded-For`; and the key it is
//! counted under (an IPv6 client by its /64, which one host usually holds
//! whole, so rotating through it does not multiply its limits).

use std::net::{IpAddr, Ipv6Addr};

use axum::http::HeaderMap;
use ipnet::IpNet;

/// The client's address for a request from `peer`.
pub fn client_ip(headers: &HeaderMap, peer: IpAddr, trusted: &[IpNet]) -> IpAddr {
    let is_trusted = |ip: &IpAddr| trusted.iter().any(|net| net.contains(ip));
    if !is_trusted(&peer) {
        return peer;
    }
    // Right to left: each hop appended the address it saw; the first one
    // not ours is the client (anything left of it the client could forge).
    // An entry that is not an address ends the walk: what our proxies
    // appended is readable, so it was written by someone else.
    let hops: Vec<&str> = headers
        .get_all("x-forwarded-for")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .collect();
    let mut client = peer;
    for hop in hops.into_iter().rev() {
        let Ok(ip) = hop.parse::<IpAddr>() else {
            break;
        };
        client = ip;
        if !is_trusted(&ip) {
            break;
        }
    }
    client
}

/// The key limits count `ip` under: IPv4 whole, IPv6 by its /64.
pub fn limit_key(ip: IpAddr) -> String {
    match ip {
        IpAddr::V4(v4) => v4.to_string(),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => v4.to_string(),
            None => {
                let s = v6.segments();
                let net = Ipv6Addr::new(s[0], s[1], s[2], s[3], 0, 0, 0, 0);
                format!("{net}/64")
            }
        },
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "test code")]
    use super::*;

    fn headers(xff: &[&str]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for v in xff {
            h.append("x-forwarded-for", v.parse().unwrap());
        }
        h
    }

    #[test]
    fn forwarded_for_counts_only_from_trusted_proxies() {
        let proxies: Vec<IpNet> = vec!["10.0.0.0/8".parse().unwrap()];
        let forged = headers(&["6.6.6.6"]);
        let peer: IpAddr = "203.0.113.9".parse().unwrap();
        assert_eq!(client_ip(&forged, peer, &proxies), peer, "not a proxy");
        let lb: IpAddr = "10.1.2.3".parse().unwrap();
        let via = headers(&["6.6.6.6, 198.51.100.7", "10.9.9.9"]);
        assert_eq!(
            client_ip(&via, lb, &proxies),
            "198.51.100.7".parse::<IpAddr>().unwrap(),
            "the nearest untrusted hop, not the forgeable leftmost"
        );
        assert_eq!(client_ip(&HeaderMap::new(), lb, &proxies), lb);
        assert_eq!(client_ip(&headers(&["junk"]), lb, &proxies), lb);
        // Junk left of the real client does not hide it.
        assert_eq!(
            client_ip(&headers(&["junk, 198.51.100.7"]), lb, &proxies),
            "198.51.100.7".parse::<IpAddr>().unwrap()
        );
    }

    #[test]
    fn ipv6_is_keyed_by_its_64() {
        let a = limit_key("2001:db8:1:2:aaaa::1".parse().unwrap());
        let b = limit_key("2001:db8:1:2:bbbb::9".parse().unwrap());
        assert_eq!(a, b);
        assert_eq!(a, "2001:db8:1:2::/64");
        assert_eq!(limit_key("::ffff:192.0.2.1".parse().unwrap()), "192.0.2.1");
        assert_eq!(limit_key("192.0.2.1".parse().unwrap()), "192.0.2.1");
    }
}
