//! `kubernetes`: answers the cluster's names from the prebuilt [`Index`].
//!
//! Per query: find the zone, one hash lookup, clone the record sets. The only names built per
//! query are `A-B-C-D.NS.pod.ZONE` under `pods insecure`, which spell their own answer.

use std::sync::Arc;

use hickory_proto::op::ResponseCode;
use hickory_proto::rr::rdata::{A, AAAA};
use hickory_proto::rr::{DNSClass, LowerName, Name, RData, Record, RecordType};

use crate::chain::{Handler, HandlerFuture, MAX_DEPTH, Next, RecordSet, Reply, Request};
use crate::cluster::index::{Index, Node, RRset, Zone};
use crate::cluster::watch::SourceStatus;
use crate::config::kubernetes::{Fallthrough, PodMode};
use crate::names;

pub struct Kubernetes {
    index: Arc<Index>,
    fallthrough: Fallthrough,
    pods: PodMode,
    /// Until the source has listed everything (or `startup_timeout` passed), names in our zones
    /// answer SERVFAIL: an NXDOMAIN now would be cached by clients as the truth.
    status: Arc<SourceStatus>,
}

/// What the index says about a name, before fallthrough and following aliases out of our zones.
pub enum Outcome {
    /// Not in our zones.
    NotMine,
    /// NXDOMAIN (with the zone's SOA).
    NxDomain(Reply),
    /// An answer, NODATA, or an alias followed inside our zones.
    Answer(Reply),
    /// An alias to a name outside our zones: the reply so far and the name to follow.
    Chase(Reply, Name),
}

const NAME: &str = "kubernetes";

impl Kubernetes {
    pub fn new(
        index: Arc<Index>,
        fallthrough: Fallthrough,
        pods: PodMode,
        status: Arc<SourceStatus>,
    ) -> Self {
        Self {
            index,
            fallthrough,
            pods,
            status,
        }
    }

    pub fn index(&self) -> &Arc<Index> {
        &self.index
    }

    /// Answers `name`/`qtype` from the index alone.
    pub fn lookup(&self, name: &LowerName, qtype: RecordType, depth: u8) -> Outcome {
        let Some(zone) = self.index.zone_of(name) else {
            return Outcome::NotMine;
        };
        let node = self.index.get(name).or_else(|| self.pod_name(name, zone));
        let Some(node) = node else {
            return Outcome::NxDomain(negative(zone, ResponseCode::NXDomain));
        };
        if *name == zone.name {
            match qtype {
                RecordType::SOA => return Outcome::Answer(positive(zone.soa(), None)),
                RecordType::NS => {
                    let glue = self.index.get(&zone.ns_name).map(|n| {
                        n.rrsets
                            .iter()
                            .filter(|s| matches!(s.rtype, RecordType::A | RecordType::AAAA))
                            .map(|s| s.records.clone())
                            .collect::<Vec<_>>()
                    });
                    let mut reply = positive(zone.ns.clone(), None);
                    reply.additionals = glue.unwrap_or_default();
                    return Outcome::Answer(reply);
                }
                _ => {}
            }
        }
        if let Some(set) = node.get(qtype) {
            return Outcome::Answer(answer(set));
        }
        // ANY is answered minimally (RFC 8482 section 4.1): one of the name's RRsets, not all.
        if qtype == RecordType::ANY
            && let Some(set) = node.rrsets.first()
        {
            return Outcome::Answer(answer(set));
        }
        if let (Some(target), Some(cname)) = (&node.cname, node.get(RecordType::CNAME)) {
            return self.follow(answer(cname), target, qtype, depth);
        }
        Outcome::Answer(negative(zone, ResponseCode::NoError))
    }

