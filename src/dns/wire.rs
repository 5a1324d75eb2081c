//! Prepared answers: records encoded once, when the data behind them changes, and copied into
//! each response. Per query, only names are worked on: an owner that is the question becomes a
//! pointer to it (so the answer keeps the client's case for free), and the names inside records
//! are compressed against what the message already holds.
//!
//! A prepared run of records is a byte string of records in wire form, with two differences:
//! every name is uncompressed and lower case, and an owner may be [`THIS`], which stands for the
//! name the records belong to (the question, or the name a CNAME led to). In the runs of an
//! index node (see [`Builder::for_name`]), an owner or an SRV target may also be a reference:
//! [`SUFFIX`], to the end of the node's own name, or [`BACK`], to a name written out earlier
//! in the node. They are resolved to the same bytes when the run is written, so they change
//! what a node holds, never what an answer says. A node's records are also compact: type and
//! length only, as every record of a node is of class IN and has the node's one TTL, which the
//! run is given ([`Prepared::compact`]).

use std::collections::HashMap;
use std::hash::BuildHasher;
use std::net::{Ipv4Addr, Ipv6Addr};
use std::sync::Arc;

use foldhash::fast::FixedState;
use hickory_proto::ProtoError;
use hickory_proto::rr::rdata::SRV;
use hickory_proto::rr::{Name, RData, Record, RecordType};
use hickory_proto::serialize::binary::{
    BinDecodable, BinDecoder, BinEncodable, BinEncoder, NameEncoding, Restrict,
};
use smallvec::SmallVec;

use super::name::label_starts;

/// An immutable, shareable run of records, built when data changes and cloned per query.
pub type RecordSet = std::sync::Arc<[hickory_proto::rr::Record]>;

/// The transport a query came over.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Transport {
    Udp,
    Tcp,
}

impl Transport {
    pub fn as_str(self) -> &'static str {
        match self {
            Transport::Udp => "udp",
            Transport::Tcp => "tcp",
        }
    }
}

/// The owner that stands for "the name these records belong to". A compression pointer to
/// offset 0 is never valid in a message (the header is there), so it cannot be mistaken for a
/// name.
const THIS: [u8; 2] = [0xC0, 0x00];

/// `[0xC0, SUFFIX, k]`: the node's own name from its byte `k` on (`_http._tcp.web.prod.svc.…`
/// names `web.prod.svc.…` as its SRV target and as the owner of its address).
const SUFFIX: u8 = 0x01;

/// `[0xC0, BACK, d, d]`: the name written out `d` bytes (big-endian) before the reference (an
/// SRV target's address record, after the target).
const BACK: u8 = 0x02;

/// How a name field of a prepared record holds its name.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Held {
    /// [`THIS`].
    This,
    /// Written out here, uncompressed.
    Here,
    /// [`SUFFIX`].
    Suffix(u8),
    /// [`BACK`].
    Back(u16),
}

/// How the name field at the start of `bytes` holds its name, and the field's length.
fn held(bytes: &[u8]) -> Option<(Held, usize)> {
    match bytes {
        [0xC0, 0x00, ..] => Some((Held::This, 2)),
        [0xC0, SUFFIX, k, ..] => Some((Held::Suffix(*k), 3)),
        [0xC0, BACK, hi, lo, ..] => Some((Held::Back(u16::from_be_bytes([*hi, *lo])), 4)),
        _ => Some((Held::Here, name_len(bytes)?)),
    }
}

/// The data of the compact record (as [`Builder::for_name`] writes it) at the start of
/// `bytes`.
pub fn compact_rdata(bytes: &[u8]) -> Option<&[u8]> {
    let (_, owner) = held(bytes)?;
    let len = bytes.get(owner + 2..owner + 4)?;
    let len = usize::from(u16::from_be_bytes([len[0], len[1]]));
    bytes.get(owner + 4..owner + 4 + len)
}

/// Where `name` starts in `own` as a whole suffix of it (at a label), if it does.
fn suffix_of(own: &[u8], name: &[u8]) -> Option<u8> {
    label_starts(own)
        .find(|&at| own[at..] == *name)
        .and_then(|at| u8::try_from(at).ok())
}

/// Where the question's name starts in every message: right after the header.
const QUESTION_AT: u16 = 12;

/// A name in wire form, lower case, on the stack: how the index keys its names.
pub struct NameKey {
    buf: [u8; 256],
    len: u16,
}

impl NameKey {
    pub fn new(name: &Name) -> Self {
        let mut key = Self {
            buf: [0; 256],
            len: 0,
        };
        let mut at = 0;
        for label in name.iter() {
            // A valid name is at most 255 bytes in wire form; hickory enforces it.
            if at + 1 + label.len() >= key.buf.len() {
                break;
            }
            key.buf[at] = label.len() as u8;
            for (i, b) in label.iter().enumerate() {
                key.buf[at + 1 + i] = b.to_ascii_lowercase();
            }
            at += 1 + label.len();
        }
        key.buf[at] = 0;
        key.len = (at + 1) as u16;
        key
    }

