//! `forward FROM TO… { … }`: names under FROM go to the upstreams TO, as CoreDNS's `forward`
//! sends them.
//!
//! TO is `IP[:PORT]`, `[IPv6]:PORT`, `dns://…`, `tls://IP[:PORT]` (DNS over TLS, port 853),
//! `https://IP[:PORT]` (DNS over HTTPS, port 443, path `/dns-query`), a host name, or
//! a resolv.conf file whose `nameserver` lines are the upstreams (`forward . /etc/resolv.conf`).
//! The file is read here, when the Corefile is, so a missing file is an error at its position.

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

use hickory_proto::op::ResponseCode;
use hickory_proto::rr::Name;

use crate::corefile::{Directive, Token};
use crate::plugin::shared::parse_rcode;

use crate::corefile::args::Args;
use crate::corefile::error::ConfigError;
use crate::corefile::keys::BlockContext;

/// CoreDNS's limit on upstreams per `forward`.
pub const MAX_UPSTREAMS: usize = 15;

/// How an upstream is spoken to: plain DNS (`dns://`, or no scheme), DNS over TLS
/// (`tls://`) or DNS over HTTPS (`https://`, RFC 8484).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Scheme {
    Dns,
    Tls,
    Https,
}

/// The HTTP method of DNS over HTTPS queries (`doh_method`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum DohMethod {
    /// The query as the body (CoreDNS's default).
    #[default]
    Post,
    /// The query in the URL, `?dns=` and base64url (cacheable by HTTP caches).
    Get,
}

/// The path DNS over HTTPS queries go to: CoreDNS's, which has no other.
pub const DOH_PATH: &str = "/dns-query";

/// One upstream.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct To {
    /// The address; for a host name, `0.0.0.0` and its port until it is resolved at setup.
    pub addr: SocketAddr,
    pub scheme: Scheme,
    /// A per-upstream TLS server name (`tls://9.9.9.9%dns.quad9.net`).
    pub server_name: Option<String>,
    /// A host name to resolve at setup (CoreDNS 1.14: `forward . dns.example.local`).
    pub host: Option<Name>,
}

