//! Upstream DNS servers for `forward` to talk to: one we control (to make it slow, silent,
//! truncating or lying, over UDP, TCP or TLS), and Knot DNS from Debian, a real one.

use std::net::{Ipv4Addr, SocketAddr};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use hickory_proto::op::{Edns, Message, MessageType, OpCode, Query, ResponseCode};
use hickory_proto::rr::rdata::{A, SOA, TXT};
use hickory_proto::rr::{Name, RData, Record, RecordType};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, UdpSocket};
use tokio::task::JoinHandle;

use crate::support::LOCALHOST;

/// How the upstream behaves.
#[derive(Clone, Debug)]
pub enum Mode {
    /// A for every name (the configured address), NXDOMAIN for names starting `nx`, a
    /// too-big-for-UDP TXT set for names starting `big`, NODATA for other types (without an
    /// SOA for names starting `nosoa`).
    Answer,
    /// Reads and never answers.
    Silent,
    /// Answers after this long.
    Slow(Duration),
    /// Answers a different question.
    WrongQuestion,
    /// Answers with this rcode and nothing else.
    Rcode(ResponseCode),
    /// Answers with these bytes: a header (its ID and question count set to the query's), the
    /// query's question, then the rest (as the `upstream` fuzz target builds its answers).
    Raw(Vec<u8>),
}

pub struct State {
    pub mode: Mutex<Mode>,
    pub ip: Mutex<Ipv4Addr>,
    pub ttl: AtomicU32,
    /// Queries (health checks not counted), per transport.
    pub udp: AtomicUsize,
    pub tcp: AtomicUsize,
    /// TCP (or TLS) connections accepted.
    pub conns: AtomicUsize,
    /// TCP (or TLS) connections that ended (the client closed them, or the server did).
    pub ended: AtomicUsize,
    /// Health checks (NS queries).
    pub checks: AtomicUsize,
    /// The last health check: its name and its RD bit.
    pub last_check: Mutex<Option<(String, bool)>>,
    /// Close each TCP connection after one answer, as a server with a short idle timeout does.
    pub close_after_answer: std::sync::atomic::AtomicBool,
    /// The last query (not a health check) as it arrived.
    pub last: Mutex<Option<Vec<u8>>>,
    /// Where each query (health checks too) came from, UDP and TCP.
    pub from: Mutex<Vec<std::net::IpAddr>>,
}

impl State {
    pub fn queries(&self) -> usize {
        self.udp.load(Ordering::SeqCst) + self.tcp.load(Ordering::SeqCst)
    }

    pub fn set_mode(&self, m: Mode) {
        *self.mode.lock().unwrap() = m;
    }

    pub fn set_ip(&self, ip: Ipv4Addr) {
        *self.ip.lock().unwrap() = ip;
    }
}

pub struct FakeUpstream {
    pub addr: SocketAddr,
    pub state: Arc<State>,
    tasks: Vec<JoinHandle<()>>,
}

impl Drop for FakeUpstream {
    fn drop(&mut self) {
        for t in &self.tasks {
            t.abort();
        }
    }
}

impl FakeUpstream {
    /// Plain DNS on UDP and TCP, on one free port, answering with `ip`.
    pub async fn start(ip: Ipv4Addr) -> Self {
        Self::start_on(0, ip, None).await
    }

