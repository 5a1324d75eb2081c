//! `forward`, `cache` and `loop` against upstreams: ours (slow, dead, truncating, lying) and
//! Knot DNS.

use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use hickory_proto::op::{Edns, Message, ResponseCode};
use hickory_proto::rr::RecordType;
use hickory_proto::rr::rdata::opt::{EdnsCode, EdnsOption};

use clusterdns::app::App;
use clusterdns::plugin::Transport;

use crate::support;
use crate::upstream::{
    DohRecorder, FakeUpstream, Knot, Mode, Unbound, addresses, corefile_path, free_port, tls_server,
};

async fn start(corefile: &str) -> (Arc<App>, u16) {
    let running = support::start(corefile_path(), corefile).await;
    let port = running.listeners()[0].port;
    (running, port)
}

async fn ask_msg(running: &App, port: u16, q: &Message, how: Transport) -> Message {
    let bytes = support::ask(running, port, &q.to_vec().unwrap(), how)
        .await
        .unwrap_or_else(|| panic!("no answer to {}", q.queries[0]));
    Message::from_vec(&bytes).unwrap()
}

async fn ask(running: &App, port: u16, name: &str, t: RecordType) -> Message {
    ask_msg(
        running,
        port,
        &support::query(name, t, Some(1232)),
        Transport::Udp,
    )
    .await
}

fn metrics(running: &App) -> String {
    String::from_utf8(running.metrics().render()).unwrap()
}

/// The value of the first series of `name` whose labels contain every one of `labels`.
fn metric(running: &App, name: &str, labels: &[&str]) -> f64 {
    metrics(running)
        .lines()
        .filter(|l| l.starts_with(name) && l[name.len()..].starts_with(['{', ' ']))
        .find(|l| labels.iter().all(|x| l.contains(x)))
        .and_then(|l| l.rsplit(' ').next()?.parse().ok())
        .unwrap_or(0.0)
}

const A1: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 1);
const A2: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 2);
const A3: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 3);

