//! The sockets: a UDP loop and a TCP accept loop per port, answering through whatever router is
//! current. A reload swaps the router under running sockets, so no query is dropped and no port
//! is closed for a configuration change.

use std::future::Future;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use arc_swap::ArcSwap;
use tokio::net::{TcpListener, UdpSocket};
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::plugin::Transport;

use super::Router;
use super::mmsg::Answers;

/// How long a stopping listener waits for queries in flight.
pub const DRAIN: Duration = Duration::from_secs(5);

/// What one client may cost the server.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// How long a TCP connection may sit idle between queries.
    pub tcp_idle: Duration,
    /// How long reading one TCP message (once its length arrived) or writing an answer may take.
    pub tcp_io: Duration,
    /// TCP (and TLS) connections open at once on one listener; at the bound the longest-idle
    /// one is closed to make room (see [`super::tcp`]).
    pub max_tcp_connections: usize,
    /// TCP connections open at once from one source address; at the bound that source's
    /// longest-idle one is closed to make room.
    pub max_tcp_per_source: usize,
    /// UDP queries being answered at once; beyond this, new ones are dropped (the client retries),
    /// so a flood costs bounded memory.
    pub max_udp_inflight: usize,
    /// UDP queries answered per second from one source address, for ports whose Corefile blocks
    /// set no `ratelimit`; the rest are read and dropped before any work is done, so one
    /// flooding client cannot starve the others. 0 (the default, as CoreDNS): no limit.
    pub udp_per_source_qps: u32,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            tcp_idle: Duration::from_secs(10),
            tcp_io: Duration::from_secs(3),
            max_tcp_connections: 16_384,
            max_tcp_per_source: 1024,
            max_udp_inflight: 4096,
            udp_per_source_qps: 0,
        }
    }
}

/// UDP and TCP on one port.
pub struct DnsListener {
    /// The UDP port (for a DNS-over-TLS listener, which has none, its TCP port).
    pub udp: SocketAddr,
    pub tcp: SocketAddr,
    /// DNS over TLS (`tls://`): TCP only, each connection a TLS session.
    tls: bool,
    router: Arc<ArcSwap<Router>>,
    stop: CancellationToken,
    tasks: TaskTracker,
}

impl DnsListener {
    /// Binds UDP and TCP on the same port: on `addr` if given, else on every address (IPv6 and
    /// IPv4 where the host has IPv6, IPv4 alone otherwise). Port 0 picks a free port for both.
    pub async fn bind(
        addr: Option<IpAddr>,
        port: u16,
        router: Arc<Router>,
        limits: Limits,
    ) -> std::io::Result<Self> {
        let (udp, tcp) = bind(addr, port).await?;
        let this = Self::new(udp[0].local_addr()?, &tcp, false, router)?;
        let slots = Arc::new(Semaphore::new(limits.max_udp_inflight));
        for sock in udp {
            let port = UdpPort {
                sock: Arc::new(sock),
                router: this.router.clone(),
                tasks: this.tasks.clone(),
                slots: slots.clone(),
            };
            this.tasks.spawn(udp_loop(port, this.stop.clone()));
        }
        this.serve_tcp(tcp, limits);
        Ok(this)
    }

    fn new(
        udp: SocketAddr,
        tcp: &TcpListener,
        tls: bool,
        router: Arc<Router>,
    ) -> std::io::Result<Self> {
        Ok(Self {
            udp,
            tcp: tcp.local_addr()?,
            tls,
            router: Arc::new(ArcSwap::new(router)),
            stop: CancellationToken::new(),
            tasks: TaskTracker::new(),
        })
    }

    /// Takes connections on `tcp` (plain, or TLS where the router has a certificate).
    fn serve_tcp(&self, tcp: TcpListener, limits: Limits) {
        self.tasks.spawn(super::tcp::tcp_loop(
            tcp,
            self.router.clone(),
            self.stop.clone(),
            self.tasks.clone(),
            limits,
        ));
    }

