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

mod builder;
mod compressor;
mod prepared;

pub use builder::{Builder, Data};
pub use compressor::Compressor;
pub use prepared::{Prepared, This};

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
