//! `cache`: keeps what the rest of the chain answered, as CoreDNS's `cache` keeps it.
//!
//! - Answers are kept by name, type, class, and the DO and CD bits, so a DNSSEC or
//!   checking-disabled query never gets a plain query's answer or the other way round.
//! - Success (NOERROR with records, or a referral) and denial (NXDOMAIN, NODATA, and SERVFAIL
//!   for `servfail`) are held in two stores with their own capacity, TTL bounds and `disable`d
//!   zones. How long: the smallest TTL in the message (for a denial, the SOA's), within
//!   [MINTTL, TTL]. On a hit every record carries the time left, unless `keepttl`.
//! - `prefetch`: an entry asked for often enough is refreshed in the background before it ends.
//! - `serve_stale`: an ended entry is still answered (TTL 0) for a while: at once while a
//!   refresh runs behind (`immediate`), or only when a refresh fails (`verify`).
//! - Beyond CoreDNS: an entry for a name a `kubernetes` index of the same block serves is kept
//!   with the index's generation, and is dropped when the cluster data changes, so a new Service
//!   is never hidden behind a cached NXDOMAIN.
//!
//! The stores are sharded maps whose locks are held for one hash operation.

pub mod config;

use std::hash::BuildHasher;
use std::net::SocketAddr;
use std::num::NonZeroU32;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock, Weak};
use std::time::{Duration, Instant};

use foldhash::fast::RandomState;
use hashbrown::HashTable;
use hickory_proto::op::{Edns, LowerQuery, Query, ResponseCode};
use hickory_proto::rr::{DNSClass, LowerName, Name, RData, Record, RecordType};
use hickory_proto::serialize::binary::{BinDecodable, BinDecoder};
use prometheus::IntCounter;
use smallvec::SmallVec;

use crate::cluster::index::Index;
use crate::cluster::source::ClusterSource;
use crate::dns::wire::{Builder, NameKey, Prepared, This};
use crate::observe::metrics::Metrics;
use crate::plugin::PluginError;
use crate::plugin::cache::config::{CacheConfig, Prefetch, ServeStale, StaleMode};
use crate::plugin::setup::Setup;
use crate::plugin::{
    Chain, FastAnswer, FastQuery, Handler, HandlerFuture, Next, NoUpstream, RecordSet, Reply,
    Request, Rrs, Transport,
};
use crate::vocab::DnsKey;

const NAME: &str = "cache";
const SHARDS: usize = 64;
/// The TTL of a message with no records to take one from (CoreDNS's `MinimalDefaultTTL`).
const DEFAULT_TTL: u32 = 5;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Success,
    Denial,
}

impl Kind {
    fn label(self) -> &'static str {
        match self {
            Kind::Success => "success",
            Kind::Denial => "denial",
        }
    }
}

/// A question as asked, looked up without an allocation; compared and hashed as its [`Parts`].
#[derive(Clone, Debug)]
struct Key {
    /// The name in lower-case wire form, inline up to 64 bytes: the fast path looks a name
    /// up as it read it, with no allocation.
    name: SmallVec<[u8; 64]>,
    qtype: RecordType,
    qclass: DNSClass,
    dnssec_ok: bool,
    checking_disabled: bool,
}

impl Key {
    fn of(req: &Request) -> Self {
        Self {
            name: NameKey::new(req.query.name()).as_bytes().into(),
            qtype: req.query.query_type(),
            qclass: req.query.query_class(),
            dnssec_ok: req.dnssec_ok,
            checking_disabled: req.checking_disabled,
        }
    }

    /// A plain query as the fast path read it: IN, DO clear.
    fn of_fast(q: FastQuery<'_>) -> Self {
        Self {
            name: q.name.key().into(),
            qtype: q.qtype,
            qclass: DNSClass::IN,
            dnssec_ok: false,
            checking_disabled: q.checking_disabled,
        }
    }

    fn parts(&self) -> Parts<'_> {
        (
            &self.name,
            u16::from(self.qtype),
            u16::from(self.qclass),
            self.dnssec_ok,
            self.checking_disabled,
        )
    }

    fn lower_name(&self) -> LowerName {
        // The bytes came from a valid name.
        let name = Name::read(&mut BinDecoder::new(&self.name));
        LowerName::new(&name.unwrap_or_else(|_| Name::root()))
    }
}

/// What tells one question from another: the name in lower-case wire form, the type, the class,
/// DO and CD. A [`Key`] looked up and an [`Entry`]'s [`Question`] are compared and hashed as these.
type Parts<'a> = (&'a [u8], u16, u16, bool, bool);

fn hash_of(hasher: &RandomState, parts: Parts<'_>) -> u64 {
    hasher.hash_one(parts)
}

