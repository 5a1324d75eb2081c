//! One zone read from an RFC 1035 master file, held as the cluster zone is: every RRset
//! prepared in wire form once, when the file is read, so that a query copies bytes and builds
//! nothing. Lookups follow RFC 1034 section 4.3.2 (with RFC 4592's wildcards and RFC 2308's
//! negative answers): delegations, exact names, CNAMEs followed within the zone, empty
//! non-terminals, wildcards, then NXDOMAIN.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::Path;
use std::sync::Arc;

use hickory_proto::op::ResponseCode;
use hickory_proto::rr::rdata::SOA;
use hickory_proto::rr::{DNSClass, Name, RData, Record, RecordType};
use hickory_proto::serialize::txt::Parser;
use smallvec::SmallVec;

use crate::dns::wire::{Builder, NameKey, Prepared, This};

type Map<K, V> = HashMap<K, V, foldhash::fast::RandomState>;
type Set<K> = HashSet<K, foldhash::fast::RandomState>;

/// How many CNAMEs are followed within the zone before the answer stops (as CoreDNS).
const MAX_CHAIN: usize = 8;

/// A run of records in a node's buffer.
#[derive(Clone, Copy, Debug)]
struct Run {
    start: u32,
    end: u32,
    count: u16,
}

/// One RRset of a node, and the addresses that go in the additional section with it (the
/// in-zone targets of MX and SRV records; the glue of NS records).
#[derive(Debug)]
struct RrSet {
    rtype: RecordType,
    run: Run,
    extra: Option<Run>,
}

/// The records of one name.
#[derive(Debug)]
struct Node {
    /// The name, lower case, in wire form (what a CNAME chain's runs point their owners at).
    key: Arc<[u8]>,
    data: Arc<[u8]>,
    sets: SmallVec<[RrSet; 2]>,
    /// Every record of the name (an ANY question).
    all: Run,
    /// Where its CNAME points, if it has one.
    cname: Option<Name>,
}

impl Node {
    fn run(&self, r: Run, this: This) -> Prepared {
        Prepared::new(self.data.clone(), r.start, r.end, r.count, this)
    }

    fn set(&self, rtype: RecordType) -> Option<&RrSet> {
        self.sets.iter().find(|s| s.rtype == rtype)
    }
}

/// What a lookup found: the sections of the answer, as prepared runs.
#[derive(Debug)]
pub struct Found {
    pub rcode: ResponseCode,
    /// Clear for a referral.
    pub authoritative: bool,
    pub answers: SmallVec<[Prepared; 2]>,
    pub authority: Option<Prepared>,
    pub additionals: Option<Prepared>,
    /// A CNAME led out of the zone, to this name: the server looks it up and adds what it finds.
    pub external: Option<Name>,
}

impl Found {
    fn new(rcode: ResponseCode) -> Self {
        Self {
            rcode,
            authoritative: true,
            answers: SmallVec::new(),
            authority: None,
            additionals: None,
            external: None,
        }
    }
}

/// Where a name lands in the zone.
enum Landing<'a> {
    /// A name with records: its own node, or the wildcard that stands for it.
    Node(&'a Node),
    /// It exists (an empty non-terminal, or a wildcard without the type): no records.
    Empty,
    Nowhere,
}

pub struct Zone {
    pub origin: Name,
    origin_key: Box<[u8]>,
    nodes: Map<Box<[u8]>, Node>,
    /// Names that exist only because names below them do (empty non-terminals).
    empty: Set<Box<[u8]>>,
    /// Whether any name below the apex has NS records (a delegation).
    has_cuts: bool,
    /// The SOA as an answer, and as the authority of a negative answer (RFC 2308's TTL).
    soa: Record,
    negative: Prepared,
    /// The apex NS records with their owner written out: the authority of a positive answer.
    apex_ns: Option<Prepared>,
    /// Every record, SOA first, in name order: what a zone transfer sends.
    records: Vec<Record>,
}

/// The lower-case wire form of `name`.
fn key(name: &Name) -> Box<[u8]> {
    NameKey::new(name).as_bytes().into()
}

/// The name one label up from `key` (`None` at the root).
fn parent(key: &[u8]) -> Option<&[u8]> {
    let first = usize::from(*key.first()?);
    (first > 0).then(|| &key[1 + first..])
}

/// Whether `key` is `zone` or below it, label-wise.
fn is_in(key: &[u8], zone: &[u8]) -> bool {
    let mut k = Some(key);
    while let Some(at) = k {
        if at.len() < zone.len() {
            return false;
        }
        if at == zone {
            return true;
        }
        k = parent(at);
    }
    false
}

