//! Which names a Service, Pod or Namespace puts in DNS, and with what data: the Kubernetes DNS
//! specification 1.1.0, and CoreDNS's `kubernetes` plugin where the specification is silent.
//! Everything here runs when the cluster changes, never per query.

use std::collections::HashMap;
use std::net::IpAddr;

use hickory_proto::rr::{LowerName, Name};

use crate::dns::name;

use super::slim::{
    ImportKind, Key, ServiceKind, SlimEndpoint, SlimImport, SlimPod, SlimPort, SlimService,
    SlimSlice,
};

/// How `A-B-C-D.NAMESPACE.pod.ZONE` names are answered.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum PodMode {
    /// No pod records (CoreDNS's default).
    #[default]
    Disabled,
    /// Any well-formed name answers with the IP it spells.
    Insecure,
    /// Only IPs of pods that exist in that namespace.
    Verified,
}

/// What one owner says about one name. Merged across owners into the answers for that name.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Part {
    pub addrs: Vec<IpAddr>,
    pub srv: Vec<Srv>,
    /// Addresses of SRV targets, for the additional section.
    pub srv_extra: Vec<(Name, IpAddr)>,
    pub ptr: Vec<Name>,
    /// The PTR names a Service's cluster IP: it wins over endpoint names, as in CoreDNS.
    pub ptr_is_cluster_ip: bool,
    /// The PTR names a multi-cluster name: it is given only where no cluster-local name
    /// claims the address (the MCS DNS specification, 2.3.3 and 2.4.3).
    pub ptr_is_clusterset: bool,
    pub cname: Option<Name>,
    pub txt: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Srv {
    pub weight: u16,
    pub port: u16,
    pub target: Name,
}

impl Part {
    /// No records: the name only exists (an empty non-terminal, or a zone apex).
    pub fn is_empty(&self) -> bool {
        self.addrs.is_empty()
            && self.srv.is_empty()
            && self.srv_extra.is_empty()
            && self.ptr.is_empty()
            && self.cname.is_none()
            && self.txt.is_none()
    }

    pub fn merge_from(&mut self, other: Part) {
        for a in other.addrs {
            push_unique(&mut self.addrs, a);
        }
        for s in other.srv {
            if !self
                .srv
                .iter()
                .any(|x| x.target == s.target && x.port == s.port)
            {
                self.srv.push(s);
            }
        }
        for e in other.srv_extra {
            push_unique(&mut self.srv_extra, e);
        }
        for p in other.ptr {
            push_unique(&mut self.ptr, p);
        }
        self.ptr_is_cluster_ip |= other.ptr_is_cluster_ip;
        self.ptr_is_clusterset |= other.ptr_is_clusterset;
        self.cname = self.cname.take().or(other.cname);
        self.txt = self.txt.take().or(other.txt);
    }
}

fn push_unique<T: PartialEq>(v: &mut Vec<T>, x: T) {
    if !v.contains(&x) {
        v.push(x);
    }
}

/// The zones one `kubernetes` handler serves, split by kind.
#[derive(Clone, Debug)]
pub struct Zones {
    /// Forward zones (`cluster.local.`); the first is the primary, which PTR records point into.
    pub forward: Vec<Name>,
    /// Reverse zones (`in-addr.arpa.`, `10.in-addr.arpa.`, `ip6.arpa.`).
    pub reverse: Vec<Name>,
    /// Forward zones that `multicluster` names (`clusterset.local.`): ServiceImports' names,
    /// not Services'. The first is the one PTR records point into.
    pub multicluster: Vec<Name>,
}

impl Zones {
    /// The zones of `all`, those also in `multicluster` being multi-cluster zones.
    pub fn new(all: &[Name], multicluster: &[Name]) -> Self {
        let arpa = name::fqdn("arpa.").unwrap_or_else(Name::root);
        let (reverse, forward): (Vec<Name>, Vec<Name>) = all
            .iter()
            .cloned()
            .partition(|z| arpa.zone_of(z) && z != &arpa);
        let (multicluster, forward) = forward.into_iter().partition(|z| multicluster.contains(z));
        Self {
            forward,
            reverse,
            multicluster,
        }
    }

