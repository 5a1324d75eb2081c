//! Starting servers and asking them questions over every transport.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::time::Duration;

use hickory_proto::op::{Edns, Message, MessageType, OpCode, Query, ResponseCode};
use hickory_proto::rr::{DNSClass, Name, RData, Record, RecordType};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use std::sync::Arc;

use clusterdns::app::{App, StartOptions};
use clusterdns::config::{self, LoadOptions};
use clusterdns::plugin::Transport;
use clusterdns::server::listen::Limits;

pub const LOCALHOST: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);

/// The repository root.
pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Starts a server from Corefile text (named `file` for errors and imports) on 127.0.0.1.
pub async fn start(file: &Path, corefile: &str) -> Arc<App> {
    start_with(file, corefile, Limits::default()).await
}

/// Like [`start`], with what one client may cost.
pub async fn start_with(file: &Path, corefile: &str, limits: Limits) -> Arc<App> {
    starting(file, corefile, limits)
        .await
        .expect("server starts")
}

/// Starts a server from Corefile text that loads but must not start (a file it reads is
/// broken, say): the error, with its causes.
pub async fn start_error(file: &Path, corefile: &str) -> String {
    match starting(file, corefile, Limits::default()).await {
        Ok(_) => panic!("started:\n{corefile}"),
        Err(e) => format!("{e:#}"),
    }
}

/// Loads Corefile text (it must load) and starts it on 127.0.0.1.
async fn starting(file: &Path, corefile: &str, limits: Limits) -> anyhow::Result<Arc<App>> {
    let cfg = config::from_str(
        &file.display().to_string(),
        corefile,
        &LoadOptions::default(),
    )
    .unwrap_or_else(|e| panic!("Corefile does not load:\n{e}\n{corefile}"));
    let opts = StartOptions {
        bind: Some(LOCALHOST),
        limits,
        ..StartOptions::default()
    };
    App::start(&cfg, opts).await
}

/// The demo (deploy/local) on 127.0.0.1, on a port of its own.
pub async fn demo() -> Arc<App> {
    demo_with(Limits::default()).await
}

/// The demo with these limits.
pub async fn demo_with(limits: Limits) -> Arc<App> {
    let corefile = root().join("deploy/local/Corefile");
    let text = std::fs::read_to_string(&corefile)
        .expect("the demo Corefile")
        .replace(":1053", ":0");
    start_with(&corefile, &text, limits).await
}

/// A folder `objects` in `dir` holding the demo's cluster and `extra` (file name, YAML text):
/// what a `kubernetes` block's `objects` then reads whole.
pub fn demo_objects(dir: &Path, extra: &[(&str, &str)]) -> PathBuf {
    let objects = dir.join("objects");
    std::fs::create_dir_all(&objects).unwrap();
    std::fs::copy(
        root().join("deploy/local/cluster.yaml"),
        objects.join("cluster.yaml"),
    )
    .unwrap();
    for (name, text) in extra {
        std::fs::write(objects.join(name), text).unwrap();
    }
    objects
}

/// A query as dig sends it by default: RD set, EDNS with a 1232-byte buffer when `edns`.
pub fn query(name: &str, qtype: RecordType, edns: Option<u16>) -> Message {
    let mut m = Message::new(rand_id(), MessageType::Query, OpCode::Query);
    m.metadata.recursion_desired = true;
    m.add_query(Query::query(
        Name::from_ascii(name).expect("valid name"),
        qtype,
    ));
    if let Some(size) = edns {
        let mut e = Edns::new();
        e.set_max_payload(size);
        m.edns = Some(e);
    }
    m
}

fn rand_id() -> u16 {
    use std::sync::atomic::{AtomicU16, Ordering};
    static NEXT: AtomicU16 = AtomicU16::new(4242);
    NEXT.fetch_add(7, Ordering::Relaxed)
}

pub async fn ask(running: &App, port: u16, bytes: &[u8], how: Transport) -> Option<Vec<u8>> {
    let l = running.listener(port).expect("listener");
    match how {
        Transport::Udp => udp(l.udp, bytes).await,
        Transport::Tcp => tcp(l.tcp, bytes).await,
    }
}

pub async fn in_process(running: &App, port: u16, bytes: &[u8]) -> Option<Vec<u8>> {
    let router = running.router(port).expect("router");
    let src = SocketAddr::new(LOCALHOST, 40000);
    router.handle_bytes(bytes, src, Transport::Udp).await
}

/// Sends one datagram and waits up to 2 s for the answer (`None`: silence).
pub async fn udp(to: SocketAddr, bytes: &[u8]) -> Option<Vec<u8>> {
    let sock = tokio::net::UdpSocket::bind((LOCALHOST, 0)).await.ok()?;
    sock.send_to(bytes, to).await.ok()?;
    let mut buf = vec![0u8; 65535];
    let n = tokio::time::timeout(Duration::from_secs(2), sock.recv(&mut buf))
        .await
        .ok()?
        .ok()?;
    buf.truncate(n);
    Some(buf)
}

/// One length-prefixed message over a new TCP connection.
pub async fn tcp(to: SocketAddr, bytes: &[u8]) -> Option<Vec<u8>> {
    let mut s = tokio::net::TcpStream::connect(to).await.ok()?;
    let mut framed = (bytes.len() as u16).to_be_bytes().to_vec();
    framed.extend_from_slice(bytes);
    s.write_all(&framed).await.ok()?;
    let read = async {
        let mut len = [0u8; 2];
        s.read_exact(&mut len).await.ok()?;
        let mut buf = vec![0u8; u16::from_be_bytes(len) as usize];
        s.read_exact(&mut buf).await.ok()?;
        Some(buf)
    };
    tokio::time::timeout(Duration::from_secs(2), read)
        .await
        .ok()?
}

