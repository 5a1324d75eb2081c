//! The answer index: every name the cluster puts in DNS, with its record sets prebuilt.
//!
//! Readers (the query path) do one hash lookup in a sharded map and clone an `Arc`; they never
//! wait on a writer for longer than one map insert. Writers go through [`Index::apply`], which
//! recomputes only the owners (a Service, a Pod, a Namespace) that changed and republishes only
//! the names those owners touch, so one endpoint changing in a cluster of 10,000 Services costs
//! the names of one Service.

use std::collections::{BTreeMap, BTreeSet, HashMap};
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
use hickory_proto::rr::rdata::{NS, SOA};
use hickory_proto::rr::{LowerName, Name, RData, Record, RecordType};
use hickory_proto::serialize::binary::{BinDecodable, BinDecoder};

use crate::dns::name;
use crate::dns::wire::RecordSet;
use crate::dns::wire::{self, Builder, Data, NameKey, Prepared, This};

use super::records::{self, Owner, Part, RecordOptions, Zones};
use super::slim::{External, Key, Ports, ServiceKind, SlimPod, SlimService, SlimSlice};

/// What one name answers: its record sets, prepared in wire form when the data changed, all in
/// one shared allocation (a cluster has hundreds of thousands of names). Cloning it is cloning
/// an `Arc`.
///
/// Layout: the name (its length, then its lower-case wire form, which is how the index finds
/// the node: the map has no keys of its own); the number of sets, its top bit set when the
/// node is narrow (see [`NARROW`]); when there are sets, the TTL of every record; per set its
/// type, record and additional counts, and where its additionals and its end lie; the owner
/// (see [`encode_owner`]); then the records of each set followed by its additionals, compact,
/// as [`wire::Builder::for_name`] writes them.
#[derive(Clone, Debug)]
pub struct Node(Arc<[u8]>);

/// Bytes per set in a node's header: type, counts, the offsets of its additionals and end.
/// A node of under 64 KiB whose sets hold at most 255 records each (nearly every node) is
/// narrow: one-byte counts and two-byte offsets. The others are wide: two and four.
const SET_INFO_NARROW: usize = 8;
const SET_INFO_WIDE: usize = 14;

/// The flag, in a node's count of sets, of the narrow header.
const NARROW: u8 = 0x80;

impl std::borrow::Borrow<[u8]> for Node {
    fn borrow(&self) -> &[u8] {
        self.name()
    }
}

impl std::hash::Hash for Node {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        // As `[u8]` hashes, so that a lookup by name finds the node.
        self.name().hash(state)
    }
}

impl PartialEq for Node {
    fn eq(&self, other: &Self) -> bool {
        self.name() == other.name()
    }
}

impl Eq for Node {}

/// One record set of a name, ready for a reply.
pub struct Answer {
    pub records: Prepared,
    /// What goes in the additional section with these records (SRV targets' addresses).
    pub additionals: Option<Prepared>,
}

/// One set's place in a node.
struct SetInfo {
    rtype: RecordType,
    count: u16,
    extra: u16,
    start: u32,
    mid: u32,
    end: u32,
}

impl Node {
    fn u16_at(&self, at: usize) -> u16 {
        u16::from_be_bytes([self.0[at], self.0[at + 1]])
    }

    fn u32_at(&self, at: usize) -> u32 {
        u32::from_be_bytes([self.0[at], self.0[at + 1], self.0[at + 2], self.0[at + 3]])
    }

    /// The name, lower case, in wire form.
    pub fn name(&self) -> &[u8] {
        &self.0[1..self.base()]
    }

    /// Where the number of sets is.
    fn base(&self) -> usize {
        1 + usize::from(self.0[0])
    }

    /// The number of sets.
    fn set_count(&self) -> usize {
        usize::from(self.0[self.base()] & !NARROW)
    }

    fn narrow(&self) -> bool {
        self.0[self.base()] & NARROW != 0
    }

    /// The TTL of every record (0 for a node without any).
    fn ttl(&self) -> u32 {
        if self.set_count() > 0 {
            self.u32_at(self.base() + 1)
        } else {
            0
        }
    }