/// The question an entry answers, kept in the entry: the store's map then holds a pointer per
/// entry rather than a key with its name inline (104 bytes a slot, at a map's load about 170
/// bytes an entry). Type and class as numbers: 24 bytes rather than 32.
struct Question {
    name: Box<[u8]>,
    qtype: u16,
    qclass: u16,
    dnssec_ok: bool,
    checking_disabled: bool,
}

impl Question {
    fn of(key: &Key) -> Self {
        let (name, qtype, qclass, dnssec_ok, checking_disabled) = key.parts();
        Self {
            name: name.into(),
            qtype,
            qclass,
            dnssec_ok,
            checking_disabled,
        }
    }

    fn parts(&self) -> Parts<'_> {
        (
            &self.name,
            self.qtype,
            self.qclass,
            self.dnssec_ok,
            self.checking_disabled,
        )
    }
}

/// A kept answer: 112 bytes, which with its `Arc`'s counts is jemalloc's 128-byte class (it was
/// 168, the 192-byte class, before the sections shared one slice and times became 32 bits).
struct Entry {
    question: Question,
    kind: Kind,
    rcode: ResponseCode,
    authoritative: bool,
    recursion_available: bool,
    authentic_data: bool,
    /// The sections as kept, one after another (see [`Entry::answers`]): prepared runs that
    /// share one TTL stay as they are (so a hit is written, and truncated, to the same bytes as
    /// the answer it keeps); the rest are prepared here, when they can be (see [`prepare`]),
    /// else kept as records.
    sets: Box<[Rrs]>,
    /// Where the authority and the additional sections start in `sets`.
    starts: [u16; 2],
    /// Every section is prepared runs: the fast path may send the entry.
    prepared: bool,
    stored: Instant,
    /// Seconds the entry is fresh for.
    ttl: u32,
    /// The watched index behind the name, and its generation when the answer was asked for.
    generation: Option<Generation>,
    /// What a background refresh needs to ask again as the client did.
    edns: Option<Box<Edns>>,
    /// Hits within `prefetch`'s window, and the last one (ms after `stored`, at most
    /// `u32::MAX`: 49 days).
    hits: AtomicU32,
    last_hit_ms: AtomicU32,
    refreshing: AtomicBool,
    /// After a failed refresh: ms after `stored` before which it is not asked again
    /// (`serve_stale`'s FAILURE_RECHECK); 0, none.
    recheck_at_ms: AtomicU32,
}

/// A watched index (its place in the list, counted from 1: the `Option` around it then takes no
/// room of its own) and its generation.
type Generation = (NonZeroU32, u64);

/// Milliseconds as an entry's 32-bit times hold them: past 49 days, 49 days.
fn ms32(d: Duration) -> u32 {
    u32::try_from(d.as_millis()).unwrap_or(u32::MAX)
}

impl Entry {
    fn answers(&self) -> &[Rrs] {
        &self.sets[..usize::from(self.starts[0])]
    }

    fn authority(&self) -> &[Rrs] {
        &self.sets[usize::from(self.starts[0])..usize::from(self.starts[1])]
    }

    fn additionals(&self) -> &[Rrs] {
        &self.sets[usize::from(self.starts[1])..]
    }

    fn age(&self, now: Instant) -> Duration {
        now.saturating_duration_since(self.stored)
    }

    fn fresh(&self, now: Instant) -> bool {
        self.age(now) < Duration::from_secs(u64::from(self.ttl))
    }

    /// A refresh failed a while ago: not asked again yet.
    fn rechecking(&self, now: Instant) -> bool {
        ms32(self.age(now)) < self.recheck_at_ms.load(Ordering::Relaxed)
    }

    /// A refresh failed: not asked again for `wait`.
    fn failed(&self, wait: Duration) {
        if wait.is_zero() {
            return;
        }
        let at = ms32(self.age(Instant::now()) + wait);
        self.recheck_at_ms.store(at, Ordering::Relaxed);
    }

    /// Whole seconds left, rounded down.
    fn left(&self, now: Instant) -> u32 {
        u32::try_from(
            Duration::from_secs(u64::from(self.ttl))
                .saturating_sub(self.age(now))
                .as_secs(),
        )
        .unwrap_or(0)
    }

