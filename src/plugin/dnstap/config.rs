//! `dnstap SOCKET [full] [WRITEBUFFER] [QUEUE] { identity; version; extra; skipverify }`: the
//! block's messages sent to a collector at SOCKET, which is `unix:///PATH`, an absolute `PATH`
//! (a unix socket), `tcp://IP:PORT` or `tls://IP:PORT`.
//!
//! `dnstap listen SOCKET [full] { identity; version; extra; tls CERT KEY [CA]; skipverify }`
//! (CoreDNS 1.14): collectors connect to SOCKET instead, and each gets every message.

use std::net::SocketAddr;
use std::path::PathBuf;

use crate::corefile::args::{self, Args};
use crate::corefile::error::ConfigError;
use crate::corefile::keys::BlockContext;
use crate::corefile::{Directive, Token};
use crate::plugin::shared::hostname;

/// Where the frames go (or, with `listen`, where collectors connect).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Sink {
    Unix(PathBuf),
    Tcp(SocketAddr),
    Tls(SocketAddr),
}

impl std::fmt::Display for Sink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Sink::Unix(p) => write!(f, "unix://{}", p.display()),
            Sink::Tcp(a) => write!(f, "tcp://{a}"),
            Sink::Tls(a) => write!(f, "tls://{a}"),
        }
    }
}

/// `tls CERT KEY [CA]` of a listening `tls://` socket.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ListenTls {
    pub cert: PathBuf,
    pub key: PathBuf,
    /// Collectors must show a certificate this CA signed (unless `skipverify`).
    pub ca: Option<PathBuf>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DnstapConfig {
    pub sink: Sink,
    /// `listen`: collectors connect to `sink`.
    pub listen: bool,
    /// Whether the DNS messages themselves are sent, not only what is known of them.
    pub full: bool,
    pub identity: String,
    pub version: String,
    pub extra: Option<String>,
    /// WRITEBUFFER: the socket's send buffer, in MiB (1 to 1024).
    pub write_buffer_mib: Option<u32>,
    /// QUEUE: the queue holds this many times 10,000 messages (1 to 4096).
    pub queue: u32,
    /// `skipverify`: the collector's certificate (outgoing `tls://`) or the collectors'
    /// (`listen` with a CA) is not checked.
    pub skip_verify: bool,
    pub tls: Option<ListenTls>,
}

const EXPECTED: &str = "expected unix:///PATH, /PATH, tcp://IP:PORT or tls://IP:PORT";

fn sink(a: &Args, socket: &Token) -> Result<Sink, ConfigError> {
    let text = socket.text.as_str();
    let addr = |rest: &str, scheme: &str| {
        rest.parse::<SocketAddr>().map_err(|_| {
            a.err(
                socket,
                format!("'{rest}' is not an IP:PORT; expected e.g. {scheme}://10.0.0.5:6000"),
            )
        })
    };
    if let Some(path) = text.strip_prefix("unix://") {
        Ok(Sink::Unix(PathBuf::from(path)))
    } else if let Some(rest) = text.strip_prefix("tcp://") {
        Ok(Sink::Tcp(addr(rest, "tcp")?))
    } else if let Some(rest) = text.strip_prefix("tls://") {
        Ok(Sink::Tls(addr(rest, "tls")?))
    } else if text.starts_with('/') {
        Ok(Sink::Unix(PathBuf::from(text)))
    } else {
        Err(a.err(socket, format!("'{text}' is not a socket; {EXPECTED}")))
    }
}

/// A positional number in `1..=max`.
/// A word that is not a number is a slip for `full` or a stray word, and says so.
fn multiplier(a: &Args, t: &Token, what: &str, max: u32) -> Result<u32, ConfigError> {
    let Ok(n) = t.text.parse::<u32>() else {
        return Err(a.err(
            t,
            format!(
                "unexpected argument '{}'; expected [full] [WRITEBUFFER] [QUEUE]",
                t.text
            ),
        ));
    };
    if !(1..=max).contains(&n) {
        return Err(a.err(t, format!("'{n}' is not a {what}: expected 1 to {max}")));
    }
    Ok(n)
}

