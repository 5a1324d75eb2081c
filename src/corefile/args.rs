//! Helpers for reading a directive's arguments and properties with good error messages.

use std::time::Duration;

use crate::corefile::{Directive, Token};
use crate::vocab::ListenAddr;

use super::error::{ConfigError, ValueError};

/// The arguments of one directive or property line, read left to right.
pub struct Args<'a> {
    /// `kubernetes` or `kubernetes: ttl`, the prefix of every message.
    pub what: String,
    pub head: &'a Token,
    pub rest: &'a [Token],
}

impl<'a> Args<'a> {
    pub fn new(what: impl Into<String>, d: &'a Directive) -> Self {
        Self {
            what: what.into(),
            head: &d.name,
            rest: &d.args,
        }
    }

    pub fn err(&self, t: &Token, msg: impl AsRef<str>) -> ConfigError {
        ConfigError::new(&t.pos, format!("{}: {}", self.what, msg.as_ref()))
    }

    /// An error at the directive name itself.
    pub fn err_here(&self, msg: impl AsRef<str>) -> ConfigError {
        self.err(self.head, msg)
    }

    /// Exactly one argument.
    pub fn one(&self, expected: &str) -> Result<&'a Token, ConfigError> {
        match self.rest {
            [t] => Ok(t),
            [] => Err(self.err_here(format!("expected {expected}"))),
            [_, extra, ..] => Err(self.err(
                extra,
                format!(
                    "unexpected argument '{}'; expected only {expected}",
                    extra.text
                ),
            )),
        }
    }

    /// No arguments.
    pub fn none(&self) -> Result<(), ConfigError> {
        match self.rest.first() {
            None => Ok(()),
            Some(t) => Err(self.err(
                t,
                format!("unexpected argument '{}'; this takes none", t.text),
            )),
        }
    }

    /// `t` as a Go-style duration, or an error naming it.
    pub fn duration(&self, t: &Token) -> Result<Duration, ConfigError> {
        parse_duration(&t.text).ok_or_else(|| {
            self.err(
                t,
                format!("'{}' is not a duration; expected e.g. 5s", t.text),
            )
        })
    }

    /// At least one argument.
    pub fn some(&self, expected: &str) -> Result<&'a [Token], ConfigError> {
        if self.rest.is_empty() {
            Err(self.err_here(format!("expected {expected}")))
        } else {
            Ok(self.rest)
        }
    }
}

/// Rejects a block where a directive takes none.
pub fn no_block(what: &str, d: &Directive) -> Result<(), ConfigError> {
    match d.block.as_ref().and_then(|b| b.first()) {
        Some(p) => Err(ConfigError::new(
            &p.name.pos,
            format!(
                "{what}: unexpected property '{}'; this takes no block",
                p.name.text
            ),
        )),
        None => Ok(()),
    }
}

/// A directive that takes neither arguments nor a block (`any`, `whoami`, `minimal`, `debug`).
pub fn bare(what: &str, d: &Directive) -> Result<(), Vec<ConfigError>> {
    Args::new(what, d)
        .none()
        .and_then(|_| no_block(what, d))
        .map_err(|e| vec![e])
}

/// What a directive's properties came to: `cfg`, or every error found in them.
pub fn finish<T>(cfg: T, errors: Vec<ConfigError>) -> Result<T, Vec<ConfigError>> {
    if errors.is_empty() {
        Ok(cfg)
    } else {
        Err(errors)
    }
}

/// Parses a Go-style duration as CoreDNS writes them: `5s`, `1m30s`, `250ms`, `1.5h`, `0`.
pub fn parse_duration(text: &str) -> Option<Duration> {
    if text == "0" {
        return Some(Duration::ZERO);
    }
    let mut rest = text;
    let mut total = 0f64;
    if rest.is_empty() {
        return None;
    }
    while !rest.is_empty() {
        let num_len = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        if num_len == 0 {
            return None;
        }
        let value: f64 = rest[..num_len].parse().ok()?;
        rest = &rest[num_len..];
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let scale = match &rest[..unit_len] {
            "ns" => 1e-9,
            "us" | "µs" => 1e-6,
            "ms" => 1e-3,
            "s" => 1.0,
            "m" => 60.0,
            "h" => 3600.0,
            _ => return None,
        };
        rest = &rest[unit_len..];
        total += value * scale;
    }
    Duration::try_from_secs_f64(total).ok()
}