    /// Appends what `target` answers to `reply` (which holds the CNAME).
    fn follow(&self, mut reply: Reply, target: &Name, qtype: RecordType, depth: u8) -> Outcome {
        if depth >= MAX_DEPTH {
            return Outcome::Answer(reply);
        }
        let lower = LowerName::new(target);
        if self.index.zone_of(&lower).is_none() {
            return Outcome::Chase(reply, target.clone());
        }
        let (rest, chase) = match self.lookup(&lower, qtype, depth + 1) {
            Outcome::Answer(r) | Outcome::NxDomain(r) => (r, None),
            Outcome::Chase(r, next) => (r, Some(next)),
            Outcome::NotMine => return Outcome::Answer(reply),
        };
        reply.rcode = rest.rcode;
        reply.answers.extend(rest.answers);
        reply.authority = rest.authority;
        reply.additionals.extend(rest.additionals);
        match chase {
            Some(next) => Outcome::Chase(reply, next),
            None => Outcome::Answer(reply),
        }
    }

    /// `A-B-C-D.NS.pod.ZONE` under `pods insecure`: any IP spelled with dashes, in a namespace
    /// that exists.
    fn pod_name(&self, name: &LowerName, zone: &Zone) -> Option<Arc<Node>> {
        if self.pods != PodMode::Insecure
            || zone.reverse
            || name.num_labels() != zone.name.num_labels() + 3
        {
            return None;
        }
        let full: Name = name.into();
        let mut labels = full.iter();
        let host = std::str::from_utf8(labels.next()?).ok()?;
        labels.next()?;
        if labels.next()? != b"pod" {
            return None;
        }
        let ns_pod = LowerName::new(&full.base_name());
        self.index.get(&ns_pod)?;
        let ip = names::undash(host)?;
        let (rtype, rdata) = match ip {
            std::net::IpAddr::V4(v4) => (RecordType::A, RData::A(A(v4))),
            std::net::IpAddr::V6(v6) => (RecordType::AAAA, RData::AAAA(AAAA(v6))),
        };
        let record = Record::from_rdata(full, self.index.ttl(), rdata);
        Some(Arc::new(Node {
            rrsets: vec![RRset {
                rtype,
                records: Arc::from(vec![record]),
                additionals: None,
            }],
            cname: None,
        }))
    }
}

fn positive(records: RecordSet, additionals: Option<RecordSet>) -> Reply {
    let mut reply = Reply::new(ResponseCode::NoError, NAME);
    reply.authoritative = true;
    reply.answers.push(records);
    reply.additionals.extend(additionals);
    reply
}

fn answer(set: &RRset) -> Reply {
    positive(set.records.clone(), set.additionals.clone())
}

fn negative(zone: &Zone, rcode: ResponseCode) -> Reply {
    let mut reply = Reply::new(rcode, NAME);
    reply.authoritative = true;
    reply.authority.push(zone.soa());
    reply
}

impl Handler for Kubernetes {
    fn name(&self) -> &'static str {
        NAME
    }

    fn serve<'a>(&'a self, req: &'a Request<'a>, next: Next<'a>) -> HandlerFuture<'a> {
        if req.query.query_class() != DNSClass::IN {
            return next.serve(req);
        }
        let qtype = req.query.query_type();
        if !self.status.ready() && self.index.zone_of(req.query.name()).is_some() {
            return Box::pin(std::future::ready(Ok(Reply::new(
                ResponseCode::ServFail,
                NAME,
            ))));
        }
        match self.lookup(req.query.name(), qtype, req.depth) {
            Outcome::NotMine => next.serve(req),
            Outcome::NxDomain(reply) => {
                if self.fallthrough.covers(&req.query.name().into()) {
                    next.serve(req)
                } else {
                    Box::pin(std::future::ready(Ok(reply)))
                }
            }
            Outcome::Answer(reply) => Box::pin(std::future::ready(Ok(reply))),
            Outcome::Chase(mut reply, target) => Box::pin(async move {
                // As CoreDNS does: the alias, plus whatever the target answers through the
                // server's own chain (the forwarder, once there is one).
                if let Some(up) = req.upstream.lookup(target, qtype, req.depth + 1).await
                    && up.rcode == ResponseCode::NoError
                {
                    reply.answers.extend(up.answers);
                }
                Ok(reply)
            }),
        }
    }
}