    /// The most specific reverse zone holding `name`.
    fn reverse_zone_of(&self, name: &Name) -> Option<&Name> {
        self.reverse
            .iter()
            .filter(|z| z.zone_of(name))
            .max_by_key(|z| z.num_labels())
    }
}

/// Options that shape the records.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RecordOptions {
    pub pods: PodMode,
    pub endpoint_pod_names: bool,
    pub ignore_empty_service: bool,
    /// `zonal`: the zone-scoped names of headless Services.
    pub zonal: bool,
}

/// Parts keyed by name, with every empty non-terminal between a name and its zone filled in.
#[derive(Default)]
pub struct Parts {
    map: HashMap<LowerName, Part, foldhash::fast::RandomState>,
}

impl Parts {
    fn add(&mut self, name: Name, part: Part) {
        match self.map.entry(LowerName::new(&name)) {
            std::collections::hash_map::Entry::Occupied(mut e) => e.get_mut().merge_from(part),
            std::collections::hash_map::Entry::Vacant(e) => {
                e.insert(part);
            }
        }
    }

    /// Adds `name` and marks its ancestors below `zone` as existing (empty non-terminals).
    fn add_in(&mut self, zone: &Name, name: Name, part: Part) {
        let mut parent = name.base_name();
        while parent.num_labels() > zone.num_labels() {
            let parent_name = LowerName::new(&parent);
            // A name added here had its own ancestors added with it: stop at the first one
            // already known (the ports of a Service share `_tcp.SVC.NS.svc.ZONE` and above).
            if self.map.contains_key(&parent_name) {
                break;
            }
            self.map.insert(parent_name, Part::default());
            parent = parent.base_name();
        }
        self.add(name, part);
    }

    pub fn into_vec(self) -> Vec<(LowerName, Part)> {
        self.map.into_iter().collect()
    }
}

fn addr_part(ips: impl IntoIterator<Item = IpAddr>) -> Part {
    let mut p = Part::default();
    for ip in ips {
        push_unique(&mut p.addrs, ip);
    }
    p
}

/// Names that exist whatever the cluster holds: each zone's apex, `svc`, `pod` (not in a
/// multi-cluster zone), `dns-version` (TXT "1.1.0", or the multi-cluster schema's "1.0.0") and
/// `ns.dns`.
pub fn static_parts(zones: &Zones) -> Vec<(LowerName, Part)> {
    let mut parts = Parts::default();
    let cluster = zones
        .forward
        .iter()
        .map(|z| (z, &["svc", "pod"][..], SCHEMA_VERSION));
    let set = zones
        .multicluster
        .iter()
        .map(|z| (z, &["svc"][..], MULTICLUSTER_SCHEMA_VERSION));
    for (z, labels, version) in cluster.chain(set) {
        parts.add(z.clone(), Part::default());
        for label in labels {
            if let Some(n) = name::child(z, label) {
                parts.add_in(z, n, Part::default());
            }
        }
        if let Some(n) = name::child(z, "dns-version") {
            parts.add_in(
                z,
                n,
                Part {
                    txt: Some(version.to_string()),
                    ..Part::default()
                },
            );
        }
        if let Some(n) = name::join(&["ns", "dns"], z) {
            parts.add_in(z, n, Part::default());
        }
    }
    for z in &zones.reverse {
        parts.add(z.clone(), Part::default());
    }
    parts.into_vec()
}

/// The version of the Kubernetes DNS specification we follow.
pub const SCHEMA_VERSION: &str = "1.1.0";

/// The version of the multi-cluster DNS specification (KEP-1645's) we follow.
pub const MULTICLUSTER_SCHEMA_VERSION: &str = "1.0.0";