    pub fn as_bytes(&self) -> &[u8] {
        &self.buf[..usize::from(self.len)]
    }
}

/// Appends `name` in wire form, lower case.
pub fn push_name(out: &mut Vec<u8>, name: &Name) {
    out.extend_from_slice(NameKey::new(name).as_bytes());
}

/// The record data [`Builder`] knows how to prepare: what cluster answers are made of.
pub enum Data<'a> {
    A(Ipv4Addr),
    Aaaa(Ipv6Addr),
    Srv {
        priority: u16,
        weight: u16,
        port: u16,
        /// `None`: the name the records belong to ([`THIS`]), as for a Service's own SRV.
        target: Option<&'a Name>,
    },
    Ptr(&'a Name),
    Cname(&'a Name),
    Ns(&'a Name),
    Txt(&'a str),
    Soa {
        mname: &'a Name,
        rname: &'a Name,
        /// Serial, refresh, retry, expire and minimum, in that order.
        times: [u32; 5],
    },
}

impl Data<'_> {
    pub fn rtype(&self) -> RecordType {
        match self {
            Data::A(_) => RecordType::A,
            Data::Aaaa(_) => RecordType::AAAA,
            Data::Srv { .. } => RecordType::SRV,
            Data::Ptr(_) => RecordType::PTR,
            Data::Cname(_) => RecordType::CNAME,
            Data::Ns(_) => RecordType::NS,
            Data::Txt(_) => RecordType::TXT,
            Data::Soa { .. } => RecordType::SOA,
        }
    }
}

/// Builds prepared records into one buffer; runs of them are marked with [`Builder::mark`].
#[derive(Default)]
pub struct Builder {
    data: Vec<u8>,
    /// The name the records belong to, for a node's builder: owners and SRV targets are then
    /// written as references where they can be.
    own: Option<Box<[u8]>>,
    /// Where the owners and SRV targets written out in full are, by a hash of the name (the
    /// first of each): a headless Service's node writes hundreds of them, and a list would
    /// make finding one cost the whole list.
    written: HashMap<u64, u32, FixedState>,
    /// For a node's builder, the one TTL of its records, which it then leaves out of them
    /// (with their class, IN).
    ttl: Option<u32>,
}

impl Builder {
    /// A builder for the records of `own` (lower-case wire form): an index node, whose owners
    /// and SRV targets may then be references to its own name or to a name written earlier in
    /// it. The data they are read from must start with `own`'s length (one byte) and `own`,
    /// as a node does: that is where [`SUFFIX`] points.
    /// Its records are compact: every one has the TTL `ttl`.
    pub fn for_name(own: &[u8], ttl: u32) -> Self {
        Self {
            own: Some(own.into()),
            ttl: Some(ttl),
            ..Self::default()
        }
    }

    /// Writes the owner or SRV target `name`: as a reference where the builder is a node's
    /// and one will do, else in full.
    fn push_ref(&mut self, name: &Name) {
        let key = NameKey::new(name);
        let key = key.as_bytes();
        let Some(own) = &self.own else {
            self.data.extend_from_slice(key);
            return;
        };
        if **own == *key {
            self.data.extend_from_slice(&THIS);
            return;
        }
        if let Some(k) = suffix_of(own, key) {
            self.data.extend_from_slice(&[0xC0, SUFFIX, k]);
            return;
        }
        let here = self.data.len();
        let hash = FixedState::default().hash_one(key);
        // A different name with the same hash is written out in full: never wrong, rarely met.
        let earlier = self
            .written
            .get(&hash)
            .map(|&at| at as usize)
            .filter(|&at| self.data.get(at..at + key.len()) == Some(key));
        if let Some(d) = earlier.and_then(|at| u16::try_from(here - at).ok()) {
            self.data.extend_from_slice(&[0xC0, BACK]);
            self.data.extend_from_slice(&d.to_be_bytes());
            return;
        }
        if let Ok(at) = u32::try_from(here) {
            self.written.entry(hash).or_insert(at);
        }
        self.data.extend_from_slice(key);
    }

    /// Where the next record starts.
    pub fn mark(&self) -> u32 {
        self.data.len() as u32
    }

    /// Adds one IN record; `owner` `None` is [`THIS`].
    pub fn push(&mut self, owner: Option<&Name>, ttl: u32, data: Data) {
        match owner {
            None => self.data.extend_from_slice(&THIS),
            Some(name) => self.push_ref(name),
        }
        self.data
            .extend_from_slice(&u16::from(data.rtype()).to_be_bytes());
        match self.ttl {
            Some(one) => debug_assert_eq!(one, ttl, "a node's records share one TTL"),
            None => {
                self.data.extend_from_slice(&1u16.to_be_bytes()); // IN
                self.data.extend_from_slice(&ttl.to_be_bytes());
            }
        }
        let len_at = self.data.len();
        self.data.extend_from_slice(&[0, 0]);
        match data {
            Data::A(ip) => self.data.extend_from_slice(&ip.octets()),
            Data::Aaaa(ip) => self.data.extend_from_slice(&ip.octets()),
            Data::Srv {
                priority,
                weight,
                port,
                target,
            } => {
                for v in [priority, weight, port] {
                    self.data.extend_from_slice(&v.to_be_bytes());
                }
                match target {
                    Some(target) => self.push_ref(target),
                    None => self.data.extend_from_slice(&THIS),
                }
            }
            Data::Ptr(name) | Data::Cname(name) | Data::Ns(name) => push_name(&mut self.data, name),
            Data::Soa {
                mname,
                rname,
                times,
            } => {
                push_name(&mut self.data, mname);
                push_name(&mut self.data, rname);
                for t in times {
                    self.data.extend_from_slice(&t.to_be_bytes());
                }
            }
            Data::Txt(text) => {
                for chunk in text.as_bytes().chunks(255) {
                    self.data.push(chunk.len() as u8);
                    self.data.extend_from_slice(chunk);
                }
                if text.is_empty() {
                    self.data.push(0);
                }
            }
        }
        let len = (self.data.len() - len_at - 2) as u16;
        self.data[len_at..len_at + 2].copy_from_slice(&len.to_be_bytes());
    }

    /// Adds `record` as another server wrote it (an upstream's answer that `cache` keeps): its
    /// owner is [`THIS`] where it is `this` (lower-case wire form), else written out; the names
    /// of the types a message compresses (PTR, CNAME, NS, SRV's target, SOA) lower case and
    /// uncompressed, as [`Builder::push`] writes them; any other data as hickory writes it with
    /// its names uncompressed (RFC 3597). `false`, and nothing added, for a record of a class
    /// other than IN, for an OPT, or for data that does not encode.
    pub fn push_record(&mut self, this: &[u8], record: &Record) -> bool {
        if record.dns_class != hickory_proto::rr::DNSClass::IN
            || record.record_type() == RecordType::OPT
            || self.ttl.is_some()
        {
            return false;
        }
        let owner = (NameKey::new(&record.name).as_bytes() != this).then_some(&record.name);
        let ttl = record.ttl;
        match &record.data {
            RData::A(a) => self.push(owner, ttl, Data::A(a.0)),
            RData::AAAA(a) => self.push(owner, ttl, Data::Aaaa(a.0)),
            RData::PTR(n) => self.push(owner, ttl, Data::Ptr(&n.0)),
            RData::CNAME(n) => self.push(owner, ttl, Data::Cname(&n.0)),
            RData::NS(n) => self.push(owner, ttl, Data::Ns(&n.0)),
            RData::SRV(srv) => self.push(
                owner,
                ttl,
                Data::Srv {
                    priority: srv.priority,
                    weight: srv.weight,
                    port: srv.port,
                    target: Some(&srv.target),
                },
            ),
            RData::SOA(soa) => self.push(
                owner,
                ttl,
                Data::Soa {
                    mname: &soa.mname,
                    rname: &soa.rname,
                    times: [
                        soa.serial,
                        soa.refresh as u32,
                        soa.retry as u32,
                        soa.expire as u32,
                        soa.minimum,
                    ],
                },
            ),
            data => {
                let mut rdata = Vec::with_capacity(64);
                let mut enc = BinEncoder::new(&mut rdata);
                enc.set_name_encoding(NameEncoding::Uncompressed);
                let Ok(len) = data.emit(&mut enc).map(|()| rdata.len()) else {
                    return false;
                };
                let Ok(len) = u16::try_from(len) else {
                    return false;
                };
                match owner {
                    None => self.data.extend_from_slice(&THIS),
                    Some(name) => self.push_ref(name),
                }
                let rtype = u16::from(record.record_type());
                self.data.extend_from_slice(&rtype.to_be_bytes());
                self.data.extend_from_slice(&1u16.to_be_bytes()); // IN
                self.data.extend_from_slice(&ttl.to_be_bytes());
                self.data.extend_from_slice(&len.to_be_bytes());
                self.data.extend_from_slice(&rdata);
            }
        }
        true
    }

    pub fn finish(self) -> Arc<[u8]> {
        Arc::from(self.data)
    }

    /// What was built so far.
    pub fn bytes(&self) -> &[u8] {
        &self.data
    }
}

/// Which name [`THIS`] stands for in a run.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum This {
    /// The question's name: written as a pointer to it.
    Question,
    /// Another name (where a CNAME led), lower case, in wire form.
    Name(Arc<[u8]>),
}

/// A run of prepared records, shared with the index that built it.
#[derive(Clone)]
pub struct Prepared {
    data: Arc<[u8]>,
    start: u32,
    end: u32,
    count: u16,
    this: This,
    /// `Some`: the records are compact, and this is their TTL.
    ttl: Option<u32>,
    /// `Some`: the records hold their own TTLs, and this is written in place of each.
    set_ttl: Option<u32>,
}

/// One record of a run, as read from its bytes.
struct Parsed<'a> {
    /// How the owner is held, and the field's length.
    owner: (Held, usize),
    rtype: RecordType,
    /// Type, class and TTL, as a message holds them.
    fixed: [u8; 8],
    /// Where the data starts in the run.
    rdata_at: usize,
    rdata: &'a [u8],
    /// Where the next record starts in the run.
    next: usize,
}

