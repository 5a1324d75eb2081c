//! Corefile syntax tree → typed configuration. One parse function per directive, each in its own
//! module; no I/O beyond resolving paths, no sockets. Every error carries the `file:line:col` of
//! the token it is about and says what was expected.

pub mod args;
pub mod autopath;
pub mod bind;
pub mod cache;
pub mod errors;
pub mod forward;
pub mod health;
pub mod hosts;
pub mod k8s_external;
pub mod kubernetes;
pub mod log;
pub mod prometheus;
pub mod ratelimit;
pub mod ready;
pub mod reload;
pub mod rewrite;
pub mod selector;
pub mod template;
#[cfg(test)]
mod tests;

use std::collections::HashMap;
use std::fmt;
use std::net::IpAddr;
use std::path::{Path, PathBuf};

use hickory_proto::rr::Name;

use crate::chain::order;
use crate::corefile::{self, Directive, Pos, ServerBlock, SyntaxError, Token};
use crate::names;

pub use args::Args;

/// The default DNS port when a server block key names none and `-dns.port` is not given.
pub const DEFAULT_PORT: u16 = 53;

/// A configuration error at a position in a Corefile.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{pos}: {msg}")]
pub struct ConfigError {
    pub pos: Pos,
    pub msg: String,
}

impl ConfigError {
    pub fn new(pos: &Pos, msg: impl Into<String>) -> Self {
        Self {
            pos: pos.clone(),
            msg: msg.into(),
        }
    }
}

impl From<SyntaxError> for ConfigError {
    fn from(e: SyntaxError) -> Self {
        Self {
            pos: e.pos,
            msg: e.msg,
        }
    }
}

/// All the errors of one Corefile, one per line as `file:line:col: message`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConfigErrors(pub Vec<ConfigError>);

impl fmt::Display for ConfigErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, e) in self.0.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "{e}")?;
        }
        Ok(())
    }
}

impl std::error::Error for ConfigErrors {}

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

/// A server block key: the zone it serves and the port it listens on.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ZoneKey {
    pub zone: Name,
    pub port: u16,
    pub pos: Pos,
}

/// The typed configuration of one directive.
#[derive(Clone, Debug)]
pub enum PluginConfig {
    Reload(reload::ReloadConfig),
    Ready(ready::ReadyConfig),
    Health(health::HealthConfig),
    Prometheus(prometheus::PrometheusConfig),
    Errors(errors::ErrorsConfig),
    Log(log::LogConfig),
    Kubernetes(Box<kubernetes::KubernetesConfig>),
    Cache(Box<cache::CacheConfig>),
    Forward(Box<forward::ForwardConfig>),
    Hosts(Box<hosts::HostsConfig>),
    Template(Box<template::TemplateConfig>),
    Rewrite(Box<rewrite::RewriteRule>),
    Bind(bind::BindConfig),
    /// `ratelimit LIMIT { whitelist … }`: the port's per-source UDP limit.
    Ratelimit(crate::server::limit::SourceLimitConfig),
    Autopath(autopath::AutopathConfig),
    K8sExternal(Box<k8s_external::K8sExternalConfig>),
    Loop,
    /// `loadbalance [round_robin]`.
    Loadbalance,
    /// `any`.
    Any,
}

impl PluginConfig {
    pub fn name(&self) -> &'static str {
        match self {
            PluginConfig::Reload(_) => "reload",
            PluginConfig::Ready(_) => "ready",
            PluginConfig::Health(_) => "health",
            PluginConfig::Prometheus(_) => "prometheus",
            PluginConfig::Errors(_) => "errors",
            PluginConfig::Log(_) => "log",
            PluginConfig::Kubernetes(_) => "kubernetes",
            PluginConfig::Cache(_) => "cache",
            PluginConfig::Forward(_) => "forward",
            PluginConfig::Hosts(_) => "hosts",
            PluginConfig::Template(_) => "template",
            PluginConfig::Rewrite(_) => "rewrite",
            PluginConfig::Bind(_) => "bind",
            PluginConfig::Ratelimit(_) => "ratelimit",
            PluginConfig::Autopath(_) => "autopath",
            PluginConfig::K8sExternal(_) => "k8s_external",
            PluginConfig::Loop => "loop",
            PluginConfig::Loadbalance => "loadbalance",
            PluginConfig::Any => "any",
        }
    }
}

