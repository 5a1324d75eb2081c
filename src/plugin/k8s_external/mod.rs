//! `k8s_external`: the external addresses of Services under a zone of their own, as CoreDNS's
//! plugin of that name answers them.
//!
//! For `SVC.NS.ZONE` (also `_PORT._PROTO.SVC.NS.ZONE`, and `X.SVC.NS.ZONE`, which CoreDNS reads
//! as an endpoint name and, for a Service with external addresses, answers like the Service):
//! - A/AAAA: `spec.externalIPs` and the load balancer's ingress IPs; a load balancer known by
//!   hostname is a CNAME, followed through the server;
//! - SRV: one record per port, its target `SVC.NS.ZONE` (or the LB hostname) with the addresses
//!   in the additional section;
//! - PTR, where the zones include a reverse zone: the Services an external IP belongs to.
//!
//! With `headless`, a headless Service without external addresses (and any endpoint name)
//! answers what the `kubernetes` zone answers for it, renamed into this zone. The zone's apex
//! has its own SOA and NS (`ns1.APEX.ZONE`, whose addresses are the `kube-dns` Service's
//! external ones). Everything is read from what the index keeps when the cluster changes; the
//! records are put together per query, as only a few Services have external addresses.

pub mod config;

use std::net::IpAddr;
use std::sync::Arc;

use hickory_proto::op::ResponseCode;
use hickory_proto::rr::rdata::{A, AAAA, CNAME, NS, PTR, SRV};
use hickory_proto::rr::{DNSClass, LowerName, Name, RData, Record, RecordType};

use crate::cluster::index::{Exposed, Index};
use crate::cluster::records::srv_weight;
use crate::cluster::slim::{External, SlimPort};
use crate::cluster::source::ClusterSource;
use crate::cluster::source::SourceStatus;
use crate::dns::name;
use crate::dns::soa::{self, Soa};
use crate::dns::wire::This;
use crate::plugin::PluginError;
use crate::plugin::Take;
use crate::plugin::k8s_external::config::{K8sExternalConfig, apex_name};
use crate::plugin::setup::Setup;
use crate::plugin::shared::fallthrough::Fallthrough;
use crate::plugin::{Handler, HandlerFuture, Next, Reply, Request, Rrs};

const NAME: &str = "k8s_external";

/// One of the plugin's zones, with the names its apex records use.
struct ExtZone {
    name: LowerName,
    /// The name in lower-case wire form (the fast path's test).
    key: Box<[u8]>,
    /// `APEX.ZONE`: the subdomain the zone's own name server lives in.
    apex: LowerName,
    /// `ns1.APEX.ZONE`.
    ns1: Name,
    /// `hostmaster.APEX.ZONE`.
    mbox: Name,
}

pub struct K8sExternal {
    zones: Vec<ExtZone>,
    ttl: u32,
    headless: bool,
    fallthrough: Fallthrough,
    index: Arc<Index>,
    status: Arc<SourceStatus>,
}

/// How a name resolved, before it is written as a reply.
enum Found {
    Answer(Reply),
    /// No such name: NXDOMAIN, unless `fallthrough` covers it.
    NxDomain,
    NoData,
}

impl K8sExternal {
    pub fn new(cfg: &K8sExternalConfig, index: Arc<Index>, status: Arc<SourceStatus>) -> Self {
        let zones = cfg
            .zones
            .iter()
            .map(|z| {
                // The parser checked that the apex joins every zone.
                let apex = apex_name(&cfg.apex, z).unwrap_or_else(|| z.clone());
                ExtZone {
                    name: LowerName::new(z),
                    key: crate::dns::wire::NameKey::new(z).as_bytes().into(),
                    ns1: name::child(&apex, "ns1").unwrap_or_else(|| apex.clone()),
                    mbox: name::child(&apex, "hostmaster").unwrap_or_else(|| apex.clone()),
                    apex: LowerName::new(&apex),
                }
            })
            .collect();
        Self {
            zones,
            ttl: cfg.ttl,
            headless: cfg.headless,
            fallthrough: cfg.fallthrough.clone(),
            index,
            status,
        }
    }

