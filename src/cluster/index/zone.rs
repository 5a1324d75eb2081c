//! The zones an index serves, and their SOA records.

use super::*;

/// One zone of the index, with its SOA and NS prebuilt.
pub struct Zone {
    pub name: LowerName,
    /// The name in lower-case wire form, as the index keys names.
    pub key: Box<[u8]>,
    pub reverse: bool,
    /// A zone of ServiceImports' names (`multicluster`).
    pub multicluster: bool,
    /// The SOA as records and as prepared wire data: one serial, built together.
    pub(super) soa: ArcSwap<(RecordSet, Prepared)>,
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

pub(super) fn next_serial(prev: u32) -> u32 {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as u32)
        .unwrap_or(0);
    now.max(prev.wrapping_add(1))
}

pub(super) fn soa_record(zone: &Name, ttl: u32, serial: u32) -> (RecordSet, Prepared) {
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
