//! Malformed and unusual packets over real sockets: each gets the right answer or silence,
//! and the server keeps answering afterwards.

use hickory_proto::op::{Edns, Message, OpCode};
use std::net::SocketAddr;

use hickory_proto::rr::{Record, RecordType};

use clusterdns::app::App;
use clusterdns::plugin::Transport;

use crate::support::{self, rcode_name};

async fn demo() -> std::sync::Arc<App> {
    support::demo().await
}

fn good_query() -> Vec<u8> {
    support::query("kubernetes.default.svc.cluster.local.", RecordType::A, None)
        .to_vec()
        .unwrap()
}

async fn still_answers(running: &App, how: Transport) {
    let port = running.listeners()[0].port;
    let bytes = support::ask(running, port, &good_query(), how)
        .await
        .expect("answer");
    let msg = Message::from_vec(&bytes).unwrap();
    assert_eq!(msg.answers.len(), 1);
}

/// The id and flags of a query, then a question section as given.
fn raw(id: u16, flags: u16, qdcount: u16, arcount: u16, body: &[u8]) -> Vec<u8> {
    let mut v = Vec::new();
    for x in [id, flags, qdcount, 0, 0, arcount] {
        v.extend_from_slice(&x.to_be_bytes());
    }
    v.extend_from_slice(body);
    v
}

/// `kubernetes.default.svc.cluster.local. IN A` as wire bytes.
fn question() -> Vec<u8> {
    let mut v = Vec::new();
    for label in ["kubernetes", "default", "svc", "cluster", "local"] {
        v.push(label.len() as u8);
        v.extend_from_slice(label.as_bytes());
    }
    v.extend_from_slice(&[0, 0, 1, 0, 1]);
    v
}