    /// On a given port (0: any), with TLS in place of plain TCP when `tls` is given.
    pub async fn start_on(port: u16, ip: Ipv4Addr, tls: Option<tokio_rustls::TlsAcceptor>) -> Self {
        let state = Arc::new(State {
            mode: Mutex::new(Mode::Answer),
            ip: Mutex::new(ip),
            ttl: AtomicU32::new(60),
            udp: AtomicUsize::new(0),
            tcp: AtomicUsize::new(0),
            conns: AtomicUsize::new(0),
            ended: AtomicUsize::new(0),
            checks: AtomicUsize::new(0),
            last_check: Mutex::new(None),
            close_after_answer: Default::default(),
            last: Mutex::new(None),
            from: Mutex::new(Vec::new()),
        });
        let (udp, tcp) = bind_pair(port).await;
        let addr = udp.local_addr().unwrap();
        let udp = Arc::new(udp);
        let mut tasks = Vec::new();
        {
            let (udp, state) = (udp.clone(), state.clone());
            tasks.push(tokio::spawn(async move {
                let mut buf = vec![0u8; 65535];
                loop {
                    let Ok((n, from)) = udp.recv_from(&mut buf).await else {
                        continue;
                    };
                    state.from.lock().unwrap().push(from.ip());
                    let (udp, state, query) = (udp.clone(), state.clone(), buf[..n].to_vec());
                    tokio::spawn(async move {
                        if let Some(out) = answer(&state, &query, false).await {
                            let _ = udp.send_to(&out, from).await;
                        }
                    });
                }
            }));
        }
        {
            let state = state.clone();
            tasks.push(tokio::spawn(async move {
                loop {
                    let Ok((stream, peer)) = tcp.accept().await else {
                        continue;
                    };
                    state.from.lock().unwrap().push(peer.ip());
                    state.conns.fetch_add(1, Ordering::SeqCst);
                    let (state, tls) = (state.clone(), tls.clone());
                    tokio::spawn(async move {
                        match tls {
                            Some(acceptor) => {
                                if let Ok(s) = acceptor.accept(stream).await {
                                    serve_stream(s, &state).await;
                                }
                            }
                            None => serve_stream(stream, &state).await,
                        }
                        state.ended.fetch_add(1, Ordering::SeqCst);
                    });
                }
            }));
        }
        Self { addr, state, tasks }
    }
}

async fn bind_pair(port: u16) -> (UdpSocket, TcpListener) {
    for _ in 0..100 {
        let Ok(udp) = UdpSocket::bind((LOCALHOST, port)).await else {
            tokio::time::sleep(Duration::from_millis(50)).await;
            continue;
        };
        let p = udp.local_addr().unwrap().port();
        if let Ok(tcp) = TcpListener::bind((LOCALHOST, p)).await {
            return (udp, tcp);
        }
    }
    panic!("no free port for an upstream");
}

async fn serve_stream<S: AsyncRead + AsyncWrite + Unpin>(mut s: S, state: &State) {
    loop {
        let mut len = [0u8; 2];
        if s.read_exact(&mut len).await.is_err() {
            return;
        }
        let mut buf = vec![0u8; usize::from(u16::from_be_bytes(len))];
        if s.read_exact(&mut buf).await.is_err() {
            return;
        }
        if let Some(out) = answer(state, &buf, true).await {
            let mut framed = (out.len() as u16).to_be_bytes().to_vec();
            framed.extend_from_slice(&out);
            if s.write_all(&framed).await.is_err()
                || state.close_after_answer.load(Ordering::SeqCst)
            {
                return;
            }
        }
    }
}

fn soa() -> Record {
    Record::from_rdata(
        Name::from_ascii("example.").unwrap(),
        3600,
        RData::SOA(SOA::new(
            Name::from_ascii("ns.example.").unwrap(),
            Name::from_ascii("hostmaster.example.").unwrap(),
            1,
            3600,
            600,
            86400,
            30,
        )),
    )
}

