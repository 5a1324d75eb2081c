//! The answer index: every name the cluster puts in DNS, with its record sets prebuilt.
//!
//! Readers (the query path) do one hash lookup in a sharded map and clone an `Arc`; they never
//! wait on a writer for longer than one map insert. Writers go through [`Index::apply`], which
//! recomputes only the owners (a Service, a Pod, a Namespace) that changed and republishes only
//! the names those owners touch, so one endpoint changing in a cluster of 10,000 Services costs
//! the names of one Service.

use std::collections::{BTreeMap, HashMap};
use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};

use arc_swap::ArcSwap;
use dashmap::DashMap;

/// The index's maps hash with foldhash: SipHash was a tenth of building the index, and the
/// names map is hashed on every query. Keys come from the cluster (and queries only look up),
/// and foldhash still seeds each map at random.
type Hasher = foldhash::fast::RandomState;
type Map<K, V> = HashMap<K, V, Hasher>;
type SharedMap<K, V> = DashMap<K, V, Hasher>;
use hickory_proto::rr::rdata::NS;
use hickory_proto::rr::{LowerName, Name, RData, Record, RecordType};
use hickory_proto::serialize::binary::{BinDecodable, BinDecoder};

use crate::dns::name::{self, WireName};
use crate::dns::wire::RecordSet;
use crate::dns::wire::{self, Builder, Data, NameKey, Prepared, This};

mod exposed;
mod node;
mod writer;
mod zone;

use crate::cluster::change::diff;
use crate::cluster::change::{Change, Kind, Snapshot};
pub use exposed::Exposed;
use exposed::*;
use node::*;
pub use node::{Answer, Node};
use writer::*;
pub use zone::Zone;
use zone::*;

use super::records::{self, Owner, Part, RecordOptions, Zones};
use super::slim::{External, Key, Ports, ServiceKind, SlimService, SlimSlice};

/// Changed objects of a relist applied together.
const RELIST_BATCH: usize = 1024;

/// What a relist of one kind has listed so far ([`Index::relist_object`]).
#[derive(Default)]
pub struct Relist {
    namespaces: std::collections::BTreeSet<Arc<str>>,
    objects: std::collections::BTreeSet<Key>,
    /// Changed objects not applied yet.
    pending: Vec<Change>,
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

#[derive(Clone, Debug, PartialEq)]
pub struct IndexOptions {
    pub zones: Vec<Name>,
    /// Those of `zones` that answer ServiceImports' names (`multicluster`).
    pub multicluster: Vec<Name>,
    pub ttl: u32,
    pub records: RecordOptions,
}

/// A name as the index keys it: wire form, lower case.
type NameBytes = Box<[u8]>;

pub struct Index {
    /// Every name, found by its wire form (see [`Node`]'s `Borrow`).
    names: SharedMap<Node, ()>,
    zones: Vec<Zone>,
    ttl: u32,
    writer: Mutex<Writer>,
    /// Moves on after every published change: what a cache keeps from an earlier generation
    /// may be out of date.
    generation: AtomicU64,
    /// The pods (under `pods verified`) by IP, for `autopath` to find a client's namespace.
    pods_by_ip: Arc<SharedMap<IpAddr, Vec<Key>>>,
    /// What `k8s_external` reads.
    exposed: Arc<ExposedServices>,
}

impl Index {
    pub fn new(opts: IndexOptions) -> Self {
        let zones = Zones::new(&opts.zones, &opts.multicluster);
        let mut zone_list = Vec::new();
        for (name, reverse) in zones
            .forward
            .iter()
            .chain(&zones.multicluster)
            .map(|z| (z, false))
            .chain(zones.reverse.iter().map(|z| (z, true)))
        {
            let ns_name = name::join(&["ns", "dns"], name).unwrap_or_else(|| name.clone());
            zone_list.push(Zone {
                name: LowerName::new(name),
                key: NameKey::new(name).as_bytes().into(),
                reverse,
                multicluster: zones.multicluster.contains(name),
                soa: ArcSwap::from_pointee(soa_record(name, opts.ttl, 0)),
                ns: Arc::from(vec![Record::from_rdata(
                    name.clone(),
                    opts.ttl,
                    RData::NS(NS(ns_name.clone())),
                )]),
                ns_this: This::Name(NameKey::new(&ns_name).as_bytes().into()),
                ns_name: LowerName::new(&ns_name),
            });
        }
        let pods_by_ip = Arc::new(SharedMap::default());
        let exposed = Arc::new(ExposedServices::default());
        let index = Self {
            pods_by_ip: pods_by_ip.clone(),
            exposed: exposed.clone(),
            names: SharedMap::default(),
            zones: zone_list,
            ttl: opts.ttl,
            generation: AtomicU64::new(0),
            writer: Mutex::new(Writer {
                zones,
                opts: opts.records,
                ttl: opts.ttl,
                serial: 0,
                state: Snapshot::default(),
                slices_by_service: Map::default(),
                slices_by_import: Map::default(),
                shared: Map::default(),
                ents: Map::default(),
                pods_by_ip,
                exposed,
                spaces: Interned::default(),
                port_lists: Interned::default(),
            }),
        };
        {
            let mut w = index.lock_writer();
            let before = BTreeMap::from([(Owner::Static, Vec::new())]);
            w.update(&index.names, before);
        }
        index
    }

