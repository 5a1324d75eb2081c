//! One collector: dnstap payloads queued without waiting, and a task that writes them as a
//! Frame Streams bidirectional session (READY, ACCEPT, START, data frames; STOP and FINISH at
//! the end) over a unix socket, TCP or TLS. A slow or absent collector never holds a query: the
//! queue is bounded, and what does not fit, or comes while there is no session, is dropped and
//! counted (`clusterdns_dnstap_dropped_total`).
//!
//! With `listen`, collectors connect instead ([`super::listen`]), and each has a queue of its
//! own.

use std::net::IpAddr;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use prometheus::IntCounter;
use prost::Message as _;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, BufWriter};
use tokio::sync::mpsc;

use super::config::{DnstapConfig, Sink};
use super::listen::Listener;
use super::proto;
use crate::plugin::shared::services::{MessageTap, TapEvent, TapKind, TapWire};

/// The Frame Streams content type of dnstap.
pub const CONTENT_TYPE: &[u8] = b"protobuf:dnstap.Dnstap";
/// Frame Streams control frame types.
pub const ACCEPT: u32 = 1;
pub const START: u32 = 2;
pub const STOP: u32 = 3;
pub const READY: u32 = 4;
pub const FINISH: u32 = 5;
/// The control field that carries a content type.
const FIELD_CONTENT_TYPE: u32 = 1;

/// Payloads waiting for the collector, times QUEUE; beyond this they are dropped.
pub const QUEUE: usize = 10_000;
/// How long connecting and the handshake may take.
pub const HANDSHAKE: Duration = Duration::from_secs(2);

/// The dnstap message type of a tapped message.
fn proto_type(kind: TapKind) -> proto::message::Type {
    match kind {
        TapKind::ClientQuery => proto::message::Type::ClientQuery,
        TapKind::ClientResponse => proto::message::Type::ClientResponse,
        TapKind::ForwarderQuery => proto::message::Type::ForwarderQuery,
        TapKind::ForwarderResponse => proto::message::Type::ForwarderResponse,
    }
}

pub struct Tap {
    out: Out,
    full: bool,
    identity: Vec<u8>,
    version: Vec<u8>,
    extra: Option<Vec<u8>>,
    dropped: IntCounter,
}

fn split(t: SystemTime) -> (u64, u32) {
    let d = t.duration_since(UNIX_EPOCH).unwrap_or_default();
    (d.as_secs(), d.subsec_nanos())
}

fn ip_bytes(ip: IpAddr) -> Vec<u8> {
    match ip {
        IpAddr::V4(v4) => v4.octets().to_vec(),
        IpAddr::V6(v6) => v6.octets().to_vec(),
    }
}

/// Where a tap's payloads go.
enum Out {
    /// The queue of the one collector it connects to.
    Collector(mpsc::Sender<bytes::Bytes>),
    /// The collectors connected to it (`listen`).
    Listening(Listener),
}

/// How the session's socket is set up: its send buffer (WRITEBUFFER MiB).
#[derive(Clone, Copy)]
pub struct SocketOptions {
    pub send_buffer: Option<usize>,
}

impl SocketOptions {
    pub fn apply<S: std::os::fd::AsFd>(&self, s: &S) {
        if let Some(bytes) = self.send_buffer {
            let _ = socket2::SockRef::from(s).set_send_buffer_size(bytes);
        }
    }
}

