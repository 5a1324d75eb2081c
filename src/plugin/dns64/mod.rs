//! `dns64`: RFC 6147 for IPv6-only clusters. An AAAA question (from an IPv6 client, or any
//! with `allow_ipv4`) whose answer has no AAAA records (or any answer, with `translate_all`)
//! is answered with AAAA records made from the name's A records under the prefix (RFC 6052),
//! whatever answered them: `kubernetes`, `forward`, `cache`. NXDOMAIN stays NXDOMAIN. A PTR
//! question for an address under the prefix is answered with a CNAME to the IPv4 address's
//! `in-addr.arpa` name and what that name has (RFC 6147 section 5.3.1).

pub mod config;

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use hickory_proto::op::ResponseCode;
use hickory_proto::rr::rdata::{AAAA, CNAME};
use hickory_proto::rr::{DNSClass, Name, RData, Record, RecordType};
use ipnet::Ipv6Net;
use prometheus::IntCounterVec;

use crate::dns::name::{reverse_ip, reverse_name};
use crate::plugin::PluginError;
use crate::plugin::setup::Setup;
use crate::plugin::{
    FastQuery, Handler, HandlerFuture, MAX_DEPTH, Next, RecordSet, Reply, Request, Rrs,
};

const NAME: &str = "dns64";

/// RFC 6147 section 5.1.7: the TTL of a synthesized record is at most the SOA's, or 600 s
/// when there is none.
const NO_SOA_TTL: u32 = 600;

pub struct Dns64 {
    prefix: Ipv6Net,
    translate_all: bool,
    allow_ipv4: bool,
    translated: IntCounterVec,
}

/// `v4` embedded in `prefix` as RFC 6052 section 2.2 places it (bits 64–71 left zero).
pub fn embed(prefix: &Ipv6Net, v4: Ipv4Addr) -> Ipv6Addr {
    let mut out = prefix.network().octets();
    let v = v4.octets();
    let at: &[usize] = match prefix.prefix_len() {
        32 => &[4, 5, 6, 7],
        40 => &[5, 6, 7, 9],
        48 => &[6, 7, 9, 10],
        56 => &[7, 9, 10, 11],
        64 => &[9, 10, 11, 12],
        _ => &[12, 13, 14, 15],
    };
    for (i, &pos) in at.iter().enumerate() {
        out[pos] = v[i];
    }
    Ipv6Addr::from(out)
}

/// The IPv4 address embedded in `v6`, where `v6` is under `prefix`.
pub fn extract(prefix: &Ipv6Net, v6: Ipv6Addr) -> Option<Ipv4Addr> {
    if !prefix.contains(&v6) {
        return None;
    }
    let o = v6.octets();
    let at: [usize; 4] = match prefix.prefix_len() {
        32 => [4, 5, 6, 7],
        40 => [5, 6, 7, 9],
        48 => [6, 7, 9, 10],
        56 => [7, 9, 10, 11],
        64 => [9, 10, 11, 12],
        _ => [12, 13, 14, 15],
    };
    Some(Ipv4Addr::new(o[at[0]], o[at[1]], o[at[2]], o[at[3]]))
}

impl Dns64 {
    fn synthesize(&self, question: &Name, original: &Reply, a: Reply) -> Reply {
        let soa_ttl = original
            .authority
            .iter()
            .flat_map(|s| s.records(question))
            .find(|r| r.record_type() == RecordType::SOA)
            .map_or(NO_SOA_TTL, |r| r.ttl);
        let mut out = Reply::new(a.rcode, NAME);
        out.truncated = a.truncated;
        out.recursion_available = original.recursion_available;
        out.authority = a.authority;
        out.additionals = a.additionals;
        let records: Vec<Record> = a
            .answers
            .iter()
            .flat_map(|s| s.records(question))
            .map(|r| match &r.data {
                // Section 5.3.3: every other record goes back as it came.
                RData::A(v4) => {
                    let mut aaaa = Record::from_rdata(
                        r.name.clone(),
                        r.ttl.min(soa_ttl),
                        RData::AAAA(AAAA(embed(&self.prefix, v4.0))),
                    );
                    aaaa.dns_class = r.dns_class;
                    aaaa
                }
                _ => r,
            })
            .collect();
        if !records.is_empty() {
            out.answers.push(Rrs::Records(RecordSet::from(records)));
        }
        out
    }
}

