//! Health, readiness, metrics and reload, in-process.

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use hickory_proto::op::{Edns, Message};
use hickory_proto::rr::RecordType;

use clusterdns::app::{App, StartOptions};
use clusterdns::config::LoadOptions;
use clusterdns::plugin::Transport;

use crate::support::{self, LOCALHOST};

/// `GET path` over a fresh connection: (status, body).
pub async fn http_get(addr: SocketAddr, path: &str) -> Option<(u16, String)> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut s = tokio::net::TcpStream::connect(addr).await.ok()?;
    let req = format!("GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
    s.write_all(req.as_bytes()).await.ok()?;
    let mut buf = Vec::new();
    tokio::time::timeout(Duration::from_secs(5), s.read_to_end(&mut buf))
        .await
        .ok()?
        .ok()?;
    let text = String::from_utf8_lossy(&buf).into_owned();
    let status = text.get(9..12)?.parse().ok()?;
    let body = text
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_string())
        .unwrap_or_default();
    Some((status, body))
}

fn demo_corefile(extra: &str) -> String {
    let objects = support::root().join("deploy/local/cluster.yaml");
    format!(
        ".:0 {{\n{extra}\n    errors\n    kubernetes cluster.local in-addr.arpa ip6.arpa {{\n        objects {}\n        pods insecure\n        fallthrough in-addr.arpa ip6.arpa\n    }}\n}}\n",
        objects.display()
    )
}

/// Every metric and label the kube-prometheus-stack CoreDNS dashboard and the coredns-mixin
/// alerts query (shared/research/coredns-ecosystem.md §3.2), beside the scrape's own labels.
const QUERIED: &[(&str, &[&str])] = &[
    (
        "coredns_dns_requests_total",
        &["server", "zone", "view", "proto", "family", "type"],
    ),
    ("coredns_dns_do_requests_total", &["server", "zone", "view"]),
    (
        "coredns_dns_responses_total",
        &["server", "zone", "view", "rcode", "plugin"],
    ),
    (
        "coredns_dns_request_duration_seconds_bucket",
        &["server", "zone", "view", "le"],
    ),
    (
        "coredns_dns_request_size_bytes_bucket",
        &["server", "zone", "view", "proto", "le"],
    ),
    (
        "coredns_dns_response_size_bytes_bucket",
        &["server", "zone", "view", "proto", "le"],
    ),
    (
        "coredns_plugin_enabled",
        &["server", "zone", "view", "name"],
    ),
    ("coredns_build_info", &["version", "revision", "goversion"]),
    ("coredns_panics_total", &[]),
    ("coredns_reload_failed_total", &[]),
    ("coredns_health_request_duration_seconds_bucket", &["le"]),
    ("coredns_health_request_failures_total", &[]),
    ("process_resident_memory_bytes", &[]),
    ("process_cpu_seconds_total", &[]),
    ("process_open_fds", &[]),
    ("process_start_time_seconds", &[]),
    (
        "coredns_cache_entries",
        &["server", "type", "zones", "view"],
    ),
    (
        "coredns_cache_hits_total",
        &["server", "type", "zones", "view"],
    ),
    ("coredns_cache_misses_total", &["server", "zones", "view"]),
    ("coredns_cache_requests_total", &["server", "zones", "view"]),
    // forward: the names before CoreDNS 1.11, which the alerts query…
    ("coredns_forward_requests_total", &["to"]),
    ("coredns_forward_responses_total", &["to", "rcode"]),
    (
        "coredns_forward_request_duration_seconds_bucket",
        &["to", "rcode", "le"],
    ),
    ("coredns_forward_healthcheck_failures_total", &["to"]),
    ("coredns_forward_healthcheck_broken_total", &[]),
    ("coredns_forward_max_concurrent_rejects_total", &[]),
    // …and the current ones.
    (
        "coredns_proxy_request_duration_seconds_bucket",
        &["proxy_name", "to", "rcode", "le"],
    ),
    (
        "coredns_proxy_healthcheck_failures_total",
        &["proxy_name", "to"],
    ),
    (
        "coredns_proxy_conn_cache_misses_total",
        &["proxy_name", "to", "proto"],
    ),
];

