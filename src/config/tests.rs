use std::time::Duration;

use super::kubernetes::{Fallthrough, PodMode, Source};
use super::*;

fn load_text(text: &str) -> Result<Config, ConfigErrors> {
    from_str("/etc/coredns/Corefile", text, &LoadOptions::default())
}

fn kube(text: &str) -> kubernetes::KubernetesConfig {
    let cfg = load_text(text).unwrap_or_else(|e| panic!("{text}\n{e}"));
    match &cfg.servers[0].plugins[..] {
        [.., PluginConfig::Kubernetes(k)] => (**k).clone(),
        other => panic!("no kubernetes plugin: {other:?}"),
    }
}

fn zones(names: &[Name]) -> Vec<String> {
    names.iter().map(|n| n.to_ascii()).collect()
}

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
fn kubernetes_properties() {
    let k = kube(".:53 {\n kubernetes {\n  objects c.yaml\n }\n}");
    assert_eq!(zones(&k.zones), ["."]);
    assert_eq!(k.source, Source::Objects("/etc/coredns/c.yaml".into()));
    assert_eq!(k.pods, PodMode::Disabled);
    assert_eq!(k.ttl, 5);
    assert_eq!(k.fallthrough, Fallthrough::Never);
    assert_eq!(k.startup_timeout, Duration::from_secs(5));

    let k = kube(
        ".:53 {\n kubernetes cluster.local in-addr.arpa ip6.arpa 10.96.0.0/16 {\n  objects /data/objs\n  pods verified\n  fallthrough in-addr.arpa ip6.arpa\n  ttl 30\n  endpoint_pod_names\n  namespaces a b\n  labels app in (web, api), tier!=db\n  namespace_labels team=x\n  noendpoints\n  ignore empty_service\n  startup_timeout 1m\n  upstream\n }\n}",
    );
    assert_eq!(
        zones(&k.zones),
        [
            "cluster.local.",
            "in-addr.arpa.",
            "ip6.arpa.",
            "96.10.in-addr.arpa."
        ]
    );
    assert_eq!(k.source, Source::Objects("/data/objs".into()));
    assert_eq!(k.pods, PodMode::Verified);
    assert_eq!(k.ttl, 30);
    assert!(
        matches!(&k.fallthrough, Fallthrough::Zones(z) if zones(z) == ["in-addr.arpa.", "ip6.arpa."])
    );
    assert!(k.endpoint_pod_names && k.noendpoints && k.ignore_empty_service);
    assert_eq!(k.namespaces, ["a", "b"]);
    assert_eq!(
        k.labels.as_ref().map(|l| l.to_string()).as_deref(),
        Some("app in (web, api), tier!=db")
    );
    assert!(k.namespace_labels.is_some());
    assert_eq!(k.startup_timeout, Duration::from_secs(60));

    let k = kube(".:53 {\n kubernetes {\n  objects c.yaml\n  fallthrough\n  pods insecure\n }\n}");
    assert_eq!(k.fallthrough, Fallthrough::All);
    assert_eq!(k.pods, PodMode::Insecure);
}

#[test]
fn kubernetes_api_sources() {
    use super::kubernetes::{ApiConfig, TlsFiles};
    // Neither objects nor an API property: in-cluster, as CoreDNS.
    let k = kube(".:53 {\n kubernetes cluster.local\n}");
    assert_eq!(k.source, Source::Api(ApiConfig::default()));
    let k = kube(".:53 {\n kubernetes {\n  kubeconfig kc.yaml prod\n }\n}");
    assert_eq!(
        k.source,
        Source::Api(ApiConfig {
            kubeconfig: Some("/etc/coredns/kc.yaml".into()),
            context: Some("prod".into()),
            ..ApiConfig::default()
        })
    );
    let k = kube(
        ".:53 {\n kubernetes {\n  endpoint https://10.0.0.1:6443\n  tls /c.pem /k.pem /ca.pem\n }\n}",
    );
    assert_eq!(
        k.source,
        Source::Api(ApiConfig {
            endpoint: Some("https://10.0.0.1:6443".into()),
            tls: Some(TlsFiles {
                cert: "/c.pem".into(),
                key: "/k.pem".into(),
                ca: "/ca.pem".into(),
            }),
            ..ApiConfig::default()
        })
    );
}

