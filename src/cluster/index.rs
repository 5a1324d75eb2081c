//! The answer index: every name the cluster puts in DNS, with its record sets prebuilt.
//!
//! Readers (the query path) do one hash lookup in a sharded map and clone an `Arc`; they never
//! wait on a writer for longer than one map insert. Writers go through [`Index::apply`], which
//! recomputes only the owners (a Service, a Pod, a Namespace) that changed and republishes only
//! the names those owners touch, so one endpoint changing in a cluster of 10,000 Services costs
//! the names of one Service.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};

use arc_swap::ArcSwap;
use dashmap::DashMap;
use hickory_proto::rr::rdata::{A, AAAA, CNAME, NS, PTR, SOA, SRV, TXT};
use hickory_proto::rr::{LowerName, Name, RData, Record, RecordType};

use crate::chain::RecordSet;
use crate::names;

use super::records::{self, Owner, Part, RecordOptions, Zones};
use super::slim::{Key, SlimPod, SlimService, SlimSlice};

/// The record sets of one name.
#[derive(Debug, Default)]
pub struct Node {
    pub rrsets: Vec<RRset>,
    /// Set when the name is an alias (an ExternalName Service).
    pub cname: Option<Name>,
}

impl Node {
    pub fn get(&self, rtype: RecordType) -> Option<&RRset> {
        self.rrsets.iter().find(|s| s.rtype == rtype)
    }
}

#[derive(Debug)]
pub struct RRset {
    pub rtype: RecordType,
    pub records: RecordSet,
    /// What goes in the additional section with these records (SRV targets' addresses).
    pub additionals: Option<RecordSet>,
}

/// One zone of the index, with its SOA and NS prebuilt.
pub struct Zone {
    pub name: LowerName,
    pub reverse: bool,
    soa: ArcSwap<RecordSet>,
    pub ns: RecordSet,
    /// `ns.dns.ZONE`, where the NS record points.
    pub ns_name: LowerName,
}

impl Zone {
    pub fn soa(&self) -> RecordSet {
        RecordSet::clone(&self.soa.load())
    }
}

/// A whole cluster as a source last saw it.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Snapshot {
    pub namespaces: BTreeSet<Arc<str>>,
    pub services: BTreeMap<Key, SlimService>,
    pub slices: BTreeMap<Key, SlimSlice>,
    pub pods: BTreeMap<Key, SlimPod>,
}

/// One change to the cluster.
#[derive(Clone, Debug)]
pub enum Change {
    Namespace(Arc<str>, bool),
    Service(Key, Option<SlimService>),
    Slice(Key, Option<SlimSlice>),
    Pod(Key, Option<SlimPod>),
}

/// The kinds of object a source feeds the index.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Kind {
    Namespace,
    Service,
    Slice,
    Pod,
}

impl Kind {
    pub const ALL: [Kind; 4] = [Kind::Namespace, Kind::Service, Kind::Slice, Kind::Pod];

    /// The API's plural name, as metrics and logs use it.
    pub fn plural(self) -> &'static str {
        match self {
            Kind::Namespace => "namespaces",
            Kind::Service => "services",
            Kind::Slice => "endpointslices",
            Kind::Pod => "pods",
        }
    }
}

impl Change {
    pub fn kind(&self) -> Kind {
        match self {
            Change::Namespace(..) => Kind::Namespace,
            Change::Service(..) => Kind::Service,
            Change::Slice(..) => Kind::Slice,
            Change::Pod(..) => Kind::Pod,
        }
    }
}

/// What one [`Index::apply`] did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Applied {
    /// Owners (Services, Pods, Namespaces) recomputed.
    pub owners: usize,
    /// Names whose answers were rebuilt.
    pub names: usize,
    /// Whether any answer changed.
    pub changed: bool,
}

#[derive(Clone, Debug)]
pub struct IndexOptions {
    pub zones: Vec<Name>,
    pub ttl: u32,
    pub records: RecordOptions,
}

pub struct Index {
    names: DashMap<LowerName, Arc<Node>>,
    zones: Vec<Zone>,
    ttl: u32,
    writer: Mutex<Writer>,
}

/// The writer's side: the slim objects and who contributed what to which name.
struct Writer {
    zones: Zones,
    opts: RecordOptions,
    ttl: u32,
    serial: u32,
    state: Snapshot,
    /// Slices grouped by their Service: `namespace/service` → slice name → slice.
    slices_by_service: HashMap<Key, BTreeMap<Arc<str>, SlimSlice>>,
    contributed: HashMap<Owner, Vec<LowerName>>,
    /// The parts with records, per name, in owner order.
    parts: HashMap<LowerName, Vec<(Owner, Part)>>,
    /// How many owners make each name exist without records (empty non-terminals).
    ents: HashMap<LowerName, u32>,
    /// The one node every record-less name shares.
    empty: Arc<Node>,
}

