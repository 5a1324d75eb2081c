//! A prepared run of records, and writing it into a message per query.

use super::*;

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
    /// What `ttl` is. Two fields rather than an enum with a TTL in two of its variants: the
    /// tag packs beside `count`, and a run is 48 bytes rather than 56 (a cache keeps one per
    /// section of each answer).
    ttl_is: TtlIs,
    ttl: u32,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum TtlIs {
    /// The records hold their own TTLs; `ttl` is unused.
    Own,
    /// The records hold their own TTLs, and `ttl` is written in place of each.
    Set,
    /// The records are compact, and `ttl` is their TTL.
    Compact,
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
            ttl_is: TtlIs::Own,
            ttl: 0,
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
            ttl_is: TtlIs::Compact,
            ttl,
            ..Self::new(data, start, end, count, this)
        }
    }

    /// The record at `at` of the run `bytes`.
    fn parse<'a>(&self, bytes: &'a [u8], at: usize) -> Option<Parsed<'a>> {
        let owner = held(bytes.get(at..)?)?;
        let head = at + owner.1;
        let mut fixed = [0u8; 8];
        let (rdlen_at, rdata_at) = match self.ttl_is {
            TtlIs::Compact => {
                fixed[..2].copy_from_slice(bytes.get(head..head + 2)?);
                fixed[2..4].copy_from_slice(&1u16.to_be_bytes()); // IN
                fixed[4..].copy_from_slice(&self.ttl.to_be_bytes());
                (head + 2, head + 4)
            }
            TtlIs::Own | TtlIs::Set => {
                fixed.copy_from_slice(bytes.get(head..head + 8)?);
                if self.ttl_is == TtlIs::Set {
                    fixed[4..].copy_from_slice(&self.ttl.to_be_bytes());
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
        self.ttl_is == TtlIs::Compact
    }

    /// The same records with every TTL `ttl` (what `cache` answers with: the time left).
    pub fn with_ttl(&self, ttl: u32) -> Self {
        Self {
            ttl_is: match self.ttl_is {
                TtlIs::Compact => TtlIs::Compact,
                TtlIs::Own | TtlIs::Set => TtlIs::Set,
            },
            ttl,
            ..self.clone()
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
