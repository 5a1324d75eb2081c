//! Abusive TCP clients: idle, too many, pipelined, lying, never reading. The server closes what
//! it must and keeps answering everyone else.

use std::sync::Arc;
use std::time::{Duration, Instant};

use hickory_proto::op::Message;
use hickory_proto::rr::RecordType;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use clusterdns::app::App;
use clusterdns::plugin::Transport;
use clusterdns::server::listen::Limits;

use crate::support;

async fn start(limits: Limits) -> Arc<App> {
    support::demo_with(limits).await
}

fn framed(name: &str) -> (u16, Vec<u8>) {
    let q = support::query(name, RecordType::A, None);
    let bytes = q.to_vec().unwrap();
    let mut out = (bytes.len() as u16).to_be_bytes().to_vec();
    out.extend_from_slice(&bytes);
    (q.metadata.id, out)
}

async fn read_answer(s: &mut TcpStream) -> Option<Message> {
    let mut len = [0u8; 2];
    tokio::time::timeout(Duration::from_secs(2), s.read_exact(&mut len))
        .await
        .ok()?
        .ok()?;
    let mut buf = vec![0u8; u16::from_be_bytes(len) as usize];
    s.read_exact(&mut buf).await.ok()?;
    Message::from_vec(&buf).ok()
}

/// Whether the server closed `s` (EOF or reset) within `within`.
async fn closed_by_server(s: &mut TcpStream, within: Duration) -> bool {
    let mut b = [0u8; 1];
    matches!(
        tokio::time::timeout(within, s.read(&mut b)).await,
        Ok(Ok(0)) | Ok(Err(_))
    )
}