/// The zone file's text with every record read, or an error naming the line that broke it.
pub fn parse_text(text: &str, path: &Path, origin: &Name) -> Result<Vec<Record>, String> {
    let run = |text: &str| {
        Parser::new(text, Some(path.to_path_buf()), Some(origin.clone()))
            .parse()
            .map(|(_, sets)| sets)
            .map_err(|e| e.to_string())
    };
    let sets = match run(text) {
        Ok(sets) => sets,
        Err(msg) => {
            // The parser does not say where it stopped: the first prefix of the file that
            // fails the same way ends at the line to blame (found by halving).
            let lines: Vec<&str> = text.split_inclusive('\n').collect();
            let fails = |n: usize| run(&lines[..n].concat()).err().as_deref() == Some(&*msg);
            let (mut lo, mut hi) = (1, lines.len());
            if !fails(hi) {
                return Err(msg);
            }
            while lo < hi {
                let mid = (lo + hi) / 2;
                if fails(mid) {
                    hi = mid;
                } else {
                    lo = mid + 1;
                }
            }
            return Err(format!("line {lo}: {msg}"));
        }
    };
    let mut records = Vec::new();
    for (_, set) in sets {
        records.extend(set.records_without_rrsigs().cloned());
    }
    Ok(records)
}

impl Zone {
    /// Reads the file at `path` as the zone `origin`.
    pub fn read(path: &Path, origin: &Name) -> Result<Zone, String> {
        let text = std::fs::read_to_string(path).map_err(|e| e.to_string())?;
        let records = parse_text(&text, path, origin)?;
        Zone::build(origin, records)
    }

    /// The zone `origin` holding `records`.
    pub fn build(origin: &Name, records: Vec<Record>) -> Result<Zone, String> {
        let origin_key = key(origin);
        let mut by_name: BTreeMap<Box<[u8]>, Vec<Record>> = BTreeMap::new();
        let mut soa = None;
        for mut r in records {
            if r.dns_class != DNSClass::IN {
                return Err(format!(
                    "{} {}: only class IN is served",
                    r.name, r.dns_class
                ));
            }
            let k = key(&r.name);
            if !is_in(&k, &origin_key) {
                return Err(format!(
                    "{}: out of zone data (the zone is {origin})",
                    r.name
                ));
            }
            if r.record_type() == RecordType::SOA {
                if *k != *origin_key {
                    return Err(format!("{}: an SOA record below the apex", r.name));
                }
                r.name = origin.clone();
                soa = Some(r.clone());
            }
            by_name.entry(k).or_default().push(r);
        }
        let soa = soa.ok_or_else(|| format!("no SOA record at {origin}"))?;
        let RData::SOA(soa_data) = &soa.data else {
            return Err("the SOA record is not an SOA".into());
        };
        for (k, rs) in &by_name {
            let has_cname = rs.iter().any(|r| r.record_type() == RecordType::CNAME);
            if has_cname && rs.iter().any(|r| r.record_type() != RecordType::CNAME) {
                return Err(format!(
                    "{}: a CNAME and other data at one name",
                    rs[0].name
                ));
            }
            if has_cname && **k == *origin_key {
                return Err(format!("{origin}: a CNAME at the apex"));
            }
        }
        let mut empty = Set::default();
        for k in by_name.keys() {
            let mut up = parent(k);
            while let Some(p) = up {
                if p.len() < origin_key.len() || by_name.contains_key(p) {
                    break;
                }
                empty.insert(Box::<[u8]>::from(p));
                up = parent(p);
            }
        }
        let mut has_cuts = false;
        let mut nodes = Map::default();
        for (k, rs) in &by_name {
            let apex = **k == *origin_key;
            has_cuts |= !apex && rs.iter().any(|r| r.record_type() == RecordType::NS);
            nodes.insert(k.clone(), Self::node(k, rs, apex, &origin_key, &by_name));
        }
        // RFC 2308 section 3: a negative answer's SOA lives min(TTL, MINIMUM).
        let mut negative_soa = soa.clone();
        negative_soa.ttl = soa.ttl.min(soa_data.minimum);
        let negative = full_run(std::slice::from_ref(&negative_soa));
        let apex_ns: Vec<Record> = by_name[&origin_key]
            .iter()
            .filter(|r| r.record_type() == RecordType::NS)
            .cloned()
            .collect();
        let apex_ns = (!apex_ns.is_empty()).then(|| full_run(&apex_ns));
        let mut records = vec![soa.clone()];
        for rs in by_name.values() {
            records.extend(
                rs.iter()
                    .filter(|r| r.record_type() != RecordType::SOA)
                    .cloned(),
            );
        }
        Ok(Zone {
            origin: origin.clone(),
            origin_key,
            nodes,
            empty,
            has_cuts,
            soa,
            negative,
            apex_ns,
            records,
        })
    }

