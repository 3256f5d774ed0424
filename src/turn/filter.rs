//! Which peers relayed traffic may reach.

use std::net::{IpAddr, SocketAddr};

/// The peers an allocation may relay to and from: any of `ips`, on a port in `ports`.
///
/// `ports` is inclusive; `(0, 0)` means any port. An empty `ips` allows nothing.
/// IPv4-mapped IPv6 addresses are compared as IPv4.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AllowedPeers {
    /// Allowed peer IP addresses (e.g. the media server's public IP).
    pub ips: Vec<IpAddr>,
    /// Inclusive allowed port range; `(0, 0)` = any port.
    pub ports: (u16, u16),
}

impl AllowedPeers {
    /// Whether `addr` (IP and port) may be a relay peer.
    pub fn allows(&self, addr: SocketAddr) -> bool {
        self.allows_ip(addr.ip()) && self.allows_port(addr.port())
    }

    /// Whether `ip` is one of the allowed IPs.
    pub fn allows_ip(&self, ip: IpAddr) -> bool {
        let ip = ip.to_canonical();
        self.ips.iter().any(|a| a.to_canonical() == ip)
    }

    /// Whether `port` lies in the allowed range.
    pub fn allows_port(&self, port: u16) -> bool {
        match self.ports {
            (0, 0) => true,
            (lo, hi) => (lo..=hi).contains(&port),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn allows() {
        let p = AllowedPeers {
            ips: vec!["127.0.0.1".parse().unwrap()],
            ports: (50000, 50010),
        };
        assert!(p.allows("127.0.0.1:50000".parse().unwrap()));
        assert!(p.allows("127.0.0.1:50010".parse().unwrap()));
        assert!(p.allows("[::ffff:127.0.0.1]:50005".parse().unwrap()));
        assert!(!p.allows("127.0.0.1:49999".parse().unwrap()));
        assert!(!p.allows("127.0.0.1:50011".parse().unwrap()));
        assert!(!p.allows("127.0.0.2:50005".parse().unwrap()));
        let any_port = AllowedPeers { ports: (0, 0), ..p };
        assert!(any_port.allows("127.0.0.1:1".parse().unwrap()));
        let none = AllowedPeers {
            ips: vec![],
            ports: (0, 0),
        };
        assert!(!none.allows("127.0.0.1:1".parse().unwrap()));
    }
}
