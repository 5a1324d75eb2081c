//! Bytes → an upstream's answer to a forwarded query, through `forward` and `cache` to the client.
//! The input is the answer's header (12 bytes) and its sections; the harness puts the forwarded
//! question between them, so every input answers the question that was asked and the fuzzer
//! spends its time on the records.
//! Properties: no panic; every answer to the client parses back, echoes its ID, and fits its UDP
//! size; asking again (a cache hit, when the answer was kept) holds to the same.
#![no_main]

use std::net::SocketAddr;
use std::sync::{Arc, Mutex, OnceLock};

use hickory_proto::op::Message;
use hickory_proto::rr::{Name, RecordType};
use libfuzzer_sys::fuzz_target;
use tokio::net::UdpSocket;

use clusterdns::app::{App, StartOptions};
use clusterdns::plugin::Transport;
use clusterdns::config::{self, LoadOptions};
use clusterdns::server::Router;

struct World {
    rt: tokio::runtime::Runtime,
    router: Arc<Router>,
    /// What the upstream answers with now.
    answer: Arc<Mutex<Vec<u8>>>,
    _app: Arc<App>,
}

fn world() -> &'static World {
    static W: OnceLock<World> = OnceLock::new();
    W.get_or_init(|| {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        let upstream = rt.block_on(UdpSocket::bind("127.0.0.1:0")).unwrap();
        let port = upstream.local_addr().unwrap().port();
        let text = format!(
            ".:0 {{\n cache 30 {{\n  prefetch 1 1m 90%\n  serve_stale\n }}\n forward . 127.0.0.1:{port} {{\n  max_fails 0\n }}\n}}\n"
        );
        let cfg = config::from_str("fuzz", &text, &LoadOptions::default()).unwrap();
        let opts = StartOptions {
            bind: Some([127, 0, 0, 1].into()),
            ..StartOptions::default()
        };
        let app = rt.block_on(App::start(&cfg, opts)).unwrap();
        let router = app.router(0).unwrap();
        let answer = Arc::new(Mutex::new(Vec::new()));
        let current = answer.clone();
        // The upstream: runs whenever the harness drives the runtime.
        rt.spawn(async move {
            let mut buf = [0u8; 512];
            loop {
                let Ok((n, from)) = upstream.recv_from(&mut buf).await else { continue };
                let out = splice(&buf[..n], &current.lock().unwrap());
                if let Some(out) = out {
                    let _ = upstream.send_to(&out, from).await;
                }
            }
        });
        World { rt, router, answer, _app: app }
    })
}

/// The header of `data` (ID and question count set to the query's, TC cleared: no TCP here),
/// the query's question, then the rest of `data`.
fn splice(query: &[u8], data: &[u8]) -> Option<Vec<u8>> {
    let question_end = {
        let mut i = 12;
        while *query.get(i)? != 0 {
            i += 1 + usize::from(query[i]);
        }
        i + 5
    };
    let mut header = [0u8; 12];
    let n = data.len().min(12);
    header[..n].copy_from_slice(&data[..n]);
    header[..2].copy_from_slice(&query[..2]);
    header[2] = (header[2] | 0x80) & !0x02;
    header[4..6].copy_from_slice(&[0, 1]);
    let mut out = header.to_vec();
    out.extend_from_slice(query.get(12..question_end)?);
    out.extend_from_slice(data.get(12..).unwrap_or_default());
    Some(out)
}

fn check(answer: &[u8], id: u16, allowed: usize) {
    let msg = Message::from_vec(answer).expect("every answer parses back");
    assert_eq!(msg.metadata.id, id, "the ID is echoed");
    assert!(
        answer.len() <= allowed,
        "{} bytes where {allowed} were allowed",
        answer.len()
    );
}

fuzz_target!(|data: &[u8]| {
    let w = world();
    let src: SocketAddr = "127.0.0.1:5353".parse().unwrap();
    // A new name per input, so the upstream is asked (then the second query is a hit).
    static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let qtype = match data.first().copied().unwrap_or(0) % 4 {
        0 => RecordType::A,
        1 => RecordType::AAAA,
        2 => RecordType::TXT,
        _ => RecordType::MX,
    };
    let mut q = Message::query();
    q.metadata.id = 0x4242;
    q.metadata.recursion_desired = true;
    q.add_query(hickory_proto::op::Query::query(
        Name::from_ascii(format!("n{n}.example.")).unwrap(),
        qtype,
    ));
    let bytes = q.to_vec().unwrap();
    *w.answer.lock().unwrap() = data.to_vec();
    w.rt.block_on(async {
        for _ in 0..2 {
            if let Some(answer) = w.router.handle_bytes(&bytes, src, Transport::Udp).await {
                check(&answer, 0x4242, 512);
            }
        }
    });
});
