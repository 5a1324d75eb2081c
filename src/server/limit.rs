//! The per-source UDP limit (`ratelimit LIMIT`, or `--udp-per-source-qps`): queries answered
//! per second from one source address, counted by every socket of a port at once without a
//! lock.
//!
//! The counts live in a fixed table of atomic words, each a one-second window and a count. A
//! source address is hashed (with a key drawn at start, so no client can choose whom it
//! collides with) to two words; both are counted, and the smaller count is the source's (a
//! count-min sketch). Two sources share a count only where they share both words, so the table
//! can only ever over-count: a busy neighbour may cut a source short, never lift it above its
//! limit. The table costs 128 KiB a port, and only where a limit is set.

use std::hash::BuildHasher;
use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

/// Words in the table: a power of two.
const SLOTS: usize = 1 << 14;

/// What a port allows one source.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SourceLimitConfig {
    /// Queries per second from one address; 0: no limit.
    pub limit: u32,
    /// Addresses never limited.
    pub exempt: Vec<IpAddr>,
}

impl SourceLimitConfig {
    /// The limit of a port whose blocks each set `a` and `b`: the lower (0 is none), and both
    /// lists of exempt addresses.
    pub fn merge(&self, other: &Self) -> Self {
        let limit = match (self.limit, other.limit) {
            (0, n) | (n, 0) => n,
            (a, b) => a.min(b),
        };
        let mut exempt = self.exempt.clone();
        exempt.extend(other.exempt.iter().filter(|ip| !self.exempt.contains(ip)));
        Self { limit, exempt }
    }
}

/// The counts of one port.
pub struct SourceLimit {
    limit: u32,
    exempt: Vec<IpAddr>,
    start: Instant,
    hasher: foldhash::fast::RandomState,
    slots: Box<[AtomicU64]>,
}

impl std::fmt::Debug for SourceLimit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SourceLimit")
            .field("limit", &self.limit)
            .field("exempt", &self.exempt)
            .finish()
    }
}

impl SourceLimit {
    /// `None` where the configuration sets no limit.
    pub fn new(cfg: &SourceLimitConfig) -> Option<Self> {
        (cfg.limit > 0).then(|| Self {
            limit: cfg.limit,
            exempt: cfg.exempt.clone(),
            start: Instant::now(),
            hasher: foldhash::fast::RandomState::default(),
            slots: (0..SLOTS).map(|_| AtomicU64::new(0)).collect(),
        })
    }

    /// Counts a query from `ip`; whether it may be answered.
    pub fn allow(&self, ip: IpAddr) -> bool {
        self.allow_at(ip, self.start.elapsed().as_secs())
    }

    /// [`SourceLimit::allow`] in the window `second` (seconds since the table was made).
    fn allow_at(&self, ip: IpAddr, second: u64) -> bool {
        if self.exempt.contains(&ip) {
            return true;
        }
        let ip = canonical(ip);
        let h = self.hasher.hash_one(ip);
        let window = second as u32;
        let a = bump(&self.slots[h as usize & (SLOTS - 1)], window);
        let b = bump(&self.slots[(h >> 32) as usize & (SLOTS - 1)], window);
        a.min(b) <= self.limit
    }
}

/// An IPv4 client seen on a dual-stack socket is the same client as on an IPv4 one.
fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    }
}

/// Counts one query in `slot` for `window`, starting the count afresh where the slot holds an
/// older window; returns the count.
fn bump(slot: &AtomicU64, window: u32) -> u32 {
    let mut current = slot.load(Ordering::Relaxed);
    loop {
        let (held, count) = ((current >> 32) as u32, current as u32);
        let next = if held == window {
            if count == u32::MAX {
                return count;
            }
            current + 1
        } else {
            (u64::from(window) << 32) | 1
        };
        match slot.compare_exchange_weak(current, next, Ordering::Relaxed, Ordering::Relaxed) {
            Ok(_) => return next as u32,
            Err(seen) => current = seen,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::Ipv4Addr;

    fn limit(n: u32, exempt: &[IpAddr]) -> SourceLimit {
        SourceLimit::new(&SourceLimitConfig {
            limit: n,
            exempt: exempt.to_vec(),
        })
        .unwrap()
    }

    #[test]
    fn no_limit_is_no_table() {
        assert!(SourceLimit::new(&SourceLimitConfig::default()).is_none());
    }

    #[test]
    fn a_source_gets_its_limit_each_second_and_others_keep_theirs() {
        let l = limit(3, &[]);
        let a = IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1));
        let b = IpAddr::V4(Ipv4Addr::new(10, 0, 0, 2));
        let got: Vec<bool> = (0..5).map(|_| l.allow_at(a, 7)).collect();
        assert_eq!(got, [true, true, true, false, false]);
        assert!(l.allow_at(b, 7), "another source has its own count");
        assert!(l.allow_at(a, 8), "a new second starts afresh");
    }

    #[test]
    fn the_same_client_over_ipv6_mapped_addresses_is_counted_once() {
        let l = limit(1, &[]);
        let v4 = IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1));
        let mapped = IpAddr::V6(Ipv4Addr::new(192, 0, 2, 1).to_ipv6_mapped());
        assert!(l.allow_at(v4, 0));
        assert!(!l.allow_at(mapped, 0));
    }

    #[test]
    fn exempt_addresses_are_never_limited() {
        let ip = IpAddr::V4(Ipv4Addr::LOCALHOST);
        let l = limit(1, &[ip]);
        assert!((0..100).all(|_| l.allow_at(ip, 0)));
    }

    #[test]
    fn sockets_counting_at_once_lose_no_count() {
        let l = std::sync::Arc::new(limit(4000, &[]));
        let ip = IpAddr::V4(Ipv4Addr::new(10, 1, 2, 3));
        let allowed: usize = (0..4)
            .map(|_| {
                let l = l.clone();
                std::thread::spawn(move || (0..2000).filter(|_| l.allow_at(ip, 1)).count())
            })
            .collect::<Vec<_>>()
            .into_iter()
            .map(|t| t.join().unwrap())
            .sum();
        assert_eq!(allowed, 4000);
    }

    #[test]
    fn merging_keeps_the_lower_limit_and_every_exempt_address() {
        let a = SourceLimitConfig {
            limit: 100,
            exempt: vec![IpAddr::V4(Ipv4Addr::LOCALHOST)],
        };
        let b = SourceLimitConfig {
            limit: 50,
            exempt: vec![IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1))],
        };
        let none = SourceLimitConfig::default();
        assert_eq!(a.merge(&b).limit, 50);
        assert_eq!(a.merge(&b).exempt.len(), 2);
        assert_eq!(a.merge(&none).limit, 100);
        assert_eq!(none.merge(&none).limit, 0);
    }
}