    fn reply(&self, ttl: Option<u32>) -> Reply {
        let mut reply = Reply::new(self.rcode, NAME);
        reply.authoritative = self.authoritative;
        reply.recursion_available = self.recursion_available;
        reply.authentic_data = self.authentic_data;
        let section = |sets: &[Rrs]| -> Vec<Rrs> {
            let Some(ttl) = ttl else {
                return sets.to_vec();
            };
            sets.iter()
                .map(|set| match set {
                    Rrs::Prepared(p) => Rrs::Prepared(p.with_ttl(ttl)),
                    Rrs::Records(records) => {
                        let mut out = records.to_vec();
                        for r in &mut out {
                            r.ttl = ttl;
                        }
                        Rrs::Records(RecordSet::from(out))
                    }
                })
                .collect()
        };
        reply.answers = section(self.answers());
        reply.authority = section(self.authority());
        reply.additionals = section(self.additionals());
        reply
    }
}

struct Store {
    kind: Kind,
    shards: Vec<Mutex<HashTable<Arc<Entry>>>>,
    /// The one hash of the store: its bits 32..38 pick the shard, which leaves the low bits
    /// (where a map looks) and the top ones (its tags) varied within a shard.
    hasher: RandomState,
    /// At most this many entries, over all the shards.
    capacity: usize,
    len: AtomicUsize,
}

impl Store {
    fn new(kind: Kind, capacity: usize) -> Self {
        // Seeded per process: a client cannot aim names at one shard.
        let hasher = RandomState::default();
        Self {
            kind,
            shards: (0..SHARDS).map(|_| Mutex::new(HashTable::new())).collect(),
            hasher,
            capacity: capacity.max(1),
            len: AtomicUsize::new(0),
        }
    }

    fn shard(&self, hash: u64) -> std::sync::MutexGuard<'_, HashTable<Arc<Entry>>> {
        let at = (hash >> 32) as usize % SHARDS;
        crate::sync::lock(&self.shards[at])
    }

    fn get(&self, key: &Key) -> Option<Arc<Entry>> {
        let hash = hash_of(&self.hasher, key.parts());
        self.shard(hash)
            .find(hash, |e| e.question.parts() == key.parts())
            .cloned()
    }

    /// Inserts; returns whether an entry was evicted to make room.
    ///
    /// The bound is the store's, not each shard's (CoreDNS bounds each of its shards): names
    /// fall into shards unevenly, and with a bound per shard a cache of 9,984 held about 9,750
    /// of 10,000 names, evicting and asking again while it had room.
    fn insert(&self, entry: Arc<Entry>) -> bool {
        let hasher = &self.hasher;
        let hash = hash_of(hasher, entry.question.parts());
        let mut shard = self.shard(hash);
        if let Some(old) = shard.find_mut(hash, |e| e.question.parts() == entry.question.parts()) {
            *old = entry;
            return false;
        }
        let mut evicted = false;
        if self.len.load(Ordering::Relaxed) >= self.capacity {
            evicted = self.evict_one(&mut shard);
            if !evicted {
                // This shard is empty: room is made in another one, with this one's lock let go
                // (a thread holds one shard's lock at a time), and the name looked for again.
                drop(shard);
                evicted = self.shards.iter().any(|other| {
                    let mut other = crate::sync::lock(other);
                    self.evict_one(&mut other)
                });
                shard = self.shard(hash);
                if let Some(old) =
                    shard.find_mut(hash, |e| e.question.parts() == entry.question.parts())
                {
                    *old = entry;
                    return evicted;
                }
            }
        }
        shard.insert_unique(hash, entry, |e| hash_of(hasher, e.question.parts()));
        self.len.fetch_add(1, Ordering::Relaxed);
        evicted
    }

    /// Removes one entry of `shard`, if it has one. Random eviction, as CoreDNS's: the order of
    /// a shard is that of the hashes, which are seeded per process.
    fn evict_one(&self, shard: &mut HashTable<Arc<Entry>>) -> bool {
        let Some(victim) = shard.iter().next().cloned() else {
            return false;
        };
        let at = hash_of(&self.hasher, victim.question.parts());
        match shard.find_entry(at, |e| Arc::ptr_eq(e, &victim)) {
            Ok(found) => {
                found.remove();
                self.len.fetch_sub(1, Ordering::Relaxed);
                true
            }
            Err(_) => false,
        }
    }

    fn remove(&self, key: &Key) {
        let hash = hash_of(&self.hasher, key.parts());
        if let Ok(found) = self
            .shard(hash)
            .find_entry(hash, |e| e.question.parts() == key.parts())
        {
            found.remove();
            self.len.fetch_sub(1, Ordering::Relaxed);
        }
    }

    fn len(&self) -> usize {
        self.len.load(Ordering::Relaxed)
    }
}

struct Settings {
    max_ttl: u32,
    min_ttl: u32,
    disabled: Vec<LowerName>,
}

