//! `file`: serves zones from RFC 1035 master files (the usual way to give a cluster a private
//! zone). Each zone is read once into prepared runs ([`zone::Zone`]) and swapped whole when the
//! file changes and its SOA serial went up; queries read the current zone without a lock, on the
//! fast path where the answer is one run.

pub mod config;
pub mod zone;

use std::path::Path;
use std::sync::Arc;

use arc_swap::ArcSwap;
use hickory_proto::op::ResponseCode;
use hickory_proto::rr::{DNSClass, Name, Record};
use prometheus::IntGaugeVec;

use crate::dns::wire::NameKey;
use crate::observe::metrics::Metrics;
use crate::plugin::PluginError;
use crate::plugin::Take;
use crate::plugin::setup::Setup;
use crate::plugin::{FastAnswer, FastQuery, Handler, HandlerFuture, Next, Reply, Request, Rrs};
use zone::{Found, Zone};

const NAME: &str = "file";

/// The zones of one `file` line, each swapped whole on reload.
pub struct File {
    zones: Vec<Arc<ArcSwap<Zone>>>,
    poll: Option<tokio::task::JoinHandle<()>>,
}

impl Drop for File {
    fn drop(&mut self) {
        if let Some(t) = &self.poll {
            t.abort();
        }
    }
}

impl File {
    /// The most specific zone holding `key` (lower-case wire form).
    fn zone_of(&self, key: &[u8]) -> Option<arc_swap::Guard<Arc<Zone>>> {
        self.zones
            .iter()
            .map(|z| z.load())
            .filter(|z| z.holds(key))
            .max_by_key(|z| z.key().len())
    }

    /// The zones as they are now: what a zone transfer sends.
    pub fn current(&self) -> Vec<Arc<Zone>> {
        self.zones.iter().map(|z| z.load_full()).collect()
    }
}

fn reply(f: Found) -> Reply {
    let mut r = Reply::new(f.rcode, NAME);
    r.authoritative = f.authoritative;
    r.answers.extend(f.answers.into_iter().map(Rrs::Prepared));
    r.authority.extend(f.authority.map(Rrs::Prepared));
    r.additionals.extend(f.additionals.map(Rrs::Prepared));
    r
}

impl Handler for File {
    fn name(&self) -> &'static str {
        NAME
    }

    fn serve<'a>(&'a self, req: &'a Request<'a>, next: Next<'a>) -> HandlerFuture<'a> {
        if req.query.query_class() != DNSClass::IN {
            return next.serve(req);
        }
        let key = NameKey::new(&Name::from(req.query.name()));
        let Some(zone) = self.zone_of(key.as_bytes()) else {
            return next.serve(req);
        };
        let qtype = req.query.query_type();
        let found = zone.lookup(key.as_bytes(), qtype);
        drop(zone);
        let external = found.external.clone();
        let mut answer = reply(found);
        let Some(target) = external else {
            return Box::pin(std::future::ready(Ok(answer)));
        };
        // A CNAME out of the zone: the server's own routing finds the rest, as CoreDNS does.
        Box::pin(async move {
            if let Some(more) = req.follow(target, qtype, Take::Any).await {
                answer.answers.extend(more.answers);
            }
            Ok(answer)
        })
    }

    /// A zone read from the file, whole, SOA first.
    fn transfer(&self, zone: &Name) -> Option<Vec<Record>> {
        let z = self
            .zones
            .iter()
            .map(|z| z.load())
            .find(|z| z.origin == *zone)?;
        Some(z.records().to_vec())
    }

    fn serials(&self) -> Vec<(Name, u32)> {
        self.zones
            .iter()
            .map(|z| z.load())
            .map(|z| (z.origin.clone(), z.serial()))
            .collect()
    }

    fn passes_fast(&self, q: FastQuery<'_>) -> bool {
        !self.zones.iter().any(|z| q.name.is_in(z.load().key()))
    }

    fn answer_fast(&self, q: FastQuery<'_>) -> Option<FastAnswer> {
        let zone = self.zone_of(q.name.key())?;
        let mut f = zone.lookup(q.name.key(), q.qtype);
        // One run, with the rcode the fast path writes for it: not a chain, a referral or a
        // lookup out of the zone, nor a CNAME to a name that does not exist (NXDOMAIN).
        let rcode_fits = f.answers.is_empty() || f.rcode == ResponseCode::NoError;
        if f.external.is_some() || !f.authoritative || f.answers.len() > 1 || !rcode_fits {
            return None;
        }
        Some(match f.answers.pop() {
            Some(records) => FastAnswer::Answer {
                records,
                authority: f.authority,
                additionals: f.additionals,
            },
            None => FastAnswer::Negative(f.rcode, f.authority?),
        })
    }
}