impl std::fmt::Debug for Prepared {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Prepared")
            .field("count", &self.count)
            .field("bytes", &(self.end - self.start))
            .field("this", &self.this)
            .finish()
    }
}

impl Prepared {
    /// Records `start..end` of `data`, `count` of them.
    pub fn new(data: Arc<[u8]>, start: u32, end: u32, count: u16, this: This) -> Self {
        Self {
            data,
            start,
            end,
            count,
            this,
            ttl: None,
            set_ttl: None,
        }
    }

    /// Records `start..end` of `data` as [`Builder::for_name`] writes them: compact, each
    /// with the TTL `ttl`.
    pub fn compact(
        data: Arc<[u8]>,
        start: u32,
        end: u32,
        count: u16,
        this: This,
        ttl: u32,
    ) -> Self {
        Self {
            ttl: Some(ttl),
            ..Self::new(data, start, end, count, this)
        }
    }

    /// The record at `at` of the run `bytes`.
    fn parse<'a>(&self, bytes: &'a [u8], at: usize) -> Option<Parsed<'a>> {
        let owner = held(bytes.get(at..)?)?;
        let head = at + owner.1;
        let mut fixed = [0u8; 8];
        let (rdlen_at, rdata_at) = match self.ttl {
            Some(ttl) => {
                fixed[..2].copy_from_slice(bytes.get(head..head + 2)?);
                fixed[2..4].copy_from_slice(&1u16.to_be_bytes()); // IN
                fixed[4..].copy_from_slice(&ttl.to_be_bytes());
                (head + 2, head + 4)
            }
            None => {
                fixed.copy_from_slice(bytes.get(head..head + 8)?);
                if let Some(ttl) = self.set_ttl {
                    fixed[4..].copy_from_slice(&ttl.to_be_bytes());
                }
                (head + 8, head + 10)
            }
        };
        let rdlen = bytes.get(rdlen_at..rdata_at)?;
        let rdlen = usize::from(u16::from_be_bytes([rdlen[0], rdlen[1]]));
        Some(Parsed {
            owner,
            rtype: RecordType::from(u16::from_be_bytes([fixed[0], fixed[1]])),
            fixed,
            rdata_at,
            rdata: bytes.get(rdata_at..rdata_at + rdlen)?,
            next: rdata_at + rdlen,
        })
    }

    pub fn len(&self) -> usize {
        usize::from(self.count)
    }

    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// The type of each record, read from the record headers without decoding them.
    pub fn types(&self) -> impl Iterator<Item = RecordType> + '_ {
        let bytes = self.bytes();
        let mut at = 0usize;
        std::iter::from_fn(move || {
            let record = self.parse(bytes, at)?;
            at = record.next;
            Some(record.rtype)
        })
    }

    fn bytes(&self) -> &[u8] {
        self.data
            .get(self.start as usize..self.end as usize)
            .unwrap_or_default()
    }

    /// The bytes of a name held as `held` (not [`THIS`]) in the `len` bytes at `at` of the
    /// run: where it is written out.
    fn resolve(&self, at: usize, held: Held, len: usize) -> Option<&[u8]> {
        let at = self.start as usize + at;
        match held {
            Held::This => None,
            Held::Here => self.data.get(at..at + len),
            Held::Suffix(k) => {
                let own = 1 + usize::from(*self.data.first()?);
                self.data.get(1 + usize::from(k)..own)
            }
            Held::Back(d) => {
                let from = at.checked_sub(usize::from(d))?;
                let len = name_len(self.data.get(from..)?)?;
                self.data.get(from..from + len)
            }
        }
    }

    /// The name held at `at` of the run, as a name; [`THIS`] is `this`.
    fn name_at(&self, at: usize, this: &Name) -> Result<(Name, usize), ProtoError> {
        let bad = || ProtoError::Message("bad prepared name");
        let (how, len) = held(self.bytes().get(at..).ok_or_else(bad)?).ok_or_else(bad)?;
        let name = match how {
            Held::This => this.clone(),
            _ => Name::read(&mut BinDecoder::new(
                self.resolve(at, how, len).ok_or_else(bad)?,
            ))?,
        };
        Ok((name, len))
    }

    /// The records as hickory's type, [`This::Question`] read as `question`: for tests and for
    /// readers that need records rather than bytes.
    pub fn records(&self, question: &Name) -> Result<Vec<Record>, ProtoError> {
        let this = match &self.this {
            This::Question => question.clone(),
            This::Name(wire) => Name::read(&mut BinDecoder::new(wire))?,
        };
        let bytes = self.bytes();
        let mut out = Vec::with_capacity(self.len());
        let mut at = 0;
        while at < bytes.len() {
            let record = self
                .parse(bytes, at)
                .ok_or(ProtoError::Message("bad prepared record"))?;
            let (owner, _) = self.name_at(at, &this)?;
            let f = &record.fixed;
            let ttl = u32::from_be_bytes([f[4], f[5], f[6], f[7]]);
            let rest = record.rdata;
            let rdata = if record.rtype == RecordType::SRV {
                let field = |i: usize| -> Result<u16, ProtoError> {
                    rest.get(i..i + 2)
                        .map(|b| u16::from_be_bytes([b[0], b[1]]))
                        .ok_or(ProtoError::Message("bad prepared SRV"))
                };
                let (target, _) = self.name_at(record.rdata_at + 6, &this)?;
                RData::SRV(SRV::new(field(0)?, field(2)?, field(4)?, target))
            } else {
                let len = Restrict::new(rest.len() as u16);
                RData::read(&mut BinDecoder::new(rest), record.rtype, len)?
            };
            out.push(Record::from_rdata(owner, ttl, rdata));
            at = record.next;
        }
        Ok(out)
    }

    /// Whether the records share one TTL, held once ([`Prepared::compact`]).
    pub fn is_compact(&self) -> bool {
        self.ttl.is_some()
    }

    /// The same records with every TTL `ttl` (what `cache` answers with: the time left).
    pub fn with_ttl(&self, ttl: u32) -> Self {
        match self.ttl {
            Some(_) => Self {
                ttl: Some(ttl),
                ..self.clone()
            },
            None => Self {
                set_ttl: Some(ttl),
                ..self.clone()
            },
        }
    }

    /// Writes as many whole records as fit, in order, compressing names against what the
    /// message holds; returns how many went in and whether one did not fit. A record that does
    /// not fit is rolled back, bytes and remembered names, so the message ends after the last
    /// whole record (as CoreDNS truncates an answer).
    pub fn write_fitting<'a>(
        &'a self,
        enc: &mut BinEncoder<'_>,
        names: &mut Compressor<'a>,
    ) -> (u16, bool) {
        let bytes = self.bytes();
        let (mut at, mut written) = (0, 0u16);
        while at < bytes.len() {
            let (mark, known) = (enc.offset(), names.len());
            match self.write_one(bytes, at, enc, names) {
                Ok(next) => {
                    at = next;
                    written += 1;
                }
                Err(_) => {
                    enc.set_offset(mark);
                    enc.trim();
                    names.truncate(known);
                    return (written, true);
                }
            }
        }
        (written, false)
    }

    fn write_one<'a>(
        &'a self,
        bytes: &'a [u8],
        at: usize,
        enc: &mut BinEncoder<'_>,
        names: &mut Compressor<'a>,
    ) -> Result<usize, ProtoError> {
        let bad_name = || ProtoError::Message("bad prepared name");
        let record = self
            .parse(bytes, at)
            .ok_or(ProtoError::Message("bad prepared record"))?;
        let (how, len) = record.owner;
        match (how, &self.this) {
            (Held::This, This::Question) => enc.emit_u16(0xC000 | QUESTION_AT)?,
            (Held::This, This::Name(wire)) => names.write(enc, wire, true)?,
            _ => names.write(enc, self.resolve(at, how, len).ok_or_else(bad_name)?, true)?,
        }
        let (fixed, rdata) = (&record.fixed, record.rdata);
        // Names in RDATA are compressed only for the types of RFC 1035 (RFC 3597 section 4);
        // an SRV target is written whole (RFC 2782), as CoreDNS writes it.
        let (head, name, compress) = match record.rtype {
            RecordType::SRV => (6, true, false),
            RecordType::PTR | RecordType::CNAME | RecordType::NS => (0, true, true),
            _ => (rdata.len(), false, false),
        };
        if record.rtype == RecordType::SOA {
            // Two names, both compressible (RFC 1035), then five numbers.
            enc.emit_vec(fixed)?;
            let place = enc.place::<u16>()?;
            let bad = || ProtoError::Message("bad prepared SOA");
            let mname = name_len(rdata).ok_or_else(bad)?;
            let rname = name_len(&rdata[mname..]).ok_or_else(bad)?;
            names.write(enc, &rdata[..mname], true)?;
            names.write(enc, &rdata[mname..mname + rname], true)?;
            enc.emit_vec(&rdata[mname + rname..])?;
            let len = enc.len_since_place(&place) as u16;
            enc.emit_at(place, len)?;
        } else if !name {
            enc.emit_vec(fixed)?;
            enc.emit_u16(rdata.len() as u16)?;
            enc.emit_vec(rdata)?;
        } else {
            enc.emit_vec(fixed)?;
            let place = enc.place::<u16>()?;
            enc.emit_vec(&rdata[..head])?;
            let (how, len) = held(&rdata[head..]).ok_or_else(bad_name)?;
            let target = match (how, &self.this) {
                (Held::This, This::Question) => names.question,
                (Held::This, This::Name(wire)) => wire,
                _ => self
                    .resolve(record.rdata_at + head, how, len)
                    .ok_or_else(bad_name)?,
            };
            names.write(enc, target, compress)?;
            let len = enc.len_since_place(&place) as u16;
            enc.emit_at(place, len)?;
        }
        Ok(record.next)
    }
}