pub struct Inner {
    zones: Vec<LowerName>,
    /// The same, and the zones `disable`d for success and for denial, in lower-case wire form:
    /// what the fast path asks ([`Handler::passes_fast`]).
    zone_keys: Vec<Box<[u8]>>,
    success_off: Vec<Box<[u8]>>,
    denial_off: Vec<Box<[u8]>>,
    zones_label: String,
    success_cfg: Settings,
    denial_cfg: Settings,
    prefetch: Option<Prefetch>,
    stale: Option<ServeStale>,
    /// `serve_stale_policy prefer_positive`.
    prefer_positive: bool,
    servfail: Duration,
    keepttl: bool,
    success: Store,
    denial: Store,
    metrics: Arc<Metrics>,
    /// The `kubernetes` indexes of the block, set once the block is built.
    watched: OnceLock<Vec<Arc<Index>>>,
    /// The block's chain, for refreshing in the background.
    chain: OnceLock<Weak<Chain>>,
    /// What a hit counts, per server of the block: found once, so the fast path counts a hit
    /// without looking its series up.
    hit_counters: OnceLock<Vec<HitCounters>>,
}

/// A server's `coredns_cache_requests_total` and `coredns_cache_hits_total` (success, denial).
struct HitCounters {
    server: String,
    requests: IntCounter,
    hits: [IntCounter; 2],
}

pub struct Cache {
    inner: Arc<Inner>,
}

impl Cache {
    pub fn new(cfg: &CacheConfig, metrics: Arc<Metrics>) -> Self {
        let settings = |k: &crate::plugin::cache::config::Kind| Settings {
            max_ttl: k.max_ttl,
            min_ttl: k.min_ttl,
            disabled: k.disabled.iter().map(LowerName::new).collect(),
        };
        let zones_label = cfg
            .zones
            .iter()
            .map(|z| z.to_string())
            .collect::<Vec<_>>()
            .join(",");
        let keys = |zones: &[Name]| -> Vec<Box<[u8]>> {
            zones
                .iter()
                .map(|z| NameKey::new(z).as_bytes().into())
                .collect()
        };
        Self {
            inner: Arc::new(Inner {
                zones: cfg.zones.iter().map(LowerName::new).collect(),
                zone_keys: keys(&cfg.zones),
                success_off: keys(&cfg.success.disabled),
                denial_off: keys(&cfg.denial.disabled),
                zones_label,
                success_cfg: settings(&cfg.success),
                denial_cfg: settings(&cfg.denial),
                prefetch: cfg.prefetch,
                stale: cfg.serve_stale,
                prefer_positive: cfg.prefer_positive,
                servfail: cfg.servfail,
                keepttl: cfg.keepttl,
                success: Store::new(Kind::Success, cfg.success.capacity),
                denial: Store::new(Kind::Denial, cfg.denial.capacity),
                metrics,
                watched: OnceLock::new(),
                chain: OnceLock::new(),
                hit_counters: OnceLock::new(),
            }),
        }
    }

    /// The part the builder keeps, to hand the cache its block's indexes and chain.
    pub fn shared(&self) -> Arc<Inner> {
        self.inner.clone()
    }
}

impl Inner {
    pub fn watch(&self, indexes: Vec<Arc<Index>>) {
        let _ = self.watched.set(indexes);
    }

    pub fn set_chain(&self, chain: &Arc<Chain>) {
        let _ = self.chain.set(Arc::downgrade(chain));
    }

    /// Touches every series this cache reports for each of `servers`, so they show (at 0)
    /// before the first query, and keeps what a hit counts.
    pub fn register(&self, servers: &[String]) {
        let m = &self.metrics.cache;
        let z = self.zones_label.as_str();
        let counters = servers
            .iter()
            .map(|server| {
                self.register_one(server);
                let hits = |kind: Kind| m.hits.with_label_values(&[server, kind.label(), z, ""]);
                HitCounters {
                    server: server.clone(),
                    requests: m.requests.with_label_values(&[server, z, ""]),
                    hits: [hits(Kind::Success), hits(Kind::Denial)],
                }
            })
            .collect();
        let _ = self.hit_counters.set(counters);
    }

    fn register_one(&self, server: &str) {
        let m = &self.metrics.cache;
        let z = self.zones_label.as_str();
        for kind in [Kind::Success, Kind::Denial] {
            m.entries.with_label_values(&[server, kind.label(), z, ""]);
            m.hits.with_label_values(&[server, kind.label(), z, ""]);
            m.evictions
                .with_label_values(&[server, kind.label(), z, ""]);
        }
        for c in [
            &m.requests,
            &m.misses,
            &m.prefetch,
            &m.drops,
            &m.served_stale,
        ] {
            c.with_label_values(&[server, z, ""]);
        }
    }