/// `NS.svc.ZONE` and `NS.pod.ZONE` exist for every namespace.
pub fn namespace_parts(ns: &str, zones: &Zones, opts: &RecordOptions) -> Vec<(LowerName, Part)> {
    let mut parts = Parts::default();
    // Namespace sameness (KEP-1645): a namespace is the same one in every cluster of the set,
    // so `NS.svc.clusterset.local` exists where the namespace does.
    for z in &zones.multicluster {
        if let Some(n) = name::join(&[ns, "svc"], z) {
            parts.add_in(z, n, Part::default());
        }
    }
    for z in &zones.forward {
        if let Some(n) = name::join(&[ns, "svc"], z) {
            parts.add_in(z, n, Part::default());
        }
        if opts.pods != PodMode::Disabled
            && let Some(n) = name::join(&[ns, "pod"], z)
        {
            parts.add_in(z, n, Part::default());
        }
    }
    parts.into_vec()
}

/// `A-B-C-D.NS.pod.ZONE` for each IP of a pod, under `pods verified`.
pub fn pod_parts(pod: &SlimPod, zones: &Zones, opts: &RecordOptions) -> Vec<(LowerName, Part)> {
    let mut parts = Parts::default();
    if opts.pods != PodMode::Verified {
        return Vec::new();
    }
    for z in &zones.forward {
        for ip in &pod.ips {
            if let Some(n) = name::join(&[&name::dashed(*ip), &pod.key.namespace, "pod"], z) {
                parts.add_in(z, n, addr_part([*ip]));
            }
        }
    }
    parts.into_vec()
}

/// One ready endpoint address as DNS sees it.
struct EpAddr<'a> {
    host: String,
    /// The cluster a multi-cluster endpoint is in: its names are `HOST.CLUSTER.SVC…`.
    cluster: Option<&'a str>,
    ip: IpAddr,
    ports: Option<&'a [SlimPort]>,
    /// The endpoint's topology zone (kept only under `zonal`).
    zone: Option<&'a str>,
}

impl<'a> EpAddr<'a> {
    fn new(
        slice: &'a SlimSlice,
        e: &'a SlimEndpoint,
        ip: IpAddr,
        cluster: Option<&'a str>,
        opts: &RecordOptions,
    ) -> Self {
        EpAddr {
            host: endpoint_host(
                e.hostname.as_deref(),
                e.pod_name.as_deref(),
                ip,
                opts.endpoint_pod_names,
            ),
            cluster,
            ip,
            ports: slice.ports.as_deref(),
            zone: e.zone.as_deref(),
        }
    }

    /// The endpoint's own name under its Service's name `base`.
    fn name(&self, base: &Name) -> Option<Name> {
        match self.cluster {
            Some(cluster) => name::join(&[&self.host, cluster], base),
            None => name::child(base, &self.host),
        }
    }
}

/// The label an endpoint is known by: its `hostname`, else (with `endpoint_pod_names`) its pod's
/// name, else its IP with dashes.
fn endpoint_host(hostname: Option<&str>, pod: Option<&str>, ip: IpAddr, pod_names: bool) -> String {
    let usable = |s: &&str| super::slim::is_label(s);
    hostname
        .filter(usable)
        .or(pod.filter(|_| pod_names).filter(usable))
        .map(str::to_string)
        .unwrap_or_else(|| name::dashed(ip))
}

/// CoreDNS spreads weight evenly over the entries an SRV query matched, before duplicates are
/// removed: each record gets ⌊100 / entries⌋ (computed as CoreDNS does, in floating point).
pub fn srv_weight(entries: usize) -> u16 {
    if entries == 0 {
        return 0;
    }
    let w = 100.0 / (100.0 * entries as f64) * 100.0;
    w.floor() as u16
}

