//! Corefile syntax tree → typed configuration: the assembler above the plugins. Server blocks
//! and their keys here, each directive by its own folder's parser (`plugin::registry`); no I/O
//! beyond reading the Corefile and resolving paths, no sockets. Every error carries the
//! `file:line:col` of the token it is about and says what was expected.

#[cfg(test)]
pub(crate) mod testing;
#[cfg(test)]
mod tests;

use std::collections::HashMap;
use std::net::IpAddr;
use std::path::Path;

use hickory_proto::rr::Name;

use crate::corefile::{self, Pos, ServerBlock};
use crate::plugin::bind::{self, config::BindConfig};
use crate::plugin::registry::{self, PluginConfig, Repeat};

pub use crate::corefile::error::{ConfigError, ConfigErrors};
use crate::corefile::keys::{self, BlockContext, ZoneKey};

/// The default DNS port when a server block key names none and `-dns.port` is not given.
pub const DEFAULT_PORT: u16 = 53;

/// Options from the command line that shape how a Corefile is read.
#[derive(Clone, Debug)]
pub struct LoadOptions {
    /// Port for keys that name none (`-dns.port`).
    pub default_port: u16,
}

impl Default for LoadOptions {
    fn default() -> Self {
        Self {
            default_port: DEFAULT_PORT,
        }
    }
}

/// A whole Corefile, typed.
#[derive(Clone, Debug)]
pub struct Config {
    pub servers: Vec<ServerConfig>,
}

/// One server block.
#[derive(Clone, Debug)]
pub struct ServerConfig {
    pub keys: Vec<ZoneKey>,
    /// In execution order (CoreDNS's `plugin.cfg`), not Corefile order.
    pub plugins: Vec<PluginConfig>,
    /// The addresses the block listens on, from its `bind` lines; `[None]`: every address.
    pub binds: Vec<Option<IpAddr>>,
    pub pos: Pos,
}

impl ServerConfig {
    pub fn zones(&self) -> Vec<Name> {
        self.keys.iter().map(|k| k.zone.clone()).collect()
    }
}

/// Reads, parses and types the Corefile at `path`.
pub fn load(path: &Path, opts: &LoadOptions) -> Result<Config, ConfigErrors> {
    read(path, opts).config()
}

/// A Corefile read from disk and parsed, not yet typed, with a digest of everything that went
/// into it: `reload` compares digests every interval and types only a Corefile that changed,
/// so the warnings typing logs (a deprecated property, a zone that looks like a slip) are
/// said once per change, not every interval.
pub struct Loaded {
    blocks: Result<Vec<ServerBlock>, ConfigErrors>,
    opts: LoadOptions,
    /// SHA-512 (hex) of the Corefile and every file it imports; empty if nothing could be read.
    pub digest: String,
}

impl Loaded {
    /// The typed configuration, or every error in it.
    pub fn config(&self) -> Result<Config, ConfigErrors> {
        match &self.blocks {
            Ok(blocks) => from_blocks(blocks, &self.opts),
            Err(e) => Err(e.clone()),
        }
    }
}

/// Reads the Corefile at `path` and what it imports; the digest changes when any of them does.
pub fn read(path: &Path, opts: &LoadOptions) -> Loaded {
    use sha2::{Digest, Sha512};
    let parsed = corefile::read_file(path);
    let digest = if parsed.sources.is_empty() {
        String::new()
    } else {
        let mut h = Sha512::new();
        for (name, text) in &parsed.sources {
            if parsed.sources.len() > 1 {
                h.update(name.as_bytes());
                h.update([0]);
            }
            h.update(text.as_bytes());
        }
        h.finalize().iter().map(|b| format!("{b:02x}")).collect()
    };
    Loaded {
        blocks: parsed.blocks.map_err(|e| ConfigErrors(vec![e.into()])),
        opts: opts.clone(),
        digest,
    }
}

/// Parses Corefile text (named `file` in errors; imports are relative to its folder).
pub fn from_str(file: &str, text: &str, opts: &LoadOptions) -> Result<Config, ConfigErrors> {
    let name = std::sync::Arc::from(file);
    let blocks = corefile::parse_str(&name, text, &|k| std::env::var(k).ok())
        .map_err(|e| ConfigErrors(vec![e.into()]))?;
    from_blocks(&blocks, opts)
}