    /// The pod with this IP (the first listed, if pods share it), when pods are watched
    /// (`pods verified`).
    pub fn pod_of(&self, ip: IpAddr) -> Option<Key> {
        self.pods_by_ip
            .get(&ip)
            .and_then(|keys| keys.first().cloned())
    }

    /// The namespace of the pod with this IP (the first listed, if pods share it), when pods are
    /// watched (`pods verified`).
    pub fn pod_namespace(&self, ip: IpAddr) -> Option<Arc<str>> {
        self.pods_by_ip
            .get(&ip)
            .and_then(|keys| keys.first().map(|k| k.namespace.clone()))
    }

    /// What `k8s_external` knows of the Service `name` in `namespace`: present when it has
    /// external addresses or is headless.
    /// Every Service `k8s_external` may answer for, by `name.namespace` (a zone transfer).
    pub fn exposed_all(&self) -> Vec<(Box<str>, Arc<Exposed>)> {
        self.exposed
            .services
            .iter()
            .map(|e| (e.key().clone(), e.value().clone()))
            .collect()
    }

    pub fn exposed(&self, namespace: &str, name: &str) -> Option<Arc<Exposed>> {
        let key = ExposedServices::key(name, namespace);
        self.exposed.services.get(&key).map(|e| e.value().clone())
    }

    /// The Services with `ip` among their external addresses, sorted.
    pub fn external_owners(&self, ip: IpAddr) -> Vec<Key> {
        self.exposed
            .by_ip
            .get(&ip)
            .map(|k| k.value().clone())
            .unwrap_or_default()
    }

    /// Whether the namespace is in DNS: `NS.svc.ZONE` exists in the first forward zone.
    pub fn namespace_exists(&self, namespace: &str) -> bool {
        let Some(zone) = self.zones.iter().find(|z| !z.reverse && !z.multicluster) else {
            return false;
        };
        name::join(&[namespace, "svc"], &Name::from(&zone.name))
            .is_some_and(|n| self.get(&LowerName::new(&n)).is_some())
    }

