//! `bind ADDRESS… { except ADDRESS… }`: the block listens only on these addresses.
//!
//! As CoreDNS, several `bind` lines add up, and `except` takes addresses out again. Network
//! interface names (which CoreDNS expands to the interface's addresses) are not supported yet:
//! an error says to list the addresses.

use std::net::IpAddr;

use crate::corefile::{Directive, Token};

use crate::corefile::args::Args;
use crate::corefile::error::ConfigError;
use crate::corefile::keys::BlockContext;

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct BindConfig {
    pub addrs: Vec<IpAddr>,
    pub except: Vec<IpAddr>,
}

impl BindConfig {
    /// The addresses to listen on.
    pub fn effective(&self) -> Vec<IpAddr> {
        let mut out: Vec<IpAddr> = Vec::new();
        for a in &self.addrs {
            if !self.except.contains(a) && !out.contains(a) {
                out.push(*a);
            }
        }
        out
    }
}

fn addr(a: &Args, t: &Token) -> Result<IpAddr, ConfigError> {
    // An IPv6 address may be written with a zone (`fe80::1%eth0`); the zone is not kept.
    let text = t.text.split_once('%').map_or(t.text.as_str(), |(ip, _)| ip);
    text.parse().map_err(|_| {
        a.err(
            t,
            format!(
                "'{}' is not an IP address; interface names are not supported by clusterdns yet, list the interface's addresses",
                t.text
            ),
        )
    })
}

pub fn parse(d: &Directive, _: &BlockContext) -> Result<BindConfig, Vec<ConfigError>> {
    parse_one(d).map_err(|e| vec![e])
}

/// One `bind` line.
pub fn parse_one(d: &Directive) -> Result<BindConfig, ConfigError> {
    let a = Args::new("bind", d);
    let mut cfg = BindConfig::default();
    for t in a.some("an address to listen on")? {
        cfg.addrs.push(addr(&a, t)?);
    }
    for p in d.block.iter().flatten() {
        let pa = Args::new(format!("bind: {}", p.name.text), p);
        if p.name.text != "except" {
            return Err(pa.err_here(format!(
                "unknown property '{}'; expected except",
                p.name.text
            )));
        }
        for t in pa.some("an address")? {
            cfg.except.push(addr(&pa, t)?);
        }
    }
    if cfg.effective().is_empty() {
        return Err(a.err_here("every address is excepted: nothing left to listen on"));
    }
    Ok(cfg)
}

/// Several `bind` lines in one block: their addresses together.
pub fn merge(all: &[&BindConfig]) -> Vec<IpAddr> {
    let joined = BindConfig {
        addrs: all.iter().flat_map(|b| b.addrs.iter().copied()).collect(),
        except: all.iter().flat_map(|b| b.except.iter().copied()).collect(),
    };
    joined.effective()
}

#[cfg(test)]
mod tests {
    use crate::config::testing::*;

    #[test]
    fn errors_name_the_position_and_what_is_accepted() {
        assert_errors(&[
            (
                ".:53 {\n bind eth0\n}",
                "2:7: bind: 'eth0' is not an IP address; interface names are not supported by clusterdns yet, list the interface's addresses",
            ),
            (
                ".:53 {\n bind 127.0.0.1 {\n  except 127.0.0.1\n }\n}",
                "2:2: bind: every address is excepted: nothing left to listen on",
            ),
            (
                ".:53 {\n bind 127.0.0.1 {\n  only 127.0.0.1\n }\n}",
                "3:3: bind: only: unknown property 'only'; expected except",
            ),
        ]);
    }
}