    /// Prepares the records of one name: a run per type (owners point at the name), then the
    /// additional records of the types that have any.
    fn node(
        k: &[u8],
        rs: &[Record],
        apex: bool,
        origin: &[u8],
        all: &BTreeMap<Box<[u8]>, Vec<Record>>,
    ) -> Node {
        let mut types: Vec<RecordType> = Vec::new();
        for r in rs {
            if !types.contains(&r.record_type()) {
                types.push(r.record_type());
            }
        }
        let mut b = Builder::default();
        let mut sets: SmallVec<[RrSet; 2]> = SmallVec::new();
        for t in types {
            let start = b.mark();
            let mut count = 0u16;
            for r in rs.iter().filter(|r| r.record_type() == t) {
                count += u16::from(b.push_record(k, r));
            }
            sets.push(RrSet {
                rtype: t,
                run: Run {
                    start,
                    end: b.mark(),
                    count,
                },
                extra: None,
            });
        }
        let all_run = Run {
            start: 0,
            end: b.mark(),
            count: sets.iter().map(|s| s.run.count).sum(),
        };
        for set in &mut sets {
            // Which targets' addresses go along: MX and SRV targets in the zone; for NS, the
            // in-bailiwick servers' glue (below the apex or below the delegation).
            let targets: Vec<&Name> = rs
                .iter()
                .filter(|r| r.record_type() == set.rtype)
                .filter_map(|r| match &r.data {
                    RData::MX(mx) => Some(&mx.exchange),
                    RData::SRV(srv) => Some(&srv.target),
                    RData::NS(ns) => Some(&ns.0),
                    _ => None,
                })
                .collect();
            let bailiwick = if set.rtype == RecordType::NS && !apex {
                k
            } else {
                origin
            };
            let start = b.mark();
            let mut count = 0u16;
            for t in targets {
                let tk = key(t);
                if !is_in(&tk, bailiwick) {
                    continue;
                }
                for r in all.get(&tk).into_iter().flatten() {
                    if matches!(r.record_type(), RecordType::A | RecordType::AAAA) {
                        count += u16::from(b.push_record(&[], r));
                    }
                }
            }
            if count > 0 {
                set.extra = Some(Run {
                    start,
                    end: b.mark(),
                    count,
                });
            }
        }
        let cname = rs.iter().find_map(|r| match &r.data {
            RData::CNAME(c) => Some(c.0.clone()),
            _ => None,
        });
        Node {
            key: Arc::from(k),
            data: b.finish(),
            sets,
            all: all_run,
            cname,
        }
    }

    pub fn serial(&self) -> u32 {
        match &self.soa.data {
            RData::SOA(SOA { serial, .. }) => *serial,
            _ => 0,
        }
    }

    /// How many records the zone holds (`coredns_file_entries`).
    pub fn len(&self) -> usize {
        self.records.len()
    }

    pub fn is_empty(&self) -> bool {
        self.records.is_empty()
    }

    /// Every record, the SOA first: what a zone transfer sends (between two SOAs).
    pub fn records(&self) -> &[Record] {
        &self.records
    }

    /// Whether `key` (lower-case wire form) is in the zone.
    pub fn holds(&self, key: &[u8]) -> bool {
        is_in(key, &self.origin_key)
    }

    /// The zone's apex, lower case, in wire form.
    pub fn key(&self) -> &[u8] {
        &self.origin_key
    }

