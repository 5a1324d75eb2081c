//! `ratelimit LIMIT { whitelist ADDRESS… }`: UDP queries answered per second from one source
//! address, as the `ratelimit` plugin built into many CoreDNS images reads it (not part of
//! CoreDNS's own plugin.cfg). Off unless set: see the README's "Hostile input".

use std::net::IpAddr;

use crate::corefile::Directive;
use crate::server::limit::SourceLimitConfig;

use super::{Args, ConfigError};

pub fn parse(d: &Directive) -> Result<SourceLimitConfig, ConfigError> {
    let a = Args::new("ratelimit", d);
    let t = a.one("LIMIT, the queries per second one source address may ask")?;
    let limit = t
        .text
        .parse::<u32>()
        .ok()
        .filter(|n| *n > 0)
        .ok_or_else(|| {
            a.err(
                t,
                format!("'{}' is not a number of queries above 0", t.text),
            )
        })?;
    let mut cfg = SourceLimitConfig {
        limit,
        exempt: Vec::new(),
    };
    for p in d.block.iter().flatten() {
        let pa = Args::new(format!("ratelimit: {}", p.name.text), p);
        if p.name.text != "whitelist" {
            return Err(pa.err_here(format!(
                "unknown property '{}'; expected whitelist",
                p.name.text
            )));
        }
        for t in pa.some("an IP address")? {
            let ip: IpAddr = t
                .text
                .parse()
                .map_err(|_| pa.err(t, format!("'{}' is not an IP address", t.text)))?;
            if !cfg.exempt.contains(&ip) {
                cfg.exempt.push(ip);
            }
        }
    }
    Ok(cfg)
}
