//! Writing answers: the message a response becomes, within the client's size (what does not
//! fit is left out as CoreDNS leaves it out), a zone transfer's many messages, and the bytes
//! the fast path writes behind the client's own question. The fast path and the general one
//! write through [`write_message`], so that they answer alike.

use hickory_proto::ProtoError;
use hickory_proto::op::{Header, HeaderCounts, LowerQuery, Metadata, ResponseCode};
use hickory_proto::rr::{Name, Record};
use hickory_proto::serialize::binary::{BinDecoder, BinEncodable, BinEncoder, NameEncoding};
use hickory_server::server::Request as HickoryRequest;
use hickory_server::zone_handler::{MessageResponseBuilder, Queries};

use super::Response;
use crate::dns::wire::{Compressor, NameKey};
use crate::plugin::{RecordSet, Rrs};

/// FORMERR for a request whose header could be read but not the rest.
pub(super) fn formerr(header: &Header) -> Option<Vec<u8>> {
    let queries = Queries::read(&mut BinDecoder::new(&[]), 0).ok()?;
    let msg = MessageResponseBuilder::new(&queries, None)
        .error_msg(&header.metadata, ResponseCode::FormErr);
    let mut buf = Vec::with_capacity(512);
    let mut encoder = BinEncoder::new(&mut buf);
    encoder.set_max_size(512);
    msg.destructive_emit(&mut encoder).ok()?;
    Some(buf)
}

/// The question as it goes back to the client. Usually the bytes it sent; but a name in them
/// may use a compression pointer (into the header, say), which would point at other bytes in
/// our answer: such a question is written out again, uncompressed.
fn echoed_question(request: &HickoryRequest) -> Option<Queries> {
    let raw = request.queries.as_bytes();
    let mut i = 0;
    let mut pointer = false;
    while i < raw.len() {
        let len = raw[i];
        if len & 0xC0 != 0 {
            pointer = true;
            break;
        }
        i += if len == 0 { 5 } else { 1 + usize::from(len) };
    }
    if !pointer {
        return None;
    }
    let mut buf = Vec::with_capacity(raw.len() + 32);
    let mut encoder = BinEncoder::new(&mut buf);
    // Uncompressed: a pointer here would count from this buffer, not from the answer's start.
    encoder.set_name_encoding(NameEncoding::Uncompressed);
    for q in request.queries.queries() {
        q.original().emit(&mut encoder).ok()?;
    }
    Queries::read(&mut BinDecoder::new(&buf), request.queries.len()).ok()
}

/// Encodes `response` to at most `max` bytes.
///
/// What does not fit is left out as CoreDNS leaves it out: additional records silently
/// (RFC 2181 section 9), answers and authority with TC set, and nothing after the first record
/// that did not fit; every whole record before it stays, part of an RRset too (a resolver
/// that never retries over TCP, such as musl's before 1.2.4, still gets addresses). Room for the OPT record is kept, so an EDNS client always gets one.
pub fn encode(request: &HickoryRequest, response: &Response, max: u16) -> Vec<u8> {
    let echo = echoed_question(request);
    let queries = echo.as_ref().unwrap_or(&request.queries);
    let opt = response.edns.as_ref().and_then(|edns| {
        let mut edns = edns.clone();
        edns.set_rcode_high(response.metadata.response_code.high());
        let mut bytes = Vec::with_capacity(16);
        Record::from(&edns)
            .emit(&mut BinEncoder::new(&mut bytes))
            .ok()?;
        Some(bytes)
    });
    let question = request
        .queries
        .queries()
        .first()
        .map(|q| NameKey::new(q.name()));
    // Compression points at the question only when there is exactly one.
    let key = question
        .as_ref()
        .filter(|_| queries.len() == 1)
        .map(NameKey::as_bytes);
    let sections = Sections {
        answers: &response.answers,
        authority: &response.authority,
        additionals: &response.additionals,
    };
    let mut buf = Vec::with_capacity(512);
    let written = write_message(
        &mut buf,
        queries.as_bytes(),
        queries.len() as u16,
        key,
        response.metadata,
        sections,
        opt.as_deref(),
        max,
    );
    match written {
        Ok(()) => buf,
        Err(_) => {
            // Could not encode: SERVFAIL with the header alone.
            let mut buf = Vec::with_capacity(12);
            let mut metadata = Metadata::response_from_request(&request.metadata);
            metadata.response_code = ResponseCode::ServFail;
            let header = Header {
                metadata,
                counts: HeaderCounts::default(),
            };
            let mut encoder = BinEncoder::new(&mut buf);
            let _ = header.emit(&mut encoder);
            buf
        }
    }
}

