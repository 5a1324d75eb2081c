//! `file DBFILE [ZONES…] { reload D }`: DBFILE relative to the Corefile's folder; ZONES default
//! to the block's; `reload` 1m by default, 0 to never look again.

use std::path::PathBuf;
use std::time::Duration;

use hickory_proto::rr::Name;

use crate::corefile::args::{self, Args};
use crate::corefile::error::ConfigError;
use crate::corefile::keys::{BlockContext, relative_path, zones_or_block};
use crate::corefile::{Directive, Pos};

pub const DEFAULT_RELOAD: Duration = Duration::from_secs(60);

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FileConfig {
    pub path: PathBuf,
    /// Where DBFILE is written, for errors about the file.
    pub pos: Pos,
    pub zones: Vec<Name>,
    pub reload: Duration,
}

pub fn parse(d: &Directive, ctx: &BlockContext) -> Result<FileConfig, Vec<ConfigError>> {
    let a = Args::new("file", d);
    let Some((file, zones)) = d.args.split_first() else {
        return Err(vec![a.err_here("expected DBFILE [ZONES…]")]);
    };
    let mut cfg = FileConfig {
        path: relative_path(&file.pos, &file.text),
        pos: file.pos.clone(),
        zones: zones_or_block(zones, ctx)?,
        reload: DEFAULT_RELOAD,
    };
    let mut errors = Vec::new();
    for p in d.block.iter().flatten() {
        let pa = Args::new(format!("file: {}", p.name.text), p);
        match p.name.text.as_str() {
            "reload" => match pa.one("a duration, e.g. 30s").and_then(|t| pa.duration(t)) {
                Ok(r) => cfg.reload = r,
                Err(e) => errors.push(e),
            },
            // Accepted and ignored by CoreDNS since 1.7: the server's own routing is used.
            "upstream" => {}
            other => errors.push(pa.err_here(format!(
                "unknown property '{other}'; expected reload{}",
                if other == "transfer" {
                    " (zone transfers are the transfer directive's)"
                } else {
                    ""
                }
            ))),
        }
    }
    args::finish(cfg, errors)
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use crate::config::testing::{assert_errors, plugin, zones};
    use crate::plugin::registry::PluginConfig;

    fn file(text: &str) -> super::FileConfig {
        plugin(text, |p| match p {
            PluginConfig::File(c) => Some((**c).clone()),
            _ => None,
        })
    }

    #[test]
    fn paths_zones_and_reload() {
        let c = file("example.org:53 {\n file db.example.org\n}");
        assert_eq!(c.path.to_str(), Some("/etc/coredns/db.example.org"));
        assert_eq!(zones(&c.zones), ["example.org."]);
        assert_eq!(c.reload, Duration::from_secs(60));
        let c = file(".:53 {\n file /zones/db example.org example.net {\n  reload 0\n }\n}");
        assert_eq!(zones(&c.zones), ["example.org.", "example.net."]);
        assert_eq!(c.reload, Duration::ZERO);
    }

    #[test]
    fn errors_name_the_place() {
        assert_errors(&[
            (".:53 {\n file\n}", "2:2: file: expected DBFILE"),
            (
                ".:53 {\n file db {\n  reload soon\n }\n}",
                "3:10: file: reload: 'soon' is not a duration",
            ),
            (
                ".:53 {\n file db {\n  transfer to *\n }\n}",
                "3:3: file: transfer: unknown property 'transfer'; expected reload (zone transfers are the transfer directive's)",
            ),
        ]);
    }
}
