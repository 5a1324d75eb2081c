//! SOA records, built one way: the owner, its server and mailbox, and the timers.

use hickory_proto::rr::rdata::SOA;
use hickory_proto::rr::{Name, RData, Record};

/// Refresh, retry and expire of the zones clusterdns makes up (`kubernetes`, `k8s_external`):
/// the values CoreDNS's plugins write.
pub const TIMERS: [u32; 3] = [7200, 1800, 86400];

/// The parts of an SOA record.
#[derive(Clone, Debug)]
pub struct Soa {
    pub owner: Name,
    /// The record's own TTL.
    pub ttl: u32,
    pub mname: Name,
    pub rname: Name,
    pub serial: u32,
    /// Refresh, retry, expire.
    pub timers: [u32; 3],
    /// The negative-caching TTL (RFC 2308).
    pub minimum: u32,
}

impl Soa {
    /// The record.
    pub fn record(&self) -> Record {
        let [refresh, retry, expire] = self.timers.map(|t| i32::try_from(t).unwrap_or(i32::MAX));
        Record::from_rdata(
            self.owner.clone(),
            self.ttl,
            RData::SOA(SOA::new(
                self.mname.clone(),
                self.rname.clone(),
                self.serial,
                refresh,
                retry,
                expire,
                self.minimum,
            )),
        )
    }

    /// The five numbers of the record, in wire order.
    pub fn times(&self) -> [u32; 5] {
        let [refresh, retry, expire] = self.timers;
        [self.serial, refresh, retry, expire, self.minimum]
    }
}