    /// Where the set headers start: after the count, and the TTL when there are sets.
    fn infos_at(&self) -> usize {
        self.base() + 1 + if self.set_count() > 0 { 4 } else { 0 }
    }

    fn sets(&self) -> impl Iterator<Item = SetInfo> + '_ {
        let n = self.set_count();
        let narrow = self.narrow();
        let info = if narrow {
            SET_INFO_NARROW
        } else {
            SET_INFO_WIDE
        };
        let infos = self.infos_at();
        let mut start = (infos + n * info + self.owner_len()) as u32;
        (0..n).map(move |i| {
            let at = infos + i * info;
            let rtype = RecordType::from(self.u16_at(at));
            let set = if narrow {
                SetInfo {
                    rtype,
                    count: u16::from(self.0[at + 2]),
                    extra: u16::from(self.0[at + 3]),
                    start,
                    mid: u32::from(self.u16_at(at + 4)),
                    end: u32::from(self.u16_at(at + 6)),
                }
            } else {
                SetInfo {
                    rtype,
                    count: self.u16_at(at + 2),
                    extra: self.u16_at(at + 4),
                    start,
                    mid: self.u32_at(at + 6),
                    end: self.u32_at(at + 10),
                }
            };
            start = set.end;
            set
        })
    }

    fn owner_bytes(&self) -> &[u8] {
        let at = self.owner_at();
        &self.0[at..at + self.owner_len()]
    }

    fn owner_at(&self) -> usize {
        let info = if self.narrow() {
            SET_INFO_NARROW
        } else {
            SET_INFO_WIDE
        };
        self.infos_at() + self.set_count() * info
    }

    fn owner_len(&self) -> usize {
        encoded_owner_len(&self.0[self.owner_at()..])
    }

    /// The `rtype` records, their owner written as `this`.
    pub fn get(&self, rtype: RecordType, this: &This) -> Option<Answer> {
        let set = self.sets().find(|s| s.rtype == rtype)?;
        Some(self.answer(&set, this))
    }

    /// Every record set, its owner written as `this`.
    pub fn all(&self, this: &This) -> Vec<Answer> {
        self.sets().map(|set| self.answer(&set, this)).collect()
    }

    /// The first record set (what a minimal ANY answer carries).
    pub fn first(&self, this: &This) -> Option<Answer> {
        self.sets().next().map(|set| self.answer(&set, this))
    }

    pub fn has(&self, rtype: RecordType) -> bool {
        self.sets().any(|s| s.rtype == rtype)
    }

    pub fn has_records(&self) -> bool {
        self.set_count() > 0
    }

    /// Whether `self` and `other` are the very same published node.
    pub fn same(&self, other: &Node) -> bool {
        Arc::ptr_eq(&self.0, &other.0)
    }

    /// Where the name is an alias to (an ExternalName Service).
    pub fn cname(&self) -> Option<Name> {
        let set = self.sets().find(|s| s.rtype == RecordType::CNAME)?;
        let target = wire::compact_rdata(self.0.get(set.start as usize..set.mid as usize)?)?;
        Name::read(&mut BinDecoder::new(target)).ok()
    }

    fn answer(&self, set: &SetInfo, this: &This) -> Answer {
        let ttl = self.ttl();
        let run = |start, end, count| {
            Prepared::compact(self.0.clone(), start, end, count, this.clone(), ttl)
        };
        Answer {
            records: run(set.start, set.mid, set.count),
            additionals: (set.extra > 0).then(|| run(set.mid, set.end, set.extra)),
        }
    }

    /// `name` answering one address (an A or AAAA record), built on the spot.
    pub fn address(name: &[u8], ip: IpAddr, ttl: u32) -> Node {
        let mut b = NodeBuilder::new(name, ttl);
        b.set([data_of(ip)], Vec::new());
        b.finish(name, None)
    }

    /// `name`, which exists without records (an empty non-terminal).
    fn empty(name: &[u8]) -> Node {
        NodeBuilder::new(name, 0).finish(name, None)
    }
}