impl Handler for Dns64 {
    fn name(&self) -> &'static str {
        NAME
    }

    fn serve<'a>(&'a self, req: &'a Request<'a>, next: Next<'a>) -> HandlerFuture<'a> {
        let q = req.query;
        if q.query_class() != DNSClass::IN {
            return next.serve(req);
        }
        let name = Name::from(q.name());
        if q.query_type() == RecordType::PTR {
            let Some(IpAddr::V4(v4)) = reverse_ip(&name)
                .and_then(|ip| match ip {
                    IpAddr::V6(v6) => extract(&self.prefix, v6),
                    IpAddr::V4(_) => None,
                })
                .map(IpAddr::V4)
            else {
                return next.serve(req);
            };
            return Box::pin(async move {
                let target = reverse_name(IpAddr::V4(v4));
                let cname = Record::from_rdata(
                    name.clone(),
                    NO_SOA_TTL,
                    RData::CNAME(CNAME(target.clone())),
                );
                let mut reply = Reply::new(ResponseCode::NoError, NAME);
                let mut answers = vec![cname];
                if req.depth < MAX_DEPTH
                    && let Some(found) = req
                        .upstream
                        .lookup(target.clone(), RecordType::PTR, req.depth + 1)
                        .await
                {
                    answers.extend(found.answers.iter().flat_map(|s| s.records(&target)));
                    reply.rcode = found.rcode;
                    reply.authority = found.authority;
                }
                reply.answers.push(Rrs::Records(RecordSet::from(answers)));
                Ok(reply)
            });
        }
        let from_v4 = req.src.is_ipv4();
        if q.query_type() != RecordType::AAAA || (from_v4 && !self.allow_ipv4) {
            return next.serve(req);
        }
        Box::pin(async move {
            let reply = next.serve(req).await?;
            // Section 5.1.2: a name that does not exist does not exist.
            if reply.rcode == ResponseCode::NXDomain {
                return Ok(reply);
            }
            let has_aaaa = reply
                .answers
                .iter()
                .flat_map(|s| s.records(&name))
                .any(|r| r.record_type() == RecordType::AAAA);
            if has_aaaa && !self.translate_all {
                return Ok(reply);
            }
            if req.depth >= MAX_DEPTH {
                return Ok(reply);
            }
            let Some(a) = req
                .upstream
                .lookup(name.clone(), RecordType::A, req.depth + 1)
                .await
            else {
                return Ok(reply);
            };
            self.translated.with_label_values(&[req.server]).inc();
            Ok(self.synthesize(&name, &reply, a))
        })
    }

    /// AAAA and PTR questions are its own (and it needs the client's address to know which);
    /// everything else goes on as it is.
    fn passes_fast(&self, q: FastQuery<'_>) -> bool {
        !matches!(q.qtype, RecordType::AAAA | RecordType::PTR)
    }
}

/// Puts `dns64` into the block being set up.
pub fn setup(cfg: &config::Dns64Config, s: &mut Setup<'_>) -> Result<(), PluginError> {
    let translated = s.metrics.plugin_counter(
        "coredns_dns64_requests_translated_total",
        "Counter of DNS requests translated by dns64.",
        &["server"],
    );
    s.handler(Dns64 {
        prefix: cfg.prefix,
        translate_all: cfg.translate_all,
        allow_ipv4: cfg.allow_ipv4,
        translated,
    });
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_are_placed_as_rfc_6052_shows() {
        // RFC 6052 section 2.4's table, for 192.0.2.33.
        let v4 = Ipv4Addr::new(192, 0, 2, 33);
        for (prefix, want) in [
            ("2001:db8::/32", "2001:db8:c000:221::"),
            ("2001:db8:100::/40", "2001:db8:1c0:2:21::"),
            ("2001:db8:122::/48", "2001:db8:122:c000:2:2100::"),
            ("2001:db8:122:300::/56", "2001:db8:122:3c0:0:221::"),
            ("2001:db8:122:344::/64", "2001:db8:122:344:c0:2:2100:0"),
            ("2001:db8:122:344::/96", "2001:db8:122:344::c000:221"),
            ("64:ff9b::/96", "64:ff9b::c000:221"),
        ] {
            let net: Ipv6Net = prefix.parse().unwrap();
            let v6 = embed(&net, v4);
            assert_eq!(v6.to_string(), want, "{prefix}");
            assert_eq!(extract(&net, v6), Some(v4), "{prefix}");
        }
        let wk: Ipv6Net = "64:ff9b::/96".parse().unwrap();
        assert_eq!(extract(&wk, "2001:db8::1".parse().unwrap()), None);
    }
}
