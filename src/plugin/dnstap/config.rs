//! `dnstap SOCKET [full] { identity IDENTITY; version VERSION; extra EXTRA }`: SOCKET is
//! `unix:///PATH`, an absolute `PATH` (a unix socket), or `tcp://IP:PORT`.

use std::net::SocketAddr;
use std::path::PathBuf;

use crate::corefile::Directive;
use crate::corefile::args::{self, Args};
use crate::corefile::error::ConfigError;
use crate::corefile::keys::BlockContext;
use crate::plugin::shared::hostname;

/// Where the frames go.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Sink {
    Unix(PathBuf),
    Tcp(SocketAddr),
}

impl std::fmt::Display for Sink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Sink::Unix(p) => write!(f, "unix://{}", p.display()),
            Sink::Tcp(a) => write!(f, "tcp://{a}"),
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DnstapConfig {
    pub sink: Sink,
    /// Whether the DNS messages themselves are sent, not only what is known of them.
    pub full: bool,
    pub identity: String,
    pub version: String,
    pub extra: Option<String>,
}

pub fn parse(d: &Directive, _: &BlockContext) -> Result<DnstapConfig, Vec<ConfigError>> {
    let a = Args::new("dnstap", d);
    let (socket, rest) = match d.args.split_first() {
        Some(x) => x,
        None => return Err(vec![a.err_here("expected SOCKET [full]")]),
    };
    let text = socket.text.as_str();
    let sink = if let Some(path) = text.strip_prefix("unix://") {
        Sink::Unix(PathBuf::from(path))
    } else if let Some(addr) = text.strip_prefix("tcp://") {
        let addr = addr.parse().map_err(|_| {
            vec![a.err(
                socket,
                format!("'{addr}' is not an IP:PORT; expected e.g. tcp://10.0.0.5:6000"),
            )]
        })?;
        Sink::Tcp(addr)
    } else if text.starts_with('/') {
        Sink::Unix(PathBuf::from(text))
    } else if text.starts_with("tls://") {
        return Err(vec![a.err(
            socket,
            "tls:// collectors are not supported; use tcp:// or a unix socket",
        )]);
    } else {
        return Err(vec![a.err(
            socket,
            format!("'{text}' is not a socket; expected unix:///PATH, /PATH or tcp://IP:PORT"),
        )]);
    };
    let full = match rest {
        [] => false,
        [f] if f.text == "full" => true,
        [other, ..] => {
            return Err(vec![a.err(
                other,
                format!("unexpected argument '{}'; expected full", other.text),
            )]);
        }
    };
    let mut cfg = DnstapConfig {
        sink,
        full,
        identity: hostname(),
        version: format!("clusterdns-{}", env!("CARGO_PKG_VERSION")),
        extra: None,
    };
    let mut errors = Vec::new();
    for p in d.block.iter().flatten() {
        let pa = Args::new(format!("dnstap: {}", p.name.text), p);
        let value = pa.one("a value").map(|t| t.text.clone());
        match (p.name.text.as_str(), value) {
            ("identity", Ok(v)) => cfg.identity = v,
            ("version", Ok(v)) => cfg.version = v,
            ("extra", Ok(v)) => cfg.extra = Some(v),
            ("identity" | "version" | "extra", Err(e)) => errors.push(e),
            ("skipverify", _) => errors
                .push(pa.err_here("skipverify is for tls:// collectors, which are not supported")),
            (other, _) => errors.push(pa.err_here(format!(
                "unknown property '{other}'; expected identity, version or extra"
            ))),
        }
    }
    args::finish(cfg, errors)
}

#[cfg(test)]
mod tests {
    use super::Sink;
    use crate::config::testing::{assert_errors, plugin};
    use crate::plugin::registry::PluginConfig;

    fn dnstap(text: &str) -> super::DnstapConfig {
        plugin(text, |p| match p {
            PluginConfig::Dnstap(c) => Some((**c).clone()),
            _ => None,
        })
    }

    #[test]
    fn sockets_and_properties() {
        let c = dnstap(".:53 {\n dnstap /tmp/dnstap.sock full\n}");
        assert_eq!(c.sink, Sink::Unix("/tmp/dnstap.sock".into()));
        assert!(c.full);
        let c = dnstap(
            ".:53 {\n dnstap tcp://127.0.0.1:6000 {\n  identity dns-1\n  version v1\n  extra cluster-a\n }\n}",
        );
        assert_eq!(c.sink, Sink::Tcp("127.0.0.1:6000".parse().unwrap()));
        assert!(!c.full);
        assert_eq!((c.identity.as_str(), c.version.as_str()), ("dns-1", "v1"));
        assert_eq!(c.extra.as_deref(), Some("cluster-a"));
        let c = dnstap(".:53 {\n dnstap unix:///var/run/tap.sock\n}");
        assert_eq!(c.sink, Sink::Unix("/var/run/tap.sock".into()));
    }

    #[test]
    fn errors_name_the_place() {
        assert_errors(&[
            (".:53 {\n dnstap\n}", "2:2: dnstap: expected SOCKET [full]"),
            (
                ".:53 {\n dnstap tcp://collector:6000\n}",
                "2:9: dnstap: 'collector:6000' is not an IP:PORT",
            ),
            (
                ".:53 {\n dnstap tap.sock\n}",
                "2:9: dnstap: 'tap.sock' is not a socket",
            ),
            (
                ".:53 {\n dnstap /tap.sock partial\n}",
                "2:19: dnstap: unexpected argument 'partial'; expected full",
            ),
            (
                ".:53 {\n dnstap /tap.sock {\n  ident x\n }\n}",
                "3:3: dnstap: ident: unknown property 'ident'",
            ),
        ]);
    }
}