    fn zone_of(&self, name: &LowerName) -> Option<&ExtZone> {
        self.zones
            .iter()
            .filter(|z| z.name.zone_of(name))
            .max_by_key(|z| z.name.num_labels())
    }

    fn soa(&self, zone: &ExtZone) -> Rrs {
        let soa = Soa {
            owner: Name::from(&zone.name),
            ttl: self.ttl,
            mname: zone.ns1.clone(),
            rname: zone.mbox.clone(),
            serial: self.index.serial(),
            timers: soa::TIMERS,
            minimum: self.ttl,
        };
        Rrs::Records(Arc::from(vec![soa.record()]))
    }

    fn negative(&self, zone: &ExtZone, rcode: ResponseCode) -> Reply {
        Reply::negative(NAME, rcode, self.soa(zone))
    }

    fn records(&self, records: Vec<Record>) -> Rrs {
        Rrs::Records(Arc::from(records))
    }

    /// The name server's addresses: the `kube-dns` Service's external IPs.
    fn ns_addresses(&self, owner: &Name, qtype: Option<RecordType>) -> Vec<Record> {
        let Some(dns) = self.index.exposed("kube-system", "kube-dns") else {
            return Vec::new();
        };
        let mut out: Vec<Record> = Vec::new();
        for e in &dns.external {
            if let External::Ip(ip) = e {
                let rr = self.address(owner, *ip);
                if qtype.is_none_or(|t| t == rr.record_type()) && !out.contains(&rr) {
                    out.push(rr);
                }
            }
        }
        out
    }

    fn address(&self, owner: &Name, ip: IpAddr) -> Record {
        let data = match ip {
            IpAddr::V4(v4) => RData::A(A(v4)),
            IpAddr::V6(v6) => RData::AAAA(AAAA(v6)),
        };
        Record::from_rdata(owner.clone(), self.ttl, data)
    }

    /// The zone's apex: SOA, and NS with its addresses.
    fn apex(&self, zone: &ExtZone, qtype: RecordType) -> Reply {
        let owner = Name::from(&zone.name);
        match qtype {
            RecordType::SOA => {
                let mut reply = Reply::authoritative(ResponseCode::NoError, NAME);
                reply.answers.push(self.soa(zone));
                reply
            }
            RecordType::NS => {
                let mut reply = Reply::authoritative(ResponseCode::NoError, NAME);
                let ns = Record::from_rdata(owner, self.ttl, RData::NS(NS(zone.ns1.clone())));
                reply.answers.push(self.records(vec![ns]));
                let glue = self.ns_addresses(&zone.ns1, None);
                if !glue.is_empty() {
                    reply.additionals.push(self.records(glue));
                }
                reply
            }
            _ => self.negative(zone, ResponseCode::NoError),
        }
    }

    /// `APEX.ZONE` (an empty non-terminal), `ns1.APEX.ZONE`, and nothing else below it.
    fn sub_apex(&self, zone: &ExtZone, name: &LowerName, qtype: RecordType) -> Reply {
        match name.num_labels() - zone.apex.num_labels() {
            0 => self.negative(zone, ResponseCode::NoError),
            1 if *name == LowerName::new(&zone.ns1) => {
                let owner = Name::from(name);
                let answers = match qtype {
                    RecordType::A | RecordType::AAAA => self.ns_addresses(&owner, Some(qtype)),
                    _ => Vec::new(),
                };
                if answers.is_empty() {
                    return self.negative(zone, ResponseCode::NoError);
                }
                let mut reply = Reply::authoritative(ResponseCode::NoError, NAME);
                reply.answers.push(self.records(answers));
                reply
            }
            _ => self.negative(zone, ResponseCode::NXDomain),
        }
    }

    /// PTR for an external IP: `SVC.NS.` under the first zone, for each Service that has it.
    fn reverse(&self, ip: IpAddr, question: &Name) -> Found {
        let Some(first) = self.zones.first() else {
            return Found::NxDomain;
        };
        let first = Name::from(&first.name);
        let mut records = Vec::new();
        for key in self.index.external_owners(ip) {
            if !self.index.namespace_exists(&key.namespace) {
                continue;
            }
            if let Some(target) = name::join(&[&key.name, &key.namespace], &first) {
                let rr = Record::from_rdata(question.clone(), self.ttl, RData::PTR(PTR(target)));
                if !records.contains(&rr) {
                    records.push(rr);
                }
            }
        }
        if records.is_empty() {
            return Found::NxDomain;
        }
        let mut reply = Reply::authoritative(ResponseCode::NoError, NAME);
        reply.answers.push(self.records(records));
        Found::Answer(reply)
    }

