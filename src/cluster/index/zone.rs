//! The zones an index serves, and their SOA records.

use super::*;
use crate::dns::soa::{self, Soa};

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
    let soa = Soa {
        owner: zone.clone(),
        ttl: ttl.min(300),
        mname: name::join(&["ns", "dns"], zone).unwrap_or_else(|| zone.clone()),
        rname: name::child(zone, "hostmaster").unwrap_or_else(|| zone.clone()),
        serial,
        timers: soa::TIMERS,
        minimum: ttl,
    };
    let mut b = Builder::default();
    b.push(
        Some(zone),
        soa.ttl,
        Data::Soa {
            mname: &soa.mname,
            rname: &soa.rname,
            times: soa.times(),
        },
    );
    let end = b.mark();
    let prepared = Prepared::new(b.finish(), 0, end, 1, This::Question);
    (Arc::from(vec![soa.record()]), prepared)
}