fn opt(version: u8) -> Vec<u8> {
    // root name, type OPT, class = 1232, ttl = extended rcode 0 | version | flags 0, rdlen 0
    vec![0, 0, 41, 0x04, 0xd0, 0, version, 0, 0, 0, 0]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_packets_get_formerr_or_silence() {
    let running = demo().await;
    let port = running.listeners()[0].port;
    let two = [question(), question()].concat();
    let mut long_label = vec![64u8];
    long_label.extend(std::iter::repeat_n(b'a', 64));
    long_label.extend_from_slice(&[0, 0, 1, 0, 1]);
    let pointer_loop = vec![0xc0, 12, 0, 1, 0, 1];
    let forward_pointer = vec![0xc0, 20, 0, 1, 0, 1, 1, b'a', 0];
    let mut too_long = Vec::new();
    for _ in 0..130 {
        too_long.extend_from_slice(&[1, b'a']);
    }
    too_long.extend_from_slice(&[0, 0, 1, 0, 1]);
    let table: Vec<(&str, Vec<u8>, Option<&str>)> = vec![
        ("a truncated header", vec![0x12, 0x34, 0x01], None),
        ("QDCOUNT 0", raw(1, 0x0100, 0, 0, &[]), Some("FORMERR")),
        ("QDCOUNT 2", raw(2, 0x0100, 2, 0, &two), Some("FORMERR")),
        (
            "QDCOUNT 65535",
            raw(3, 0x0100, 65535, 0, &question()),
            Some("FORMERR"),
        ),
        (
            "a label over 63 octets",
            raw(4, 0x0100, 1, 0, &long_label),
            Some("FORMERR"),
        ),
        (
            "a name over 255 octets",
            raw(5, 0x0100, 1, 0, &too_long),
            Some("FORMERR"),
        ),
        (
            "a compression pointer loop",
            raw(6, 0x0100, 1, 0, &pointer_loop),
            Some("FORMERR"),
        ),
        (
            "a forward compression pointer",
            raw(7, 0x0100, 1, 0, &forward_pointer),
            Some("FORMERR"),
        ),
        (
            "a question cut short",
            raw(8, 0x0100, 1, 0, &question()[..10]),
            Some("FORMERR"),
        ),
        (
            "QR set (a response)",
            raw(9, 0x8100, 1, 0, &question()),
            None,
        ),
        (
            "opcode STATUS",
            raw(10, 0x1100, 1, 0, &question()),
            Some("NOTIMP"),
        ),
        (
            "EDNS version 1",
            raw(11, 0x0100, 1, 1, &[question(), opt(1)].concat()),
            Some("BADVERS"),
        ),
        (
            "two OPT records",
            raw(12, 0x0100, 1, 2, &[question(), opt(0), opt(0)].concat()),
            Some("FORMERR"),
        ),
    ];
    for how in [Transport::Udp, Transport::Tcp] {
        for (what, bytes, want) in &table {
            let got = support::ask(&running, port, bytes, how).await;
            match (want, got) {
                (None, None) => {}
                (None, Some(b)) => panic!("{what} over {how:?}: expected silence, got {b:?}"),
                (Some(_), None) => panic!("{what} over {how:?}: no answer"),
                (Some(want), Some(b)) => {
                    let msg = Message::from_vec(&b).unwrap_or_else(|e| panic!("{what}: {e}"));
                    assert_eq!(
                        rcode_name(msg.metadata.response_code),
                        *want,
                        "{what} over {how:?}"
                    );
                    assert_eq!(
                        msg.metadata.id,
                        u16::from_be_bytes([bytes[0], bytes[1]]),
                        "{what}"
                    );
                }
            }
            still_answers(&running, how).await;
        }
    }
    running.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unusual_queries() {
    let running = demo().await;
    let port = running.listeners()[0].port;
    let ask = |name: &str, t: RecordType| support::query(name, t, Some(1232));
    // Zone transfers are refused: none is configured.
    for t in [RecordType::AXFR, RecordType::IXFR] {
        let q = ask("cluster.local.", t).to_vec().unwrap();
        let b = support::ask(&running, port, &q, Transport::Tcp)
            .await
            .unwrap();
        assert_eq!(
            rcode_name(Message::from_vec(&b).unwrap().metadata.response_code),
            "REFUSED"
        );
    }
    // Unknown opcodes.
    let mut q = ask("cluster.local.", RecordType::SOA);
    q.metadata.op_code = OpCode::Update;
    let b = support::ask(&running, port, &q.to_vec().unwrap(), Transport::Udp)
        .await
        .unwrap();
    assert_eq!(
        rcode_name(Message::from_vec(&b).unwrap().metadata.response_code),
        "NOTIMP"
    );
    // A payload size under 512 is read as 512; the answer carries OPT and DO is echoed.
    let mut q = ask("kubernetes.default.svc.cluster.local.", RecordType::A);
    let mut e = Edns::new();
    e.set_max_payload(100);
    e.set_dnssec_ok(true);
    q.edns = Some(e);
    let b = support::ask(&running, port, &q.to_vec().unwrap(), Transport::Udp)
        .await
        .unwrap();
    let m = Message::from_vec(&b).unwrap();
    let edns = m.edns.expect("OPT in the answer");
    assert_eq!(edns.max_payload(), 512);
    assert!(edns.flags().dnssec_ok);
    assert_eq!(m.answers.len(), 1);
    // ANY is answered minimally (RFC 8482): one RRset, even where the name has two.
    for (name, want) in [
        ("kubernetes.default.svc.cluster.local.", RecordType::A),
        ("frontend.shop.svc.cluster.local.", RecordType::A),
    ] {
        let q = ask(name, RecordType::ANY);
        let b = support::ask(&running, port, &q.to_vec().unwrap(), Transport::Tcp)
            .await
            .unwrap();
        let m = Message::from_vec(&b).unwrap();
        let types: std::collections::BTreeSet<RecordType> =
            m.answers.iter().map(|r| r.record_type()).collect();
        assert_eq!(types.into_iter().collect::<Vec<_>>(), [want], "ANY {name}");
    }
    // An unknown type and an unknown class.
    let q = ask(
        "kubernetes.default.svc.cluster.local.",
        RecordType::Unknown(65280),
    );
    let b = support::ask(&running, port, &q.to_vec().unwrap(), Transport::Udp)
        .await
        .unwrap();
    let m = Message::from_vec(&b).unwrap();
    assert_eq!(
        (
            rcode_name(m.metadata.response_code).as_str(),
            m.answers.len()
        ),
        ("NOERROR", 0)
    );
    let mut q = ask("kubernetes.default.svc.cluster.local.", RecordType::A);
    q.queries[0].query_class = hickory_proto::rr::DNSClass::CH;
    let b = support::ask(&running, port, &q.to_vec().unwrap(), Transport::Udp)
        .await
        .unwrap();
    assert_eq!(
        rcode_name(Message::from_vec(&b).unwrap().metadata.response_code),
        "SERVFAIL"
    );
    running.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn large_answers_set_tc_over_udp_and_arrive_whole_over_tcp() {
    let dir = tempfile::tempdir().unwrap();
    let mut objs = String::from(
        "apiVersion: v1\nkind: List\nitems:\n- {apiVersion: v1, kind: Namespace, metadata: {name: big}}\n- apiVersion: v1\n  kind: Service\n  metadata: {name: many, namespace: big}\n  spec: {clusterIP: None}\n- apiVersion: discovery.k8s.io/v1\n  kind: EndpointSlice\n  metadata: {name: many-1, namespace: big, labels: {kubernetes.io/service-name: many}}\n  addressType: IPv4\n  endpoints:\n",
    );
    for i in 0..100 {
        objs.push_str(&format!("  - addresses: [10.50.0.{i}]\n"));
    }
    std::fs::write(dir.path().join("objs.yaml"), objs).unwrap();
    let corefile = ".:0 {\n kubernetes cluster.local {\n  objects objs.yaml\n }\n}\n";
    let running = support::start(&dir.path().join("Corefile"), corefile).await;
    let port = running.listeners()[0].port;
    let name = "many.big.svc.cluster.local.";
    for (edns, how, tc, max) in [
        (None, Transport::Udp, true, 512),
        (Some(1232), Transport::Udp, true, 1232),
        (Some(4096), Transport::Udp, false, 4096),
        (None, Transport::Tcp, false, 65535),
    ] {
        let q = support::query(name, RecordType::A, edns).to_vec().unwrap();
        let b = support::ask(&running, port, &q, how).await.unwrap();
        assert!(
            b.len() <= max,
            "{} bytes over {how:?} with {edns:?}",
            b.len()
        );
        let m = Message::from_vec(&b).unwrap();
        assert_eq!(m.metadata.truncation, tc, "{how:?} {edns:?}");
        if tc {
            // As many whole records as fit: header, question, 16 bytes an A record (its owner
            // a pointer), and room for the OPT record.
            let question = name.len() + 1 + 4;
            let opt = if edns.is_some() { 11 } else { 0 };
            let fit = (max - 12 - question - opt) / 16;
            assert_eq!(m.answers.len(), fit, "{how:?} {edns:?}");
        } else {
            assert_eq!(m.answers.len(), 100, "{how:?} {edns:?}");
        }
    }
    running.shutdown().await;
}

/// A truncated answer is the same whichever path writes it: the fast path, the chain, and a
/// cache in front (a hit is written from what the cache kept, not from the cluster).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_truncated_answer_is_the_same_on_every_path() {
    let dir = tempfile::tempdir().unwrap();
    let mut objs = String::from(
        "apiVersion: v1\nkind: List\nitems:\n- {apiVersion: v1, kind: Namespace, metadata: {name: default}}\n- apiVersion: v1\n  kind: Service\n  metadata: {name: big, namespace: default}\n  spec: {clusterIP: None, ports: [{name: http, port: 80, protocol: TCP}]}\n- apiVersion: discovery.k8s.io/v1\n  kind: EndpointSlice\n  metadata: {name: big-1, namespace: default, labels: {kubernetes.io/service-name: big}}\n  addressType: IPv4\n  ports: [{name: http, port: 80, protocol: TCP}]\n  endpoints:\n",
    );
    for i in 0..60 {
        objs.push_str(&format!("  - addresses: [10.60.0.{i}]\n"));
    }
    std::fs::write(dir.path().join("objs.yaml"), objs).unwrap();
    let plain = ".:0 {\n kubernetes cluster.local {\n  objects objs.yaml\n }\n}\n";
    let keep = ".:0 {\n cache 30 {\n  keepttl\n }\n kubernetes cluster.local {\n  objects objs.yaml\n }\n}\n";
    let aging = ".:0 {\n cache 30\n kubernetes cluster.local {\n  objects objs.yaml\n }\n}\n";
    let corefile = dir.path().join("Corefile");
    let (plain, keep, aging) = (
        support::start(&corefile, plain).await,
        support::start(&corefile, keep).await,
        support::start(&corefile, aging).await,
    );
    let src = SocketAddr::new(support::LOCALHOST, 40000);
    for (name, qtype) in [
        ("big.default.svc.cluster.local.", RecordType::A),
        ("BIG.Default.svc.cluster.local.", RecordType::A),
        ("_http._tcp.big.default.svc.cluster.local.", RecordType::SRV),
    ] {
        for edns in [None, Some(512), Some(1232)] {
            let what = format!("{name} {qtype} {edns:?}");
            let q = support::query(name, qtype, edns).to_vec().unwrap();
            let router = plain.router(plain.listeners()[0].port).unwrap();
            let mut fast = Vec::new();
            assert!(
                router.answer_fast(&q, src, Transport::Udp, &mut fast),
                "{what}: the fast path takes it"
            );
            let general = router
                .handle_bytes_general(&q, src, Transport::Udp)
                .await
                .unwrap();
            assert_eq!(fast, general, "{what}: fast and general paths");
            let m = Message::from_vec(&fast).unwrap();
            // 60 A records fit in 1232 bytes; nothing else here does.
            let whole = qtype == RecordType::A && edns == Some(1232);
            assert_eq!(m.metadata.truncation, !whole, "{what}: TC");
            assert!(!m.answers.is_empty(), "{what}: what fits is kept");
            assert_eq!(m.answers.len() == 60, whole, "{what}: {}", m.answers.len());
            // Over UDP the wire is the same too.
            let port = plain.listeners()[0].port;
            let sent = support::ask(&plain, port, &q, Transport::Udp)
                .await
                .unwrap();
            assert_eq!(sent, fast, "{what}: over UDP");

            let port = keep.listeners()[0].port;
            let miss = support::ask(&keep, port, &q, Transport::Udp).await.unwrap();
            let hit = support::ask(&keep, port, &q, Transport::Udp).await.unwrap();
            assert_eq!(miss, fast, "{what}: through the cache, a miss");
            assert_eq!(hit, fast, "{what}: through the cache, a hit (keepttl)");

            // A cache that ages its TTLs writes the same records; only the TTLs may differ.
            let port = aging.listeners()[0].port;
            let _ = support::ask(&aging, port, &q, Transport::Udp)
                .await
                .unwrap();
            let hit = support::ask(&aging, port, &q, Transport::Udp)
                .await
                .unwrap();
            assert_eq!(hit.len(), fast.len(), "{what}: an aged hit's size");
            let strip = |b: &[u8]| {
                let m = Message::from_vec(b).unwrap();
                let names = |rs: &[Record]| -> Vec<String> {
                    rs.iter()
                        .map(|r| format!("{} {}", r.name, r.data))
                        .collect()
                };
                (
                    m.metadata.truncation,
                    names(&m.answers),
                    names(&m.additionals),
                )
            };
            assert_eq!(strip(&hit), strip(&fast), "{what}: an aged hit's records");
        }
    }
    // Over TCP, every record.
    let q = support::query("big.default.svc.cluster.local.", RecordType::A, None)
        .to_vec()
        .unwrap();
    for running in [&plain, &keep, &aging] {
        let port = running.listeners()[0].port;
        let b = support::ask(running, port, &q, Transport::Tcp)
            .await
            .unwrap();
        let m = Message::from_vec(&b).unwrap();
        assert!(!m.metadata.truncation);
        assert_eq!(m.answers.len(), 60);
    }
    for running in [plain, keep, aging] {
        running.shutdown().await;
    }
}

/// The UDP loop reads and answers datagrams in batches (`recvmmsg`, `sendmmsg`): a burst from
/// one socket, fast-path and general-path queries mixed, gets every answer, each under its own
/// ID and with its own records.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_burst_of_queries_gets_every_answer_under_its_own_id() {
    let running = demo().await;
    let to = running.listeners()[0].udp;
    let sock = std::sync::Arc::new(
        tokio::net::UdpSocket::bind((support::LOCALHOST, 0))
            .await
            .unwrap(),
    );
    // The cluster names' A and AAAA take the fast path; the apex SOA takes the general one.
    let kinds = [
        ("kubernetes.default.svc.cluster.local.", RecordType::A, 1),
        ("cluster.local.", RecordType::SOA, 1),
        ("kube-dns.kube-system.svc.cluster.local.", RecordType::A, 1),
        ("kubernetes.default.svc.cluster.local.", RecordType::AAAA, 0),
    ];
    const N: u16 = 120;
    let reader = tokio::spawn({
        let sock = sock.clone();
        async move {
            let mut got = std::collections::BTreeMap::new();
            let mut buf = vec![0u8; 65535];
            while got.len() < usize::from(N) {
                let read =
                    tokio::time::timeout(std::time::Duration::from_secs(5), sock.recv(&mut buf))
                        .await;
                let Ok(Ok(n)) = read else { break };
                let msg = Message::from_vec(&buf[..n]).unwrap();
                got.insert(msg.metadata.id, msg);
            }
            got
        }
    });
    for id in 0..N {
        let (name, qtype, _) = kinds[usize::from(id) % kinds.len()];
        let mut q = support::query(name, qtype, Some(1232));
        q.metadata.id = id;
        sock.send_to(&q.to_vec().unwrap(), to).await.unwrap();
    }
    let got = reader.await.unwrap();
    assert_eq!(got.len(), usize::from(N), "answers missing");
    for (id, msg) in &got {
        let (name, qtype, answers) = kinds[usize::from(*id) % kinds.len()];
        assert_eq!(msg.queries[0].name().to_string(), name, "id {id}");
        assert_eq!(msg.queries[0].query_type(), qtype, "id {id}");
        assert_eq!(rcode_name(msg.metadata.response_code), "NOERROR", "id {id}");
        assert_eq!(msg.answers.len(), answers, "id {id}: {name} {qtype}");
        assert!(msg.answers.iter().all(|r| r.record_type() == qtype));
    }
    running.shutdown().await;
}

/// A datagram is read up to 4096 bytes: a longer query is cut there, and the cut message is
/// malformed (FORMERR, under its ID). The same query over TCP is whole and answered.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_query_longer_than_4096_bytes_is_formerr_over_udp_and_answered_over_tcp() {
    let running = demo().await;
    let port = running.listeners()[0].port;
    // An OPT record carrying 5,000 bytes of EDNS padding (option 12).
    let pad = 5000u16;
    let mut opt = vec![0, 0, 41, 0x04, 0xd0, 0, 0, 0, 0];
    opt.extend_from_slice(&(pad + 4).to_be_bytes());
    opt.extend_from_slice(&12u16.to_be_bytes());
    opt.extend_from_slice(&pad.to_be_bytes());
    opt.extend(std::iter::repeat_n(0u8, usize::from(pad)));
    let bytes = raw(0x4242, 0x0100, 1, 1, &[question(), opt].concat());
    assert!(bytes.len() > 5000);
    for (how, want, answers) in [
        (Transport::Udp, "FORMERR", 0),
        (Transport::Tcp, "NOERROR", 1),
    ] {
        let b = support::ask(&running, port, &bytes, how)
            .await
            .unwrap_or_else(|| panic!("no answer over {how:?}"));
        let msg = Message::from_vec(&b).unwrap();
        assert_eq!(msg.metadata.id, 0x4242, "{how:?}");
        assert_eq!(rcode_name(msg.metadata.response_code), want, "{how:?}");
        assert_eq!(msg.answers.len(), answers, "{how:?}");
        still_answers(&running, how).await;
    }
    running.shutdown().await;
}