    /// What `name` (under `zone`, below its apex) answers, but for the upstream lookups that
    /// load balancers known by hostname need: those are returned to be made.
    fn lookup(
        &self,
        zone: &ExtZone,
        name: &LowerName,
        question: &Name,
        qtype: RecordType,
    ) -> (Found, Vec<Chase>) {
        let full = Name::from(name);
        let depth = name.num_labels() - zone.name.num_labels();
        let labels: Vec<&str> = full
            .iter()
            .take(usize::from(depth))
            .map(|l| std::str::from_utf8(l).unwrap_or("\u{0}"))
            .collect();
        let Some((&namespace, rest)) = labels.split_last() else {
            return (Found::NoData, Vec::new());
        };
        if !self.index.namespace_exists(namespace) {
            return (Found::NxDomain, Vec::new());
        }
        let Some((&service, rest)) = rest.split_last() else {
            // The namespace itself: it exists, with no records.
            return (Found::NoData, Vec::new());
        };
        // `X.SVC.NS.ZONE` names an endpoint; `_PORT._PROTO.SVC.NS.ZONE` a port (CoreDNS takes
        // the underscores off, and does not insist on them).
        let (endpoint, port) = match rest {
            [] => (None, None),
            [endpoint] => (Some(strip(endpoint)), None),
            [port, proto] => (None, Some((strip(port), strip(proto)))),
            _ => return (Found::NxDomain, Vec::new()),
        };
        let exposed = self.index.exposed(namespace, service);
        let has_external = exposed.as_ref().is_some_and(|e| !e.external.is_empty());
        let is_headless = exposed.as_ref().is_some_and(|e| e.headless);
        if self.headless && !has_external && (is_headless || endpoint.is_some()) {
            return (
                self.cluster_answer(zone, &labels, question, qtype),
                Vec::new(),
            );
        }
        let Some(exposed) = exposed.filter(|_| has_external) else {
            return (Found::NxDomain, Vec::new());
        };
        let entries = entries(&exposed, port);
        if entries.is_empty() {
            return (Found::NxDomain, Vec::new());
        }
        let own = name::join(&[service, namespace], &Name::from(&zone.name));
        let Built {
            answers,
            extra,
            chases,
        } = match (qtype, own) {
            (RecordType::A | RecordType::AAAA, _) => self.addresses(&entries, question, qtype),
            (RecordType::SRV, Some(own)) => self.srv(&entries, question, &own),
            _ => Built::default(),
        };
        // Records of another type than the Service has (or than this plugin serves): NODATA.
        if answers.is_empty() {
            return (Found::NoData, Vec::new());
        }
        let mut reply = Reply::authoritative(ResponseCode::NoError, NAME);
        reply.answers.push(self.records(answers));
        if !extra.is_empty() {
            reply.additionals.push(self.records(extra));
        }
        (Found::Answer(reply), chases)
    }

    /// A/AAAA: the addresses of that family, and a CNAME per load balancer hostname.
    fn addresses(&self, entries: &[Entry], question: &Name, qtype: RecordType) -> Built {
        let mut records: Vec<Record> = Vec::new();
        let mut chases = Vec::new();
        for e in entries {
            match e.external {
                External::Ip(ip) => {
                    let rr = self.address(question, *ip);
                    if rr.record_type() == qtype && !records.contains(&rr) {
                        records.push(rr);
                    }
                }
                External::Host(host) => {
                    let rr = Record::from_rdata(
                        question.clone(),
                        self.ttl,
                        RData::CNAME(CNAME(host.clone())),
                    );
                    if !records.contains(&rr) {
                        records.push(rr);
                        chases.push(Chase {
                            name: host.clone(),
                            qtype,
                            into_answers: true,
                        });
                    }
                }
            }
        }
        Built {
            answers: records,
            extra: Vec::new(),
            chases,
        }
    }