/// The directives clusterdns implements, as `-plugins` lists them.
pub const SUPPORTED: &[&str] = &[
    "any",
    "autopath",
    "bind",
    "cache",
    "errors",
    "forward",
    "health",
    "hosts",
    "k8s_external",
    "kubernetes",
    "loadbalance",
    "log",
    "loop",
    "prometheus",
    "ratelimit",
    "ready",
    "reload",
    "rewrite",
    "template",
];

/// Directives that may appear more than once in a block.
const REPEATABLE: &[&str] = &["log", "forward", "template", "rewrite", "bind"];

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
    let mut seen: HashMap<(Name, u16, Option<IpAddr>), Pos> = HashMap::new();
    for block in blocks {
        // Blocks for one zone and port may coexist when `bind` gives them different addresses.
        let binds: Vec<Option<IpAddr>> = {
            let all: Vec<bind::BindConfig> = block
                .directives
                .iter()
                .filter(|d| d.name.text == "bind")
                .filter_map(|d| bind::parse(d).ok())
                .collect();
            if all.is_empty() {
                vec![None]
            } else {
                bind::merge(&all.iter().collect::<Vec<_>>())
                    .into_iter()
                    .map(Some)
                    .collect()
            }
        };
        let mut keys = Vec::new();
        for key in &block.keys {
            match parse_key(key, opts.default_port) {
                Ok(parsed) => {
                    for k in parsed {
                        for b in &binds {
                            let at = (k.zone.clone(), k.port, *b);
                            if let Some(first) = seen.get(&at) {
                                errors.push(ConfigError::new(
                                    &key.pos,
                                    format!(
                                        "zone '{}' on port {}{} is already served by the block at {first}",
                                        k.zone,
                                        k.port,
                                        b.map(|ip| format!(" at {ip}")).unwrap_or_default()
                                    ),
                                ));
                            } else {
                                seen.insert(at, key.pos.clone());
                            }
                        }
                        keys.push(k);
                    }
                }
                Err(e) => errors.push(e),
            }
        }
        let ctx = BlockContext {
            zones: keys.iter().map(|k| k.zone.clone()).collect(),
        };
        let mut plugins: Vec<(usize, PluginConfig)> = Vec::new();
        for d in &block.directives {
            match parse_directive(d, &ctx) {
                Ok(p) => {
                    if !REPEATABLE.contains(&p.name())
                        && plugins.iter().any(|(_, q)| q.name() == p.name())
                    {
                        errors.push(ConfigError::new(
                            &d.name.pos,
                            format!(
                                "{}: only one '{}' directive is allowed per server block",
                                p.name(),
                                p.name()
                            ),
                        ));
                        continue;
                    }
                    plugins.push((order::rank(p.name()).unwrap_or(usize::MAX), p));
                }
                Err(mut e) => errors.append(&mut e),
            }
        }
        plugins.sort_by_key(|(rank, _)| *rank);
        let has_kubernetes = plugins
            .iter()
            .any(|(_, p)| matches!(p, PluginConfig::Kubernetes(_)));
        for (_, p) in &plugins {
            if let PluginConfig::K8sExternal(k) = p
                && !has_kubernetes
            {
                errors.push(ConfigError::new(
                    &k.pos,
                    "k8s_external: needs a kubernetes directive in the same server block, \
                     whose Services it answers for",
                ));
            }
        }
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
            plugins: plugins.into_iter().map(|(_, p)| p).collect(),
            pos,
        });
    }
    if errors.is_empty() {
        Ok(Config { servers })
    } else {
        Err(ConfigErrors(errors))
    }
}

/// What a directive's parser may know about the block it is in.
pub struct BlockContext {
    pub zones: Vec<Name>,
}

