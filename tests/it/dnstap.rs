//! `dnstap`: what a block answers and what `forward` exchanges reach a Frame Streams collector
//! over a unix socket or TCP, and read back by Debian's `dnstap-read`; an absent collector
//! costs nothing but the dropped messages, counted.

use std::net::Ipv4Addr;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use hickory_proto::rr::RecordType;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

use clusterdns::app::App;
use clusterdns::plugin::Transport;
use clusterdns::plugin::dnstap::tap::{ACCEPT, CONTENT_TYPE, FINISH, READY, START, STOP, control};

use crate::clients;
use crate::support;
use crate::upstream::FakeUpstream;

/// A Frame Streams reader: the handshake (READY, ACCEPT, START), then data frames into
/// `frames` until STOP, answered with FINISH.
async fn collect<S: AsyncRead + AsyncWrite + Unpin>(mut s: S, frames: Arc<Mutex<Vec<Vec<u8>>>>) {
    let read_control = |body: &[u8]| u32::from_be_bytes([body[0], body[1], body[2], body[3]]);
    let mut state = 0;
    loop {
        let Ok(len) = s.read_u32().await else { return };
        if len == 0 {
            let Ok(clen) = s.read_u32().await else { return };
            let mut body = vec![0u8; clen as usize];
            if s.read_exact(&mut body).await.is_err() {
                return;
            }
            match (state, read_control(&body)) {
                (0, READY) => {
                    assert!(body.windows(CONTENT_TYPE.len()).any(|w| w == CONTENT_TYPE));
                    s.write_all(&control(ACCEPT, true)).await.unwrap();
                    state = 1;
                }
                (1, START) => state = 2,
                (2, STOP) => {
                    let _ = s.write_all(&control(FINISH, false)).await;
                    return;
                }
                other => panic!("unexpected control frame {other:?}"),
            }
            continue;
        }
        assert_eq!(state, 2, "a data frame before START");
        let mut frame = vec![0u8; len as usize];
        if s.read_exact(&mut frame).await.is_err() {
            return;
        }
        frames.lock().unwrap().push(frame);
    }
}

/// The frames as a Frame Streams file, which `dnstap-read` reads.
fn fstrm_file(frames: &[Vec<u8>], path: &Path) {
    let mut out = control(START, true);
    for f in frames {
        out.extend_from_slice(&(f.len() as u32).to_be_bytes());
        out.extend_from_slice(f);
    }
    out.extend_from_slice(&control(STOP, false));
    std::fs::write(path, out).unwrap();
}

async fn serve(dir: &Path, dnstap: &str, up: &FakeUpstream) -> Arc<App> {
    let objects = support::root().join("deploy/local/cluster.yaml");
    let corefile = format!(
        ".:0 {{\n    {dnstap}\n    kubernetes cluster.local {{\n        objects {}\n    }}\n    forward . {}\n}}\n",
        objects.display(),
        up.addr
    );
    let running = support::start(&dir.join("Corefile"), &corefile).await;
    support::until_ready(&running).await;
    running
}