pub fn parse(d: &Directive, _: &BlockContext) -> Result<DnstapConfig, Vec<ConfigError>> {
    let a = Args::new("dnstap", d);
    let listen = d.args.first().is_some_and(|t| t.text == "listen");
    let words = &d.args[usize::from(listen)..];
    let Some((socket, mut rest)) = words.split_first() else {
        return Err(vec![a.err_here(if listen {
            "expected listen SOCKET [full]"
        } else {
            "expected SOCKET [full] [WRITEBUFFER] [QUEUE]"
        })]);
    };
    let sink = sink(&a, socket).map_err(|e| vec![e])?;
    let mut cfg = DnstapConfig {
        sink,
        listen,
        full: false,
        identity: hostname(),
        version: format!("clusterdns-{}", env!("CARGO_PKG_VERSION")),
        extra: None,
        write_buffer_mib: None,
        queue: 1,
        skip_verify: false,
        tls: None,
    };
    if let Some((f, more)) = rest.split_first()
        && f.text == "full"
    {
        cfg.full = true;
        rest = more;
    }
    match (listen, rest) {
        (_, []) => {}
        (false, [w]) => {
            cfg.write_buffer_mib =
                Some(multiplier(&a, w, "write buffer in MiB", 1024).map_err(|e| vec![e])?)
        }
        (false, [w, q]) => {
            cfg.write_buffer_mib =
                Some(multiplier(&a, w, "write buffer in MiB", 1024).map_err(|e| vec![e])?);
            cfg.queue = multiplier(&a, q, "queue multiplier", 4096).map_err(|e| vec![e])?;
        }
        (true, [other, ..]) => {
            return Err(vec![a.err(
                other,
                format!("unexpected argument '{}'; expected full", other.text),
            )]);
        }
        (false, [_, _, other, ..]) => {
            return Err(vec![a.err(
                other,
                format!(
                    "unexpected argument '{}'; expected [full] [WRITEBUFFER] [QUEUE]",
                    other.text
                ),
            )]);
        }
    }
    let mut errors = Vec::new();
    let mut tls_at = None;
    for p in d.block.iter().flatten() {
        let pa = Args::new(format!("dnstap: {}", p.name.text), p);
        let result = match p.name.text.as_str() {
            "identity" => pa.one("a value").map(|t| cfg.identity = t.text.clone()),
            "version" => pa.one("a value").map(|t| cfg.version = t.text.clone()),
            "extra" => pa.one("a value").map(|t| cfg.extra = Some(t.text.clone())),
            "skipverify" => pa.none().map(|()| cfg.skip_verify = true),
            "tls" if listen => match pa.rest {
                [cert, key] | [cert, key, _] => {
                    let path = |t: &Token| crate::corefile::keys::relative_path(&t.pos, &t.text);
                    cfg.tls = Some(ListenTls {
                        cert: path(cert),
                        key: path(key),
                        ca: pa.rest.get(2).map(path),
                    });
                    tls_at = Some(p.name.pos.clone());
                    Ok(())
                }
                _ => Err(pa.err_here("expected CERT KEY [CA]")),
            },
            "tls" => Err(pa.err_here(
                "only 'dnstap listen tls://…' takes a certificate; a tls:// collector is checked against the system's roots (not at all with skipverify)",
            )),
            other => Err(pa.err_here(format!(
                "unknown property '{other}'; expected identity, version, extra, skipverify{}",
                if listen { " or tls" } else { "" }
            ))),
        };
        if let Err(e) = result {
            errors.push(e);
        }
    }
    match (&cfg.sink, &cfg.tls, listen) {
        (Sink::Tls(_), None, true) => errors.push(a.err(
            socket,
            "listening on tls:// needs 'tls CERT KEY [CA]' in the block",
        )),
        (Sink::Tcp(_) | Sink::Unix(_), Some(_), true) => {
            let at = tls_at.unwrap_or_else(|| socket.pos.clone());
            errors.push(ConfigError::new(
                &at,
                "dnstap: tls: the socket is not tls://",
            ));
        }
        _ => {}
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
        assert!(!c.listen);
        let c =
            dnstap(".:53 {\n dnstap tls://127.0.0.1:6000 full 1024 2048 {\n  skipverify\n }\n}");
        assert_eq!(c.sink, Sink::Tls("127.0.0.1:6000".parse().unwrap()));
        assert_eq!(
            (c.full, c.write_buffer_mib, c.queue, c.skip_verify),
            (true, Some(1024), 2048, true)
        );
        let c = dnstap(".:53 {\n dnstap /tmp/t.sock 4\n}");
        assert_eq!((c.full, c.write_buffer_mib, c.queue), (false, Some(4), 1));
        let c = dnstap(
            ".:53 {\n dnstap listen tls://127.0.0.1:6000 full {\n  tls /c.pem /k.pem /ca.pem\n }\n}",
        );
        assert!(c.listen && c.full);
        assert_eq!(
            c.tls,
            Some(super::ListenTls {
                cert: "/c.pem".into(),
                key: "/k.pem".into(),
                ca: Some("/ca.pem".into()),
            })
        );
        let c = dnstap(".:53 {\n dnstap listen /tmp/tap.sock\n}");
        assert_eq!(
            (c.listen, c.sink),
            (true, Sink::Unix("/tmp/tap.sock".into()))
        );
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
                "2:19: dnstap: unexpected argument 'partial'; expected [full] [WRITEBUFFER] [QUEUE]",
            ),
            (
                ".:53 {\n dnstap /tap.sock full 1 5000\n}",
                "2:26: dnstap: '5000' is not a queue multiplier: expected 1 to 4096",
            ),
            (
                ".:53 {\n dnstap listen /tap.sock full 1\n}",
                "2:31: dnstap: unexpected argument '1'; expected full",
            ),
            (
                ".:53 {\n dnstap listen tls://127.0.0.1:6000\n}",
                "2:16: dnstap: listening on tls:// needs 'tls CERT KEY [CA]'",
            ),
            (
                ".:53 {\n dnstap listen tcp://127.0.0.1:6000 {\n  tls a b\n }\n}",
                "3:3: dnstap: tls: the socket is not tls://",
            ),
            (
                ".:53 {\n dnstap tls://127.0.0.1:6000 {\n  tls a b\n }\n}",
                "3:3: dnstap: tls: only 'dnstap listen tls://…' takes a certificate",
            ),
            (
                ".:53 {\n dnstap /tap.sock {\n  ident x\n }\n}",
                "3:3: dnstap: ident: unknown property 'ident'",
            ),
        ]);
    }
}
