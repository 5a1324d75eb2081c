//! `local`: answers the names that must never leave the host (RFC 6761 section 6.3, and the
//! loopback, "this network" and broadcast reverse zones): `localhost.` and every name under it
//! get the loopback addresses, `1.0.0.127.in-addr.arpa.` its PTR, and everything else in
//! `localhost.`, `0.in-addr.arpa.`, `127.in-addr.arpa.` and `255.in-addr.arpa.` NODATA or
//! NXDOMAIN with the zone's SOA. With `localhost_prefix` on (the default), a name that starts
//! with `localhost.` (`localhost.cluster.local.`, what a search list makes of `localhost`) is
//! answered as `localhost.` is. Nothing is authoritative, as in CoreDNS.

pub mod config;

use std::net::{Ipv4Addr, Ipv6Addr};

use hickory_proto::op::ResponseCode;
use hickory_proto::rr::rdata::{A, AAAA, NS, PTR};

use crate::dns::soa::Soa;
use hickory_proto::rr::{Name, RData, Record, RecordType};
use prometheus::IntCounter;

use crate::dns::wire::NameKey;
use crate::plugin::PluginError;
use crate::plugin::setup::Setup;
use crate::plugin::{FastQuery, Handler, HandlerFuture, Next, RecordSet, Reply, Request};

const TTL: u32 = 604_800;
const ZONES: [&str; 4] = [
    "localhost.",
    "0.in-addr.arpa.",
    "127.in-addr.arpa.",
    "255.in-addr.arpa.",
];

pub struct Local {
    prefix: bool,
    zones: Vec<(Name, NameKey)>,
    localhost: Name,
    /// The SOA's mailbox, `root.localhost.`.
    hostmaster: Name,
    loopback_ptr: Name,
    /// `coredns_local_localhost_requests_total`: names under `localhost.` (not `localhost.` itself).
    counted: IntCounter,
}

fn records(rs: Vec<Record>) -> crate::plugin::Rrs {
    RecordSet::from(rs).into()
}

impl Local {
    fn new(cfg: &config::LocalConfig, counted: IntCounter) -> Self {
        let zones = ZONES
            .iter()
            .map(|z| {
                let name = Name::from_ascii(z).expect("valid zone");
                let key = NameKey::new(&name);
                (name, key)
            })
            .collect();
        Self {
            prefix: cfg.localhost_prefix,
            zones,
            localhost: Name::from_ascii("localhost.").expect("valid name"),
            hostmaster: Name::from_ascii("root.localhost.").expect("valid name"),
            loopback_ptr: Name::from_ascii("1.0.0.127.in-addr.arpa.").expect("valid name"),
            counted,
        }
    }

    /// Whether `name` (more than one label) starts with the label `localhost`.
    fn prefixed(&self, first: &[u8], labels: usize) -> bool {
        self.prefix && labels > 2 && first == b"localhost"
    }

    /// The SOA of a local zone, named `owner`.
    fn soa(&self, owner: &Name) -> Record {
        Soa {
            owner: owner.clone(),
            ttl: TTL,
            mname: self.localhost.clone(),
            rname: self.hostmaster.clone(),
            serial: 1,
            timers: [0, 0, 0],
            minimum: TTL,
        }
        .record()
    }

    /// `localhost.` and names below it (or with its prefix): the loopback addresses.
    fn loopback(&self, name: &Name, qtype: RecordType) -> Reply {
        let mut reply = Reply::new(ResponseCode::NoError, "local");
        let data = match qtype {
            RecordType::A => RData::A(A(Ipv4Addr::LOCALHOST)),
            RecordType::AAAA => RData::AAAA(AAAA(Ipv6Addr::LOCALHOST)),
            _ => {
                reply.authority.push(records(vec![self.soa(name)]));
                return reply;
            }
        };
        reply
            .answers
            .push(records(vec![Record::from_rdata(name.clone(), TTL, data)]));
        reply
    }

    fn answer(&self, name: &Name, qtype: RecordType) -> Option<Reply> {
        let labels = name.num_labels() as usize + 1;
        let first = name.iter().next().unwrap_or_default();
        let below_localhost = labels > 2 && self.localhost.zone_of(name);
        if below_localhost || self.prefixed(first, labels) {
            self.counted.inc();
            return Some(self.loopback(name, qtype));
        }
        let zone = self.zones.iter().find(|(z, _)| z.zone_of(name))?.0.clone();
        let mut reply = Reply::new(ResponseCode::NoError, "local");
        if *name == zone {
            match qtype {
                RecordType::A | RecordType::AAAA if zone == self.localhost => {
                    return Some(self.loopback(name, qtype));
                }
                RecordType::SOA => reply.answers.push(records(vec![self.soa(name)])),
                RecordType::NS => {
                    let ns = RData::NS(NS(self.localhost.clone()));
                    reply
                        .answers
                        .push(records(vec![Record::from_rdata(name.clone(), TTL, ns)]));
                }
                _ => reply.authority.push(records(vec![self.soa(name)])),
            }
            return Some(reply);
        }
        if *name == self.loopback_ptr {
            if qtype == RecordType::PTR {
                let ptr = RData::PTR(PTR(self.localhost.clone()));
                reply
                    .answers
                    .push(records(vec![Record::from_rdata(name.clone(), TTL, ptr)]));
            } else {
                reply.authority.push(records(vec![self.soa(&zone)]));
            }
            return Some(reply);
        }
        reply.rcode = ResponseCode::NXDomain;
        reply.authority.push(records(vec![self.soa(&zone)]));
        Some(reply)
    }
}

impl Handler for Local {
    fn name(&self) -> &'static str {
        "local"
    }

    fn serve<'a>(&'a self, req: &'a Request<'a>, next: Next<'a>) -> HandlerFuture<'a> {
        let name = Name::from(req.query.name());
        match self.answer(&name, req.query.query_type()) {
            Some(reply) => Box::pin(std::future::ready(Ok(reply))),
            None => next.serve(req),
        }
    }

    /// Every name outside its zones, and without the `localhost` prefix, goes on as it is.
    fn passes_fast(&self, q: FastQuery<'_>) -> bool {
        let n = q.name;
        !self.zones.iter().any(|(_, k)| n.is_in(k.as_bytes()))
            && !self.prefixed(n.label(0), n.label_count())
    }
}

/// Puts `local` into the block being set up.
pub fn setup(cfg: &config::LocalConfig, s: &mut Setup<'_>) -> Result<(), PluginError> {
    let counted = s
        .metrics
        .plugin_counter(
            "coredns_local_localhost_requests_total",
            "Counter of localhost.<domain> requests.",
            &[],
        )
        .with_label_values::<&str>(&[]);
    s.handler(Local::new(cfg, counted));
    Ok(())
}
