//! The node: one name's record sets in one shared allocation, and how it is built.

use super::*;

/// What one name answers: its record sets, prepared in wire form when the data changed, all in
/// one shared allocation (a cluster has hundreds of thousands of names). Cloning it is cloning
/// an `Arc`.
///
/// Layout: the name (its length, then its lower-case wire form, which is how the index finds
/// the node: the map has no keys of its own); the number of sets, its top bit set when the
/// node is narrow (see `NARROW`); when there are sets, the TTL of every record; per set its
/// type, record and additional counts, and where its additionals and its end lie; the owner
/// (see `encode_owner`); then the records of each set followed by its additionals, compact,
/// as [`wire::Builder::for_name`] writes them.
#[derive(Clone, Debug)]
pub struct Node(Arc<[u8]>);

/// Bytes per set in a node's header: type, counts, the offsets of its additionals and end.
/// A node of under 64 KiB whose sets hold at most 255 records each (nearly every node) is
/// narrow: one-byte counts and two-byte offsets. The others are wide: two and four.
pub(super) const SET_INFO_NARROW: usize = 8;
pub(super) const SET_INFO_WIDE: usize = 14;

/// The flag, in a node's count of sets, of the narrow header.
pub(super) const NARROW: u8 = 0x80;

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
pub(super) struct SetInfo {
    pub(super) rtype: RecordType,
    pub(super) count: u16,
    pub(super) extra: u16,
    pub(super) start: u32,
    pub(super) mid: u32,
    pub(super) end: u32,
}

impl Node {
    pub(super) fn u16_at(&self, at: usize) -> u16 {
        u16::from_be_bytes([self.0[at], self.0[at + 1]])
    }

    pub(super) fn u32_at(&self, at: usize) -> u32 {
        u32::from_be_bytes([self.0[at], self.0[at + 1], self.0[at + 2], self.0[at + 3]])
    }

    /// The name, lower case, in wire form.
    pub fn name(&self) -> &[u8] {
        &self.0[1..self.base()]
    }

    /// Where the number of sets is.
    pub(super) fn base(&self) -> usize {
        1 + usize::from(self.0[0])
    }

    /// The number of sets.
    pub(super) fn set_count(&self) -> usize {
        usize::from(self.0[self.base()] & !NARROW)
    }

    pub(super) fn narrow(&self) -> bool {
        self.0[self.base()] & NARROW != 0
    }

    /// The TTL of every record (0 for a node without any).
    pub(super) fn ttl(&self) -> u32 {
        if self.set_count() > 0 {
            self.u32_at(self.base() + 1)
        } else {
            0
        }
    }

    /// Where the set headers start: after the count, and the TTL when there are sets.
    pub(super) fn infos_at(&self) -> usize {
        self.base() + 1 + if self.set_count() > 0 { 4 } else { 0 }
    }

    pub(super) fn sets(&self) -> impl Iterator<Item = SetInfo> + '_ {
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

    pub(super) fn owner_bytes(&self) -> &[u8] {
        let at = self.owner_at();
        &self.0[at..at + self.owner_len()]
    }

    pub(super) fn owner_at(&self) -> usize {
        let info = if self.narrow() {
            SET_INFO_NARROW
        } else {
            SET_INFO_WIDE
        };
        self.infos_at() + self.set_count() * info
    }

