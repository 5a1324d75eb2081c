//! `transfer [ZONES…] { to ADDRESS… }`: ZONES default to the block's; at least one `to`;
//! an ADDRESS is `*`, an IP address (with a port, which is for NOTIFY and not used here), or a
//! CIDR.

use std::net::{IpAddr, SocketAddr};

use hickory_proto::rr::Name;
use ipnet::IpNet;

use crate::corefile::args::{self, Args};
use crate::corefile::error::ConfigError;
use crate::corefile::keys::{BlockContext, zones_or_block};
use crate::corefile::{Directive, Token};

/// Who may transfer the zones.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Peer {
    Any,
    Net(IpNet),
}

impl Peer {
    pub fn admits(&self, ip: IpAddr) -> bool {
        match self {
            Peer::Any => true,
            Peer::Net(n) => n.contains(&ip),
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TransferConfig {
    pub zones: Vec<Name>,
    pub to: Vec<Peer>,
    /// The `to` entries that are one address (port 53 unless written): told of each change
    /// by NOTIFY.
    pub notify: Vec<SocketAddr>,
    /// Where NOTIFY messages are sent from (`source ADDRESS`, CoreDNS 1.14).
    pub source: Option<IpAddr>,
}

impl TransferConfig {
    /// The block's next `transfer` line.
    pub fn absorb(&mut self, next: TransferConfig) {
        self.zones.extend(next.zones);
        self.to.extend(next.to);
        self.notify.extend(next.notify);
        self.source = self.source.or(next.source);
    }
}

pub fn parse(d: &Directive, ctx: &BlockContext) -> Result<TransferConfig, Vec<ConfigError>> {
    let zones = zones_or_block(&d.args, ctx)?;
    let mut to = Vec::new();
    let mut notify = Vec::new();
    let mut source = None;
    let mut errors = Vec::new();
    for p in d.block.iter().flatten() {
        let a = Args::new(format!("transfer: {}", p.name.text), p);
        match p.name.text.as_str() {
            "to" => match a.some("ADDRESS… (or *)") {
                Ok(list) => {
                    for t in list {
                        match peer(&a, t) {
                            Ok(peer) => to.push(peer),
                            Err(e) => errors.push(e),
                        }
                        if let Some(at) = notify_target(&t.text) {
                            notify.push(at);
                        }
                    }
                }
                Err(e) => errors.push(e),
            },
            "source" => match a.one("an IP address").and_then(|t| {
                t.text
                    .parse::<IpAddr>()
                    .map_err(|_| a.err(t, format!("'{}' is not an IP address", t.text)))
            }) {
                Ok(ip) => source = Some(ip),
                Err(e) => errors.push(e),
            },
            other => errors
                .push(a.err_here(format!("unknown property '{other}'; expected to or source"))),
        }
    }
    if errors.is_empty() && to.is_empty() {
        errors.push(Args::new("transfer", d).err_here("expected a block with 'to ADDRESS…'"));
    }
    args::finish(
        TransferConfig {
            zones,
            to,
            notify,
            source,
        },
        errors,
    )
}

/// A `to` entry that names one secondary (`IP` or `IP:PORT`): where NOTIFY goes.
fn notify_target(text: &str) -> Option<SocketAddr> {
    text.parse::<SocketAddr>().ok().or_else(|| {
        text.parse::<IpAddr>()
            .ok()
            .map(|ip| SocketAddr::new(ip, 53))
    })
}

fn peer(a: &Args, t: &Token) -> Result<Peer, ConfigError> {
    let text = t.text.as_str();
    if text == "*" {
        return Ok(Peer::Any);
    }
    if let Ok(ip) = text.parse::<IpAddr>() {
        return Ok(Peer::Net(IpNet::from(ip)));
    }
    if let Ok(sa) = text.parse::<SocketAddr>() {
        return Ok(Peer::Net(IpNet::from(sa.ip())));
    }
    if let Ok(net) = text.parse::<IpNet>() {
        return Ok(Peer::Net(net.trunc()));
    }
    Err(a.err(
        t,
        format!("'{text}' is not an address, an address:port, a CIDR or *"),
    ))
}

#[cfg(test)]
mod tests {
    use super::Peer;
    use crate::config::testing::{assert_errors, plugin, zones};
    use crate::plugin::registry::PluginConfig;

    #[test]
    fn zones_and_peers() {
        let c = plugin(
            "cluster.local:53 {\n transfer {\n  to 10.0.0.1 192.0.2.7:53\n  to * 10.1.0.0/16\n }\n}",
            |p| match p {
                PluginConfig::Transfer(c) => Some((**c).clone()),
                _ => None,
            },
        );
        assert_eq!(zones(&c.zones), ["cluster.local."]);
        assert_eq!(c.to.len(), 4);
        assert!(c.to[0].admits("10.0.0.1".parse().unwrap()));
        assert!(!c.to[0].admits("10.0.0.2".parse().unwrap()));
        assert!(c.to[1].admits("192.0.2.7".parse().unwrap()));
        assert_eq!(c.to[2], Peer::Any);
        assert!(c.to[3].admits("10.1.200.3".parse().unwrap()));
        // The single addresses are the secondaries NOTIFY goes to.
        let notify: Vec<String> = c.notify.iter().map(|a| a.to_string()).collect();
        assert_eq!(notify, ["10.0.0.1:53", "192.0.2.7:53"]);
    }

    #[test]
    fn errors_name_the_place() {
        assert_errors(&[
            (
                ".:53 {\n transfer\n}",
                "2:2: transfer: expected a block with 'to ADDRESS…'",
            ),
            (
                ".:53 {\n transfer {\n  to\n }\n}",
                "3:3: transfer: to: expected ADDRESS… (or *)",
            ),
            (
                ".:53 {\n transfer {\n  to secondary.example.org\n }\n}",
                "3:6: transfer: to: 'secondary.example.org' is not an address",
            ),
            (
                ".:53 {\n transfer {\n  to 10.0.0.1\n  source 2001:db8::zz\n }\n}",
                "4:10: transfer: source: '2001:db8::zz' is not an IP address",
            ),
            (
                ".:53 {\n transfer {\n  from 10.0.0.1\n }\n}",
                "3:3: transfer: from: unknown property 'from'; expected to or source",
            ),
        ]);
    }
}