/// Every name a Service puts in DNS, in every zone.
pub fn service_parts(
    svc: &SlimService,
    slices: &[&SlimSlice],
    zones: &Zones,
    opts: &RecordOptions,
) -> Vec<(LowerName, Part)> {
    let mut parts = Parts::default();
    let eps: Vec<EpAddr> = slices
        .iter()
        .flat_map(|slice| {
            slice
                .endpoints
                .iter()
                .filter(|e| e.ready || svc.publish_not_ready)
                .flat_map(move |e| {
                    e.addresses
                        .iter()
                        .map(move |ip| EpAddr::new(slice, e, *ip, None, opts))
                })
        })
        .collect();

    if let ServiceKind::ClusterIp(_) = svc.kind
        && opts.ignore_empty_service
        && eps.is_empty()
    {
        return Vec::new();
    }

    for (zi, z) in zones.forward.iter().enumerate() {
        let primary = zi == 0;
        let Some(base) = name::join(&[&svc.key.name, &svc.key.namespace, "svc"], z) else {
            continue;
        };
        match &svc.kind {
            ServiceKind::ExternalName(target) => {
                // An IP address is not a name to alias: no records, as in CoreDNS.
                if target.trim_end_matches('.').parse::<IpAddr>().is_ok() {
                    continue;
                }
                let Some(target) = name::fqdn(target) else {
                    continue;
                };
                if target != base {
                    parts.add_in(
                        z,
                        base,
                        Part {
                            cname: Some(target),
                            ..Part::default()
                        },
                    );
                }
                continue;
            }
            ServiceKind::ClusterIp(ips) => {
                cluster_ip_names(&mut parts, &svc.ports, ips, z, &base);
                if primary {
                    for ip in ips {
                        add_ptr(&mut parts, zones, *ip, base.clone(), true, false);
                    }
                    // The stock kube-dns Service is what `ns.dns.ZONE` resolves to.
                    if &*svc.key.namespace == "kube-system" && &*svc.key.name == "kube-dns" {
                        for z in zones.forward.iter().chain(&zones.multicluster) {
                            if let Some(ns) = name::join(&["ns", "dns"], z) {
                                parts.add_in(z, ns, addr_part(ips.iter().copied()));
                            }
                        }
                    }
                }
            }
            ServiceKind::Headless => {
                headless_names(&mut parts, &eps, z, &base);
                if opts.zonal {
                    zonal_names(&mut parts, &eps, &base);
                }
            }
        }
        endpoint_names(&mut parts, &eps, z, &base, primary, zones);
    }
    parts.into_vec()
}

/// A Service's (or a ServiceImport's) name with its virtual IPs, and its SRV names.
fn cluster_ip_names(parts: &mut Parts, ports: &[SlimPort], ips: &[IpAddr], z: &Name, base: &Name) {
    let extra: Vec<(Name, IpAddr)> = ips.iter().map(|ip| (base.clone(), *ip)).collect();
    // The Service name: its cluster IPs, and SRV for every port.
    let mut part = addr_part(ips.iter().copied());
    let weight = srv_weight(ports.len() * ips.len());
    for p in ports.iter() {
        if !part.srv.iter().any(|s| s.port == p.port) {
            part.srv.push(Srv {
                weight,
                port: p.port,
                target: base.clone(),
            });
        }
    }
    if !part.srv.is_empty() {
        part.srv_extra = extra.clone();
    }
    parts.add_in(z, base.clone(), part);
    // _port._proto.SERVICE for each named port.
    for p in ports.iter().filter(|p| !p.name.is_empty()) {
        let Some(name) = srv_name(p, base) else {
            continue;
        };
        parts.add_in(
            z,
            name,
            Part {
                srv: vec![Srv {
                    weight: srv_weight(ips.len()),
                    port: p.port,
                    target: base.clone(),
                }],
                srv_extra: extra.clone(),
                ..Part::default()
            },
        );
    }
}