async fn still_answers(running: &App) {
    let port = running.listeners()[0].port;
    for how in [Transport::Udp, Transport::Tcp] {
        let q = support::query("kubernetes.default.svc.cluster.local.", RecordType::A, None);
        let b = support::ask(running, port, &q.to_vec().unwrap(), how)
            .await
            .expect("others are answered");
        assert_eq!(Message::from_vec(&b).unwrap().answers.len(), 1);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_connections_are_closed() {
    let running = start(Limits {
        tcp_idle: Duration::from_millis(300),
        ..Limits::default()
    })
    .await;
    let addr = running.listeners()[0].tcp;
    let mut s = TcpStream::connect(addr).await.unwrap();
    // Active, it stays open across several idle periods' worth of time.
    let mut last = Instant::now();
    for _ in 0..4 {
        tokio::time::sleep(Duration::from_millis(150)).await;
        let (_, q) = framed("kubernetes.default.svc.cluster.local.");
        s.write_all(&q).await.unwrap();
        assert!(read_answer(&mut s).await.is_some());
        last = Instant::now();
    }
    // Idle, it is closed, one idle period after its last answer.
    assert!(closed_by_server(&mut s, Duration::from_secs(3)).await);
    assert!(
        last.elapsed() >= Duration::from_millis(250),
        "{:?}",
        last.elapsed()
    );
    still_answers(&running).await;
    running.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_beyond_the_cap_are_closed_until_one_frees() {
    let running = start(Limits {
        max_tcp_connections: 4,
        ..Limits::default()
    })
    .await;
    let addr = running.listeners()[0].tcp;
    let mut held = Vec::new();
    for _ in 0..4 {
        let mut s = TcpStream::connect(addr).await.unwrap();
        let (_, q) = framed("kubernetes.default.svc.cluster.local.");
        s.write_all(&q).await.unwrap();
        assert!(read_answer(&mut s).await.is_some());
        held.push(s);
    }
    let mut fifth = TcpStream::connect(addr).await.unwrap();
    assert!(
        closed_by_server(&mut fifth, Duration::from_secs(2)).await,
        "the fifth connection stayed open"
    );
    drop(held.pop());
    tokio::time::sleep(Duration::from_millis(100)).await;
    let mut s = TcpStream::connect(addr).await.unwrap();
    let (_, q) = framed("kubernetes.default.svc.cluster.local.");
    s.write_all(&q).await.unwrap();
    assert!(
        read_answer(&mut s).await.is_some(),
        "a freed slot is usable again"
    );
    // UDP is not affected by the TCP cap.
    let port = running.listeners()[0].port;
    let q = support::query("kubernetes.default.svc.cluster.local.", RecordType::A, None);
    assert!(
        support::ask(&running, port, &q.to_vec().unwrap(), Transport::Udp)
            .await
            .is_some()
    );
    running.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pipelined_queries_are_answered_in_order() {
    let running = start(Limits::default()).await;
    let mut s = TcpStream::connect(running.listeners()[0].tcp)
        .await
        .unwrap();
    let names = [
        "kubernetes.default.svc.cluster.local.",
        "frontend.shop.svc.cluster.local.",
        "nothing.default.svc.cluster.local.",
        "postgres.db.svc.cluster.local.",
    ];
    let mut all = Vec::new();
    let mut ids = Vec::new();
    for n in names {
        let (id, q) = framed(n);
        ids.push(id);
        all.extend(q);
    }
    s.write_all(&all).await.unwrap(); // one write, four queries
    for (id, name) in ids.iter().zip(names) {
        let m = read_answer(&mut s).await.expect("an answer");
        assert_eq!(m.metadata.id, *id);
        assert_eq!(m.queries[0].name().to_ascii(), name);
    }
    running.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_length_prefix_that_lies_costs_one_connection() {
    let running = start(Limits {
        tcp_io: Duration::from_millis(300),
        ..Limits::default()
    })
    .await;
    let mut s = TcpStream::connect(running.listeners()[0].tcp)
        .await
        .unwrap();
    let (_, q) = framed("kubernetes.default.svc.cluster.local.");
    let mut lie = 500u16.to_be_bytes().to_vec();
    lie.extend_from_slice(&q[2..]); // says 500 bytes, sends fewer
    s.write_all(&lie).await.unwrap();
    assert!(closed_by_server(&mut s, Duration::from_secs(3)).await);
    // A zero length closes at once.
    let mut s = TcpStream::connect(running.listeners()[0].tcp)
        .await
        .unwrap();
    s.write_all(&[0, 0]).await.unwrap();
    assert!(closed_by_server(&mut s, Duration::from_secs(1)).await);
    still_answers(&running).await;
    running.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_never_reads_is_cut_off() {
    let running = start(Limits {
        tcp_io: Duration::from_millis(300),
        ..Limits::default()
    })
    .await;
    let addr = running.listeners()[0].tcp;
    let s = TcpStream::connect(addr).await.unwrap();
    let (_, q) = framed("postgres-peers.db.svc.cluster.local.");
    let burst: Vec<u8> = q.iter().copied().cycle().take(q.len() * 2000).collect();
    // Write queries and never read: once the buffers fill, the server gives up on us.
    let writer = tokio::spawn(async move {
        let mut s = s;
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            if s.write_all(&burst).await.is_err() {
                return true;
            }
        }
        false
    });
    tokio::time::sleep(Duration::from_millis(200)).await;
    still_answers(&running).await;
    assert!(
        writer.await.unwrap(),
        "the server kept a client that never reads"
    );
    still_answers(&running).await;
    running.shutdown().await;
}

/// `shed` (CoreDNS 1.14) is how the UDP loop always works: queries off the fast path in flight
/// are bounded per port, and a query past the bound is dropped before any plugin runs and
/// counted in `coredns_shed_dropped_total{server, reason="query"}`; what the fast path answers
/// is not held up meanwhile.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn queries_past_the_bound_in_flight_are_shed_and_counted() {
    use std::net::Ipv4Addr;

    let up = crate::upstream::FakeUpstream::start(Ipv4Addr::new(192, 0, 2, 7)).await;
    up.state
        .set_mode(crate::upstream::Mode::Slow(Duration::from_secs(3)));
    let dir = tempfile::tempdir().unwrap();
    let objects = support::root().join("deploy/local/cluster.yaml");
    let corefile = format!(
        ".:0 {{\n    shed\n    kubernetes cluster.local {{\n        objects {}\n    }}\n    forward . {}\n}}\n",
        objects.display(),
        up.addr
    );
    let limits = Limits {
        max_udp_inflight: 2,
        ..Limits::default()
    };
    let running = support::start_with(&dir.path().join("Corefile"), &corefile, limits).await;
    support::until_ready(&running).await;
    let to = running.listeners()[0].udp;
    // Five names for the slow upstream: two take the slots, three are shed.
    let sock = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
    for i in 0..5 {
        let q = support::query(&format!("slow{i}.example.org."), RecordType::A, None)
            .to_vec()
            .unwrap();
        sock.send_to(&q, to).await.unwrap();
    }
    let metrics = || String::from_utf8(running.metrics().render()).unwrap();
    let shed = |text: &str| {
        text.lines()
            .find(|l| {
                l.starts_with("coredns_shed_dropped_total{") && l.contains("reason=\"query\"")
            })
            .and_then(|l| l.rsplit(' ').next())
            .and_then(|v| v.parse::<u64>().ok())
    };
    let deadline = Instant::now() + Duration::from_secs(10);
    while shed(&metrics()) != Some(3) {
        assert!(Instant::now() < deadline, "{}", metrics());
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // The cluster's names are answered all the while, on the fast path.
    still_answers(&running).await;
    running.close().await;
}
