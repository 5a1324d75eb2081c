//! The index's writer: the cluster as last seen, and the owners behind every name.

use super::*;

/// The writer's side: the slim objects, and what it needs to merge names several owners share.
///
/// What an owner contributed is not stored: it is a pure function of the objects, so the
/// writer computes it again from the objects just before they change. Parts are stored only
/// for the few names with records from more than one owner (an IP two Services' endpoints
/// share, say); a name with one owner records that owner in its node.
pub(super) struct Writer {
    pub(super) zones: Zones,
    pub(super) opts: RecordOptions,
    pub(super) ttl: u32,
    pub(super) serial: u32,
    pub(super) state: Snapshot,
    /// The slices of each Service: `namespace/service` → slice names.
    /// Sorted; a Service has a slice or a few, for which a B-tree node (room for 11) is
    /// too big.
    pub(super) slices_by_service: Map<Key, Vec<Arc<str>>>,
    /// The slices of each ServiceImport (label `multicluster.kubernetes.io/service-name`),
    /// likewise.
    pub(super) slices_by_import: Map<Key, Vec<Arc<str>>>,
    /// The parts of names that more than one owner gives records, in owner order.
    pub(super) shared: Map<NameBytes, Vec<(Owner, Part)>>,
    /// How many owners make each name exist without records (empty non-terminals).
    pub(super) ents: Map<NameBytes, u32>,
    pub(super) pods_by_ip: Arc<SharedMap<IpAddr, Vec<Key>>>,
    pub(super) exposed: Arc<ExposedServices>,
    /// One copy of each namespace's name, which every object in it holds.
    pub(super) spaces: Interned<str>,
    /// One copy of each port list.
    pub(super) port_lists: Interned<[crate::cluster::slim::SlimPort]>,
}

/// One shared copy of each value many objects repeat. What nothing else holds any more is
/// swept out whenever the table has doubled since the last sweep, so values that churned
/// away do not stay.
pub(super) struct Interned<T: ?Sized> {
    pub(super) set: std::collections::HashSet<Arc<T>, Hasher>,
    pub(super) sweep_at: usize,
}

impl<T: ?Sized> Default for Interned<T> {
    fn default() -> Self {
        Self {
            set: Default::default(),
            sweep_at: 64,
        }
    }
}

impl<T: ?Sized + Eq + std::hash::Hash> Interned<T> {
    /// The shared copy of `value` (`value` itself, the first time).
    pub(super) fn get(&mut self, value: Arc<T>) -> Arc<T> {
        if let Some(have) = self.set.get(&*value) {
            return have.clone();
        }
        if self.set.len() >= self.sweep_at {
            self.set.retain(|v| Arc::strong_count(v) > 1);
            self.sweep_at = (self.set.len() * 2).max(64);
        }
        self.set.insert(value.clone());
        value
    }
}

/// What an owner gives each of its names: whether it gives it records.
pub(super) type Names = Vec<(NameBytes, bool)>;

/// How many owners one update recomputes before it publishes them.
pub(super) const OWNERS_PER_UPDATE: usize = 256;

impl Writer {
    /// Stores a change, and adds to `before` the owners whose names must be recomputed, each
    /// with the names it had (computed just before the first change that concerns it).
    pub(super) fn record_change(&mut self, change: Change, before: &mut BTreeMap<Owner, Names>) {
        for owner in self.concerned(&change) {
            if let std::collections::btree_map::Entry::Vacant(e) = before.entry(owner) {
                let names = self.owner_names(e.key());
                e.insert(names);
            }
        }
        self.store(change);
    }

