//! Building prepared runs: a node's records (or a cache's) encoded once, with the owner
//! references and compact records the module documentation describes.

use super::*;

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