async fn answer(state: &State, query: &[u8], stream: bool) -> Option<Vec<u8>> {
    let q = Message::from_vec(query).ok()?;
    let question = q.queries.first()?.clone();
    if question.query_type() == RecordType::NS {
        state.checks.fetch_add(1, Ordering::SeqCst);
        *state.last_check.lock().unwrap() =
            Some((question.name().to_string(), q.metadata.recursion_desired));
        if matches!(*state.mode.lock().unwrap(), Mode::Silent) {
            return None;
        }
        let mut r = Message::new(q.metadata.id, MessageType::Response, OpCode::Query);
        r.add_query(question);
        return r.to_vec().ok();
    }
    if stream {
        state.tcp.fetch_add(1, Ordering::SeqCst);
    } else {
        state.udp.fetch_add(1, Ordering::SeqCst);
    }
    *state.last.lock().unwrap() = Some(query.to_vec());
    let mode = state.mode.lock().unwrap().clone();
    let mut r = Message::new(q.metadata.id, MessageType::Response, OpCode::Query);
    r.metadata.recursion_desired = q.metadata.recursion_desired;
    r.metadata.recursion_available = true;
    if let Some(e) = &q.edns {
        let mut out = Edns::new();
        out.set_max_payload(1232);
        out.set_dnssec_ok(e.flags().dnssec_ok);
        r.set_edns(out);
    }
    match mode {
        Mode::Raw(data) => return splice(query, &data),
        Mode::Silent => return None,
        Mode::Slow(d) => tokio::time::sleep(d).await,
        Mode::WrongQuestion => {
            r.add_query(Query::query(
                Name::from_ascii("wrong.example.").unwrap(),
                RecordType::A,
            ));
            return r.to_vec().ok();
        }
        Mode::Rcode(code) => {
            r.add_query(question);
            r.metadata.response_code = code;
            return r.to_vec().ok();
        }
        Mode::Answer => {}
    }
    let label = question
        .name()
        .iter()
        .next()
        .map(|l| String::from_utf8_lossy(l).to_lowercase())
        .unwrap_or_default();
    let name = question.name().clone();
    let ttl = state.ttl.load(Ordering::SeqCst);
    r.add_query(question.clone());
    // As a validating resolver says of what it checked.
    r.metadata.authentic_data = label.starts_with("authentic");
    if label.starts_with("nx") {
        r.metadata.response_code = ResponseCode::NXDomain;
        r.add_authority(soa());
    } else if label.starts_with("big") && question.query_type() == RecordType::TXT {
        let limit = if stream {
            usize::MAX
        } else {
            // As real servers do since DNS Flag Day 2020: at most 1232 bytes over UDP.
            q.edns
                .as_ref()
                .map_or(512, |e| usize::from(e.max_payload().min(1232)))
        };
        for i in 0..20 {
            let text = format!("{i:02}{}", "x".repeat(98));
            r.add_answer(Record::from_rdata(
                name.clone(),
                ttl,
                RData::TXT(TXT::new(vec![text])),
            ));
        }
        let bytes = r.to_vec().ok()?;
        if bytes.len() > limit {
            r.answers.clear();
            r.metadata.truncation = true;
        }
    } else if question.query_type() == RecordType::A {
        let ip = *state.ip.lock().unwrap();
        r.add_answer(Record::from_rdata(name, ttl, RData::A(A(ip))));
    } else if !label.starts_with("nosoa") {
        r.add_authority(soa());
    }
    r.to_vec().ok()
}

fn splice(query: &[u8], data: &[u8]) -> Option<Vec<u8>> {
    let mut end = 12;
    while *query.get(end)? != 0 {
        end += 1 + usize::from(query[end]);
    }
    end += 5;
    let mut header = [0u8; 12];
    let n = data.len().min(12);
    header[..n].copy_from_slice(&data[..n]);
    header[..2].copy_from_slice(&query[..2]);
    header[2] = (header[2] | 0x80) & !0x02;
    header[4..6].copy_from_slice(&[0, 1]);
    let mut out = header.to_vec();
    out.extend_from_slice(query.get(12..end)?);
    out.extend_from_slice(data.get(12..).unwrap_or_default());
    Some(out)
}

/// A free port on 127.0.0.1 for both UDP and TCP, released for someone else to bind.
pub async fn free_port() -> u16 {
    crate::support::free_port()
}

/// Knot DNS (Debian's `knot`), authoritative for example.org on a loopback port.
pub struct Knot {
    pub port: u16,
    child: Child,
    _dir: tempfile::TempDir,
}