/// Types the server blocks of a parsed Corefile, collecting every error.
pub fn from_blocks(blocks: &[ServerBlock], opts: &LoadOptions) -> Result<Config, ConfigErrors> {
    let mut errors = Vec::new();
    let mut servers = Vec::new();
    let mut ports = Ports::default();
    for block in blocks {
        let binds = binds_of(block);
        let has_view = block.directives.iter().any(|d| d.name.text == "view");
        let has_tls = block.directives.iter().any(|d| d.name.text == "tls");
        let mut keys = Vec::new();
        for key in &block.keys {
            let parsed = match keys::parse_key(key, opts.default_port) {
                Ok(parsed) => parsed,
                Err(e) => {
                    errors.push(e);
                    continue;
                }
            };
            if parsed.first().is_some_and(|k| k.tls) && !has_tls {
                errors.push(ConfigError::new(
                    &key.pos,
                    format!(
                        "server block key '{}': a tls:// block needs 'tls CERT KEY' for its certificate",
                        key.text
                    ),
                ));
            }
            for k in parsed {
                for b in &binds {
                    errors.extend(ports.take(&k, *b, &key.pos, has_view));
                }
                keys.push(k);
            }
        }
        let ctx = BlockContext {
            zones: keys.iter().map(|k| k.zone.clone()).collect(),
            directives: block
                .directives
                .iter()
                .map(|d| d.name.text.clone())
                .collect(),
            tls: keys.first().is_some_and(|k| k.tls),
        };
        let plugins = plugins_of(block, &ctx, &mut errors);
        let pos = block
            .keys
            .first()
            .map(|t| t.pos.clone())
            .unwrap_or_else(|| Pos {
                file: "".into(),
                line: 0,
                col: 0,
            });
        servers.push(ServerConfig {
            keys,
            binds,
            plugins,
            pos,
        });
    }
    if errors.is_empty() {
        Ok(Config { servers })
    } else {
        Err(ConfigErrors(errors))
    }
}

/// The addresses a block listens on, from its `bind` lines (their errors are said when the
/// directive is typed); `[None]`: every address. Blocks for one zone and port may coexist when
/// `bind` gives them different addresses.
fn binds_of(block: &ServerBlock) -> Vec<Option<IpAddr>> {
    let all: Vec<BindConfig> = block
        .directives
        .iter()
        .filter(|d| d.name.text == "bind")
        .filter_map(|d| bind::config::parse_one(d).ok())
        .collect();
    if all.is_empty() {
        return vec![None];
    }
    bind::config::merge(&all.iter().collect::<Vec<_>>())
        .into_iter()
        .map(Some)
        .collect()
}

/// What the blocks so far serve on each port and address.
#[derive(Default)]
struct Ports {
    /// Where each zone, port and address was last served, and whether that block has a view:
    /// blocks after one with a view may serve the same zone (split DNS).
    zones: HashMap<(Name, u16, Option<IpAddr>), (Pos, bool)>,
    /// The transport of each port (`tls://` or not), and the key that set it.
    transports: HashMap<(u16, Option<IpAddr>), (bool, Pos)>,
}

impl Ports {
    /// Takes key `k` (written at `pos`) on address `bind`; what it clashes with, as errors.
    fn take(
        &mut self,
        k: &ZoneKey,
        bind: Option<IpAddr>,
        pos: &Pos,
        has_view: bool,
    ) -> Vec<ConfigError> {
        let mut errors = Vec::new();
        match self.transports.get(&(k.port, bind)) {
            Some((tls, first)) if *tls != k.tls => errors.push(ConfigError::new(
                pos,
                format!(
                    "port {} is served over {} by the block at {first}; a port serves one transport",
                    k.port,
                    if *tls { "tls://" } else { "dns://" }
                ),
            )),
            Some(_) => {}
            None => {
                self.transports.insert((k.port, bind), (k.tls, pos.clone()));
            }
        }
        let at = (k.zone.clone(), k.port, bind);
        if let Some((first, false)) = self.zones.get(&at) {
            errors.push(ConfigError::new(
                pos,
                format!(
                    "zone '{}' on port {}{} is already served by the block at {first}, which has no view to share it with",
                    k.zone,
                    k.port,
                    bind.map(|ip| format!(" at {ip}")).unwrap_or_default()
                ),
            ));
        } else {
            self.zones.insert(at, (pos.clone(), has_view));
        }
        errors
    }
}

/// A block's directives, each typed by its folder's parser, in execution order (CoreDNS's
/// `plugin.cfg`); a directive that may appear once and appears twice is an error, and the lines
/// of one that merges (`rewrite`) become one.
fn plugins_of(
    block: &ServerBlock,
    ctx: &BlockContext,
    errors: &mut Vec<ConfigError>,
) -> Vec<PluginConfig> {
    let mut plugins: Vec<(usize, PluginConfig)> = Vec::new();
    for d in &block.directives {
        let p = match registry::parse(d, ctx) {
            Ok(p) => p,
            Err(mut e) => {
                errors.append(&mut e);
                continue;
            }
        };
        let name = p.name();
        let had = plugins.iter_mut().find(|(_, q)| q.name() == name);
        match (registry::repeat(name), had) {
            (Repeat::Once, Some(_)) => errors.push(ConfigError::new(
                &d.name.pos,
                format!("{name}: only one '{name}' directive is allowed per server block"),
            )),
            (Repeat::Merged, Some((_, first))) => {
                // The registry merges only a directive into its own kind.
                let _ = first.absorb(p);
            }
            _ => plugins.push((registry::rank(name).unwrap_or(usize::MAX), p)),
        }
    }
    plugins.sort_by_key(|(rank, _)| *rank);
    plugins.into_iter().map(|(_, p)| p).collect()
}
