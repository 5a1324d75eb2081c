//! The small directives (`chaos`, `whoami`, `nsid`, `local`, `header`, `minimal`, `cancel`,
//! `timeouts`, `acl`, `metadata`), each through `dig` over UDP and TCP, and the metrics they
//! keep.

use std::sync::Arc;
use std::time::Duration;

use clusterdns::app::App;
use hickory_proto::rr::RecordType;

use crate::clients;
use crate::support;

/// A server on 127.0.0.1 whose root block has `lines` and then the demo cluster.
async fn serve(lines: &str) -> Arc<App> {
    let objects = support::root().join("deploy/local/cluster.yaml");
    let corefile = format!(
        ".:0 {{\n{lines}\n    kubernetes cluster.local in-addr.arpa ip6.arpa {{\n        objects {}\n    }}\n}}\n",
        objects.display()
    );
    let running = support::start(&support::root().join("Corefile"), &corefile).await;
    support::until_ready(&running).await;
    running
}

/// `dig` against the server's first port, over UDP and then over TCP: both outputs.
async fn dig_both(running: &App, args: &[&str]) -> [String; 2] {
    clients::dig_both(running.listeners()[0].udp.port(), args).await
}

/// The cluster's names are still answered, over UDP and TCP.
async fn answers_the_cluster(running: &App) {
    let out = dig_both(running, &["+short", "kubernetes.default.svc.cluster.local"]).await;
    assert_eq!(
        out.map(|o| o.trim().to_string()),
        ["10.96.0.1", "10.96.0.1"]
    );
}

fn metrics(running: &App) -> String {
    String::from_utf8(running.metrics().render()).unwrap()
}