/// Metric name → the label names seen on it.
fn parse_exposition(text: &str) -> std::collections::BTreeMap<String, BTreeSet<String>> {
    let mut out: std::collections::BTreeMap<String, BTreeSet<String>> = Default::default();
    for line in text
        .lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
    {
        let (name, labels) = match line.split_once('{') {
            Some((n, rest)) => (n, rest.split_once('}').map(|x| x.0).unwrap_or_default()),
            None => (line.split_whitespace().next().unwrap_or_default(), ""),
        };
        let set = out.entry(name.to_string()).or_default();
        for pair in labels.split("\",").filter(|p| !p.is_empty()) {
            if let Some((k, _)) = pair.split_once('=') {
                set.insert(k.trim_start_matches(',').to_string());
            }
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_carry_every_name_and_label_the_dashboard_and_alerts_use() {
    // An upstream that refuses (so a health check fails) before one that answers.
    let up = crate::upstream::FakeUpstream::start(std::net::Ipv4Addr::new(192, 0, 2, 1)).await;
    let refused = crate::upstream::free_port().await;
    let text = demo_corefile(&format!(
        "    prometheus 127.0.0.1:0\n    health 127.0.0.1:0\n    ready 127.0.0.1:0\n    cache 30\n    forward . 127.0.0.1:{refused} {} {{\n        policy sequential\n        except example.com\n    }}",
        up.addr
    ));
    let running = support::start(Path::new("/tmp/Corefile"), &text).await;
    let port = running.listeners()[0].port;
    // Traffic: hits over UDP and TCP, NXDOMAIN, NODATA, SERVFAIL, a DO query.
    for (name, t, how) in [
        (
            "kubernetes.default.svc.cluster.local.",
            RecordType::A,
            Transport::Udp,
        ),
        (
            "kubernetes.default.svc.cluster.local.",
            RecordType::AAAA,
            Transport::Tcp,
        ),
        (
            "nothing.default.svc.cluster.local.",
            RecordType::A,
            Transport::Udp,
        ),
        ("example.com.", RecordType::A, Transport::Udp),
        ("example.org.", RecordType::A, Transport::Udp),
        ("example.org.", RecordType::A, Transport::Udp),
        (
            "_http._tcp.frontend.shop.svc.cluster.local.",
            RecordType::SRV,
            Transport::Tcp,
        ),
    ] {
        let q = support::query(name, t, None).to_vec().unwrap();
        assert!(
            support::ask(&running, port, &q, how).await.is_some(),
            "{name}"
        );
    }
    let mut q = support::query("kubernetes.default.svc.cluster.local.", RecordType::A, None);
    let mut e = Edns::new();
    e.set_dnssec_ok(true);
    q.edns = Some(e);
    support::ask(&running, port, &q.to_vec().unwrap(), Transport::Udp)
        .await
        .unwrap();
    // The health self-check runs every second.
    tokio::time::sleep(Duration::from_millis(1300)).await;

    let addr = running.http_addr("127.0.0.1:0").expect("metrics listener");
    let (status, body) = http_get(addr, "/metrics").await.expect("metrics answer");
    assert_eq!(status, 200);
    let seen = parse_exposition(&body);
    for (name, labels) in QUERIED {
        let got = seen
            .get(*name)
            .unwrap_or_else(|| panic!("{name} is missing from /metrics"));
        for l in *labels {
            assert!(got.contains(*l), "{name} lacks label {l}: {got:?}");
        }
    }
    // Label values as CoreDNS writes them.
    for want in [
        "coredns_dns_requests_total{family=\"1\",proto=\"udp\",server=\"dns://127.0.0.1:0\",type=\"A\",view=\"\",zone=\".\"}",
        "coredns_dns_requests_total{family=\"1\",proto=\"tcp\",server=\"dns://127.0.0.1:0\",type=\"AAAA\",view=\"\",zone=\".\"}",
        "coredns_dns_responses_total{plugin=\"kubernetes\",rcode=\"NXDOMAIN\",server=\"dns://127.0.0.1:0\",view=\"\",zone=\".\"}",
        "coredns_dns_responses_total{plugin=\"\",rcode=\"SERVFAIL\",server=\"dns://127.0.0.1:0\",view=\"\",zone=\".\"}",
        "coredns_dns_do_requests_total{server=\"dns://127.0.0.1:0\",view=\"\",zone=\".\"} 1",
        "coredns_plugin_enabled{name=\"kubernetes\",server=\"dns://127.0.0.1:0\",view=\"\",zone=\".\"} 1",
        "coredns_dns_request_size_bytes_bucket{proto=\"udp\",server=\"dns://127.0.0.1:0\",view=\"\",zone=\".\",le=\"511\"}",
    ] {
        assert!(body.contains(want), "missing {want}");
    }
    // CoreDNS's buckets, exactly.
    let les: Vec<&str> = body
        .lines()
        .filter(|l| {
            l.starts_with("coredns_dns_request_duration_seconds_bucket{")
                && l.contains("zone=\".\"")
        })
        .filter_map(|l| l.split("le=\"").nth(1)?.split('"').next())
        .collect();
    assert_eq!(
        les,
        [
            "0.00025", "0.0005", "0.001", "0.002", "0.004", "0.008", "0.016", "0.032", "0.064",
            "0.128", "0.256", "0.512", "1.024", "2.048", "4.096", "8.192", "+Inf"
        ]
    );
    assert!(body.contains("coredns_health_request_duration_seconds_bucket{le=\"0.00025\"}"));
    running.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_and_ready_answer_where_they_are_configured() {
    let text = demo_corefile("    health 127.0.0.1:0\n    ready 127.0.0.1:0");
    let running = support::start(Path::new("/tmp/Corefile"), &text).await;
    let addr = running.http_addr("127.0.0.1:0").expect("http listener");
    assert_eq!(http_get(addr, "/health").await, Some((200, "OK".into())));
    assert_eq!(http_get(addr, "/ready").await, Some((200, "OK".into())));
    assert_eq!(http_get(addr, "/metrics").await.map(|r| r.0), Some(404));
    running.shutdown().await;
}

async fn a_ttl(running: &App, name: &str) -> Option<u32> {
    let port = running.listeners()[0].port;
    let q = support::query(name, RecordType::A, None).to_vec().unwrap();
    let b = support::ask(running, port, &q, Transport::Udp).await?;
    Message::from_vec(&b).ok()?.answers.first().map(|r| r.ttl)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reload_swaps_configurations_and_keeps_the_old_one_on_errors() {
    let dir = tempfile::tempdir().unwrap();
    let core = dir.path().join("Corefile");
    let with_ttl = |ttl: u32| {
        demo_corefile("    prometheus 127.0.0.1:0").replace(
            "pods insecure",
            &format!("pods insecure\n        ttl {ttl}"),
        )
    };
    std::fs::write(&core, with_ttl(11)).unwrap();
    let opts = StartOptions {
        bind: Some(LOCALHOST),
        path: Some(core.clone()),
        load: LoadOptions::default(),
        limits: Default::default(),
        metrics: None,
    };
    let app = App::start_file(opts).await.unwrap();
    let name = "kubernetes.default.svc.cluster.local.";
    assert_eq!(a_ttl(&app, name).await, Some(11));
    assert_eq!(app.indexes_built(), 1);
    // Changing what only the handler reads (fallthrough) or other directives keeps the index.
    std::fs::write(
        &core,
        with_ttl(11).replace("fallthrough in-addr.arpa ip6.arpa", "fallthrough"),
    )
    .unwrap();
    assert_eq!(app.reload(false).await.ok(), Some(true));
    std::fs::write(
        &core,
        with_ttl(11).replace("    errors\n", "    errors\n    log\n"),
    )
    .unwrap();
    assert_eq!(app.reload(false).await.ok(), Some(true));
    assert_eq!(
        app.indexes_built(),
        1,
        "an unchanged kubernetes block was rebuilt"
    );
    std::fs::write(&core, with_ttl(11)).unwrap();
    assert_eq!(app.reload(false).await.ok(), Some(true));
    let before = app.listeners()[0].clone();
    // Unchanged content: nothing happens, unless forced.
    assert_eq!(app.reload(false).await.ok(), Some(false));
    assert_eq!(app.reload(true).await.ok(), Some(true));
    // A change is served, on the same sockets.
    std::fs::write(&core, with_ttl(22)).unwrap();
    assert_eq!(app.reload(false).await.ok(), Some(true));
    assert_eq!(a_ttl(&app, name).await, Some(22));
    assert_eq!(app.indexes_built(), 2, "a changed ttl needs a new index");
    let after = app.listeners()[0].clone();
    assert_eq!((before.udp, before.tcp), (after.udp, after.tcp));
    // A broken Corefile: errors with positions, the failure counted, the old one serving.
    std::fs::write(&core, ".:0 {\n    kubernetes {\n        podz\n    }\n}\n").unwrap();
    let err = app.reload(false).await.unwrap_err();
    assert!(
        err.to_string()
            .contains("Corefile:3:9: kubernetes: unknown property 'podz'"),
        "{err}"
    );
    assert_eq!(app.metrics().core.reload_failed.get(), 1);
    assert_eq!(a_ttl(&app, name).await, Some(22));
    // The same broken file is not retried until it changes.
    assert_eq!(app.reload(false).await.ok(), Some(false));
    // A Corefile that parses but cannot start (a missing objects file): the same.
    std::fs::write(&core, with_ttl(33).replace("cluster.yaml", "missing.yaml")).unwrap();
    let err = app.reload(false).await.unwrap_err().to_string();
    assert!(
        err.contains("plugin/kubernetes: ")
            && err.contains("Corefile:")
            && err.contains("missing.yaml"),
        "{err}"
    );
    assert_eq!(app.metrics().core.reload_failed.get(), 2);
    assert_eq!(a_ttl(&app, name).await, Some(22));
    // A plugin whose setup fails (a zone file that is not there): said with the plugin and
    // where in the Corefile, not at a made-up position.
    let zone = format!(
        "{}
example.org:0 {{
    file missing.db
}}
",
        with_ttl(33)
    );
    std::fs::write(&core, &zone).unwrap();
    let err = app.reload(false).await.unwrap_err().to_string();
    let at = format!("{}:", core.display());
    assert!(
        err.contains("plugin/file: ") && err.contains(&at) && err.contains("missing.db"),
        "{err}"
    );
    assert!(!err.contains(":0:0:"), "{err}");
    assert_eq!(app.metrics().core.reload_failed.get(), 3);
    assert_eq!(a_ttl(&app, name).await, Some(22));
    // A second port appears, then goes.
    let other = crate::cli::free_port();
    let two = format!("{}\nexample.org:{other} {{\n}}\n", with_ttl(44));
    std::fs::write(&core, &two).unwrap();
    assert_eq!(app.reload(false).await.ok(), Some(true));
    assert_eq!(a_ttl(&app, name).await, Some(44));
    assert_eq!(app.listeners().len(), 2);
    let q = support::query("example.org.", RecordType::A, None)
        .to_vec()
        .unwrap();
    let b = support::ask(&app, other, &q, Transport::Udp)
        .await
        .expect("the new port answers");
    assert_eq!(
        crate::support::rcode_name(Message::from_vec(&b).unwrap().metadata.response_code),
        "SERVFAIL"
    );
    std::fs::write(&core, with_ttl(55)).unwrap();
    assert_eq!(app.reload(false).await.ok(), Some(true));
    assert_eq!(a_ttl(&app, name).await, Some(55));
    assert_eq!(app.listeners().len(), 1);
    app.shutdown().await;
}
