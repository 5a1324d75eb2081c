//! `hosts`: A, AAAA and PTR answers from a hosts(5) file and the block's inline lines.
//!
//! The answers are built when the file is read ([`Table`]); a query is one hash lookup and a
//! clone of a prepared record run. A background task checks the file every `reload` period
//! (size, modification time, inode) and swaps in a new table when it changed; a file that cannot
//! be read keeps the last table serving.
//!
//! As CoreDNS's `hosts`:
//! - a name outside the zones goes on to the next plugin, except a PTR query, which is answered
//!   for any address in the table;
//! - A and AAAA answer with the addresses (authoritative); a known name asked for another type
//!   gets NODATA;
//! - an unknown name goes on when `fallthrough` covers it, and gets SERVFAIL otherwise (there
//!   is no SOA to deny it with);
//! - a PTR for an address not in the table always goes on.

pub mod config;

use std::collections::HashMap;
use std::net::IpAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use arc_swap::ArcSwap;
use hickory_proto::op::ResponseCode;
use hickory_proto::rr::rdata::{A, AAAA, PTR};
use hickory_proto::rr::{LowerName, Name, RData, Record, RecordType};

use crate::dns::name;
use crate::observe::metrics::Metrics;
use crate::plugin::PluginError;
use crate::plugin::hosts::config::{HostsConfig, strip_zone};
use crate::plugin::setup::Setup;
use crate::plugin::shared::fallthrough::Fallthrough;
use crate::plugin::{Handler, HandlerFuture, Next, RecordSet, Reply, Request};

const NAME: &str = "hosts";

/// `IP NAME…` lines, in the order they were read.
pub type Entries = Vec<(IpAddr, Vec<Name>)>;

/// Reads a hosts(5) text: `#` starts a comment, fields are split on white space, the first is
/// an address (a `%zone` suffix is dropped) and the others are names. Lines that do not fit are
/// skipped, as every hosts file reader does; the count of them is returned for a warning.
pub fn parse_file(text: &str) -> (Entries, usize) {
    let mut out = Vec::new();
    let mut skipped = 0;
    for line in text.lines() {
        let line = line.split_once('#').map_or(line, |(l, _)| l);
        let mut fields = line.split_whitespace();
        let Some(first) = fields.next() else {
            continue;
        };
        let Ok(ip) = strip_zone(first).parse::<IpAddr>() else {
            skipped += 1;
            continue;
        };
        let hosts: Vec<Name> = fields
            .filter_map(|f| name::fqdn(f).map(|n| n.to_lowercase()))
            .collect();
        if hosts.is_empty() {
            skipped += 1;
            continue;
        }
        out.push((ip, hosts));
    }
    (out, skipped)
}

/// The answers, built once per read of the file.
#[derive(Default)]
pub struct Table {
    names: HashMap<LowerName, Addresses>,
    /// `*.NAME` entries, by NAME: each matches exactly one label below NAME (not NAME itself,
    /// and not deeper), where no entry names the question itself. No PTR comes of them.
    wild: HashMap<LowerName, Addresses>,
    ptr: HashMap<LowerName, RecordSet>,
    /// Name–address pairs, as `coredns_hosts_entries` counts them.
    entries: usize,
}

#[derive(Default)]
struct Addresses {
    a: Option<RecordSet>,
    aaaa: Option<RecordSet>,
}

impl Addresses {
    fn get(&self, qtype: RecordType) -> Option<&RecordSet> {
        match qtype {
            RecordType::A => self.a.as_ref(),
            RecordType::AAAA => self.aaaa.as_ref(),
            _ => None,
        }
    }
}