impl Drop for Knot {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub const EXAMPLE_ORG: &str = "$ORIGIN example.org.
$TTL 300
@ IN SOA ns1.example.org. hostmaster.example.org. 1 3600 600 86400 60
@ IN NS ns1.example.org.
ns1 IN A 127.0.0.1
@ IN A 93.184.215.14
www IN CNAME example.org.
";

impl Knot {
    pub async fn start() -> Knot {
        Knot::start_zone("example.org", EXAMPLE_ORG).await
    }

    /// Knot authoritative for `domain`, read from the zone file text `zone`.
    pub async fn start_zone(domain: &str, zone: &str) -> Knot {
        let file = format!("{domain}.zone");
        let zones = format!("zone:\n  - domain: {domain}\n    file: {file}\n");
        Knot::start_conf(&[(file.as_str(), zone)], &zones, domain).await
    }

    /// Knot with `files` (name, text) in its folder and `zones` (its `zone:` and any
    /// `remote:`/`acl:` sections) as configuration; up once `domain` has an SOA.
    pub async fn start_conf(files: &[(&str, &str)], zones: &str, domain: &str) -> Knot {
        Knot::start_conf_at(free_port().await, files, zones, domain).await
    }

    /// [`Knot::start_conf`] on `port` (chosen before, so that a primary can name it).
    pub async fn start_conf_at(
        port: u16,
        files: &[(&str, &str)],
        zones: &str,
        domain: &str,
    ) -> Knot {
        assert!(
            crate::clients::have("knotd"),
            "knotd is missing: install knot (.ci/run does)"
        );
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        for (name, text) in files {
            std::fs::write(d.join(name), text).unwrap();
        }
        let conf = format!(
            "server:\n    listen: 127.0.0.1@{port}\n    rundir: {dir}\ndatabase:\n    storage: {dir}/db\ntemplate:\n  - id: default\n    storage: {dir}\n{zones}log:\n  - target: stderr\n    any: warning\n",
            dir = d.display()
        );
        std::fs::write(d.join("knot.conf"), conf).unwrap();
        let child = Command::new("knotd")
            .args(["-c", &d.join("knot.conf").display().to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("knotd starts");
        let knot = Knot {
            port,
            child,
            _dir: dir,
        };
        knot.wait_until_up(domain).await;
        knot
    }

    async fn wait_until_up(&self, domain: &str) {
        let q = crate::support::query(&format!("{domain}."), RecordType::SOA, None)
            .to_vec()
            .unwrap();
        for _ in 0..100 {
            if let Some(a) = crate::support::udp(SocketAddr::new(LOCALHOST, self.port), &q).await
                && Message::from_vec(&a).is_ok_and(|m| !m.answers.is_empty())
            {
                return;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("knotd did not answer on port {}", self.port);
    }
}

/// A test CA and a certificate for `dns.test` it signed (made with Debian's openssl):
/// (directory, CA file, TLS acceptor serving the certificate).
pub fn tls_server() -> (
    tempfile::TempDir,
    std::path::PathBuf,
    tokio_rustls::TlsAcceptor,
) {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let run = |args: &[&str]| {
        let out = Command::new("openssl")
            .args(args)
            .current_dir(d)
            .output()
            .expect("openssl runs");
        assert!(
            out.status.success(),
            "openssl {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    let ec = [
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:prime256v1",
        "-nodes",
    ];
    run(&[
        &["req", "-x509"][..],
        &ec,
        &[
            "-keyout",
            "ca.key",
            "-out",
            "ca.pem",
            "-days",
            "2",
            "-subj",
            "/CN=clusterdns test CA",
        ],
    ]
    .concat());
    run(&[
        &["req"][..],
        &ec,
        &[
            "-keyout",
            "leaf.key",
            "-out",
            "leaf.csr",
            "-subj",
            "/CN=dns.test",
        ],
    ]
    .concat());
    std::fs::write(
        d.join("ext"),
        "subjectAltName=DNS:dns.test\nbasicConstraints=CA:FALSE\n",
    )
    .unwrap();
    run(&[
        "x509",
        "-req",
        "-in",
        "leaf.csr",
        "-CA",
        "ca.pem",
        "-CAkey",
        "ca.key",
        "-CAcreateserial",
        "-out",
        "leaf.pem",
        "-days",
        "2",
        "-extfile",
        "ext",
    ]);
    let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(d.join("leaf.pem"))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    let key = PrivateKeyDer::from_pem_file(d.join("leaf.key")).unwrap();
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .unwrap();
    let ca = d.join("ca.pem");
    (dir, ca, tokio_rustls::TlsAcceptor::from(Arc::new(config)))
}

/// The answer's A addresses, as text.
pub fn addresses(m: &Message) -> Vec<String> {
    m.answers
        .iter()
        .filter_map(|r| match &r.data {
            RData::A(a) => Some(a.0.to_string()),
            _ => None,
        })
        .collect()
}

pub fn corefile_path() -> &'static Path {
    Path::new("/tmp/Corefile")
}

/// Unbound from Debian serving DNS over HTTPS (RFC 8484, HTTP/2 at `/dns-query`) with the
/// `dns.test` certificate of [`tls_server`], authoritative for `doh.test.` from local data:
/// `a.doh.test` is 192.0.2.53.
pub struct Unbound {
    pub port: u16,
    child: Child,
    _dir: tempfile::TempDir,
}

impl Unbound {
    /// `cert_dir` holds `leaf.pem` and `leaf.key` (from [`tls_server`]).
    pub async fn start_doh(cert_dir: &Path) -> Unbound {
        assert!(
            crate::clients::have("unbound"),
            "unbound is missing: install unbound (.ci/run does)"
        );
        let port = free_port().await;
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        let conf = format!(
            "server:\n  interface: 127.0.0.1@{port}\n  https-port: {port}\n  tls-service-pem: {pem}\n  tls-service-key: {key}\n  do-daemonize: no\n  chroot: \"\"\n  username: \"\"\n  directory: \"{dir}\"\n  pidfile: \"{dir}/unbound.pid\"\n  use-syslog: no\n  logfile: \"\"\n  verbosity: 0\n  do-ip6: no\n  module-config: \"iterator\"\n  access-control: 127.0.0.0/8 allow\n  local-zone: \"doh.test.\" static\n  local-data: \"a.doh.test. 60 IN A 192.0.2.53\"\nremote-control:\n  control-enable: no\n",
            pem = cert_dir.join("leaf.pem").display(),
            key = cert_dir.join("leaf.key").display(),
            dir = d.display(),
        );
        std::fs::write(d.join("unbound.conf"), conf).unwrap();
        let child = Command::new("unbound")
            .args(["-d", "-c", &d.join("unbound.conf").display().to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("unbound starts");
        let unbound = Unbound {
            port,
            child,
            _dir: dir,
        };
        // Up once its port takes connections (it reads its certificate before it listens).
        for _ in 0..100 {
            if tokio::net::TcpStream::connect((LOCALHOST, port))
                .await
                .is_ok()
            {
                return unbound;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("unbound did not listen on port {port}");
    }
}

impl Drop for Unbound {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One request a [`DohRecorder`] was sent.
#[derive(Clone, Debug)]
pub struct DohRequest {
    pub method: String,
    pub path: String,
    pub query: Option<String>,
    pub content_type: Option<String>,
    pub accept: Option<String>,
    pub authority: Option<String>,
    /// The DNS query, from the body or from `?dns=`.
    pub message: Vec<u8>,
}

/// A DNS over HTTPS server of our own, over HTTP/2 with the `dns.test` certificate: it
/// records every request and answers A 192.0.2.80 for any name.
pub struct DohRecorder {
    pub addr: SocketAddr,
    pub requests: Arc<Mutex<Vec<DohRequest>>>,
    /// TLS connections accepted.
    pub conns: Arc<AtomicUsize>,
    task: JoinHandle<()>,
}

impl DohRecorder {
    pub async fn start(cert_dir: &Path) -> DohRecorder {
        use base64::Engine;
        use http_body_util::BodyExt;
        use rustls::pki_types::pem::PemObject;
        use rustls::pki_types::{CertificateDer, PrivateKeyDer};
        let chain: Vec<CertificateDer<'static>> =
            CertificateDer::pem_file_iter(cert_dir.join("leaf.pem"))
                .unwrap()
                .collect::<Result<_, _>>()
                .unwrap();
        let key = PrivateKeyDer::from_pem_file(cert_dir.join("leaf.key")).unwrap();
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(chain, key)
            .unwrap();
        config.alpn_protocols = vec![b"h2".to_vec()];
        let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
        let listener = TcpListener::bind((LOCALHOST, 0)).await.unwrap();
        let addr = listener.local_addr().unwrap();
        let requests = Arc::new(Mutex::new(Vec::new()));
        let conns = Arc::new(AtomicUsize::new(0));
        let (reqs, count) = (requests.clone(), conns.clone());
        let task = tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    return;
                };
                let Ok(tls) = acceptor.accept(stream).await else {
                    continue;
                };
                count.fetch_add(1, Ordering::SeqCst);
                let reqs = reqs.clone();
                let service = hyper::service::service_fn(
                    move |req: hyper::Request<hyper::body::Incoming>| {
                        let reqs = reqs.clone();
                        async move {
                            let header = |name: hyper::header::HeaderName| {
                                req.headers()
                                    .get(name)
                                    .and_then(|v| v.to_str().ok())
                                    .map(str::to_string)
                            };
                            let mut seen = DohRequest {
                                method: req.method().to_string(),
                                path: req.uri().path().to_string(),
                                query: req.uri().query().map(str::to_string),
                                content_type: header(hyper::header::CONTENT_TYPE),
                                accept: header(hyper::header::ACCEPT),
                                authority: req.uri().authority().map(|a| a.to_string()),
                                message: Vec::new(),
                            };
                            let body = req.into_body().collect().await.unwrap().to_bytes();
                            seen.message =
                                match seen.query.as_deref().and_then(|q| q.strip_prefix("dns=")) {
                                    Some(b64) => base64::engine::general_purpose::URL_SAFE_NO_PAD
                                        .decode(b64)
                                        .unwrap_or_default(),
                                    None => body.to_vec(),
                                };
                            let answer = Message::from_vec(&seen.message).ok().map(|q| {
                                let mut m = Message::new(
                                    q.metadata.id,
                                    MessageType::Response,
                                    OpCode::Query,
                                );
                                m.metadata.recursion_desired = q.metadata.recursion_desired;
                                m.metadata.recursion_available = true;
                                for question in &q.queries {
                                    m.add_query(question.clone());
                                    m.add_answer(Record::from_rdata(
                                        question.name().clone(),
                                        60,
                                        RData::A(A(Ipv4Addr::new(192, 0, 2, 80))),
                                    ));
                                }
                                m.to_vec().unwrap()
                            });
                            reqs.lock().unwrap().push(seen);
                            let response = match answer {
                                Some(bytes) => hyper::Response::builder()
                                    .header(hyper::header::CONTENT_TYPE, "application/dns-message")
                                    .body(http_body_util::Full::new(bytes::Bytes::from(bytes))),
                                None => hyper::Response::builder()
                                    .status(400)
                                    .body(http_body_util::Full::new(bytes::Bytes::new())),
                            };
                            Ok::<_, std::convert::Infallible>(response.unwrap())
                        }
                    },
                );
                tokio::spawn(async move {
                    let _ = hyper::server::conn::http2::Builder::new(
                        hyper_util::rt::TokioExecutor::new(),
                    )
                    .serve_connection(hyper_util::rt::TokioIo::new(tls), service)
                    .await;
                });
            }
        });
        DohRecorder {
            addr,
            requests,
            conns,
            task,
        }
    }

    pub fn requests(&self) -> Vec<DohRequest> {
        self.requests.lock().unwrap().clone()
    }
}

impl Drop for DohRecorder {
    fn drop(&mut self) {
        self.task.abort();
    }
}
