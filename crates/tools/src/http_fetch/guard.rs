//! SSRF protection: which addresses `http_fetch` may connect to.

use std::{
    net::{IpAddr, Ipv4Addr, Ipv6Addr},
    str::FromStr,
};

use ipnet::IpNet;

use crate::ToolsError;

/// Hosts and networks the operator allows although they are not public.
#[derive(Debug, Clone, Default)]
pub(super) struct AllowList {
    /// Lowercase host names; an entry `*.example.com` is kept as `.example.com`.
    hosts: Vec<String>,
    nets: Vec<IpNet>,
}

impl AllowList {
    /// Parses `allow_hosts`: host names (`intranet.example`, `*.corp.example`), IP
    /// addresses (`127.0.0.1`, `::1`) and networks (`10.0.0.0/8`, `fd00::/8`).
    pub(super) fn parse(entries: &[String]) -> Result<Self, ToolsError> {
        let mut list = Self::default();
        for entry in entries {
            let entry = entry.trim();
            let bare = entry.trim_start_matches('[').trim_end_matches(']');
            if let Ok(ip) = IpAddr::from_str(bare) {
                list.nets.push(IpNet::from(ip));
            } else if let Ok(net) = IpNet::from_str(bare) {
                list.nets.push(net.trunc());
            } else if entry.contains('/') || entry.is_empty() || entry.contains(char::is_whitespace)
            {
                return Err(ToolsError::Config {
                    field: "http_fetch.allow_hosts",
                    reason: format!(
                        "`{entry}` is neither a host name, an IP address nor a network like 10.0.0.0/8"
                    ),
                });
            } else if let Some(suffix) = entry.strip_prefix("*.") {
                list.hosts.push(format!(".{}", normalize_host(suffix)));
            } else {
                list.hosts.push(normalize_host(entry));
            }
        }
        Ok(list)
    }

    /// Whether the host name, as written in the URL, is allow-listed.
    pub(super) fn allows_host(&self, host: &str) -> bool {
        let host = normalize_host(host);
        self.hosts.iter().any(|allowed| {
            if allowed.starts_with('.') {
                host.ends_with(allowed.as_str())
            } else {
                *allowed == host
            }
        })
    }

    /// Whether the address lies in an allow-listed network.
    pub(super) fn allows_ip(&self, ip: IpAddr) -> bool {
        let ip = canonical(ip);
        self.nets.iter().any(|net| net.contains(&ip))
    }
}

fn normalize_host(host: &str) -> String {
    host.trim_end_matches('.').to_ascii_lowercase()
}

/// IPv4-mapped IPv6 addresses (`::ffff:127.0.0.1`) as the IPv4 address they are.
fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(IpAddr::V6(v6), IpAddr::V4),
        v4 => v4,
    }
}

/// Why `ip` is not a public address, or `None` if it is.
pub(super) fn restricted_class(ip: IpAddr) -> Option<&'static str> {
    match ip {
        IpAddr::V4(v4) => v4_class(v4),
        IpAddr::V6(v6) => v6_class(v6),
    }
}

fn v4_class(ip: Ipv4Addr) -> Option<&'static str> {
    let [a, b, c, _] = ip.octets();
    if a == 0 {
        Some("an unspecified (\"this network\", 0.0.0.0/8) address")
    } else if ip.is_loopback() {
        Some("a loopback (127.0.0.0/8) address")
    } else if ip.is_private() {
        Some("a private-network (10.0.0.0/8, 172.16.0.0/12, 192.168.0.0/16) address")
    } else if ip.is_link_local() {
        Some("a link-local (169.254.0.0/16, e.g. cloud metadata) address")
    } else if a == 100 && (64..128).contains(&b) {
        Some("a shared carrier-grade NAT (100.64.0.0/10) address")
    } else if ip.is_multicast() {
        Some("a multicast (224.0.0.0/4) address")
    } else if ip.is_broadcast() || a >= 240 {
        Some("a reserved (240.0.0.0/4) or broadcast address")
    } else if (a == 192 && b == 0 && c == 0) || (a == 198 && (b == 18 || b == 19)) {
        Some("a reserved (IETF protocol or benchmarking) address")
    } else {
        None
    }
}