    /// DNS over TLS on `addr` (every address if none) and `port`: a TCP listener whose
    /// connections are TLS sessions, with the certificate of the port's router
    /// ([`Router::tls`], read per connection, so a reload's new certificate serves the next
    /// one), and the plain listener's rules for what a connection may cost.
    pub async fn bind_tls(
        addr: Option<IpAddr>,
        port: u16,
        router: Arc<Router>,
        limits: Limits,
    ) -> std::io::Result<Self> {
        let tcp = bind_tcp(addr, port).await?;
        let this = Self::new(tcp.local_addr()?, &tcp, true, router)?;
        this.serve_tcp(tcp, limits);
        Ok(this)
    }

    /// Whether it serves DNS over TLS.
    pub fn is_tls(&self) -> bool {
        self.tls
    }

    pub fn router(&self) -> Arc<Router> {
        self.router.load_full()
    }

    /// Answers every query from now on with `router`; queries in flight finish with the old one.
    pub fn swap(&self, router: Arc<Router>) {
        self.router.store(router);
    }

    /// Stops taking queries and waits (a bounded time) for those in flight.
    pub async fn stop(self) {
        self.stop.cancel();
        self.tasks.close();
        let _ = tokio::time::timeout(DRAIN, self.tasks.wait()).await;
    }
}

