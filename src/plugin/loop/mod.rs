//! `loop`: finds a forwarding loop at start, as CoreDNS's `loop` does.
//!
//! Once the server listens, it sends itself `<random>.<random>.ZONE. HINFO`. That name exists
//! nowhere, so the query goes out through `forward`; if an upstream sends it back to us (a
//! node's resolv.conf pointing at the cluster DNS, say), it arrives again and again. Seen more
//! than twice, the process exits with a message naming the upstream. Once the probe is answered,
//! the check is off.

pub mod config;

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use hickory_proto::op::{Message, MessageType, OpCode, Query};
use hickory_proto::rr::{LowerName, Name, RecordType};

use crate::plugin::PluginError;
use crate::plugin::setup::Setup;
use crate::plugin::shared::services::SentUpstream;
use crate::plugin::{Handler, HandlerFuture, Next, Request};

/// How long the probe is sent for before the check gives up (CoreDNS: 30 s).
pub const PROBE_FOR: Duration = Duration::from_secs(30);

/// The probe of one server block.
pub struct Probe {
    zone: Name,
    name: Name,
    lower: LowerName,
    seen: AtomicU32,
    done: AtomicBool,
    /// Where `forward` sent the probe.
    upstreams: Mutex<Vec<String>>,
    /// Where the server listens: `127.0.0.1:53`.
    listen: Mutex<Option<SocketAddr>>,
}

impl Probe {
    pub fn new(zone: &Name) -> Self {
        let label = || rand::random_range(0u64..u64::MAX).to_string();
        let name = Name::from_ascii(format!("{}.{}", label(), label()))
            .and_then(|n| n.append_domain(zone))
            .unwrap_or_else(|_| zone.clone());
        Self {
            zone: zone.clone(),
            lower: LowerName::new(&name),
            name,
            seen: AtomicU32::new(0),
            done: AtomicBool::new(false),
            upstreams: Mutex::new(Vec::new()),
            listen: Mutex::new(None),
        }
    }

    fn arrived(&self, req: &Request) {
        if self.done.load(Ordering::Relaxed)
            || req.query.query_type() != RecordType::HINFO
            || *req.query.name() != self.lower
        {
            return;
        }
        let seen = self.seen.fetch_add(1, Ordering::AcqRel) + 1;
        if seen > 2 {
            let upstreams = crate::sync::lock(&self.upstreams).join(", ");
            let listen = crate::sync::lock(&self.listen)
                .map_or_else(|| "this server".to_string(), |a| a.to_string());
            tracing::error!(
                "plugin/loop: Loop ({} -> {listen}) detected for zone \"{}\": the probe query \
                 \"{} HINFO\" was forwarded to {} and came back {seen} times. That upstream \
                 sends queries back to clusterdns (often a resolv.conf naming this server or \
                 127.0.0.53); point forward at a resolver that does not. \
                 See https://coredns.io/plugins/loop#troubleshooting",
                req.src,
                self.zone,
                self.name,
                if upstreams.is_empty() {
                    "an upstream"
                } else {
                    &upstreams
                },
            );
            std::process::exit(1);
        }
    }

    /// Sends the probe to the server at `addr` until it is answered or [`PROBE_FOR`] passes.
    pub async fn run(self: Arc<Self>, addr: SocketAddr) {
        *crate::sync::lock(&self.listen) = Some(addr);
        let started = Instant::now();
        let mut msg = Message::new(rand::random(), MessageType::Query, OpCode::Query);
        msg.metadata.recursion_desired = true;
        msg.add_query(Query::query(self.name.clone(), RecordType::HINFO));
        let Ok(bytes) = msg.to_vec() else { return };
        while started.elapsed() < PROBE_FOR && !self.done.load(Ordering::Relaxed) {
            if exchange(&bytes, addr).await {
                break;
            }
        }
        self.done.store(true, Ordering::Relaxed);
    }
}

/// One UDP exchange with a timeout: true when any answer came.
async fn exchange(query: &[u8], addr: SocketAddr) -> bool {
    let local: SocketAddr = if addr.is_ipv4() {
        "0.0.0.0:0".parse().expect("literal")
    } else {
        "[::]:0".parse().expect("literal")
    };
    let Ok(sock) = tokio::net::UdpSocket::bind(local).await else {
        tokio::time::sleep(Duration::from_secs(1)).await;
        return false;
    };
    if sock.send_to(query, addr).await.is_err() {
        tokio::time::sleep(Duration::from_secs(1)).await;
        return false;
    }
    let mut buf = [0u8; 512];
    // Longer than forward's deadline, so a slow upstream is not taken for a lost probe.
    matches!(
        tokio::time::timeout(Duration::from_secs(6), sock.recv_from(&mut buf)).await,
        Ok(Ok((n, _))) if n >= 2 && buf[..2] == query[..2]
    )
}

impl SentUpstream for Probe {
    /// `forward` tells where it sent `name`.
    fn sent(&self, name: &LowerName, upstream: &str) {
        if *name == self.lower && !self.done.load(Ordering::Relaxed) {
            let mut u = crate::sync::lock(&self.upstreams);
            if !u.iter().any(|x| x == upstream) {
                u.push(upstream.to_string());
            }
        }
    }
}

pub struct Loop {
    probe: Arc<Probe>,
}

impl Loop {
    pub fn new(probe: Arc<Probe>) -> Self {
        Self { probe }
    }
}

impl Handler for Loop {
    fn name(&self) -> &'static str {
        "loop"
    }

    /// It only watches for its own HINFO probe, which the fast path never answers.
    fn transparent(&self) -> bool {
        true
    }

    fn serve<'a>(&'a self, req: &'a Request<'a>, next: Next<'a>) -> HandlerFuture<'a> {
        self.probe.arrived(req);
        next.serve(req)
    }
}

/// Puts `loop` into the block being set up.
pub fn setup(_: &config::LoopConfig, s: &mut Setup<'_>) -> Result<(), PluginError> {
    let probe = Arc::new(Probe::new(&s.zone()));
    let p = probe.clone();
    s.on_listen(move |addr| {
        tokio::spawn(p.run(addr));
    });
    s.handler(Loop::new(probe.clone()));
    // `forward` tells the probe which upstream sent it back.
    s.share(probe as Arc<dyn SentUpstream>);
    Ok(())
}