fn v6_class(ip: Ipv6Addr) -> Option<&'static str> {
    let s = ip.segments();
    if ip.is_unspecified() {
        Some("an unspecified (::) address")
    } else if ip.is_loopback() {
        Some("a loopback (::1) address")
    } else if let Some(v4) = ip.to_ipv4_mapped() {
        v4_class(v4)
    } else if s[0] & 0xffc0 == 0xfe80 {
        Some("a link-local (fe80::/10) address")
    } else if s[0] & 0xfe00 == 0xfc00 {
        Some("a unique-local (fc00::/7) address")
    } else if s[0] & 0xffc0 == 0xfec0 {
        Some("a site-local (fec0::/10) address")
    } else if ip.is_multicast() {
        Some("a multicast (ff00::/8) address")
    } else if s[..6].iter().all(|&x| x == 0) {
        Some("a reserved IPv4-compatible (::/96) address")
    } else if s[..6] == [0x64, 0xff9b, 0, 0, 0, 0] {
        // NAT64: the IPv4 address it reaches is in the low 32 bits.
        v4_class(embedded_v4(s[6], s[7]))
    } else if s[0] == 0x2002 {
        // 6to4: the IPv4 address follows the prefix.
        v4_class(embedded_v4(s[1], s[2]))
    } else {
        None
    }
}

fn embedded_v4(high: u16, low: u16) -> Ipv4Addr {
    let [a, b] = high.to_be_bytes();
    let [c, d] = low.to_be_bytes();
    Ipv4Addr::new(a, b, c, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn class(ip: &str) -> Option<&'static str> {
        restricted_class(IpAddr::from_str(ip).unwrap())
    }

    #[test]
    fn classifies_non_public_addresses() {
        assert!(class("127.0.0.1").unwrap().contains("loopback"));
        assert!(class("10.1.2.3").unwrap().contains("private"));
        assert!(class("172.16.0.1").unwrap().contains("private"));
        assert!(class("172.31.255.255").unwrap().contains("private"));
        assert!(class("192.168.1.1").unwrap().contains("private"));
        assert!(class("169.254.169.254").unwrap().contains("link-local"));
        assert!(class("0.0.0.0").unwrap().contains("unspecified"));
        assert!(class("224.0.0.1").unwrap().contains("multicast"));
        assert!(class("100.64.0.1").unwrap().contains("carrier-grade"));
        assert!(class("::1").unwrap().contains("loopback"));
        assert!(class("::").unwrap().contains("unspecified"));
        assert!(class("fe80::1").unwrap().contains("link-local"));
        assert!(class("fd12:3456::1").unwrap().contains("unique-local"));
        assert!(class("ff02::1").unwrap().contains("multicast"));
        assert!(class("::ffff:127.0.0.1").unwrap().contains("loopback"));
        assert!(class("::ffff:10.0.0.1").unwrap().contains("private"));
        assert!(class("64:ff9b::a9fe:a9fe").unwrap().contains("link-local"));
        assert!(class("2002:7f00:1::").unwrap().contains("loopback"));
    }

    #[test]
    fn public_addresses_pass() {
        for ip in [
            "93.184.216.34",
            "8.8.8.8",
            "172.32.0.1",
            "2606:4700::1111",
            "::ffff:1.1.1.1",
        ] {
            assert_eq!(class(ip), None, "{ip}");
        }
    }

    #[test]
    fn allow_list_matches_hosts_ips_and_networks() -> Result<(), ToolsError> {
        let list = AllowList::parse(&[
            "127.0.0.1".into(),
            "10.0.0.0/8".into(),
            "Intranet.Example.".into(),
            "*.corp.example".into(),
            "[::1]".into(),
        ])?;
        assert!(list.allows_ip("127.0.0.1".parse().unwrap()));
        assert!(list.allows_ip("::ffff:127.0.0.1".parse().unwrap()));
        assert!(!list.allows_ip("127.0.0.2".parse().unwrap()));
        assert!(list.allows_ip("10.200.0.1".parse().unwrap()));
        assert!(list.allows_ip("::1".parse().unwrap()));
        assert!(list.allows_host("intranet.example"));
        assert!(list.allows_host("wiki.corp.example"));
        assert!(!list.allows_host("corp.example.evil"));
        assert!(AllowList::parse(&["not a host".into()]).is_err());
        Ok(())
    }
}
