//! `kubernetes`: answers the cluster's names from the prebuilt [`Index`].
//!
//! Per query: find the zone, one hash lookup, clone the record sets. The only names built per
//! query are `A-B-C-D.NS.pod.ZONE` under `pods insecure`, which spell their own answer.

pub mod config;

use std::sync::Arc;

use hickory_proto::op::ResponseCode;
use hickory_proto::rr::{DNSClass, LowerName, Name, Record, RecordType};

use crate::cluster::index::{Answer, Index, Node, Zone};
use crate::cluster::records::ZonalName;
use crate::cluster::source::{ClusterSource, SourceStatus};
use crate::dns::name::{self, WireName};
use crate::dns::wire::{NameKey, This};
use crate::plugin::PluginError;
use crate::plugin::Take;
use crate::plugin::kubernetes::config::PodMode;
use crate::plugin::setup::Setup;
use crate::plugin::shared::fallthrough::Fallthrough;
use crate::plugin::{
    FastAnswer, FastQuery, Handler, HandlerFuture, MAX_DEPTH, Meta, Next, Reply, Request, Rrs,
};

pub struct Kubernetes {
    index: Arc<Index>,
    fallthrough: Fallthrough,
    /// The `fallthrough` zones in lower-case wire form, for the fast path.
    fallthrough_keys: Vec<Box<[u8]>>,
    pods: PodMode,
    /// `zonal`: headless Services answer `ZONE.pin._zone.…` and `ZONE.prefer._zone.…`.
    zonal: bool,
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
        zonal: bool,
    ) -> Self {
        let fallthrough_keys = match &fallthrough {
            Fallthrough::Zones(zones) => zones
                .iter()
                .map(|z| NameKey::new(z).as_bytes().into())
                .collect(),
            Fallthrough::Never | Fallthrough::All => Vec::new(),
        };
        Self {
            index,
            fallthrough,
            fallthrough_keys,
            pods,
            zonal,
            status,
        }
    }

    pub fn index(&self) -> &Arc<Index> {
        &self.index
    }

    /// The common answers, straight from a lower-case wire name (`labels`: where its labels
    /// start, the root's zero included): a record set, NODATA or NXDOMAIN. `None` for anything
    /// else (not ready, not our zone, the apex, aliases, pod names by IP, fallthrough): the
    /// general path answers those, and for the rest both paths answer alike (the DNS case
    /// battery checks it byte for byte).
    pub fn fast(&self, name: WireName<'_>, qtype: RecordType) -> Option<FastAnswer> {
        if !self.status.ready() {
            return None;
        }
        let zone = self.index.zone_of_key(name)?;
        if *name.key() == *zone.key {
            return None;
        }
        let Some(node) = self.index.get_key(name.key()) else {
            // `IP.NAMESPACE.pod.ZONE`, which `pod_name` answers: three labels, the third `pod`.
            let maybe_pod = self.pods == PodMode::Insecure
                && !zone.reverse
                && !zone.multicluster
                && name.label_count() == zone_labels(zone) + 3
                && name.label(2) == b"pod";
            // `ZONE.DIRECTIVE._zone.SVC.NS.svc.ZONE` for a zone no endpoint is in, which
            // `zonal_name` answers.
            let maybe_zonal = self.zonal
                && !zone.reverse
                && !zone.multicluster
                && name.label_count() >= zone_labels(zone) + 6
                && name.label(name.label_count() - zone_labels(zone) - 4) == b"_zone";
            if maybe_pod || maybe_zonal || self.fallthrough_covers(name) {
                return None;
            }
            return Some(FastAnswer::Negative(
                ResponseCode::NXDomain,
                zone.soa_prepared(),
            ));
        };
        if let Some(Answer {
            records,
            additionals,
        }) = node.get(qtype, &This::Question)
        {
            return Some(FastAnswer::Answer {
                records,
                authority: None,
                additionals,
            });
        }
        if node.has(RecordType::CNAME) {
            return None;
        }
        Some(FastAnswer::Negative(
            ResponseCode::NoError,
            zone.soa_prepared(),
        ))
    }

    fn fallthrough_covers(&self, name: WireName<'_>) -> bool {
        match &self.fallthrough {
            Fallthrough::Never => false,
            Fallthrough::All => true,
            Fallthrough::Zones(_) => self.fallthrough_keys.iter().any(|z| name.is_in(z)),
        }
    }

    /// Answers `name`/`qtype` from the index alone. At depth 0 `name` is the question;
    /// deeper it is where an alias led.
    pub fn lookup(&self, name: &LowerName, qtype: RecordType, depth: u8) -> Outcome {
        let Some(zone) = self.index.zone_of(name) else {
            return Outcome::NotMine;
        };
        let node = self
            .index
            .get(name)
            .or_else(|| self.pod_name(name, zone))
            .or_else(|| self.zonal_name(name, zone));
        let Some(node) = node else {
            return Outcome::NxDomain(negative(zone, ResponseCode::NXDomain));
        };
        if *name == zone.name {
            match qtype {
                RecordType::SOA => return Outcome::Answer(Reply::answer(NAME, zone.soa())),
                RecordType::NS => {
                    let mut reply = Reply::answer(NAME, zone.ns.clone());
                    if let Some(ns) = self.index.get(&zone.ns_name) {
                        for rtype in [RecordType::A, RecordType::AAAA] {
                            if let Some(glue) = ns.get(rtype, &zone.ns_this) {
                                reply.additionals.push(glue.records.into());
                            }
                        }
                    }
                    return Outcome::Answer(reply);
                }
                _ => {}
            }
        }
        let this = if depth == 0 {
            This::Question
        } else {
            This::Name(NameKey::new(name).as_bytes().into())
        };
        if let Some(set) = node.get(qtype, &this) {
            return Outcome::Answer(answer(set));
        }
        // ANY is answered minimally (RFC 8482 section 4.1): one of the name's RRsets, not all.
        if qtype == RecordType::ANY
            && let Some(set) = node.first(&this)
        {
            return Outcome::Answer(answer(set));
        }
        if let (Some(target), Some(cname)) = (node.cname(), node.get(RecordType::CNAME, &this)) {
            return self.follow(answer(cname), &target, qtype, depth);
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
    fn pod_name(&self, name: &LowerName, zone: &Zone) -> Option<Node> {
        if self.pods != PodMode::Insecure
            || zone.reverse
            || zone.multicluster
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
        let ip = name::undash(host)?;
        Some(Node::address(
            NameKey::new(name).as_bytes(),
            ip,
            self.index.ttl(),
        ))
    }
}

impl Kubernetes {
    /// A zonal name of a headless Service for a zone none of its endpoints is in (those that
    /// are have names of their own): `pin` answers nothing, `prefer` every endpoint, both
    /// prebuilt under the zone `*` when the Service changed.
    fn zonal_name(&self, name: &LowerName, zone: &Zone) -> Option<Node> {
        if !self.zonal || zone.reverse || zone.multicluster {
            return None;
        }
        let read = ZonalName::read(&name.into(), &(&zone.name).into())?;
        self.index.get(&LowerName::new(&read.any_zone()?))
    }
}

/// Labels of a zone's name, the root's counted (as the fast path counts label starts).
fn zone_labels(zone: &Zone) -> usize {
    usize::from(zone.name.num_labels()) + 1
}

fn answer(set: Answer) -> Reply {
    let mut reply = Reply::answer(NAME, set.records);
    reply.additionals.extend(set.additionals.map(Rrs::from));
    reply
}

fn negative(zone: &Zone, rcode: ResponseCode) -> Reply {
    Reply::negative(NAME, rcode, zone.soa_prepared())
}

impl Handler for Kubernetes {
    fn name(&self) -> &'static str {
        NAME
    }

    fn answer_fast(&self, q: FastQuery<'_>) -> Option<FastAnswer> {
        self.fast(q.name, q.qtype)
    }

    /// A name outside its zones goes on as it is (to `file`, say, below it in the chain).
    fn passes_fast(&self, q: FastQuery<'_>) -> bool {
        self.index.zone_of_key(q.name).is_none()
    }

    /// What CoreDNS's plugin publishes: the client pod's namespace and name (with `pods
    /// verified`), and for a name in its zones the parts of the name (`kubernetes/kind`,
    /// `namespace`, `service`, `endpoint`, `port-name`, `protocol`), empty where the name has
    /// no such part or does not read as a Kubernetes name.
    fn metadata(&self, req: &Request, out: &mut Meta) {
        if let Some(pod) = self.index.pod_of(req.src.ip()) {
            out.push(("kubernetes/client-namespace", pod.namespace.to_string()));
            out.push(("kubernetes/client-pod-name", pod.name.to_string()));
        }
        let name = req.query.name();
        let Some(zone) = self.index.zone_of(name) else {
            return;
        };
        let parts = name_parts(
            &Name::from(name),
            &Name::from(&zone.name),
            zone.multicluster,
        )
        .unwrap_or_default();
        if self.zonal {
            let zonal = (!zone.reverse && !zone.multicluster)
                .then(|| ZonalName::read(&Name::from(name), &Name::from(&zone.name)))
                .flatten();
            out.push(("kubernetes/zone", zonal.map(|z| z.zone).unwrap_or_default()));
        }
        for (label, value) in [
            ("kubernetes/endpoint", parts.endpoint),
            ("kubernetes/kind", parts.kind),
            ("kubernetes/namespace", parts.namespace),
            ("kubernetes/port-name", parts.port),
            ("kubernetes/protocol", parts.protocol),
            ("kubernetes/service", parts.service),
        ] {
            out.push((label, value));
        }
    }

    /// One of its zones whole, as the index holds it: the SOA, the apex NS, then every record
    /// of every name in the zone (Services, their SRV records, headless endpoints, PTR records
    /// in a reverse zone), in name order. Not before the first list is in.
    fn serials(&self) -> Vec<(Name, u32)> {
        if !self.status.ready() {
            return Vec::new();
        }
        self.index
            .zones()
            .iter()
            .filter_map(|z| match z.soa().first().map(|r| &r.data) {
                Some(hickory_proto::rr::RData::SOA(soa)) => Some((Name::from(&z.name), soa.serial)),
                _ => None,
            })
            .collect()
    }

    fn transfer(&self, zone: &Name) -> Option<Vec<Record>> {
        if !self.status.ready() {
            return None;
        }
        let lower = LowerName::from(zone);
        let z = self.index.zones().iter().find(|z| z.name == lower)?;
        let mut out: Vec<Record> = z.soa().iter().cloned().collect();
        out.extend(z.ns.iter().cloned());
        let mut rest: Vec<Record> = self
            .index
            .records()
            .into_iter()
            .filter(|r| {
                let apex_record = r.record_type() == RecordType::SOA
                    || (r.record_type() == RecordType::NS && r.name == *zone);
                // Zonal names are answered, not transferred (as in CoreDNS).
                let zonal = self.zonal && ZonalName::read(&r.name, zone).is_some();
                !apex_record
                    && !zonal
                    && self
                        .index
                        .zone_of(&LowerName::new(&r.name))
                        .is_some_and(|owner| owner.name == lower)
            })
            .collect();
        rest.sort_by(|a, b| a.name.cmp(&b.name));
        out.extend(rest);
        Some(out)
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
                if let Some(up) = req.follow(target, qtype, Take::NoError).await {
                    reply.answers.extend(up.answers);
                }
                Ok(reply)
            }),
        }
    }
}