/// The messages of an answer: one, or the many of a zone transfer.
pub type Messages = smallvec::SmallVec<[Vec<u8>; 1]>;

/// How full a zone transfer's message is filled before the next one starts (Knot and BIND send
/// messages of about this size: large enough to be cheap, small enough to stream).
const TRANSFER_MESSAGE: usize = 16 * 1024;

/// A zone transfer's answer (its records, SOA to SOA) as messages of about
/// [`TRANSFER_MESSAGE`] bytes: the question in the first only, the OPT record in each where the
/// client sent one (RFC 5936 section 2.2).
pub(super) fn encode_transfer(request: &HickoryRequest, response: &Response) -> Messages {
    let qname = request
        .queries
        .queries()
        .first()
        .map_or_else(Name::root, |q| Name::from(q.name()));
    let records: Vec<Record> = response
        .answers
        .iter()
        .flat_map(|s| s.records(&qname))
        .collect();
    let opt = response.edns.as_ref().and_then(|edns| {
        let mut bytes = Vec::with_capacity(16);
        Record::from(edns)
            .emit(&mut BinEncoder::new(&mut bytes))
            .ok()?;
        Some(bytes)
    });
    let mut out = Messages::new();
    let mut i = 0;
    loop {
        let first = out.is_empty();
        let mut buf = Vec::with_capacity(TRANSFER_MESSAGE + 512);
        let mut enc = BinEncoder::new(&mut buf);
        let opt_len = opt.as_ref().map_or(0, Vec::len);
        enc.set_max_size(u16::MAX - opt_len as u16);
        let Ok(place) = enc.place::<Header>() else {
            break;
        };
        if first && enc.emit_vec(request.queries.as_bytes()).is_err() {
            break;
        }
        let mut n = 0u16;
        while i < records.len() && enc.offset() < TRANSFER_MESSAGE {
            let mark = enc.offset();
            if records[i].emit(&mut enc).is_err() {
                enc.set_offset(mark);
                enc.trim();
                break;
            }
            i += 1;
            n += 1;
        }
        if n == 0 && i < records.len() {
            // A record no message can hold: the transfer fails as a whole.
            let mut metadata = response.metadata;
            metadata.response_code = ResponseCode::ServFail;
            let mut buf = Vec::with_capacity(12);
            let _ = Header {
                metadata,
                counts: HeaderCounts::default(),
            }
            .emit(&mut BinEncoder::new(&mut buf));
            return smallvec::smallvec![buf];
        }
        let mut counts = HeaderCounts {
            queries: u16::from(first) * request.queries.len() as u16,
            answers: n,
            ..HeaderCounts::default()
        };
        if let Some(opt) = &opt {
            enc.set_max_size(u16::MAX);
            if enc.emit_vec(opt).is_ok() {
                counts.additionals = 1;
            }
        }
        let header = Header {
            metadata: response.metadata,
            counts,
        };
        if place.replace(&mut enc, header).is_err() {
            break;
        }
        out.push(buf);
        if i >= records.len() {
            break;
        }
    }
    out
}

/// An OPT record as we answer with it: no options, version 0, DO clear, the extended bits of
/// `rcode`. The same bytes hickory writes for such an [`Edns`] (the test below holds them equal).
pub(super) fn opt_record(payload: u16, rcode: ResponseCode) -> [u8; 11] {
    let [p0, p1] = payload.to_be_bytes();
    [0, 0, 41, p0, p1, rcode.high(), 0, 0, 0, 0, 0]
}

/// A response's record sections.
pub(super) struct Sections<'a> {
    pub answers: &'a [Rrs],
    pub authority: &'a [Rrs],
    pub additionals: &'a [Rrs],
}