impl Table {
    /// The file's entries first, then the inline ones; names outside `zones` are left out, and
    /// an address listed twice for a name answers once.
    pub fn build(file: &Entries, cfg: &HostsConfig) -> Self {
        let mut v4: HashMap<LowerName, (Name, Vec<IpAddr>)> = HashMap::new();
        let mut v6: HashMap<LowerName, (Name, Vec<IpAddr>)> = HashMap::new();
        let mut rev: HashMap<IpAddr, Vec<Name>> = HashMap::new();
        let mut order: Vec<LowerName> = Vec::new();
        let mut entries = 0;
        for (ip, hosts) in file.iter().chain(cfg.inline.iter()) {
            for name in hosts {
                if !cfg.zones.iter().any(|z| z.zone_of(name)) {
                    continue;
                }
                let wildcard = name.is_wildcard();
                let key = LowerName::from(name);
                if !v4.contains_key(&key) && !v6.contains_key(&key) {
                    order.push(key.clone());
                }
                let family = if ip.is_ipv4() { &mut v4 } else { &mut v6 };
                let list = &mut family
                    .entry(key)
                    .or_insert_with(|| (name.clone(), Vec::new()))
                    .1;
                if !list.contains(ip) {
                    list.push(*ip);
                    entries += 1;
                }
                if cfg.reverse && !wildcard {
                    let names = rev.entry(*ip).or_default();
                    if !names.contains(name) {
                        names.push(name.clone());
                    }
                }
            }
        }
        let ttl = cfg.ttl;
        let run = |name: &Name, ips: &[IpAddr]| -> RecordSet {
            ips.iter()
                .map(|ip| {
                    let rdata = match ip {
                        IpAddr::V4(v4) => RData::A(A(*v4)),
                        IpAddr::V6(v6) => RData::AAAA(AAAA(*v6)),
                    };
                    Record::from_rdata(name.clone(), ttl, rdata)
                })
                .collect()
        };
        let mut names = HashMap::with_capacity(order.len());
        let mut wild = HashMap::new();
        for key in order {
            let a = v4.get(&key).map(|(n, ips)| run(n, ips));
            let aaaa = v6.get(&key).map(|(n, ips)| run(n, ips));
            let name = Name::from(&key);
            if name.is_wildcard() {
                wild.insert(LowerName::from(&name.base_name()), Addresses { a, aaaa });
            } else {
                names.insert(key, Addresses { a, aaaa });
            }
        }
        let ptr = rev
            .into_iter()
            .map(|(ip, hosts)| {
                let owner = name::reverse_name(ip);
                let records: RecordSet = hosts
                    .into_iter()
                    .map(|h| Record::from_rdata(owner.clone(), ttl, RData::PTR(PTR(h))))
                    .collect();
                (LowerName::from(&owner), records)
            })
            .collect();
        Self {
            names,
            wild,
            ptr,
            entries,
        }
    }

    pub fn entries(&self) -> usize {
        self.entries
    }

    /// `None`: the name is not in the table; `Some(None)`: it is, without records of `qtype`.
    /// A name no entry has may match a wildcard one label above it (`*.example.com` for
    /// `apps.example.com`): its records then carry the name asked.
    pub fn lookup(&self, name: &LowerName, qtype: RecordType) -> Option<Option<RecordSet>> {
        if qtype == RecordType::PTR {
            return self.ptr.get(name).map(|r| Some(r.clone()));
        }
        if let Some(e) = self.names.get(name) {
            return Some(e.get(qtype).cloned());
        }
        // Not the root itself (no wildcard matches its own apex). hickory does not count a
        // leading `*` among a name's labels, so the wildcard owner written literally (`*.`,
        // `*.example.com`) is looked for here too, one label above.
        if name.is_root() {
            return None;
        }
        let e = self.wild.get(&name.base_name())?;
        let owner = Name::from(name);
        Some(e.get(qtype).map(|records| {
            records
                .iter()
                .map(|r| {
                    let mut r = r.clone();
                    r.name = owner.clone();
                    r
                })
                .collect()
        }))
    }
}

pub struct Hosts {
    zones: Vec<LowerName>,
    fallthrough: Fallthrough,
    fallthrough_unsupported: bool,
    table: Arc<ArcSwap<Table>>,
    poll: Option<tokio::task::JoinHandle<()>>,
}