async fn wait_for(frames: &Mutex<Vec<Vec<u8>>>, n: usize) {
    for _ in 0..100 {
        if frames.lock().unwrap().len() >= n {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("{} frames, expected {n}", frames.lock().unwrap().len());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_and_forwarder_messages_reach_a_unix_socket_collector() {
    assert!(
        clients::have("dnstap-read"),
        "dnstap-read is missing: install bind9-dnsutils (.ci/run does)"
    );
    let dir = tempfile::tempdir().unwrap();
    let sock = dir.path().join("tap.sock");
    let listener = tokio::net::UnixListener::bind(&sock).unwrap();
    let frames = Arc::new(Mutex::new(Vec::new()));
    {
        let frames = frames.clone();
        tokio::spawn(async move {
            let (s, _) = listener.accept().await.unwrap();
            collect(s, frames).await;
        });
    }
    let up = FakeUpstream::start(Ipv4Addr::new(192, 0, 2, 99)).await;
    let line = format!(
        "dnstap unix://{} full {{\n        identity dns-test\n        extra cluster-a\n    }}",
        sock.display()
    );
    let running = serve(dir.path(), &line, &up).await;
    let port = running.listeners()[0].port;
    for (name, how) in [
        ("kubernetes.default.svc.cluster.local.", Transport::Udp),
        ("www.example.org.", Transport::Tcp),
    ] {
        let q = support::query(name, RecordType::A, Some(1232))
            .to_vec()
            .unwrap();
        assert!(support::ask(&running, port, &q, how).await.is_some());
    }
    // Two client queries and answers, and one exchange with the upstream.
    wait_for(&frames, 6).await;
    let file = dir.path().join("tap.fstrm");
    fstrm_file(&frames.lock().unwrap(), &file);
    let out = std::process::Command::new("dnstap-read")
        .args(["-y", &file.display().to_string()])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for want in [
        "type: CLIENT_QUERY",
        "type: CLIENT_RESPONSE",
        "type: FORWARDER_QUERY",
        "type: FORWARDER_RESPONSE",
        "identity: dns-test",
        "socket_protocol: UDP",
        "socket_protocol: TCP",
        "kubernetes.default.svc.cluster.local",
        "www.example.org",
        "192.0.2.99",
    ] {
        assert!(text.contains(want), "no {want:?} in\n{text}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tcp_collector_and_an_absent_one() {
    let dir = tempfile::tempdir().unwrap();
    let up = FakeUpstream::start(Ipv4Addr::new(192, 0, 2, 99)).await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let at = listener.local_addr().unwrap();
    let frames = Arc::new(Mutex::new(Vec::new()));
    {
        let frames = frames.clone();
        tokio::spawn(async move {
            let (s, _) = listener.accept().await.unwrap();
            collect(s, frames).await;
        });
    }
    let running = serve(dir.path(), &format!("dnstap tcp://{at}"), &up).await;
    let port = running.listeners()[0].port;
    let q = support::query("kubernetes.default.svc.cluster.local.", RecordType::A, None)
        .to_vec()
        .unwrap();
    assert!(
        support::ask(&running, port, &q, Transport::Udp)
            .await
            .is_some()
    );
    wait_for(&frames, 2).await;

    // Nobody listens: every query is answered, and the messages are dropped and counted.
    let gone = dir.path().join("nobody.sock");
    let running = serve(dir.path(), &format!("dnstap {}", gone.display()), &up).await;
    let port = running.listeners()[0].port;
    for _ in 0..20 {
        assert!(
            support::ask(&running, port, &q, Transport::Udp)
                .await
                .is_some()
        );
    }
    let m = String::from_utf8(running.metrics().render()).unwrap();
    let dropped: f64 = m
        .lines()
        .find(|l| l.starts_with("clusterdns_dnstap_dropped_total "))
        .and_then(|l| l.rsplit(' ').next()?.parse().ok())
        .unwrap_or(0.0);
    assert!(dropped >= 40.0, "{dropped}\n{m}");
}

/// Asks `name` until every collector in `all` has a frame: a collector is sent the messages
/// from the moment its handshake is done, which the test cannot see otherwise.
async fn until_seen(running: &App, name: &str, all: &[&Mutex<Vec<Vec<u8>>>]) {
    let port = running.listeners()[0].port;
    let q = support::query(name, RecordType::A, None).to_vec().unwrap();
    for _ in 0..100 {
        assert!(
            support::ask(running, port, &q, Transport::Udp)
                .await
                .is_some()
        );
        if all.iter().all(|f| !f.lock().unwrap().is_empty()) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("{name} did not reach every collector");
}

/// Asks `name` ten times over 300 ms, each answered: time for messages to reach a collector
/// that is going to get them.
async fn ask_for_a_while(running: &App, name: &str) {
    let q = support::query(name, RecordType::A, None).to_vec().unwrap();
    let dns = running.listeners()[0].port;
    for _ in 0..10 {
        assert!(
            support::ask(running, dns, &q, Transport::Udp)
                .await
                .is_some()
        );
        tokio::time::sleep(Duration::from_millis(30)).await;
    }
}

/// A collector connecting to `listen`ing clusterdns over `s`, collecting into the result.
fn collector<S: AsyncRead + AsyncWrite + Unpin + Send + 'static>(s: S) -> Arc<Mutex<Vec<Vec<u8>>>> {
    let frames = Arc::new(Mutex::new(Vec::new()));
    tokio::spawn(collect(s, frames.clone()));
    frames
}

/// A TLS client for a collector: trusting `ca`, showing `cert` if given.
fn tls_client(ca: &Path, cert: Option<(&Path, &Path)>) -> tokio_rustls::TlsConnector {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};
    let mut roots = rustls::RootCertStore::empty();
    for c in CertificateDer::pem_file_iter(ca).unwrap() {
        roots.add(c.unwrap()).unwrap();
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots);
    let config = match cert {
        Some((cert, key)) => builder
            .with_client_auth_cert(
                CertificateDer::pem_file_iter(cert)
                    .unwrap()
                    .collect::<Result<_, _>>()
                    .unwrap(),
                PrivateKeyDer::from_pem_file(key).unwrap(),
            )
            .unwrap(),
        None => builder.with_no_client_auth(),
    };
    tokio_rustls::TlsConnector::from(Arc::new(config))
}

/// `dnstap listen` (CoreDNS 1.14): collectors connect over TCP or a unix socket, and each
/// gets every message from then on, with the wire messages under `full`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn collectors_connect_to_a_listening_tap() {
    use prost::Message as _;
    let dir = tempfile::tempdir().unwrap();
    let up = FakeUpstream::start(Ipv4Addr::new(192, 0, 2, 99)).await;
    let port = crate::support::free_port();
    let running = serve(
        dir.path(),
        &format!("dnstap listen tcp://127.0.0.1:{port} full"),
        &up,
    )
    .await;
    let a = collector(
        tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .unwrap(),
    );
    let b = collector(
        tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .unwrap(),
    );
    until_seen(&running, "kubernetes.default.svc.cluster.local.", &[&a, &b]).await;
    let before = (a.lock().unwrap().len(), b.lock().unwrap().len());
    let q = support::query("www.example.org.", RecordType::A, None)
        .to_vec()
        .unwrap();
    let dns = running.listeners()[0].port;
    assert!(
        support::ask(&running, dns, &q, Transport::Tcp)
            .await
            .is_some()
    );
    // The client's query and answer, and the exchange with the upstream, to both.
    wait_for(&a, before.0 + 4).await;
    wait_for(&b, before.1 + 4).await;
    for frames in [&a, &b] {
        let kinds: Vec<i32> = frames.lock().unwrap()[before.0.min(before.1)..]
            .iter()
            .filter_map(|f| clusterdns::plugin::dnstap::proto::Dnstap::decode(f.as_slice()).ok())
            .filter_map(|d| d.message)
            .filter(|m| m.query_message.is_some())
            .map(|m| m.r#type)
            .collect();
        assert!(kinds.len() >= 4, "{kinds:?}");
    }
    drop(running);

    // A unix socket; a stale file of an earlier run is replaced.
    let sock = dir.path().join("tap.sock");
    drop(std::os::unix::net::UnixListener::bind(&sock).unwrap());
    let running = serve(
        dir.path(),
        &format!("dnstap listen unix://{}", sock.display()),
        &up,
    )
    .await;
    let c = collector(tokio::net::UnixStream::connect(&sock).await.unwrap());
    until_seen(&running, "kubernetes.default.svc.cluster.local.", &[&c]).await;
}

/// `dnstap listen tls://… { tls CERT KEY CA }`: only collectors with a certificate the CA
/// signed get messages (mutual TLS); `skipverify` lets any collector in; and clusterdns's own
/// `tls://` collectors are checked against the system's roots unless `skipverify`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_collectors_in_both_directions() {
    let (certs, ca, acceptor) = crate::upstream::tls_server();
    let (leaf, key) = (certs.path().join("leaf.pem"), certs.path().join("leaf.key"));
    let dir = tempfile::tempdir().unwrap();
    let up = FakeUpstream::start(Ipv4Addr::new(192, 0, 2, 99)).await;
    let name = rustls::pki_types::ServerName::try_from("dns.test").unwrap();
    for skip in [false, true] {
        let port = crate::support::free_port();
        let running = serve(
            dir.path(),
            &format!(
                "dnstap listen tls://127.0.0.1:{port} {{\n        tls {} {} {}\n{}    }}",
                leaf.display(),
                key.display(),
                ca.display(),
                if skip { "        skipverify\n" } else { "" }
            ),
            &up,
        )
        .await;
        let connect = |cert: Option<(&Path, &Path)>| {
            let connector = tls_client(&ca, cert);
            let name = name.clone();
            async move {
                let s = tokio::net::TcpStream::connect(("127.0.0.1", port))
                    .await
                    .unwrap();
                connector.connect(name, s).await
            }
        };
        let with_cert = collector(connect(Some((&leaf, &key))).await.unwrap());
        until_seen(
            &running,
            "kubernetes.default.svc.cluster.local.",
            &[&with_cert],
        )
        .await;
        // Without a certificate: refused under the CA, let in with skipverify.
        let frames = match connect(None).await {
            Ok(s) => collector(s),
            Err(_) => Arc::new(Mutex::new(Vec::new())),
        };
        ask_for_a_while(&running, "www.example.org.").await;
        let got = frames.lock().unwrap().len();
        assert_eq!(
            got > 0,
            skip,
            "skipverify {skip}: {got} frames without a certificate"
        );
    }

    // Outgoing: a tls:// collector with the test CA's certificate, which the system does not
    // trust: nothing reaches it unless skipverify.
    for skip in [false, true] {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let at = listener.local_addr().unwrap();
        let frames = Arc::new(Mutex::new(Vec::new()));
        {
            let (frames, acceptor) = (frames.clone(), acceptor.clone());
            tokio::spawn(async move {
                while let Ok((s, _)) = listener.accept().await {
                    if let Ok(s) = acceptor.accept(s).await {
                        collect(s, frames.clone()).await;
                    }
                }
            });
        }
        let line = if skip {
            format!("dnstap tls://{at} {{\n        skipverify\n    }}")
        } else {
            format!("dnstap tls://{at}")
        };
        let running = serve(dir.path(), &line, &up).await;
        if skip {
            until_seen(
                &running,
                "kubernetes.default.svc.cluster.local.",
                &[&frames],
            )
            .await;
        } else {
            ask_for_a_while(&running, "kubernetes.default.svc.cluster.local.").await;
            assert_eq!(frames.lock().unwrap().len(), 0);
        }
    }
}