impl To {
    /// The `to` label of the metrics, as CoreDNS writes it: `8.8.8.8:53`, `[::1]:53`.
    pub fn label(&self) -> String {
        self.addr.to_string()
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Policy {
    Random,
    RoundRobin,
    Sequential,
}

/// `tls [CERT KEY] [CA]`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TlsFiles {
    pub cert_key: Option<(PathBuf, PathBuf)>,
    pub ca: Option<PathBuf>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HealthCheck {
    pub interval: Duration,
    pub recursion_desired: bool,
    pub domain: Name,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ForwardConfig {
    pub from: Name,
    pub to: Vec<To>,
    pub except: Vec<Name>,
    pub force_tcp: bool,
    pub prefer_udp: bool,
    pub expire: Duration,
    pub max_fails: u32,
    pub policy: Policy,
    pub health_check: HealthCheck,
    pub max_concurrent: Option<u64>,
    pub next: Vec<ResponseCode>,
    pub failover: Vec<ResponseCode>,
    pub failfast_all_unhealthy_upstreams: bool,
    pub tls: Option<TlsFiles>,
    pub tls_servername: Option<String>,
    pub max_idle_conns: usize,
    /// How long one upstream may take to answer (`read_timeout`, 2s by default).
    pub read_timeout: Duration,
    /// Upstream attempts a query may make (`max_connect_attempts`); `None`: twice the
    /// upstreams, CoreDNS 1.14's default; `Some(0)`: no cap.
    pub max_connect_attempts: Option<u32>,
    /// The address every query and health check to an upstream is sent from
    /// (`source_address`).
    pub source_address: Option<std::net::IpAddr>,
    /// Where host names among the upstreams are resolved (`resolver`); `/etc/resolv.conf`'s
    /// name servers where empty.
    pub resolver: Vec<SocketAddr>,
    /// `doh_method`: how `https://` upstreams are asked.
    pub doh_method: DohMethod,
    /// `next_on_nodata`: a NOERROR answer without records goes on to the next plugin.
    pub next_on_nodata: bool,
}

pub const DEFAULT_EXPIRE: Duration = Duration::from_secs(10);
pub const DEFAULT_HEALTH_CHECK: Duration = Duration::from_millis(500);

const PROPERTIES: &str = "except, force_tcp, prefer_udp, expire, max_fails, policy, health_check, \
max_concurrent, next, failover, failfast_all_unhealthy_upstreams, tls, tls_servername, max_idle_conns, \
read_timeout, max_connect_attempts, source_address, resolver, doh_method, next_on_nodata";

pub fn parse(d: &Directive, _: &BlockContext) -> Result<ForwardConfig, Vec<ConfigError>> {
    let args = Args::new("forward", d);
    let mut errors = Vec::new();
    let Some((from_tok, to_toks)) = args.rest.split_first() else {
        return Err(vec![args.err_here(
            "expected FROM and at least one upstream, e.g. 'forward . /etc/resolv.conf'",
        )]);
    };
    let from = match crate::corefile::keys::parse_zone(&from_tok.text) {
        Ok(z) => z.into_iter().next().unwrap_or_else(Name::root),
        Err(m) => {
            errors.push(args.err(from_tok, m));
            Name::root()
        }
    };
    if to_toks.is_empty() {
        errors.push(args.err(
            from_tok,
            "expected at least one upstream after FROM: an IP[:PORT], tls://IP[:PORT] or a resolv.conf file",
        ));
    }
    let mut to = Vec::new();
    for t in to_toks {
        match parse_to(t) {
            Ok(mut list) => to.append(&mut list),
            Err(m) => errors.push(args.err(t, m)),
        }
    }
    if to.len() > MAX_UPSTREAMS {
        errors.push(args.err_here(format!(
            "{} upstreams given; at most {MAX_UPSTREAMS} are allowed",
            to.len()
        )));
    }
    let mut cfg = ForwardConfig {
        from,
        to,
        except: Vec::new(),
        force_tcp: false,
        prefer_udp: false,
        expire: DEFAULT_EXPIRE,
        max_fails: 2,
        policy: Policy::Random,
        health_check: HealthCheck {
            interval: DEFAULT_HEALTH_CHECK,
            recursion_desired: true,
            domain: Name::root(),
        },
        max_concurrent: None,
        next: Vec::new(),
        failover: Vec::new(),
        failfast_all_unhealthy_upstreams: false,
        tls: None,
        tls_servername: None,
        max_idle_conns: 0,
        read_timeout: crate::plugin::forward::upstream::READ_TIMEOUT,
        max_connect_attempts: None,
        source_address: None,
        resolver: Vec::new(),
        doh_method: DohMethod::Post,
        next_on_nodata: false,
    };
    for p in d.block.iter().flatten() {
        if let Err(e) = property(&mut cfg, p) {
            errors.push(e);
        }
        if let Some(b) = p.block.as_ref().and_then(|b| b.first()) {
            errors.push(ConfigError::new(
                &b.name.pos,
                format!("forward: {}: takes no block", p.name.text),
            ));
        }
    }
    if cfg.tls_servername.is_some() && cfg.to.iter().any(|t| t.server_name.is_some()) {
        errors.push(args.err_here(
            "tls_servername cannot be combined with a per-upstream server name (tls://IP%NAME)",
        ));
    }
    if errors.is_empty() {
        Ok(cfg)
    } else {
        Err(errors)
    }
}

fn property(cfg: &mut ForwardConfig, p: &Directive) -> Result<(), ConfigError> {
    let a = Args::new(format!("forward: {}", p.name.text), p);
    match p.name.text.as_str() {
        "except" => {
            for t in a.some("one or more domain names")? {
                let z = crate::corefile::keys::parse_zone(&t.text).map_err(|m| a.err(t, m))?;
                cfg.except.extend(z);
            }
        }
        "force_tcp" => {
            a.none()?;
            cfg.force_tcp = true;
        }
        "prefer_udp" => {
            a.none()?;
            cfg.prefer_udp = true;
        }
        "expire" => cfg.expire = a.duration(a.one("a duration such as 10s")?)?,
        "max_fails" => cfg.max_fails = number(&a, a.one("a number")?)?,
        "max_idle_conns" => cfg.max_idle_conns = number(&a, a.one("a number")?)?,
        "read_timeout" => {
            let t = a.one("a duration such as 2s")?;
            let d = a.duration(t)?;
            if d.is_zero() {
                return Err(a.err(t, "must be more than 0"));
            }
            cfg.read_timeout = d;
        }
        "max_connect_attempts" => {
            cfg.max_connect_attempts = Some(number(&a, a.one("a number (0: no cap)")?)?)
        }
        "source_address" => {
            let t = a.one("an IP address")?;
            cfg.source_address = Some(
                t.text
                    .parse()
                    .map_err(|_| a.err(t, format!("'{}' is not an IP address", t.text)))?,
            );
        }
        "max_concurrent" => {
            let t = a.one("a number")?;
            let n: u64 = number(&a, t)?;
            if n == 0 {
                return Err(a.err(t, "must be greater than 0"));
            }
            cfg.max_concurrent = Some(n);
        }
        "policy" => {
            let t = a.one("random, round_robin or sequential")?;
            cfg.policy = match t.text.as_str() {
                "random" => Policy::Random,
                "round_robin" => Policy::RoundRobin,
                "sequential" => Policy::Sequential,
                other => {
                    return Err(a.err(
                        t,
                        format!(
                            "unknown policy '{other}'; expected random, round_robin or sequential"
                        ),
                    ));
                }
            };
        }
        "health_check" => {
            let toks = a.some("a duration such as 0.5s, then optionally no_rec and domain NAME")?;
            cfg.health_check.interval = a.duration(&toks[0])?;
            let mut rest = toks[1..].iter();
            while let Some(t) = rest.next() {
                match t.text.as_str() {
                    "no_rec" => cfg.health_check.recursion_desired = false,
                    "domain" => {
                        let Some(n) = rest.next() else {
                            return Err(a.err(t, "expected a domain name after 'domain'"));
                        };
                        cfg.health_check.domain =
                            crate::dns::name::fqdn(&n.text).ok_or_else(|| {
                                a.err(n, format!("'{}' is not a domain name", n.text))
                            })?;
                    }
                    other => {
                        return Err(a.err(
                            t,
                            format!("unexpected '{other}'; expected no_rec or domain NAME"),
                        ));
                    }
                }
            }
        }
        "next" => cfg.next = rcodes(&a, false)?,
        "failover" => cfg.failover = rcodes(&a, true)?,
        "failfast_all_unhealthy_upstreams" => {
            a.none()?;
            cfg.failfast_all_unhealthy_upstreams = true;
        }
        "tls" => {
            // Read when the forwarder starts; a missing file is reported here, where it is named.
            for t in a.rest {
                let p = crate::corefile::keys::relative_path(&t.pos, &t.text);
                if !p.is_file() {
                    return Err(a.err(t, format!("cannot read '{}'", p.display())));
                }
            }
            let path = |t: &Token| crate::corefile::keys::relative_path(&t.pos, &t.text);
            cfg.tls = Some(match a.rest {
                [] => TlsFiles::default(),
                [ca] => TlsFiles {
                    cert_key: None,
                    ca: Some(path(ca)),
                },
                [cert, key] => TlsFiles {
                    cert_key: Some((path(cert), path(key))),
                    ca: None,
                },
                [cert, key, ca] => TlsFiles {
                    cert_key: Some((path(cert), path(key))),
                    ca: Some(path(ca)),
                },
                [_, _, _, extra, ..] => {
                    return Err(a.err(
                        extra,
                        format!(
                            "unexpected argument '{}'; expected at most CERT KEY CA",
                            extra.text
                        ),
                    ));
                }
            });
        }
        "tls_servername" => cfg.tls_servername = Some(a.one("a server name")?.text.clone()),
        "resolver" => {
            for t in a.some("one or more resolver addresses, IP[:PORT]")? {
                cfg.resolver.push(
                    parse_addr(&t.text, 53)
                        .ok_or_else(|| a.err(t, format!("'{}' is not an IP[:PORT]", t.text)))?,
                );
            }
        }
        "doh_method" => {
            let t = a.one("GET or POST")?;
            cfg.doh_method = match t.text.to_ascii_uppercase().as_str() {
                "GET" => DohMethod::Get,
                "POST" => DohMethod::Post,
                _ => {
                    return Err(a.err(
                        t,
                        format!("unknown method '{}'; expected GET or POST", t.text),
                    ));
                }
            };
        }
        "next_on_nodata" => {
            a.none()?;
            cfg.next_on_nodata = true;
        }
        other => {
            return Err(ConfigError::new(
                &p.name.pos,
                format!("forward: unknown property '{other}'; expected one of: {PROPERTIES}"),
            ));
        }
    }
    Ok(())
}

fn number<N: std::str::FromStr>(a: &Args, t: &Token) -> Result<N, ConfigError> {
    t.text
        .parse()
        .map_err(|_| a.err(t, format!("'{}' is not a whole number", t.text)))
}

fn rcodes(a: &Args, no_noerror: bool) -> Result<Vec<ResponseCode>, ConfigError> {
    let mut out = Vec::new();
    for t in a.some("one or more rcodes such as NXDOMAIN or SERVFAIL")? {
        let rcode = parse_rcode(&t.text).ok_or_else(|| {
            a.err(
                t,
                format!(
                    "'{}' is not an rcode; expected e.g. NXDOMAIN, SERVFAIL, REFUSED",
                    t.text
                ),
            )
        })?;
        if no_noerror && rcode == ResponseCode::NoError {
            return Err(a.err(t, "NOERROR cannot be used here"));
        }
        out.push(rcode);
    }
    Ok(out)
}

/// One TO: an address, or a resolv.conf file standing for its nameservers.
fn parse_to(t: &Token) -> Result<Vec<To>, String> {
    let text = t.text.as_str();
    let (transport, rest) = match text.split_once("://") {
        Some(("dns", rest)) => (Scheme::Dns, rest),
        Some(("tls", rest)) => (Scheme::Tls, rest),
        Some(("https", rest)) => {
            // The path is always /dns-query (CoreDNS has no other); writing it is allowed.
            let (host, path) = match rest.find('/') {
                Some(at) => rest.split_at(at),
                None => (rest, DOH_PATH),
            };
            if path != DOH_PATH && path != "/dns-query/" {
                return Err(format!(
                    "upstream '{text}': DNS over HTTPS goes to {DOH_PATH}, as in CoreDNS; \
                     other paths are not supported"
                ));
            }
            (Scheme::Https, host)
        }
        Some((scheme @ ("grpc" | "quic" | "h3"), _)) => {
            return Err(format!(
                "upstream '{text}': {scheme}:// is not supported by clusterdns; use dns://, tls:// or https://"
            ));
        }
        Some((scheme, _)) => {
            return Err(format!(
                "upstream '{text}': unknown scheme '{scheme}://'; expected dns://, tls:// or https://"
            ));
        }
        None => (Scheme::Dns, text),
    };
    let default_port = match transport {
        Scheme::Dns => 53,
        Scheme::Tls => 853,
        Scheme::Https => 443,
    };
    // tls://IP%NAME[:PORT]
    let (rest, server_name) = match (transport, rest.split_once('%')) {
        (Scheme::Tls, Some((ip, tail))) => {
            let (name, port) = match tail.rsplit_once(':') {
                Some((n, p)) if p.chars().all(|c| c.is_ascii_digit()) => (n, Some(p)),
                _ => (tail, None),
            };
            let joined = match port {
                Some(p) if ip.contains(':') => format!("[{ip}]:{p}"),
                Some(p) => format!("{ip}:{p}"),
                None => ip.to_string(),
            };
            (joined, Some(name.to_string()))
        }
        _ => (rest.to_string(), None),
    };
    if let Some(addr) = parse_addr(&rest, default_port) {
        return Ok(vec![To {
            addr,
            scheme: transport,
            server_name,
            host: None,
        }]);
    }
    if transport == Scheme::Dns && !text.contains("://") {
        let path = crate::corefile::keys::relative_path(&t.pos, text);
        if let Some(content) = read_small_file(&path) {
            let servers = resolv_conf_nameservers(&content);
            if servers.is_empty() {
                return Err(format!(
                    "'{}' has no usable 'nameserver' lines",
                    path.display()
                ));
            }
            return Ok(servers
                .into_iter()
                .map(|ip| To {
                    addr: SocketAddr::new(ip, 53),
                    scheme: transport,
                    server_name: None,
                    host: None,
                })
                .collect());
        }
        if text.starts_with('/') || text.starts_with('.') {
            return Err(format!("cannot read resolv.conf file '{}'", path.display()));
        }
    }
    // A host name (CoreDNS 1.14), resolved when the plugin is set up: HOST[:PORT].
    let (host, port) = match rest.rsplit_once(':') {
        Some((h, p)) if !h.contains(':') => match p.parse::<u16>() {
            Ok(p) => (h, p),
            Err(_) => return Err(not_an_upstream(text)),
        },
        _ => (rest.as_str(), default_port),
    };
    match crate::dns::name::fqdn(host) {
        Some(name) if host.contains('.') && !host.starts_with('/') => Ok(vec![To {
            addr: SocketAddr::new(std::net::Ipv4Addr::UNSPECIFIED.into(), port),
            scheme: transport,
            // Over TLS and HTTPS the certificate is checked against the name written.
            server_name: server_name.or_else(|| {
                (transport != Scheme::Dns).then(|| host.trim_end_matches('.').to_string())
            }),
            host: Some(name),
        }]),
        _ => Err(not_an_upstream(text)),
    }
}

fn not_an_upstream(text: &str) -> String {
    format!(
        "upstream '{text}' is not an IP[:PORT], tls://IP[:PORT], https://IP[:PORT], a readable \
         resolv.conf file, or a host name"
    )
}

/// A regular file of at most 1 MiB (a device such as `/dev/zero` would never end).
fn read_small_file(path: &std::path::Path) -> Option<String> {
    use std::io::Read;
    let meta = std::fs::metadata(path).ok()?;
    if !meta.is_file() || meta.len() > 1 << 20 {
        return None;
    }
    let mut text = String::new();
    std::fs::File::open(path)
        .ok()?
        .take(1 << 20)
        .read_to_string(&mut text)
        .ok()?;
    Some(text)
}

/// `1.2.3.4`, `1.2.3.4:53`, `::1`, `[::1]:53`.
fn parse_addr(text: &str, default_port: u16) -> Option<SocketAddr> {
    if let Ok(ip) = text.parse::<IpAddr>() {
        return Some(SocketAddr::new(ip, default_port));
    }
    if let Ok(sa) = text.parse::<SocketAddr>() {
        return Some(sa);
    }
    let inner = text.strip_prefix('[')?.strip_suffix(']')?;
    inner
        .parse::<IpAddr>()
        .ok()
        .map(|ip| SocketAddr::new(ip, default_port))
}

/// The addresses of a resolv.conf's `nameserver` lines (an IPv6 zone such as `%eth0` is left
/// off, as the address alone is what we can dial).
pub fn resolv_conf_nameservers(content: &str) -> Vec<IpAddr> {
    content
        .lines()
        .map(|l| l.split(['#', ';']).next().unwrap_or_default())
        .filter_map(|l| {
            let mut words = l.split_whitespace();
            (words.next() == Some("nameserver")).then_some(())?;
            let addr = words.next()?;
            addr.split('%').next()?.parse().ok()
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::LoadOptions;
    use crate::config::testing::*;
    use crate::plugin::registry::PluginConfig;

    fn forward(text: &str) -> ForwardConfig {
        plugin(text, |p| match p {
            PluginConfig::Forward(f) => Some((**f).clone()),
            _ => None,
        })
    }

    #[test]
    fn forward_upstreams_and_properties() {
        use {Policy, Scheme};
        let f = forward(
            ".:53 {\n forward . 1.1.1.1 8.8.8.8:5353 [::1]:53 dns://9.9.9.9 tls://1.0.0.1\n}",
        );
        assert_eq!(f.from, Name::root());
        let to: Vec<(String, Scheme)> =
            f.to.iter()
                .map(|t| (t.addr.to_string(), t.scheme))
                .collect();
        assert_eq!(
            to,
            [
                ("1.1.1.1:53".to_string(), Scheme::Dns),
                ("8.8.8.8:5353".to_string(), Scheme::Dns),
                ("[::1]:53".to_string(), Scheme::Dns),
                ("9.9.9.9:53".to_string(), Scheme::Dns),
                ("1.0.0.1:853".to_string(), Scheme::Tls),
            ]
        );
        assert_eq!(f.policy, Policy::Random);
        assert_eq!(f.max_fails, 2);
        assert_eq!(f.expire, Duration::from_secs(10));
        assert_eq!(f.health_check.interval, Duration::from_millis(500));
        assert_eq!(f.doh_method, super::DohMethod::Post);

        // DNS over HTTPS: port 443, /dns-query written or not, a host name checked as written.
        let f = forward(
            ".:53 {\n forward . https://9.9.9.9 https://[2620:fe::fe]:8443/dns-query https://dns.quad9.net {\n  doh_method get\n }\n}",
        );
        let to: Vec<(String, Scheme, Option<String>)> =
            f.to.iter()
                .map(|t| (t.addr.to_string(), t.scheme, t.server_name.clone()))
                .collect();
        assert_eq!(
            to,
            [
                ("9.9.9.9:443".to_string(), Scheme::Https, None),
                ("[2620:fe::fe]:8443".to_string(), Scheme::Https, None),
                (
                    "0.0.0.0:443".to_string(),
                    Scheme::Https,
                    Some("dns.quad9.net".into())
                ),
            ]
        );
        assert_eq!(f.doh_method, super::DohMethod::Get);

        let f = forward(
            "example.org {\n forward example.org tls://9.9.9.9%dns.quad9.net:10853 {\n  except a.example.org b.example.org\n  force_tcp\n  prefer_udp\n  expire 30s\n  max_fails 0\n  policy sequential\n  health_check 5s no_rec domain example.com\n  max_concurrent 1000\n  next NXDOMAIN servfail\n  failover REFUSED\n  failfast_all_unhealthy_upstreams\n  tls\n }\n}",
        );
        assert_eq!(f.from.to_ascii(), "example.org.");
        assert_eq!(f.to[0].addr.to_string(), "9.9.9.9:10853");
        assert_eq!(f.to[0].server_name.as_deref(), Some("dns.quad9.net"));
        assert_eq!(zones(&f.except), ["a.example.org.", "b.example.org."]);
        assert!(f.force_tcp && f.prefer_udp && f.failfast_all_unhealthy_upstreams);
        assert_eq!(f.expire, Duration::from_secs(30));
        assert_eq!(f.max_fails, 0);
        assert_eq!(f.policy, Policy::Sequential);
        assert_eq!(f.health_check.interval, Duration::from_secs(5));
        assert!(!f.health_check.recursion_desired);
        assert_eq!(f.health_check.domain.to_ascii(), "example.com.");
        assert_eq!(f.max_concurrent, Some(1000));
        assert_eq!(f.next, [ResponseCode::NXDomain, ResponseCode::ServFail]);
        assert_eq!(f.failover, [ResponseCode::Refused]);
        assert_eq!(f.tls, Some(TlsFiles::default()));
    }

    #[test]
    fn forward_reads_resolv_conf() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("resolv.conf"),
            "# comment\nsearch default.svc.cluster.local\nnameserver 10.0.0.10\nnameserver fe80::1%eth0 ; zone\noptions ndots:5\nnameserver 10.0.0.11\n",
        )
        .unwrap();
        let corefile = dir.path().join("Corefile");
        std::fs::write(&corefile, ".:53 {\n forward . resolv.conf\n}\n").unwrap();
        let cfg = crate::config::load(&corefile, &LoadOptions::default()).unwrap();
        let PluginConfig::Forward(f) = &cfg.servers[0].plugins[0] else {
            panic!("{cfg:?}")
        };
        let to: Vec<String> = f.to.iter().map(|t| t.addr.to_string()).collect();
        assert_eq!(to, ["10.0.0.10:53", "[fe80::1]:53", "10.0.0.11:53"]);
        // Several forwards in one block keep their Corefile order.
        let cfg =
            load_text(".:53 {\n forward . 1.2.3.4 {\n  next NXDOMAIN\n }\n forward . 5.6.7.8\n}")
                .unwrap();
        let order: Vec<String> = cfg.servers[0]
            .plugins
            .iter()
            .map(|p| match p {
                PluginConfig::Forward(f) => f.to[0].addr.to_string(),
                other => other.name().to_string(),
            })
            .collect();
        assert_eq!(order, ["1.2.3.4:53", "5.6.7.8:53"]);
    }

    #[test]
    fn errors_name_the_position_and_what_is_accepted() {
        assert_errors(&[
            (
                ".:53 {\n forward\n}",
                "2:2: forward: expected FROM and at least one upstream",
            ),
            (
                ".:53 {\n forward .\n}",
                "2:10: forward: expected at least one upstream after FROM",
            ),
            (
                ".:53 {\n forward . dns..google\n}",
                "2:12: forward: upstream 'dns..google' is not an IP[:PORT], tls://IP[:PORT], https://IP[:PORT], a readable resolv.conf file, or a host name",
            ),
            (
                ".:53 {\n forward . /nonexistent/resolv.conf\n}",
                "2:12: forward: cannot read resolv.conf file '/nonexistent/resolv.conf'",
            ),
            (
                ".:53 {\n forward . /dev/zero\n}",
                "2:12: forward: cannot read resolv.conf file '/dev/zero'",
            ),
            (
                ".:53 {\n forward . https://9.9.9.9/resolve\n}",
                "2:12: forward: upstream 'https://9.9.9.9/resolve': DNS over HTTPS goes to /dns-query",
            ),
            (
                ".:53 {\n forward . quic://9.9.9.9\n}",
                "2:12: forward: upstream 'quic://9.9.9.9': quic:// is not supported by clusterdns",
            ),
            (
                ".:53 {\n forward . https://9.9.9.9 {\n  doh_method PUT\n }\n}",
                "3:14: forward: doh_method: unknown method 'PUT'; expected GET or POST",
            ),
            (
                ".:53 {\n forward . 1.1.1.1 {\n  policy fastest\n }\n}",
                "3:10: forward: policy: unknown policy 'fastest'; expected random, round_robin or sequential",
            ),
            (
                ".:53 {\n forward . 1.1.1.1 {\n  max_concurrent 0\n }\n}",
                "3:18: forward: max_concurrent: must be greater than 0",
            ),
            (
                ".:53 {\n forward . 1.1.1.1 {\n  next NOPE\n }\n}",
                "3:8: forward: next: 'NOPE' is not an rcode",
            ),
            (
                ".:53 {\n forward . 1.1.1.1 {\n  failover NOERROR\n }\n}",
                "3:12: forward: failover: NOERROR cannot be used here",
            ),
            (
                ".:53 {\n forward . 1.1.1.1 {\n  health_check 1s often\n }\n}",
                "3:19: forward: health_check: unexpected 'often'; expected no_rec or domain NAME",
            ),
            (
                ".:53 {\n forward . tls://1.1.1.1 {\n  tls /nonexistent/ca.pem\n }\n}",
                "3:7: forward: tls: cannot read '/nonexistent/ca.pem'",
            ),
            (
                ".:53 {\n forward . 1.1.1.1 {\n  bogus\n }\n}",
                "3:3: forward: unknown property 'bogus'; expected one of: except, force_tcp",
            ),
            (
                ".:53 {\n forward . 1.1.1.1 1.1.1.2 1.1.1.3 1.1.1.4 1.1.1.5 1.1.1.6 1.1.1.7 1.1.1.8 1.1.1.9 1.1.1.10 1.1.1.11 1.1.1.12 1.1.1.13 1.1.1.14 1.1.1.15 1.1.1.16\n}",
                "2:2: forward: 16 upstreams given; at most 15 are allowed",
            ),
        ]);
    }
}