    /// SRV: one record per port (an entry without a port has none), weighted as CoreDNS does.
    fn srv(&self, entries: &[Entry], question: &Name, own: &Name) -> Built {
        let weight = srv_weight(entries.len());
        let mut records: Vec<Record> = Vec::new();
        let mut extra: Vec<Record> = Vec::new();
        let mut chases: Vec<Chase> = Vec::new();
        for e in entries {
            let Some(port) = e.port else { continue };
            let target = match e.external {
                External::Ip(_) => own,
                External::Host(host) => host,
            };
            let srv = SRV::new(0, weight, port, target.clone());
            let rr = Record::from_rdata(question.clone(), self.ttl, RData::SRV(srv));
            if !records.contains(&rr) {
                records.push(rr);
            }
            match e.external {
                External::Ip(ip) => {
                    let glue = self.address(own, *ip);
                    if !extra.contains(&glue) {
                        extra.push(glue);
                    }
                }
                External::Host(host) => {
                    if !chases.iter().any(|c| c.name == *host) {
                        for qtype in [RecordType::A, RecordType::AAAA] {
                            chases.push(Chase {
                                name: host.clone(),
                                qtype,
                                into_answers: false,
                            });
                        }
                    }
                }
            }
        }
        Built {
            answers: records,
            extra,
            chases,
        }
    }

    /// With `headless`: what the `kubernetes` zone answers for the same name, renamed here.
    fn cluster_answer(
        &self,
        zone: &ExtZone,
        labels: &[&str],
        question: &Name,
        qtype: RecordType,
    ) -> Found {
        let Some(cluster) = self.index.zones().iter().find(|z| !z.reverse) else {
            return Found::NxDomain;
        };
        let cluster_zone = Name::from(&cluster.name);
        let Some(svc_zone) = name::child(&cluster_zone, "svc") else {
            return Found::NxDomain;
        };
        let Some(inner) = name::join(labels, &svc_zone) else {
            return Found::NxDomain;
        };
        let Some(node) = self.index.get(&LowerName::new(&inner)) else {
            return Found::NxDomain;
        };
        let kinds = [RecordType::A, RecordType::AAAA, RecordType::SRV];
        if !kinds.iter().any(|t| node.has(*t)) {
            return Found::NxDomain;
        }
        if !kinds.contains(&qtype) {
            return Found::NoData;
        }
        let Some(set) = node.get(qtype, &This::Question) else {
            return Found::NoData;
        };
        let ours = Name::from(&zone.name);
        let rename = |n: &Name| -> Name {
            if svc_zone.zone_of(n) && n.num_labels() > svc_zone.num_labels() {
                let keep = usize::from(n.num_labels() - svc_zone.num_labels());
                let labels: Vec<&[u8]> = n.iter().take(keep).collect();
                Name::from_labels(labels)
                    .ok()
                    .and_then(|rel| rel.append_domain(&ours).ok())
                    .unwrap_or_else(|| n.clone())
            } else {
                n.clone()
            }
        };
        let fix = |mut rr: Record| -> Record {
            rr.ttl = self.ttl;
            rr.name = rename(&rr.name);
            if let RData::SRV(srv) = &rr.data {
                rr.data = RData::SRV(SRV::new(
                    srv.priority,
                    srv.weight,
                    srv.port,
                    rename(&srv.target),
                ));
            }
            rr
        };
        let answers: Vec<Record> = Rrs::from(set.records)
            .records(question)
            .into_iter()
            .map(fix)
            .collect();
        let mut reply = Reply::authoritative(ResponseCode::NoError, NAME);
        reply.answers.push(self.records(answers));
        if let Some(extra) = set.additionals {
            let extra: Vec<Record> = Rrs::from(extra)
                .records(question)
                .into_iter()
                .map(fix)
                .collect();
            reply.additionals.push(self.records(extra));
        }
        Found::Answer(reply)
    }
}

/// Records for the answer and additional sections, and the lookups still to make.
#[derive(Default)]
struct Built {
    answers: Vec<Record>,
    extra: Vec<Record>,
    chases: Vec<Chase>,
}