impl Hosts {
    /// Reads the file and starts watching it. A missing file is a warning, as in CoreDNS (it
    /// is served once it appears); a folder in its place is an error.
    pub fn new(cfg: &HostsConfig, metrics: Arc<Metrics>) -> Result<Self, PluginError> {
        if cfg.path.is_dir() {
            return Err(PluginError::new(
                NAME,
                format!("{} is a folder, not a hosts file", cfg.path.display()),
            )
            .at(&cfg.pos));
        }
        let file = match crate::plugin::shared::blocking(|| read(&cfg.path)) {
            Ok(entries) => entries,
            Err(e) => {
                tracing::warn!("plugin/hosts: {}: {e}", cfg.path.display());
                Vec::new()
            }
        };
        let table = Arc::new(ArcSwap::from_pointee(Table::build(&file, cfg)));
        publish(&metrics, &cfg.path, &table.load());
        let poll = (!cfg.reload.is_zero())
            .then(tokio::runtime::Handle::try_current)
            .and_then(Result::ok)
            .map(|rt| rt.spawn(watch(cfg.clone(), table.clone(), metrics)));
        Ok(Self {
            zones: cfg.zones.iter().map(LowerName::from).collect(),
            fallthrough: cfg.fallthrough.clone(),
            fallthrough_unsupported: cfg.fallthrough_unsupported,
            table,
            poll,
        })
    }

    fn answer(&self, req: &Request) -> Option<Reply> {
        let name = req.query.name();
        let qtype = req.query.query_type();
        let in_zone = self.zones.iter().any(|z| z.zone_of(name));
        if !in_zone && qtype != RecordType::PTR {
            return None;
        }
        let table = self.table.load();
        match table.lookup(name, qtype) {
            // A type hosts does not serve, for a name it has: on, with `fallthrough_unsupported`.
            Some(None)
                if self.fallthrough_unsupported
                    && !matches!(qtype, RecordType::A | RecordType::AAAA | RecordType::PTR)
                    && self.fallthrough.covers(&Name::from(name)) =>
            {
                None
            }
            Some(records) => Some(positive(records)),
            // A reverse name not in the table goes on whatever `fallthrough` says.
            None if qtype == RecordType::PTR => None,
            None if self.fallthrough.covers(&Name::from(name)) => None,
            None => Some(Reply::new(ResponseCode::ServFail, NAME)),
        }
    }
}

impl Drop for Hosts {
    fn drop(&mut self) {
        if let Some(t) = &self.poll {
            t.abort();
        }
    }
}

impl Handler for Hosts {
    fn name(&self) -> &'static str {
        NAME
    }

    fn serve<'a>(&'a self, req: &'a Request<'a>, next: Next<'a>) -> HandlerFuture<'a> {
        match self.answer(req) {
            Some(reply) => Box::pin(std::future::ready(Ok(reply))),
            None => next.serve(req),
        }
    }
}

/// An answer, or NODATA when the name has no record of the type asked for.
fn positive(records: Option<RecordSet>) -> Reply {
    let mut reply = Reply::authoritative(ResponseCode::NoError, NAME);
    reply.answers.extend(records.map(Into::into));
    reply
}

fn read(path: &Path) -> std::io::Result<Entries> {
    let text = std::fs::read_to_string(path)?;
    let (entries, skipped) = parse_file(&text);
    if skipped > 0 {
        tracing::warn!(
            "plugin/hosts: {}: skipped {skipped} line(s) that are not 'IP NAME…'",
            path.display()
        );
    }
    Ok(entries)
}

fn publish(metrics: &Metrics, path: &Path, table: &Table) {
    metrics
        .hosts
        .entries
        .with_label_values(&[path.display().to_string()])
        .set(table.entries() as i64);
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or(Duration::ZERO);
    metrics.hosts.reload_timestamp.set(now.as_secs_f64());
}