impl Tap {
    /// A tap writing to `cfg`'s collector from a task of the current runtime, or with
    /// `listen` to the collectors that connect; an error where its socket cannot be bound.
    pub fn start(cfg: &DnstapConfig, dropped: IntCounter) -> Result<std::sync::Arc<Tap>, String> {
        let queue = QUEUE * cfg.queue as usize;
        let opts = SocketOptions {
            send_buffer: cfg.write_buffer_mib.map(|m| m as usize * 1024 * 1024),
        };
        let out = if cfg.listen {
            Out::Listening(Listener::start(cfg, queue, opts)?)
        } else {
            let (tx, rx) = mpsc::channel(queue);
            let tls = match cfg.sink {
                Sink::Tls(_) => Some(tokio_rustls::TlsConnector::from(std::sync::Arc::new(
                    // The system's roots are files: read them as setup reads files.
                    crate::plugin::shared::blocking(|| {
                        crate::plugin::shared::tls::client_config(cfg.skip_verify)
                    })?,
                ))),
                _ => None,
            };
            if let Ok(rt) = tokio::runtime::Handle::try_current() {
                let to = Collector {
                    sink: cfg.sink.clone(),
                    tls,
                    opts,
                };
                rt.spawn(write_loop(to, rx, dropped.clone()));
            }
            Out::Collector(tx)
        };
        Ok(std::sync::Arc::new(Tap {
            out,
            full: cfg.full,
            identity: cfg.identity.clone().into_bytes(),
            version: cfg.version.clone().into_bytes(),
            extra: cfg.extra.clone().map(String::into_bytes),
            dropped,
        }))
    }
}

impl MessageTap for Tap {
    /// Queues one message; never waits.
    fn emit(&self, e: &TapEvent) {
        if let Out::Listening(l) = &self.out
            && !l.has_collectors()
        {
            return; // nobody to send it to: nothing is lost either
        }
        let family = e.query_from.or(e.response_from).map(|a| match a.ip() {
            IpAddr::V4(_) => proto::SocketFamily::Inet,
            IpAddr::V6(_) => proto::SocketFamily::Inet6,
        });
        let (qs, qn) = split(e.query_time);
        let mut m = proto::Message {
            r#type: proto_type(e.kind) as i32,
            socket_family: family.map(|f| f as i32),
            socket_protocol: Some(match e.wire {
                TapWire::Udp => proto::SocketProtocol::Udp,
                TapWire::Tcp => proto::SocketProtocol::Tcp,
                TapWire::Tls => proto::SocketProtocol::Dot,
                TapWire::Https => proto::SocketProtocol::Doh,
            } as i32),
            query_address: e.query_from.map(|a| ip_bytes(a.ip())),
            query_port: e.query_from.map(|a| u32::from(a.port())),
            response_address: e.response_from.map(|a| ip_bytes(a.ip())),
            response_port: e.response_from.map(|a| u32::from(a.port())),
            query_time_sec: Some(qs),
            query_time_nsec: Some(qn),
            ..Default::default()
        };
        if let Some(t) = e.response_time {
            let (rs, rn) = split(t);
            m.response_time_sec = Some(rs);
            m.response_time_nsec = Some(rn);
        }
        if self.full {
            m.query_message = e.query.map(<[u8]>::to_vec);
            m.response_message = e.response.map(<[u8]>::to_vec);
        }
        let frame = proto::Dnstap {
            identity: Some(self.identity.clone()),
            version: Some(self.version.clone()),
            extra: self.extra.clone(),
            r#type: proto::dnstap::Type::Message as i32,
            message: Some(m),
        };
        let frame = bytes::Bytes::from(frame.encode_to_vec());
        match &self.out {
            Out::Collector(tx) => {
                if tx.try_send(frame).is_err() {
                    self.dropped.inc();
                }
            }
            Out::Listening(l) => l.send(frame, &self.dropped),
        }
    }
}

/// A control frame: the escape, its length, its type, and the content type where it has one.
pub fn control(kind: u32, content_type: bool) -> Vec<u8> {
    let mut body = kind.to_be_bytes().to_vec();
    if content_type {
        body.extend_from_slice(&FIELD_CONTENT_TYPE.to_be_bytes());
        body.extend_from_slice(&(CONTENT_TYPE.len() as u32).to_be_bytes());
        body.extend_from_slice(CONTENT_TYPE);
    }
    let mut out = 0u32.to_be_bytes().to_vec();
    out.extend_from_slice(&(body.len() as u32).to_be_bytes());
    out.extend_from_slice(&body);
    out
}

/// Reads one control frame and gives its type.
async fn read_control<S: AsyncRead + Unpin>(s: &mut S) -> std::io::Result<u32> {
    let escape = s.read_u32().await?;
    if escape != 0 {
        return Err(std::io::Error::other("expected a control frame"));
    }
    let len = s.read_u32().await? as usize;
    if !(4..=512).contains(&len) {
        return Err(std::io::Error::other("a control frame of a bad length"));
    }
    let mut body = vec![0u8; len];
    s.read_exact(&mut body).await?;
    Ok(u32::from_be_bytes([body[0], body[1], body[2], body[3]]))
}

