//! The contract between the cluster's sources and its index: a source hands the index a whole
//! [`Snapshot`] or single [`Change`]s, each of one [`Kind`]. A leaf of `cluster`: the sources
//! (`source`) and the index (`index`) both import it, and neither imports the other for it.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use crate::cluster::slim::{Key, SlimImport, SlimPod, SlimService, SlimSlice};

/// A whole cluster as a source last saw it.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Snapshot {
    pub namespaces: BTreeSet<Arc<str>>,
    pub services: BTreeMap<Key, SlimService>,
    pub slices: BTreeMap<Key, SlimSlice>,
    pub pods: BTreeMap<Key, SlimPod>,
    /// ServiceImports (the MCS API), read only where `multicluster` names a zone.
    pub imports: BTreeMap<Key, SlimImport>,
}

impl Snapshot {
    /// Rebuilds the maps with full B-tree nodes. Objects arrive in key order (a list is sorted),
    /// and a B-tree filled in order splits each node in half and never fills it again: after a
    /// full list the maps took about twice the room their entries need. A bulk build packs
    /// them; it moves each entry once, which a full list's cost already covers. `None` packs
    /// every kind (after a whole snapshot), `Some` the one a relist listed.
    pub(crate) fn repack(&mut self, kind: Option<Kind>) {
        fn packed<K: Ord, V>(map: &mut BTreeMap<K, V>) {
            *map = std::mem::take(map).into_iter().collect();
        }
        let this = |k: Kind| kind.is_none_or(|only| only == k);
        if this(Kind::Service) {
            packed(&mut self.services);
        }
        if this(Kind::Slice) {
            packed(&mut self.slices);
        }
        if this(Kind::Pod) {
            packed(&mut self.pods);
        }
        if this(Kind::Import) {
            packed(&mut self.imports);
        }
        if this(Kind::Namespace) {
            let namespaces = std::mem::take(&mut self.namespaces);
            self.namespaces = namespaces.into_iter().collect();
        }
    }
}

/// One change to the cluster.
#[derive(Clone, Debug)]
pub enum Change {
    /// A namespace came (`present`) or went.
    Namespace {
        name: Arc<str>,
        present: bool,
    },
    Service(Key, Option<SlimService>),
    Slice(Key, Option<SlimSlice>),
    Pod(Key, Option<SlimPod>),
    Import(Key, Option<SlimImport>),
}

/// The kinds of object a source feeds the index.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Kind {
    Namespace,
    Service,
    Slice,
    Pod,
    /// ServiceImports.
    Import,
}

impl Kind {
    pub const ALL: [Kind; 5] = [
        Kind::Namespace,
        Kind::Service,
        Kind::Slice,
        Kind::Pod,
        Kind::Import,
    ];

    /// The API's plural name, as metrics and logs use it.
    pub fn plural(self) -> &'static str {
        match self {
            Kind::Namespace => "namespaces",
            Kind::Service => "services",
            Kind::Slice => "endpointslices",
            Kind::Pod => "pods",
            Kind::Import => "serviceimports",
        }
    }
}

impl Change {
    pub fn kind(&self) -> Kind {
        match self {
            Change::Namespace { .. } => Kind::Namespace,
            Change::Service(..) => Kind::Service,
            Change::Slice(..) => Kind::Slice,
            Change::Pod(..) => Kind::Pod,
            Change::Import(..) => Kind::Import,
        }
    }
}

/// The changes that turn `old` into `new`.
pub(crate) fn diff(old: &Snapshot, new: Snapshot) -> Vec<Change> {
    let mut changes = Vec::new();
    diff_namespaces(&old.namespaces, &new.namespaces, &mut changes);
    diff_map(&old.services, new.services, &mut changes, Change::Service);
    diff_map(&old.slices, new.slices, &mut changes, Change::Slice);
    diff_map(&old.pods, new.pods, &mut changes, Change::Pod);
    diff_map(&old.imports, new.imports, &mut changes, Change::Import);
    changes
}

/// The namespaces that went from `old` and came in `new`, as changes.
pub(crate) fn diff_namespaces(
    old: &BTreeSet<Arc<str>>,
    new: &BTreeSet<Arc<str>>,
    out: &mut Vec<Change>,
) {
    for (from, to, present) in [(old, new, false), (new, old, true)] {
        for ns in from.difference(to) {
            out.push(Change::Namespace {
                name: ns.clone(),
                present,
            });
        }
    }
}

/// The changes that turn `old` into `new`, moving what `new` holds rather than copying it.
pub(crate) fn diff_map<T: PartialEq>(
    old: &BTreeMap<Key, T>,
    new: BTreeMap<Key, T>,
    out: &mut Vec<Change>,
    make: fn(Key, Option<T>) -> Change,
) {
    for k in old.keys() {
        if !new.contains_key(k) {
            out.push(make(k.clone(), None));
        }
    }
    for (k, v) in new {
        if old.get(&k) != Some(&v) {
            out.push(make(k, Some(v)));
        }
    }
}