    /// The owners whose names `change` may change, given the objects as they are.
    pub(super) fn concerned(&self, change: &Change) -> Vec<Owner> {
        match change {
            Change::Namespace { name: ns, present } => {
                if self.state.namespaces.contains(ns) == *present {
                    return Vec::new();
                }
                // Everything in the namespace appears or disappears with it.
                let first = Key {
                    namespace: ns.clone(),
                    name: Arc::from(""),
                };
                let in_ns = |k: &&Key| k.namespace == *ns;
                let mut owners = vec![Owner::Namespace(ns.clone())];
                owners.extend(
                    self.state
                        .services
                        .range(first.clone()..)
                        .map(|e| e.0)
                        .take_while(in_ns)
                        .map(|k| Owner::Service(k.clone())),
                );
                owners.extend(
                    self.state
                        .pods
                        .range(first.clone()..)
                        .map(|e| e.0)
                        .take_while(in_ns)
                        .map(|k| Owner::Pod(k.clone())),
                );
                owners.extend(
                    self.state
                        .imports
                        .range(first..)
                        .map(|e| e.0)
                        .take_while(in_ns)
                        .map(|k| Owner::Import(k.clone())),
                );
                owners
            }
            Change::Service(key, _) => vec![Owner::Service(key.clone())],
            Change::Slice(key, slice) => {
                let mut owners = Vec::new();
                for s in self.state.slices.get(key).into_iter().chain(slice) {
                    if !s.service.is_empty() {
                        owners.push(Owner::Service(service_of(s)));
                    }
                    if let Some(import) = import_of(s) {
                        owners.push(Owner::Import(import));
                    }
                }
                owners
            }
            Change::Pod(key, _) => vec![Owner::Pod(key.clone())],
            Change::Import(key, _) => vec![Owner::Import(key.clone())],
        }
    }

    /// `key` holding the shared copy of its namespace.
    pub(super) fn share(&mut self, key: Key) -> Key {
        Key {
            namespace: self.spaces.get(key.namespace),
            name: key.name,
        }
    }

    pub(super) fn store(&mut self, change: Change) {
        match change {
            Change::Namespace {
                name: ns,
                present: true,
            } => {
                let ns = self.spaces.get(ns);
                self.state.namespaces.insert(ns);
            }
            Change::Namespace {
                name: ns,
                present: false,
            } => {
                self.state.namespaces.remove(&ns);
            }
            Change::Service(key, Some(mut svc)) => {
                let key = self.share(key);
                svc.key = self.share(svc.key);
                svc.ports = self.port_lists.get(svc.ports);
                self.exposed
                    .update(&key, self.state.services.get(&key), Some(&svc));
                self.state.services.insert(key, svc);
            }
            Change::Service(key, None) => {
                if let Some(old) = self.state.services.remove(&key) {
                    self.exposed.update(&key, Some(&old), None);
                }
            }
            Change::Slice(key, slice) => {
                if let Some(old) = self.state.slices.remove(&key) {
                    if !old.service.is_empty() {
                        unlist(&mut self.slices_by_service, service_of(&old), &key.name);
                    }
                    if let Some(import) = import_of(&old) {
                        unlist(&mut self.slices_by_import, import, &key.name);
                    }
                }
                if let Some(mut new) = slice {
                    let key = self.share(key);
                    new.key = self.share(new.key);
                    new.ports = new.ports.map(|p| self.port_lists.get(p));
                    if !new.service.is_empty() {
                        list(&mut self.slices_by_service, service_of(&new), &key.name);
                    }
                    if let Some(import) = import_of(&new) {
                        list(&mut self.slices_by_import, import, &key.name);
                    }
                    self.state.slices.insert(key, new);
                }
            }
            Change::Import(key, Some(mut imp)) => {
                let key = self.share(key);
                imp.key = self.share(imp.key);
                imp.ports = self.port_lists.get(imp.ports);
                self.state.imports.insert(key, imp);
            }
            Change::Import(key, None) => {
                self.state.imports.remove(&key);
            }
            Change::Pod(key, Some(mut pod)) => {
                let key = self.share(key);
                pod.key = self.share(pod.key);
                for ip in &pod.ips {
                    self.pods_by_ip.entry(*ip).or_default().push(key.clone());
                }
                if let Some(old) = self.state.pods.insert(key.clone(), pod) {
                    self.forget_pod_ips(&key, &old.ips);
                }
            }
            Change::Pod(key, None) => {
                if let Some(old) = self.state.pods.remove(&key) {
                    self.forget_pod_ips(&key, &old.ips);
                }
            }
        }
    }