/// Re-reads the file whenever its size, modification time or inode moved.
async fn watch(cfg: HostsConfig, table: Arc<ArcSwap<Table>>, metrics: Arc<Metrics>) {
    let mut seen = crate::watched::fingerprint(std::slice::from_ref(&cfg.path));
    let mut failing = false;
    loop {
        tokio::time::sleep(cfg.reload).await;
        let now = crate::watched::fingerprint(std::slice::from_ref(&cfg.path));
        if now == seen {
            continue;
        }
        let path = cfg.path.clone();
        let result = tokio::task::spawn_blocking(move || read(&path)).await;
        match result {
            Ok(Ok(entries)) => {
                let fresh = Table::build(&entries, &cfg);
                tracing::info!(
                    "plugin/hosts: reloaded {} ({} entries)",
                    cfg.path.display(),
                    fresh.entries()
                );
                publish(&metrics, &cfg.path, &fresh);
                table.store(Arc::new(fresh));
                seen = now;
                failing = false;
            }
            Ok(Err(e)) => {
                if !failing {
                    tracing::warn!(
                        "plugin/hosts: cannot read {}: {e}; still serving what was read last",
                        cfg.path.display()
                    );
                }
                failing = true;
                seen = now;
            }
            Err(_) => return,
        }
    }
}

/// Puts `hosts` into the block being set up.
pub fn setup(cfg: &config::HostsConfig, s: &mut Setup<'_>) -> Result<(), PluginError> {
    let h = Hosts::new(cfg, s.metrics.clone())?;
    s.handler(h);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::corefile::Pos;
    use crate::plugin::hosts::config::HostsConfig;

    fn cfg(zones: &[&str], inline: &str) -> HostsConfig {
        HostsConfig {
            path: "/etc/hosts".into(),
            pos: Pos {
                file: "t".into(),
                line: 1,
                col: 1,
            },
            zones: zones.iter().filter_map(|z| name::fqdn(z)).collect(),
            inline: parse_file(inline).0,
            ttl: 60,
            reload: Duration::ZERO,
            reverse: true,
            fallthrough: Fallthrough::Never,
            fallthrough_unsupported: false,
        }
    }

    fn ask(t: &Table, name: &str, qtype: RecordType) -> Option<Vec<String>> {
        let name = LowerName::from(name::fqdn(name).unwrap());
        t.lookup(&name, qtype).map(|r| {
            r.map(|r| r.iter().map(|r| r.data.to_string()).collect())
                .unwrap_or_default()
        })
    }

    #[test]
    fn the_reader_skips_what_is_not_ip_name() {
        let (entries, skipped) = parse_file(
            "# comment\n\n127.0.0.1 localhost # trailing\n::1\tlocalhost ip6-localhost\nnope x\n\
             10.0.0.1\nfe80::1%lo link\n10.0.0.2 bad..name good\n",
        );
        let got: Vec<String> = entries
            .iter()
            .map(|(ip, n)| {
                format!(
                    "{ip} {}",
                    n.iter().map(|n| n.to_ascii()).collect::<Vec<_>>().join(",")
                )
            })
            .collect();
        assert_eq!(
            got,
            [
                "127.0.0.1 localhost.",
                "::1 localhost.,ip6-localhost.",
                "fe80::1 link.",
                "10.0.0.2 good.",
            ]
        );
        assert_eq!(skipped, 2);
    }

    #[test]
    fn file_then_inline_in_zone_once_each() {
        let (file, _) =
            parse_file("10.0.0.1 a.example.org\n10.0.0.1 A.example.org\n10.0.0.9 other.test\n");
        let t = Table::build(
            &file,
            &cfg(
                &["example.org"],
                "10.0.0.2 a.example.org\nfd00::1 a.example.org\n",
            ),
        );
        assert_eq!(
            ask(&t, "a.example.org", RecordType::A).unwrap(),
            ["10.0.0.1", "10.0.0.2"]
        );
        assert_eq!(
            ask(&t, "a.example.org", RecordType::AAAA).unwrap(),
            ["fd00::1"]
        );
        assert_eq!(
            ask(&t, "a.example.org", RecordType::TXT).unwrap(),
            Vec::<String>::new()
        );
        assert_eq!(
            ask(&t, "other.test", RecordType::A),
            None,
            "outside the zones"
        );
        assert_eq!(
            ask(&t, "1.0.0.10.in-addr.arpa", RecordType::PTR).unwrap(),
            ["a.example.org."]
        );
        assert_eq!(ask(&t, "9.0.0.10.in-addr.arpa", RecordType::PTR), None);
        assert_eq!(t.entries(), 3);
    }
}