/// Puts `kubernetes` into the block being set up.
pub fn setup(cfg: &config::KubernetesConfig, s: &mut Setup<'_>) -> Result<(), PluginError> {
    // The application starts (or keeps) the block's source before the block is set up, so
    // that the plugins above this one in the chain can read its index too.
    let Some(k) = s.shared::<Arc<ClusterSource>>() else {
        return Err(PluginError::new(
            NAME,
            "no source was started for this block",
        ));
    };
    s.handler(Kubernetes::new(
        k.index.clone(),
        cfg.fallthrough.clone(),
        cfg.pods,
        k.status.clone(),
        cfg.zonal,
    ));
    s.process.readiness.push(k.status.clone());
    Ok(())
}

/// The parts of a name in a cluster zone, as CoreDNS reads them for its metadata:
/// `[ENDPOINT.|_PORT._PROTO.]SERVICE.NAMESPACE.KIND.ZONE`, KIND `svc` or `pod`, and in a
/// `multicluster` zone also `ENDPOINT.CLUSTER.SERVICE…` (two labels without underscores);
/// `None` for a name that does not read so.
#[derive(Default)]
struct NameParts {
    kind: String,
    namespace: String,
    service: String,
    endpoint: String,
    port: String,
    protocol: String,
}

fn name_parts(name: &Name, zone: &Name, multicluster: bool) -> Option<NameParts> {
    let depth = usize::from(name.num_labels().checked_sub(zone.num_labels())?);
    let labels: Vec<String> = name
        .iter()
        .take(depth)
        .map(|l| String::from_utf8_lossy(l).to_ascii_lowercase())
        .collect();
    let mut parts = NameParts::default();
    let mut rest = labels.as_slice();
    let Some((kind, more)) = rest.split_last() else {
        return Some(parts);
    };
    if kind != "svc" && kind != "pod" {
        return None;
    }
    parts.kind = kind.clone();
    rest = more;
    let Some((namespace, more)) = rest.split_last() else {
        return Some(parts);
    };
    parts.namespace = namespace.clone();
    rest = more;
    let Some((service, more)) = rest.split_last() else {
        return Some(parts);
    };
    parts.service = service.clone();
    rest = more;
    let strip = |l: &str| l.strip_prefix('_').unwrap_or(l).to_string();
    match rest {
        [] => {}
        [endpoint] => parts.endpoint = endpoint.clone(),
        [endpoint, cluster]
            if multicluster && !endpoint.starts_with('_') && !cluster.starts_with('_') =>
        {
            parts.endpoint = endpoint.clone();
        }
        [port, protocol] => {
            parts.port = strip(port);
            parts.protocol = strip(protocol);
        }
        _ => return None,
    }
    Some(parts)
}