fn headless_names(parts: &mut Parts, eps: &[EpAddr], z: &Name, base: &Name) {
    if eps.is_empty() {
        return; // NXDOMAIN: a headless Service with no ready endpoints has no records.
    }
    parts.add_in(z, base.clone(), endpoints_part(eps.iter(), base));
    // _port._proto.SERVICE for each named port any endpoint has.
    let mut named: Vec<&SlimPort> = Vec::new();
    for p in eps.iter().flat_map(|e| e.ports.into_iter().flatten()) {
        if !p.name.is_empty()
            && !named
                .iter()
                .any(|q| q.name == p.name && q.protocol == p.protocol)
        {
            named.push(p);
        }
    }
    for p in named {
        let Some(name) = srv_name(p, base) else {
            continue;
        };
        let (srv, extra) = endpoint_srv(eps.iter(), base, |q| {
            q.name == p.name && q.protocol == p.protocol
        });
        parts.add_in(
            z,
            name,
            Part {
                srv,
                srv_extra: extra,
                ..Part::default()
            },
        );
    }
}

/// What a headless Service's name answers for `eps`: their addresses, and SRV records to them.
fn endpoints_part<'a>(eps: impl Iterator<Item = &'a EpAddr<'a>> + Clone, base: &Name) -> Part {
    let mut part = addr_part(eps.clone().map(|e| e.ip));
    let (srv, extra) = endpoint_srv(eps, base, |_| true);
    part.srv = srv;
    part.srv_extra = extra;
    part
}

/// The label under a headless Service that zonal names hang from, and their directives.
pub const ZONAL_LABEL: &str = "_zone";
pub const ZONAL_DIRECTIVES: [&str; 2] = ["pin", "prefer"];

/// The owner of the names a zone no endpoint is in is answered from: `*` is no topology
/// zone's value (a label value has no `*`).
pub const ZONAL_ANY: &str = "*";

/// `ZONE.pin._zone.SERVICE` and `ZONE.prefer._zone.SERVICE` (`zonal`) for each topology zone
/// the ready endpoints of a headless Service are in, answering those endpoints; and for any
/// other zone `*.pin._zone.SERVICE` (nothing: NODATA) and `*.prefer._zone.SERVICE` (every
/// endpoint), which the handler answers such a name from. They are added without their
/// ancestors, so `pin._zone.SERVICE` and `_zone.SERVICE` stay NXDOMAIN, as in CoreDNS. A
/// zone whose value is no DNS name (an empty label) is never matched.
fn zonal_names(parts: &mut Parts, eps: &[EpAddr], base: &Name) {
    let mut zones: Vec<&str> = eps.iter().filter_map(|e| e.zone).collect();
    zones.sort_unstable();
    zones.dedup();
    for directive in ZONAL_DIRECTIVES {
        let Some(under) = name::join(&[directive, ZONAL_LABEL], base) else {
            continue;
        };
        if let Some(any) = name::child(&under, ZONAL_ANY) {
            let part = if directive == "prefer" {
                endpoints_part(eps.iter(), base)
            } else {
                Part::default()
            };
            parts.add(any, part);
        }
        for zone in &zones {
            let labels: Vec<&str> = zone.split('.').collect();
            if labels.iter().any(|l| l.is_empty()) {
                continue;
            }
            if let Some(n) = name::join(&labels, &under) {
                let here = eps.iter().filter(|e| e.zone == Some(zone));
                parts.add(n, endpoints_part(here, base));
            }
        }
    }
}

/// A zonal name read: `ZONE.DIRECTIVE._zone.SERVICE.NAMESPACE.svc.Z`.
#[derive(Debug, PartialEq, Eq)]
pub struct ZonalName {
    /// The topology zone asked for: every label left of the directive, joined with dots.
    pub zone: String,
    pub directive: &'static str,
    /// `SERVICE.NAMESPACE.svc.Z`.
    pub service: Name,
}

impl ZonalName {
    /// Reads `name` in the cluster zone `zone`; `None` when it is not shaped so.
    pub fn read(name: &Name, zone: &Name) -> Option<ZonalName> {
        // Counted by iterating: hickory does not count a leading `*` in `num_labels`.
        let all: Vec<&[u8]> = name.iter().collect();
        let depth = all.len().checked_sub(usize::from(zone.num_labels()))?;
        if depth < 6 || !zone.zone_of(name) {
            return None;
        }
        let labels = &all[..depth];
        let lower = |l: &[u8]| l.to_ascii_lowercase();
        if lower(labels[depth - 1]) != b"svc" || lower(labels[depth - 4]) != ZONAL_LABEL.as_bytes()
        {
            return None;
        }
        let directive = ZONAL_DIRECTIVES
            .into_iter()
            .find(|d| lower(labels[depth - 5]) == d.as_bytes())?;
        let zone_value = labels[..depth - 5]
            .iter()
            .map(|l| String::from_utf8_lossy(l).to_ascii_lowercase())
            .collect::<Vec<_>>()
            .join(".");
        Some(ZonalName {
            zone: zone_value,
            directive,
            service: name.trim_to(usize::from(zone.num_labels()) + 3),
        })
    }