fn entries(metrics: &Metrics) -> IntGaugeVec {
    metrics.plugin_gauge(
        "coredns_file_entries",
        "The combined number of entries in zone file and Corefile.",
        &["dns_name"],
    )
}

/// Whether serial `new` follows `old` (RFC 1982 serial arithmetic).
fn newer(new: u32, old: u32) -> bool {
    new != old && new.wrapping_sub(old) < 1 << 31
}

/// Re-reads the file whenever it changed; a zone is swapped when its serial went up, and kept
/// (the file broken, or the serial not raised) otherwise, with a log line that says why.
async fn watch(cfg: config::FileConfig, zones: Vec<Arc<ArcSwap<Zone>>>, gauge: IntGaugeVec) {
    let paths = [cfg.path.clone()];
    let mut seen = crate::watched::fingerprint(&paths);
    loop {
        tokio::time::sleep(cfg.reload).await;
        let now = crate::watched::fingerprint(&paths);
        if now == seen {
            continue;
        }
        seen = now;
        for zone in &zones {
            let origin = zone.load().origin.clone();
            let path = cfg.path.clone();
            let read = {
                let origin = origin.clone();
                tokio::task::spawn_blocking(move || Zone::read(&path, &origin)).await
            };
            let fresh = match read {
                Ok(Ok(z)) => z,
                Ok(Err(e)) => {
                    tracing::error!(
                        "plugin/file: {}: zone {origin}: {e}; still serving serial {}",
                        cfg.path.display(),
                        zone.load().serial()
                    );
                    continue;
                }
                Err(_) => return,
            };
            let old = zone.load().serial();
            if !newer(fresh.serial(), old) {
                tracing::warn!(
                    "plugin/file: {} changed, but the SOA serial of {origin} did not go up ({} after {old}); not reloaded",
                    cfg.path.display(),
                    fresh.serial()
                );
                continue;
            }
            tracing::info!(
                "plugin/file: reloaded zone {origin} from {} with serial {}",
                cfg.path.display(),
                fresh.serial()
            );
            gauge
                .with_label_values(&[origin.to_string()])
                .set(fresh.len() as i64);
            zone.store(Arc::new(fresh));
        }
    }
}

fn read(cfg: &config::FileConfig, origin: &Name) -> Result<Zone, PluginError> {
    Zone::read(&cfg.path, origin).map_err(|e| {
        PluginError::new(NAME, format!("{}: zone {origin}: {e}", display(&cfg.path))).at(&cfg.pos)
    })
}

fn display(p: &Path) -> String {
    p.display().to_string()
}

/// Puts `file` into the block being set up: every zone is read now, and a file that cannot be
/// read or parsed is an error (on a reload, the running configuration stays).
pub fn setup(cfg: &config::FileConfig, s: &mut Setup<'_>) -> Result<(), PluginError> {
    let gauge = entries(s.metrics);
    let mut zones = Vec::with_capacity(cfg.zones.len());
    for origin in &cfg.zones {
        // A zone file may be large: read off the runtime's other tasks.
        let z = crate::plugin::shared::blocking(|| read(cfg, origin))?;
        gauge
            .with_label_values(&[origin.to_string()])
            .set(z.len() as i64);
        zones.push(Arc::new(ArcSwap::from_pointee(z)));
    }
    let poll = (!cfg.reload.is_zero())
        .then(tokio::runtime::Handle::try_current)
        .and_then(Result::ok)
        .map(|rt| rt.spawn(watch(cfg.clone(), zones.clone(), gauge)));
    s.handler(File { zones, poll });
    Ok(())
}

#[cfg(test)]
mod tests {
    #[test]
    fn serials_follow_rfc_1982() {
        assert!(super::newer(2, 1));
        assert!(!super::newer(1, 1));
        assert!(!super::newer(1, 2));
        assert!(super::newer(0, u32::MAX), "wraps");
    }
}