impl Index {
    pub fn new(opts: IndexOptions) -> Self {
        let zones = Zones::new(&opts.zones);
        let mut zone_list = Vec::new();
        for (name, reverse) in zones
            .forward
            .iter()
            .map(|z| (z, false))
            .chain(zones.reverse.iter().map(|z| (z, true)))
        {
            let ns_name = names::join(&["ns", "dns"], name).unwrap_or_else(|| name.clone());
            zone_list.push(Zone {
                name: LowerName::new(name),
                reverse,
                soa: ArcSwap::from_pointee(soa_record(name, opts.ttl, 0)),
                ns: Arc::from(vec![Record::from_rdata(
                    name.clone(),
                    opts.ttl,
                    RData::NS(NS(ns_name.clone())),
                )]),
                ns_name: LowerName::new(&ns_name),
            });
        }
        let index = Self {
            names: DashMap::new(),
            zones: zone_list,
            ttl: opts.ttl,
            writer: Mutex::new(Writer {
                zones,
                opts: opts.records,
                ttl: opts.ttl,
                serial: 0,
                state: Snapshot::default(),
                slices_by_service: HashMap::new(),
                contributed: HashMap::new(),
                parts: HashMap::new(),
                ents: HashMap::new(),
                empty: Arc::new(Node::default()),
            }),
        };
        {
            let mut w = index.lock_writer();
            let parts = records::static_parts(&w.zones);
            let touched = w.replace_owner(Owner::Static, parts);
            w.publish(&index.names, touched);
        }
        index
    }

    /// The zone `name` falls in (the most specific one), if any.
    pub fn zone_of(&self, name: &LowerName) -> Option<&Zone> {
        self.zones
            .iter()
            .filter(|z| z.name.zone_of(name))
            .max_by_key(|z| z.name.num_labels())
    }

    pub fn zones(&self) -> &[Zone] {
        &self.zones
    }

    pub fn get(&self, name: &LowerName) -> Option<Arc<Node>> {
        self.names.get(name).map(|n| Arc::clone(n.value()))
    }

    pub fn ttl(&self) -> u32 {
        self.ttl
    }

    /// How many names the index holds.
    pub fn len(&self) -> usize {
        self.names.len()
    }

    pub fn is_empty(&self) -> bool {
        self.names.is_empty()
    }

    /// Applies changes, recomputing only the owners they concern.
    pub fn apply(&self, changes: impl IntoIterator<Item = Change>) -> Applied {
        let mut w = self.lock_writer();
        let dirty = w.record_changes(changes);
        let mut applied = Applied {
            owners: dirty.len(),
            ..Applied::default()
        };
        if dirty.is_empty() {
            return applied;
        }
        let mut touched = HashSet::new();
        for owner in dirty {
            let parts = w.owner_parts(&owner);
            touched.extend(w.replace_owner(owner, parts));
        }
        applied.names = touched.len();
        let changed = w.publish(&self.names, touched);
        applied.changed = changed;
        if changed {
            w.serial = next_serial(w.serial);
            for z in &self.zones {
                z.soa
                    .store(Arc::new(soa_record(&Name::from(&z.name), w.ttl, w.serial)));
            }
        }
        applied
    }

    /// Replaces everything with `snap`, applying only the differences.
    pub fn replace_all(&self, snap: Snapshot) -> Applied {
        let changes = {
            let w = self.lock_writer();
            diff(&w.state, &snap)
        };
        self.apply(changes)
    }