fn parse_directive(d: &Directive, ctx: &BlockContext) -> Result<PluginConfig, Vec<ConfigError>> {
    let name = d.name.text.as_str();
    match name {
        "errors" => errors::parse(d).map(PluginConfig::Errors),
        "health" => health::parse(d).map(PluginConfig::Health),
        "ready" => ready::parse(d).map(PluginConfig::Ready),
        "prometheus" => prometheus::parse(d).map(PluginConfig::Prometheus),
        "reload" => reload::parse(d).map(PluginConfig::Reload),
        "log" => log::parse(d).map(PluginConfig::Log),
        "kubernetes" => kubernetes::parse(d, ctx).map(|k| PluginConfig::Kubernetes(Box::new(k))),
        "cache" => cache::parse(d, ctx).map(|c| PluginConfig::Cache(Box::new(c))),
        "forward" => forward::parse(d).map(|f| PluginConfig::Forward(Box::new(f))),
        "hosts" => hosts::parse(d, ctx).map(|h| PluginConfig::Hosts(Box::new(h))),
        "template" => template::parse(d, ctx).map(|t| PluginConfig::Template(Box::new(t))),
        "autopath" => autopath::parse(d, ctx).map(PluginConfig::Autopath),
        "k8s_external" => {
            k8s_external::parse(d, ctx).map(|k| PluginConfig::K8sExternal(Box::new(k)))
        }
        "bind" => bind::parse(d).map(PluginConfig::Bind).map_err(|e| vec![e]),
        "ratelimit" => ratelimit::parse(d)
            .map(PluginConfig::Ratelimit)
            .map_err(|e| vec![e]),
        "rewrite" => rewrite::parse(d)
            .map(|r| PluginConfig::Rewrite(Box::new(r)))
            .map_err(|e| vec![e]),
        "loadbalance" => parse_loadbalance(d)
            .map(|_| PluginConfig::Loadbalance)
            .map_err(|e| vec![e]),
        "any" => {
            let a = Args::new("any", d);
            a.none()
                .and_then(|_| args::no_block("any", d))
                .map(|_| PluginConfig::Any)
                .map_err(|e| vec![e])
        }
        "loop" => {
            let a = Args::new("loop", d);
            a.none()
                .and_then(|_| args::no_block("loop", d))
                .map(|_| PluginConfig::Loop)
                .map_err(|e| vec![e])
        }
        "proxy" => Err(vec![ConfigError::new(
            &d.name.pos,
            "proxy: this directive was removed from CoreDNS in 1.7; use 'forward' instead",
        )]),
        _ if order::rank(name).is_some() => Err(vec![ConfigError::new(
            &d.name.pos,
            format!(
                "{name}: this CoreDNS directive is not supported by clusterdns yet; supported: {}",
                SUPPORTED.join(", ")
            ),
        )]),
        _ => Err(vec![ConfigError::new(
            &d.name.pos,
            format!(
                "unknown directive '{name}'; expected one of: {}",
                SUPPORTED.join(", ")
            ),
        )]),
    }
}

/// `loadbalance [round_robin]`. The `weighted` policy is not supported.
fn parse_loadbalance(d: &Directive) -> Result<(), ConfigError> {
    let a = Args::new("loadbalance", d);
    match a.rest {
        [] => {}
        [p] if p.text == "round_robin" => {}
        [p] if p.text == "weighted" => {
            return Err(a.err(p, "the weighted policy is not supported; use round_robin"));
        }
        [p, ..] if p.text == "weighted" => {
            return Err(a.err(p, "the weighted policy is not supported; use round_robin"));
        }
        [p] => {
            return Err(a.err(
                p,
                format!("unknown policy '{}'; expected round_robin", p.text),
            ));
        }
        [_, extra, ..] => {
            return Err(a.err(
                extra,
                format!(
                    "unexpected argument '{}'; expected at most round_robin",
                    extra.text
                ),
            ));
        }
    }
    args::no_block("loadbalance", d)
}

/// Parses a server block key: `[dns://]ZONE[:PORT]`, where ZONE may be a CIDR (`10.0.0.0/24`),
/// which stands for the reverse zones it covers.
pub fn parse_key(key: &Token, default_port: u16) -> Result<Vec<ZoneKey>, ConfigError> {
    let text = key.text.as_str();
    let rest = match text.split_once("://") {
        Some(("dns", rest)) => rest,
        Some((scheme @ ("tls" | "https" | "grpc" | "quic" | "https3"), _)) => {
            return Err(ConfigError::new(
                &key.pos,
                format!(
                    "server block key '{text}': the {scheme}:// transport is not supported; use dns:// (or no scheme)"
                ),
            ));
        }
        Some((scheme, _)) => {
            return Err(ConfigError::new(
                &key.pos,
                format!("server block key '{text}': unknown scheme '{scheme}://'; expected dns://"),
            ));
        }
        None => text,
    };
    let bad_port = |p: &str| {
        ConfigError::new(
            &key.pos,
            format!("server block key '{text}': bad port '{p}'; expected a number from 0 to 65535"),
        )
    };
    // A CIDR keeps its colons (IPv6), so the port can only follow the prefix length.
    let (zone, port) = if let Some((net, tail)) = rest.split_once('/') {
        match tail.split_once(':') {
            Some((bits, port)) => (
                format!("{net}/{bits}"),
                port.parse::<u16>().map_err(|_| bad_port(port))?,
            ),
            None => (rest.to_string(), default_port),
        }
    } else if let Some(inner) = rest.strip_prefix('[') {
        // [zone]:port is accepted for symmetry with addresses.
        match inner.split_once(']') {
            Some((zone, tail)) => {
                let port = match tail.strip_prefix(':') {
                    Some(p) => p.parse::<u16>().map_err(|_| bad_port(p))?,
                    None => default_port,
                };
                (zone.to_string(), port)
            }
            None => (rest.to_string(), default_port),
        }
    } else {
        match rest.rsplit_once(':') {
            Some((zone, port)) => (
                zone.to_string(),
                port.parse::<u16>().map_err(|_| bad_port(port))?,
            ),
            None => (rest.to_string(), default_port),
        }
    };
    let zones = parse_zone(&zone)
        .map_err(|msg| ConfigError::new(&key.pos, format!("server block key '{text}': {msg}")))?;
    Ok(zones
        .into_iter()
        .map(|zone| ZoneKey {
            zone,
            port,
            pos: key.pos.clone(),
        })
        .collect())
}