/// An owner as a node stores it: a tag, then what names the owner.
/// - 0: none; 1: the zones' static names.
/// - 2 a namespace, 3 a Service, 4 a Pod: then the namespace, and for the last two the name,
///   each as a length and bytes (both are DNS labels, so at most 63 bytes).
/// - 5: a Service whose name and namespace are labels `i` and `i + 1` of the node's own name;
///   6: the same, of the target of the node's first record (a PTR). Then `i`.
///
/// Nearly every name is a Service's and spells the Service in itself (`web.prod.svc.…`,
/// `_http._tcp.web.prod.svc.…`) or, for a PTR, in its target: two bytes instead of about
/// fifteen, on most of a cluster's hundreds of thousands of names.
fn encode_owner(owner: Option<&Owner>, name: &[u8], target: Option<&[u8]>) -> Vec<u8> {
    if let Some(Owner::Service(k)) = owner {
        let spelled = |wire: &[u8]| {
            let labels: Vec<&[u8]> = name::wire_labels(wire).collect();
            labels
                .windows(2)
                .position(|w| w[0] == k.name.as_bytes() && w[1] == k.namespace.as_bytes())
                .and_then(|i| u8::try_from(i).ok())
        };
        if let Some(i) = spelled(name) {
            return vec![5, i];
        }
        if let Some(i) = target.and_then(spelled) {
            return vec![6, i];
        }
    }
    let mut out = Vec::with_capacity(32);
    let (tag, ns, name) = match owner {
        None => (0, None, None),
        Some(Owner::Static) => (1, None, None),
        Some(Owner::Namespace(ns)) => (2, Some(ns), None),
        Some(Owner::Service(k)) => (3, Some(&k.namespace), Some(&k.name)),
        Some(Owner::Pod(k)) => (4, Some(&k.namespace), Some(&k.name)),
    };
    out.push(tag);
    for s in [ns, name].into_iter().flatten() {
        out.push(s.len().min(255) as u8);
        out.extend_from_slice(&s.as_bytes()[..s.len().min(255)]);
    }
    out
}

fn encoded_owner_len(bytes: &[u8]) -> usize {
    let labels = match bytes.first() {
        Some(2) => 1,
        Some(3 | 4) => 2,
        Some(5 | 6) => return 2.min(bytes.len()),
        _ => 0,
    };
    let mut at = 1;
    for _ in 0..labels {
        at += 1 + bytes.get(at).map_or(0, |&n| usize::from(n));
    }
    at.min(bytes.len())
}

/// An owner as a node spells it: its tag (1 static, 2 namespace, 3 Service, 4 Pod), the
/// namespace and the name.
type OwnerSpelled<'a> = (u8, Option<&'a [u8]>, Option<&'a [u8]>);