impl Drop for DnsListener {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

/// UDP sockets per port. The kernel spreads clients over them by address and port
/// (SO_REUSEPORT), so a client flooding one socket leaves the others' queues alone, and each
/// socket is read by its own task.
fn udp_sockets_per_port() -> usize {
    std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .max(8)
}

/// The addresses to try binding: `addr`, or every address (IPv6 and IPv4 where the host has
/// IPv6, IPv4 alone otherwise).
fn candidates(addr: Option<IpAddr>) -> Vec<IpAddr> {
    match addr {
        Some(a) => vec![a],
        None => vec![
            IpAddr::V6(Ipv6Addr::UNSPECIFIED),
            IpAddr::V4(Ipv4Addr::UNSPECIFIED),
        ],
    }
}

/// Binds the UDP sockets and the TCP listener of one port.
async fn bind(addr: Option<IpAddr>, port: u16) -> std::io::Result<(Vec<UdpSocket>, TcpListener)> {
    let mut last_err = None;
    for ip in candidates(addr) {
        // With port 0 the kernel picks the UDP port; TCP must then get the same one, which
        // another process may hold: try a few times.
        for _ in 0..if port == 0 { 20 } else { 1 } {
            let first = match udp_socket(SocketAddr::new(ip, port)) {
                Ok(u) => u,
                Err(e) => {
                    last_err = Some(e);
                    break;
                }
            };
            let bound = first.local_addr()?;
            let tcp = match tcp_listener(bound, port != 0) {
                Ok(tcp) => tcp,
                Err(e) => {
                    last_err = Some(e);
                    continue;
                }
            };
            let mut udp = vec![first];
            for _ in 1..udp_sockets_per_port() {
                match udp_socket(bound) {
                    Ok(u) => udp.push(u),
                    Err(e) => {
                        // One socket still serves; only the flood isolation is lost.
                        tracing::debug!("a further UDP socket on {bound}: {e}");
                        break;
                    }
                }
            }
            return Ok((udp, tcp));
        }
    }
    Err(last_err.unwrap_or_else(|| std::io::Error::other("no address to bind")))
}

/// Binds a TCP listener alone (DNS over TLS has no UDP).
async fn bind_tcp(addr: Option<IpAddr>, port: u16) -> std::io::Result<TcpListener> {
    let mut last_err = None;
    for ip in candidates(addr) {
        match tcp_listener(SocketAddr::new(ip, port), port != 0) {
            Ok(l) => return Ok(l),
            Err(e) => last_err = Some(e),
        }
    }
    Err(last_err.unwrap_or_else(|| std::io::Error::other("no address to bind")))
}

/// The backlog a TCP listener asks for: the system's own bound (`net.core.somaxconn`), as Go
/// (and so CoreDNS) asks. Rust's standard library asks for 128, which a burst of connections
/// (a node-local cache rollout, a truncation storm) overflows: the kernel then drops SYNs, and
/// each client waits a second before it sends another.
fn backlog() -> i32 {
    std::fs::read_to_string("/proc/sys/net/core/somaxconn")
        .ok()
        .and_then(|s| s.trim().parse::<i32>().ok())
        .filter(|n| *n > 0)
        .unwrap_or(4096)
}

/// A TCP listener on `addr`, with the system's backlog. `shared`: with SO_REUSEPORT, as
/// CoreDNS binds, so that a second process (a node-local update with surge) binds beside this
/// one. Not for a port the kernel picked: another server that also asked for any port could be
/// given the same one and share it.
fn tcp_listener(addr: SocketAddr, shared: bool) -> std::io::Result<TcpListener> {
    use socket2::{Domain, Protocol, Socket, Type};
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
    if addr.is_ipv6() {
        socket.set_only_v6(false)?;
    }
    socket.set_reuse_address(true)?;
    socket.set_reuse_port(shared)?;
    socket.set_nonblocking(true)?;
    socket.bind(&addr.into())?;
    socket.listen(backlog())?;
    TcpListener::from_std(socket.into())
}

fn udp_socket(addr: SocketAddr) -> std::io::Result<UdpSocket> {
    use socket2::{Domain, Protocol, Socket, Type};
    let socket = Socket::new(Domain::for_address(addr), Type::DGRAM, Some(Protocol::UDP))?;
    if addr.is_ipv6() {
        socket.set_only_v6(false)?;
    }
    socket.set_reuse_port(true)?;
    socket.set_nonblocking(true)?;
    socket.bind(&addr.into())?;
    UdpSocket::from_std(socket.into())
}

/// How many datagrams one turn of a UDP loop reads before it looks at anything else.
const UDP_BATCH: usize = 256;

/// Counts a query (`query`) or an answer (`response`) the UDP loop dropped, under `shed`'s
/// metric.
fn shed(router: &Router, reason: &str) {
    router
        .metrics()
        .shed_dropped
        .with_label_values(&[router.server_label(), reason])
        .inc();
}

/// What the UDP loop of one socket works with.
struct UdpPort {
    sock: Arc<UdpSocket>,
    router: Arc<ArcSwap<Router>>,
    tasks: TaskTracker,
    /// The bound on queries in flight off the fast path, shared by the port's sockets.
    slots: Arc<Semaphore>,
}

async fn udp_loop(port: UdpPort, stop: CancellationToken) {
    // Datagrams are read, and the fast path's answers sent, a batch per system call (see
    // `mmsg`); the buffers are kept from batch to batch: no task, no allocation per query.
    let mut received = super::mmsg::Received::default();
    let mut answers = super::mmsg::Answers::default();
    loop {
        tokio::select! {
            _ = stop.cancelled() => return,
            r = port.sock.readable() => if r.is_err() { continue },
        }
        // Drain what is queued without a wake-up per datagram: reading must outpace a flood
        // so that the queue the kernel keeps for this socket has room for everyone else.
        let mut read = 0;
        while read < UDP_BATCH {
            match received.recv(&port.sock) {
                Ok(n) => read += n.max(1),
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => break,
                Err(e) => {
                    // ICMP errors from earlier sends surface here on some systems: keep going.
                    tracing::debug!("udp receive: {e}");
                    read += 1;
                    continue;
                }
            }
            let current = port.router.load();
            for (query, src) in received.iter() {
                let Some(src) = src.filter(|s| s.port() != 0) else {
                    continue; // nowhere to answer to
                };
                port.datagram(&current, query, src, &mut answers);
            }
            drop(current);
            port.send_batch(&mut answers);
        }
    }
}

impl UdpPort {
    /// One datagram: dropped over its source's limit, answered on the fast path into the
    /// batch, or handed to the general path.
    fn datagram(&self, current: &Router, query: &[u8], src: SocketAddr, answers: &mut Answers) {
        // One count per source across the port's sockets, without a lock (see `limit`): a
        // client cannot multiply its budget by spreading over source ports.
        if current
            .source_limit()
            .is_some_and(|limit| !limit.allow(crate::vocab::client_ip(src.ip())))
        {
            current.metrics().rate_limited.inc();
            return;
        }
        if !self.fast(current, query, src, answers) {
            self.general(current, query, src, answers);
        }
    }