/// Writes a response into `buf`: the header from `metadata`, the question section `question`
/// (`qcount` questions, as the client sent them), the sections, and `opt` last; at most `max`
/// bytes. `key` is the one question's name in lower-case wire form, which answers' names are
/// compressed against.
#[allow(clippy::too_many_arguments)]
pub(super) fn write_message(
    buf: &mut Vec<u8>,
    question: &[u8],
    qcount: u16,
    key: Option<&[u8]>,
    metadata: Metadata,
    sections: Sections<'_>,
    opt: Option<&[u8]>,
    max: u16,
) -> Result<(), ProtoError> {
    let mut enc = BinEncoder::new(buf);
    let opt_len = opt.map_or(0, <[u8]>::len) as u16;
    enc.set_max_size(max.saturating_sub(opt_len));
    let place = enc.place::<Header>()?;
    enc.emit_vec(question)?;
    let root = [0u8];
    let mut names = Compressor::new(key.unwrap_or(&root[..]));
    if key.is_none() {
        names.truncate(0); // no question to point at
    }
    let mut metadata = metadata;
    let mut counts = HeaderCounts {
        queries: qcount,
        ..HeaderCounts::default()
    };
    let (answers, full) = write_section(&mut enc, &mut names, sections.answers);
    counts.answers = answers;
    let mut truncated = full;
    if !truncated {
        let (n, full) = write_section(&mut enc, &mut names, sections.authority);
        counts.authorities = n;
        truncated = full;
        if !truncated {
            counts.additionals = write_section(&mut enc, &mut names, sections.additionals).0;
        }
    }
    metadata.truncation |= truncated;
    if let Some(opt) = opt {
        enc.set_max_size(max);
        enc.emit_vec(opt)?;
        counts.additionals += 1;
    }
    place.replace(&mut enc, Header { metadata, counts })?;
    Ok(())
}

/// Writes whole records until one does not fit; returns how many went in, and whether one
/// did not fit.
fn write_section<'a>(
    enc: &mut BinEncoder<'_>,
    names: &mut Compressor<'a>,
    sets: &'a [Rrs],
) -> (u16, bool) {
    let mut count = 0u16;
    for set in sets {
        match set {
            Rrs::Records(records) => {
                for r in records.iter() {
                    let mark = enc.offset();
                    if r.emit(enc).is_err() {
                        enc.set_offset(mark);
                        enc.trim();
                        return (count, true);
                    }
                    count += 1;
                }
            }
            Rrs::Prepared(p) => {
                let (n, full) = p.write_fitting(enc, names);
                count += n;
                if full {
                    return (count, true);
                }
            }
        }
    }
    (count, false)
}

/// Answers carry the owner name as the client wrote it (`KUBERNETES.default…` stays upper
/// case). Prepared records do it by pointing at the question; hickory's are renamed here.
pub(super) fn preserve_case(query: &LowerQuery, answers: Vec<Rrs>) -> Vec<Rrs> {
    let original = query.original().name();
    let lower: &Name = query.name();
    if original.eq_case(lower) {
        return answers;
    }
    answers
        .into_iter()
        .map(|set| {
            let Rrs::Records(set) = set else {
                return set;
            };
            if !set.iter().any(|r| &r.name == lower) {
                return Rrs::Records(set);
            }
            let renamed: Vec<Record> = set
                .iter()
                .map(|r| {
                    let mut r = r.clone();
                    if &r.name == lower {
                        r.name = original.clone();
                    }
                    r
                })
                .collect();
            Rrs::Records(RecordSet::from(renamed))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use hickory_proto::op::Edns;

    use super::*;

    #[test]
    fn the_fast_paths_opt_record_is_hickorys() {
        for (payload, rcode) in [
            (512, ResponseCode::NoError),
            (1232, ResponseCode::NXDomain),
            (4096, ResponseCode::BADVERS),
        ] {
            let mut edns = Edns::new();
            edns.set_max_payload(payload);
            edns.set_version(0);
            edns.set_dnssec_ok(false);
            edns.set_rcode_high(rcode.high());
            let mut bytes = Vec::new();
            Record::from(&edns)
                .emit(&mut BinEncoder::new(&mut bytes))
                .unwrap();
            assert_eq!(
                opt_record(payload, rcode)[..],
                bytes[..],
                "{payload} {rcode}"
            );
        }
    }
}
