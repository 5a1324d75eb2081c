//! node-cache's command line, read as Go's `flag` package reads it: `-name value`,
//! `-name=value`, `--name`, and bool flags given alone or as `-name=false`.

use std::net::IpAddr;
use std::path::PathBuf;
use std::time::Duration;

/// How the node's packet rules are written (ours; node-cache has iptables only).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Firewall {
    /// nftables where the node's kube-proxy uses it, else iptables (see `rules::Backend::detect`).
    Auto,
    Nftables,
    Iptables,
}

/// node-cache's flags, CoreDNS's flags as node-cache passes them, and ours.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Params {
    pub local_ips: Vec<IpAddr>,
    pub setup_interface: bool,
    pub interface: String,
    pub sync_interval: Duration,
    pub metrics_listen: String,
    pub prometheus_listen: String,
    pub setup_iptables: bool,
    pub base_corefile: PathBuf,
    pub corefile: PathBuf,
    /// `None`: `/etc/kube-dns` if it exists, as node-cache does.
    pub kubedns_cm: Option<PathBuf>,
    pub upstream_svc: String,
    pub health_port: u16,
    pub skip_teardown: bool,
    pub reload_with_signal: bool,
    pub port: u16,
    pub pidfile: Option<PathBuf>,
    pub quiet: bool,
    /// Ours: how the rules are written.
    pub firewall: Firewall,
    /// Ours: how often the ConfigMap mounts are read (node-cache: every 10 s).
    pub config_sync: Duration,
}

impl Default for Params {
    fn default() -> Self {
        Params {
            local_ips: Vec::new(),
            setup_interface: true,
            interface: "nodelocaldns".into(),
            sync_interval: Duration::from_secs(60),
            metrics_listen: "0.0.0.0:9353".into(),
            prometheus_listen: ":9253".into(),
            setup_iptables: true,
            base_corefile: "/etc/coredns/Corefile.base".into(),
            corefile: "/etc/Corefile".into(),
            kubedns_cm: None,
            upstream_svc: "kube-dns".into(),
            health_port: 8080,
            skip_teardown: false,
            reload_with_signal: false,
            port: 53,
            pidfile: None,
            quiet: false,
            firewall: Firewall::Auto,
            config_sync: Duration::from_secs(10),
        }
    }
}

/// Whether the command line asks for the node-local role: it names `-localip`, which only
/// node-cache's command line has.
pub fn is_node_local(args: &[String]) -> bool {
    args.iter().skip(1).any(|a| {
        let name = a.trim_start_matches('-');
        a.starts_with('-') && (name == "localip" || name.starts_with("localip="))
    })
}

const BOOLS: &[&str] = &[
    "setupinterface",
    "setupiptables",
    "skipteardown",
    "reloadwithsignal",
    "quiet",
    "tls-enabled",
];
const VALUES: &[&str] = &[
    "localip",
    "interfacename",
    "syncinterval",
    "metrics-listen-address",
    "prometheus-listen-address",
    "basecorefile",
    "corefile",
    "conf",
    "kubednscm",
    "upstreamsvc",
    "health-port",
    "dns.port",
    "pidfile",
    "firewall",
    "configsyncinterval",
    "tls-cert-file",
    "tls-private-key-file",
    "tls-client-auth-type",
    "tls-client-ca-file",
    "tls-min-version",
    "log-format",
];

/// A duration as node-cache's flag takes it (`60s`, `1m`), or a bare number of seconds.
fn duration(flag: &str, v: &str) -> Result<Duration, String> {
    if let Ok(n) = v.parse::<u64>() {
        return Ok(Duration::from_secs(n));
    }
    crate::corefile::args::parse_duration(v)
        .filter(|d| !d.is_zero())
        .ok_or_else(|| {
            format!("invalid value {v:?} for flag -{flag}: expected a duration such as 60s")
        })
}

fn boolean(flag: &str, v: &str) -> Result<bool, String> {
    match v {
        "1" | "t" | "T" | "true" | "TRUE" | "True" => Ok(true),
        "0" | "f" | "F" | "false" | "FALSE" | "False" => Ok(false),
        _ => Err(format!(
            "invalid boolean value {v:?} for -{flag}: expected true or false"
        )),
    }
}