    /// Most cluster queries are answered right here (see Router::answer_fast). A panic would
    /// take this loop, and the port, with it: it costs the query the fast path instead, and
    /// the general path (which has its own guard) answers.
    fn fast(&self, current: &Router, query: &[u8], src: SocketAddr, answers: &mut Answers) -> bool {
        let Some(out) = answers.next() else {
            return false;
        };
        let fast = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            current.answer_fast(query, src, Transport::Udp, out)
        }))
        .unwrap_or_else(|_| {
            current.metrics().core.panics.inc();
            tracing::error!("recovered from a panic in the fast path answering {src}");
            false
        });
        if fast {
            answers.push(src);
        }
        fast
    }

    /// The general path, within the bound on queries in flight. Most answers off the fast path
    /// are ready at the first poll (the chain answers from memory): they go out with the batch,
    /// as the fast path's do. One that waits (an upstream, a timer) goes on in a task of its
    /// own, which polls it again with a waker that will wake it. A panic here costs the query,
    /// as it would in that task, and not the loop.
    fn general(&self, current: &Router, query: &[u8], src: SocketAddr, answers: &mut Answers) {
        let Ok(slot) = self.slots.clone().try_acquire_owned() else {
            // Too many in flight: drop before any plugin runs, as `shed` does.
            shed(current, "query");
            return;
        };
        let query = query.to_vec();
        let router = self.router.load_full();
        let mut general = Box::pin(async move {
            router
                .handle_bytes_general(&query, src, Transport::Udp)
                .await
        });
        let first = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            general
                .as_mut()
                .poll(&mut Context::from_waker(Waker::noop()))
        }));
        match first {
            Ok(Poll::Ready(answer)) => {
                drop(slot);
                // The batch has room for an answer to every datagram read into it.
                if let (Some(answer), Some(out)) = (answer, answers.next()) {
                    out.clear();
                    out.extend_from_slice(&answer);
                    answers.push(src);
                }
            }
            Ok(Poll::Pending) => {
                let sock = self.sock.clone();
                let router = self.router.clone();
                self.tasks.spawn(async move {
                    if let Some(answer) = general.await
                        && let Err(e) = sock.send_to(&answer, src).await
                    {
                        tracing::debug!("udp send to {src}: {e}");
                        shed(&router.load(), "response");
                    }
                    drop(slot);
                });
            }
            Err(_) => {
                current.metrics().core.panics.inc();
                tracing::error!("recovered from a panic answering {src}");
            }
        }
    }

    /// The batch's answers in one call. What the send buffer has no room for waits for room in
    /// a task, within the same bound on queries in flight as the general path.
    fn send_batch(&self, answers: &mut Answers) {
        answers.send(&self.sock, |answer, to| {
            let Ok(slot) = self.slots.clone().try_acquire_owned() else {
                shed(&self.router.load(), "response");
                return;
            };
            let sock = self.sock.clone();
            let answer = answer.to_vec();
            let router = self.router.clone();
            self.tasks.spawn(async move {
                if let Err(e) = sock.send_to(&answer, to).await {
                    tracing::debug!("udp send to {to}: {e}");
                    shed(&router.load(), "response");
                }
                drop(slot);
            });
        });
    }
}