/// A load balancer hostname to resolve through the server.
struct Chase {
    name: Name,
    qtype: RecordType,
    /// After the CNAME in the answer (A/AAAA), or in the additional section (SRV targets).
    into_answers: bool,
}

fn strip(label: &str) -> &str {
    label.strip_prefix('_').unwrap_or(label)
}

/// One external address with one port of the Service (`None`: it has no ports, which still
/// gives addresses but no SRV record, CoreDNS's "port -1").
struct Entry<'a> {
    external: &'a External,
    port: Option<u16>,
}

/// The Service's external addresses, each with every port matching `_PORT._PROTO` (an absent
/// one matches all), as CoreDNS lists them.
fn entries<'e>(exposed: &'e Exposed, wanted: Option<(&str, &str)>) -> Vec<Entry<'e>> {
    let matches = |p: &SlimPort| match wanted {
        None => true,
        Some((port, proto)) => {
            (port.is_empty() || p.name.eq_ignore_ascii_case(port))
                && (proto.is_empty() || p.protocol.eq_ignore_ascii_case(proto))
        }
    };
    let mut out = Vec::new();
    for external in &exposed.external {
        if exposed.ports.is_empty() {
            // CoreDNS's placeholder port has no name or protocol: only a bare name matches it.
            if wanted.is_none_or(|(port, proto)| port.is_empty() && proto.is_empty()) {
                out.push(Entry {
                    external,
                    port: None,
                });
            }
            continue;
        }
        for p in exposed.ports.iter().filter(|p| matches(p)) {
            out.push(Entry {
                external,
                port: Some(p.port),
            });
        }
    }
    out
}

impl Handler for K8sExternal {
    fn name(&self) -> &'static str {
        NAME
    }

    /// A name outside its zones goes on as it is (to `kubernetes`, say).
    fn passes_fast(&self, q: crate::plugin::FastQuery<'_>) -> bool {
        !self.zones.iter().any(|z| q.name.is_in(&z.key))
    }

    /// One of its zones whole: the SOA, the NS and its addresses, then each Service with
    /// external addresses: A and AAAA at `SVC.NS.ZONE` (a CNAME where the load balancer is
    /// known by host name) and an SRV record per named port at `_PORT._PROTO.SVC.NS.ZONE`.
    fn serials(&self) -> Vec<(Name, u32)> {
        if !self.status.ready() {
            return Vec::new();
        }
        let serial = self.index.serial();
        self.zones
            .iter()
            .map(|z| (Name::from(&z.name), serial))
            .collect()
    }

    fn transfer(&self, zone: &Name) -> Option<Vec<Record>> {
        if !self.status.ready() {
            return None;
        }
        let lower = LowerName::from(zone);
        let z = self.zones.iter().find(|z| z.name == lower)?;
        let Rrs::Records(soa) = self.soa(z) else {
            return None;
        };
        let mut out: Vec<Record> = soa.to_vec();
        out.push(Record::from_rdata(
            zone.clone(),
            self.ttl,
            RData::NS(NS(z.ns1.clone())),
        ));
        out.extend(self.ns_addresses(&z.ns1, None));
        let mut services = self.index.exposed_all();
        services.sort_by(|a, b| a.0.cmp(&b.0));
        for (key, exposed) in services {
            if exposed.external.is_empty() {
                continue;
            }
            let Some((service, namespace)) = key.split_once('.') else {
                continue;
            };
            let Some(own) = name::join(&[service, namespace], zone) else {
                continue;
            };
            let all = entries(&exposed, None);
            for qtype in [RecordType::A, RecordType::AAAA] {
                out.extend(self.addresses(&all, &own, qtype).answers);
            }
            for p in exposed.ports.iter().filter(|p| !p.name.is_empty()) {
                let port = format!("_{}", p.name);
                let proto = format!("_{}", p.protocol.to_ascii_lowercase());
                let Some(question) = name::join(&[&port, &proto], &own) else {
                    continue;
                };
                let wanted = entries(&exposed, Some((&p.name, &p.protocol)));
                out.extend(self.srv(&wanted, &question, &own).answers);
            }
        }
        // A CNAME (a load balancer's host name) appears once per address family asked.
        let mut seen = std::collections::HashSet::new();
        out.retain(|r| seen.insert(r.to_string()));
        Some(out)
    }

    fn serve<'a>(&'a self, req: &'a Request<'a>, next: Next<'a>) -> HandlerFuture<'a> {
        if req.query.query_class() != DNSClass::IN {
            return next.serve(req);
        }
        let name = req.query.name();
        let Some(zone) = self.zone_of(name) else {
            return next.serve(req);
        };
        let ready = |r: Reply| -> HandlerFuture<'a> { Box::pin(std::future::ready(Ok(r))) };
        // Until the cluster is listed, "no such Service" may be false: SERVFAIL, as the
        // `kubernetes` plugin answers its own zones then.
        if !self.status.ready() {
            return ready(Reply::new(ResponseCode::ServFail, NAME));
        }
        let qtype = req.query.query_type();
        if *name == zone.name {
            return ready(self.apex(zone, qtype));
        }
        if zone.apex.zone_of(name) {
            return ready(self.sub_apex(zone, name, qtype));
        }
        let question = Name::from(name);
        let reverse_ip = (qtype == RecordType::PTR)
            .then(|| name::reverse_ip(&question))
            .flatten();
        let (found, chases) = match reverse_ip {
            Some(ip) => (self.reverse(ip, &question), Vec::new()),
            None => {
                let (found, chases) = self.lookup(zone, name, &question, qtype);
                // A forward name has no PTR records: NODATA, or NXDOMAIN where it does not exist.
                match (qtype, found) {
                    (RecordType::PTR, Found::Answer(_)) => (Found::NoData, Vec::new()),
                    (_, found) => (found, chases),
                }
            }
        };
        let mut reply = match found {
            Found::Answer(reply) => reply,
            Found::NoData => self.negative(zone, ResponseCode::NoError),
            Found::NxDomain => {
                if self.fallthrough.covers(&question) {
                    return next.serve(req);
                }
                self.negative(zone, ResponseCode::NXDomain)
            }
        };
        if chases.is_empty() {
            return ready(reply);
        }
        Box::pin(async move {
            for c in chases {
                let Some(up) = req.follow(c.name, c.qtype, Take::NoError).await else {
                    continue;
                };
                reply.truncated |= up.truncated;
                if c.into_answers {
                    reply.answers.extend(up.answers);
                } else {
                    reply.additionals.extend(up.answers);
                }
            }
            Ok(reply)
        })
    }
}