    /// The name a zone no endpoint is in is answered from.
    pub fn any_zone(&self) -> Option<Name> {
        let under = name::join(&[self.directive, ZONAL_LABEL], &self.service)?;
        name::child(&under, ZONAL_ANY)
    }
}

/// `HOST.SERVICE` names for every ready endpoint (headless or not, as in CoreDNS), and PTRs.
fn endpoint_names(
    parts: &mut Parts,
    eps: &[EpAddr],
    z: &Name,
    base: &Name,
    primary: bool,
    zones: &Zones,
) {
    let mut hosts: Vec<(Option<&str>, &str)> = Vec::new();
    for e in eps {
        if !hosts.contains(&(e.cluster, e.host.as_str())) {
            hosts.push((e.cluster, &e.host));
        }
    }
    for (cluster, host) in hosts {
        let mine = eps
            .iter()
            .filter(|e| e.host == host && e.cluster == cluster);
        let Some(name) = mine.clone().next().and_then(|e| e.name(base)) else {
            continue;
        };
        let mut part = addr_part(mine.clone().map(|e| e.ip));
        let (srv, extra) = endpoint_srv(mine.clone(), base, |_| true);
        part.srv = srv;
        part.srv_extra = extra;
        if primary {
            for e in mine {
                add_ptr(parts, zones, e.ip, name.clone(), false, cluster.is_some());
            }
        }
        parts.add_in(z, name, part);
    }
}

/// SRV records (and their targets' addresses) for the endpoint × port entries that `keep` lets
/// through, targeting `HOST.SERVICE`.
fn endpoint_srv<'a>(
    eps: impl Iterator<Item = &'a EpAddr<'a>> + Clone,
    base: &Name,
    keep: impl Fn(&SlimPort) -> bool,
) -> (Vec<Srv>, Vec<(Name, IpAddr)>) {
    // Count entries as CoreDNS does: a slice without ports counts once per address ("port -1").
    let entries: usize = eps
        .clone()
        .map(|e| match e.ports {
            Some(ports) => ports.iter().filter(|p| keep(p)).count(),
            None => 1,
        })
        .sum();
    let weight = srv_weight(entries);
    let mut srv: Vec<Srv> = Vec::new();
    let mut extra = Vec::new();
    for e in eps {
        let Some(target) = e.name(base) else {
            continue;
        };
        for p in e.ports.into_iter().flatten().filter(|p| keep(p)) {
            if !srv.iter().any(|s| s.target == target && s.port == p.port) {
                srv.push(Srv {
                    weight,
                    port: p.port,
                    target: target.clone(),
                });
            }
            push_unique(&mut extra, (target.clone(), e.ip));
        }
    }
    (srv, extra)
}

fn srv_name(p: &SlimPort, base: &Name) -> Option<Name> {
    let port = format!("_{}", p.name);
    let proto = format!("_{}", p.protocol);
    name::join(&[&port, &proto], base)
}

fn add_ptr(
    parts: &mut Parts,
    zones: &Zones,
    ip: IpAddr,
    target: Name,
    cluster_ip: bool,
    clusterset: bool,
) {
    let name = name::reverse_name(ip);
    if let Some(zone) = zones.reverse_zone_of(&name) {
        let zone = zone.clone();
        parts.add_in(
            &zone,
            name,
            Part {
                ptr: vec![target],
                ptr_is_cluster_ip: cluster_ip,
                ptr_is_clusterset: clusterset,
                ..Part::default()
            },
        );
    }
}