impl Node {
    /// The owner's parts as the node holds them, borrowed.
    fn owner_spelled(&self) -> Option<OwnerSpelled<'_>> {
        let bytes = self.owner_bytes();
        let label = |at: usize| -> Option<(&[u8], usize)> {
            let len = usize::from(*bytes.get(at)?);
            Some((bytes.get(at + 1..at + 1 + len)?, at + 1 + len))
        };
        fn pair(wire: &[u8], i: u8) -> Option<(&[u8], &[u8])> {
            let mut labels = name::wire_labels(wire).skip(usize::from(i));
            Some((labels.next()?, labels.next()?))
        }
        match *bytes.first()? {
            1 => Some((1, None, None)),
            2 => Some((2, Some(label(1)?.0), None)),
            tag @ (3 | 4) => {
                let (namespace, at) = label(1)?;
                Some((tag, Some(namespace), Some(label(at)?.0)))
            }
            5 => {
                let (name, namespace) = pair(self.name(), *bytes.get(1)?)?;
                Some((3, Some(namespace), Some(name)))
            }
            6 => {
                let (name, namespace) = pair(self.first_target()?, *bytes.get(1)?)?;
                Some((3, Some(namespace), Some(name)))
            }
            _ => None,
        }
    }

    /// The target of the first record, when it is a PTR.
    fn first_target(&self) -> Option<&[u8]> {
        let set = self.sets().next()?;
        (set.rtype == RecordType::PTR)
            .then(|| wire::compact_rdata(self.0.get(set.start as usize..set.mid as usize)?))
            .flatten()
    }

    /// The owner recorded in the node (a name with several owners records none).
    fn owner(&self) -> Option<Owner> {
        let text =
            |b: Option<&[u8]>| -> Option<Arc<str>> { std::str::from_utf8(b?).ok().map(Arc::from) };
        let (tag, namespace, name) = self.owner_spelled()?;
        match tag {
            1 => Some(Owner::Static),
            2 => Some(Owner::Namespace(text(namespace)?)),
            3 | 4 => {
                let key = Key {
                    namespace: text(namespace)?,
                    name: text(name)?,
                };
                Some(if tag == 3 {
                    Owner::Service(key)
                } else {
                    Owner::Pod(key)
                })
            }
            _ => None,
        }
    }

    /// Whether `owner` is the owner the node records, without building it.
    fn owned_by(&self, owner: &Owner) -> bool {
        let Some(spelled) = self.owner_spelled() else {
            return false;
        };
        fn b(s: &Arc<str>) -> Option<&[u8]> {
            Some(s.as_bytes())
        }
        let wanted: OwnerSpelled<'_> = match owner {
            Owner::Static => (1, None, None),
            Owner::Namespace(ns) => (2, b(ns), None),
            Owner::Service(k) => (3, b(&k.namespace), b(&k.name)),
            Owner::Pod(k) => (4, b(&k.namespace), b(&k.name)),
        };
        spelled == wanted
    }
}

fn data_of(ip: IpAddr) -> Data<'static> {
    match ip {
        IpAddr::V4(v4) => Data::A(v4),
        IpAddr::V6(v6) => Data::Aaaa(v6),
    }
}

/// Prepares the record sets of one name.
struct NodeBuilder {
    /// Type, counts, and where the additionals and the end lie in `data`.
    sets: Vec<(RecordType, u16, u16, u32, u32)>,
    data: Builder,
    ttl: u32,
}

impl NodeBuilder {
    /// A builder for the node of `name` (wire form, lower case), whose records have the TTL
    /// `ttl`.
    fn new(name: &[u8], ttl: u32) -> Self {
        Self {
            sets: Vec::new(),
            data: Builder::for_name(name, ttl),
            ttl,
        }
    }

    /// Adds a set (skipped when empty), its owner the name itself; `extra` owners are `None`
    /// for the name itself. A set holds at most 65,535 records, far more than a message can.
    fn set<'a>(
        &mut self,
        records: impl IntoIterator<Item = Data<'a>>,
        extra: Vec<(Option<&'a Name>, Data<'a>)>,
    ) {
        let limit = usize::from(u16::MAX);
        let mut rtype = None;
        let mut count = 0u16;
        for d in records.into_iter().take(limit) {
            rtype.get_or_insert(d.rtype());
            self.data.push(None, self.ttl, d);
            count += 1;
        }
        let Some(rtype) = rtype else {
            return;
        };
        let mid = self.data.mark();
        let extra_count = extra.len().min(limit) as u16;
        for (owner, d) in extra.into_iter().take(limit) {
            self.data.push(owner, self.ttl, d);
        }
        self.sets
            .push((rtype, count, extra_count, mid, self.data.mark()));
    }

    /// The node of `name` (wire form, lower case), recording `owner`.
    fn finish(self, name: &[u8], owner: Option<&Owner>) -> Node {
        let records = self.data.bytes();
        let name = &name[..name.len().min(255)];
        let target = match self.sets.first() {
            Some((RecordType::PTR, _, _, mid, _)) => {
                records.get(..*mid as usize).and_then(wire::compact_rdata)
            }
            _ => None,
        };
        let owner = encode_owner(owner, name, target);
        let ttl = if self.sets.is_empty() { 0 } else { 4 };
        let narrow_head =
            1 + name.len() + 1 + ttl + self.sets.len() * SET_INFO_NARROW + owner.len();
        let narrow = narrow_head + records.len() <= usize::from(u16::MAX)
            && self
                .sets
                .iter()
                .all(|(_, count, extra, ..)| *count <= 255 && *extra <= 255);
        let head = if narrow {
            narrow_head
        } else {
            1 + name.len() + 1 + ttl + self.sets.len() * SET_INFO_WIDE + owner.len()
        };
        let mut out = Vec::with_capacity(head + records.len());
        out.push(name.len() as u8);
        out.extend_from_slice(name);
        out.push(self.sets.len() as u8 | if narrow { NARROW } else { 0 });
        if !self.sets.is_empty() {
            out.extend_from_slice(&self.ttl.to_be_bytes());
        }
        for (rtype, count, extra, mid, end) in &self.sets {
            out.extend_from_slice(&u16::from(*rtype).to_be_bytes());
            let (mid, end) = (mid + head as u32, end + head as u32);
            if narrow {
                out.extend_from_slice(&[*count as u8, *extra as u8]);
                out.extend_from_slice(&(mid as u16).to_be_bytes());
                out.extend_from_slice(&(end as u16).to_be_bytes());
            } else {
                out.extend_from_slice(&count.to_be_bytes());
                out.extend_from_slice(&extra.to_be_bytes());
                out.extend_from_slice(&mid.to_be_bytes());
                out.extend_from_slice(&end.to_be_bytes());
            }
        }
        out.extend_from_slice(&owner);
        out.extend_from_slice(records);
        Node(Arc::from(out))
    }
}