/// kubeadm's chain (without its HTTP endpoints) forwarding to `upstream`.
fn kubeadm_chain(upstream: u16, cache_options: &str) -> String {
    format!(
        ".:0 {{
    errors
    kubernetes cluster.local in-addr.arpa ip6.arpa {{
       objects {}
       pods insecure
       fallthrough in-addr.arpa ip6.arpa
       ttl 30
    }}
    forward . 127.0.0.1:{upstream}
    cache 30 {{
       disable success cluster.local
       disable denial cluster.local
{cache_options}    }}
    loop
    reload
    loadbalance
}}
",
        support::root().join("deploy/local/cluster.yaml").display(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kept_answers_from_upstream_are_sent_on_the_fast_path() {
    let knot = Knot::start().await;
    let (running, port) = start(&kubeadm_chain(knot.port, "")).await;
    let router = running.router(port).unwrap();
    let src = SocketAddr::from(([127, 0, 0, 1], 40000));
    let hits = || {
        ["success", "denial"]
            .iter()
            .map(|t| {
                metric(
                    &running,
                    "coredns_cache_hits_total",
                    &[&format!("type=\"{t}\"")],
                )
            })
            .sum::<f64>()
    };
    let mut fast = 0.0;
    // An address, a CNAME chain, NXDOMAIN and NODATA (both with Knot's SOA), and a referral
    // kind of answer (NS with glue); upper and lower case; with and without EDNS.
    for (name, qtype) in [
        ("example.org.", RecordType::A),
        ("WWW.Example.org.", RecordType::A),
        ("nope.example.org.", RecordType::A),
        ("example.org.", RecordType::AAAA),
        ("Example.ORG.", RecordType::NS),
    ] {
        for edns in [None, Some(1232)] {
            let q = support::query(name, qtype, edns).to_vec().unwrap();
            let mut out = Vec::new();
            // Without EDNS, the first ask goes upstream and is kept; then a hit each way.
            if edns.is_none() {
                router.handle_bytes_general(&q, src, Transport::Udp).await;
            }
            let general = router
                .handle_bytes_general(&q, src, Transport::Udp)
                .await
                .unwrap();
            assert!(
                router.answer_fast(&q, src, Transport::Udp, &mut out),
                "{name} {qtype} {edns:?}: kept, and not sent on the fast path"
            );
            fast += 1.0;
            assert!(
                support::same_but_a_second(&general, &out),
                "{name} {qtype} {edns:?}: the fast path sent {out:02x?}, the general path {general:02x?}"
            );
            let m = Message::from_vec(&out).unwrap();
            // The client's own spelling, and the time left of the cache's 30 s.
            assert_eq!(m.queries[0].name().to_string(), name);
            for r in m.answers.iter().chain(&m.authorities) {
                assert!(r.ttl <= 30, "{r}");
            }
        }
    }
    // Every fast answer is a hit counted once, as the general path counts its own.
    let general_hits = 10.0; // one per ask after the first (EDNS or not, they share an entry)
    assert_eq!(hits(), fast + general_hits, "{}", metrics(&running));
    assert_eq!(
        metric(&running, "coredns_cache_requests_total", &[]),
        hits() + metric(&running, "coredns_cache_misses_total", &[]),
    );
    // A DNSSEC (DO) or CD query is kept apart; DO never takes the fast path.
    let mut q = support::query("example.org.", RecordType::A, Some(1232));
    q.metadata.checking_disabled = true;
    let q = q.to_vec().unwrap();
    let mut out = Vec::new();
    assert!(!router.answer_fast(&q, src, Transport::Udp, &mut out));
    router.handle_bytes_general(&q, src, Transport::Udp).await;
    assert!(router.answer_fast(&q, src, Transport::Udp, &mut out));
    assert!(Message::from_vec(&out).unwrap().metadata.checking_disabled);
    // dig sees the kept answer over UDP and TCP.
    let bound = running.listeners()[0].udp.port();
    for tcp in ["+notcp", "+tcp"] {
        let a = crate::clients::dig(bound, &["www.example.org", "A", tcp, "+noall", "+answer"]);
        assert!(a.contains("CNAME") && a.contains("93.184.215.14"), "{a}");
    }
    running.shutdown().await;

    // With prefetch, hits are counted per entry and may refresh it: `serve` answers them.
    let (running, port) = start(&kubeadm_chain(knot.port, "       prefetch 1\n")).await;
    let router = running.router(port).unwrap();
    let q = support::query("example.org.", RecordType::A, None)
        .to_vec()
        .unwrap();
    router.handle_bytes_general(&q, src, Transport::Udp).await;
    assert!(!router.answer_fast(&q, src, Transport::Udp, &mut out));
    running.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_stock_kubeadm_corefile_forwards_to_knot_and_caches() {
    let knot = Knot::start().await;
    let objects = support::root().join("deploy/local/cluster.yaml");
    // kubeadm's Corefile, whole, with the objects file for the API, Knot for resolv.conf, and
    // loopback ports for the HTTP endpoints.
    let corefile = format!(
        ".:0 {{
    errors
    health 127.0.0.1:0 {{
       lameduck 5s
    }}
    ready 127.0.0.1:0
    kubernetes cluster.local in-addr.arpa ip6.arpa {{
       objects {}
       pods insecure
       fallthrough in-addr.arpa ip6.arpa
       ttl 30
    }}
    prometheus 127.0.0.1:0
    forward . 127.0.0.1:{} {{
       max_concurrent 1000
    }}
    cache 30 {{
       disable success cluster.local
       disable denial cluster.local
    }}
    loop
    reload
    loadbalance
}}
",
        objects.display(),
        knot.port
    );
    let (running, _) = start(&corefile).await;
    let port = running.listeners()[0].udp.port();
    let first = crate::clients::dig(port, &["example.org", "A"]);
    assert!(first.contains("93.184.215.14"), "{first}");
    assert!(first.contains("status: NOERROR"), "{first}");
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let second = crate::clients::dig(port, &["example.org", "A", "+noall", "+answer"]);
    let ttl: u32 = second
        .split_whitespace()
        .nth(1)
        .and_then(|t| t.parse().ok())
        .unwrap_or_else(|| panic!("no TTL in {second}"));
    // From the cache: Knot says 300, the cache holds it 30 s, and a second has gone.
    assert!(ttl < 30, "{second}");
    assert!(
        metric(&running, "coredns_cache_hits_total", &["type=\"success\""]) >= 1.0,
        "{}",
        metrics(&running)
    );
    // A CNAME and a denial from Knot, and a cluster name beside them.
    let www = crate::clients::dig(port, &["www.example.org", "A", "+noall", "+answer"]);
    assert!(
        www.contains("CNAME") && www.contains("93.184.215.14"),
        "{www}"
    );
    let nx = crate::clients::dig(port, &["nope.example.org", "A"]);
    assert!(
        nx.contains("status: NXDOMAIN") && nx.contains("SOA"),
        "{nx}"
    );
    let cluster = crate::clients::dig(port, &["kubernetes.default.svc.cluster.local", "+short"]);
    assert_eq!(cluster.trim(), "10.96.0.1");
    // disable success/denial cluster.local: cluster names never go through the cache.
    let hits = metric(&running, "coredns_cache_requests_total", &[]);
    crate::clients::dig(port, &["kubernetes.default.svc.cluster.local"]);
    assert_eq!(metric(&running, "coredns_cache_requests_total", &[]), hits);
    // nslookup, as from a pod.
    let out = tokio::task::spawn_blocking(move || {
        std::process::Command::new("nslookup")
            .args([&format!("-port={port}"), "example.org", "127.0.0.1"])
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    let out = String::from_utf8_lossy(&out.stdout);
    assert!(out.contains("93.184.215.14"), "{out}");
    // The proxy's metrics name Knot.
    let to = format!("to=\"127.0.0.1:{}\"", knot.port);
    assert!(
        metric(
            &running,
            "coredns_proxy_request_duration_seconds_count",
            &[&to, "rcode=\"NOERROR\""]
        ) >= 1.0
    );
    assert!(
        metric(
            &running,
            "coredns_forward_responses_total",
            &[&to, "rcode=\"NXDOMAIN\""]
        ) >= 1.0
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_policy_orders_the_upstreams_as_it_says() {
    let ups = [
        FakeUpstream::start(A1).await,
        FakeUpstream::start(A2).await,
        FakeUpstream::start(A3).await,
    ];
    let to = ups
        .iter()
        .map(|u| u.addr.to_string())
        .collect::<Vec<_>>()
        .join(" ");
    for (policy, check) in [
        (
            "sequential",
            &(|c: [usize; 3]| c == [30, 0, 0]) as &dyn Fn([usize; 3]) -> bool,
        ),
        ("round_robin", &|c: [usize; 3]| c == [10, 10, 10]),
        ("random", &|c: [usize; 3]| {
            c.iter().all(|n| *n > 0) && c.iter().sum::<usize>() == 30
        }),
    ] {
        let before: Vec<usize> = ups.iter().map(|u| u.state.queries()).collect();
        let (running, port) = start(&format!(
            ".:0 {{\n forward . {to} {{\n  policy {policy}\n }}\n}}\n"
        ))
        .await;
        for i in 0..30 {
            let m = ask(&running, port, &format!("n{i}.example."), RecordType::A).await;
            assert_eq!(m.metadata.response_code, ResponseCode::NoError);
        }
        let counts: Vec<usize> = ups
            .iter()
            .zip(&before)
            .map(|(u, b)| u.state.queries() - b)
            .collect();
        assert!(
            check([counts[0], counts[1], counts[2]]),
            "{policy}: {counts:?}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dead_upstream_is_checked_out_and_back_in() {
    let dead_port = free_port().await;
    let alive = FakeUpstream::start(A2).await;
    let (running, port) = start(&format!(
        ".:0 {{\n forward . 127.0.0.1:{dead_port} {} {{\n  policy sequential\n  health_check 100ms\n  max_fails 2\n }}\n}}\n",
        alive.addr
    ))
    .await;
    // The first upstream refuses: the second answers, and the first is probed.
    let m = ask(&running, port, "a.example.", RecordType::A).await;
    assert_eq!(addresses(&m), ["192.0.2.2"]);
    let dead = format!("to=\"127.0.0.1:{dead_port}\"");
    let mut waited = 0;
    while metric(
        &running,
        "coredns_proxy_healthcheck_failures_total",
        &[&dead],
    ) < 3.0
    {
        tokio::time::sleep(Duration::from_millis(50)).await;
        waited += 1;
        assert!(waited < 100, "{}", metrics(&running));
    }
    assert!(
        metric(
            &running,
            "coredns_forward_healthcheck_failures_total",
            &[&dead]
        ) >= 3.0
    );
    // Down now: queries go straight to the second, without a new connection to the first.
    let misses = metric(&running, "coredns_proxy_conn_cache_misses_total", &[&dead]);
    for i in 0..5 {
        let m = ask(&running, port, &format!("b{i}.example."), RecordType::A).await;
        assert_eq!(addresses(&m), ["192.0.2.2"]);
    }
    assert_eq!(
        metric(&running, "coredns_proxy_conn_cache_misses_total", &[&dead]),
        misses
    );
    // It comes back: the probe sees it, and sequential sends everything to it again.
    let back = FakeUpstream::start_on(dead_port, A1, None).await;
    let mut answered = Vec::new();
    for i in 0..40 {
        let m = ask(&running, port, &format!("c{i}.example."), RecordType::A).await;
        answered = addresses(&m);
        if answered == ["192.0.2.1"] {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(answered, ["192.0.2.1"]);
    assert!(back.state.checks.load(Ordering::SeqCst) >= 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn when_every_upstream_is_down_the_client_gets_servfail_not_a_hang() {
    let silent = FakeUpstream::start(A1).await;
    silent.state.set_mode(Mode::Silent);
    let refused = free_port().await;
    let (running, port) = start(&format!(
        ".:0 {{\n forward . {} 127.0.0.1:{refused} {{\n  health_check 100ms\n }}\n}}\n",
        silent.addr
    ))
    .await;
    let m = ask_patiently(&running, port, "x.example.").await;
    assert_eq!(m.metadata.response_code, ResponseCode::ServFail);
    // Both are down after their probes fail: all-unhealthy is counted, and with
    // failfast_all_unhealthy_upstreams the answer is SERVFAIL at once.
    // (A silent upstream's check takes its 1 s timeout: three of them to be down.)
    for _ in 0..100 {
        let failed = |to: &str| metric(&running, "coredns_proxy_healthcheck_failures_total", &[to]);
        if failed(&format!("to=\"{}\"", silent.addr)) >= 3.0
            && failed(&format!("to=\"127.0.0.1:{refused}\"")) >= 3.0
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let m = ask_patiently(&running, port, "y.example.").await;
    assert_eq!(m.metadata.response_code, ResponseCode::ServFail);
    assert!(metric(&running, "coredns_forward_healthcheck_broken_total", &[]) >= 1.0);
    let (fast, fast_port) = start(&format!(
        ".:0 {{\n forward . 127.0.0.1:{refused} {{\n  health_check 50ms\n  failfast_all_unhealthy_upstreams\n }}\n}}\n"
    ))
    .await;
    ask(&fast, fast_port, "z.example.", RecordType::A).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let before = metric(&fast, "coredns_proxy_conn_cache_misses_total", &[]);
    let m = ask(&fast, fast_port, "w.example.", RecordType::A).await;
    assert_eq!(m.metadata.response_code, ResponseCode::ServFail);
    // Not even tried.
    assert_eq!(
        metric(&fast, "coredns_proxy_conn_cache_misses_total", &[]),
        before
    );
}

/// Asks in-process, waiting longer than forward's deadline: an answer must come by then.
async fn ask_patiently(running: &App, port: u16, name: &str) -> Message {
    let bytes = support::query(name, RecordType::A, Some(1232))
        .to_vec()
        .unwrap();
    let router = running.router(port).unwrap();
    let src = SocketAddr::new(support::LOCALHOST, 40001);
    let out = tokio::time::timeout(
        Duration::from_secs(8),
        router.handle_bytes(&bytes, src, Transport::Udp),
    )
    .await
    .expect("an answer within forward's deadline")
    .unwrap();
    Message::from_vec(&out).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_truncated_udp_answer_is_asked_again_over_tcp() {
    let up = FakeUpstream::start(A1).await;
    let (running, port) = start(&format!(".:0 {{\n forward . {}\n}}\n", up.addr)).await;
    let q = support::query("big.example.", RecordType::TXT, Some(4096));
    let m = ask_msg(&running, port, &q, Transport::Udp).await;
    assert_eq!(m.answers.len(), 20);
    assert!(!m.metadata.truncation);
    assert_eq!(up.state.udp.load(Ordering::SeqCst), 1);
    assert_eq!(up.state.tcp.load(Ordering::SeqCst), 1);
    // A client with 512 bytes gets what fits, and TC to come back over TCP.
    let q = support::query("big.example.", RecordType::TXT, None);
    let m = ask_msg(&running, port, &q, Transport::Udp).await;
    assert!(m.metadata.truncation);
    let m = ask_msg(&running, port, &q, Transport::Tcp).await;
    assert_eq!(m.answers.len(), 20);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tcp_connections_are_kept_and_reused() {
    let up = FakeUpstream::start(A1).await;
    let (running, port) = start(&format!(
        ".:0 {{\n forward . {} {{\n  force_tcp\n }}\n}}\n",
        up.addr
    ))
    .await;
    for i in 0..5 {
        let m = ask(&running, port, &format!("r{i}.example."), RecordType::A).await;
        assert_eq!(addresses(&m), ["192.0.2.1"]);
    }
    assert_eq!(up.state.tcp.load(Ordering::SeqCst), 5);
    assert_eq!(up.state.conns.load(Ordering::SeqCst), 1);
    assert_eq!(
        metric(
            &running,
            "coredns_proxy_conn_cache_hits_total",
            &["proto=\"tcp\""]
        ),
        4.0
    );
    assert_eq!(
        metric(
            &running,
            "coredns_forward_conn_cache_hits_total",
            &["proto=\"tcp\""]
        ),
        4.0
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_kept_connection_the_upstream_closed_is_replaced() {
    let up = FakeUpstream::start(A1).await;
    up.state.close_after_answer.store(true, Ordering::SeqCst);
    let (running, port) = start(&format!(
        ".:0 {{\n forward . {} {{\n  force_tcp\n }}\n}}\n",
        up.addr
    ))
    .await;
    for i in 0..3 {
        let m = ask(&running, port, &format!("k{i}.example."), RecordType::A).await;
        assert_eq!(addresses(&m), ["192.0.2.1"], "query {i}");
        // Let the close arrive before the next query takes the kept connection.
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(up.state.conns.load(Ordering::SeqCst), 3);
    assert_eq!(
        metric(
            &running,
            "coredns_proxy_conn_cache_hits_total",
            &["proto=\"tcp\""]
        ),
        2.0
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn max_concurrent_refuses_what_is_beyond_it() {
    let up = FakeUpstream::start(A1).await;
    up.state.set_mode(Mode::Slow(Duration::from_millis(500)));
    let (running, port) = start(&format!(
        ".:0 {{\n forward . {} {{\n  max_concurrent 2\n }}\n}}\n",
        up.addr
    ))
    .await;
    let running2 = running.clone();
    let asks: Vec<_> = (0..6)
        .map(|i| {
            let r = running2.clone();
            tokio::spawn(
                async move { ask(&r, port, &format!("m{i}.example."), RecordType::A).await },
            )
        })
        .collect();
    let mut rcodes = Vec::new();
    for a in asks {
        rcodes.push(a.await.unwrap().metadata.response_code);
    }
    let refused = rcodes
        .iter()
        .filter(|r| **r == ResponseCode::Refused)
        .count();
    let ok = rcodes
        .iter()
        .filter(|r| **r == ResponseCode::NoError)
        .count();
    assert_eq!((ok, refused), (2, 4), "{rcodes:?}");
    assert_eq!(
        metric(
            &running,
            "coredns_forward_max_concurrent_rejects_total",
            &[]
        ),
        4.0
    );
    // Refusals are not upstream failures.
    assert_eq!(
        metric(&running, "coredns_proxy_healthcheck_failures_total", &[]),
        0.0
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_query_goes_up_as_the_client_sent_it() {
    let up = FakeUpstream::start(A1).await;
    let (running, port) = start(&format!(".:0 {{\n forward . {}\n}}\n", up.addr)).await;
    let mut q = support::query("Mixed.Example.", RecordType::A, Some(1232));
    q.metadata.checking_disabled = true;
    let mut edns = Edns::new();
    edns.set_max_payload(1400);
    edns.set_dnssec_ok(true);
    edns.options_mut()
        .insert(EdnsOption::Unknown(65001, b"hello".to_vec()));
    q.edns = Some(edns);
    let m = ask_msg(&running, port, &q, Transport::Udp).await;
    assert_eq!(addresses(&m), ["192.0.2.1"]);
    assert!(
        m.metadata.recursion_available,
        "the upstream's RA is passed on"
    );
    let sent = Message::from_vec(&up.state.last.lock().unwrap().clone().unwrap()).unwrap();
    assert_ne!(sent.metadata.id, q.metadata.id, "a fresh ID upstream");
    assert!(sent.metadata.recursion_desired && sent.metadata.checking_disabled);
    assert_eq!(sent.queries[0].name().to_string(), "Mixed.Example.");
    let e = sent.edns.expect("EDNS passed on");
    assert!(e.flags().dnssec_ok);
    assert_eq!(e.max_payload(), 1400);
    assert_eq!(
        e.option(EdnsCode::Unknown(65001)),
        Some(&EdnsOption::Unknown(65001, b"hello".to_vec()))
    );
    // Without EDNS from the client, none goes up.
    let q = support::query("plain.example.", RecordType::A, None);
    ask_msg(&running, port, &q, Transport::Udp).await;
    let sent = Message::from_vec(&up.state.last.lock().unwrap().clone().unwrap()).unwrap();
    assert!(sent.edns.is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_answer_to_another_question_is_formerr() {
    let up = FakeUpstream::start(A1).await;
    up.state.set_mode(Mode::WrongQuestion);
    let (running, port) = start(&format!(".:0 {{\n forward . {}\n}}\n", up.addr)).await;
    let m = ask(&running, port, "q.example.", RecordType::A).await;
    assert_eq!(m.metadata.response_code, ResponseCode::FormErr);
    assert!(m.answers.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn except_next_and_failover_route_names_as_coredns_does() {
    let first = FakeUpstream::start(A1).await;
    let second = FakeUpstream::start(A2).await;
    let (running, port) = start(&format!(
        ".:0 {{\n forward . {} {{\n  except skip.example\n  next NXDOMAIN\n }}\n forward . {}\n}}\n",
        first.addr, second.addr
    ))
    .await;
    // next NXDOMAIN: the second forward answers what the first denies.
    let m = ask(&running, port, "nx1.example.", RecordType::A).await;
    assert_eq!(m.metadata.response_code, ResponseCode::NXDomain);
    assert_eq!((first.state.queries(), second.state.queries()), (1, 1));
    let m = ask(&running, port, "ok.example.", RecordType::A).await;
    assert_eq!(addresses(&m), ["192.0.2.1"]);
    assert_eq!((first.state.queries(), second.state.queries()), (2, 1));
    // except: the first never sees it.
    let m = ask(&running, port, "a.skip.example.", RecordType::A).await;
    assert_eq!(addresses(&m), ["192.0.2.2"]);
    assert_eq!((first.state.queries(), second.state.queries()), (2, 2));
    // failover SERVFAIL: the next upstream of the same forward is asked.
    first.state.set_mode(Mode::Rcode(ResponseCode::ServFail));
    let (running, port) = start(&format!(
        ".:0 {{\n forward . {} {} {{\n  policy sequential\n  failover SERVFAIL\n }}\n}}\n",
        first.addr, second.addr
    ))
    .await;
    let m = ask(&running, port, "f.example.", RecordType::A).await;
    assert_eq!(addresses(&m), ["192.0.2.2"]);

    // next_on_nodata (CoreDNS 1.14's README): NOERROR without records goes on to the next
    // forward; without it, the NODATA is the answer.
    first.state.set_mode(Mode::Rcode(ResponseCode::NoError));
    for (line, want) in [("  next_on_nodata\n", vec!["192.0.2.2"]), ("", vec![])] {
        let (running, port) = start(&format!(
            ".:0 {{\n forward . {} {{\n{line} }}\n forward . {}\n}}\n",
            first.addr, second.addr
        ))
        .await;
        let m = ask(&running, port, "nd.example.", RecordType::A).await;
        assert_eq!(m.metadata.response_code, ResponseCode::NoError);
        assert_eq!(addresses(&m), want, "{line}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dns_over_tls_with_a_server_name_and_a_ca() {
    let (dir, ca, acceptor) = tls_server();
    let up = FakeUpstream::start_on(0, A3, Some(acceptor)).await;
    let corefile = format!(
        ".:0 {{\n forward . tls://{} {{\n  tls {}\n  tls_servername dns.test\n }}\n}}\n",
        up.addr,
        ca.display()
    );
    let (running, port) = start(&corefile).await;
    for i in 0..3 {
        let m = ask(&running, port, &format!("t{i}.example."), RecordType::A).await;
        assert_eq!(addresses(&m), ["192.0.2.3"]);
    }
    // Over TLS, on one kept connection.
    assert_eq!(up.state.tcp.load(Ordering::SeqCst), 3);
    assert_eq!(up.state.conns.load(Ordering::SeqCst), 1);
    assert_eq!(
        metric(
            &running,
            "coredns_proxy_conn_cache_hits_total",
            &["proto=\"tcp-tls\""]
        ),
        2.0
    );
    // The wrong name: the certificate does not verify, and nothing is answered from it.
    let wrong = corefile.replace("dns.test", "other.test");
    let (running, port) = start(&wrong).await;
    let m = ask(&running, port, "u.example.", RecordType::A).await;
    assert_eq!(m.metadata.response_code, ResponseCode::ServFail);
    drop(dir);
}

/// `https://` upstreams (CoreDNS 1.14's README): DNS over HTTPS to Unbound from Debian, with
/// POST (the default) and `doh_method GET`, on one kept HTTP/2 connection.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dns_over_https_to_unbound_with_post_and_get() {
    let (dir, ca, _) = tls_server();
    let unbound = Unbound::start_doh(dir.path()).await;
    for method in ["", "  doh_method GET\n"] {
        let corefile = format!(
            ".:0 {{\n forward . https://127.0.0.1:{} {{\n  tls {}\n  tls_servername dns.test\n{method} }}\n}}\n",
            unbound.port,
            ca.display()
        );
        let (running, port) = start(&corefile).await;
        for how in [Transport::Udp, Transport::Tcp, Transport::Udp] {
            let q = support::query("a.doh.test.", RecordType::A, None);
            let m = ask_msg(&running, port, &q, how).await;
            assert_eq!(addresses(&m), ["192.0.2.53"], "{method}");
            assert_eq!(m.metadata.id, q.metadata.id);
        }
        let m = ask(&running, port, "nope.doh.test.", RecordType::A).await;
        assert_eq!(m.metadata.response_code, ResponseCode::NXDomain, "{method}");
        // One connection, kept and used again.
        let hits = metric(
            &running,
            "coredns_proxy_conn_cache_hits_total",
            &["proto=\"https\""],
        );
        let misses = metric(
            &running,
            "coredns_proxy_conn_cache_misses_total",
            &["proto=\"https\""],
        );
        assert_eq!((hits, misses), (3.0, 1.0), "{method}");
    }
}

/// What a DNS over HTTPS upstream is sent, as RFC 8484 writes it: POST with the message as
/// `application/dns-message`, or GET with `?dns=` in base64url; path `/dns-query`; ID 0; and
/// queries at once share one HTTP/2 connection. A server without HTTP/2 is an error, not a hang.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dns_over_https_requests_are_as_rfc_8484_writes_them() {
    let (dir, ca, plain) = tls_server();
    let doh = DohRecorder::start(dir.path()).await;
    for (method, line) in [("POST", ""), ("GET", "  doh_method get\n")] {
        let corefile = format!(
            ".:0 {{\n forward . https://{}/dns-query {{\n  tls {}\n  tls_servername dns.test\n{line} }}\n}}\n",
            doh.addr,
            ca.display()
        );
        let (running, port) = start(&corefile).await;
        let before = doh.requests().len();
        let conns = doh.conns.load(Ordering::SeqCst);
        let asks = (0..8).map(|i| {
            let running = running.clone();
            async move { ask(&running, port, &format!("q{i}.example."), RecordType::A).await }
        });
        for m in futures_util::future::join_all(asks).await {
            assert_eq!(addresses(&m), ["192.0.2.80"], "{m:?}");
        }
        let seen = doh.requests()[before..].to_vec();
        assert_eq!(seen.len(), 8);
        for r in &seen {
            assert_eq!(r.method, method);
            assert_eq!(r.path, "/dns-query");
            assert_eq!(r.accept.as_deref(), Some("application/dns-message"));
            assert_eq!(
                r.authority.as_deref(),
                Some(&*format!("dns.test:{}", doh.addr.port()))
            );
            let q = Message::from_vec(&r.message).unwrap();
            assert_eq!(q.metadata.id, 0);
            match method {
                "POST" => {
                    assert_eq!(r.content_type.as_deref(), Some("application/dns-message"));
                    assert_eq!(r.query, None);
                }
                _ => {
                    let query = r.query.as_deref().unwrap();
                    assert!(query.starts_with("dns="), "{query}");
                    assert!(!query[4..].contains(['+', '/', '=']), "{query}");
                }
            }
        }
        assert_eq!(doh.conns.load(Ordering::SeqCst) - conns, 1, "{method}");
    }

    // A TLS server that does not offer h2 (the DNS over TLS one): SERVFAIL at once.
    let up = FakeUpstream::start_on(0, A3, Some(plain)).await;
    let corefile = format!(
        ".:0 {{\n forward . https://{} {{\n  tls {}\n  tls_servername dns.test\n }}\n}}\n",
        up.addr,
        ca.display()
    );
    let (running, port) = start(&corefile).await;
    let m = ask(&running, port, "h1.example.", RecordType::A).await;
    assert_eq!(m.metadata.response_code, ResponseCode::ServFail);
    assert_eq!(up.state.tcp.load(Ordering::SeqCst), 0);
    drop(dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cache_counts_ttls_down_and_keeps_dnssec_apart() {
    let up = FakeUpstream::start(A1).await;
    let (running, port) = start(&format!(".:0 {{\n cache 30\n forward . {}\n}}\n", up.addr)).await;
    let m = ask(&running, port, "c.example.", RecordType::A).await;
    assert_eq!(
        m.answers[0].ttl, 60,
        "the first answer as the upstream gave it"
    );
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let m = ask(&running, port, "C.EXAMPLE.", RecordType::A).await;
    assert_eq!(up.state.queries(), 1, "the second from the cache");
    assert!(m.answers[0].ttl <= 29, "{}", m.answers[0].ttl);
    assert_eq!(
        m.answers[0].name.to_string(),
        "C.EXAMPLE.",
        "in the asker's case"
    );
    // Denial, with the SOA's minimum (30) as its TTL.
    ask(&running, port, "nx.example.", RecordType::A).await;
    let m = ask(&running, port, "nx.example.", RecordType::A).await;
    assert_eq!(m.metadata.response_code, ResponseCode::NXDomain);
    assert_eq!(up.state.queries(), 2);
    assert!(m.authorities[0].ttl <= 30, "{}", m.authorities[0].ttl);
    // DO and CD queries are not answered from a plain query's entry.
    let mut q = support::query("c.example.", RecordType::A, Some(1232));
    q.edns.as_mut().unwrap().set_dnssec_ok(true);
    ask_msg(&running, port, &q, Transport::Udp).await;
    assert_eq!(up.state.queries(), 3);
    let mut q = support::query("c.example.", RecordType::A, Some(1232));
    q.metadata.checking_disabled = true;
    ask_msg(&running, port, &q, Transport::Udp).await;
    assert_eq!(up.state.queries(), 4);
    assert!(metric(&running, "coredns_cache_entries", &["type=\"success\""]) >= 3.0);
    assert_eq!(
        metric(&running, "coredns_cache_entries", &["type=\"denial\""]),
        1.0
    );
    // keepttl: the upstream's TTL, unchanged.
    let (running, port) = start(&format!(
        ".:0 {{\n cache 30 {{\n  keepttl\n }}\n forward . {}\n}}\n",
        up.addr
    ))
    .await;
    ask(&running, port, "k.example.", RecordType::A).await;
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let m = ask(&running, port, "k.example.", RecordType::A).await;
    assert_eq!(m.answers[0].ttl, 60);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn servfail_is_kept_for_the_servfail_duration_only() {
    let up = FakeUpstream::start(A1).await;
    up.state.set_mode(Mode::Rcode(ResponseCode::ServFail));
    let (running, port) = start(&format!(
        ".:0 {{\n cache {{\n  servfail 1s\n }}\n forward . {}\n}}\n",
        up.addr
    ))
    .await;
    ask(&running, port, "s.example.", RecordType::A).await;
    let m = ask(&running, port, "s.example.", RecordType::A).await;
    assert_eq!(m.metadata.response_code, ResponseCode::ServFail);
    assert_eq!(up.state.queries(), 1);
    tokio::time::sleep(Duration::from_millis(1100)).await;
    up.state.set_mode(Mode::Answer);
    let m = ask(&running, port, "s.example.", RecordType::A).await;
    assert_eq!(addresses(&m), ["192.0.2.1"]);
    assert_eq!(up.state.queries(), 2);
}

/// CoreDNS 1.14's cache fixes: a NODATA without an SOA is not kept (#8232); an entry is
/// kept per QCLASS (#8272) and with the upstream's AD bit (#8438).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nodata_without_soa_is_not_kept_and_entries_are_per_class() {
    let up = FakeUpstream::start(A1).await;
    let (running, port) = start(&format!(".:0 {{\n cache\n forward . {}\n}}\n", up.addr)).await;
    // NODATA with an SOA: kept.
    ask(&running, port, "soa.example.", RecordType::TXT).await;
    ask(&running, port, "soa.example.", RecordType::TXT).await;
    assert_eq!(up.state.queries(), 1);
    // Without one: asked again each time.
    for _ in 0..2 {
        let m = ask(&running, port, "nosoa.example.", RecordType::TXT).await;
        assert_eq!(m.metadata.response_code, ResponseCode::NoError);
        assert!(m.answers.is_empty() && m.authorities.is_empty());
    }
    assert_eq!(up.state.queries(), 3);
    // The same name in another class is another entry.
    let mut chaos = support::query("soa.example.", RecordType::TXT, Some(1232));
    chaos.queries[0].set_query_class(hickory_proto::rr::DNSClass::CH);
    ask_msg(&running, port, &chaos, Transport::Udp).await;
    assert_eq!(up.state.queries(), 4, "a CH question is not the IN entry");
    let udp = running.listeners()[0].udp.port();
    for out in crate::clients::dig_both(udp, &["soa.example", "TXT"]).await {
        assert!(out.contains("status: NOERROR"), "{out}");
    }
    assert_eq!(up.state.queries(), 4, "dig's IN question is the kept entry");
    // AD as the upstream set it, from the upstream and from the cache.
    for _ in 0..2 {
        let m = ask(&running, port, "authentic.example.", RecordType::A).await;
        assert!(m.metadata.authentic_data);
    }
    assert_eq!(up.state.queries(), 5);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prefetch_refreshes_a_popular_entry_before_it_ends() {
    let up = FakeUpstream::start(A1).await;
    up.state.ttl.store(3, Ordering::SeqCst);
    let (running, port) = start(&format!(
        ".:0 {{\n cache {{\n  success 1024 3 1\n  prefetch 2 1m 90%\n }}\n forward . {}\n}}\n",
        up.addr
    ))
    .await;
    ask(&running, port, "p.example.", RecordType::A).await;
    up.state.set_ip(A2);
    // Two hits with the TTL under 90%: the second starts a refresh behind the answer.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let m = ask(&running, port, "p.example.", RecordType::A).await;
    assert_eq!(addresses(&m), ["192.0.2.1"]);
    let m = ask(&running, port, "p.example.", RecordType::A).await;
    assert_eq!(addresses(&m), ["192.0.2.1"]);
    let mut refreshed = false;
    for _ in 0..40 {
        if up.state.queries() == 2 {
            refreshed = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    assert!(refreshed, "no prefetch: {} queries", up.state.queries());
    assert_eq!(metric(&running, "coredns_cache_prefetch_total", &[]), 1.0);
    // The refreshed entry answers, with no miss in between.
    let misses = metric(&running, "coredns_cache_misses_total", &[]);
    let m = ask(&running, port, "p.example.", RecordType::A).await;
    assert_eq!(addresses(&m), ["192.0.2.2"]);
    assert_eq!(metric(&running, "coredns_cache_misses_total", &[]), misses);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_stale_answers_while_the_upstreams_are_down() {
    let up = FakeUpstream::start(A1).await;
    up.state.ttl.store(1, Ordering::SeqCst);
    for mode in ["immediate", "verify"] {
        up.state.set_mode(Mode::Answer);
        up.state.set_ip(A1);
        let (running, port) = start(&format!(
            ".:0 {{\n cache {{\n  success 1024 1 1\n  serve_stale 1h {mode}\n }}\n forward . {} {{\n  max_fails 0\n }}\n}}\n",
            up.addr
        ))
        .await;
        let name = format!("{mode}.example.");
        ask(&running, port, &name, RecordType::A).await;
        up.state.set_mode(Mode::Rcode(ResponseCode::Refused));
        tokio::time::sleep(Duration::from_millis(1200)).await;
        let m = ask(&running, port, &name, RecordType::A).await;
        assert_eq!(addresses(&m), ["192.0.2.1"], "{mode}");
        assert_eq!(m.answers[0].ttl, 0, "{mode}: stale answers carry TTL 0");
        assert!(metric(&running, "coredns_cache_served_stale_total", &[]) >= 1.0);
        // Back up with a new address: verify answers it at once; immediate answers stale
        // once more and has the new one by the next query.
        up.state.set_mode(Mode::Answer);
        up.state.set_ip(A2);
        let m = ask(&running, port, &name, RecordType::A).await;
        if mode == "verify" {
            assert_eq!(addresses(&m), ["192.0.2.2"]);
        } else {
            tokio::time::sleep(Duration::from_millis(200)).await;
            let m = ask(&running, port, &name, RecordType::A).await;
            assert_eq!(addresses(&m), ["192.0.2.2"], "{mode}");
        }
    }
    // Without serve_stale an ended entry is gone: the upstream's refusal comes through.
    up.state.set_mode(Mode::Answer);
    let (running, port) = start(&format!(
        ".:0 {{\n cache {{\n  success 1024 1 1\n }}\n forward . {}\n}}\n",
        up.addr
    ))
    .await;
    ask(&running, port, "gone.example.", RecordType::A).await;
    up.state.set_mode(Mode::Rcode(ResponseCode::Refused));
    tokio::time::sleep(Duration::from_millis(1200)).await;
    let m = ask(&running, port, "gone.example.", RecordType::A).await;
    assert_eq!(m.metadata.response_code, ResponseCode::Refused);
}

/// CoreDNS 1.14's longer `serve_stale`: RESPONSE_TTL is the TTL of a stale answer, and after
/// a failed refresh FAILURE_RECHECK answers stale without asking again; `verify` waits at most
/// VERIFY_TIMEOUT for the source.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_stale_response_ttl_failure_recheck_and_verify_timeout() {
    let up = FakeUpstream::start(A1).await;
    up.state.ttl.store(1, Ordering::SeqCst);
    let (running, port) = start(&format!(
        ".:0 {{\n cache {{\n  success 1024 1 1\n  serve_stale 1h immediate 30s 2s\n }}\n forward . {} {{\n  max_fails 0\n }}\n}}\n",
        up.addr
    ))
    .await;
    ask(&running, port, "r.example.", RecordType::A).await;
    up.state.set_mode(Mode::Rcode(ResponseCode::Refused));
    tokio::time::sleep(Duration::from_millis(1200)).await;
    let m = ask(&running, port, "r.example.", RecordType::A).await;
    assert_eq!(addresses(&m), ["192.0.2.1"]);
    assert_eq!(m.answers[0].ttl, 30, "RESPONSE_TTL");
    // The refresh behind it is refused: within FAILURE_RECHECK nothing is asked again.
    let deadline = std::time::Instant::now() + Duration::from_secs(2);
    while up.state.queries() < 2 {
        assert!(std::time::Instant::now() < deadline, "no refresh was asked");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    tokio::time::sleep(Duration::from_millis(100)).await;
    let asked = up.state.queries();
    for _ in 0..3 {
        let m = ask(&running, port, "r.example.", RecordType::A).await;
        assert_eq!(
            (addresses(&m), m.answers[0].ttl),
            (vec!["192.0.2.1".to_string()], 30)
        );
    }
    assert_eq!(
        up.state.queries(),
        asked,
        "asked again within FAILURE_RECHECK"
    );
    // Past it, asked again.
    tokio::time::sleep(Duration::from_millis(2100)).await;
    ask(&running, port, "r.example.", RecordType::A).await;
    let deadline = std::time::Instant::now() + Duration::from_secs(2);
    while up.state.queries() == asked {
        assert!(
            std::time::Instant::now() < deadline,
            "not asked again after the recheck"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    running.close().await;

    // verify with a timeout: a slow source, and the stale entry comes within it.
    up.state.set_mode(Mode::Answer);
    let (running, port) = start(&format!(
        ".:0 {{\n cache {{\n  success 1024 1 1\n  serve_stale 1h verify 200ms 10s\n }}\n forward . {}\n}}\n",
        up.addr
    ))
    .await;
    ask(&running, port, "v.example.", RecordType::A).await;
    up.state.set_mode(Mode::Slow(Duration::from_secs(3)));
    tokio::time::sleep(Duration::from_millis(1200)).await;
    let m = ask(&running, port, "v.example.", RecordType::A).await;
    assert_eq!(
        (addresses(&m), m.answers[0].ttl),
        (vec!["192.0.2.1".to_string()], 10)
    );
    running.close().await;
}

/// `serve_stale_policy prefer_positive` (CoreDNS 1.14): a positive answer within the
/// `serve_stale` window is answered over a negative one that came after it; without the
/// policy, the negative replaces it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prefer_positive_keeps_the_last_good_answer() {
    let up = FakeUpstream::start(A1).await;
    up.state.ttl.store(1, Ordering::SeqCst);
    for policy in [true, false] {
        up.state.set_mode(Mode::Answer);
        let line = if policy {
            "  serve_stale_policy prefer_positive\n"
        } else {
            ""
        };
        let (running, port) = start(&format!(
            ".:0 {{\n cache {{\n  success 1024 1 1\n  denial 1024 60 1\n  serve_stale 1h\n{line} }}\n forward . {}\n}}\n",
            up.addr
        ))
        .await;
        ask(&running, port, "p.example.", RecordType::A).await;
        up.state.set_mode(Mode::Rcode(ResponseCode::NXDomain));
        tokio::time::sleep(Duration::from_millis(1200)).await;
        // Stale at once; the refresh behind it gets NXDOMAIN.
        let m = ask(&running, port, "p.example.", RecordType::A).await;
        assert_eq!(addresses(&m), ["192.0.2.1"]);
        tokio::time::sleep(Duration::from_millis(300)).await;
        let m = ask(&running, port, "p.example.", RecordType::A).await;
        if policy {
            assert_eq!(addresses(&m), ["192.0.2.1"], "the positive is kept");
        } else {
            assert_eq!(m.metadata.response_code, ResponseCode::NXDomain);
        }
        running.close().await;
    }
}

/// CoreDNS 1.14's `read_timeout`, `max_connect_attempts` (twice the upstreams by default: two
/// passes) and `source_address`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn read_timeout_attempts_and_source_address() {
    let (a, b) = (FakeUpstream::start(A1).await, FakeUpstream::start(A2).await);
    for up in [&a, &b] {
        up.state.set_mode(Mode::Slow(Duration::from_millis(600)));
    }
    // The default 2s waits for a 600 ms upstream.
    let (running, port) = start(&format!(
        ".:0 {{\n forward . {} {{\n  policy sequential\n  max_fails 0\n }}\n}}\n",
        a.addr
    ))
    .await;
    let m = ask(&running, port, "slow.example.", RecordType::A).await;
    assert_eq!(addresses(&m), ["192.0.2.1"]);
    running.close().await;
    // What a query for `name` asks of each upstream, with `extra` lines: SERVFAIL in the end.
    let asked = |extra: &'static str, name: &'static str| {
        let (a, b) = (&a, &b);
        async move {
            let before = (a.state.queries(), b.state.queries());
            let (running, port) = start(&format!(
                ".:0 {{\n forward . {} {} {{\n  policy sequential\n  max_fails 0\n  read_timeout 200ms\n{extra} }}\n}}\n",
                a.addr, b.addr
            ))
            .await;
            let m = ask(&running, port, name, RecordType::A).await;
            assert_eq!(m.metadata.response_code, ResponseCode::ServFail);
            running.close().await;
            (a.state.queries() - before.0, b.state.queries() - before.1)
        }
    };
    // 200 ms does not: each upstream tried twice (four attempts).
    assert_eq!(asked("", "slow2.example.").await, (2, 2));
    // max_connect_attempts 1: one attempt, whatever the upstreams.
    assert_eq!(
        asked("  max_connect_attempts 1\n", "slow3.example.").await,
        (1, 0)
    );
    // source_address: queries over UDP and TCP, and health checks, come from 127.0.0.2.
    a.state.set_mode(Mode::Answer);
    a.state.from.lock().unwrap().clear();
    let (running, port) = start(&format!(
        ".:0 {{\n forward . {} {{\n  source_address 127.0.0.2\n }}\n}}\n",
        a.addr
    ))
    .await;
    let m = ask(&running, port, "src.example.", RecordType::A).await;
    assert_eq!(addresses(&m), ["192.0.2.1"]);
    let tcp = ask_msg(
        &running,
        port,
        &support::query("src2.example.", RecordType::A, None),
        Transport::Tcp,
    )
    .await;
    assert_eq!(addresses(&tcp), ["192.0.2.1"]);
    let from = a.state.from.lock().unwrap().clone();
    assert!(from.len() >= 2, "{from:?}");
    assert!(
        from.iter().all(|ip| ip.to_string() == "127.0.0.2"),
        "{from:?}"
    );
    running.close().await;
}

/// CoreDNS 1.14's host names as upstreams: resolved once at start through `resolver` (here a
/// fake resolver that answers 127.0.0.1 for every name), the port as written.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_host_name_upstream_is_resolved_through_resolver() {
    let resolver = FakeUpstream::start(std::net::Ipv4Addr::LOCALHOST).await;
    let up = FakeUpstream::start(A1).await;
    let (running, port) = start(&format!(
        ".:0 {{\n forward . dns.upstream.test:{} {{\n  resolver {}\n }}\n}}\n",
        up.addr.port(),
        resolver.addr
    ))
    .await;
    let m = ask(&running, port, "www.example.", RecordType::A).await;
    assert_eq!(addresses(&m), ["192.0.2.1"]);
    assert_eq!(up.state.queries(), 1);
    // The resolver was asked for the host (A and AAAA), not for the client's name.
    assert!(resolver.state.queries() >= 1);
    for out in crate::clients::dig_both(
        running.listeners()[0].udp.port(),
        &["+short", "www.example"],
    )
    .await
    {
        assert_eq!(out.trim(), "192.0.2.1");
    }
    running.close().await;
    // A name no resolver knows stops the start, saying so.
    resolver.state.set_mode(Mode::Rcode(ResponseCode::NXDomain));
    let e = support::start_error(
        corefile_path(),
        &format!(
            ".:0 {{\n forward . nowhere.test {{\n  resolver {}\n }}\n}}\n",
            resolver.addr
        ),
    )
    .await;
    assert!(
        e.contains("plugin/forward: ") && e.contains("nowhere.test"),
        "{e}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cluster_change_drops_what_the_cache_holds_for_it() {
    let dir = tempfile::tempdir().unwrap();
    let objects = dir.path().join("cluster.yaml");
    let demo = std::fs::read_to_string(support::root().join("deploy/local/cluster.yaml")).unwrap();
    std::fs::write(&objects, &demo).unwrap();
    // Plain 'cache 30' (older kubeadm), denials held at least 30 s.
    let corefile = format!(
        ".:0 {{\n cache 30 {{\n  denial 9984 30 30\n }}\n kubernetes cluster.local {{\n  objects {}\n }}\n}}\n",
        objects.display()
    );
    let (running, port) = start(&corefile).await;
    let name = "fresh.default.svc.cluster.local.";
    let m = ask(&running, port, name, RecordType::A).await;
    assert_eq!(m.metadata.response_code, ResponseCode::NXDomain);
    let m = ask(&running, port, name, RecordType::A).await;
    assert_eq!(m.metadata.response_code, ResponseCode::NXDomain);
    assert!(metric(&running, "coredns_cache_hits_total", &["type=\"denial\""]) >= 1.0);
    // The Service appears.
    let svc = "---\napiVersion: v1\nkind: Service\nmetadata:\n  name: fresh\n  namespace: default\nspec:\n  type: ClusterIP\n  clusterIP: 10.96.77.77\n  clusterIPs: [10.96.77.77]\n  ports:\n  - name: http\n    port: 80\n    protocol: TCP\n";
    std::fs::write(&objects, format!("{demo}\n{svc}")).unwrap();
    // ANY queries pass the cache by, so they show when the index has the Service.
    let q = support::query(name, RecordType::ANY, Some(1232));
    let mut seen = false;
    for _ in 0..100 {
        let m = ask_msg(&running, port, &q, Transport::Udp).await;
        if m.metadata.response_code == ResponseCode::NoError {
            seen = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(seen, "the objects file was not re-read");
    // The plain query's cached NXDOMAIN is gone with the change.
    let m = ask(&running, port, name, RecordType::A).await;
    assert_eq!(addresses(&m), ["10.96.77.77"]);
}

#[test]
fn a_forwarding_loop_stops_the_process_and_names_the_upstream() {
    let dir = tempfile::tempdir().unwrap();
    let port = std::net::UdpSocket::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let corefile = dir.path().join("Corefile");
    std::fs::write(
        &corefile,
        format!(".:{port} {{\n    forward . 127.0.0.1:{port}\n    loop\n}}\n"),
    )
    .unwrap();
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_clusterdns"))
        .args([
            "-conf",
            corefile.to_str().unwrap(),
            "-dns.port",
            &port.to_string(),
        ])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("still running: no loop detected");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let out = child.wait_with_output().unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(status.code(), Some(1), "{text}");
    assert!(text.contains("plugin/loop: Loop"), "{text}");
    assert!(
        text.contains(&format!("forwarded to 127.0.0.1:{port}")),
        "{text}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_checks_ask_what_health_check_says() {
    let up = FakeUpstream::start(A1).await;
    up.state.set_mode(Mode::Slow(Duration::from_secs(3)));
    let (running, port) = start(&format!(
        ".:0 {{\n forward . {} {{\n  health_check 100ms no_rec domain example.net\n }}\n}}\n",
        up.addr
    ))
    .await;
    // The query times out (2 s): a check follows, as configured.
    let m = ask_patiently(&running, port, "h.example.").await;
    assert_eq!(m.metadata.response_code, ResponseCode::ServFail);
    let mut check = None;
    for _ in 0..40 {
        check = up.state.last_check.lock().unwrap().clone();
        if check.is_some() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    assert_eq!(check, Some(("example.net.".to_string(), false)));
    // max_fails 0: never checked.
    let quiet = FakeUpstream::start(A1).await;
    quiet.state.set_mode(Mode::Slow(Duration::from_secs(3)));
    let (running, port) = start(&format!(
        ".:0 {{\n forward . {} {{\n  max_fails 0\n }}\n}}\n",
        quiet.addr
    ))
    .await;
    ask_patiently(&running, port, "h.example.").await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(quiet.state.checks.load(Ordering::SeqCst), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn expire_closes_kept_connections_and_prefer_udp_uses_udp() {
    let up = FakeUpstream::start(A1).await;
    let (running, port) = start(&format!(
        ".:0 {{\n forward . {} {{\n  force_tcp\n  expire 300ms\n }}\n}}\n",
        up.addr
    ))
    .await;
    ask(&running, port, "e1.example.", RecordType::A).await;
    let kept = std::time::Instant::now();
    ask(&running, port, "e2.example.", RecordType::A).await;
    assert_eq!(up.state.conns.load(Ordering::SeqCst), 1);
    // Closed once expired, with no query after it to notice (as CoreDNS's connection manager
    // closes them): the upstream sees the end of the connection, not before `expire`.
    let deadline = kept + Duration::from_secs(5);
    while up.state.ended.load(Ordering::SeqCst) == 0 && std::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(
        up.state.ended.load(Ordering::SeqCst),
        1,
        "closed when expired"
    );
    assert!(kept.elapsed() >= Duration::from_millis(300));
    ask(&running, port, "e3.example.", RecordType::A).await;
    assert_eq!(
        up.state.conns.load(Ordering::SeqCst),
        2,
        "expired: a new connection"
    );
    // A TCP client: over TCP upstream by default, over UDP with prefer_udp.
    let q = support::query("t.example.", RecordType::A, Some(1232));
    let before = up.state.tcp.load(Ordering::SeqCst);
    let (plain, plain_port) = start(&format!(".:0 {{\n forward . {}\n}}\n", up.addr)).await;
    ask_msg(&plain, plain_port, &q, Transport::Tcp).await;
    assert_eq!(up.state.tcp.load(Ordering::SeqCst), before + 1);
    let udp_before = up.state.udp.load(Ordering::SeqCst);
    let (pref, pref_port) = start(&format!(
        ".:0 {{\n forward . {} {{\n  prefer_udp\n }}\n}}\n",
        up.addr
    ))
    .await;
    ask_msg(&pref, pref_port, &q, Transport::Tcp).await;
    assert_eq!(up.state.udp.load(Ordering::SeqCst), udp_before + 1);
    assert_eq!(up.state.tcp.load(Ordering::SeqCst), before + 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_cache_evicts_and_counts_it() {
    let up = FakeUpstream::start(A1).await;
    let (running, port) = start(&format!(
        ".:0 {{\n cache {{\n  success 64\n }}\n forward . {}\n}}\n",
        up.addr
    ))
    .await;
    for i in 0..300 {
        ask(&running, port, &format!("v{i}.example."), RecordType::A).await;
    }
    // Exactly the capacity is held, however the names fell into shards; every name past it
    // evicted one.
    let entries = metric(&running, "coredns_cache_entries", &["type=\"success\""]);
    assert_eq!(entries, 64.0);
    let evictions = metric(
        &running,
        "coredns_cache_evictions_total",
        &["type=\"success\""],
    );
    assert_eq!(evictions, 236.0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_external_name_outside_the_cluster_is_followed_through_forward() {
    let up = FakeUpstream::start(A2).await;
    let objects = support::root().join("deploy/local/cluster.yaml");
    let (running, port) = start(&format!(
        ".:0 {{\n kubernetes cluster.local {{\n  objects {}\n }}\n forward . {}\n}}\n",
        objects.display(),
        up.addr
    ))
    .await;
    let m = ask(
        &running,
        port,
        "payments-api.shop.svc.cluster.local.",
        RecordType::A,
    )
    .await;
    let got: Vec<String> = m.answers.iter().map(support::fmt_record).collect();
    assert_eq!(
        got,
        [
            "payments-api.shop.svc.cluster.local. 5 IN CNAME api.payments.example.com.",
            "api.payments.example.com. 60 IN A 192.0.2.2",
        ]
    );
    let sent = Message::from_vec(&up.state.last.lock().unwrap().clone().unwrap()).unwrap();
    assert_eq!(
        sent.queries[0].name().to_string(),
        "api.payments.example.com."
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn loadbalance_shuffles_addresses_and_leaves_a_single_one() {
    let up = FakeUpstream::start(A1).await;
    let objects = support::root().join("deploy/local/cluster.yaml");
    let corefile = |lb: &str| {
        format!(
            ".:0 {{\n{lb} kubernetes cluster.local {{\n  objects {}\n }}\n forward . {}\n}}\n",
            objects.display(),
            up.addr
        )
    };
    let (running, port) = start(&corefile(" loadbalance round_robin\n")).await;
    let mut firsts = std::collections::BTreeSet::new();
    for _ in 0..60 {
        let m = ask(
            &running,
            port,
            "POSTGRES-PEERS.db.svc.cluster.local.",
            RecordType::A,
        )
        .await;
        let mut got = addresses(&m);
        assert_eq!(
            m.answers[0].name.to_string(),
            "POSTGRES-PEERS.db.svc.cluster.local."
        );
        firsts.insert(got[0].clone());
        got.sort();
        assert_eq!(got, ["10.244.1.30", "10.244.2.31", "10.244.3.32"]);
    }
    assert_eq!(
        firsts.len(),
        3,
        "each endpoint comes first sometimes: {firsts:?}"
    );
    // One address: left as it is.
    let m = ask(
        &running,
        port,
        "kubernetes.default.svc.cluster.local.",
        RecordType::A,
    )
    .await;
    assert_eq!(addresses(&m), ["10.96.0.1"]);
    // Without loadbalance, the order is the index's, every time.
    let (plain, plain_port) = start(&corefile("")).await;
    let mut orders = std::collections::BTreeSet::new();
    for _ in 0..20 {
        let m = ask(
            &plain,
            plain_port,
            "postgres-peers.db.svc.cluster.local.",
            RecordType::A,
        )
        .await;
        orders.insert(addresses(&m));
    }
    assert_eq!(orders.len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cached_cluster_alias_is_not_refreshed_behind_the_client() {
    // An ExternalName's answer is followed through forward. A background refresh could not
    // follow it, so cluster names are left out of prefetch (their entries go on a change).
    let up = FakeUpstream::start(A2).await;
    let objects = support::root().join("deploy/local/cluster.yaml");
    let (running, port) = start(&format!(
        ".:0 {{\n cache {{\n  success 1024 3 1\n  prefetch 1 1m 90%\n }}\n kubernetes cluster.local {{\n  objects {}\n }}\n forward . {}\n}}\n",
        objects.display(),
        up.addr
    ))
    .await;
    for _ in 0..4 {
        let m = ask(
            &running,
            port,
            "payments-api.shop.svc.cluster.local.",
            RecordType::A,
        )
        .await;
        assert_eq!(m.answers.len(), 2, "{:?}", m.answers);
        assert_eq!(addresses(&m), ["192.0.2.2"]);
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(metric(&running, "coredns_cache_prefetch_total", &[]), 0.0);
}
