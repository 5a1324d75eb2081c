//! The sockets: a UDP loop and a TCP accept loop per port, answering through whatever router is
//! current. A reload swaps the router under running sockets, so no query is dropped and no port
//! is closed for a configuration change.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use arc_swap::ArcSwap;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream, UdpSocket};
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::chain::Transport;

use super::Router;

/// How long a TCP connection may sit idle between queries.
pub const TCP_IDLE: Duration = Duration::from_secs(10);
/// How long reading one TCP message, once its length arrived, or writing an answer may take.
pub const TCP_IO: Duration = Duration::from_secs(3);
/// TCP connections open at once; beyond this, new ones are closed at once.
pub const MAX_TCP_CONNECTIONS: usize = 1024;
/// How long a stopping listener waits for queries in flight.
pub const DRAIN: Duration = Duration::from_secs(5);

/// UDP and TCP on one port.
pub struct DnsListener {
    pub udp: SocketAddr,
    pub tcp: SocketAddr,
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
    ) -> std::io::Result<Self> {
        let (udp, tcp) = bind(addr, port).await?;
        let this = Self {
            udp: udp.local_addr()?,
            tcp: tcp.local_addr()?,
            router: Arc::new(ArcSwap::new(router)),
            stop: CancellationToken::new(),
            tasks: TaskTracker::new(),
        };
        this.tasks.spawn(udp_loop(
            Arc::new(udp),
            this.router.clone(),
            this.stop.clone(),
            this.tasks.clone(),
        ));
        this.tasks.spawn(tcp_loop(
            tcp,
            this.router.clone(),
            this.stop.clone(),
            this.tasks.clone(),
        ));
        Ok(this)
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

async fn bind(addr: Option<IpAddr>, port: u16) -> std::io::Result<(UdpSocket, TcpListener)> {
    let candidates: Vec<IpAddr> = match addr {
        Some(a) => vec![a],
        None => vec![
            IpAddr::V6(Ipv6Addr::UNSPECIFIED),
            IpAddr::V4(Ipv4Addr::UNSPECIFIED),
        ],
    };
    let mut last_err = None;
    for ip in candidates {
        // With port 0 the kernel picks the UDP port; TCP must then get the same one, which
        // another process may hold: try a few times.
        for _ in 0..if port == 0 { 20 } else { 1 } {
            let udp = match UdpSocket::bind(SocketAddr::new(ip, port)).await {
                Ok(u) => u,
                Err(e) => {
                    last_err = Some(e);
                    break;
                }
            };
            let bound = udp.local_addr()?;
            match TcpListener::bind(bound).await {
                Ok(tcp) => return Ok((udp, tcp)),
                Err(e) => last_err = Some(e),
            }
        }
    }
    Err(last_err.unwrap_or_else(|| std::io::Error::other("no address to bind")))
}

async fn udp_loop(
    sock: Arc<UdpSocket>,
    router: Arc<ArcSwap<Router>>,
    stop: CancellationToken,
    tasks: TaskTracker,
) {
    let mut buf = vec![0u8; 65535];
    loop {
        let (n, src) = tokio::select! {
            _ = stop.cancelled() => return,
            r = sock.recv_from(&mut buf) => match r {
                Ok(x) => x,
                Err(e) => {
                    // ICMP errors from earlier sends surface here on some systems: keep going.
                    tracing::debug!("udp receive: {e}");
                    continue;
                }
            },
        };
        if src.port() == 0 {
            continue; // nowhere to answer to
        }
        let query = buf[..n].to_vec();
        let router = router.load_full();
        let sock = sock.clone();
        tasks.spawn(async move {
            if let Some(answer) = router.handle_bytes(&query, src, Transport::Udp).await
                && let Err(e) = sock.send_to(&answer, src).await
            {
                tracing::debug!("udp send to {src}: {e}");
            }
        });
    }
}

async fn tcp_loop(
    listener: TcpListener,
    router: Arc<ArcSwap<Router>>,
    stop: CancellationToken,
    tasks: TaskTracker,
) {
    let slots = Arc::new(Semaphore::new(MAX_TCP_CONNECTIONS));
    loop {
        let (stream, src) = tokio::select! {
            _ = stop.cancelled() => return,
            r = listener.accept() => match r {
                Ok(x) => x,
                Err(e) => {
                    tracing::debug!("tcp accept: {e}");
                    // Out of file descriptors, say: do not spin.
                    tokio::time::sleep(Duration::from_millis(10)).await;
                    continue;
                }
            },
        };
        let Ok(slot) = slots.clone().try_acquire_owned() else {
            tracing::debug!("tcp: {MAX_TCP_CONNECTIONS} connections open, closing {src}");
            continue;
        };
        let (router, stop) = (router.clone(), stop.clone());
        tasks.spawn(async move {
            connection(stream, src, router, stop).await;
            drop(slot);
        });
    }
}

/// One TCP connection: length-prefixed queries, answered in order.
async fn connection(
    mut stream: TcpStream,
    src: SocketAddr,
    router: Arc<ArcSwap<Router>>,
    stop: CancellationToken,
) {
    let _ = stream.set_nodelay(true);
    loop {
        let mut len = [0u8; 2];
        let read_len = tokio::select! {
            _ = stop.cancelled() => return,
            r = tokio::time::timeout(TCP_IDLE, stream.read_exact(&mut len)) => r,
        };
        if !matches!(read_len, Ok(Ok(_))) {
            return; // idle too long, closed, or broken
        }
        let n = usize::from(u16::from_be_bytes(len));
        if n == 0 {
            return;
        }
        let mut query = vec![0u8; n];
        if !matches!(
            tokio::time::timeout(TCP_IO, stream.read_exact(&mut query)).await,
            Ok(Ok(_))
        ) {
            return; // a length that lies, or a client gone quiet mid-message
        }
        let router = router.load_full();
        let Some(answer) = router.handle_bytes(&query, src, Transport::Tcp).await else {
            continue;
        };
        let Ok(alen) = u16::try_from(answer.len()) else {
            return;
        };
        let mut framed = Vec::with_capacity(answer.len() + 2);
        framed.extend_from_slice(&alen.to_be_bytes());
        framed.extend_from_slice(&answer);
        if !matches!(
            tokio::time::timeout(TCP_IO, stream.write_all(&framed)).await,
            Ok(Ok(_))
        ) {
            return; // a client that does not read
        }
    }
}