/// The Frame Streams handshake of a bidirectional writer.
pub async fn handshake<S: AsyncRead + AsyncWrite + Unpin>(s: &mut S) -> std::io::Result<()> {
    s.write_all(&control(READY, true)).await?;
    s.flush().await?;
    if read_control(s).await? != ACCEPT {
        return Err(std::io::Error::other("the collector did not accept"));
    }
    s.write_all(&control(START, true)).await?;
    s.flush().await
}

/// Writes payloads as data frames until the queue closes (a reload dropped the tap) or the
/// session fails; `Ok` when the queue closed.
pub async fn session<S: AsyncRead + AsyncWrite + Unpin>(
    s: S,
    rx: &mut mpsc::Receiver<bytes::Bytes>,
) -> std::io::Result<()> {
    let mut w = BufWriter::new(s);
    loop {
        let Some(frame) = rx.recv().await else {
            w.write_all(&control(STOP, false)).await?;
            w.flush().await?;
            // FINISH, if it comes; the session is over either way.
            let _ = tokio::time::timeout(HANDSHAKE, read_control(w.get_mut())).await;
            return Ok(());
        };
        w.write_u32(frame.len() as u32).await?;
        w.write_all(&frame).await?;
        // Write what is queued in one go; flush when the queue is empty.
        while let Ok(frame) = rx.try_recv() {
            w.write_u32(frame.len() as u32).await?;
            w.write_all(&frame).await?;
        }
        w.flush().await?;
    }
}

/// The collector a tap connects to.
struct Collector {
    sink: Sink,
    /// For a `tls://` collector.
    tls: Option<tokio_rustls::TlsConnector>,
    opts: SocketOptions,
}

async fn connect_and_run(
    to: &Collector,
    rx: &mut mpsc::Receiver<bytes::Bytes>,
) -> std::io::Result<()> {
    match &to.sink {
        Sink::Unix(path) => {
            let mut s =
                tokio::time::timeout(HANDSHAKE, tokio::net::UnixStream::connect(path)).await??;
            to.opts.apply(&s);
            tokio::time::timeout(HANDSHAKE, handshake(&mut s)).await??;
            session(s, rx).await
        }
        Sink::Tcp(addr) | Sink::Tls(addr) => {
            let s = tokio::time::timeout(HANDSHAKE, tokio::net::TcpStream::connect(addr)).await??;
            let _ = s.set_nodelay(true);
            to.opts.apply(&s);
            match &to.tls {
                None => {
                    let mut s = s;
                    tokio::time::timeout(HANDSHAKE, handshake(&mut s)).await??;
                    session(s, rx).await
                }
                Some(connector) => {
                    let name = rustls::pki_types::ServerName::IpAddress(addr.ip().into());
                    let mut s =
                        tokio::time::timeout(HANDSHAKE, connector.connect(name, s)).await??;
                    tokio::time::timeout(HANDSHAKE, handshake(&mut s)).await??;
                    session(s, rx).await
                }
            }
        }
    }
}

/// Keeps a session to the collector, reconnecting after a failure (1 s, doubling to 30 s);
/// what is queued while there is none is dropped and counted.
async fn write_loop(to: Collector, mut rx: mpsc::Receiver<bytes::Bytes>, dropped: IntCounter) {
    let sink = &to.sink;
    let mut wait = Duration::from_secs(1);
    loop {
        match connect_and_run(&to, &mut rx).await {
            Ok(()) => return,
            Err(e) => tracing::warn!("plugin/dnstap: {sink}: {e}; retrying in {wait:?}"),
        }
        let until = tokio::time::Instant::now() + wait;
        loop {
            tokio::select! {
                _ = tokio::time::sleep_until(until) => break,
                frame = rx.recv() => match frame {
                    Some(_) => dropped.inc(),
                    None => return,
                },
            }
        }
        wait = (wait * 2).min(Duration::from_secs(30));
    }
}