/// The length of the uncompressed wire name at the start of `bytes`.
fn name_len(bytes: &[u8]) -> Option<usize> {
    let mut at = 0;
    loop {
        let len = usize::from(*bytes.get(at)?);
        if len == 0 {
            return Some(at + 1);
        }
        if len > 63 {
            return None;
        }
        at += 1 + len;
    }
}

/// How many names a message remembers for compression. Beyond it names are written whole:
/// still correct, and it bounds the work a huge answer costs.
const COMPRESSION_CANDIDATES: usize = 256;

/// Suffixes a [`Compressor`] keeps without allocating: the question's name and an answer's
/// owners and targets (an SRV answer for three endpoints of a headless Service remembers 25: seven suffixes of
/// the question, six of each target).
const INLINE_CANDIDATES: usize = 32;

/// The names (every suffix of them) a message already holds, lower case, and where.
pub struct Compressor<'a> {
    /// Inline up to [`INLINE_CANDIDATES`]: a typical answer stays on the stack, so writing it
    /// allocates nothing.
    seen: SmallVec<[(&'a [u8], u16); INLINE_CANDIDATES]>,
    /// The question's name, lower case, wire form.
    question: &'a [u8],
}

impl<'a> Compressor<'a> {
    /// Starts with the question's name (lower case, wire form) at its place after the header.
    pub fn new(question: &'a [u8]) -> Self {
        let mut c = Self {
            seen: SmallVec::new(),
            question,
        };
        c.remember(question, question.len(), QUESTION_AT as usize);
        c
    }

    pub fn len(&self) -> usize {
        self.seen.len()
    }

    pub fn is_empty(&self) -> bool {
        self.seen.is_empty()
    }

    /// Forgets what was remembered after the first `len` (a record rolled back).
    pub fn truncate(&mut self, len: usize) {
        self.seen.truncate(len);
    }

    /// Remembers the suffixes of `name` that start in its first `upto` bytes, which were
    /// written out in full at `offset`.
    fn remember(&mut self, name: &'a [u8], upto: usize, offset: usize) {
        for at in label_starts(name).take_while(|&at| at < upto && name[at] != 0) {
            let pos = offset + at;
            if pos >= 0x3FFF || self.seen.len() >= COMPRESSION_CANDIDATES {
                return;
            }
            self.seen.push((&name[at..], pos as u16));
        }
    }

    /// Writes `name` (uncompressed, lower case, wire form): with `compress`, its longest
    /// suffix already in the message becomes a pointer. Either way, what it writes out in full
    /// is remembered for the names after it.
    fn write(
        &mut self,
        enc: &mut BinEncoder<'_>,
        name: &'a [u8],
        compress: bool,
    ) -> Result<(), ProtoError> {
        let start = enc.offset();
        for at in label_starts(name).take_while(|&at| name[at] != 0) {
            if compress && let Some(&(_, to)) = self.seen.iter().find(|(s, _)| *s == &name[at..]) {
                enc.emit_vec(&name[..at])?;
                self.remember(name, at, start);
                return enc.emit_u16(0xC000 | to);
            }
        }
        enc.emit_vec(name)?;
        self.remember(name, name.len(), start);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hickory_proto::op::Message;

    fn name(s: &str) -> Name {
        Name::from_ascii(s).unwrap()
    }

    #[test]
    fn prepared_records_read_back_as_built() {
        let svc = name("web.default.svc.cluster.local.");
        let mut b = Builder::default();
        b.push(None, 5, Data::A(Ipv4Addr::new(10, 0, 0, 1)));
        b.push(
            None,
            5,
            Data::Srv {
                priority: 0,
                weight: 100,
                port: 80,
                target: None,
            },
        );
        b.push(Some(&name("Other.Example.")), 7, Data::Txt("1.1.0"));
        let end = b.mark();
        let p = Prepared::new(b.finish(), 0, end, 3, This::Question);
        let records = p.records(&svc).unwrap();
        let text: Vec<String> = records.iter().map(|r| r.to_string()).collect();
        assert_eq!(
            text,
            [
                "web.default.svc.cluster.local. 5 IN A 10.0.0.1",
                "web.default.svc.cluster.local. 5 IN SRV 0 100 80 web.default.svc.cluster.local.",
                "other.example. 7 IN TXT 1.1.0",
            ]
        );
        let types: Vec<RecordType> = p.types().collect();
        assert_eq!(types, [RecordType::A, RecordType::SRV, RecordType::TXT]);
    }

    #[test]
    fn an_upstreams_records_are_prepared_and_read_back() {
        let question = name("WWW.Example.org.");
        let this = NameKey::new(&question);
        use hickory_proto::rr::rdata::{A, CNAME, MX, TXT};
        let records = vec![
            Record::from_rdata(
                name("WWW.Example.org."),
                300,
                RData::CNAME(CNAME(name("Example.ORG."))),
            ),
            Record::from_rdata(
                name("example.org."),
                300,
                RData::A(A::new(93, 184, 215, 14)),
            ),
            Record::from_rdata(
                name("example.org."),
                60,
                RData::MX(MX::new(10, name("Mail.Example.org."))),
            ),
            Record::from_rdata(
                name("www.example.org."),
                30,
                RData::TXT(TXT::new(vec!["v=spf1 -all".to_string()])),
            ),
        ];
        let mut b = Builder::default();
        for r in &records {
            assert!(b.push_record(this.as_bytes(), r), "{r}");
        }
        let end = b.mark();
        let p = Prepared::new(b.finish(), 0, end, records.len() as u16, This::Question);
        let text = |p: &Prepared| -> Vec<String> {
            p.records(&question)
                .unwrap()
                .iter()
                .map(|r| r.to_string())
                .collect()
        };
        // The question's own name as the question spells it (written as a pointer to it);
        // other names lower case where a message compresses them, as they came elsewhere.
        assert_eq!(
            text(&p),
            [
                "WWW.Example.org. 300 IN CNAME example.org.",
                "example.org. 300 IN A 93.184.215.14",
                "example.org. 60 IN MX 10 Mail.Example.org.",
                "WWW.Example.org. 30 IN TXT v=spf1 -all",
            ]
        );
        // A kept answer's TTLs are the time left, every one of them.
        assert!(
            text(&p.with_ttl(7))
                .iter()
                .all(|r| r.split(' ').nth(1) == Some("7"))
        );
        // Not of class IN: left as records.
        let mut chaos = records[1].clone();
        chaos.dns_class = hickory_proto::rr::DNSClass::CH;
        assert!(!Builder::default().push_record(this.as_bytes(), &chaos));
    }

    #[test]
    fn written_records_compress_against_the_question_and_each_other() {
        let qname = name("WEB.default.svc.cluster.local.");
        let target = name("ptr.default.svc.cluster.local.");
        let mut b = Builder::default();
        b.push(None, 5, Data::Ptr(&target));
        b.push(Some(&target), 5, Data::A(Ipv4Addr::new(10, 0, 0, 2)));
        let end = b.mark();
        let p = Prepared::new(b.finish(), 0, end, 2, This::Question);

        let mut query = Message::query();
        query.add_query(hickory_proto::op::Query::query(
            qname.clone(),
            RecordType::PTR,
        ));
        let mut buf = query.to_vec().unwrap();
        let key = NameKey::new(&qname);
        let mut enc = BinEncoder::with_offset(&mut buf, 0);
        enc.set_offset(enc.len());
        let mut names = Compressor::new(key.as_bytes());
        assert_eq!(
            p.write_fitting(&mut enc, &mut names),
            (p.len() as u16, false)
        );
        // Owner: a pointer (2); PTR: fixed part (10) + "ptr" (4) + pointer (2);
        // A: a pointer to the PTR target (2) + fixed part (10) + address (4).
        let written = buf.len() - query.to_vec().unwrap().len();
        assert_eq!(written, 2 + 10 + 4 + 2 + 2 + 10 + 4);
        // Patch the answer count and read the message back.
        buf[7] = 2;
        let msg = Message::from_vec(&buf).unwrap();
        let text: Vec<String> = msg.answers.iter().map(|r| r.to_string()).collect();
        assert_eq!(
            text,
            [
                "WEB.default.svc.cluster.local. 5 IN PTR ptr.default.svc.cluster.local.",
                "ptr.default.svc.cluster.local. 5 IN A 10.0.0.2",
            ]
        );
    }

    /// The message a run makes as the answer to `qname` (the header, the question, the records).
    fn written(p: &Prepared, qname: &Name, rtype: RecordType) -> Vec<u8> {
        let mut query = Message::query();
        query.add_query(hickory_proto::op::Query::query(qname.clone(), rtype));
        let mut buf = query.to_vec().unwrap();
        let key = NameKey::new(qname);
        let mut enc = BinEncoder::with_offset(&mut buf, 0);
        enc.set_offset(enc.len());
        let mut names = Compressor::new(key.as_bytes());
        assert_eq!(
            p.write_fitting(&mut enc, &mut names),
            (p.len() as u16, false)
        );
        buf.drain(..2); // the query's random ID
        buf
    }

    #[test]
    fn a_nodes_references_read_and_write_as_the_names_written_out() {
        // A ClusterIP Service's port: its SRV target is the end of the node's own name. A
        // headless Service's: its targets are other names, each also its address's owner.
        let cases = [
            (
                "_http._tcp.web.prod.svc.cluster.local.",
                vec!["web.prod.svc.cluster.local."],
                // The target and its address's owner (28 bytes each) become SUFFIX (3 each).
                2 * 28 - 2 * 3,
            ),
            (
                "web.prod.svc.cluster.local.",
                vec![
                    "db-0.web.prod.svc.cluster.local.",
                    "db-1.web.prod.svc.cluster.local.",
                ],
                // Each target stays written out (33 bytes); its address's owner is BACK (4).
                2 * (33 - 4),
            ),
        ];
        for (own, targets, saved) in cases {
            let own = name(own);
            let targets: Vec<Name> = targets.iter().map(|t| name(t)).collect();
            let build = |mut b: Builder| {
                for t in &targets {
                    let srv = Data::Srv {
                        priority: 0,
                        weight: 50,
                        port: 8080,
                        target: Some(t),
                    };
                    b.push(None, 5, srv);
                }
                let mid = b.mark();
                for (i, t) in targets.iter().enumerate() {
                    b.push(Some(t), 5, Data::A(Ipv4Addr::new(10, 0, 0, i as u8)));
                }
                (mid, b.mark(), b.bytes().to_vec())
            };
            let key = NameKey::new(&own);
            // As a node holds it: the own name first.
            let (mid, end, records) = build(Builder::for_name(key.as_bytes(), 5));
            let head = 1 + key.as_bytes().len() as u32;
            let mut data = vec![key.as_bytes().len() as u8];
            data.extend_from_slice(key.as_bytes());
            data.extend_from_slice(&records);
            let n = targets.len() as u16;
            let node = |s, e, c| {
                Prepared::compact(
                    Arc::from(&data[..]),
                    head + s,
                    head + e,
                    c,
                    This::Question,
                    5,
                )
            };
            let (node_srv, node_extra) = (node(0, mid, n), node(mid, end, n));
            let (plain_mid, plain_end, plain) = build(Builder::default());
            let plain: Arc<[u8]> = Arc::from(plain);
            let plain_srv = Prepared::new(plain.clone(), 0, plain_mid, n, This::Question);
            let plain_extra = Prepared::new(plain.clone(), plain_mid, plain_end, n, This::Question);

            // Smaller by the names the references stand for, and by class and TTL (6 bytes)
            // on each record.
            let compact = 6 * 2 * targets.len();
            assert_eq!(plain.len() - records.len(), saved + compact, "{own}");
            // Read back and written out, the same.
            for (a, b) in [(&node_srv, &plain_srv), (&node_extra, &plain_extra)] {
                assert_eq!(a.records(&own).unwrap(), b.records(&own).unwrap(), "{own}");
                assert_eq!(a.types().collect::<Vec<_>>(), b.types().collect::<Vec<_>>());
                assert_eq!(
                    written(a, &own, RecordType::SRV),
                    written(b, &own, RecordType::SRV)
                );
            }
            let srv = node_srv.records(&own).unwrap();
            let first = match &srv[0].data {
                RData::SRV(s) => s.target.clone(),
                other => panic!("{other:?}"),
            };
            assert_eq!(first, targets[0]);
        }
    }
}