/// The value of the one series of `name` whose labels contain every one of `labels`.
fn series(text: &str, name: &str, labels: &[&str]) -> Option<f64> {
    text.lines()
        .filter(|l| l.starts_with(name) && !l.starts_with('#'))
        .filter(|l| labels.iter().all(|want| l.contains(want)))
        .find_map(|l| l.rsplit(' ').next()?.parse().ok())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chaos_answers_version_authors_and_hostname_in_class_ch() {
    let running = serve("    chaos CoreDNS-001 alice@example.org bob@example.org").await;
    let hostname = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap();
    for (name, want) in [
        ("version.bind", "\"CoreDNS-001\"".to_string()),
        ("version.server", "\"CoreDNS-001\"".to_string()),
        (
            "authors.bind",
            "\"alice@example.org\"\n\"bob@example.org\"".to_string(),
        ),
        ("hostname.bind", format!("\"{}\"", hostname.trim())),
        ("ID.Server", format!("\"{}\"", hostname.trim())),
    ] {
        for out in dig_both(&running, &["+short", "CH", "TXT", name]).await {
            assert_eq!(out.trim(), want, "{name}");
        }
    }
    // Class CH, TTL 0, named as asked.
    let [udp, _] = dig_both(
        &running,
        &["+noall", "+answer", "CH", "TXT", "Version.Bind"],
    )
    .await;
    let fields: Vec<&str> = udp.split_whitespace().collect();
    assert_eq!(fields[..4], ["Version.Bind.", "0", "CH", "TXT"], "{udp}");
    // Cluster names are not its business.
    answers_the_cluster(&running).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn whoami_shows_the_clients_address_and_port() {
    let running = serve("    whoami").await;
    let [udp, tcp] = dig_both(&running, &["+noall", "+additional", "Example.org"]).await;
    for (out, proto) in [(udp, "_udp"), (tcp, "_tcp")] {
        let lines: Vec<Vec<&str>> = out
            .lines()
            .map(|l| l.split_whitespace().collect())
            .collect();
        assert_eq!(lines.len(), 2, "{out}");
        assert_eq!(
            lines[0],
            ["Example.org.", "0", "IN", "A", "127.0.0.1"],
            "{out}"
        );
        assert_eq!(
            lines[1][..7],
            [
                &format!("{proto}.Example.org.") as &str,
                "0",
                "IN",
                "SRV",
                "0",
                "0",
                lines[1][6]
            ]
        );
        let port: u16 = lines[1][6].parse().expect("a port");
        assert!(port > 0);
        assert_eq!(lines[1][7], ".");
    }
    // It answers every name no plugin before it answers, with an empty answer section,
    // authoritatively; it runs last (CoreDNS's order), so cluster names are the cluster's.
    let [status, _] = dig_both(&running, &["svc.example.org"]).await;
    assert!(status.contains("status: NOERROR"), "{status}");
    assert!(
        status.contains("ANSWER: 0, AUTHORITY: 0, ADDITIONAL: 3"),
        "{status}"
    );
    assert!(status.contains("flags: qr aa rd;"), "{status}");
    answers_the_cluster(&running).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nsid_answers_only_who_asks() {
    let running = serve("    nsid test replica").await;
    let [udp, tcp] = dig_both(&running, &["+nsid", "kubernetes.default.svc.cluster.local"]).await;
    for out in [udp, tcp] {
        assert!(
            out.contains("NSID: 74 65 73 74 20 72 65 70 6c 69 63 61 (\"test replica\")"),
            "{out}"
        );
        assert!(out.contains("10.96.0.1"), "{out}");
    }
    let [plain, _] = dig_both(&running, &["kubernetes.default.svc.cluster.local"]).await;
    assert!(!plain.contains("NSID"), "{plain}");
    // NXDOMAIN gets it too: it is the server's, whatever the answer.
    let [nx, _] = dig_both(&running, &["+nsid", "nothing.default.svc.cluster.local"]).await;
    assert!(
        nx.contains("status: NXDOMAIN") && nx.contains("(\"test replica\")"),
        "{nx}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn local_keeps_localhost_at_home() {
    let running = serve("    local").await;
    let short = |args: &'static [&'static str]| {
        let running = running.clone();
        async move { dig_both(&running, args).await }
    };
    for (args, want) in [
        (&["+short", "localhost"][..], "127.0.0.1"),
        (&["+short", "AAAA", "localhost"][..], "::1"),
        (&["+short", "-x", "127.0.0.1"][..], "localhost."),
        (&["+short", "app.localhost"][..], "127.0.0.1"),
        (
            &["+short", "localhost.default.svc.cluster.local"][..],
            "127.0.0.1",
        ),
        (&["+short", "NS", "127.in-addr.arpa"][..], "localhost."),
    ] {
        for out in short(args).await {
            assert_eq!(out.trim(), want, "{args:?}");
        }
    }
    for (args, status) in [
        (&["-x", "127.0.0.5"][..], "NXDOMAIN"),
        (&["MX", "localhost"][..], "NOERROR"),
        (&["0.0.0.0.in-addr.arpa"][..], "NXDOMAIN"),
    ] {
        for out in short(args).await {
            assert!(
                out.contains(&format!("status: {status}")),
                "{args:?}: {out}"
            );
            assert!(
                out.contains("localhost. root.localhost. 1 0 0 0 604800"),
                "{out}"
            );
            assert!(!out.contains("flags: qr aa"), "not authoritative: {out}");
        }
    }
    // The rest is the cluster's, on the fast path or not.
    answers_the_cluster(&running).await;
    let [ptr, _] = dig_both(&running, &["+short", "-x", "10.96.0.1"]).await;
    assert_eq!(ptr.trim(), "kubernetes.default.svc.cluster.local.");
    // Names under localhost. and with its prefix are counted: two of the asks above, twice each.
    let m = metrics(&running);
    assert_eq!(
        series(&m, "coredns_local_localhost_requests_total", &[]),
        Some(4.0),
        "{m}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn local_prefix_off_leaves_search_list_names_alone() {
    let running = serve("    local {\n        localhost_prefix off\n    }").await;
    let [out, _] = dig_both(&running, &["localhost.default.svc.cluster.local"]).await;
    assert!(out.contains("status: NXDOMAIN"), "{out}");
    assert!(out.contains("cluster.local."), "the cluster's SOA: {out}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn header_sets_and_clears_flags() {
    let running = serve("    header {\n        set ra aa\n        clear rd\n    }").await;
    for out in dig_both(&running, &["kubernetes.default.svc.cluster.local"]).await {
        assert!(out.contains("flags: qr aa ra;"), "{out}");
        assert!(out.contains("10.96.0.1"), "{out}");
    }
    let running =
        serve("    header {\n        query clear rd\n        response clear aa\n    }").await;
    for out in dig_both(&running, &["nothing.default.svc.cluster.local"]).await {
        assert!(out.contains("flags: qr;"), "{out}");
        assert!(out.contains("status: NXDOMAIN"), "{out}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn minimal_drops_what_a_positive_answer_does_not_need() {
    let srv = ["+noall", "+answer", "+authority", "+additional", "SRV"];
    let name = "_http._tcp.frontend.shop.svc.cluster.local";
    let plain = serve("").await;
    let [full, _] = dig_both(&plain, &[&srv[..], &[name]].concat()).await;
    assert_eq!(full.lines().count(), 3, "the addresses come along: {full}");
    let running = serve("    minimal").await;
    for out in dig_both(&running, &[&srv[..], &[name]].concat()).await {
        let lines: Vec<&str> = out.lines().collect();
        assert_eq!(lines.len(), 1, "{out}");
        assert!(
            lines[0].contains("SRV 0 50 80 frontend.shop.svc.cluster.local."),
            "{out}"
        );
    }
    // A negative answer keeps its SOA.
    for out in dig_both(
        &running,
        &["+noall", "+authority", "nothing.default.svc.cluster.local"],
    )
    .await
    {
        assert!(out.contains("SOA"), "{out}");
    }
    // In process, the fast path gives the same minimal answer as the general path.
    let port = running.listeners()[0].port;
    let q = support::query(
        &format!("{name}."),
        hickory_proto::rr::RecordType::SRV,
        Some(1232),
    );
    let bytes = support::in_process(&running, port, &q.to_vec().unwrap())
        .await
        .unwrap();
    let m = hickory_proto::op::Message::from_vec(&bytes).unwrap();
    assert_eq!((m.answers.len(), m.additionals.len()), (1, 0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancel_answers_servfail_when_the_upstream_is_silent() {
    // An upstream that reads and never answers.
    let silent = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let upstream = silent.local_addr().unwrap();
    let running = serve(&format!("    cancel 300ms\n    forward . {upstream}\n")).await;
    // dig gives up after 2 s; the answer comes long before, from cancel.
    for out in dig_both(&running, &["example.org"]).await {
        assert!(out.contains("status: SERVFAIL"), "{out}");
    }
    drop(silent);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn timeouts_close_idle_connections_sooner() {
    use tokio::io::AsyncReadExt;
    let running = serve("    timeouts {\n        idle 1s\n    }").await;
    let tcp = running.listeners()[0].tcp;
    let mut s = tokio::net::TcpStream::connect(tcp).await.unwrap();
    // The listener's own idle timeout is 10 s; the block's is 1 s.
    let mut buf = [0u8; 1];
    let closed = tokio::time::timeout(Duration::from_secs(6), s.read(&mut buf)).await;
    assert!(matches!(closed, Ok(Ok(0))), "{closed:?}");
    // Queries are answered as before.
    answers_the_cluster(&running).await;
}

/// `maxtcpqueries` (CoreDNS 1.14): a TCP connection carries that many answers and is closed,
/// so a client behind a connection-based load balancer reconnects.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn maxtcpqueries_closes_a_connection_after_its_answers() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let running = serve("    timeouts {\n        maxtcpqueries 3\n    }").await;
    let tcp = running.listeners()[0].tcp;
    let mut s = tokio::net::TcpStream::connect(tcp).await.unwrap();
    // Four queries on one connection, pipelined.
    let mut out = Vec::new();
    for _ in 0..4 {
        let q = support::query("kubernetes.default.svc.cluster.local.", RecordType::A, None)
            .to_vec()
            .unwrap();
        out.extend_from_slice(&(q.len() as u16).to_be_bytes());
        out.extend_from_slice(&q);
    }
    s.write_all(&out).await.unwrap();
    let mut answers = 0;
    loop {
        let mut len = [0u8; 2];
        match tokio::time::timeout(Duration::from_secs(5), s.read_exact(&mut len)).await {
            Ok(Ok(_)) => {}
            Ok(Err(_)) => break, // closed
            Err(_) => panic!("the connection stayed open after {answers} answers"),
        }
        let mut msg = vec![0u8; usize::from(u16::from_be_bytes(len))];
        s.read_exact(&mut msg).await.unwrap();
        answers += 1;
    }
    assert_eq!(answers, 3);
    // A new connection is answered again; dig, one query a connection, never notices.
    for out in dig_both(&running, &["kubernetes.default.svc.cluster.local"]).await {
        assert!(out.contains("status: NOERROR"), "{out}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acl_allows_blocks_filters_and_drops_in_order() {
    let running = serve(concat!(
        "    acl shop.svc.cluster.local {\n        block net 127.0.0.0/8\n    }\n",
        "    acl {\n",
        "        allow type AAAA net 127.0.0.1\n",
        "        block type A net 127.0.0.0/8 ::1\n",
        "        filter type SRV\n",
        "        drop type TXT\n",
        "    }\n",
    ))
    .await;
    let [a, a_tcp] = dig_both(&running, &["kubernetes.default.svc.cluster.local"]).await;
    for out in [a, a_tcp] {
        assert!(out.contains("status: REFUSED"), "{out}");
    }
    for out in dig_both(
        &running,
        &["+short", "AAAA", "frontend.shop.svc.cluster.local"],
    )
    .await
    {
        // The first acl line (shop) blocks it before the second allows AAAA.
        assert_eq!(out.trim(), "", "{out}");
    }
    for out in dig_both(&running, &["AAAA", "kubernetes.default.svc.cluster.local"]).await {
        assert!(out.contains("status: NOERROR"), "{out}");
    }
    for out in dig_both(
        &running,
        &["SRV", "_https._tcp.kubernetes.default.svc.cluster.local"],
    )
    .await
    {
        assert!(
            out.contains("status: NOERROR") && out.contains("ANSWER: 0, AUTHORITY: 0"),
            "{out}"
        );
    }
    for out in dig_both(&running, &["TXT", "kubernetes.default.svc.cluster.local"]).await {
        assert!(
            out.contains("timed out") || out.contains("no servers could be reached"),
            "{out}"
        );
    }
    // Not matched by any line: allowed, answered by the cluster.
    for out in dig_both(&running, &["MX", "kubernetes.default.svc.cluster.local"]).await {
        assert!(
            out.contains("status: NOERROR") && out.contains("ANSWER: 0, AUTHORITY: 1"),
            "{out}"
        );
    }
    let m = metrics(&running);
    let server = running.listeners()[0].port;
    let server = format!("server=\"dns://127.0.0.1:{server}\"");
    for (name, zone, want) in [
        (
            "coredns_acl_blocked_requests_total",
            "zone=\"cluster.local.\"",
            0.0,
        ),
        ("coredns_acl_blocked_requests_total", "zone=\".\"", 2.0),
        (
            "coredns_acl_blocked_requests_total",
            "zone=\"shop.svc.cluster.local.\"",
            2.0,
        ),
        ("coredns_acl_filtered_requests_total", "zone=\".\"", 2.0),
        ("coredns_acl_dropped_requests_total", "zone=\".\"", 2.0),
        ("coredns_acl_allowed_requests_total", "view=\"\"", 4.0),
    ] {
        assert_eq!(
            series(&m, name, &[&server, zone]).unwrap_or(0.0),
            want,
            "{name} {zone}\n{m}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metadata_and_debug_load_and_change_no_answer() {
    let running =
        serve("    metadata\n    debug\n    log . \"{name} {/kubernetes/client-namespace}\"").await;
    answers_the_cluster(&running).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn erratic_drops_truncates_and_delays_every_nth() {
    let running = support::start(
        &support::root().join("Corefile"),
        ".:0 {\n    erratic {\n        drop 3\n        truncate 2\n        delay 4 50ms\n    }\n}\n",
    )
    .await;
    let at = running.listeners()[0].udp;
    let sock = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let mut seen = Vec::new();
    for i in 0..6u16 {
        let mut q = support::query("example.org.", hickory_proto::rr::RecordType::A, None);
        q.metadata.id = 100 + i;
        sock.send_to(&q.to_vec().unwrap(), at).await.unwrap();
        let mut buf = vec![0u8; 512];
        // Long enough for a delayed answer; a dropped one never comes.
        let got = tokio::time::timeout(Duration::from_millis(400), sock.recv(&mut buf)).await;
        seen.push(match got {
            Ok(Ok(n)) => {
                let m = hickory_proto::op::Message::from_vec(&buf[..n]).unwrap();
                assert_eq!(m.metadata.id, 100 + i);
                assert_eq!(m.answers[0].data.to_string(), "192.0.2.53");
                if m.metadata.truncation {
                    "tc"
                } else {
                    "answer"
                }
            }
            _ => "dropped",
        });
    }
    assert_eq!(seen, ["dropped", "answer", "tc", "dropped", "tc", "answer"]);

    // Over TCP too, through dig; other types are SERVFAIL.
    let running = support::start(
        &support::root().join("Corefile"),
        ".:0 {\n    erratic {\n        delay 1 10ms\n    }\n}\n",
    )
    .await;
    let [a, a_tcp] = dig_both(&running, &["+short", "AAAA", "x.example.org"]).await;
    assert_eq!((a.trim(), a_tcp.trim()), ("2001:db8::53", "2001:db8::53"));
    let [mx, _] = dig_both(&running, &["MX", "example.org"]).await;
    assert!(mx.contains("status: SERVFAIL"), "{mx}");
}

/// The test's client at 127.0.0.5, as a pod in namespace `shop`.
const CLIENT_POD: &str = "apiVersion: v1\nkind: Pod\nmetadata: {name: client, namespace: shop}\nspec: {containers: [{name: c, image: nicolaka/netshoot}]}\nstatus: {phase: App, podIP: 127.0.0.5, podIPs: [{ip: 127.0.0.5}]}\n";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metadata_lets_a_view_route_by_the_clients_namespace() {
    let dir = tempfile::tempdir().unwrap();
    let objects = support::demo_objects(dir.path(), &[("client.yaml", CLIENT_POD)]);
    let corefile = format!(
        concat!(
            ".:0 {{\n    metadata\n    view shop {{\n        expr metadata('kubernetes/client-namespace') == 'shop'\n    }}\n",
            "    hosts {{\n        1.1.1.1 test\n        fallthrough\n    }}\n",
            "    kubernetes cluster.local {{\n        objects {}\n        pods verified\n    }}\n}}\n",
            ".:0 {{\n    hosts {{\n        2.2.2.2 test\n    }}\n}}\n"
        ),
        objects.display()
    );
    let running = support::start(&dir.path().join("Corefile"), &corefile).await;
    support::until_ready(&running).await;
    let port = running.listeners()[0].udp.port();
    let from = |src: &'static str| async move {
        tokio::task::spawn_blocking(move || {
            let b = format!("-b{src}");
            let udp = clients::dig(port, &[&b, "+short", "test"]);
            let tcp = clients::dig(port, &[&b, "+short", "+tcp", "test"]);
            (udp.trim().to_string(), tcp.trim().to_string())
        })
        .await
        .unwrap()
    };
    assert_eq!(
        from("127.0.0.5").await,
        ("1.1.1.1".into(), "1.1.1.1".into())
    );
    assert_eq!(
        from("127.0.0.1").await,
        ("2.2.2.2".into(), "2.2.2.2".into())
    );
}