    /// Replaces every object of `kind` with `objects` (a relist), applying only the
    /// differences: what the list no longer holds is deleted, what it holds unchanged costs
    /// nothing. Changes of another kind in `objects` are ignored.
    pub fn replace_kind(&self, kind: Kind, objects: Vec<Change>) -> Applied {
        let changes = {
            let w = self.lock_writer();
            let mut new = Snapshot::default();
            for change in objects {
                match change {
                    Change::Namespace(ns, true) if kind == Kind::Namespace => {
                        new.namespaces.insert(ns);
                    }
                    Change::Service(k, Some(v)) if kind == Kind::Service => {
                        new.services.insert(k, v);
                    }
                    Change::Slice(k, Some(v)) if kind == Kind::Slice => {
                        new.slices.insert(k, v);
                    }
                    Change::Pod(k, Some(v)) if kind == Kind::Pod => {
                        new.pods.insert(k, v);
                    }
                    _ => {}
                }
            }
            let old = &w.state;
            let mut changes = Vec::new();
            match kind {
                Kind::Namespace => {
                    for ns in old.namespaces.difference(&new.namespaces) {
                        changes.push(Change::Namespace(ns.clone(), false));
                    }
                    for ns in new.namespaces.difference(&old.namespaces) {
                        changes.push(Change::Namespace(ns.clone(), true));
                    }
                }
                Kind::Service => {
                    diff_map(&old.services, &new.services, &mut changes, Change::Service)
                }
                Kind::Slice => diff_map(&old.slices, &new.slices, &mut changes, Change::Slice),
                Kind::Pod => diff_map(&old.pods, &new.pods, &mut changes, Change::Pod),
            }
            changes
        };
        self.apply(changes)
    }

    /// How many objects of `kind` the index holds.
    pub fn count(&self, kind: Kind) -> usize {
        let w = self.lock_writer();
        match kind {
            Kind::Namespace => w.state.namespaces.len(),
            Kind::Service => w.state.services.len(),
            Kind::Slice => w.state.slices.len(),
            Kind::Pod => w.state.pods.len(),
        }
    }

    /// Whether the Service `key` is headless (for the programming-latency metric).
    pub fn is_headless(&self, key: &Key) -> bool {
        let w = self.lock_writer();
        w.state
            .services
            .get(key)
            .is_some_and(|s| matches!(s.kind, super::slim::ServiceKind::Headless))
    }

    fn lock_writer(&self) -> std::sync::MutexGuard<'_, Writer> {
        // A writer that panicked left consistent data behind (every step replaces whole values).
        self.writer.lock().unwrap_or_else(|e| e.into_inner())
    }
}

fn next_serial(prev: u32) -> u32 {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as u32)
        .unwrap_or(0);
    now.max(prev.wrapping_add(1))
}

fn soa_record(zone: &Name, ttl: u32, serial: u32) -> RecordSet {
    let ns = names::join(&["ns", "dns"], zone).unwrap_or_else(|| zone.clone());
    let mbox = names::child(zone, "hostmaster").unwrap_or_else(|| zone.clone());
    Arc::from(vec![Record::from_rdata(
        zone.clone(),
        ttl.min(300),
        RData::SOA(SOA::new(ns, mbox, serial, 7200, 1800, 86400, ttl)),
    )])
}

/// The changes that turn `old` into `new`.
fn diff(old: &Snapshot, new: &Snapshot) -> Vec<Change> {
    let mut changes = Vec::new();
    for ns in old.namespaces.difference(&new.namespaces) {
        changes.push(Change::Namespace(ns.clone(), false));
    }
    for ns in new.namespaces.difference(&old.namespaces) {
        changes.push(Change::Namespace(ns.clone(), true));
    }
    diff_map(&old.services, &new.services, &mut changes, Change::Service);
    diff_map(&old.slices, &new.slices, &mut changes, Change::Slice);
    diff_map(&old.pods, &new.pods, &mut changes, Change::Pod);
    changes
}

fn diff_map<T: Clone + PartialEq>(
    old: &BTreeMap<Key, T>,
    new: &BTreeMap<Key, T>,
    out: &mut Vec<Change>,
    make: fn(Key, Option<T>) -> Change,
) {
    for (k, v) in old {
        if !new.contains_key(k) {
            out.push(make(k.clone(), None));
        } else if new.get(k) != Some(v) {
            out.push(make(k.clone(), new.get(k).cloned()));
        }
    }
    for (k, v) in new {
        if !old.contains_key(k) {
            out.push(make(k.clone(), Some(v.clone())));
        }
    }
}