    /// Where `k` lands: its node, an empty name, the wildcard of its closest encloser, or
    /// nowhere.
    fn land(&self, k: &[u8]) -> Landing<'_> {
        if let Some(n) = self.nodes.get(k) {
            return Landing::Node(n);
        }
        if self.empty.contains(k) {
            return Landing::Empty;
        }
        // RFC 4592: the closest encloser is the longest existing ancestor; its `*` child, if
        // any, answers for the name.
        let mut up = parent(k);
        while let Some(p) = up {
            if p.len() < self.origin_key.len() {
                break;
            }
            if self.nodes.contains_key(p) || self.empty.contains(p) {
                let mut wild = Vec::with_capacity(p.len() + 2);
                wild.extend_from_slice(&[1, b'*']);
                wild.extend_from_slice(p);
                return match self.nodes.get(&wild[..]) {
                    Some(n) => Landing::Node(n),
                    None => Landing::Nowhere,
                };
            }
            up = parent(p);
        }
        Landing::Nowhere
    }

    /// The delegation `k` is at or below, if any: the cut's node.
    fn cut(&self, k: &[u8], qtype: RecordType) -> Option<&Node> {
        if !self.has_cuts {
            return None;
        }
        // From the apex down: the highest cut wins.
        let mut chain: SmallVec<[&[u8]; 16]> = SmallVec::new();
        let mut up = Some(k);
        while let Some(p) = up {
            if p.len() <= self.origin_key.len() {
                break;
            }
            chain.push(p);
            up = parent(p);
        }
        for name in chain.iter().rev() {
            let Some(n) = self.nodes.get(*name) else {
                continue;
            };
            // DS is the parent side's: asked at the cut itself, it is answered here.
            if n.set(RecordType::NS).is_some() && !(qtype == RecordType::DS && *name == k) {
                return Some(n);
            }
        }
        None
    }

    fn negative(&self, rcode: ResponseCode) -> Found {
        let mut f = Found::new(rcode);
        f.authority = Some(self.negative.clone());
        f
    }

    /// The answer to `k` (lower-case wire form, in the zone) of type `qtype`.
    pub fn lookup(&self, k: &[u8], qtype: RecordType) -> Found {
        if let Some(cut) = self.cut(k, qtype) {
            let mut f = Found::new(ResponseCode::NoError);
            f.authoritative = false;
            if let Some(ns) = cut.set(RecordType::NS) {
                f.authority = Some(cut.run(ns.run, This::Name(cut.key.clone())));
                f.additionals = ns.extra.map(|e| cut.run(e, This::Question));
            }
            return f;
        }
        let node = match self.land(k) {
            Landing::Node(n) => n,
            Landing::Empty => return self.negative(ResponseCode::NoError),
            Landing::Nowhere => return self.negative(ResponseCode::NXDomain),
        };
        let apex = *k == *self.origin_key;
        if qtype == RecordType::ANY {
            let mut f = Found::new(ResponseCode::NoError);
            f.answers.push(node.run(node.all, This::Question));
            f.authority = self.apex_ns.clone().filter(|_| !apex);
            return f;
        }
        if let Some(set) = node.set(qtype) {
            let mut f = Found::new(ResponseCode::NoError);
            f.answers.push(node.run(set.run, This::Question));
            // The apex's own NS records are the answer; for anything else they are the
            // authority, as CoreDNS answers.
            if !(apex && qtype == RecordType::NS) {
                f.authority = self.apex_ns.clone();
            }
            f.additionals = set.extra.map(|e| node.run(e, This::Question));
            return f;
        }
        match (&node.cname, node.set(RecordType::CNAME)) {
            (Some(target), Some(set)) => {
                let mut f = Found::new(ResponseCode::NoError);
                f.answers.push(node.run(set.run, This::Question));
                self.follow(target, qtype, &mut f);
                f
            }
            _ => self.negative(ResponseCode::NoError),
        }
    }

    /// Follows a CNAME to `target` within the zone, adding what it finds to `f`.
    fn follow(&self, target: &Name, qtype: RecordType, f: &mut Found) {
        let mut target = target.clone();
        for _ in 0..MAX_CHAIN {
            let tk = key(&target);
            if !self.holds(&tk) {
                f.external = Some(target);
                f.authority = self.apex_ns.clone();
                return;
            }
            let node = match self.land(&tk) {
                Landing::Node(n) => n,
                // RFC 6604: the rcode is the last name's.
                Landing::Empty => {
                    f.authority = Some(self.negative.clone());
                    return;
                }
                Landing::Nowhere => {
                    f.rcode = ResponseCode::NXDomain;
                    f.authority = Some(self.negative.clone());
                    return;
                }
            };
            // The runs' owners are the node's own name, or the name a wildcard stood for.
            let this = if *node.key == *tk {
                This::Name(node.key.clone())
            } else {
                This::Name(Arc::from(tk))
            };
            if let Some(set) = node.set(qtype) {
                f.answers.push(node.run(set.run, this));
                f.authority = self.apex_ns.clone();
                return;
            }
            match (&node.cname, node.set(RecordType::CNAME)) {
                (Some(next), Some(set)) => {
                    f.answers.push(node.run(set.run, this));
                    target = next.clone();
                }
                _ => {
                    f.authority = Some(self.negative.clone());
                    return;
                }
            }
        }
        f.authority = self.apex_ns.clone();
    }
}

