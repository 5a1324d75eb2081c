//! Server block keys and zones: what a block serves, and the zones a directive names.

use std::net::IpAddr;
use std::path::{Path, PathBuf};

use hickory_proto::rr::Name;

use super::args;
use super::error::{ConfigError, ValueError};
use crate::corefile::{Pos, Token};
use crate::dns::name;

/// A server block key: the zone it serves and the port it listens on.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ZoneKey {
    pub zone: Name,
    pub port: u16,
    /// A `tls://` key: DNS over TLS on the port.
    pub tls: bool,
    pub pos: Pos,
}

/// The port of a `tls://` key that names none (RFC 7858).
pub const DOT_PORT: u16 = 853;

/// What a directive's parser may know about the block it is in.
pub struct BlockContext {
    pub zones: Vec<Name>,
    /// The names of every directive in the block, in Corefile order.
    pub directives: Vec<String>,
    /// The block's keys are `tls://`: it serves DNS over TLS.
    pub tls: bool,
}

impl BlockContext {
    /// Whether the block has a directive of this name.
    pub fn has(&self, name: &str) -> bool {
        self.directives.iter().any(|d| d == name)
    }
}

/// Parses a server block key: `[dns://]ZONE[:PORT]`, where ZONE may be a CIDR (`10.0.0.0/24`),
/// which stands for the reverse zones it covers.
pub fn parse_key(key: &Token, default_port: u16) -> Result<Vec<ZoneKey>, ConfigError> {
    let text = key.text.as_str();
    let (rest, tls) = match text.split_once("://") {
        Some(("dns", rest)) => (rest, false),
        Some(("tls", rest)) => (rest, true),
        Some((scheme @ ("https" | "grpc" | "quic" | "https3"), _)) => {
            return Err(ConfigError::new(
                &key.pos,
                format!(
                    "server block key '{text}': the {scheme}:// transport is not supported; use dns:// or tls://"
                ),
            ));
        }
        Some((scheme, _)) => {
            return Err(ConfigError::new(
                &key.pos,
                format!(
                    "server block key '{text}': unknown scheme '{scheme}://'; expected dns:// or tls://"
                ),
            ));
        }
        None => (text, false),
    };
    let default_port = if tls { DOT_PORT } else { default_port };
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
            tls,
            pos: key.pos.clone(),
        })
        .collect())
}

/// A zone as written in a key or a directive: a domain name (`cluster.local`, `.`) or a CIDR
/// standing for reverse zones.
pub fn parse_zone(text: &str) -> Result<Vec<Name>, ValueError> {
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
        return Ok(name::reverse_zones(ip, bits));
    }
    name::fqdn(text)
        .map(|n| vec![n])
        .ok_or_else(|| ValueError(format!("'{text}' is not a valid domain name")))
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
            Err(msg) => errors.push(ConfigError::new(&a.pos, msg.0)),
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