    /// Takes one listing of `key` out of the pods-by-IP map for each of `ips` (a pod that was
    /// just listed again under an IP it keeps is there twice until then).
    pub(super) fn forget_pod_ips(&self, key: &Key, ips: &[IpAddr]) {
        for ip in ips {
            let empty = match self.pods_by_ip.get_mut(ip) {
                Some(mut keys) => {
                    if let Some(i) = keys.iter().position(|k| k == key) {
                        keys.remove(i);
                    }
                    keys.is_empty()
                }
                None => false,
            };
            if empty {
                self.pods_by_ip.remove_if(ip, |_, keys| keys.is_empty());
            }
        }
    }

    /// The slices `by_owner` lists for `key` (a Service's, or a ServiceImport's).
    fn slices_in(&self, by_owner: &Map<Key, Vec<Arc<str>>>, key: &Key) -> Vec<&SlimSlice> {
        by_owner
            .get(key)
            .into_iter()
            .flatten()
            .filter_map(|name| {
                self.state.slices.get(&Key {
                    namespace: key.namespace.clone(),
                    name: name.clone(),
                })
            })
            .collect()
    }

    /// What `owner` contributes now.
    pub(super) fn owner_parts(&self, owner: &Owner) -> Vec<(NameBytes, Part)> {
        let ns_exists = |ns: &Arc<str>| self.state.namespaces.contains(ns);
        let parts = match owner {
            Owner::Static => records::static_parts(&self.zones),
            Owner::Namespace(ns) if ns_exists(ns) => {
                records::namespace_parts(ns, &self.zones, &self.opts)
            }
            Owner::Service(key) if ns_exists(&key.namespace) => {
                match self.state.services.get(key) {
                    Some(svc) => {
                        let slices = self.slices_in(&self.slices_by_service, key);
                        records::service_parts(svc, &slices, &self.zones, &self.opts)
                    }
                    None => Vec::new(),
                }
            }
            Owner::Import(key) if ns_exists(&key.namespace) => match self.state.imports.get(key) {
                Some(imp) => {
                    let slices = self.slices_in(&self.slices_by_import, key);
                    records::import_parts(imp, &slices, &self.zones, &self.opts)
                }
                None => Vec::new(),
            },
            Owner::Pod(key) if ns_exists(&key.namespace) => match self.state.pods.get(key) {
                Some(pod) => records::pod_parts(pod, &self.zones, &self.opts),
                None => Vec::new(),
            },
            _ => Vec::new(),
        };
        parts
            .into_iter()
            .map(|(name, part)| (Box::from(NameKey::new(&name).as_bytes()), part))
            .collect()
    }

    pub(super) fn owner_names(&self, owner: &Owner) -> Names {
        let parts = self.owner_parts(owner);
        // Built afresh: collecting in place would keep the parts' (much larger) allocation.
        let mut names = Vec::with_capacity(parts.len());
        names.extend(
            parts
                .into_iter()
                .map(|(name, part)| (name, !part.is_empty())),
        );
        names
    }

