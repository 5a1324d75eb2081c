//! The per-source UDP limit (`ratelimit LIMIT`, or `--udp-per-source-qps`): queries answered
//! per second from one source address, counted by every socket of a port at once without a
//! lock.
//!
//! The counts live in a fixed table of atomic words. Each word holds one source's count in one
//! second: a 16-bit tag of the source's hash, the second (16 bits, wrapping), and the count. A
//! source's hash (keyed at start, so no client can choose whom it collides with) names two
//! words; it counts in the first that is free (its second has passed) or already its own, with
//! one compare-and-swap, so every query is counted exactly once and no source gets past its
//! limit. Two sources share a count only where they share a word and a tag (one pair in 65,536
//! of those that share a word): then the two are held to one limit together. Where both words
//! are held by other sources in this second, the query is let through
//! uncounted, as the table cannot take a new source then: a flood of spoofed addresses cannot
//! make the table cut short the real clients, only go unchecked for the rest of that second. The
//! table costs 128 KiB a port, and only where a limit is set.

use std::hash::BuildHasher;
use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use crate::vocab::{SourceLimitConfig, client_ip};

/// Words in the table: a power of two.
const SLOTS: usize = 1 << 14;

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
            exempt: cfg.exempt.iter().copied().map(client_ip).collect(),
            start: Instant::now(),
            hasher: foldhash::fast::RandomState::default(),
            slots: (0..SLOTS).map(|_| AtomicU64::new(0)).collect(),
        })
    }

    /// Counts a query from `ip`; whether it may be answered.
    pub fn allow(&self, ip: IpAddr) -> bool {
        self.allow_at(ip, self.start.elapsed().as_secs())
    }

    /// [`SourceLimit::allow`] in the second `second` (since the table was made).
    fn allow_at(&self, ip: IpAddr, second: u64) -> bool {
        // The listener hands in the client's address as `vocab::client_ip` makes it.
        if self.exempt.contains(&ip) {
            return true;
        }
        let h = self.hasher.hash_one(ip);
        let tag = (h >> 48) as u16;
        let second = second as u16;
        for at in [h as usize, (h >> 24) as usize] {
            match count(&self.slots[at & (SLOTS - 1)], tag, second) {
                Some(n) => return n <= self.limit,
                None => continue, // another source's, this second
            }
        }
        true
    }
}

/// A slot's word: tag, second, count.
fn unpack(word: u64) -> (u16, u16, u32) {
    ((word >> 48) as u16, (word >> 32) as u16, word as u32)
}

fn pack(tag: u16, second: u16, count: u32) -> u64 {
    (u64::from(tag) << 48) | (u64::from(second) << 32) | u64::from(count)
}

/// Counts one query of the source `tag` in `slot` for `second`: in a slot that is free (an
/// older second, or never used) or already the source's. Returns the source's count, or `None`
/// where another source holds the slot in this second.
fn count(slot: &AtomicU64, tag: u16, second: u16) -> Option<u32> {
    let mut current = slot.load(Ordering::Relaxed);
    loop {
        let (held_by, held_in, n) = unpack(current);
        let next = if current == 0 || held_in != second {
            pack(tag, second, 1)
        } else if held_by == tag {
            pack(tag, second, n.saturating_add(1))
        } else {
            return None;
        };
        match slot.compare_exchange_weak(current, next, Ordering::Relaxed, Ordering::Relaxed) {
            Ok(_) => return Some(unpack(next).2),
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
        // The listener hands the limit the client's address as the chain sees it.
        assert!(!l.allow_at(crate::vocab::client_ip(mapped), 0));
    }

    #[test]
    fn exempt_addresses_are_never_limited() {
        let ip = IpAddr::V4(Ipv4Addr::LOCALHOST);
        let l = limit(1, &[ip]);
        assert!((0..100).all(|_| l.allow_at(ip, 0)));
        // An exempt address written as a dual-stack socket sees it is the same client.
        let mapped = IpAddr::V6(Ipv4Addr::LOCALHOST.to_ipv6_mapped());
        let l = limit(1, &[mapped]);
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
    fn a_slot_held_by_another_source_sends_a_source_to_its_second_slot_or_through() {
        let slot = AtomicU64::new(0);
        assert_eq!(count(&slot, 7, 3), Some(1));
        assert_eq!(count(&slot, 7, 3), Some(2));
        assert_eq!(count(&slot, 8, 3), None, "held by 7 in second 3");
        assert_eq!(count(&slot, 8, 4), Some(1), "a new second frees it");
        assert_eq!(count(&slot, 7, 4), None);
        // Many sources in one second: each is counted on its own, or let through uncounted
        // where both its slots are taken. Two share a count only where they share a slot and
        // a tag: about 122 pairs of 2,000 sources share a first slot here, and a pair a tag 1
        // time in 65,536, so a third shared count comes about once in 10^9 runs.
        let l = limit(2, &[]);
        let sources = 2_000u32;
        let allowed = (0..sources)
            .filter(|i| {
                let ip = IpAddr::V4(Ipv4Addr::from(0x0a00_0000 + i));
                (0..2).all(|_| l.allow_at(ip, 9))
            })
            .count();
        assert!(allowed >= sources as usize - 2, "{allowed} of {sources}");
        // And each of them is held to its limit.
        let ip = IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1));
        assert!(!l.allow_at(ip, 9));
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
