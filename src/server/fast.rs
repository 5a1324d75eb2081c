//! The fast path's reading of a query: the plainest queries only, read straight from the bytes
//! without building a hickory message. Anything unusual is left to the general path, so this
//! reader may refuse freely; what it accepts, both paths answer byte for byte alike.

use hickory_proto::rr::RecordType;

use crate::dns::name::WireName;

/// How a UDP client sized its answers: no EDNS (512 bytes), or EDNS's payload size.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Edns {
    None,
    Payload(u16),
}

/// A query the fast path can answer.
pub struct Question<'a> {
    pub id: u16,
    pub recursion_desired: bool,
    pub checking_disabled: bool,
    /// The question section as the client sent it (its name keeps the client's case).
    pub raw: &'a [u8],
    /// The name in lower-case wire form.
    pub key: [u8; 256],
    pub key_len: usize,
    /// Where each label of `key` starts, the root's terminating zero included.
    pub labels: [u8; 128],
    pub label_count: usize,
    pub qtype: RecordType,
    pub edns: Edns,
}

impl Question<'_> {
    pub fn key(&self) -> &[u8] {
        &self.key[..self.key_len]
    }

    pub fn labels(&self) -> &[u8] {
        &self.labels[..self.label_count]
    }

    /// The name, lower case, with where its labels start.
    pub fn name(&self) -> WireName<'_> {
        WireName::new(self.key(), self.labels())
    }
}

/// Query types the fast path looks up: ordinary data types. Meta types, ANY and zone
/// transfers, and everything rarer, take the general path.
fn ordinary(qtype: u16) -> bool {
    matches!(qtype, 1 | 2 | 5 | 6 | 12 | 15 | 16 | 28 | 33 | 64 | 65)
}