/// Rcode names as CoreDNS writes them, except 16, which with an OPT record means BADVERS.
pub fn rcode_name(r: ResponseCode) -> String {
    match clusterdns::observe::metrics::rcode_label(r).as_ref() {
        "BADSIG" => "BADVERS".into(),
        name => name.into(),
    }
}

/// A record in zone-file form, `name ttl IN TYPE rdata`, with SOA serials written `SERIAL`
/// (they change with the data).
pub fn fmt_record(r: &Record) -> String {
    if let RData::SOA(soa) = &r.data {
        return format!(
            "{} {} {} SOA {} {} SERIAL {} {} {} {}",
            r.name,
            r.ttl,
            r.dns_class,
            soa.mname,
            soa.rname,
            soa.refresh,
            soa.retry,
            soa.expire,
            soa.minimum
        );
    }
    r.to_string()
}

/// Waits until the server is ready (its sources have listed everything), at most 20 s.
pub async fn until_ready(running: &App) {
    for _ in 0..400 {
        if running.is_ready() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("not ready after 20 s");
}

/// A reply as tests read it: the rcode, the `aa` bit, and each section as `name ttl TYPE data`.
pub struct Sections {
    pub rcode: String,
    pub aa: bool,
    pub answers: Vec<String>,
    pub authority: Vec<String>,
    pub additional: Vec<String>,
}

/// Asks the server's first listener over UDP (EDNS, 1232 bytes) and reads the reply's sections.
pub async fn ask_sections(
    running: &App,
    name: &str,
    qtype: RecordType,
    class: DNSClass,
) -> Sections {
    let mut q = query(name, qtype, Some(1232));
    q.queries[0].set_query_class(class);
    let port = running.listeners()[0].port;
    let bytes = ask(running, port, &q.to_vec().unwrap(), Transport::Udp)
        .await
        .expect("an answer");
    let msg = Message::from_vec(&bytes).unwrap();
    let show = |rs: &[Record]| {
        rs.iter()
            .map(|r| format!("{} {} {} {}", r.name, r.ttl, r.record_type(), r.data))
            .collect()
    };
    Sections {
        rcode: rcode_name(msg.metadata.response_code),
        aa: msg.metadata.authoritative,
        answers: show(&msg.answers),
        authority: show(&msg.authorities),
        additional: show(&msg.additionals),
    }
}

/// Where each record's TTL is in the message `m` (the OPT record's too: its "TTL" is flags).
fn ttl_offsets(m: &[u8]) -> Option<Vec<usize>> {
    let count = |i: usize| -> Option<usize> {
        Some(usize::from(u16::from_be_bytes([
            *m.get(i)?,
            *m.get(i + 1)?,
        ])))
    };
    let name_end = |mut at: usize| -> Option<usize> {
        loop {
            let len = *m.get(at)?;
            match len {
                0 => return Some(at + 1),
                l if l & 0xC0 == 0xC0 => return Some(at + 2),
                l => at += 1 + usize::from(l),
            }
        }
    };
    let mut at = 12;
    for _ in 0..count(4)? {
        at = name_end(at)? + 4;
    }
    let records = count(6)? + count(8)? + count(10)?;
    let mut ttls = Vec::with_capacity(records);
    for _ in 0..records {
        at = name_end(at)?;
        ttls.push(at + 4);
        at += 10 + count(at + 8)?;
    }
    (at == m.len()).then_some(ttls)
}

/// Whether two answers are the same to the byte but for TTLs a second apart: what a cache
/// answers twice, its countdown crossing a second between the two.
pub fn same_but_a_second(a: &[u8], b: &[u8]) -> bool {
    if a == b {
        return true;
    }
    let (Some(ta), Some(tb)) = (ttl_offsets(a), ttl_offsets(b)) else {
        return false;
    };
    if a.len() != b.len() || ta != tb {
        return false;
    }
    let (mut a, mut b) = (a.to_vec(), b.to_vec());
    for at in ta {
        let ttl = |m: &[u8]| u32::from_be_bytes([m[at], m[at + 1], m[at + 2], m[at + 3]]);
        if ttl(&a).abs_diff(ttl(&b)) > 1 {
            return false;
        }
        a[at..at + 4].fill(0);
        b[at..at + 4].fill(0);
    }
    a == b
}

/// A loopback port, free for UDP and TCP, for a server a test starts later (a child process,
/// Knot). Taken from below the kernel's range of ephemeral ports (`ip_local_port_range`,
/// 32768 and up by default): a port picked by binding port 0 and letting go could be handed
/// to any other socket bound to port 0 meanwhile (every test's clients make such sockets) and
/// be taken before the server binds it, which made tests fail now and then on a busy machine.
pub fn free_port() -> u16 {
    use std::sync::atomic::{AtomicU32, Ordering};
    let low: u32 = std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
        .ok()
        .and_then(|t| t.split_whitespace().next()?.parse().ok())
        .unwrap_or(32768);
    let (first, span) = (10_000u32, low.saturating_sub(10_000).max(1000));
    // Each process starts somewhere else, so that two test binaries rarely ask the same ports.
    static NEXT: AtomicU32 = AtomicU32::new(u32::MAX);
    let _ = NEXT.compare_exchange(
        u32::MAX,
        std::process::id().wrapping_mul(7919) % span,
        Ordering::SeqCst,
        Ordering::SeqCst,
    );
    loop {
        let port = (first + NEXT.fetch_add(1, Ordering::SeqCst) % span) as u16;
        let udp = std::net::UdpSocket::bind(("127.0.0.1", port));
        let tcp = std::net::TcpListener::bind(("127.0.0.1", port));
        if udp.is_ok() && tcp.is_ok() {
            return port;
        }
    }
}