#[test]
fn operability_directives() {
    use super::args::ListenAddr;
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
                assert_eq!(e.consolidate[0].level, errors::Level::Warning);
            }
            PluginConfig::Log(l) => {
                if l.names[0].is_root() {
                    assert_eq!(l.classes, log::Classes::ALL);
                } else {
                    assert_eq!(l.names[0].to_ascii(), "example.org.");
                    assert!(!l.classes.success && l.classes.denial && l.classes.error);
                    assert!(l.format.contains(&log::Piece::Field(">opcode".into())));
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
fn errors_name_the_position_and_what_is_accepted() {
    let table: &[(&str, &str)] = &[
        (
            ".:53 {\n bogus\n}",
            "/etc/coredns/Corefile:2:2: unknown directive 'bogus'; expected one of: errors, health, kubernetes, log, prometheus, ready, reload",
        ),
        (
            ".:53 {\n forward . 1.1.1.1\n}",
            "/etc/coredns/Corefile:2:2: forward: this CoreDNS directive is not supported by clusterdns yet",
        ),
        (
            ".:53 {\n proxy . /etc/resolv.conf\n}",
            "2:2: proxy: this directive was removed from CoreDNS in 1.7; use 'forward' instead",
        ),
        (
            ".:53 {\n kubernetes {\n  podz insecure\n  objects x\n }\n}",
            "3:3: kubernetes: unknown property 'podz'; expected one of: kubeconfig, endpoint, tls, objects, pods",
        ),
        (
            ".:53 {\n kubernetes {\n  pods maybe\n  objects x\n }\n}",
            "3:8: kubernetes: pods: unknown mode 'maybe'; expected insecure, verified or disabled",
        ),
        (
            ".:53 {\n kubernetes {\n  ttl 3601\n  objects x\n }\n}",
            "3:7: kubernetes: ttl: '3601' is not a TTL: expected 0 to 3600",
        ),
        (
            ".:53 {\n kubernetes {\n  ttl\n  objects x\n }\n}",
            "3:3: kubernetes: ttl: expected a TTL in seconds",
        ),
        (
            ".:53 {\n kubernetes {\n  objects a b\n }\n}",
            "3:13: kubernetes: objects: unexpected argument 'b'",
        ),
        (
            ".:53 {\n kubernetes {\n  objects x\n  endpoint_pod_names yes\n }\n}",
            "4:22: kubernetes: endpoint_pod_names: unexpected argument 'yes'; this takes none",
        ),
        (
            ".:53 {\n kubernetes {\n  objects x\n  ignore everything\n }\n}",
            "4:10: kubernetes: ignore: unknown value 'everything'; expected empty_service",
        ),
        (
            ".:53 {\n kubernetes {\n  objects x\n  labels app in web\n }\n}",
            "4:10: kubernetes: labels: expected a parenthesised list",
        ),
        (
            ".:53 {\n kubernetes {\n  objects x\n  startup_timeout soon\n }\n}",
            "4:19: kubernetes: startup_timeout: 'soon' is not a duration",
        ),
        (
            ".:53 {\n kubernetes {\n  objects x\n  kubeconfig /k\n }\n}",
            "3:3: kubernetes: objects: cannot be used with 'kubeconfig'",
        ),
        (
            ".:53 {\n kubernetes {\n  tls a b c\n }\n}",
            "3:3: kubernetes: tls: needs 'endpoint URL'",
        ),
        (
            ".:53 {\n kubernetes {\n  tls a b\n  endpoint https://k:6443\n }\n}",
            "3:7: kubernetes: tls: expected 3 files (CERT KEY CACERT), got 2",
        ),
        (
            ".:53 {\n kubernetes {\n  endpoint 10.0.0.1:6443\n }\n}",
            "3:12: kubernetes: endpoint: '10.0.0.1:6443' is not an http:// or https:// URL",
        ),
        (
            ".:53 {\n kubernetes {\n  endpoint https://k\n  kubeconfig /k\n }\n}",
            "3:3: kubernetes: use either 'kubeconfig' or 'endpoint', not both",
        ),
        (
            ".:53 {\n kubernetes {\n  kubeconfig /k ctx extra\n }\n}",
            "3:21: kubernetes: kubeconfig: expected a kubeconfig file and at most a context",
        ),
        (
            ".:53 {\n kubernetes {\n  objects x\n  fallthrough 10.0.0.0/99\n }\n}",
            "4:15: kubernetes: fallthrough: bad prefix length '/99'",
        ),
        (
            ".:53 {\n kubernetes {\n objects x\n }\n kubernetes {\n objects y\n }\n}",
            "5:2: kubernetes: only one 'kubernetes' directive is allowed per server block",
        ),
        (
            ".:53 {\n errors now\n}",
            "2:9: errors: unexpected argument 'now'; this takes none",
        ),
        (
            ".:53 {\n errors {\n  consolidate 5m \"(\"\n }\n}",
            "3:18: errors: consolidate: '(' is not a regular expression: unclosed group",
        ),
        (
            ".:53 {\n errors {\n  consolidate 5m x loud\n }\n}",
            "3:20: errors: consolidate: unknown level 'loud'",
        ),
        (
            ".:53 {\n errors {\n  stacktrace\n }\n}",
            "3:3: errors: stacktrace: not supported",
        ),
        (
            ".:53 {\n health :8080 :8081\n}",
            "2:15: health: unexpected argument ':8081'",
        ),
        (
            ".:53 {\n health localhost\n}",
            "2:9: health: 'localhost' is not an address",
        ),
        (
            ".:53 {\n health :http\n}",
            "2:9: health: 'http' in ':http' is not a port number",
        ),
        (
            ".:53 {\n health {\n  lameduck forever\n }\n}",
            "3:12: health: lameduck: 'forever' is not a duration",
        ),
        (
            ".:53 {\n health {\n  lame 5s\n }\n}",
            "3:3: health: unknown property 'lame'; expected lameduck",
        ),
        (
            ".:53 {\n ready example.com:8181\n}",
            "2:8: ready: 'example.com' in 'example.com:8181' is not an IP address",
        ),
        (
            ".:53 {\n prometheus :9153 {\n  x\n }\n}",
            "3:3: prometheus: unexpected property 'x'; this takes no block",
        ),
        (
            ".:53 {\n reload 1s\n}",
            "2:9: reload: the interval must be at least 2s",
        ),
        (
            ".:53 {\n reload 10s 500ms\n}",
            "2:13: reload: the jitter must be at least 1s",
        ),
        (
            ".:53 {\n reload soon\n}",
            "2:9: reload: 'soon' is not a duration",
        ),
        (
            ".:53 {\n log {\n  class loud\n }\n}",
            "3:9: log: class: unknown class 'loud'",
        ),
        (
            ".:53 {\n log {\n  format x\n }\n}",
            "3:3: log: unknown property 'format'; expected class",
        ),
        (
            ".:53 {\n health\n health\n}",
            "3:2: health: only one 'health' directive is allowed per server block",
        ),
        (
            "tls://.:853 {\n}",
            "1:1: server block key 'tls://.:853': the tls:// transport is not supported",
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
            "3:1: zone '.' on port 53 is already served by the block at /etc/coredns/Corefile:1:1",
        ),
    ];
    for (text, want) in table {
        match load_text(text) {
            Ok(_) => panic!("{text}: loaded"),
            Err(e) => assert!(
                e.to_string().contains(want),
                "{text}\n got: {e}\nwant: {want}"
            ),
        }
    }
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