/// Reads `bytes` as one standard query: QR clear, opcode QUERY, flags none but RD, AD and CD,
/// one question of class IN with an uncompressed name and an ordinary type, no answer or
/// authority records, and at most an OPT record of EDNS version 0 with no options and DO
/// clear, ending the message. `None` for anything else.
pub fn parse(bytes: &[u8]) -> Option<Question<'_>> {
    let header = bytes.get(..12)?;
    let flags = u16::from_be_bytes([header[2], header[3]]);
    // QR, opcode, AA, TC, RA, Z and RCODE all clear; RD (0x0100), AD (0x0020) and CD (0x0010)
    // may be set.
    if flags & !0x0130 != 0 {
        return None;
    }
    let count = |i: usize| u16::from_be_bytes([header[i], header[i + 1]]);
    let additional = count(10);
    if count(4) != 1 || count(6) != 0 || count(8) != 0 || additional > 1 {
        return None;
    }
    let mut q = Question {
        id: count(0),
        recursion_desired: flags & 0x0100 != 0,
        checking_disabled: flags & 0x0010 != 0,
        raw: &[],
        key: [0; 256],
        key_len: 0,
        labels: [0; 128],
        label_count: 0,
        qtype: RecordType::A,
        edns: Edns::None,
    };
    let mut at = 12;
    loop {
        let len = usize::from(*bytes.get(at)?);
        if q.label_count == q.labels.len() {
            return None;
        }
        q.labels[q.label_count] = u8::try_from(q.key_len).ok()?;
        q.label_count += 1;
        if len == 0 {
            q.key[q.key_len] = 0;
            q.key_len += 1;
            at += 1;
            break;
        }
        // A pointer or an extended label type; and a name may not exceed 255 bytes.
        if len > 63 || q.key_len + 1 + len + 1 > 255 {
            return None;
        }
        let label = bytes.get(at + 1..at + 1 + len)?;
        q.key[q.key_len] = len as u8;
        for (i, b) in label.iter().enumerate() {
            q.key[q.key_len + 1 + i] = b.to_ascii_lowercase();
        }
        q.key_len += 1 + len;
        at += 1 + len;
    }
    let fixed = bytes.get(at..at + 4)?;
    let qtype = u16::from_be_bytes([fixed[0], fixed[1]]);
    if !ordinary(qtype) || u16::from_be_bytes([fixed[2], fixed[3]]) != 1 {
        return None;
    }
    q.qtype = RecordType::from(qtype);
    at += 4;
    q.raw = &bytes[12..at];
    if additional == 1 {
        // OPT: root owner, type 41, class = payload size, TTL = extended RCODE, version and
        // flags, and no options.
        let opt = bytes.get(at..at + 11)?;
        let ttl = u32::from_be_bytes([opt[5], opt[6], opt[7], opt[8]]);
        if opt[0] != 0 || opt[1..3] != [0, 41] || ttl != 0 || opt[9..11] != [0, 0] {
            return None;
        }
        q.edns = Edns::Payload(u16::from_be_bytes([opt[3], opt[4]]));
        at += 11;
    }
    (at == bytes.len()).then_some(q)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn query(name: &[u8], qtype: u16, flags: u16, opt: Option<[u8; 11]>) -> Vec<u8> {
        let mut b = vec![0x12, 0x34];
        b.extend_from_slice(&flags.to_be_bytes());
        b.extend_from_slice(&[0, 1, 0, 0, 0, 0, 0, u8::from(opt.is_some())]);
        b.extend_from_slice(name);
        b.extend_from_slice(&qtype.to_be_bytes());
        b.extend_from_slice(&[0, 1]);
        if let Some(o) = opt {
            b.extend_from_slice(&o);
        }
        b
    }

    const NAME: &[u8] = b"\x03Web\x07default\x03svc\x07cluster\x05local\x00";
    const OPT: [u8; 11] = [0, 0, 41, 0x04, 0xd0, 0, 0, 0, 0, 0, 0];

    #[test]
    fn plain_queries_are_read() {
        let bytes = query(NAME, 1, 0x0100, None);
        let q = parse(&bytes).unwrap();
        assert_eq!(q.id, 0x1234);
        assert!(q.recursion_desired && !q.checking_disabled);
        assert_eq!(
            q.key(),
            b"\x03web\x07default\x03svc\x07cluster\x05local\x00"
        );
        assert_eq!(q.labels(), &[0, 4, 12, 16, 24, 30]);
        assert_eq!(q.raw, &bytes[12..]);
        assert_eq!(q.edns, Edns::None);
        let bytes = query(NAME, 33, 0x0130, Some(OPT));
        let q = parse(&bytes).unwrap();
        assert_eq!(q.qtype, RecordType::SRV);
        assert!(q.checking_disabled);
        assert_eq!(q.edns, Edns::Payload(1232));
        let root = query(b"\x00", 2, 0, None);
        assert_eq!(parse(&root).unwrap().labels(), &[0]);
    }

    #[test]
    fn anything_unusual_is_left_to_the_general_path() {
        let ok = query(NAME, 1, 0x0100, None);
        assert!(parse(&ok).is_some());
        // Flags: QR, opcode NOTIFY, TC.
        for flags in [0x8100, 0x2100, 0x0300] {
            assert!(parse(&query(NAME, 1, flags, None)).is_none(), "{flags:#x}");
        }
        // ANY, AXFR, HINFO, OPT as a question.
        for qtype in [255, 252, 13, 41] {
            assert!(parse(&query(NAME, qtype, 0, None)).is_none(), "{qtype}");
        }
        // Class CH.
        let mut ch = ok.clone();
        let n = ch.len();
        ch[n - 1] = 3;
        assert!(parse(&ch).is_none());
        // A compression pointer in the question.
        assert!(parse(&query(b"\x03web\xc0\x0c", 1, 0, None)).is_none());
        // Trailing bytes, or a message cut short.
        let mut long = ok.clone();
        long.push(0);
        assert!(parse(&long).is_none());
        assert!(parse(&ok[..ok.len() - 1]).is_none());
        // EDNS: version 1, DO set, an option.
        let mut v1 = OPT;
        v1[6] = 1;
        let mut dnssec = OPT;
        dnssec[7] = 0x80;
        for opt in [v1, dnssec] {
            assert!(parse(&query(NAME, 1, 0, Some(opt))).is_none());
        }
        let mut cookie = query(NAME, 1, 0, Some(OPT));
        let n = cookie.len();
        cookie[n - 1] = 12;
        cookie.extend_from_slice(&[0, 10, 0, 8, 1, 2, 3, 4, 5, 6, 7, 8]);
        assert!(parse(&cookie).is_none());
        // Two questions.
        let mut two = ok.clone();
        two[5] = 2;
        assert!(parse(&two).is_none());
    }
}