/// Records with their owners written out (not pointing at the question), in one run.
fn full_run(records: &[Record]) -> Prepared {
    let mut b = Builder::default();
    let mut count = 0u16;
    for r in records {
        count += u16::from(b.push_record(&[], r));
    }
    let end = b.mark();
    Prepared::new(b.finish(), 0, end, count, This::Question)
}

#[cfg(test)]
mod tests {
    use super::*;

    const ZONE: &str = "\
$ORIGIN example.org.
$TTL 3600
@       IN SOA ns1 hostmaster 2024010101 7200 3600 1209600 300
        IN NS  ns1
        IN NS  ns.elsewhere.net.
        IN MX  10 mail
ns1     IN A   192.0.2.1
mail    IN A   192.0.2.25
        IN AAAA 2001:db8::25
www     IN CNAME web
web     IN A   192.0.2.80
out     IN CNAME www.example.net.
loop1   IN CNAME loop2
loop2   IN CNAME loop1
gone    IN CNAME nothing
*.apps  IN A   192.0.2.99
a.b.c   IN TXT \"deep\"
sub     IN NS  ns.sub
ns.sub  IN A   192.0.2.53
_http._tcp IN SRV 0 5 80 web
";

    fn zone() -> Zone {
        let origin = Name::from_ascii("example.org.").unwrap();
        let records = parse_text(ZONE, Path::new("/zones/db.example.org"), &origin).unwrap();
        Zone::build(&origin, records).unwrap()
    }

    fn ask(
        z: &Zone,
        name: &str,
        qtype: RecordType,
    ) -> (ResponseCode, bool, Vec<String>, Vec<String>, Vec<String>) {
        let q = Name::from_ascii(name).unwrap();
        let f = z.lookup(&key(&q), qtype);
        assert!(f.external.is_none() || name.starts_with("out"));
        let show = |runs: &[Prepared]| -> Vec<String> {
            runs.iter()
                .flat_map(|r| r.records(&q).unwrap())
                .map(|r| format!("{} {} {}", r.name, r.record_type(), r.data))
                .collect()
        };
        (
            f.rcode,
            f.authoritative,
            show(&f.answers),
            show(f.authority.as_slice()),
            show(f.additionals.as_slice()),
        )
    }