/// One zone of the index, with its SOA and NS prebuilt.
pub struct Zone {
    pub name: LowerName,
    /// The name in lower-case wire form, as the index keys names.
    pub key: Box<[u8]>,
    pub reverse: bool,
    /// The SOA as records and as prepared wire data: one serial, built together.
    soa: ArcSwap<(RecordSet, Prepared)>,
    pub ns: RecordSet,
    /// `ns.dns.ZONE`, where the NS record points.
    pub ns_name: LowerName,
    /// The same name as the owner of its glue records in an NS answer.
    pub ns_this: This,
}

impl Zone {
    pub fn soa(&self) -> RecordSet {
        RecordSet::clone(&self.soa.load().0)
    }

    /// The SOA ready for a reply's authority section.
    pub fn soa_prepared(&self) -> Prepared {
        self.soa.load().1.clone()
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

impl Snapshot {
    /// Rebuilds the maps with full B-tree nodes. Objects arrive in key order (a list is sorted),
    /// and a B-tree filled in order splits each node in half and never fills it again: after a
    /// full list the maps took about twice the room their entries need. A bulk build packs
    /// them; it moves each entry once, which a full list's cost already covers. `None` packs
    /// every kind (after a whole snapshot), `Some` the one a relist listed.
    fn repack(&mut self, kind: Option<Kind>) {
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
        if this(Kind::Namespace) {
            let namespaces = std::mem::take(&mut self.namespaces);
            self.namespaces = namespaces.into_iter().collect();
        }
    }
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

/// What `k8s_external` needs of a Service that has external addresses or is headless.
#[derive(Debug, PartialEq, Eq)]
pub struct Exposed {
    pub headless: bool,
    pub external: Vec<External>,
    pub ports: Ports,
}

/// The Services `k8s_external` can answer for, kept beside the names so that the query path
/// reads them without the writer's lock. Only Services with external addresses, or headless
/// ones, are here: a cluster has few of either.
#[derive(Default)]
struct ExposedServices {
    /// By `name.namespace`.
    services: SharedMap<Box<str>, Arc<Exposed>>,
    /// The Services each external IP belongs to, for PTR.
    by_ip: SharedMap<IpAddr, Vec<Key>>,
}

impl ExposedServices {
    fn key(name: &str, namespace: &str) -> Box<str> {
        format!("{name}.{namespace}").into_boxed_str()
    }

    /// Follows `key` going from `old` to `new`.
    fn update(&self, key: &Key, old: Option<&SlimService>, new: Option<&SlimService>) {
        let ips = |s: Option<&SlimService>| -> Vec<IpAddr> {
            s.into_iter()
                .flat_map(|s| &s.external)
                .filter_map(|e| match e {
                    External::Ip(ip) => Some(*ip),
                    External::Host(_) => None,
                })
                .collect()
        };
        let (before, after) = (ips(old), ips(new));
        for ip in before.iter().filter(|ip| !after.contains(ip)) {
            let empty = self.by_ip.get_mut(ip).is_some_and(|mut keys| {
                keys.retain(|k| k != key);
                keys.is_empty()
            });
            if empty {
                self.by_ip.remove_if(ip, |_, keys| keys.is_empty());
            }
        }
        for ip in after.iter().filter(|ip| !before.contains(ip)) {
            let mut keys = self.by_ip.entry(*ip).or_default();
            if !keys.contains(key) {
                keys.push(key.clone());
                keys.sort();
            }
        }
        let map_key = Self::key(&key.name, &key.namespace);
        let exposed = new.and_then(|s| {
            let headless = s.kind == ServiceKind::Headless;
            (headless || !s.external.is_empty()).then(|| Exposed {
                headless,
                external: s.external.clone(),
                ports: s.ports.clone(),
            })
        });
        match exposed {
            Some(e) => {
                if self.services.get(&map_key).is_none_or(|old| **old != e) {
                    self.services.insert(map_key, Arc::new(e));
                }
            }
            None => {
                self.services.remove(&map_key);
            }
        }
    }
}

/// The writer's side: the slim objects, and what it needs to merge names several owners share.
///
/// What an owner contributed is not stored: it is a pure function of the objects, so the
/// writer computes it again from the objects just before they change. Parts are stored only
/// for the few names with records from more than one owner (an IP two Services' endpoints
/// share, say); a name with one owner records that owner in its node.
struct Writer {
    zones: Zones,
    opts: RecordOptions,
    ttl: u32,
    serial: u32,
    state: Snapshot,
    /// The slices of each Service: `namespace/service` → slice names.
    /// Sorted; a Service has a slice or a few, for which a B-tree node (room for 11) is
    /// too big.
    slices_by_service: Map<Key, Vec<Arc<str>>>,
    /// The parts of names that more than one owner gives records, in owner order.
    shared: Map<NameBytes, Vec<(Owner, Part)>>,
    /// How many owners make each name exist without records (empty non-terminals).
    ents: Map<NameBytes, u32>,
    pods_by_ip: Arc<SharedMap<IpAddr, Vec<Key>>>,
    exposed: Arc<ExposedServices>,
    /// One copy of each namespace's name, which every object in it holds.
    spaces: Interned<str>,
    /// One copy of each port list.
    port_lists: Interned<[super::slim::SlimPort]>,
}

/// One shared copy of each value many objects repeat. What nothing else holds any more is
/// swept out whenever the table has doubled since the last sweep, so values that churned
/// away do not stay.
struct Interned<T: ?Sized> {
    set: std::collections::HashSet<Arc<T>, Hasher>,
    sweep_at: usize,
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
    fn get(&mut self, value: Arc<T>) -> Arc<T> {
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
            let ns_name = name::join(&["ns", "dns"], name).unwrap_or_else(|| name.clone());
            zone_list.push(Zone {
                name: LowerName::new(name),
                key: NameKey::new(name).as_bytes().into(),
                reverse,
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

    /// The namespace of the pod with this IP (the first listed, if pods share it), when pods are
    /// watched (`pods verified`).
    pub fn pod_namespace(&self, ip: IpAddr) -> Option<Arc<str>> {
        self.pods_by_ip
            .get(&ip)
            .and_then(|keys| keys.first().map(|k| k.namespace.clone()))
    }

    /// What `k8s_external` knows of the Service `name` in `namespace`: present when it has
    /// external addresses or is headless.
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
        let Some(zone) = self.zones.iter().find(|z| !z.reverse) else {
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
    pub fn zone_of_key(&self, key: &[u8], labels: &[u8]) -> Option<&Zone> {
        self.zones
            .iter()
            .filter(|z| name::key_in_zone(key, labels, &z.key))
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
                    diff_map(&old.services, new.services, &mut changes, Change::Service)
                }
                Kind::Slice => diff_map(&old.slices, new.slices, &mut changes, Change::Slice),
                Kind::Pod => diff_map(&old.pods, new.pods, &mut changes, Change::Pod),
            }
            changes
        };
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

fn next_serial(prev: u32) -> u32 {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as u32)
        .unwrap_or(0);
    now.max(prev.wrapping_add(1))
}

fn soa_record(zone: &Name, ttl: u32, serial: u32) -> (RecordSet, Prepared) {
    let ns = name::join(&["ns", "dns"], zone).unwrap_or_else(|| zone.clone());
    let mbox = name::child(zone, "hostmaster").unwrap_or_else(|| zone.clone());
    let times = [serial, 7200, 1800, 86400, ttl];
    let mut b = Builder::default();
    b.push(
        Some(zone),
        ttl.min(300),
        Data::Soa {
            mname: &ns,
            rname: &mbox,
            times,
        },
    );
    let end = b.mark();
    let prepared = Prepared::new(b.finish(), 0, end, 1, This::Question);
    let [serial, refresh, retry, expire, minimum] = times;
    let records = Arc::from(vec![Record::from_rdata(
        zone.clone(),
        ttl.min(300),
        RData::SOA(SOA::new(
            ns,
            mbox,
            serial,
            refresh as i32,
            retry as i32,
            expire as i32,
            minimum,
        )),
    )]);
    (records, prepared)
}

/// The changes that turn `old` into `new`.
fn diff(old: &Snapshot, new: Snapshot) -> Vec<Change> {
    let mut changes = Vec::new();
    for ns in old.namespaces.difference(&new.namespaces) {
        changes.push(Change::Namespace(ns.clone(), false));
    }
    for ns in new.namespaces.difference(&old.namespaces) {
        changes.push(Change::Namespace(ns.clone(), true));
    }
    diff_map(&old.services, new.services, &mut changes, Change::Service);
    diff_map(&old.slices, new.slices, &mut changes, Change::Slice);
    diff_map(&old.pods, new.pods, &mut changes, Change::Pod);
    changes
}

/// The changes that turn `old` into `new`, moving what `new` holds rather than copying it.
fn diff_map<T: PartialEq>(
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

/// What an owner gives each of its names: whether it gives it records.
type Names = Vec<(NameBytes, bool)>;

/// How many owners one update recomputes before it publishes them.
const OWNERS_PER_UPDATE: usize = 256;

impl Writer {
    /// Stores a change, and adds to `before` the owners whose names must be recomputed, each
    /// with the names it had (computed just before the first change that concerns it).
    fn record_change(&mut self, change: Change, before: &mut BTreeMap<Owner, Names>) {
        for owner in self.concerned(&change) {
            if let std::collections::btree_map::Entry::Vacant(e) = before.entry(owner) {
                let names = self.owner_names(e.key());
                e.insert(names);
            }
        }
        self.store(change);
    }

    /// The owners whose names `change` may change, given the objects as they are.
    fn concerned(&self, change: &Change) -> Vec<Owner> {
        match change {
            Change::Namespace(ns, present) => {
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
                        .range(first..)
                        .map(|e| e.0)
                        .take_while(in_ns)
                        .map(|k| Owner::Pod(k.clone())),
                );
                owners
            }
            Change::Service(key, _) => vec![Owner::Service(key.clone())],
            Change::Slice(key, slice) => self
                .state
                .slices
                .get(key)
                .into_iter()
                .chain(slice)
                .map(|s| Owner::Service(service_of(s)))
                .collect(),
            Change::Pod(key, _) => vec![Owner::Pod(key.clone())],
        }
    }

    /// `key` holding the shared copy of its namespace.
    fn share(&mut self, key: Key) -> Key {
        Key {
            namespace: self.spaces.get(key.namespace),
            name: key.name,
        }
    }

    fn store(&mut self, change: Change) {
        match change {
            Change::Namespace(ns, true) => {
                let ns = self.spaces.get(ns);
                self.state.namespaces.insert(ns);
            }
            Change::Namespace(ns, false) => {
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
                    let svc = service_of(&old);
                    if let Some(names) = self.slices_by_service.get_mut(&svc) {
                        if let Ok(i) = names.binary_search(&key.name) {
                            names.remove(i);
                        }
                        if names.is_empty() {
                            self.slices_by_service.remove(&svc);
                        }
                    }
                }
                if let Some(mut new) = slice {
                    let key = self.share(key);
                    new.key = self.share(new.key);
                    new.ports = new.ports.map(|p| self.port_lists.get(p));
                    let names = self.slices_by_service.entry(service_of(&new)).or_default();
                    if let Err(i) = names.binary_search(&key.name) {
                        names.insert(i, key.name.clone());
                    }
                    self.state.slices.insert(key, new);
                }
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
    fn forget_pod_ips(&self, key: &Key, ips: &[IpAddr]) {
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

    /// What `owner` contributes now.
    fn owner_parts(&self, owner: &Owner) -> Vec<(NameBytes, Part)> {
        let ns_exists = |ns: &Arc<str>| self.state.namespaces.contains(ns);
        let parts = match owner {
            Owner::Static => records::static_parts(&self.zones),
            Owner::Namespace(ns) if ns_exists(ns) => {
                records::namespace_parts(ns, &self.zones, &self.opts)
            }
            Owner::Service(key) if ns_exists(&key.namespace) => {
                match self.state.services.get(key) {
                    Some(svc) => {
                        let slices: Vec<&SlimSlice> = self
                            .slices_by_service
                            .get(key)
                            .into_iter()
                            .flatten()
                            .filter_map(|name| {
                                self.state.slices.get(&Key {
                                    namespace: key.namespace.clone(),
                                    name: name.clone(),
                                })
                            })
                            .collect();
                        records::service_parts(svc, &slices, &self.zones, &self.opts)
                    }
                    None => Vec::new(),
                }
            }
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

    fn owner_names(&self, owner: &Owner) -> Names {
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
    fn update(
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
    fn publish(
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
fn replace(map: &SharedMap<Node, ()>, node: Node) {
    match map.entry(node) {
        dashmap::Entry::Occupied(e) => {
            e.replace_entry(());
        }
        dashmap::Entry::Vacant(e) => {
            e.insert(());
        }
    }
}

fn service_of(slice: &SlimSlice) -> Key {
    Key {
        namespace: slice.key.namespace.clone(),
        name: slice.service.clone(),
    }
}

#[cfg(test)]
mod tests;

/// Merges the parts of one name (in owner order) into its record sets.
fn build_node(wire: &[u8], parts: &[(Owner, Part)], ttl: u32, owner: Option<&Owner>) -> Node {
    let name = Name::read(&mut BinDecoder::new(wire)).unwrap_or_else(|_| Name::root());
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

    // Records whose owner is the name itself are written as "this name".
    let owner_of = |n: &'_ Name| -> bool { *n == name };
    let mut b = NodeBuilder::new(wire, ttl);
    let v4 = merged.addrs.iter().filter(|ip| ip.is_ipv4());
    let v6 = merged.addrs.iter().filter(|ip| ip.is_ipv6());
    b.set(v4.map(|ip| data_of(*ip)), Vec::new());
    b.set(v6.map(|ip| data_of(*ip)), Vec::new());
    let extra = merged
        .srv_extra
        .iter()
        .map(|(target, ip)| ((!owner_of(target)).then_some(target), data_of(*ip)))
        .collect();
    b.set(
        merged.srv.iter().map(|s| Data::Srv {
            priority: 0,
            weight: s.weight,
            port: s.port,
            target: (!owner_of(&s.target)).then_some(&s.target),
        }),
        extra,
    );
    b.set(merged.ptr.iter().map(Data::Ptr), Vec::new());
    if let Some(target) = &merged.cname {
        b.set([Data::Cname(target)], Vec::new());
    }
    if let Some(txt) = &merged.txt {
        b.set([Data::Txt(txt)], Vec::new());
    }
    b.finish(wire, owner)
}
