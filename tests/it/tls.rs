//! DNS over TLS: `tls://` blocks with `tls CERT KEY [CA]`, asked with `kdig +tls` and with a
//! rustls client (pipelined queries, client certificates); the plain TCP rules (idle timeout)
//! hold on TLS connections too.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use hickory_proto::op::Message;
use hickory_proto::rr::RecordType;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use clusterdns::app::App;

use crate::clients;
use crate::support;
use crate::upstream::tls_server;

async fn serve(dir: &Path, tls_line: &str, extra: &str) -> (Arc<App>, u16) {
    let port = crate::cli::free_port();
    let objects = support::root().join("deploy/local/cluster.yaml");
    let corefile = format!(
        "tls://.:{port} {{\n    {tls_line}\n{extra}    kubernetes cluster.local in-addr.arpa {{\n        objects {}\n    }}\n}}\n",
        objects.display()
    );
    let running = support::start(&dir.join("Corefile"), &corefile).await;
    support::until_ready(&running).await;
    (running, port)
}

/// A rustls client trusting `ca`, presenting `client` (certificate and key files) if given.
fn connector(ca: &Path, client: Option<(&Path, &Path)>) -> tokio_rustls::TlsConnector {
    let mut roots = rustls::RootCertStore::empty();
    for c in CertificateDer::pem_file_iter(ca).unwrap() {
        roots.add(c.unwrap()).unwrap();
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots);
    let mut config = match client {
        None => builder.with_no_client_auth(),
        Some((cert, key)) => {
            let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(cert)
                .unwrap()
                .collect::<Result<_, _>>()
                .unwrap();
            builder
                .with_client_auth_cert(chain, PrivateKeyDer::from_pem_file(key).unwrap())
                .unwrap()
        }
    };
    config.alpn_protocols = vec![b"dot".to_vec()];
    tokio_rustls::TlsConnector::from(Arc::new(config))
}

/// Asks `names` (A) one after the other on one TLS connection, writing them all first
/// (pipelined); the answers' first addresses, in order. `None` where the session fails.
async fn ask_tls(
    port: u16,
    connector: &tokio_rustls::TlsConnector,
    names: &[&str],
) -> Option<Vec<String>> {
    let tcp = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .ok()?;
    let server = ServerName::try_from("dns.test").unwrap();
    let mut s = connector.connect(server, tcp).await.ok()?;
    let mut out = Vec::new();
    for name in names {
        let q = support::query(name, RecordType::A, Some(1232))
            .to_vec()
            .unwrap();
        out.extend_from_slice(&(q.len() as u16).to_be_bytes());
        out.extend_from_slice(&q);
    }
    s.write_all(&out).await.ok()?;
    let mut addresses = Vec::new();
    for _ in names {
        let mut len = [0u8; 2];
        tokio::time::timeout(Duration::from_secs(2), s.read_exact(&mut len))
            .await
            .ok()?
            .ok()?;
        let mut buf = vec![0u8; usize::from(u16::from_be_bytes(len))];
        s.read_exact(&mut buf).await.ok()?;
        let m = Message::from_vec(&buf).ok()?;
        addresses.push(
            m.answers
                .first()
                .map(|r| r.data.to_string())
                .unwrap_or_default(),
        );
    }
    Some(addresses)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kdig_asks_over_tls() {
    assert!(
        clients::have("kdig"),
        "kdig is missing: install knot-dnsutils (.ci/run does)"
    );
    let (dir, ca, _) = tls_server();
    let (running, port) = serve(dir.path(), "tls leaf.pem leaf.key", "").await;
    let ca = ca.display().to_string();
    let out = tokio::task::spawn_blocking(move || {
        let run = |hostname: &str| {
            let out = std::process::Command::new("kdig")
                .args([
                    "@127.0.0.1",
                    "-p",
                    &port.to_string(),
                    "+tls",
                    &format!("+tls-ca={ca}"),
                    &format!("+tls-hostname={hostname}"),
                    "+short",
                    "+time=2",
                    "+retry=0",
                    "kubernetes.default.svc.cluster.local",
                ])
                .output()
                .expect("kdig runs");
            String::from_utf8_lossy(&out.stdout).trim().to_string()
        };
        (run("dns.test"), run("other.test"))
    })
    .await
    .unwrap();
    assert_eq!(out.0, "10.96.0.1");
    // A certificate for another name: kdig refuses the session, no answer.
    assert!(!out.1.contains("10.96.0.1"), "{}", out.1);
    // The metrics say tls:// and tcp.
    let m = String::from_utf8(running.metrics().render()).unwrap();
    let label = format!("server=\"tls://127.0.0.1:{port}\"");
    assert!(
        m.lines()
            .any(|l| l.starts_with("coredns_dns_requests_total{")
                && l.contains(&label)
                && l.contains("proto=\"tcp\"")),
        "{m}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pipelined_queries_idle_timeout_and_client_certificates() {
    let (dir, ca, _) = tls_server();
    let (_running, port) = serve(
        dir.path(),
        "tls leaf.pem leaf.key",
        "    timeouts {\n        idle 1s\n    }\n",
    )
    .await;
    let plain = connector(&ca, None);
    // Three queries written at once, answered in order on the one connection.
    let got = ask_tls(
        port,
        &plain,
        &[
            "kubernetes.default.svc.cluster.local.",
            "frontend.shop.svc.cluster.local.",
            "kubernetes.default.svc.cluster.local.",
        ],
    )
    .await;
    assert_eq!(
        got,
        Some(vec![
            "10.96.0.1".into(),
            "10.96.12.34".into(),
            "10.96.0.1".into()
        ])
    );
    // A TLS session that asks nothing is closed after the block's idle timeout.
    let tcp = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .unwrap();
    let mut s = plain
        .connect(ServerName::try_from("dns.test").unwrap(), tcp)
        .await
        .unwrap();
    let mut buf = [0u8; 1];
    let closed = tokio::time::timeout(Duration::from_secs(6), s.read(&mut buf)).await;
    assert!(matches!(closed, Ok(Ok(0)) | Ok(Err(_))), "{closed:?}");
    // Plain DNS on the TLS port gets nothing.
    let q = support::query("kubernetes.default.svc.cluster.local.", RecordType::A, None)
        .to_vec()
        .unwrap();
    let at: SocketAddr = ([127, 0, 0, 1], port).into();
    assert!(support::tcp(at, &q).await.is_none());

    // Client certificates, required and verified against the CA.
    let (_running, port) = serve(
        dir.path(),
        "tls leaf.pem leaf.key ca.pem {\n        client_auth require_and_verify\n    }",
        "",
    )
    .await;
    let d = dir.path();
    let with_cert = connector(&ca, Some((&d.join("leaf.pem"), &d.join("leaf.key"))));
    let one = ["kubernetes.default.svc.cluster.local."];
    assert_eq!(
        ask_tls(port, &with_cert, &one).await,
        Some(vec!["10.96.0.1".into()])
    );
    assert_eq!(ask_tls(port, &plain, &one).await, None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_certificate_that_cannot_be_read_is_an_error_at_load() {
    let dir = tempfile::tempdir().unwrap();
    let corefile = "tls://.:0 {\n    tls missing.pem missing.key\n    whoami\n}\n";
    let e = support::start_error(&dir.path().join("Corefile"), corefile).await;
    assert!(
        e.contains("plugin/tls: ") && e.contains("Corefile:2:5") && e.contains("missing.pem"),
        "{e}"
    );
}