    fn enabled(&self, kind: Kind, name: &LowerName) -> bool {
        let s = match kind {
            Kind::Success => &self.success_cfg,
            Kind::Denial => &self.denial_cfg,
        };
        !s.disabled.iter().any(|z| z.zone_of(name))
    }

    /// Which watched index serves `name`, and its generation now.
    fn generation(&self, name: &LowerName) -> Option<Generation> {
        let watched = self.watched.get()?;
        let i = watched.iter().position(|ix| ix.zone_of(name).is_some())?;
        let place = NonZeroU32::new(u32::try_from(i + 1).ok()?)?;
        Some((place, watched[i].generation()))
    }

    fn current(&self, entry: &Entry) -> bool {
        match (entry.generation, self.watched.get()) {
            (Some((place, g)), Some(w)) => w
                .get(place.get() as usize - 1)
                .is_some_and(|ix| ix.generation() == g),
            _ => true,
        }
    }

    fn lookup(&self, key: &Key) -> Option<Arc<Entry>> {
        for store in [&self.success, &self.denial] {
            if let Some(e) = store.get(key) {
                // A positive kept beside a negative (`prefer_positive`) is answered while it
                // may be; past that, the negative is.
                if store.kind == Kind::Success && self.prefer_positive {
                    let now = Instant::now();
                    if !e.fresh(now) && !self.stale_ok(&e, now) && self.denial.get(key).is_some() {
                        continue;
                    }
                }
                if self.current(&e) {
                    return Some(e);
                }
                // The cluster changed under it.
                store.remove(key);
                self.set_entries(store, "");
            }
        }
        None
    }

    fn set_entries(&self, store: &Store, server: &str) {
        if server.is_empty() {
            return;
        }
        self.metrics
            .cache
            .entries
            .with_label_values(&[server, store.kind.label(), &self.zones_label, ""])
            .set(store.len() as i64);
    }

    /// Keeps `reply` as the answer to `key`, if it is of a kind kept here.
    fn store(
        &self,
        key: Key,
        reply: &Reply,
        generation: Option<Generation>,
        edns: Option<&Edns>,
        server: &str,
    ) {
        // Part of an answer is not the answer.
        if reply.truncated {
            return;
        }
        let Some((kind, ttl)) = self.classify(reply) else {
            return;
        };
        let name = key.lower_name();
        if ttl == 0 || !self.enabled(kind, &name) {
            return;
        }
        if reply.rcode == ResponseCode::ServFail
            && let Some(old) = self.lookup(&key)
            && self.stale_ok(&old, Instant::now())
        {
            // A failed refresh does not replace what serve_stale can still answer with.
            return;
        }
        let owner = Name::from(&name);
        let records = |sets: &[Rrs]| -> Box<[Rrs]> {
            let mut kept = Vec::with_capacity(sets.len());
            let mut loose: Vec<Record> = Vec::new();
            let flush = |loose: &mut Vec<Record>, kept: &mut Vec<Rrs>| {
                if loose.is_empty() {
                    return;
                }
                let records = std::mem::take(loose);
                kept.push(match prepare(&key.name, &records) {
                    Some(p) => Rrs::Prepared(p),
                    None => Rrs::Records(RecordSet::from(
                        records
                            .into_iter()
                            .map(|mut r| {
                                // Kept in lower case; the server writes the next client's
                                // spelling.
                                if r.name == owner {
                                    r.name = owner.clone();
                                }
                                r
                            })
                            .collect::<Vec<_>>(),
                    )),
                });
            };
            for set in sets {
                match set {
                    // A compact run can take a new TTL as it is.
                    Rrs::Prepared(p) if p.is_compact() => {
                        flush(&mut loose, &mut kept);
                        kept.push(set.clone());
                    }
                    _ => loose.extend(set.records(&owner)),
                }
            }
            flush(&mut loose, &mut kept);
            kept.into_boxed_slice()
        };
        let (answers, authority, additionals) = (
            records(&reply.answers),
            records(&reply.authority),
            records(&reply.additionals),
        );
        let (Ok(a), Ok(b)) = (
            u16::try_from(answers.len()),
            u16::try_from(answers.len() + authority.len()),
        ) else {
            return; // more runs than a message could hold records
        };
        let sets: Box<[Rrs]> = [answers, authority, additionals].concat().into();
        let prepared = sets.iter().all(|s| matches!(s, Rrs::Prepared(_)));
        let entry = Arc::new(Entry {
            question: Question::of(&key),
            kind,
            rcode: reply.rcode,
            authoritative: reply.authoritative,
            recursion_available: reply.recursion_available,
            authentic_data: reply.authentic_data,
            sets,
            starts: [a, b],
            prepared,
            stored: Instant::now(),
            ttl,
            generation,
            edns: edns.cloned().map(Box::new),
            hits: AtomicU32::new(0),
            last_hit_ms: AtomicU32::new(0),
            refreshing: AtomicBool::new(false),
            recheck_at_ms: AtomicU32::new(0),
        });
        let (store, other) = match kind {
            Kind::Success => (&self.success, &self.denial),
            Kind::Denial => (&self.denial, &self.success),
        };
        // `prefer_positive`: a positive that may still be answered is kept beside a negative,
        // or an answer without records (a referral), that comes after it.
        let keep_positive = self.prefer_positive
            && (kind == Kind::Denial || entry.answers().is_empty())
            && self.success.get(&key).is_some_and(|old| {
                let now = Instant::now();
                !old.answers().is_empty() && (old.fresh(now) || self.stale_ok(&old, now))
            });
        if keep_positive {
            if kind == Kind::Success {
                return; // the referral does not replace it
            }
        } else {
            other.remove(&key);
        }
        if store.insert(entry) {
            self.metrics
                .cache
                .evictions
                .with_label_values(&[server, kind.label(), &self.zones_label, ""])
                .inc();
        }
        self.set_entries(store, server);
        self.set_entries(other, server);
    }