/// A zone as written in a key or a directive: a domain name (`cluster.local`, `.`) or a CIDR
/// standing for reverse zones.
pub fn parse_zone(text: &str) -> Result<Vec<Name>, String> {
    if text.is_empty() || text == "." {
        return Ok(vec![Name::root()]);
    }
    if let Some((net, bits)) = text.split_once('/') {
        let ip: IpAddr = net
            .parse()
            .map_err(|_| format!("'{net}' is not an IP address (in CIDR '{text}')"))?;
        let max = if ip.is_ipv4() { 32 } else { 128 };
        let bits: u8 = bits
            .parse()
            .ok()
            .filter(|b| *b <= max)
            .ok_or_else(|| format!("bad prefix length '/{bits}'; expected 0 to {max}"))?;
        return Ok(names::reverse_zones(ip, bits));
    }
    names::fqdn(text)
        .map(|n| vec![n])
        .ok_or_else(|| format!("'{text}' is not a valid domain name"))
}

/// The plugin's zones: its own arguments if any, else the server block's.
pub fn zones_or_block(args: &[Token], ctx: &BlockContext) -> Result<Vec<Name>, Vec<ConfigError>> {
    if args.is_empty() {
        return Ok(ctx.zones.clone());
    }
    let mut zones = Vec::new();
    let mut errors = Vec::new();
    for a in args {
        if let Some(looks) = odd_zone(&a.text) {
            // CoreDNS takes it as a zone too, so the meaning stays; the operator hears of it.
            tracing::warn!(
                "{}: '{}' is read as a zone, as CoreDNS reads it, but it looks like {looks}",
                a.pos,
                a.text
            );
        }
        match parse_zone(&a.text) {
            Ok(mut z) => zones.append(&mut z),
            Err(msg) => errors.push(ConfigError::new(&a.pos, msg)),
        }
    }
    if errors.is_empty() {
        Ok(zones)
    } else {
        Err(errors)
    }
}

/// What a zone argument looks like when it is more likely a slip than a zone: a duration
/// (`cache 30s`: the TTL is whole seconds), a number, or an address (reverse zones are written
/// as CIDRs, `10.0.0.0/8`).
fn odd_zone(text: &str) -> Option<&'static str> {
    let bare = text.trim_end_matches('.');
    if !bare.is_empty() && bare.chars().all(|c| c.is_ascii_digit()) {
        Some("a number (a TTL, say); TTLs are whole seconds before any zone, e.g. 'cache 30'")
    } else if bare.parse::<std::net::IpAddr>().is_ok() {
        Some("an address; a reverse zone is written as a CIDR, e.g. '10.0.0.0/8'")
    } else if args::parse_duration(bare).is_some() {
        Some("a duration; TTLs are whole seconds, e.g. 'cache 30', not 'cache 30s'")
    } else {
        None
    }
}

/// Resolves `path` relative to the folder of the Corefile named in `pos`.
pub fn relative_path(pos: &Pos, path: &str) -> PathBuf {
    let p = Path::new(path);
    if p.is_absolute() {
        return p.to_path_buf();
    }
    Path::new(&*pos.file)
        .parent()
        .map(|dir| dir.join(p))
        .unwrap_or_else(|| p.to_path_buf())
}
