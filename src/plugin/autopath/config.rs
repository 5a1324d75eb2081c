//! `autopath [ZONES…] RESOLV-CONF`: the server walks a client's search path itself.
//!
//! RESOLV-CONF is `@kubernetes` (the search path of the pod asking, from the `kubernetes`
//! plugin of the block, which needs `pods verified`) or a resolv.conf file whose `search` line
//! is used for every client. ZONES default to the block's.

use std::path::PathBuf;

use hickory_proto::rr::Name;

use crate::corefile::Directive;

use crate::corefile::args::Args;
use crate::corefile::error::ConfigError;
use crate::corefile::keys::{BlockContext, relative_path, zones_or_block};

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SearchFrom {
    Kubernetes,
    File(PathBuf),
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AutopathConfig {
    pub zones: Vec<Name>,
    pub from: SearchFrom,
}

pub fn parse(d: &Directive, ctx: &BlockContext) -> Result<AutopathConfig, Vec<ConfigError>> {
    let a = Args::new("autopath", d);
    crate::corefile::args::no_block("autopath", d).map_err(|e| vec![e])?;
    let Some((last, zones)) = d.args.split_last() else {
        return Err(vec![a.err_here(
            "expected @kubernetes or a resolv.conf file (e.g. 'autopath @kubernetes')",
        )]);
    };
    let from = match last.text.strip_prefix('@') {
        Some("kubernetes") => SearchFrom::Kubernetes,
        Some(other) => {
            return Err(vec![a.err(
                last,
                format!("'@{other}' cannot give search paths; only @kubernetes can"),
            )]);
        }
        None => SearchFrom::File(relative_path(&last.pos, &last.text)),
    };
    Ok(AutopathConfig {
        zones: zones_or_block(zones, ctx)?,
        from,
    })
}

/// The domains of a resolv.conf's last `search` (or `domain`) line, as absolute names.
pub fn resolv_conf_search(content: &str) -> Vec<Name> {
    let mut out = Vec::new();
    for line in content.lines() {
        let line = line.split(['#', ';']).next().unwrap_or_default();
        let mut words = line.split_whitespace();
        match words.next() {
            Some("search") | Some("domain") => {
                out = words.filter_map(crate::dns::name::fqdn).collect();
            }
            _ => {}
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use crate::config::testing::*;

    #[test]
    fn errors_name_the_position_and_what_is_accepted() {
        assert_errors(&[
            (
                ".:53 {\n autopath\n}",
                "2:2: autopath: expected @kubernetes or a resolv.conf file (e.g. 'autopath @kubernetes')",
            ),
            (
                ".:53 {\n autopath @etcd\n}",
                "2:11: autopath: '@etcd' cannot give search paths; only @kubernetes can",
            ),
        ]);
    }
}
