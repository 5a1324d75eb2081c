//! Host names among the upstreams (CoreDNS 1.14: `forward . dns.example.local`), resolved
//! once, when the plugin is set up: A and AAAA from the `resolver` addresses, or from
//! `/etc/resolv.conf`'s name servers, each address an upstream of its own.

use std::net::{IpAddr, SocketAddr, UdpSocket};
use std::time::Duration;

use hickory_proto::op::{Message, MessageType, OpCode, Query};
use hickory_proto::rr::{Name, RData, RecordType};

use super::config::{ForwardConfig, To, resolv_conf_nameservers};

/// How long one resolver may take to answer one question.
const TIMEOUT: Duration = Duration::from_secs(2);

/// The upstreams with every host name replaced by the addresses it resolves to.
pub fn resolve(cfg: &ForwardConfig) -> Result<Vec<To>, String> {
    if cfg.to.iter().all(|t| t.host.is_none()) {
        return Ok(cfg.to.clone());
    }
    let resolvers: Vec<SocketAddr> = if cfg.resolver.is_empty() {
        let conf = std::fs::read_to_string("/etc/resolv.conf").unwrap_or_default();
        resolv_conf_nameservers(&conf)
            .into_iter()
            .map(|ip| SocketAddr::new(ip, 53))
            .collect()
    } else {
        cfg.resolver.clone()
    };
    let mut out = Vec::new();
    for to in &cfg.to {
        let Some(host) = &to.host else {
            out.push(to.clone());
            continue;
        };
        let ips = addresses(host, &resolvers)?;
        out.extend(ips.into_iter().map(|ip| To {
            addr: SocketAddr::new(ip, to.addr.port()),
            host: None,
            ..to.clone()
        }));
    }
    Ok(out)
}

/// The A and AAAA addresses of `host`, from the first resolver that answers.
fn addresses(host: &Name, resolvers: &[SocketAddr]) -> Result<Vec<IpAddr>, String> {
    let mut last = format!("no resolver to ask for {host}");
    for resolver in resolvers {
        let mut ips = Vec::new();
        let mut answered = false;
        for qtype in [RecordType::A, RecordType::AAAA] {
            match ask(*resolver, host, qtype) {
                Ok(found) => {
                    answered = true;
                    ips.extend(found);
                }
                Err(e) => last = format!("resolving {host} at {resolver}: {e}"),
            }
        }
        if answered {
            if ips.is_empty() {
                return Err(format!("{host} has no address (asked {resolver})"));
            }
            return Ok(ips);
        }
    }
    Err(last)
}

/// One question to one resolver over UDP, blocking: what a name resolves to, in its order.
fn ask(resolver: SocketAddr, host: &Name, qtype: RecordType) -> Result<Vec<IpAddr>, String> {
    let local: SocketAddr = if resolver.is_ipv4() {
        "0.0.0.0:0".parse().expect("literal")
    } else {
        "[::]:0".parse().expect("literal")
    };
    let sock = UdpSocket::bind(local).map_err(|e| e.to_string())?;
    sock.set_read_timeout(Some(TIMEOUT))
        .map_err(|e| e.to_string())?;
    let id: u16 = rand::random();
    let mut q = Message::new(id, MessageType::Query, OpCode::Query);
    q.metadata.recursion_desired = true;
    q.add_query(Query::query(host.clone(), qtype));
    let bytes = q.to_vec().map_err(|e| e.to_string())?;
    sock.send_to(&bytes, resolver).map_err(|e| e.to_string())?;
    let mut buf = [0u8; 4096];
    loop {
        let (n, from) = sock.recv_from(&mut buf).map_err(|e| e.to_string())?;
        let Ok(answer) = Message::from_vec(&buf[..n]) else {
            continue;
        };
        if from != resolver || answer.metadata.id != id {
            continue;
        }
        return Ok(answer
            .answers
            .iter()
            .filter_map(|r| match &r.data {
                RData::A(a) => Some(IpAddr::V4(a.0)),
                RData::AAAA(a) => Some(IpAddr::V6(a.0)),
                _ => None,
            })
            .collect());
    }
}