    pub(super) fn owner_len(&self) -> usize {
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

    pub(super) fn answer(&self, set: &SetInfo, this: &This) -> Answer {
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
    pub(super) fn empty(name: &[u8]) -> Node {
        NodeBuilder::new(name, 0).finish(name, None)
    }
}

/// An owner as a node stores it: a tag, then what names the owner.
/// - 0: none; 1: the zones' static names.
/// - 2 a namespace, 3 a Service, 4 a Pod, 7 a ServiceImport: then the namespace, and for the
///   last three the name, each as a length and bytes (both are DNS labels, so at most 63
///   bytes).
/// - 5: a Service whose name and namespace are labels `i` and `i + 1` of the node's own name;
///   6: the same, of the target of the node's first record (a PTR). Then `i`.
///
/// Nearly every name is a Service's and spells the Service in itself (`web.prod.svc.…`,
/// `_http._tcp.web.prod.svc.…`) or, for a PTR, in its target: two bytes instead of about
/// fifteen, on most of a cluster's hundreds of thousands of names.
pub(super) fn encode_owner(owner: Option<&Owner>, name: &[u8], target: Option<&[u8]>) -> Vec<u8> {
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
        Some(Owner::Import(k)) => (7, Some(&k.namespace), Some(&k.name)),
    };
    out.push(tag);
    for s in [ns, name].into_iter().flatten() {
        out.push(s.len().min(255) as u8);
        out.extend_from_slice(&s.as_bytes()[..s.len().min(255)]);
    }
    out
}

pub(super) fn encoded_owner_len(bytes: &[u8]) -> usize {
    let labels = match bytes.first() {
        Some(2) => 1,
        Some(3 | 4 | 7) => 2,
        Some(5 | 6) => return 2.min(bytes.len()),
        _ => 0,
    };
    let mut at = 1;
    for _ in 0..labels {
        at += 1 + bytes.get(at).map_or(0, |&n| usize::from(n));
    }
    at.min(bytes.len())
}

/// An owner as a node spells it: its tag (1 static, 2 namespace, 3 Service, 4 Pod, 7
/// ServiceImport), the
/// namespace and the name.
pub(super) type OwnerSpelled<'a> = (u8, Option<&'a [u8]>, Option<&'a [u8]>);

impl Node {
    /// The owner's parts as the node holds them, borrowed.
    pub(super) fn owner_spelled(&self) -> Option<OwnerSpelled<'_>> {
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
            tag @ (3 | 4 | 7) => {
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
    pub(super) fn first_target(&self) -> Option<&[u8]> {
        let set = self.sets().next()?;
        (set.rtype == RecordType::PTR)
            .then(|| wire::compact_rdata(self.0.get(set.start as usize..set.mid as usize)?))
            .flatten()
    }

    /// The owner recorded in the node (a name with several owners records none).
    pub(super) fn owner(&self) -> Option<Owner> {
        let text =
            |b: Option<&[u8]>| -> Option<Arc<str>> { std::str::from_utf8(b?).ok().map(Arc::from) };
        let (tag, namespace, name) = self.owner_spelled()?;
        match tag {
            1 => Some(Owner::Static),
            2 => Some(Owner::Namespace(text(namespace)?)),
            3 | 4 | 7 => {
                let key = Key {
                    namespace: text(namespace)?,
                    name: text(name)?,
                };
                Some(match tag {
                    3 => Owner::Service(key),
                    4 => Owner::Pod(key),
                    _ => Owner::Import(key),
                })
            }
            _ => None,
        }
    }

    /// Whether `owner` is the owner the node records, without building it.
    pub(super) fn owned_by(&self, owner: &Owner) -> bool {
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
            Owner::Import(k) => (7, b(&k.namespace), b(&k.name)),
        };
        spelled == wanted
    }
}

pub(super) fn data_of(ip: IpAddr) -> Data<'static> {
    match ip {
        IpAddr::V4(v4) => Data::A(v4),
        IpAddr::V6(v6) => Data::Aaaa(v6),
    }
}

/// Prepares the record sets of one name.
pub(super) struct NodeBuilder {
    /// Type, counts, and where the additionals and the end lie in `data`.
    pub(super) sets: Vec<(RecordType, u16, u16, u32, u32)>,
    pub(super) data: Builder,
    pub(super) ttl: u32,
}

impl NodeBuilder {
    /// A builder for the node of `name` (wire form, lower case), whose records have the TTL
    /// `ttl`.
    pub(super) fn new(name: &[u8], ttl: u32) -> Self {
        Self {
            sets: Vec::new(),
            data: Builder::for_name(name, ttl),
            ttl,
        }
    }

    /// Adds a set (skipped when empty), its owner the name itself; `extra` owners are `None`
    /// for the name itself. A set holds at most 65,535 records, far more than a message can.
    pub(super) fn set<'a>(
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
    pub(super) fn finish(self, name: &[u8], owner: Option<&Owner>) -> Node {
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

/// Merges the parts of one name (in owner order) into its record sets.
pub(super) fn build_node(
    wire: &[u8],
    parts: &[(Owner, Part)],
    ttl: u32,
    owner: Option<&Owner>,
) -> Node {
    let name = Name::read(&mut BinDecoder::new(wire)).unwrap_or_else(|_| Name::root());
    let mut merged = Part::default();
    // A cluster-local name wins over a multi-cluster one (only one PTR per address, says the
    // MCS DNS specification); then a cluster IP's Service wins over endpoint names.
    let local_ptr = parts
        .iter()
        .any(|(_, p)| !p.ptr_is_clusterset && !p.ptr.is_empty());
    let kept = |p: &Part| !(local_ptr && p.ptr_is_clusterset);
    let cluster_ptr = parts.iter().find(|(_, p)| p.ptr_is_cluster_ip && kept(p));
    for (_, p) in parts {
        let mut p = p.clone();
        if cluster_ptr.is_some() || !kept(&p) {
            p.ptr.clear();
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