    /// The kind of a reply and how long to keep it, as CoreDNS's cache decides.
    fn classify(&self, reply: &Reply) -> Option<(Kind, u32)> {
        let clamp = |ttl: u32, s: &Settings| ttl.max(s.min_ttl).min(s.max_ttl);
        let all = |sets: &[Rrs]| -> Vec<Record> {
            sets.iter().flat_map(|s| s.records(&Name::root())).collect()
        };
        let answers = all(&reply.answers);
        let authority = all(&reply.authority);
        let soa_ttl = authority.iter().find_map(|r| match &r.data {
            RData::SOA(soa) => Some(r.ttl.min(soa.minimum)),
            _ => None,
        });
        match reply.rcode {
            ResponseCode::NoError if !answers.is_empty() => {
                let min = answers
                    .iter()
                    .chain(&authority)
                    .chain(all(&reply.additionals).iter())
                    .filter(|r| r.record_type() != RecordType::OPT)
                    .map(|r| r.ttl)
                    .min()
                    .unwrap_or(DEFAULT_TTL);
                Some((Kind::Success, clamp(min, &self.success_cfg)))
            }
            ResponseCode::NoError
                if soa_ttl.is_none()
                    && authority.iter().any(|r| r.record_type() == RecordType::NS) =>
            {
                // A referral.
                let min = authority.iter().map(|r| r.ttl).min().unwrap_or(DEFAULT_TTL);
                Some((Kind::Success, clamp(min, &self.success_cfg)))
            }
            // NODATA without an SOA says nothing of how long it holds (RFC 2308 section 5):
            // not kept (CoreDNS 1.14, #8232).
            ResponseCode::NoError if soa_ttl.is_none() => None,
            ResponseCode::NoError | ResponseCode::NXDomain => Some((
                Kind::Denial,
                clamp(soa_ttl.unwrap_or(DEFAULT_TTL), &self.denial_cfg),
            )),
            ResponseCode::ServFail => Some((
                Kind::Denial,
                u32::try_from(self.servfail.as_secs()).unwrap_or(u32::MAX),
            )),
            _ => None,
        }
    }

    fn stale_ok(&self, e: &Entry, now: Instant) -> bool {
        self.stale.is_some_and(|s| {
            e.age(now)
                .saturating_sub(Duration::from_secs(u64::from(e.ttl)))
                <= s.duration
        })
    }

    /// Counts a hit for `prefetch`; true when the entry should be refreshed now.
    fn wants_prefetch(&self, e: &Entry, now: Instant) -> bool {
        let Some(p) = self.prefetch else {
            return false;
        };
        let at = ms32(e.age(now));
        let last = e.last_hit_ms.swap(at, Ordering::Relaxed);
        let hits =
            if e.hits.load(Ordering::Relaxed) > 0 && at.saturating_sub(last) > ms32(p.duration) {
                e.hits.store(1, Ordering::Relaxed);
                1
            } else {
                e.hits.fetch_add(1, Ordering::Relaxed) + 1
            };
        let threshold = (u64::from(p.percentage) * u64::from(e.ttl))
            .div_ceil(100)
            .max(1);
        hits >= p.amount && u64::from(e.left(now)) <= threshold
    }
}

