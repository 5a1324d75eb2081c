use hickory_proto::op::ResponseCode;
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
            "/etc/coredns/Corefile:2:2: unknown directive 'bogus'; expected one of: any, autopath, bind, cache, errors, forward, health, hosts, k8s_external, kubernetes, loadbalance, log, loop, prometheus, ratelimit, ready, reload, rewrite, template",
        ),
        (
            ".:53 {\n etcd skydns.local\n}",
            "/etc/coredns/Corefile:2:2: etcd: this CoreDNS directive is not supported by clusterdns yet",
        ),
        (
            ".:53 {\n k8s_external example.org\n forward . 192.0.2.1\n}",
            "2:2: k8s_external: needs a kubernetes directive in the same server block, whose Services it answers for",
        ),
        (
            ".:53 {\n kubernetes {\n  objects x\n }\n k8s_external example.org {\n  ttl 3601\n }\n}",
            "6:7: k8s_external: ttl: '3601' is not a TTL: expected 0 to 3600",
        ),
        (
            ".:53 {\n kubernetes {\n  objects x\n }\n k8s_external example.org {\n  upstream\n }\n}",
            "6:3: k8s_external: unknown property 'upstream'; expected apex, ttl, headless or fallthrough",
        ),
        (
            ".:53 {\n kubernetes {\n  objects x\n }\n k8s_external example.org {\n  headless yes\n }\n}",
            "6:12: k8s_external: headless",
        ),
        (
            ".:53 {\n kubernetes {\n  objects x\n }\n k8s_external example.org {\n  apex a..b\n }\n}",
            "6:8: k8s_external: apex: 'a..b' is not a usable apex; expected one or more DNS labels",
        ),
        (
            ".:53 {\n autopath\n}",
            "2:2: autopath: expected @kubernetes or a resolv.conf file (e.g. 'autopath @kubernetes')",
        ),
        (
            ".:53 {\n autopath @etcd\n}",
            "2:11: autopath: '@etcd' cannot give search paths; only @kubernetes can",
        ),
        (
            ".:53 {\n bind eth0\n}",
            "2:7: bind: 'eth0' is not an IP address; interface names are not supported by clusterdns yet, list the interface's addresses",
        ),
        (
            ".:53 {\n bind 127.0.0.1 {\n  except 127.0.0.1\n }\n}",
            "2:2: bind: every address is excepted: nothing left to listen on",
        ),
        (
            ".:53 {\n bind 127.0.0.1 {\n  only 127.0.0.1\n }\n}",
            "3:3: bind: only: unknown property 'only'; expected except",
        ),
        (
            ".:53 {\n bind 127.0.0.1\n}\n.:53 {\n bind 127.0.0.1 127.0.0.2\n}",
            "4:1: zone '.' on port 53 at 127.0.0.1 is already served by the block at /etc/coredns/Corefile:1:1",
        ),
        (
            ".:53 {\n ratelimit\n}",
            "2:2: ratelimit: expected LIMIT, the queries per second one source address may ask",
        ),
        (
            ".:53 {\n ratelimit 0\n}",
            "2:12: ratelimit: '0' is not a number of queries above 0",
        ),
        (
            ".:53 {\n ratelimit 50 {\n  whitelist 10.0.0.0/8\n }\n}",
            "3:13: ratelimit: whitelist: '10.0.0.0/8' is not an IP address",
        ),
        (
            ".:53 {\n ratelimit 50 {\n  allow 10.0.0.1\n }\n}",
            "3:3: ratelimit: allow: unknown property 'allow'; expected whitelist",
        ),
        (
            ".:53 {\n rewrite\n}",
            "2:2: rewrite: expected a field: name, type or class",
        ),
        (
            ".:53 {\n rewrite name fuzzy a b\n}",
            "2:15: rewrite: name: unknown match type 'fuzzy'; expected exact, prefix, suffix, substring or regex",
        ),
        (
            ".:53 {\n rewrite name regex ^(a b {1}\n}",
            "2:21: rewrite: '^(a' is not a regular expression",
        ),
        (
            ".:53 {\n rewrite name regex ^a$ {1}.b\n}",
            "2:21: rewrite: '{1}.b' uses more groups than '^a$' has",
        ),
        (
            ".:53 {\n rewrite name regex ^(a)$ {1}.b answer auto\n}",
            "2:40: rewrite: answer auto: cannot revert a regex rewrite; use 'answer name FROM TO'",
        ),
        (
            ".:53 {\n rewrite name suffix .a .b answer maybe\n}",
            "2:35: rewrite: answer: expected 'auto', 'name FROM TO' or 'value FROM TO', found 'maybe'",
        ),
        (
            ".:53 {\n rewrite ttl example.com 60\n}",
            "2:10: rewrite: the 'ttl' field is not supported by clusterdns yet; supported: name, type, class",
        ),
        (
            ".:53 {\n rewrite type AAAA\n}",
            "2:10: rewrite: type: expected FROM and TO record types",
        ),
        (
            ".:53 {\n rewrite class IN XX\n}",
            "2:19: rewrite: class: unknown class 'XX'; expected IN, CH or HS",
        ),
        (
            ".:53 {\n template IN\n}",
            "2:2: template: expected a class and a type (e.g. 'template IN A' or 'template ANY AAAA')",
        ),
        (
            ".:53 {\n template IN AAAAA\n}",
            "2:14: template: unknown record type 'AAAAA'; expected e.g. A, AAAA or ANY",
        ),
        (
            ".:53 {\n template ANY ANY {\n  match ^(unclosed\n }\n}",
            "3:9: template: match: '^(unclosed' is not a regular expression",
        ),
        (
            ".:53 {\n template ANY ANY {\n  answer \"{{ .Meta \\\"x\\\" }} A 1.2.3.4\"\n }\n}",
            "3:10: template: answer: template action '{{ .Meta \"x\" }}' is not supported",
        ),
        (
            ".:53 {\n template ANY ANY {\n  rcode MAYBE\n }\n}",
            "3:9: template: rcode: unknown response code 'MAYBE'",
        ),
        (
            ".:53 {\n template ANY ANY {\n  ederror 15 \"blocked\"\n }\n}",
            "3:3: template: ederror: extended DNS errors are not supported by clusterdns; use rcode",
        ),
        (
            ".:53 {\n hosts {\n  fallthrough\n  10.0.0.1 late\n }\n}",
            "4:3: hosts: inline entries must come before fallthrough (at /etc/coredns/Corefile:3:3)",
        ),
        (
            ".:53 {\n hosts {\n  ttl 0\n }\n}",
            "3:7: hosts: ttl: bad TTL '0'; expected 1 to 65535",
        ),
        (
            ".:53 {\n hosts {\n  reload often\n }\n}",
            "3:10: hosts: reload: 'often' is not a duration",
        ),
        (
            ".:53 {\n hosts {\n  10.0.0.1\n }\n}",
            "3:3: hosts: 10.0.0.1: expected at least one name after the address",
        ),
        (
            ".:53 {\n hosts {\n  no_reverse please\n }\n}",
            "3:14: hosts: no_reverse: unexpected argument 'please'",
        ),
        (
            ".:53 {\n hosts {\n  nameserver 10.0.0.1\n }\n}",
            "3:3: hosts: unknown property 'nameserver'; expected an inline 'IP NAME…' line, ttl, reload, no_reverse or fallthrough",
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

fn plugin<T>(text: &str, pick: impl Fn(&PluginConfig) -> Option<T>) -> T {
    let cfg = load_text(text).unwrap_or_else(|e| panic!("{text}\n{e}"));
    cfg.servers[0]
        .plugins
        .iter()
        .find_map(pick)
        .unwrap_or_else(|| panic!("not found in {text}"))
}

fn forward(text: &str) -> forward::ForwardConfig {
    plugin(text, |p| match p {
        PluginConfig::Forward(f) => Some((**f).clone()),
        _ => None,
    })
}

fn cache(text: &str) -> cache::CacheConfig {
    plugin(text, |p| match p {
        PluginConfig::Cache(c) => Some((**c).clone()),
        _ => None,
    })
}

#[test]
fn forward_upstreams_and_properties() {
    use forward::{Policy, Transport};
    let f =
        forward(".:53 {\n forward . 1.1.1.1 8.8.8.8:5353 [::1]:53 dns://9.9.9.9 tls://1.0.0.1\n}");
    assert_eq!(f.from, Name::root());
    let to: Vec<(String, Transport)> =
        f.to.iter()
            .map(|t| (t.addr.to_string(), t.transport))
            .collect();
    assert_eq!(
        to,
        [
            ("1.1.1.1:53".to_string(), Transport::Dns),
            ("8.8.8.8:5353".to_string(), Transport::Dns),
            ("[::1]:53".to_string(), Transport::Dns),
            ("9.9.9.9:53".to_string(), Transport::Dns),
            ("1.0.0.1:853".to_string(), Transport::Tls),
        ]
    );
    assert_eq!(f.policy, Policy::Random);
    assert_eq!(f.max_fails, 2);
    assert_eq!(f.expire, Duration::from_secs(10));
    assert_eq!(f.health_check.interval, Duration::from_millis(500));

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
    assert_eq!(f.tls, Some(forward::TlsFiles::default()));
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
    let cfg = load(&corefile, &LoadOptions::default()).unwrap();
    let PluginConfig::Forward(f) = &cfg.servers[0].plugins[0] else {
        panic!("{cfg:?}")
    };
    let to: Vec<String> = f.to.iter().map(|t| t.addr.to_string()).collect();
    assert_eq!(to, ["10.0.0.10:53", "[fe80::1]:53", "10.0.0.11:53"]);
    // Several forwards in one block keep their Corefile order.
    let cfg = load_text(".:53 {\n forward . 1.2.3.4 {\n  next NXDOMAIN\n }\n forward . 5.6.7.8\n}")
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
fn cache_defaults_and_properties() {
    let c = cache(".:53 {\n cache\n}");
    assert_eq!(zones(&c.zones), ["."]);
    assert_eq!(
        (c.success.capacity, c.success.max_ttl, c.success.min_ttl),
        (9984, 3600, 5)
    );
    assert_eq!(
        (c.denial.capacity, c.denial.max_ttl, c.denial.min_ttl),
        (9984, 1800, 5)
    );
    assert_eq!(c.servfail, Duration::from_secs(5));
    assert!(c.prefetch.is_none() && c.serve_stale.is_none() && !c.keepttl);

    // kubeadm's
    let c = cache(
        ".:53 {\n cache 30 {\n  disable success cluster.local\n  disable denial cluster.local\n }\n}",
    );
    assert_eq!((c.success.max_ttl, c.denial.max_ttl), (30, 30));
    assert_eq!(zones(&c.success.disabled), ["cluster.local."]);
    assert_eq!(zones(&c.denial.disabled), ["cluster.local."]);

    // NodeLocal DNSCache's, and the rest.
    let c = cache(
        ".:53 {\n cache 300 example.org {\n  success 9984 30\n  denial 9984 5 1\n  prefetch 10 1m 20%\n  serve_stale 2h verify\n  servfail 0\n  keepttl\n }\n}",
    );
    assert_eq!(zones(&c.zones), ["example.org."]);
    assert_eq!(
        (c.success.capacity, c.success.max_ttl, c.success.min_ttl),
        (9984, 30, 5)
    );
    assert_eq!((c.denial.max_ttl, c.denial.min_ttl), (5, 1));
    assert_eq!(
        c.prefetch,
        Some(cache::Prefetch {
            amount: 10,
            duration: Duration::from_secs(60),
            percentage: 20
        })
    );
    assert_eq!(
        c.serve_stale,
        Some(cache::ServeStale {
            duration: Duration::from_secs(7200),
            mode: cache::StaleMode::Verify
        })
    );
    assert_eq!(c.servfail, Duration::ZERO);
    assert!(c.keepttl);
}

#[test]
fn forward_cache_and_loop_errors_name_the_position() {
    let table: &[(&str, &str)] = &[
        (
            ".:53 {\n forward\n}",
            "2:2: forward: expected FROM and at least one upstream",
        ),
        (
            ".:53 {\n forward .\n}",
            "2:10: forward: expected at least one upstream after FROM",
        ),
        (
            ".:53 {\n forward . dns.google\n}",
            "2:12: forward: upstream 'dns.google' is not an IP[:PORT], tls://IP[:PORT], or a readable resolv.conf file",
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
            ".:53 {\n forward . https://9.9.9.9\n}",
            "2:12: forward: upstream 'https://9.9.9.9': https:// is not supported by clusterdns",
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
        (
            ".:53 {\n cache 0\n}",
            "2:8: cache: '0' is not a TTL in seconds above 0",
        ),
        (
            ".:53 {\n cache {\n  success lots\n }\n}",
            "3:11: cache: success: 'lots' is not a capacity above 0",
        ),
        (
            ".:53 {\n cache {\n  prefetch 2 1m 5%\n }\n}",
            "3:17: cache: prefetch: '5%' is not a percentage from 10% to 90%",
        ),
        (
            ".:53 {\n cache {\n  prefetch 2 1m 20\n }\n}",
            "3:17: cache: prefetch: '20' needs a percent sign",
        ),
        (
            ".:53 {\n cache {\n  serve_stale 1h later\n }\n}",
            "3:18: cache: serve_stale: unknown refresh mode 'later'; expected immediate or verify",
        ),
        (
            ".:53 {\n cache {\n  servfail 10m\n }\n}",
            "3:12: cache: servfail: may not be more than 5m",
        ),
        (
            ".:53 {\n cache {\n  disable everything\n }\n}",
            "3:11: cache: disable: unknown kind 'everything'; expected success or denial",
        ),
        (
            ".:53 {\n cache {\n  bogus\n }\n}",
            "3:3: cache: unknown property 'bogus'; expected one of: success, denial",
        ),
        (
            ".:53 {\n cache\n cache\n}",
            "3:2: cache: only one 'cache' directive is allowed per server block",
        ),
        (
            ".:53 {\n loop now\n}",
            "2:7: loop: unexpected argument 'now'; this takes none",
        ),
    ];
    for (text, want) in table {
        let err = load_text(text).expect_err(text).to_string();
        assert!(err.contains(want), "{text}\n got: {err}\nwant: {want}");
    }
}

#[test]
fn hosts_properties() {
    let cfg = load_text(
        "cluster.local:53 {\n hosts\n}\n.:53 {\n hosts NodeHosts example.org 10.0.0.0/24 {\n  ttl 60\n  reload 0\n  10.0.0.1 a.example.org B\n  fe80::1%eth0 c\n  no_reverse\n  fallthrough example.org\n }\n}",
    )
    .unwrap();
    let hosts = |i: usize| match &cfg.servers[i].plugins[..] {
        [PluginConfig::Hosts(h)] => (**h).clone(),
        other => panic!("{other:?}"),
    };
    let h = hosts(0);
    assert_eq!(h.path, std::path::PathBuf::from("/etc/hosts"));
    assert_eq!(zones(&h.zones), ["cluster.local."]);
    assert_eq!(
        (h.ttl, h.reload, h.reverse),
        (3600, Duration::from_secs(5), true)
    );
    assert_eq!(h.fallthrough, Fallthrough::Never);
    let h = hosts(1);
    assert_eq!(h.path, std::path::PathBuf::from("/etc/coredns/NodeHosts"));
    assert_eq!(zones(&h.zones), ["example.org.", "0.0.10.in-addr.arpa."]);
    assert_eq!((h.ttl, h.reload, h.reverse), (60, Duration::ZERO, false));
    let inline: Vec<(String, Vec<String>)> = h
        .inline
        .iter()
        .map(|(ip, n)| (ip.to_string(), zones(n)))
        .collect();
    assert_eq!(
        inline,
        [
            (
                "10.0.0.1".to_string(),
                vec!["a.example.org.".to_string(), "b.".to_string()]
            ),
            ("fe80::1".to_string(), vec!["c.".to_string()]),
        ]
    );
    assert_eq!(
        h.fallthrough,
        Fallthrough::Zones(vec![Name::from_ascii("example.org.").unwrap()])
    );
}

#[test]
fn templates_keep_corefile_order_and_defaults() {
    let cfg = load_text(
        "example.org:53 {\n template ANY ANY a.example.org {\n  rcode NXDOMAIN\n }\n errors\n template IN AAAA {\n  match ^x ^y\n  answer \"{{ .Name }} 60 IN AAAA ::1\" \"{{ .Name }} 60 IN AAAA ::2\"\n  fallthrough\n  upstream\n }\n}",
    )
    .unwrap();
    let templates: Vec<&template::TemplateConfig> = cfg.servers[0]
        .plugins
        .iter()
        .filter_map(|p| match p {
            PluginConfig::Template(t) => Some(&**t),
            _ => None,
        })
        .collect();
    assert_eq!(templates.len(), 2);
    let (a, b) = (templates[0], templates[1]);
    assert_eq!((a.class, a.qtype), (None, None));
    assert_eq!(zones(&a.zones), ["a.example.org."]);
    assert_eq!(a.rcode, ResponseCode::NXDomain);
    assert_eq!(
        a.regex.iter().map(|r| r.as_str()).collect::<Vec<_>>(),
        [".*"]
    );
    assert_eq!(a.fallthrough, Fallthrough::Never);
    assert_eq!(
        (b.class, b.qtype),
        (
            Some(hickory_proto::rr::DNSClass::IN),
            Some(hickory_proto::rr::RecordType::AAAA)
        )
    );
    assert_eq!(zones(&b.zones), ["example.org."]);
    assert_eq!(
        b.regex.iter().map(|r| r.as_str()).collect::<Vec<_>>(),
        ["^x", "^y"]
    );
    assert_eq!(b.answer.len(), 2);
    assert!(b.upstream);
    assert_eq!(b.fallthrough, Fallthrough::All);
}

#[test]
fn k8s_external_takes_coredns_defaults_and_options() {
    let cfg = load_text(
        "example.org:53 {\n kubernetes cluster.local {\n  objects x\n }\n k8s_external\n}\n\
         .:54 {\n kubernetes cluster.local {\n  objects x\n }\n k8s_external a.test b.test {\n  apex NS.Servers\n  ttl 0\n  headless\n  fallthrough b.test\n }\n}",
    )
    .unwrap();
    let ext = |i: usize| -> crate::config::k8s_external::K8sExternalConfig {
        cfg.servers[i]
            .plugins
            .iter()
            .find_map(|p| match p {
                PluginConfig::K8sExternal(k) => Some((**k).clone()),
                _ => None,
            })
            .unwrap()
    };
    let first = ext(0);
    assert_eq!(first.zones, [crate::names::fqdn("example.org").unwrap()]);
    assert_eq!(
        (first.apex.as_str(), first.ttl, first.headless),
        ("dns", 5, false)
    );
    assert!(
        !first
            .fallthrough
            .covers(&crate::names::fqdn("x.example.org").unwrap())
    );
    let second = ext(1);
    assert_eq!(second.zones.len(), 2);
    assert_eq!(
        (second.apex.as_str(), second.ttl, second.headless),
        ("ns.servers", 0, true)
    );
    assert!(
        second
            .fallthrough
            .covers(&crate::names::fqdn("x.b.test").unwrap())
    );
    assert!(
        !second
            .fallthrough
            .covers(&crate::names::fqdn("x.a.test").unwrap())
    );
    // The root zone's apex is `dns.`, not the root itself.
    let root = crate::names::fqdn(".").unwrap();
    assert_eq!(
        crate::config::k8s_external::apex_name("dns", &root),
        crate::names::fqdn("dns")
    );
    assert_eq!(
        crate::config::k8s_external::apex_name("ns.servers", &second.zones[0]),
        crate::names::fqdn("ns.servers.a.test")
    );
    // It runs before kubernetes, as in CoreDNS's plugin.cfg.
    let names: Vec<&str> = cfg.servers[1].plugins.iter().map(|p| p.name()).collect();
    assert_eq!(names, ["k8s_external", "kubernetes"]);
}

#[test]
fn ratelimit_reads_a_limit_and_exempt_addresses() {
    let cfg = load_text(
        ".:53 {\n ratelimit 50 {\n  whitelist 127.0.0.1 ::1\n  whitelist 127.0.0.1\n }\n}",
    )
    .unwrap();
    let [PluginConfig::Ratelimit(r)] = &cfg.servers[0].plugins[..] else {
        panic!("{:?}", cfg.servers[0].plugins);
    };
    assert_eq!(r.limit, 50);
    assert_eq!(
        r.exempt,
        [
            "127.0.0.1".parse::<std::net::IpAddr>().unwrap(),
            "::1".parse().unwrap()
        ]
    );
}