impl Writer {
    /// Stores the changes and returns the owners whose names must be recomputed.
    fn record_changes(&mut self, changes: impl IntoIterator<Item = Change>) -> BTreeSet<Owner> {
        let mut dirty = BTreeSet::new();
        for change in changes {
            match change {
                Change::Namespace(ns, present) => {
                    let had = if present {
                        !self.state.namespaces.insert(ns.clone())
                    } else {
                        self.state.namespaces.remove(&ns)
                    };
                    if had == present {
                        continue;
                    }
                    // Everything in the namespace appears or disappears with it.
                    dirty.insert(Owner::Namespace(ns.clone()));
                    let first = Key {
                        namespace: ns.clone(),
                        name: Arc::from(""),
                    };
                    let in_ns = |k: &&Key| k.namespace == ns;
                    for k in self
                        .state
                        .services
                        .range(first.clone()..)
                        .map(|e| e.0)
                        .take_while(in_ns)
                    {
                        dirty.insert(Owner::Service(k.clone()));
                    }
                    for k in self
                        .state
                        .pods
                        .range(first..)
                        .map(|e| e.0)
                        .take_while(in_ns)
                    {
                        dirty.insert(Owner::Pod(k.clone()));
                    }
                }
                Change::Service(key, svc) => {
                    match svc {
                        Some(s) => self.state.services.insert(key.clone(), s),
                        None => self.state.services.remove(&key),
                    };
                    dirty.insert(Owner::Service(key));
                }
                Change::Slice(key, slice) => {
                    if let Some(old) = self.state.slices.remove(&key) {
                        let svc = Key {
                            namespace: old.key.namespace.clone(),
                            name: old.service.clone(),
                        };
                        if let Some(m) = self.slices_by_service.get_mut(&svc) {
                            m.remove(&key.name);
                            if m.is_empty() {
                                self.slices_by_service.remove(&svc);
                            }
                        }
                        dirty.insert(Owner::Service(svc));
                    }
                    if let Some(new) = slice {
                        let svc = Key {
                            namespace: new.key.namespace.clone(),
                            name: new.service.clone(),
                        };
                        self.slices_by_service
                            .entry(svc.clone())
                            .or_default()
                            .insert(key.name.clone(), new.clone());
                        self.state.slices.insert(key, new);
                        dirty.insert(Owner::Service(svc));
                    }
                }
                Change::Pod(key, pod) => {
                    match pod {
                        Some(p) => self.state.pods.insert(key.clone(), p),
                        None => self.state.pods.remove(&key),
                    };
                    dirty.insert(Owner::Pod(key));
                }
            }
        }
        dirty
    }

    /// What `owner` contributes now.
    fn owner_parts(&self, owner: &Owner) -> Vec<(LowerName, Part)> {
        let ns_exists = |ns: &Arc<str>| self.state.namespaces.contains(ns);
        match owner {
            Owner::Static => records::static_parts(&self.zones),
            Owner::Namespace(ns) if ns_exists(ns) => {
                records::namespace_parts(ns, &self.zones, &self.opts)
            }
            Owner::Service(key) if ns_exists(&key.namespace) => {
                match self.state.services.get(key) {
                    Some(svc) => records::service_parts(
                        svc,
                        self.slices_by_service.get(key),
                        &self.zones,
                        &self.opts,
                    ),
                    None => Vec::new(),
                }
            }
            Owner::Pod(key) if ns_exists(&key.namespace) => match self.state.pods.get(key) {
                Some(pod) => records::pod_parts(pod, &self.zones, &self.opts),
                None => Vec::new(),
            },
            _ => Vec::new(),
        }
    }

    /// Swaps `owner`'s contribution; returns the names whose answers may have changed.
    ///
    /// A contribution without records (an empty non-terminal such as `NS.svc.ZONE` or
    /// `10.in-addr.arpa`, which thousands of owners share) is only counted: it touches the name
    /// when the count goes from or to zero, so a change to one Service never rebuilds names
    /// that every Service shares.
    fn replace_owner(&mut self, owner: Owner, new: Vec<(LowerName, Part)>) -> Vec<LowerName> {
        let mut touched = Vec::new();
        for name in self.contributed.remove(&owner).unwrap_or_default() {
            let mine = self.parts.get_mut(&name).and_then(|list| {
                list.iter()
                    .position(|(o, _)| o == &owner)
                    .map(|i| (list, i))
            });
            match mine {
                Some((list, i)) => {
                    list.remove(i);
                    if list.is_empty() {
                        self.parts.remove(&name);
                    }
                    touched.push(name);
                }
                None => {
                    if let Some(n) = self.ents.get_mut(&name) {
                        *n -= 1;
                        if *n == 0 {
                            self.ents.remove(&name);
                            touched.push(name);
                        }
                    }
                }
            }
        }
        let mut names = Vec::with_capacity(new.len());
        for (name, part) in new {
            names.push(name.clone());
            if part.is_empty() {
                let n = self.ents.entry(name.clone()).or_insert(0);
                *n += 1;
                if *n == 1 {
                    touched.push(name);
                }
                continue;
            }
            let list = self.parts.entry(name.clone()).or_default();
            let at = list.partition_point(|(o, _)| o < &owner);
            list.insert(at, (owner.clone(), part));
            touched.push(name);
        }
        if !names.is_empty() {
            names.shrink_to_fit();
            self.contributed.insert(owner, names);
        }
        touched
    }

