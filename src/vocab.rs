//! The words every layer shares: where a listener listens, a port's TCP timeouts and source
//! limit, and the client's address as the chain sees it. A leaf: it imports nothing of the
//! crate, so the configuration, the plugins, the server and the application may all name these
//! without importing one another.

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

/// Where a DNS listener listens: the address a `bind` named (`None`: every address, or the one
/// given on the command line) and the port the Corefile named.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct DnsKey {
    pub ip: Option<IpAddr>,
    pub port: u16,
}

impl DnsKey {
    pub fn new(ip: Option<IpAddr>, port: u16) -> Self {
        Self { ip, port }
    }
}

/// An address an HTTP endpoint listens on: `:8080`, `0.0.0.0:9153`, `localhost:9153`,
/// `[::1]:8181`. No host means every address.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ListenAddr {
    pub ip: Option<IpAddr>,
    pub port: u16,
}

impl std::fmt::Display for ListenAddr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.ip {
            None => write!(f, ":{}", self.port),
            Some(ip @ IpAddr::V6(_)) => write!(f, "[{ip}]:{}", self.port),
            Some(ip) => write!(f, "{ip}:{}", self.port),
        }
    }
}

/// How long a TCP connection may take to send a query, to read an answer, and sit idle
/// between queries (`timeouts`); `None` keeps the listener's own.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TcpTimeouts {
    pub read: Option<Duration>,
    pub write: Option<Duration>,
    pub idle: Option<Duration>,
    /// Answers a connection carries before it is closed (`maxtcpqueries`); `None`: no limit.
    pub max_queries: Option<u32>,
}

/// What a port allows one source (`ratelimit`, `--udp-per-source-qps`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SourceLimitConfig {
    /// Queries per second from one address; 0: no limit.
    pub limit: u32,
    /// Addresses never limited.
    pub exempt: Vec<IpAddr>,
}

impl SourceLimitConfig {
    /// The limit of a port whose blocks each set `a` and `b`: the lower (0 is none), and both
    /// lists of exempt addresses.
    pub fn merge(&self, other: &Self) -> Self {
        let limit = match (self.limit, other.limit) {
            (0, n) | (n, 0) => n,
            (a, b) => a.min(b),
        };
        let mut exempt = self.exempt.clone();
        exempt.extend(other.exempt.iter().filter(|ip| !self.exempt.contains(ip)));
        Self { limit, exempt }
    }
}

/// The client's address as the chain sees it. A dual-stack socket (the default listener, with
/// no `bind`) sees an IPv4 client as `::ffff:a.b.c.d`; this is the same client as on an IPv4
/// socket, and every plugin that reads the address (`acl`, `autopath`, `view`, `log`, …) must
/// see it so. The server applies this once, where a query enters; replies still go to the
/// address the socket reported.
pub fn client_ip(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    }
}

/// [`client_ip`], keeping the port.
pub fn client_addr(src: SocketAddr) -> SocketAddr {
    SocketAddr::new(client_ip(src.ip()), src.port())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_mapped_ipv4_client_is_ipv4() {
        let mapped: SocketAddr = "[::ffff:10.1.2.3]:5353".parse().unwrap();
        assert_eq!(client_addr(mapped), "10.1.2.3:5353".parse().unwrap());
        let v6: SocketAddr = "[fd00::1]:53".parse().unwrap();
        assert_eq!(client_addr(v6), v6);
        // The IPv4-compatible form (::a.b.c.d, deprecated) is not a mapped address.
        let compat: IpAddr = "::10.1.2.3".parse().unwrap();
        assert_eq!(client_ip(compat), compat);
    }
}