/// `records` as one prepared run for the question `this` (lower-case wire form), each keeping
/// its TTL until [`Prepared::with_ttl`] gives them the time left: a kept answer from upstream is
/// then written as the cluster's are, by copying, on the fast path as on the general one.
/// `None` where a record cannot be prepared (see [`Builder::push_record`]).
fn prepare(this: &[u8], records: &[Record]) -> Option<Prepared> {
    let mut b = Builder::default();
    for r in records {
        if !b.push_record(this, r) {
            return None;
        }
    }
    let end = b.mark();
    let count = u16::try_from(records.len()).ok()?;
    Some(Prepared::new(b.finish(), 0, end, count, This::Question))
}

/// What a background refresh asks.
struct Refresh {
    key: Key,
    edns: Option<Edns>,
    src: SocketAddr,
    transport: Transport,
    server: String,
    local: DnsKey,
}

impl Inner {
    /// Asks the rest of the chain again, in the background, and keeps the answer.
    fn refresh(self: &Arc<Self>, r: Refresh) {
        let Some(chain) = self.chain.get().and_then(Weak::upgrade) else {
            return;
        };
        let inner = self.clone();
        tokio::spawn(async move {
            let name = r.key.lower_name();
            let mut q = Query::query(Name::from(&name), r.key.qtype);
            q.set_query_class(r.key.qclass);
            let query = LowerQuery::query(q);
            let req = Request {
                query: &query,
                src: r.src,
                transport: r.transport,
                dnssec_ok: r.key.dnssec_ok,
                edns: r.edns.as_ref(),
                recursion_desired: true,
                checking_disabled: r.key.checking_disabled,
                server: &r.server,
                view: chain.view().map_or("", |v| v.name()),
                depth: 0,
                id: 0,
                size: 0,
                local: r.local,
                upstream: &NoUpstream,
            };
            let generation = inner.generation(&name);
            let answered = match chain.serve_after(NAME, &req).await {
                Ok(reply) => {
                    inner.store(
                        r.key.clone(),
                        &reply,
                        generation,
                        r.edns.as_ref(),
                        &r.server,
                    );
                    matches!(reply.rcode, ResponseCode::NoError | ResponseCode::NXDomain)
                }
                Err(_) => false,
            };
            // The next hit may try again; after a failure, only once FAILURE_RECHECK is over.
            if let Some(e) = inner.lookup(&r.key) {
                if !answered {
                    e.failed(inner.stale.map_or(Duration::ZERO, |s| s.failure_recheck));
                }
                e.refreshing.store(false, Ordering::Relaxed);
            }
        });
    }
}