/// kubeadm's chain (errors, loadbalance, cache with cluster.local disabled, kubernetes, loop,
/// forward): a cluster name is answered on the fast path through the plugins in front of
/// `kubernetes`, unless one of them would change the answer (`loadbalance` shuffling two
/// addresses) or keep it (`cache`, for a name it is not told to leave alone); with `log`, never.
/// That the bytes are the general path's is the case battery's `stock.yaml`.
#[tokio::test]
async fn the_fast_path_answers_through_kubeadms_chain() {
    let objects = support::root().join("deploy/local/cluster.yaml");
    let chain = |log: &str| {
        format!(
            ".:0 {{\n    errors\n{log}    kubernetes cluster.local in-addr.arpa ip6.arpa {{\n        objects {}\n        pods insecure\n        fallthrough in-addr.arpa ip6.arpa\n        ttl 30\n    }}\n    forward . 127.0.0.1:9\n    cache 30 {{\n        disable success cluster.local\n        disable denial cluster.local\n    }}\n    loop\n    reload\n    loadbalance\n}}\n",
            objects.display()
        )
    };
    let src = SocketAddr::from(([127, 0, 0, 1], 40000));
    for (log, fast_at_all) in [("", true), ("    log\n", false)] {
        let corefile = chain(log);
        let running = support::start(&support::root().join("Corefile"), &corefile).await;
        let port = running.listeners()[0].port;
        let router = running.router(port).unwrap();
        for (name, qtype, fast) in [
            ("kubernetes.default.svc.cluster.local.", RecordType::A, true),
            (
                "kubernetes.default.svc.cluster.local.",
                RecordType::AAAA,
                true,
            ),
            ("nosuch.default.svc.cluster.local.", RecordType::A, true),
            (
                "postgres-0.postgres.db.svc.cluster.local.",
                RecordType::A,
                true,
            ),
            // Two addresses: loadbalance shuffles them.
            ("postgres.db.svc.cluster.local.", RecordType::A, false),
            // Not disabled in the cache, and not kept yet.
            ("1.0.96.10.in-addr.arpa.", RecordType::PTR, false),
        ] {
            let q = support::query(name, qtype, None).to_vec().unwrap();
            let mut out = Vec::new();
            assert_eq!(
                router.answer_fast(&q, src, Transport::Udp, &mut out),
                fast && fast_at_all,
                "{name} {qtype} with {log:?}"
            );
        }
        // Once the general path has kept the PTR, the cache sends it on the fast path.
        let q = support::query("1.0.96.10.IN-addr.arpa.", RecordType::PTR, None)
            .to_vec()
            .unwrap();
        let kept = router.handle_bytes_general(&q, src, Transport::Udp).await;
        let mut out = Vec::new();
        assert_eq!(
            router.answer_fast(&q, src, Transport::Udp, &mut out),
            fast_at_all,
            "a kept PTR with {log:?}"
        );
        if fast_at_all {
            assert!(support::same_but_a_second(&kept.unwrap(), &out));
        }
        running.shutdown().await;
    }
}