impl Params {
    /// Reads the command line (without the program name). Errors are written as Go's flag
    /// package and node-cache write them.
    pub fn parse(args: &[String]) -> Result<Params, String> {
        let mut p = Params::default();
        let mut local = None;
        let mut it = args.iter();
        while let Some(a) = it.next() {
            if a == "--" || !a.starts_with('-') {
                return Err(format!(
                    "unexpected argument {a:?}: node-cache takes flags only"
                ));
            }
            let body = a.trim_start_matches('-');
            let (name, inline) = match body.split_once('=') {
                Some((n, v)) => (n, Some(v.to_string())),
                None => (body, None),
            };
            let value = if BOOLS.contains(&name) {
                inline.unwrap_or_else(|| "true".into())
            } else if VALUES.contains(&name) {
                match inline {
                    Some(v) => v,
                    None => it
                        .next()
                        .cloned()
                        .ok_or_else(|| format!("flag needs an argument: -{name}"))?,
                }
            } else {
                return Err(format!("flag provided but not defined: -{name}"));
            };
            let v = value.as_str();
            match name {
                "localip" => local = Some(v.to_string()),
                "setupinterface" => p.setup_interface = boolean(name, v)?,
                "setupiptables" => p.setup_iptables = boolean(name, v)?,
                "skipteardown" => p.skip_teardown = boolean(name, v)?,
                "reloadwithsignal" => p.reload_with_signal = boolean(name, v)?,
                "quiet" => p.quiet = boolean(name, v)?,
                "tls-enabled" if boolean(name, v)? => {
                    return Err(
                        "-tls-enabled: the metrics listener over TLS is not supported; \
                         serve -metrics-listen-address on a node-local address instead"
                            .into(),
                    );
                }
                "interfacename" => p.interface = v.to_string(),
                "syncinterval" => p.sync_interval = duration(name, v)?,
                "configsyncinterval" => p.config_sync = duration(name, v)?,
                "metrics-listen-address" => p.metrics_listen = v.to_string(),
                "prometheus-listen-address" => p.prometheus_listen = v.to_string(),
                "basecorefile" => p.base_corefile = v.into(),
                "corefile" | "conf" => p.corefile = v.into(),
                "kubednscm" => p.kubedns_cm = (!v.is_empty()).then(|| v.into()),
                "upstreamsvc" => p.upstream_svc = v.to_string(),
                "health-port" => {
                    p.health_port = v
                        .parse()
                        .map_err(|_| format!("invalid healthcheck port specified - {v:?}"))?
                }
                "dns.port" => {
                    p.port = v
                        .parse()
                        .map_err(|_| format!("invalid port specified - {v:?}"))?
                }
                "pidfile" => p.pidfile = (!v.is_empty()).then(|| v.into()),
                "firewall" => {
                    p.firewall = match v {
                        "auto" => Firewall::Auto,
                        "nftables" | "nft" => Firewall::Nftables,
                        "iptables" => Firewall::Iptables,
                        _ => {
                            return Err(format!(
                                "invalid value {v:?} for flag -firewall: expected auto, nftables or iptables"
                            ));
                        }
                    }
                }
                // TLS for the metrics listener (off by default) and the log format: accepted.
                _ => {}
            }
        }
        let local = local.unwrap_or_default();
        for s in local.split(',') {
            let ip = s
                .trim()
                .parse::<IpAddr>()
                .map_err(|_| format!("invalid localip specified - {s:?}"))?;
            if !p.local_ips.contains(&ip) {
                p.local_ips.push(ip);
            }
        }
        Ok(p)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(s: &str) -> Vec<String> {
        s.split_whitespace().map(String::from).collect()
    }

    #[test]
    fn the_stock_daemonset_args_are_read_as_node_cache_reads_them() {
        let p = Params::parse(&args(
            "-localip 169.254.20.10,10.96.0.10,fd00::a -conf /etc/Corefile -upstreamsvc kube-dns-upstream -pidfile /tmp/node-cache.pid",
        ))
        .unwrap();
        assert_eq!(p.local_ips.len(), 3);
        assert!(p.local_ips[2].is_ipv6());
        assert_eq!(p.corefile, PathBuf::from("/etc/Corefile"));
        assert_eq!(p.upstream_svc, "kube-dns-upstream");
        assert_eq!(p.pidfile, Some(PathBuf::from("/tmp/node-cache.pid")));
        assert_eq!(p.base_corefile, PathBuf::from("/etc/coredns/Corefile.base"));
        assert!(p.setup_interface && p.setup_iptables && !p.skip_teardown);
        assert_eq!(p.sync_interval, Duration::from_secs(60));
    }

    #[test]
    fn go_flag_forms_and_errors() {
        let p = Params::parse(&args(
            "--localip=169.254.20.10 -setupiptables=false -skipteardown -syncinterval 5 -health-port=9090 -dns.port 5353",
        ))
        .unwrap();
        assert!(!p.setup_iptables && p.skip_teardown);
        assert_eq!(p.sync_interval, Duration::from_secs(5));
        assert_eq!((p.health_port, p.port), (9090, 5353));
        assert_eq!(
            Params::parse(&args("-localip 1.2.3")).unwrap_err(),
            "invalid localip specified - \"1.2.3\""
        );
        assert_eq!(
            Params::parse(&args("-localip 1.2.3.4 -nosuch")).unwrap_err(),
            "flag provided but not defined: -nosuch"
        );
        assert_eq!(
            Params::parse(&args("-localip")).unwrap_err(),
            "flag needs an argument: -localip"
        );
        assert!(
            Params::parse(&args("-localip 1.2.3.4 -firewall pf"))
                .unwrap_err()
                .contains("expected auto, nftables or iptables")
        );
        assert!(is_node_local(&args("node-cache -localip 1.2.3.4")));
        assert!(!is_node_local(&args("clusterdns -conf Corefile")));
    }
}