/// The optional single address argument of a directive that serves HTTP (`health`, `ready`, `prometheus`).
pub fn listen_addr(args: &Args, default: ListenAddr) -> Result<ListenAddr, ConfigError> {
    match args.rest {
        [] => Ok(default),
        [t] => parse_listen_addr(&t.text).map_err(|m| args.err(t, m)),
        [_, extra, ..] => Err(args.err(
            extra,
            format!(
                "unexpected argument '{}'; expected at most an address",
                extra.text
            ),
        )),
    }
}

/// Parses `[HOST]:PORT`; HOST may be empty, an IP, `[IPv6]` or `localhost`.
pub fn parse_listen_addr(text: &str) -> Result<ListenAddr, ValueError> {
    let (host, port) = text
        .rsplit_once(':')
        .ok_or_else(|| format!("'{text}' is not an address: expected [HOST]:PORT such as :8080"))?;
    let port: u16 = port
        .parse()
        .map_err(|_| format!("'{port}' in '{text}' is not a port number"))?;
    let host = host.trim_start_matches('[').trim_end_matches(']');
    let ip = match host {
        "" => None,
        "localhost" => Some(std::net::IpAddr::V4(std::net::Ipv4Addr::LOCALHOST)),
        h => Some(
            h.parse()
                .map_err(|_| format!("'{h}' in '{text}' is not an IP address (or localhost)"))?,
        ),
    };
    Ok(ListenAddr { ip, port })
}

/// A duration as Go prints it, as CoreDNS's messages show them: `5m0s`, `2s`, `1h0m0s`, `250ms`.
pub fn format_duration(d: Duration) -> String {
    let total = d.as_secs_f64();
    if total < 1.0 {
        let ms = d.as_millis();
        if ms > 0 && d.as_nanos().is_multiple_of(1_000_000) {
            return format!("{ms}ms");
        }
        return format!("{total}s");
    }
    let secs = d.as_secs();
    let frac = d.subsec_nanos();
    let (h, m, s) = (secs / 3600, secs / 60 % 60, secs % 60);
    let sec = if frac == 0 {
        format!("{s}s")
    } else {
        format!("{}s", s as f64 + f64::from(frac) / 1e9)
    };
    match (h, m) {
        (0, 0) => sec,
        (0, m) => format!("{m}m{sec}"),
        (h, m) => format!("{h}h{m}m{sec}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("5s"), Some(Duration::from_secs(5)));
        assert_eq!(parse_duration("1m30s"), Some(Duration::from_secs(90)));
        assert_eq!(parse_duration("250ms"), Some(Duration::from_millis(250)));
        assert_eq!(parse_duration("1.5h"), Some(Duration::from_secs(5400)));
        assert_eq!(parse_duration("0"), Some(Duration::ZERO));
        assert_eq!(parse_duration("5"), None);
        assert_eq!(parse_duration("s"), None);
        assert_eq!(parse_duration("5x"), None);
        assert_eq!(parse_duration(""), None);
    }

    #[test]
    fn durations_print_as_go_prints_them() {
        for (d, want) in [
            (Duration::from_secs(2), "2s"),
            (Duration::from_secs(300), "5m0s"),
            (Duration::from_secs(3600), "1h0m0s"),
            (Duration::from_secs(90), "1m30s"),
            (Duration::from_millis(250), "250ms"),
            (Duration::from_millis(1500), "1.5s"),
        ] {
            assert_eq!(format_duration(d), want);
        }
    }

    #[test]
    fn listen_addresses() {
        for (text, want) in [
            (":8080", ":8080"),
            ("0.0.0.0:9153", "0.0.0.0:9153"),
            ("localhost:9153", "127.0.0.1:9153"),
            ("[::1]:8181", "[::1]:8181"),
        ] {
            assert_eq!(parse_listen_addr(text).unwrap().to_string(), want);
        }
        assert!(parse_listen_addr("8080").is_err());
        assert!(parse_listen_addr("host:8080").is_err());
    }
}