/// Every name a ServiceImport puts in the multi-cluster zones, as the MCS DNS specification
/// (KEP-1645, schema 1.0.0) writes them: `SVC.NS.svc.ZONE` with the ClusterSetIPs, or for a
/// headless import every ready endpoint of its slices (in every cluster), `_PORT._PROTO`
/// SRV names, `HOST.CLUSTER.SVC.NS.svc.ZONE` per endpoint, and PTRs where no cluster-local
/// name claims the address. No per-cluster name for a ClusterSetIP import (section 2.3.4).
pub fn import_parts(
    imp: &SlimImport,
    slices: &[&SlimSlice],
    zones: &Zones,
    opts: &RecordOptions,
) -> Vec<(LowerName, Part)> {
    let mut parts = Parts::default();
    for (zi, z) in zones.multicluster.iter().enumerate() {
        let primary = zi == 0;
        let Some(base) = name::join(&[&imp.key.name, &imp.key.namespace, "svc"], z) else {
            continue;
        };
        match &imp.kind {
            ImportKind::ClusterSetIp(ips) => {
                cluster_ip_names(&mut parts, &imp.ports, ips, z, &base);
                if primary {
                    for ip in ips {
                        add_ptr(&mut parts, zones, *ip, base.clone(), true, true);
                    }
                }
            }
            ImportKind::Headless => {
                // Endpoints of a slice without a usable cluster ID answer the Service's name
                // but have no name of their own to be a target of.
                let mut named = Vec::new();
                let mut unnamed = Vec::new();
                for slice in slices {
                    let cluster = slice.import.as_ref().and_then(|l| l.cluster.as_deref());
                    for e in slice.endpoints.iter().filter(|e| e.ready) {
                        for ip in &e.addresses {
                            let ep = EpAddr::new(slice, e, *ip, cluster, opts);
                            if cluster.is_some() {
                                named.push(ep);
                            } else {
                                unnamed.push(ep.ip);
                            }
                        }
                    }
                }
                headless_names(&mut parts, &named, z, &base);
                if !unnamed.is_empty() {
                    parts.add_in(z, base.clone(), addr_part(unnamed));
                }
                endpoint_names(&mut parts, &named, z, &base, primary, zones);
            }
        }
    }
    parts.into_vec()
}

/// Who contributed a name: the index recomputes one owner at a time.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Owner {
    Static,
    Namespace(std::sync::Arc<str>),
    Service(Key),
    Pod(Key),
    /// A ServiceImport.
    Import(Key),
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(n: &str) -> Option<(String, &'static str, String)> {
        let zone = Name::from_ascii("cluster.local.").unwrap();
        ZonalName::read(&Name::from_ascii(n).unwrap(), &zone)
            .map(|z| (z.zone, z.directive, z.service.to_string()))
    }

    #[test]
    fn zonal_names_read_as_the_coredns_readme_writes_them() {
        let db = "db.prod.svc.cluster.local.".to_string();
        assert_eq!(
            read("us-west-2a.pin._zone.db.prod.svc.cluster.local."),
            Some(("us-west-2a".into(), "pin", db.clone()))
        );
        assert_eq!(
            read("Corp.Example.COM.PREFER._Zone.db.prod.svc.cluster.local."),
            Some(("corp.example.com".into(), "prefer", db.clone()))
        );
        assert_eq!(
            read("*.pin._zone.db.prod.svc.cluster.local."),
            Some(("*".into(), "pin", db))
        );
        for not in [
            "pin._zone.db.prod.svc.cluster.local.",
            "a.hint._zone.db.prod.svc.cluster.local.",
            "a.pin._zone.db.prod.pod.cluster.local.",
            "a.pin.zone.db.prod.svc.cluster.local.",
            "a.pin._zone.db.prod.svc.example.org.",
            "db.prod.svc.cluster.local.",
        ] {
            assert_eq!(read(not), None, "{not}");
        }
    }
}