/// Puts `k8s_external` into the block being set up.
pub fn setup(cfg: &config::K8sExternalConfig, s: &mut Setup<'_>) -> Result<(), PluginError> {
    let Some(k) = s.shared::<Arc<ClusterSource>>() else {
        return Err(PluginError::new(
            NAME,
            "needs a kubernetes plugin in the same block",
        ));
    };
    s.handler(K8sExternal::new(cfg, k.index.clone(), k.status.clone()));
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn exposed(ports: &[(&str, &str, u16)]) -> Exposed {
        Exposed {
            headless: false,
            external: vec![
                External::Ip("192.0.2.1".parse().unwrap()),
                External::Host(name::fqdn("lb.example.com").unwrap()),
            ],
            ports: ports
                .iter()
                .map(|(n, p, port)| SlimPort {
                    name: (*n).into(),
                    protocol: p.to_string().into(),
                    port: *port,
                })
                .collect(),
        }
    }

    #[test]
    fn entries_match_port_and_protocol_like_coredns() {
        let e = exposed(&[("http", "tcp", 80), ("dns", "udp", 53)]);
        assert_eq!(entries(&e, None).len(), 4);
        let http = entries(&e, Some(("http", "tcp")));
        assert_eq!(http.len(), 2);
        assert!(http.iter().all(|x| x.port == Some(80)));
        assert_eq!(entries(&e, Some(("HTTP", "TCP"))).len(), 2);
        assert_eq!(entries(&e, Some(("http", "udp"))).len(), 0);
        // A port with no ports at all: addresses, no SRV, and no match for a named port.
        let bare = exposed(&[]);
        assert_eq!(entries(&bare, None).len(), 2);
        assert!(entries(&bare, None).iter().all(|x| x.port.is_none()));
        assert!(entries(&bare, Some(("http", "tcp"))).is_empty());
    }
}