    /// The serial the zones' SOA records carry now.
    pub fn serial(&self) -> u32 {
        let Some(zone) = self.zones.first() else {
            return 0;
        };
        match zone.soa().first().map(|r| &r.data) {
            Some(RData::SOA(soa)) => soa.serial,
            _ => 0,
        }
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

    pub fn get(&self, name: &LowerName) -> Option<Node> {
        self.get_key(NameKey::new(name).as_bytes())
    }

    /// The node of a name given in lower-case wire form.
    pub fn get_key(&self, key: &[u8]) -> Option<Node> {
        self.names.get(key).map(|n| n.key().clone())
    }

    /// The zone a lower-case wire name falls in (the most specific one), given where its
    /// labels start.
    pub fn zone_of_key(&self, name: WireName<'_>) -> Option<&Zone> {
        self.zones
            .iter()
            .filter(|z| name.is_in(&z.key))
            .max_by_key(|z| z.key.len())
    }

    pub fn ttl(&self) -> u32 {
        self.ttl
    }

    /// Changes each time the index's answers may have changed.
    pub fn generation(&self) -> u64 {
        self.generation.load(Ordering::Acquire)
    }

    /// Every record of every name, in no particular order (additional records left out): the
    /// zone as a file would hold it, for comparing with another server on the same data.
    pub fn records(&self) -> Vec<Record> {
        let mut out = Vec::new();
        for entry in self.names.iter() {
            let node = entry.key();
            let Ok(name) = Name::read(&mut BinDecoder::new(node.name())) else {
                continue;
            };
            for set in node.all(&This::Question) {
                out.extend(set.records.records(&name).unwrap_or_default());
            }
        }
        out
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
        let mut applied = Applied::default();
        let mut before = BTreeMap::new();
        let mut flush = |w: &mut Writer, before: &mut BTreeMap<Owner, Names>| {
            applied.owners += before.len();
            let (names, changed) = w.update(&self.names, std::mem::take(before));
            applied.names += names;
            applied.changed |= changed;
            if changed {
                // After the names are in: a reader that saw the old generation may have
                // read old names, never the other way round.
                self.generation.fetch_add(1, Ordering::Release);
            }
        };
        for change in changes {
            w.record_change(change, &mut before);
            // A relist is published a slice of owners at a time, so that what is computed
            // for it is never the whole cluster's worth at once.
            if before.len() >= OWNERS_PER_UPDATE {
                flush(&mut w, &mut before);
            }
        }
        flush(&mut w, &mut before);
        if applied.changed {
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
            diff(&w.state, snap)
        };
        let applied = self.apply(changes);
        self.lock_writer().state.repack(None);
        applied
    }

    /// Ends a first list of `kind` whose objects were applied as they came ([`Index::apply`]),
    /// `rest` being the last of them: the kind's map was filled in key order, so it is packed
    /// as a relist's is.
    pub fn finish_first_list(&self, kind: Kind, rest: Vec<Change>) -> Applied {
        let applied = self.apply(rest);
        self.lock_writer().state.repack(Some(kind));
        applied
    }

    /// One object of a relist of `kind` (after 410 Gone, or a first list that failed midway):
    /// remembered as listed, and applied (a batch at a time) where it differs from what is
    /// held. Nothing is taken away before the list is over ([`Index::finish_relist`]), so a
    /// reader never sees a half-empty cluster; an unchanged object costs a comparison; and the
    /// relist holds the names it listed, not the objects, whose copies doubled the memory of a
    /// large cluster while it ran.
    pub fn relist_object(&self, relist: &mut Relist, change: Change) {
        let differs = {
            let w = self.lock_writer();
            let s = &w.state;
            match &change {
                Change::Namespace {
                    name,
                    present: true,
                } => {
                    relist.namespaces.insert(name.clone());
                    !s.namespaces.contains(name)
                }
                Change::Service(k, Some(v)) => {
                    relist.objects.insert(k.clone());
                    s.services.get(k) != Some(v)
                }
                Change::Slice(k, Some(v)) => {
                    relist.objects.insert(k.clone());
                    s.slices.get(k) != Some(v)
                }
                Change::Pod(k, Some(v)) => {
                    relist.objects.insert(k.clone());
                    s.pods.get(k) != Some(v)
                }
                Change::Import(k, Some(v)) => {
                    relist.objects.insert(k.clone());
                    s.imports.get(k) != Some(v)
                }
                // Listed but not wanted (the filters): as if not listed, gone at the end.
                _ => false,
            }
        };
        if differs {
            relist.pending.push(change);
            if relist.pending.len() >= RELIST_BATCH {
                self.apply(relist.pending.drain(..));
            }
        }
    }

    /// The relist of `kind` is over: what it changed is in, and what it did not list goes.
    pub fn finish_relist(&self, kind: Kind, mut relist: Relist) -> Applied {
        let mut changes = std::mem::take(&mut relist.pending);
        {
            let w = self.lock_writer();
            let s = &w.state;
            let unseen = |k: &Key| !relist.objects.contains(k);
            match kind {
                Kind::Namespace => changes.extend(
                    s.namespaces
                        .iter()
                        .filter(|ns| !relist.namespaces.contains(*ns))
                        .map(|ns| Change::Namespace {
                            name: ns.clone(),
                            present: false,
                        }),
                ),
                Kind::Service => changes.extend(
                    s.services
                        .keys()
                        .filter(|k| unseen(k))
                        .map(|k| Change::Service(k.clone(), None)),
                ),
                Kind::Slice => changes.extend(
                    s.slices
                        .keys()
                        .filter(|k| unseen(k))
                        .map(|k| Change::Slice(k.clone(), None)),
                ),
                Kind::Pod => changes.extend(
                    s.pods
                        .keys()
                        .filter(|k| unseen(k))
                        .map(|k| Change::Pod(k.clone(), None)),
                ),
                Kind::Import => changes.extend(
                    s.imports
                        .keys()
                        .filter(|k| unseen(k))
                        .map(|k| Change::Import(k.clone(), None)),
                ),
            }
        }
        let applied = self.apply(changes);
        self.lock_writer().state.repack(Some(kind));
        applied
    }

    /// How many objects of `kind` the index holds.
    pub fn count(&self, kind: Kind) -> usize {
        let w = self.lock_writer();
        match kind {
            Kind::Namespace => w.state.namespaces.len(),
            Kind::Service => w.state.services.len(),
            Kind::Slice => w.state.slices.len(),
            Kind::Pod => w.state.pods.len(),
            Kind::Import => w.state.imports.len(),
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
        crate::sync::lock(&self.writer)
    }
}

#[cfg(test)]
mod tests;