impl Handler for Cache {
    fn name(&self) -> &'static str {
        NAME
    }

    /// A name outside the cache's zones, or in a zone where both success and denial are
    /// `disable`d (kubeadm's `cluster.local`), goes past the cache uncounted, as in `serve`.
    fn passes_fast(&self, q: FastQuery<'_>) -> bool {
        let c = &self.inner;
        let within = |zones: &[Box<[u8]>]| zones.iter().any(|z| q.name.is_in(z));
        !within(&c.zone_keys) || (within(&c.success_off) && within(&c.denial_off))
    }

    /// A fresh entry, all of it prepared, as `serve` would answer it: the sections with the
    /// time left as every TTL. Counted once sent ([`Handler::served_kept`]). With `prefetch`,
    /// whose hits are counted per entry and may ask again behind the client, and for an
    /// entry past its TTL (`serve_stale`), `serve` answers.
    fn answer_fast(&self, q: FastQuery<'_>) -> Option<FastAnswer> {
        let c = &self.inner;
        if c.prefetch.is_some() || self.passes_fast(q) {
            return None;
        }
        let e = c.lookup(&Key::of_fast(q))?;
        let now = Instant::now();
        if !e.prepared || !e.fresh(now) {
            return None;
        }
        let ttl = (!c.keepttl).then(|| e.left(now));
        Some(FastAnswer::Kept {
            reply: e.reply(ttl),
            kind: e.kind.label(),
        })
    }

    fn served_kept(&self, _: &Reply, kind: &'static str, server: &str) {
        let c = &self.inner;
        let mut known = c.hit_counters.get().into_iter().flatten();
        if let Some(h) = known.find(|h| h.server == server) {
            h.requests.inc();
            h.hits[usize::from(kind != Kind::Success.label())].inc();
            return;
        }
        let m = &c.metrics.cache;
        let z = c.zones_label.as_str();
        m.requests.with_label_values(&[server, z, ""]).inc();
        m.hits.with_label_values(&[server, kind, z, ""]).inc();
    }

    fn serve<'a>(&'a self, req: &'a Request<'a>, next: Next<'a>) -> HandlerFuture<'a> {
        Box::pin(async move {
            let c = &self.inner;
            let name = req.query.name();
            if !c.zones.iter().any(|z| z.zone_of(name))
                || (!c.enabled(Kind::Success, name) && !c.enabled(Kind::Denial, name))
                || matches!(
                    req.query.query_type(),
                    RecordType::AXFR | RecordType::IXFR | RecordType::ANY
                )
            {
                return next.serve(req).await;
            }
            let m = &c.metrics.cache;
            let z = c.zones_label.as_str();
            m.requests.with_label_values(&[req.server, z, ""]).inc();
            let key = Key::of(req);
            let now = Instant::now();
            let refresh = |key: &Key, e: &Entry| Refresh {
                key: key.clone(),
                edns: e.edns.as_deref().cloned(),
                src: req.src,
                transport: req.transport,
                server: req.server.to_string(),
                local: req.local,
            };
            if let Some(e) = c.lookup(&key) {
                if e.fresh(now) {
                    m.hits
                        .with_label_values(&[req.server, e.kind.label(), z, ""])
                        .inc();
                    // A cluster name is not refreshed behind the client: its entry goes when the
                    // cluster changes, and a background ask could not follow its aliases.
                    if e.generation.is_none()
                        && c.wants_prefetch(&e, now)
                        && !e.refreshing.swap(true, Ordering::Relaxed)
                    {
                        m.prefetch.with_label_values(&[req.server, z, ""]).inc();
                        c.refresh(refresh(&key, &e));
                    }
                    let ttl = (!c.keepttl).then(|| e.left(now));
                    return Ok(e.reply(ttl));
                }
                if e.generation.is_none()
                    && let Some(s) = c.stale.filter(|_| c.stale_ok(&e, now))
                {
                    let stale = |e: &Entry| {
                        m.served_stale.with_label_values(&[req.server, z, ""]).inc();
                        Ok(e.reply(Some(s.response_ttl)))
                    };
                    // A refresh in flight, or one that failed within FAILURE_RECHECK: the stale
                    // entry at once, without asking again.
                    if e.refreshing.load(Ordering::Relaxed) || e.rechecking(now) {
                        return stale(&e);
                    }
                    if s.mode == StaleMode::Immediate {
                        if !e.refreshing.swap(true, Ordering::Relaxed) {
                            c.refresh(refresh(&key, &e));
                        }
                        return stale(&e);
                    }
                    // verify: the source first, for at most VERIFY_TIMEOUT; the stale entry
                    // unless it answers NOERROR or NXDOMAIN (as CoreDNS's verifying writer
                    // decides). A verify that runs out of time goes on in the background.
                    let generation = c.generation(name);
                    let asked = next.serve(req);
                    let answered = if s.verify_timeout.is_zero() {
                        Some(asked.await)
                    } else {
                        tokio::time::timeout(s.verify_timeout, asked).await.ok()
                    };
                    match answered {
                        Some(Ok(reply))
                            if matches!(
                                reply.rcode,
                                ResponseCode::NoError | ResponseCode::NXDomain
                            ) =>
                        {
                            c.store(key, &reply, generation, req.edns, req.server);
                            return Ok(reply);
                        }
                        Some(_) => {
                            e.failed(s.failure_recheck);
                            return stale(&e);
                        }
                        None => {
                            if !e.refreshing.swap(true, Ordering::Relaxed) {
                                c.refresh(refresh(&key, &e));
                            }
                            return stale(&e);
                        }
                    }
                }
            }
            m.misses.with_label_values(&[req.server, z, ""]).inc();
            // Read before asking: an answer from older data is then never kept as newer.
            let generation = c.generation(name);
            let reply = next.serve(req).await?;
            c.store(key, &reply, generation, req.edns, req.server);
            Ok(reply)
        })
    }
}

/// Puts `cache` into the block being set up.
pub fn setup(cfg: &config::CacheConfig, s: &mut Setup<'_>) -> Result<(), PluginError> {
    let cache = Cache::new(cfg, s.metrics.clone());
    let inner = cache.shared();
    // Entries for the cluster's names are dropped when the index changes them.
    let indexes: Vec<Arc<Index>> = s
        .shared::<Arc<ClusterSource>>()
        .map(|k| vec![k.index.clone()])
        .unwrap_or_default();
    let servers = s.servers.clone();
    s.on_chain(move |chain| {
        inner.watch(indexes);
        inner.set_chain(chain);
        inner.register(&servers);
    });
    s.handler(cache);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What a kept answer costs: the entry with its `Arc`'s two counts in jemalloc's 128-byte
    /// class, a run of records in 48 bytes.
    #[test]
    fn an_entry_and_a_run_stay_small() {
        assert!(
            std::mem::size_of::<Entry>() + 16 <= 128,
            "{}",
            std::mem::size_of::<Entry>()
        );
        assert_eq!(std::mem::size_of::<Rrs>(), 48);
    }
}
