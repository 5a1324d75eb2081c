//! Abusive TCP clients: idle, too many, pipelined, lying, never reading; and a slow answer
//! among fast ones on one connection. The server closes what
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

/// A connection from `from` (a loopback address: each is a source of its own) that has been
/// answered once.
async fn answered_from(from: [u8; 4], to: std::net::SocketAddr) -> TcpStream {
    let sock = tokio::net::TcpSocket::new_v4().unwrap();
    sock.bind((std::net::Ipv4Addr::from(from), 0).into())
        .unwrap();
    let mut s = sock.connect(to).await.unwrap();
    let (_, q) = framed("kubernetes.default.svc.cluster.local.");
    s.write_all(&q).await.unwrap();
    assert!(
        read_answer(&mut s).await.is_some(),
        "not answered from {from:?}"
    );
    s
}

fn evicted(running: &App, reason: &str) -> f64 {
    let m = String::from_utf8(running.metrics().render()).unwrap();
    m.lines()
        .filter(|l| l.starts_with("clusterdns_tcp_evicted_total{") && l.contains(reason))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

/// At the bounds, the longest-idle connection is closed to make room, and the new one is
/// answered: a client holding many idle connections recycles its own (per source) and the
/// listener's (in all), and never denies TCP to another.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn at_the_bounds_the_longest_idle_connection_makes_room() {
    let running = start(Limits {
        max_tcp_connections: 5,
        max_tcp_per_source: 3,
        ..Limits::default()
    })
    .await;
    let addr = running.listeners()[0].tcp;
    // One source, five connections: its own two longest-idle are closed for the last two.
    let mut a = Vec::new();
    for _ in 0..5 {
        a.push(answered_from([127, 0, 0, 1], addr).await);
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    for s in &mut a[..2] {
        assert!(closed_by_server(s, Duration::from_secs(2)).await);
    }
    assert_eq!(evicted(&running, "source"), 2.0);
    // Another source fills the listener: the longest-idle of all goes, not the newcomer.
    let mut b = Vec::new();
    for _ in 0..3 {
        b.push(answered_from([127, 0, 0, 2], addr).await);
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    assert!(closed_by_server(&mut a[2], Duration::from_secs(2)).await);
    assert_eq!(evicted(&running, "full"), 1.0);
    // The ones still open are answered on.
    for s in a[3..].iter_mut().chain(b.iter_mut()) {
        let (_, q) = framed("frontend.shop.svc.cluster.local.");
        s.write_all(&q).await.unwrap();
        assert!(read_answer(s).await.is_some());
    }
    // UDP is not affected by the TCP bounds.
    still_answers(&running).await;
    running.shutdown().await;
}

/// The case: one client holds 1,100 idle connections (more than the old fixed cap of
/// 1,024); another client's TCP query is answered, and so is a new one from the first.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_client_with_1100_idle_connections_denies_nobody() {
    raise_fd_limit(4096);
    let running = start(Limits::default()).await;
    let addr = running.listeners()[0].tcp;
    let mut held = Vec::new();
    for _ in 0..1100 {
        held.push(TcpStream::connect(addr).await.unwrap());
    }
    answered_from([127, 0, 0, 3], addr).await;
    answered_from([127, 0, 0, 1], addr).await;
    // The first client's share is 1,024: its longest-idle ones were closed to make room.
    assert!(evicted(&running, "source") >= 77.0);
    drop(held);
    running.shutdown().await;
}

/// Raises this process's soft limit on open files to at least `n` (within the hard limit).
fn raise_fd_limit(n: u64) {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit and setrlimit touch only the struct they are given.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) == 0 && lim.rlim_cur < n {
            lim.rlim_cur = n.min(lim.rlim_max);
            libc::setrlimit(libc::RLIMIT_NOFILE, &lim);
        }
    }
}

/// Pipelined queries on one connection are all answered, each with its own ID.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pipelined_queries_are_all_answered() {
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
    let mut want = std::collections::BTreeMap::new();
    for (i, n) in names.iter().enumerate() {
        let mut q = support::query(n, RecordType::A, None);
        q.metadata.id = 100 + i as u16;
        let bytes = q.to_vec().unwrap();
        all.extend((bytes.len() as u16).to_be_bytes());
        all.extend(bytes);
        want.insert(100 + i as u16, n.to_string());
    }
    s.write_all(&all).await.unwrap(); // one write, four queries
    let mut got = std::collections::BTreeMap::new();
    for _ in names {
        let m = read_answer(&mut s).await.expect("an answer");
        got.insert(m.metadata.id, m.queries[0].name().to_ascii());
    }
    assert_eq!(got, want);
    running.shutdown().await;
}

/// RFC 7766 6.2.1.1: a query waiting on a slow upstream does not hold the answers behind it
/// on the same connection. One connection: a name the upstream answers after a second, then
/// 100 cluster names; the 100 arrive first.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_answer_does_not_hold_the_ones_behind_it() {
    let up = crate::upstream::FakeUpstream::start(std::net::Ipv4Addr::new(192, 0, 2, 7)).await;
    up.state
        .set_mode(crate::upstream::Mode::Slow(Duration::from_secs(1)));
    let objects = support::root().join("deploy/local/cluster.yaml");
    let corefile = format!(
        ".:0 {{\n    kubernetes cluster.local {{\n        objects {}\n    }}\n    forward . {}\n}}\n",
        objects.display(),
        up.addr
    );
    let running = support::start(&support::root().join("Corefile"), &corefile).await;
    support::until_ready(&running).await;
    let mut s = TcpStream::connect(running.listeners()[0].tcp)
        .await
        .unwrap();
    let mut all = Vec::new();
    let mut push = |name: &str, id: u16| {
        let mut q = support::query(name, RecordType::A, None);
        q.metadata.id = id;
        let bytes = q.to_vec().unwrap();
        all.extend((bytes.len() as u16).to_be_bytes());
        all.extend(bytes);
    };
    push("slow.example.org.", 1);
    for i in 0..100u16 {
        push("kubernetes.default.svc.cluster.local.", 1000 + i);
    }
    s.write_all(&all).await.unwrap();
    let mut order = Vec::new();
    for _ in 0..101 {
        let mut len = [0u8; 2];
        tokio::time::timeout(Duration::from_secs(5), s.read_exact(&mut len))
            .await
            .expect("an answer in time")
            .unwrap();
        let mut buf = vec![0u8; u16::from_be_bytes(len) as usize];
        s.read_exact(&mut buf).await.unwrap();
        order.push(Message::from_vec(&buf).unwrap().metadata.id);
    }
    assert_eq!(order.last(), Some(&1), "{order:?}");
    let mut cluster: Vec<u16> = order[..100].to_vec();
    cluster.sort_unstable();
    assert_eq!(cluster, (1000..1100).collect::<Vec<u16>>());
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