    /// Rebuilds the answers of `touched` names and publishes them; returns whether any changed.
    fn publish(
        &self,
        map: &DashMap<LowerName, Arc<Node>>,
        touched: impl IntoIterator<Item = LowerName>,
    ) -> bool {
        let mut changed = false;
        let mut seen = HashSet::new();
        for name in touched {
            if !seen.insert(name.clone()) {
                continue;
            }
            match self.parts.get(&name) {
                Some(parts) => {
                    let node = build_node(&name, parts, self.ttl);
                    map.insert(name, Arc::new(node));
                    changed = true;
                }
                None if self.ents.contains_key(&name) => {
                    if !map.get(&name).is_some_and(|n| n.rrsets.is_empty()) {
                        map.insert(name, self.empty.clone());
                        changed = true;
                    }
                }
                None => {
                    changed |= map.remove(&name).is_some();
                }
            }
        }
        changed
    }
}

#[cfg(test)]
#[path = "index_tests.rs"]
mod tests;

/// Merges the parts of one name (in owner order) into its record sets.
fn build_node(name: &LowerName, parts: &[(Owner, Part)], ttl: u32) -> Node {
    let owner: Name = name.into();
    let mut merged = Part::default();
    let cluster_ptr = parts.iter().find(|(_, p)| p.ptr_is_cluster_ip);
    for (_, p) in parts {
        let mut p = p.clone();
        if cluster_ptr.is_some() {
            p.ptr.clear(); // a cluster IP's Service wins over endpoint names
        }
        merged.merge_from(p);
    }
    if let Some((_, p)) = cluster_ptr {
        merged.ptr = p.ptr.iter().take(1).cloned().collect();
    }

    let rec = |rdata: RData| Record::from_rdata(owner.clone(), ttl, rdata);
    let mut rrsets = Vec::new();
    let v4: Vec<Record> = merged
        .addrs
        .iter()
        .filter_map(|ip| match ip {
            IpAddr::V4(v4) => Some(rec(RData::A(A(*v4)))),
            IpAddr::V6(_) => None,
        })
        .collect();
    let v6: Vec<Record> = merged
        .addrs
        .iter()
        .filter_map(|ip| match ip {
            IpAddr::V6(v6) => Some(rec(RData::AAAA(AAAA(*v6)))),
            IpAddr::V4(_) => None,
        })
        .collect();
    let v4: RecordSet = Arc::from(v4);
    let v6: RecordSet = Arc::from(v6);
    let mut push = |rtype, records: RecordSet, additionals: Option<RecordSet>| {
        if !records.is_empty() {
            rrsets.push(RRset {
                rtype,
                records,
                additionals: additionals.filter(|a| !a.is_empty()),
            });
        }
    };
    push(RecordType::A, v4.clone(), None);
    push(RecordType::AAAA, v6.clone(), None);
    let srv: Vec<Record> = merged
        .srv
        .iter()
        .map(|s| rec(RData::SRV(SRV::new(0, s.weight, s.port, s.target.clone()))))
        .collect();
    let extra: Vec<Record> = merged
        .srv_extra
        .iter()
        .map(|(target, ip)| {
            let rdata = match ip {
                IpAddr::V4(v4) => RData::A(A(*v4)),
                IpAddr::V6(v6) => RData::AAAA(AAAA(*v6)),
            };
            Record::from_rdata(target.clone(), ttl, rdata)
        })
        .collect();
    // SRV records that target the name itself (a Service's own name, an endpoint's name) carry
    // the name's own addresses: share that set rather than hold a copy.
    let extra = if *extra == *v4 {
        v4.clone()
    } else if *extra == *v6 {
        v6.clone()
    } else {
        Arc::from(extra)
    };
    push(RecordType::SRV, Arc::from(srv), Some(extra));
    let ptr: Vec<Record> = merged
        .ptr
        .iter()
        .map(|t| rec(RData::PTR(PTR(t.clone()))))
        .collect();
    push(RecordType::PTR, Arc::from(ptr), None);
    if let Some(target) = &merged.cname {
        push(
            RecordType::CNAME,
            Arc::from(vec![rec(RData::CNAME(CNAME(target.clone())))]),
            None,
        );
    }
    if let Some(txt) = &merged.txt {
        push(
            RecordType::TXT,
            Arc::from(vec![rec(RData::TXT(TXT::new(vec![txt.clone()])))]),
            None,
        );
    }
    Node {
        rrsets,
        cname: merged.cname,
    }
}
