use std::time::Duration;

use super::*;
use crate::config::testing::{assert_errors, load_text};
use crate::plugin::registry::PluginConfig;
use crate::plugin::{errors, log};

#[test]
fn server_keys() {
    let table: &[(&str, &[(&str, u16)])] = &[
        (".:53", &[(".", 53)]),
        (".", &[(".", 53)]),
        ("dns://.:1053", &[(".", 1053)]),
        ("Cluster.Local:53", &[("cluster.local.", 53)]),
        ("cluster.local", &[("cluster.local.", 53)]),
        ("10.0.0.0/24", &[("0.0.10.in-addr.arpa.", 53)]),
        ("10.0.0.0/24:1053", &[("0.0.10.in-addr.arpa.", 1053)]),
        ("fd00::/8", &[("d.f.ip6.arpa.", 53)]),
        (
            "10.0.0.0/23",
            &[("0.0.10.in-addr.arpa.", 53), ("1.0.10.in-addr.arpa.", 53)],
        ),
    ];
    for (key, want) in table {
        let cfg = load_text(&format!("{key} {{\n}}")).unwrap_or_else(|e| panic!("{key}: {e}"));
        let got: Vec<(String, u16)> = cfg.servers[0]
            .keys
            .iter()
            .map(|k| (k.zone.to_ascii(), k.port))
            .collect();
        let want: Vec<(String, u16)> = want.iter().map(|(z, p)| (z.to_string(), *p)).collect();
        assert_eq!(got, want, "{key}");
    }
    // -dns.port changes the default.
    let cfg = from_str(
        "Corefile",
        "cluster.local {\n}",
        &LoadOptions { default_port: 1053 },
    )
    .unwrap();
    assert_eq!(cfg.servers[0].keys[0].port, 1053);
}

#[test]
fn operability_directives() {
    use crate::vocab::ListenAddr;
    let cfg = load_text(
        ".:53 {\n reload 10s 2s\n prometheus 0.0.0.0:9153\n log example.org. {combined} {\n  class denial error\n }\n log\n ready\n health [::1]:8080 {\n  lameduck 5s\n }\n errors {\n  consolidate 5m \"^read udp\" warning\n }\n}",
    )
    .unwrap();
    let names: Vec<&str> = cfg.servers[0].plugins.iter().map(|p| p.name()).collect();
    assert_eq!(
        names,
        [
            "reload",
            "ready",
            "health",
            "prometheus",
            "errors",
            "log",
            "log"
        ]
    );
    for p in &cfg.servers[0].plugins {
        match p {
            PluginConfig::Reload(r) => {
                assert_eq!(
                    (r.interval, r.jitter),
                    (Duration::from_secs(10), Duration::from_secs(2))
                )
            }
            PluginConfig::Ready(r) => assert_eq!(
                r.addr,
                ListenAddr {
                    ip: None,
                    port: 8181
                }
            ),
            PluginConfig::Health(h) => {
                assert_eq!(h.addr.to_string(), "[::1]:8080");
                assert_eq!(h.lameduck, Some(Duration::from_secs(5)));
            }
            PluginConfig::Prometheus(m) => assert_eq!(m.addr.to_string(), "0.0.0.0:9153"),
            PluginConfig::Errors(e) => {
                assert_eq!(e.consolidate.len(), 1);
                assert_eq!(e.consolidate[0].every, Duration::from_secs(300));
                assert_eq!(e.consolidate[0].level, errors::config::Level::Warning);
            }
            PluginConfig::Log(l) => {
                if l.names[0].is_root() {
                    assert_eq!(l.classes, log::config::Classes::ALL);
                } else {
                    assert_eq!(l.names[0].to_ascii(), "example.org.");
                    assert!(!l.classes.success && l.classes.denial && l.classes.error);
                    assert!(
                        l.format
                            .contains(&log::config::Piece::Field(">opcode".into()))
                    );
                }
            }
            _ => {}
        }
    }
    // A jitter over half the interval is cut to half, as CoreDNS does.
    let cfg = load_text(".:53 {\n reload 10s 6s\n}").unwrap();
    assert!(
        matches!(&cfg.servers[0].plugins[0], PluginConfig::Reload(r) if r.jitter == Duration::from_secs(5))
    );
    // Defaults.
    let cfg = load_text(".:53 {\n prometheus\n health\n reload\n}").unwrap();
    for p in &cfg.servers[0].plugins {
        match p {
            PluginConfig::Prometheus(m) => assert_eq!(m.addr.to_string(), "127.0.0.1:9153"),
            PluginConfig::Health(h) => {
                assert_eq!((h.addr.to_string().as_str(), h.lameduck), (":8080", None))
            }
            PluginConfig::Reload(r) => assert_eq!(
                (r.interval, r.jitter),
                (Duration::from_secs(30), Duration::from_secs(15))
            ),
            _ => {}
        }
    }
}