    /// Recomputes the names of the owners in `before` (which held those names) from the
    /// objects as they are now, and publishes them, one owner at a time so that a relist of
    /// a whole cluster never holds every name's parts at once. Returns how many names were
    /// rebuilt and whether any answer changed.
    ///
    /// A contribution without records (an empty non-terminal such as `NS.svc.ZONE` or
    /// `10.in-addr.arpa`, which thousands of owners share) is only counted: it touches the name
    /// when the count goes from or to zero, so a change to one Service never rebuilds names
    /// that every Service shares.
    pub(super) fn update(
        &mut self,
        map: &SharedMap<Node, ()>,
        before: BTreeMap<Owner, Names>,
    ) -> (usize, bool) {
        // A name's only owner is not stored with its parts: they are computed (once per owner
        // and update) when another owner's change touches that name.
        let mut others: Map<Owner, Map<NameBytes, Part>> = Map::default();
        let mut changed = false;
        let mut count = 0;
        for (owner, names) in &before {
            // Per name touched: the records this owner gives it now.
            let mut touched: Map<NameBytes, Option<Part>> = Map::default();
            for (name, records) in names {
                if *records {
                    touched.entry(name.clone()).or_default();
                } else if let Some(n) = self.ents.get_mut(name) {
                    *n -= 1;
                    if *n == 0 {
                        self.ents.remove(name);
                        touched.entry(name.clone()).or_default();
                    }
                }
            }
            for (name, part) in self.owner_parts(owner) {
                if part.is_empty() {
                    let n = self.ents.entry(name.clone()).or_insert(0);
                    *n += 1;
                    if *n == 1 {
                        touched.entry(name).or_default();
                    }
                } else {
                    touched.insert(name, Some(part));
                }
            }
            count += touched.len();
            for (name, mine) in touched {
                let mut parts: Vec<(Owner, Part)> =
                    mine.map(|p| (owner.clone(), p)).into_iter().collect();
                // The other owners of the name keep their records, except those this update
                // has yet to recompute: they bring theirs when their turn comes.
                let kept: Vec<(Owner, Option<Part>)> = match self.shared.remove(&name) {
                    Some(list) => list.into_iter().map(|(o, p)| (o, Some(p))).collect(),
                    // Most names have this owner alone: that is seen without decoding it.
                    None => match map.get(&name[..]) {
                        Some(n) if !n.key().owned_by(owner) => {
                            n.key().owner().map(|o| vec![(o, None)]).unwrap_or_default()
                        }
                        _ => Vec::new(),
                    },
                };
                for (other, part) in kept {
                    if other == *owner || (other > *owner && before.contains_key(&other)) {
                        continue;
                    }
                    let part = part.or_else(|| {
                        others
                            .entry(other.clone())
                            .or_insert_with(|| self.owner_parts(&other).into_iter().collect())
                            .get(&name)
                            .cloned()
                    });
                    if let Some(part) = part {
                        parts.push((other, part));
                    }
                }
                parts.sort_by(|a, b| a.0.cmp(&b.0));
                changed |= self.publish(map, name, parts);
            }
        }
        (count, changed)
    }

    /// Publishes the answers of `name` from its parts; returns whether anything changed.
    pub(super) fn publish(
        &mut self,
        map: &SharedMap<Node, ()>,
        name: NameBytes,
        parts: Vec<(Owner, Part)>,
    ) -> bool {
        if !parts.is_empty() {
            let owner = match parts.as_slice() {
                [(only, _)] => Some(only),
                _ => None,
            };
            let node = build_node(&name, &parts, self.ttl, owner);
            if parts.len() > 1 {
                self.shared.insert(name.clone(), parts);
            }
            replace(map, node);
            true
        } else if self.ents.contains_key(&name) {
            if map.get(&name[..]).is_some_and(|n| !n.key().has_records()) {
                return false;
            }
            replace(map, Node::empty(&name));
            true
        } else {
            map.remove(&name[..]).is_some()
        }
    }
}

/// Publishes `node` in place of what its name had: readers see the old node or the new one,
/// never neither.
pub(super) fn replace(map: &SharedMap<Node, ()>, node: Node) {
    match map.entry(node) {
        dashmap::Entry::Occupied(e) => {
            e.replace_entry(());
        }
        dashmap::Entry::Vacant(e) => {
            e.insert(());
        }
    }
}

pub(super) fn service_of(slice: &SlimSlice) -> Key {
    Key {
        namespace: slice.key.namespace.clone(),
        name: slice.service.clone(),
    }
}

/// The ServiceImport a slice is labelled with, if any.
pub(super) fn import_of(slice: &SlimSlice) -> Option<Key> {
    slice.import.as_ref().map(|l| Key {
        namespace: slice.key.namespace.clone(),
        name: l.service.clone(),
    })
}

/// Adds the slice `name` to `owner`'s sorted list.
fn list(map: &mut Map<Key, Vec<Arc<str>>>, owner: Key, name: &Arc<str>) {
    let names = map.entry(owner).or_default();
    if let Err(i) = names.binary_search(name) {
        names.insert(i, name.clone());
    }
}

/// Takes the slice `name` out of `owner`'s list, and the list out when it empties.
fn unlist(map: &mut Map<Key, Vec<Arc<str>>>, owner: Key, name: &Arc<str>) {
    if let Some(names) = map.get_mut(&owner) {
        if let Ok(i) = names.binary_search(name) {
            names.remove(i);
        }
        if names.is_empty() {
            map.remove(&owner);
        }
    }
}
