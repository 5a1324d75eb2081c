//! One upstream of `forward`: its connections, one exchange of a query, and its health.
//!
//! Connections are kept after use and taken again for the next query (for `expire`, 10 s by
//! default), one query at a time each, as CoreDNS's `pkg/proxy` keeps them. A kept TCP or TLS
//! connection the upstream has closed is noticed on use and replaced once. Health is CoreDNS's:
//! a failed exchange starts a probe that asks `. IN NS` every `health_check` interval until
//! it gets any answer; each failed probe counts, and past `max_fails` the upstream is down.
//!
//! DNS over HTTPS (RFC 8484) goes over one kept HTTP/2 connection per upstream, which carries
//! every query at once; it is dialled again when the upstream closes it or `expire` passes.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};

use hickory_proto::op::{Message, MessageType, OpCode, Query};
use hickory_proto::rr::RecordType;
use rustls::pki_types::ServerName;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpStream, UdpSocket};
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;

use crate::observe::metrics::Metrics;
use crate::plugin::forward::config::{DOH_PATH, DohMethod, HealthCheck, Scheme, To};

/// How long one exchange may wait for its answer (CoreDNS's static read timeout).
pub const READ_TIMEOUT: Duration = Duration::from_secs(2);
/// How long a TCP or TLS connection may take to open.
pub const DIAL_TIMEOUT: Duration = Duration::from_secs(2);
/// How long a health check may take.
pub const CHECK_TIMEOUT: Duration = Duration::from_secs(1);
/// The largest answer read over UDP.
const UDP_BUFFER: usize = 65_535;

/// How a query goes to the upstream.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Proto {
    Udp,
    Tcp,
    Tls,
    Https,
}

