//! `dns64`: AAAA made from A under the prefix for names the cluster, `forward` and `cache`
//! answer; NXDOMAIN kept; PTR of a synthesized address mapped back; only IPv6 clients unless
//! `allow_ipv4`. Through dig over UDP and TCP.

use std::net::Ipv4Addr;
use std::sync::Arc;

use clusterdns::app::App;

use crate::clients;
use crate::support;
use crate::upstream::FakeUpstream;

async fn serve(dns64: &str, up: &FakeUpstream) -> Arc<App> {
    let objects = support::root().join("deploy/local/cluster.yaml");
    let corefile = format!(
        ".:0 {{\n{dns64}\n    kubernetes cluster.local in-addr.arpa ip6.arpa {{\n        objects {}\n        fallthrough in-addr.arpa ip6.arpa\n    }}\n    cache 30\n    forward . {}\n}}\n",
        objects.display(),
        up.addr
    );
    let running = support::start(&support::root().join("Corefile"), &corefile).await;
    support::until_ready(&running).await;
    running
}

/// dig over UDP and TCP, each output trimmed.
async fn dig(running: &App, args: &[&str]) -> [String; 2] {
    let [udp, tcp] = clients::dig_both(running.listeners()[0].udp.port(), args).await;
    [udp.trim().to_string(), tcp.trim().to_string()]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn aaaa_is_made_from_a_where_a_name_has_none() {
    let up = FakeUpstream::start(Ipv4Addr::new(192, 0, 2, 99)).await;
    let running = serve("    dns64 {\n        allow_ipv4\n    }", &up).await;
    let short = ["+short", "AAAA"];
    // A Service with IPv4 only: 10.96.0.1 under the well-known prefix.
    let [udp, tcp] = dig(
        &running,
        &[&short[..], &["kubernetes.default.svc.cluster.local"]].concat(),
    )
    .await;
    assert_eq!(
        (udp.as_str(), tcp.as_str()),
        ("64:ff9b::a60:1", "64:ff9b::a60:1")
    );
    // Its TTL: at most the smaller of the A record's and the SOA's (both 5 here; the cache
    // in front counts it down).
    let [full, _] = dig(
        &running,
        &[
            "+noall",
            "+answer",
            "AAAA",
            "kubernetes.default.svc.cluster.local",
        ],
    )
    .await;
    let ttl: u32 = full
        .split_whitespace()
        .nth(1)
        .and_then(|t| t.parse().ok())
        .unwrap_or(0);
    assert!(
        (1..=5).contains(&ttl) && full.ends_with("AAAA\t64:ff9b::a60:1"),
        "{full}"
    );
    // A dual-stack Service keeps its own AAAA.
    let [own, _] = dig(
        &running,
        &[&short[..], &["frontend.shop.svc.cluster.local"]].concat(),
    )
    .await;
    assert_eq!(own, "fd00:10:96::1234");
    // A name that does not exist stays so.
    let [nx, _] = dig(&running, &["AAAA", "nothing.default.svc.cluster.local"]).await;
    assert!(nx.contains("status: NXDOMAIN"), "{nx}");
    // Through forward and cache: the upstream has A only.
    for _ in 0..2 {
        let [udp, tcp] = dig(&running, &[&short[..], &["www.example.org"]].concat()).await;
        assert_eq!(
            (udp.as_str(), tcp.as_str()),
            ("64:ff9b::c000:263", "64:ff9b::c000:263")
        );
    }
    // The PTR of a synthesized address leads back to the IPv4 address's name.
    let [ptr, ptr_tcp] = dig(&running, &["+noall", "+answer", "-x", "64:ff9b::a60:1"]).await;
    for out in [&ptr, &ptr_tcp] {
        let words = out.split_whitespace().collect::<Vec<_>>().join(" ");
        assert!(words.contains("IN CNAME 1.0.96.10.in-addr.arpa."), "{out}");
        let ptr_line = out.lines().nth(1).unwrap_or_default();
        let fields: Vec<&str> = ptr_line.split_whitespace().collect();
        assert_eq!(
            [fields.first(), fields.get(3), fields.get(4)],
            [
                Some(&"1.0.96.10.in-addr.arpa."),
                Some(&"PTR"),
                Some(&"kubernetes.default.svc.cluster.local.")
            ],
            "{out}"
        );
    }
    let m = String::from_utf8(running.metrics().render()).unwrap();
    let translated: f64 = m
        .lines()
        .find(|l| l.starts_with("coredns_dns64_requests_translated_total{"))
        .and_then(|l| l.rsplit(' ').next()?.parse().ok())
        .unwrap_or(0.0);
    // Each dig above asks over UDP and TCP: kubernetes twice, www.example.org twice.
    assert_eq!(translated, 4.0 + 4.0, "{m}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ipv4_clients_are_left_alone_and_translate_all_replaces() {
    let up = FakeUpstream::start(Ipv4Addr::new(192, 0, 2, 99)).await;
    // The default: only IPv6 clients are translated; dig here asks from 127.0.0.1.
    let running = serve("    dns64", &up).await;
    let [udp, tcp] = dig(
        &running,
        &["+short", "AAAA", "kubernetes.default.svc.cluster.local"],
    )
    .await;
    assert_eq!((udp.as_str(), tcp.as_str()), ("", ""));
    // translate_all, a prefix of its own: even the dual-stack Service's answer is synthesized.
    let running = serve(
        "    dns64 {\n        prefix 2001:db8:122:344::/64\n        translate_all\n        allow_ipv4\n    }",
        &up,
    )
    .await;
    let [udp, _] = dig(
        &running,
        &["+short", "AAAA", "frontend.shop.svc.cluster.local"],
    )
    .await;
    assert_eq!(udp, "2001:db8:122:344:a:600c:2200:0");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_ipv6_client_is_translated_by_default() {
    use std::net::{IpAddr, Ipv6Addr, SocketAddr};

    use hickory_proto::op::Message;
    use hickory_proto::rr::RecordType;

    let up = FakeUpstream::start(Ipv4Addr::new(192, 0, 2, 99)).await;
    let objects = support::root().join("deploy/local/cluster.yaml");
    let corefile = format!(
        ".:0 {{\n    dns64\n    kubernetes cluster.local {{\n        objects {}\n    }}\n    forward . {}\n}}\n",
        objects.display(),
        up.addr
    );
    let cfg = clusterdns::config::from_str(
        &support::root().join("Corefile").display().to_string(),
        &corefile,
        &clusterdns::config::LoadOptions::default(),
    )
    .unwrap();
    let opts = clusterdns::app::StartOptions {
        bind: Some(IpAddr::V6(Ipv6Addr::LOCALHOST)),
        ..Default::default()
    };
    let running = clusterdns::app::App::start(&cfg, opts)
        .await
        .expect("starts on ::1");
    support::until_ready(&running).await;
    let port = running.listeners()[0].udp.port();
    let to = SocketAddr::new(IpAddr::V6(Ipv6Addr::LOCALHOST), port);
    let sock = tokio::net::UdpSocket::bind("[::1]:0").await.unwrap();
    let q = support::query(
        "kubernetes.default.svc.cluster.local.",
        RecordType::AAAA,
        Some(1232),
    );
    sock.send_to(&q.to_vec().unwrap(), to).await.unwrap();
    let mut buf = vec![0u8; 1500];
    let n = tokio::time::timeout(std::time::Duration::from_secs(2), sock.recv(&mut buf))
        .await
        .unwrap()
        .unwrap();
    let m = Message::from_vec(&buf[..n]).unwrap();
    let answers: Vec<String> = m.answers.iter().map(|r| r.data.to_string()).collect();
    assert_eq!(answers, ["64:ff9b::a60:1"]);
}