    #[test]
    fn answers_follow_rfc_1034() {
        let z = zone();
        let (rcode, aa, ans, auth, add) = ask(&z, "example.org.", RecordType::MX);
        assert_eq!((rcode, aa), (ResponseCode::NoError, true));
        assert_eq!(ans, ["example.org. MX 10 mail.example.org."]);
        assert_eq!(auth.len(), 2, "the apex NS as authority: {auth:?}");
        assert_eq!(
            add,
            [
                "mail.example.org. A 192.0.2.25",
                "mail.example.org. AAAA 2001:db8::25"
            ]
        );
        // The apex NS: answered with glue for the in-zone server only.
        let (_, _, ans, auth, add) = ask(&z, "example.org.", RecordType::NS);
        assert_eq!(ans.len(), 2);
        assert!(auth.is_empty());
        assert_eq!(add, ["ns1.example.org. A 192.0.2.1"]);
        // A CNAME followed within the zone.
        let (rcode, _, ans, _, _) = ask(&z, "WWW.example.org.", RecordType::A);
        assert_eq!(rcode, ResponseCode::NoError);
        assert_eq!(
            ans,
            [
                "WWW.example.org. CNAME web.example.org.",
                "web.example.org. A 192.0.2.80"
            ]
        );
        // A CNAME to a name the zone does not have: NXDOMAIN, as RFC 6604 says.
        let (rcode, _, ans, auth, _) = ask(&z, "gone.example.org.", RecordType::A);
        assert_eq!(rcode, ResponseCode::NXDomain);
        assert_eq!(ans.len(), 1);
        assert_eq!(auth.len(), 1, "{auth:?}");
        // A loop ends after a few turns, with what was found.
        let (rcode, _, ans, _, _) = ask(&z, "loop1.example.org.", RecordType::A);
        assert_eq!(rcode, ResponseCode::NoError);
        assert_eq!(ans.len(), 1 + MAX_CHAIN);
        // Out of the zone: the server is asked.
        let q = Name::from_ascii("out.example.org.").unwrap();
        let f = z.lookup(&key(&q), RecordType::A);
        assert_eq!(f.external.unwrap().to_ascii(), "www.example.net.");
        // Wildcards, and names below them.
        let (_, _, ans, _, _) = ask(&z, "x.apps.example.org.", RecordType::A);
        assert_eq!(ans, ["x.apps.example.org. A 192.0.2.99"]);
        let (rcode, _, ans, auth, _) = ask(&z, "x.apps.example.org.", RecordType::AAAA);
        assert_eq!(
            (rcode, ans.len(), auth.len()),
            (ResponseCode::NoError, 0, 1)
        );
        let (rcode, _, _, _, _) = ask(&z, "y.x.apps.example.org.", RecordType::A);
        assert_eq!(
            rcode,
            ResponseCode::NoError,
            "y.x.apps matches the wildcard too (RFC 4592)"
        );
        // Empty non-terminals exist; names below nothing do not.
        let (rcode, _, ans, auth, _) = ask(&z, "b.c.example.org.", RecordType::A);
        assert_eq!((rcode, ans.len()), (ResponseCode::NoError, 0));
        assert_eq!(
            auth,
            [
                "example.org. SOA ns1.example.org. hostmaster.example.org. 2024010101 7200 3600 1209600 300"
            ]
        );
        let (rcode, _, _, _, _) = ask(&z, "nope.example.org.", RecordType::A);
        assert_eq!(rcode, ResponseCode::NXDomain);
        // A delegation: a referral, with glue, not authoritative; below it too.
        for name in ["sub.example.org.", "host.sub.example.org."] {
            let (rcode, aa, ans, auth, add) = ask(&z, name, RecordType::A);
            assert_eq!((rcode, aa, ans.len()), (ResponseCode::NoError, false, 0));
            assert_eq!(auth, ["sub.example.org. NS ns.sub.example.org."]);
            assert_eq!(add, ["ns.sub.example.org. A 192.0.2.53"]);
        }
        // SRV: the target's address comes along.
        let (_, _, ans, _, add) = ask(&z, "_http._tcp.example.org.", RecordType::SRV);
        assert_eq!(ans, ["_http._tcp.example.org. SRV 0 5 80 web.example.org."]);
        assert_eq!(add, ["web.example.org. A 192.0.2.80"]);
        // SOA below the apex is NODATA (CoreDNS answers the apex SOA: not per RFC 1034).
        let (rcode, _, ans, _, _) = ask(&z, "web.example.org.", RecordType::SOA);
        assert_eq!((rcode, ans.len()), (ResponseCode::NoError, 0));
        // The negative SOA lives MINIMUM (300), not its TTL (3600).
        let q = Name::from_ascii("nope.example.org.").unwrap();
        let soa = z
            .lookup(&key(&q), RecordType::A)
            .authority
            .unwrap()
            .records(&q)
            .unwrap();
        assert_eq!(soa[0].ttl, 300);
        assert_eq!(z.serial(), 2024010101);
        assert_eq!(z.records()[0].record_type(), RecordType::SOA);
    }

    #[test]
    fn bad_files_say_what_and_where() {
        let origin = Name::from_ascii("example.org.").unwrap();
        let path = Path::new("/zones/db");
        let bad = "$ORIGIN example.org.\n@ 3600 IN SOA ns hm 1 2 3 4 5\nwww IN A 192.0.2.1\nmail IN A not-an-address\nx IN A 192.0.2.2\n";
        let e = parse_text(bad, path, &origin).unwrap_err();
        assert!(e.starts_with("line 4: "), "{e}");
        for (text, want) in [
            ("www 3600 IN A 192.0.2.1\n", "no SOA record at example.org."),
            (
                "@ 3600 IN SOA ns hm 1 2 3 4 5\nwww.example.net. 3600 IN A 192.0.2.1\n",
                "www.example.net.: out of zone data",
            ),
            (
                "@ 3600 IN SOA ns hm 1 2 3 4 5\nwww 3600 IN CNAME a\nwww 3600 IN A 192.0.2.1\n",
                "a CNAME and other data",
            ),
        ] {
            let records = parse_text(text, path, &origin).unwrap();
            let e = Zone::build(&origin, records).err().unwrap();
            assert!(e.contains(want), "{e}");
        }
    }
}