#[test]
fn handlers_run_in_plugin_cfg_order_not_corefile_order() {
    let cfg = load_text(".:53 {\n kubernetes {\n  objects x\n }\n errors\n}").unwrap();
    let names: Vec<&str> = cfg.servers[0].plugins.iter().map(|p| p.name()).collect();
    assert_eq!(names, ["errors", "kubernetes"]);
}

#[test]
fn every_error_is_reported_not_just_the_first() {
    let err = load_text(".:53 {\n bogus\n kubernetes {\n  podz\n  objects x\n }\n}\nx..y {\n}")
        .unwrap_err();
    let lines: Vec<String> = err.to_string().lines().map(String::from).collect();
    assert_eq!(lines.len(), 3, "{err}");
    assert!(lines[0].contains(":2:2:"));
    assert!(lines[1].contains(":4:3:"));
    assert!(lines[2].contains(":8:1:"));
}

#[test]
fn errors_name_the_position_and_what_is_accepted() {
    assert_errors(&[
        (
            ".:53 {\n bogus\n}",
            "/etc/coredns/Corefile:2:2: unknown directive 'bogus'; expected one of: acl, any, autopath, bind, bufsize, cache, cancel, chaos, debug, dns64, dnstap, erratic, errors, file, forward, header, health, hosts, k8s_external, kubernetes, loadbalance, local, log, loop, metadata, minimal, nsid, prometheus, ratelimit, ready, reload, rewrite, shed, template, timeouts, tls, transfer, view, whoami",
        ),
        (
            ".:53 {\n etcd skydns.local\n}",
            "/etc/coredns/Corefile:2:2: etcd: this CoreDNS directive is not supported by clusterdns yet",
        ),
        (
            ".:53 {\n bind 127.0.0.1\n}\n.:53 {\n bind 127.0.0.1 127.0.0.2\n}",
            "4:1: zone '.' on port 53 at 127.0.0.1 is already served by the block at /etc/coredns/Corefile:1:1",
        ),
        (
            ".:53 {\n proxy . /etc/resolv.conf\n}",
            "2:2: proxy: this directive was removed from CoreDNS in 1.7; use 'forward' instead",
        ),
        (
            "tls://.:853 {\n}",
            "1:1: server block key 'tls://.:853': a tls:// block needs 'tls CERT KEY' for its certificate",
        ),
        (
            "https://.:443 {\n}",
            "1:1: server block key 'https://.:443': the https:// transport is not supported; use dns:// or tls://",
        ),
        (
            ".:853 {\n}\ntls://example.org {\n tls /c.pem /k.pem\n}",
            "3:1: port 853 is served over dns:// by the block at /etc/coredns/Corefile:1:1; a port serves one transport",
        ),
        (
            ".:99999 {\n}",
            "1:1: server block key '.:99999': bad port '99999'",
        ),
        (
            "bad..name {\n}",
            "1:1: server block key 'bad..name': 'bad..name' is not a valid domain name",
        ),
        (
            ".:53 {\n}\n.:53 {\n}",
            "3:1: zone '.' on port 53 is already served by the block at /etc/coredns/Corefile:1:1, which has no view to share it with",
        ),
        (
            // Split DNS: after a block with a view, another may serve the zone; not after one
            // without.
            ".:53 {\n view a {\n  expr true\n }\n}\n.:53 {\n}\n.:53 {\n}",
            "8:1: zone '.' on port 53 is already served by the block at /etc/coredns/Corefile:6:1",
        ),
    ]);
}