impl Proto {
    /// The `proto` label, as CoreDNS writes it.
    pub fn label(self) -> &'static str {
        match self {
            Proto::Udp => "udp",
            Proto::Tcp => "tcp",
            Proto::Tls => "tcp-tls",
            Proto::Https => "https",
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ExchangeError {
    #[error("i/o timeout")]
    Timeout,
    #[error("{0}")]
    Io(#[from] std::io::Error),
    #[error("connection closed by the upstream")]
    Closed,
    #[error("TLS: {0}")]
    Tls(String),
    #[error("HTTP: {0}")]
    Http(String),
}

enum Conn {
    Udp(UdpSocket),
    Tcp(TcpStream),
    Tls(Box<TlsStream<TcpStream>>),
    /// An HTTP/2 connection: a handle that many queries may hold at once.
    Https(Doh),
}

/// One HTTP/2 connection to a DNS over HTTPS upstream.
#[derive(Clone)]
struct Doh {
    send: hyper::client::conn::http2::SendRequest<http_body_util::Full<bytes::Bytes>>,
    /// `https://AUTHORITY/dns-query`, where queries go.
    url: Arc<str>,
    method: DohMethod,
}

struct Idle {
    conn: Conn,
    proto: Proto,
    since: Instant,
}

/// An upstream's kept connections.
#[derive(Default)]
struct Pool {
    /// Oldest first.
    conns: VecDeque<Idle>,
    /// A [`sweep`] runs for this pool.
    sweeping: bool,
}

impl Pool {
    /// Closes the connections kept for `expire` or longer.
    fn expire(&mut self, now: Instant, expire: Duration) {
        while self
            .conns
            .front()
            .is_some_and(|i| now.duration_since(i.since) >= expire)
        {
            self.conns.pop_front();
        }
    }
}

/// Closes a pool's connections as they pass `expire`, as CoreDNS's connection manager does,
/// until none is left (the next kept one starts another) or the upstream is gone. Without it a
/// connection past `expire` stayed open until the next query: after a burst of misses that a
/// cache then answered, hundreds of them, each in CLOSE_WAIT once the upstream closed its side.
async fn sweep(pool: Weak<Mutex<Pool>>, expire: Duration) {
    loop {
        let wait = {
            let Some(pool) = pool.upgrade() else { return };
            let mut pool = crate::sync::lock(&pool);
            let now = Instant::now();
            pool.expire(now, expire);
            match pool.conns.front() {
                Some(oldest) => (oldest.since + expire).saturating_duration_since(now),
                None => {
                    pool.sweeping = false;
                    return;
                }
            }
        };
        tokio::time::sleep(wait).await;
    }
}

/// What every upstream of one `forward` shares.
#[derive(Clone)]
pub struct ProxyOptions {
    pub expire: Duration,
    /// Kept connections per upstream; 0 is no limit.
    pub max_idle: usize,
    pub max_fails: u32,
    pub health: HealthCheck,
    pub force_tcp: bool,
    pub tls: Option<(TlsConnector, Option<String>)>,
    /// The TLS client of `https://` upstreams (it offers `h2`), and `tls_servername`.
    pub doh: Option<(TlsConnector, Option<String>)>,
    pub doh_method: DohMethod,
    pub metrics: Arc<Metrics>,
    /// How long one exchange may wait for its answer (`read_timeout`).
    pub read_timeout: Duration,
    /// Where queries and checks are sent from (`source_address`).
    pub source: Option<std::net::IpAddr>,
}

pub struct Proxy {
    pub to: To,
    /// The `to` label.
    pub label: String,
    opts: ProxyOptions,
    server_name: Option<ServerName<'static>>,
    fails: AtomicU32,
    probing: AtomicBool,
    /// Kept connections, oldest first, and whether a task is closing them as they expire.
    idle: Arc<Mutex<Pool>>,
    /// The kept HTTP/2 connection of an `https://` upstream, and when it was last used. Queries
    /// that find none wait for the one being dialled rather than each dialling its own.
    h2: tokio::sync::Mutex<Option<(Doh, Instant)>>,
}

impl Proxy {
    pub fn new(to: To, opts: ProxyOptions) -> Result<Self, String> {
        let server_name = match to.scheme {
            Scheme::Dns => None,
            Scheme::Tls | Scheme::Https => {
                let client = match to.scheme {
                    Scheme::Https => &opts.doh,
                    _ => &opts.tls,
                };
                let name = to
                    .server_name
                    .clone()
                    .or_else(|| client.as_ref().and_then(|t| t.1.clone()))
                    .unwrap_or_else(|| to.addr.ip().to_string());
                Some(
                    ServerName::try_from(name.clone())
                        .map_err(|_| format!("'{name}' is not a usable TLS server name"))?,
                )
            }
        };
        Ok(Self {
            label: to.label(),
            to,
            opts,
            server_name,
            fails: AtomicU32::new(0),
            probing: AtomicBool::new(false),
            idle: Arc::default(),
            h2: tokio::sync::Mutex::new(None),
        })
    }

    /// Down: more than `max_fails` health checks in a row failed (never, with `max_fails 0`).
    pub fn down(&self) -> bool {
        self.opts.max_fails != 0 && self.fails.load(Ordering::Relaxed) > self.opts.max_fails
    }

    /// The transport for a query: TLS and HTTPS upstreams always use theirs.
    pub fn proto_for(&self, wanted: Proto) -> Proto {
        match self.to.scheme {
            Scheme::Tls => Proto::Tls,
            Scheme::Https => Proto::Https,
            Scheme::Dns => wanted,
        }
    }

    /// Sends `query` (whose first two bytes are its ID) and returns the answer with that ID.
    pub async fn exchange(&self, query: &[u8], proto: Proto) -> Result<Vec<u8>, ExchangeError> {
        let id = [query[0], query[1]];
        for attempt in 0..2 {
            // A second attempt always dials: the other kept connections may be as stale.
            let (mut conn, cached) = if proto == Proto::Https {
                self.https_conn(attempt > 0).await?
            } else {
                let kept = if attempt == 0 { self.take(proto) } else { None };
                match kept {
                    Some(c) => (c, true),
                    None => (self.dial(proto).await?, false),
                }
            };
            self.count_conn(proto, cached);
            let result =
                tokio::time::timeout(self.opts.read_timeout, roundtrip(&mut conn, query, id))
                    .await
                    .unwrap_or(Err(ExchangeError::Timeout));
            match result {
                Ok(answer) => {
                    self.put(conn, proto);
                    return Ok(answer);
                }
                // A kept connection the upstream closed meanwhile: once more, on a new one.
                Err(ExchangeError::Closed | ExchangeError::Io(_)) if cached => continue,
                Err(e) => return Err(e),
            }
        }
        Err(ExchangeError::Closed)
    }

    /// The kept HTTP/2 connection (and `true`), unless it is closed, past `expire`, or
    /// `fresh` is asked for; else a new one, kept.
    async fn https_conn(&self, fresh: bool) -> Result<(Conn, bool), ExchangeError> {
        let mut kept = self.h2.lock().await;
        let now = Instant::now();
        if !fresh
            && let Some((doh, since)) = kept.as_mut()
            && !doh.send.is_closed()
            && now.duration_since(*since) < self.opts.expire
        {
            *since = now;
            return Ok((Conn::Https(doh.clone()), true));
        }
        *kept = None;
        let conn = self.dial_https().await?;
        if let Conn::Https(doh) = &conn {
            *kept = Some((doh.clone(), now));
        }
        Ok((conn, false))
    }

    fn count_conn(&self, proto: Proto, hit: bool) {
        let f = &self.opts.metrics.forward;
        let (new, legacy) = if hit {
            (&f.conn_cache_hits, &f.legacy_conn_cache_hits)
        } else {
            (&f.conn_cache_misses, &f.legacy_conn_cache_misses)
        };
        new.with_label_values(&["forward", &self.label, proto.label()])
            .inc();
        legacy
            .with_label_values(&[&self.label, proto.label()])
            .inc();
    }

    fn take(&self, proto: Proto) -> Option<Conn> {
        let mut pool = crate::sync::lock(&self.idle);
        pool.expire(Instant::now(), self.opts.expire);
        // The most recently used: the least likely to have been closed by the upstream.
        let at = pool.conns.iter().rposition(|i| i.proto == proto)?;
        pool.conns.remove(at).map(|i| i.conn)
    }

    fn put(&self, conn: Conn, proto: Proto) {
        if proto == Proto::Https {
            return; // kept in `h2` from the start
        }
        let mut pool = crate::sync::lock(&self.idle);
        if self.opts.max_idle != 0 && pool.conns.len() >= self.opts.max_idle {
            return;
        }
        pool.conns.push_back(Idle {
            conn,
            proto,
            since: Instant::now(),
        });
        if !pool.sweeping {
            pool.sweeping = true;
            tokio::spawn(sweep(Arc::downgrade(&self.idle), self.opts.expire));
        }
    }

    async fn dial(&self, proto: Proto) -> Result<Conn, ExchangeError> {
        let addr = self.to.addr;
        match proto {
            Proto::Udp => {
                let local: SocketAddr = match self.opts.source {
                    Some(ip) => SocketAddr::new(ip, 0),
                    None if addr.is_ipv4() => "0.0.0.0:0".parse().expect("literal"),
                    None => "[::]:0".parse().expect("literal"),
                };
                let sock = UdpSocket::bind(local).await?;
                sock.connect(addr).await?;
                Ok(Conn::Udp(sock))
            }
            Proto::Tcp => Ok(Conn::Tcp(tcp(addr, self.opts.source).await?)),
            Proto::Tls => {
                let (Some((connector, _)), Some(name)) = (&self.opts.tls, &self.server_name) else {
                    return Err(ExchangeError::Tls("no TLS configuration".into()));
                };
                let stream = tcp(addr, self.opts.source).await?;
                let tls =
                    tokio::time::timeout(DIAL_TIMEOUT, connector.connect(name.clone(), stream))
                        .await
                        .map_err(|_| ExchangeError::Timeout)?
                        .map_err(|e| ExchangeError::Tls(e.to_string()))?;
                Ok(Conn::Tls(Box::new(tls)))
            }
            Proto::Https => self.dial_https().await,
        }
    }

    /// A TLS connection offering `h2`, and an HTTP/2 connection over it, whose driver runs
    /// until every handle is dropped or the upstream closes it.
    async fn dial_https(&self) -> Result<Conn, ExchangeError> {
        let (Some((connector, _)), Some(name)) = (&self.opts.doh, &self.server_name) else {
            return Err(ExchangeError::Tls("no TLS configuration".into()));
        };
        let stream = tcp(self.to.addr, self.opts.source).await?;
        let dial = async {
            let tls = connector
                .connect(name.clone(), stream)
                .await
                .map_err(|e| ExchangeError::Tls(e.to_string()))?;
            if tls.get_ref().1.alpn_protocol() != Some(b"h2") {
                return Err(ExchangeError::Http(
                    "the upstream does not speak HTTP/2 (no h2 in TLS's ALPN)".into(),
                ));
            }
            let io = hyper_util::rt::TokioIo::new(tls);
            hyper::client::conn::http2::handshake(hyper_util::rt::TokioExecutor::new(), io)
                .await
                .map_err(|e| ExchangeError::Http(e.to_string()))
        };
        let (send, driver) = tokio::time::timeout(DIAL_TIMEOUT, dial)
            .await
            .map_err(|_| ExchangeError::Timeout)??;
        tokio::spawn(async move {
            if let Err(e) = driver.await {
                tracing::debug!("plugin/forward: HTTP/2 connection ended: {e}");
            }
        });
        let authority = match name {
            ServerName::DnsName(n) if self.to.addr.port() == 443 => n.as_ref().to_string(),
            ServerName::DnsName(n) => format!("{}:{}", n.as_ref(), self.to.addr.port()),
            _ => self.to.addr.to_string(),
        };
        Ok(Conn::Https(Doh {
            send,
            url: Arc::from(format!("https://{authority}{DOH_PATH}")),
            method: self.opts.doh_method,
        }))
    }

    /// One health check: any answer is healthy, and resets the count of failures.
    pub async fn check(&self) -> bool {
        let mut msg = Message::new(rand::random(), MessageType::Query, OpCode::Query);
        msg.metadata.recursion_desired = self.opts.health.recursion_desired;
        msg.add_query(Query::query(
            self.opts.health.domain.clone(),
            RecordType::NS,
        ));
        let Ok(bytes) = msg.to_vec() else {
            return false;
        };
        let proto = self.proto_for(if self.opts.force_tcp {
            Proto::Tcp
        } else {
            Proto::Udp
        });
        // A fresh connection: a check says whether the upstream answers now.
        let ok = tokio::time::timeout(CHECK_TIMEOUT, async {
            let mut conn = self.dial(proto).await?;
            roundtrip(&mut conn, &bytes, [bytes[0], bytes[1]]).await
        })
        .await
        .is_ok_and(|r| r.is_ok());
        if ok {
            self.fails.store(0, Ordering::Relaxed);
        } else {
            self.fails.fetch_add(1, Ordering::Relaxed);
            let f = &self.opts.metrics.forward;
            f.healthcheck_failures
                .with_label_values(&["forward", &self.label])
                .inc();
            f.legacy_healthcheck_failures
                .with_label_values(&[&self.label])
                .inc();
        }
        ok
    }

    /// After a failed exchange: checks now, and again every interval until a check passes.
    /// One probe at a time per upstream; it ends when the upstream is dropped (a reload).
    pub fn start_probe(self: &Arc<Self>) {
        if self.opts.max_fails == 0 || self.probing.swap(true, Ordering::AcqRel) {
            return;
        }
        let weak: Weak<Proxy> = Arc::downgrade(self);
        tokio::spawn(async move {
            loop {
                let Some(proxy) = weak.upgrade() else { return };
                if proxy.check().await {
                    proxy.probing.store(false, Ordering::Release);
                    tracing::debug!("plugin/forward: {} is healthy again", proxy.label);
                    return;
                }
                let interval = proxy.opts.health.interval;
                drop(proxy);
                tokio::time::sleep(interval).await;
            }
        });
    }
}

/// A TCP connection to `addr`, from `source` where one is set.
async fn tcp(
    addr: SocketAddr,
    source: Option<std::net::IpAddr>,
) -> Result<TcpStream, ExchangeError> {
    let connect = async {
        match source {
            None => TcpStream::connect(addr).await,
            Some(ip) => {
                let sock = if ip.is_ipv4() {
                    tokio::net::TcpSocket::new_v4()?
                } else {
                    tokio::net::TcpSocket::new_v6()?
                };
                sock.bind(SocketAddr::new(ip, 0))?;
                sock.connect(addr).await
            }
        }
    };
    let s = tokio::time::timeout(DIAL_TIMEOUT, connect)
        .await
        .map_err(|_| ExchangeError::Timeout)??;
    s.set_nodelay(true)?;
    Ok(s)
}

async fn roundtrip(conn: &mut Conn, query: &[u8], id: [u8; 2]) -> Result<Vec<u8>, ExchangeError> {
    match conn {
        Conn::Udp(sock) => {
            sock.send(query).await?;
            let mut buf = vec![0u8; UDP_BUFFER];
            loop {
                let n = sock.recv(&mut buf).await?;
                // An answer to an earlier query that timed out on this socket: not ours.
                if n >= 12 && buf[..2] == id {
                    buf.truncate(n);
                    return Ok(buf);
                }
            }
        }
        Conn::Tcp(s) => stream_roundtrip(s, query, id).await,
        Conn::Tls(s) => stream_roundtrip(s.as_mut(), query, id).await,
        Conn::Https(doh) => doh_roundtrip(doh, query, id).await,
    }
}

/// The type of a DNS message over HTTP (RFC 8484 section 6).
const DNS_MESSAGE: &str = "application/dns-message";

/// The largest answer read over HTTPS: a DNS message's largest.
const DOH_MAX_ANSWER: usize = 65_535;

/// One query over DNS over HTTPS. The query goes with ID 0, as RFC 8484 (section 4.1) asks so
/// that HTTP caches can share answers; the answer gets the query's ID back.
async fn doh_roundtrip(doh: &mut Doh, query: &[u8], id: [u8; 2]) -> Result<Vec<u8>, ExchangeError> {
    use base64::Engine;
    use http_body_util::BodyExt;
    let mut q = query.to_vec();
    q[..2].copy_from_slice(&[0, 0]);
    let builder = hyper::Request::builder().header(hyper::header::ACCEPT, DNS_MESSAGE);
    let request = match doh.method {
        DohMethod::Post => builder
            .method(hyper::Method::POST)
            .uri(&*doh.url)
            .header(hyper::header::CONTENT_TYPE, DNS_MESSAGE)
            .body(http_body_util::Full::new(bytes::Bytes::from(q))),
        DohMethod::Get => {
            let dns = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(&q);
            builder
                .method(hyper::Method::GET)
                .uri(format!("{}?dns={dns}", doh.url))
                .body(http_body_util::Full::new(bytes::Bytes::new()))
        }
    }
    .map_err(|e| ExchangeError::Http(e.to_string()))?;
    doh.send.ready().await.map_err(|_| ExchangeError::Closed)?;
    let response = doh.send.send_request(request).await.map_err(|e| {
        match e.is_closed() || e.is_canceled() {
            true => ExchangeError::Closed,
            false => ExchangeError::Http(e.to_string()),
        }
    })?;
    let status = response.status();
    if status != hyper::StatusCode::OK {
        return Err(ExchangeError::Http(format!("status {status}")));
    }
    let body = http_body_util::Limited::new(response.into_body(), DOH_MAX_ANSWER)
        .collect()
        .await
        .map_err(|e| ExchangeError::Http(e.to_string()))?
        .to_bytes();
    if body.len() < 12 {
        return Err(ExchangeError::Http(format!(
            "an answer of {} bytes is no DNS message",
            body.len()
        )));
    }
    let mut answer = body.to_vec();
    answer[..2].copy_from_slice(&id);
    Ok(answer)
}

async fn stream_roundtrip<S: AsyncRead + AsyncWrite + Unpin>(
    s: &mut S,
    query: &[u8],
    id: [u8; 2],
) -> Result<Vec<u8>, ExchangeError> {
    let len = u16::try_from(query.len())
        .map_err(|_| std::io::Error::other("query larger than 65535 bytes"))?;
    let mut framed = Vec::with_capacity(query.len() + 2);
    framed.extend_from_slice(&len.to_be_bytes());
    framed.extend_from_slice(query);
    s.write_all(&framed).await.map_err(closed)?;
    s.flush().await.map_err(closed)?;
    loop {
        let mut len = [0u8; 2];
        s.read_exact(&mut len).await.map_err(closed)?;
        let mut buf = vec![0u8; usize::from(u16::from_be_bytes(len))];
        s.read_exact(&mut buf).await.map_err(closed)?;
        if buf.len() >= 12 && buf[..2] == id {
            return Ok(buf);
        }
    }
}

/// End of stream and resets on a stream mean the upstream closed it.
fn closed(e: std::io::Error) -> ExchangeError {
    use std::io::ErrorKind::*;
    match e.kind() {
        UnexpectedEof | ConnectionReset | BrokenPipe | ConnectionAborted => ExchangeError::Closed,
        _ => ExchangeError::Io(e),
    }
}

/// The TLS client of one `forward`: its roots (system, or `tls CA`), and a client certificate
/// if `tls CERT KEY` gives one.
/// With `h2`, it offers HTTP/2 (ALPN), for DNS over HTTPS.
pub fn tls_connector(
    files: &crate::plugin::forward::config::TlsFiles,
    h2: bool,
) -> Result<TlsConnector, String> {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};
    let mut roots = rustls::RootCertStore::empty();
    match &files.ca {
        Some(ca) => {
            let certs = CertificateDer::pem_file_iter(ca)
                .map_err(|e| format!("cannot read CA file {}: {e}", ca.display()))?;
            for c in certs {
                let c = c.map_err(|e| format!("bad certificate in {}: {e}", ca.display()))?;
                roots
                    .add(c)
                    .map_err(|e| format!("bad CA certificate in {}: {e}", ca.display()))?;
            }
        }
        None => {
            let native = rustls_native_certs::load_native_certs();
            for c in native.certs {
                let _ = roots.add(c);
            }
        }
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .with_root_certificates(roots);
    let mut config = match &files.cert_key {
        Some((cert, key)) => {
            let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(cert)
                .map_err(|e| format!("cannot read certificate {}: {e}", cert.display()))?
                .collect::<Result<_, _>>()
                .map_err(|e| format!("bad certificate in {}: {e}", cert.display()))?;
            let key = PrivateKeyDer::from_pem_file(key)
                .map_err(|e| format!("cannot read key {}: {e}", key.display()))?;
            builder
                .with_client_auth_cert(chain, key)
                .map_err(|e| format!("client certificate: {e}"))?
        }
        None => builder.with_no_client_auth(),
    };
    if h2 {
        config.alpn_protocols = vec![b"h2".to_vec()];
    }
    Ok(TlsConnector::from(Arc::new(config)))
}