#[cfg(test)]
mod tests {
    use hickory_proto::rr::Name;

    /// The parts of `name` in `zone`, joined with `|`.
    fn read(name: &str, zone: &str, multicluster: bool) -> Option<String> {
        let (name, zone) = (
            Name::from_ascii(name).unwrap(),
            Name::from_ascii(zone).unwrap(),
        );
        super::name_parts(&name, &zone, multicluster).map(|p| {
            [
                p.kind,
                p.namespace,
                p.service,
                p.endpoint,
                p.port,
                p.protocol,
            ]
            .join("|")
        })
    }

    #[test]
    fn names_read_as_coredns_reads_them_for_metadata() {
        let parts = |n: &str| read(n, "cluster.local.", false);
        assert_eq!(
            parts("web.shop.svc.cluster.local.").as_deref(),
            Some("svc|shop|web|||")
        );
        assert_eq!(
            parts("_HTTP._tcp.web.shop.svc.cluster.local.").as_deref(),
            Some("svc|shop|web||http|tcp")
        );
        assert_eq!(
            parts("pg-0.pg.db.svc.cluster.local.").as_deref(),
            Some("svc|db|pg|pg-0||")
        );
        assert_eq!(
            parts("shop.svc.cluster.local.").as_deref(),
            Some("svc|shop||||")
        );
        assert_eq!(parts("cluster.local.").as_deref(), Some("|||||"));
        assert_eq!(parts("a.b.c.web.shop.svc.cluster.local."), None);
        assert_eq!(parts("web.shop.nope.cluster.local."), None);

        let mc = |n: &str| read(n, "clusterset.local.", true);
        assert_eq!(
            mc("pg-0.east.pg.db.svc.clusterset.local.").as_deref(),
            Some("svc|db|pg|pg-0||")
        );
        assert_eq!(
            mc("_pg._tcp.pg.db.svc.clusterset.local.").as_deref(),
            Some("svc|db|pg||pg|tcp")
        );
    }
}
