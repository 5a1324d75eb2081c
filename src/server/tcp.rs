//! TCP (and DNS over TLS) connections: the accept loop, the table of open connections, and
//! one connection's queries.
//!
//! Connections are bounded by what they cost, not by a small fixed count: a total that fits
//! the process's file descriptors (16,384 by default; an idle one costs about 3 KiB, measured),
//! and a share per source address (1,024 by default). When either is reached, the longest-idle
//! connection (of that source, for the share) is closed to make room, rather than the new one
//! refused: a client holding many idle connections recycles its own, and cannot deny TCP to
//! others. Only when every candidate has queries in flight is the new connection closed.
//!
//! On one connection queries are read while earlier ones are answered, and each answer is
//! written as soon as it is ready (RFC 7766 6.2.1.1), so a query waiting on an upstream does not
//! hold the answers behind it. Up to [`MAX_PIPELINED`] queries are in flight per connection;
//! beyond that the connection is not read until one is answered.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use arc_swap::ArcSwap;
use bytes::{Buf, BytesMut};
use futures_util::StreamExt;
use futures_util::stream::FuturesUnordered;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::Router;
use super::listen::Limits;

/// Queries answered at once on one connection.
pub const MAX_PIPELINED: usize = 64;

/// File descriptors left for everything but TCP connections (UDP sockets, the API server,
/// files, upstreams).
const FD_RESERVE: usize = 256;

/// The process's file descriptor limit (soft), if it has one.
fn fd_limit() -> Option<usize> {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit writes the struct it is given and nothing else.
    let ok = unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) } == 0;
    (ok && lim.rlim_cur != libc::RLIM_INFINITY).then_some(lim.rlim_cur as usize)
}

/// The open connections of one listener.
pub(super) struct Conns {
    table: Mutex<Table>,
    start: Instant,
    total: usize,
    per_source: usize,
}

#[derive(Default)]
struct Table {
    next: u64,
    open: HashMap<u64, Entry>,
    by_source: HashMap<IpAddr, usize>,
}

struct Entry {
    src: IpAddr,
    state: Arc<ConnState>,
}

/// What the table knows of one connection, which the connection itself keeps up to date
/// without taking the table's lock.
pub(super) struct ConnState {
    /// When it last read a query or wrote an answer: milliseconds since the table began.
    last: AtomicU64,
    /// Queries being answered.
    busy: AtomicU32,
    /// Cancelled when it is closed to make room.
    evicted: CancellationToken,
}

/// Why a connection was closed to make room for another.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Evicted {
    /// Every connection the listener may have was open.
    Full,
    /// Its source had every connection one source may have.
    Source,
}

impl Evicted {
    fn label(self) -> &'static str {
        match self {
            Evicted::Full => "full",
            Evicted::Source => "source",
        }
    }
}

/// A place in the table; leaving it (the connection closed) frees it.
pub(super) struct Admitted {
    conns: Arc<Conns>,
    id: u64,
    pub(super) state: Arc<ConnState>,
}

impl Drop for Admitted {
    fn drop(&mut self) {
        self.conns.remove(self.id);
    }
}

impl ConnState {
    fn touch(&self, conns: &Conns) {
        self.last.store(conns.now(), Ordering::Relaxed);
    }
}

impl Conns {
    pub(super) fn new(limits: &Limits) -> Arc<Self> {
        // Past the process's file descriptors accept fails, and clients wait in the kernel's
        // queue instead of getting an idle connection's place: keep some for everything else.
        let total = match fd_limit() {
            Some(fds) => limits
                .max_tcp_connections
                .min(fds.saturating_sub(FD_RESERVE).max(64)),
            None => limits.max_tcp_connections,
        };
        Arc::new(Self {
            table: Mutex::new(Table::default()),
            start: Instant::now(),
            total: total.max(1),
            per_source: limits.max_tcp_per_source.max(1),
        })
    }

    fn now(&self) -> u64 {
        self.start.elapsed().as_millis() as u64
    }

    pub(super) fn open(&self) -> usize {
        crate::sync::lock(&self.table).open.len()
    }

    /// A place for a connection from `src`, making room where the bounds are reached; `None`
    /// when no connection can be closed for it (all have queries in flight). The evictions it
    /// made are reported through `evicted`.
    pub(super) fn admit(
        self: &Arc<Self>,
        src: IpAddr,
        mut evicted: impl FnMut(Evicted),
    ) -> Option<Admitted> {
        let mut t = crate::sync::lock(&self.table);
        if t.by_source.get(&src).copied().unwrap_or(0) >= self.per_source {
            let id = Self::longest_idle(&t, |e| e.src == src)?;
            Self::evict(&mut t, id);
            evicted(Evicted::Source);
        }
        if t.open.len() >= self.total {
            let id = Self::longest_idle(&t, |_| true)?;
            Self::evict(&mut t, id);
            evicted(Evicted::Full);
        }
        let id = t.next;
        t.next += 1;
        let state = Arc::new(ConnState {
            last: AtomicU64::new(self.now()),
            busy: AtomicU32::new(0),
            evicted: CancellationToken::new(),
        });
        t.open.insert(
            id,
            Entry {
                src,
                state: state.clone(),
            },
        );
        *t.by_source.entry(src).or_default() += 1;
        Some(Admitted {
            conns: self.clone(),
            id,
            state,
        })
    }

    /// The connection without queries in flight that has been idle longest, among `which`.
    fn longest_idle(t: &Table, which: impl Fn(&Entry) -> bool) -> Option<u64> {
        t.open
            .iter()
            .filter(|(_, e)| which(e) && e.state.busy.load(Ordering::Relaxed) == 0)
            .min_by_key(|(_, e)| e.state.last.load(Ordering::Relaxed))
            .map(|(id, _)| *id)
    }

    fn evict(t: &mut Table, id: u64) {
        if let Some(e) = Self::take(t, id) {
            e.state.evicted.cancel();
        }
    }

    fn take(t: &mut Table, id: u64) -> Option<Entry> {
        let e = t.open.remove(&id)?;
        if let Some(n) = t.by_source.get_mut(&e.src) {
            *n -= 1;
            if *n == 0 {
                t.by_source.remove(&e.src);
            }
        }
        Some(e)
    }

    fn remove(&self, id: u64) {
        Self::take(&mut crate::sync::lock(&self.table), id);
    }
}

/// The accept loop of one TCP listener.
pub(super) async fn tcp_loop(
    listener: TcpListener,
    router: Arc<ArcSwap<Router>>,
    stop: CancellationToken,
    tasks: TaskTracker,
    limits: Limits,
) {
    let conns = Conns::new(&limits);
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
        let current = router.load();
        let count = |why: Evicted| {
            current
                .metrics()
                .tcp_evicted
                .with_label_values(&[current.server_label(), why.label()])
                .inc();
        };
        let Some(place) = conns.admit(crate::vocab::client_ip(src.ip()), count) else {
            tracing::debug!("tcp: no idle connection to close for {src}; closing it");
            continue;
        };
        let gauge = current
            .metrics()
            .tcp_connections
            .with_label_values(&[current.server_label()]);
        gauge.set(conns.open() as i64);
        drop(current);
        let (router, stop, conns) = (router.clone(), stop.clone(), conns.clone());
        tasks.spawn(async move {
            let _ = stream.set_nodelay(true);
            let state = place.state.clone();
            let tls = router.load().tls();
            match tls {
                None => connection(stream, src, router, stop, limits, &conns, &state).await,
                // Boxed: a TLS session's state is large, and plain connections (nearly all)
                // should not carry room for it while they sit idle.
                Some(config) => {
                    Box::pin(async {
                        // The handshake is a read like any other: it must finish in time.
                        let acceptor = tokio_rustls::TlsAcceptor::from(config);
                        let shake = tokio::time::timeout(limits.tcp_io, acceptor.accept(stream));
                        let session = tokio::select! {
                            _ = stop.cancelled() => None,
                            _ = state.evicted.cancelled() => None,
                            s = shake => Some(s),
                        };
                        match session {
                            Some(Ok(Ok(tls))) => {
                                connection(tls, src, router, stop, limits, &conns, &state).await
                            }
                            Some(Ok(Err(e))) => tracing::debug!("tls handshake with {src}: {e}"),
                            Some(Err(_)) => tracing::debug!("tls handshake with {src}: timed out"),
                            None => {}
                        }
                    })
                    .await
                }
            }
            drop(place);
            gauge.set(conns.open() as i64);
        });
    }
}

/// The next whole message in `buf` (its length prefix taken off), if it is all there;
/// `Err` for a zero length, which ends the connection.
fn next_message(buf: &mut BytesMut) -> Result<Option<Vec<u8>>, ()> {
    if buf.len() < 2 {
        return Ok(None);
    }
    let n = usize::from(u16::from_be_bytes([buf[0], buf[1]]));
    if n == 0 {
        return Err(());
    }
    if buf.len() < 2 + n {
        return Ok(None);
    }
    buf.advance(2);
    Ok(Some(buf.split_to(n).to_vec()))
}

/// One TCP (or TLS) connection: length-prefixed queries, read while earlier ones are answered,
/// each answer written when it is ready.
async fn connection<S: AsyncRead + AsyncWrite + Unpin>(
    stream: S,
    src: SocketAddr,
    router: Arc<ArcSwap<Router>>,
    stop: CancellationToken,
    limits: Limits,
    conns: &Conns,
    state: &ConnState,
) {
    let (mut rd, mut wr) = tokio::io::split(stream);
    // Empty until the client sends something: an idle connection holds no buffer.
    let mut buf = BytesMut::new();
    let mut inflight = FuturesUnordered::new();
    let mut read: u32 = 0;
    let mut reading = true;
    // When the last query was read or answer written, and when a partial message began.
    let mut active = tokio::time::Instant::now();
    let mut partial: Option<tokio::time::Instant> = None;
    loop {
        // The port's `timeouts`, as of now: a reload may change them under an open connection.
        let t = router.load().tcp_timeouts().unwrap_or_default();
        let (read_for, write_for, idle_for) = (
            t.read.unwrap_or(limits.tcp_io),
            t.write.unwrap_or(limits.tcp_io),
            t.idle.unwrap_or(limits.tcp_idle),
        );
        // `maxtcpqueries`: the connection has carried its share; the client reconnects.
        let more = t.max_queries.is_none_or(|max| read < max);
        // Whole messages already read go first.
        while reading && more && inflight.len() < MAX_PIPELINED {
            match next_message(&mut buf) {
                Ok(Some(query)) => {
                    read += 1;
                    partial = None;
                    active = tokio::time::Instant::now();
                    state.touch(conns);
                    state.busy.fetch_add(1, Ordering::Relaxed);
                    let router = router.load_full();
                    inflight.push(async move { router.handle_stream(&query, src).await });
                    if t.max_queries.is_some_and(|max| read >= max) {
                        break;
                    }
                }
                Ok(None) => break,
                Err(()) => {
                    reading = false;
                    buf.clear();
                }
            }
        }
        let more = t.max_queries.is_none_or(|max| read < max);
        let can_read = reading && more && inflight.len() < MAX_PIPELINED;
        if !can_read && inflight.is_empty() {
            return; // nothing more to read, and every answer written
        }
        if !buf.is_empty() && partial.is_none() {
            partial = Some(tokio::time::Instant::now());
        }
        // Idle: nothing in flight and nothing read for `idle_for`; a message begun must be
        // read whole within `read_for`.
        let deadline = match partial {
            Some(began) => began + read_for,
            None => active + idle_for,
        };
        let timed = can_read && (inflight.is_empty() || partial.is_some());
        if can_read && buf.capacity() == buf.len() {
            buf.reserve(128);
        }
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = state.evicted.cancelled() => return,
            _ = tokio::time::sleep_until(deadline), if timed => return,
            r = rd.read_buf(&mut buf), if can_read => match r {
                Ok(0) | Err(_) => {
                    // The client is done sending (or gone): answer what was asked.
                    reading = false;
                    buf.clear();
                }
                Ok(_) => {}
            },
            Some(messages) = inflight.next(), if !inflight.is_empty() => {
                state.busy.fetch_sub(1, Ordering::Relaxed);
                if messages.is_empty() {
                    continue;
                }
                let mut framed = Vec::with_capacity(messages.iter().map(|m| m.len() + 2).sum());
                for answer in &messages {
                    let Ok(alen) = u16::try_from(answer.len()) else {
                        return;
                    };
                    framed.extend_from_slice(&alen.to_be_bytes());
                    framed.extend_from_slice(answer);
                }
                // Nothing that waits on the client holds a stopping server: an answer the
                // client does not read is dropped at once.
                let written = tokio::select! {
                    _ = stop.cancelled() => return,
                    r = tokio::time::timeout(write_for, wr.write_all(&framed)) => r,
                };
                if !matches!(written, Ok(Ok(_))) {
                    return; // a client that does not read
                }
                active = tokio::time::Instant::now();
                state.touch(conns);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn conns(total: usize, per_source: usize) -> Arc<Conns> {
        Conns::new(&Limits {
            max_tcp_connections: total,
            max_tcp_per_source: per_source,
            ..Limits::default()
        })
    }

    fn ip(last: u8) -> IpAddr {
        IpAddr::from([10, 0, 0, last])
    }

    #[test]
    fn at_the_bounds_the_longest_idle_goes_and_busy_ones_stay() {
        let c = conns(3, 2);
        let mut why = Vec::new();
        let a1 = c.admit(ip(1), |w| why.push(w)).unwrap();
        let a2 = c.admit(ip(1), |w| why.push(w)).unwrap();
        a1.state.last.store(0, Ordering::Relaxed);
        a2.state.last.store(5, Ordering::Relaxed);
        // A third from the same source: its own longest-idle goes, not another's.
        let b1 = c.admit(ip(2), |w| why.push(w)).unwrap();
        b1.state.last.store(0, Ordering::Relaxed);
        let a3 = c.admit(ip(1), |w| why.push(w)).unwrap();
        assert!(a1.state.evicted.is_cancelled());
        assert!(!b1.state.evicted.is_cancelled());
        assert_eq!(why, [Evicted::Source]);
        // Full: the longest-idle of all goes, unless it has queries in flight.
        a3.state.last.store(9, Ordering::Relaxed);
        b1.state.busy.store(1, Ordering::Relaxed);
        let _d = c.admit(ip(4), |w| why.push(w)).unwrap();
        assert!(a2.state.evicted.is_cancelled() && !b1.state.evicted.is_cancelled());
        assert_eq!(why, [Evicted::Source, Evicted::Full]);
        // Every one busy: the new one is refused.
        for s in [&a3.state, &_d.state] {
            s.busy.store(1, Ordering::Relaxed);
        }
        assert!(c.admit(ip(5), |w| why.push(w)).is_none());
        // A closed connection frees its place and its source's share.
        drop((a1, a2));
        assert_eq!(c.open(), 3);
        drop(b1);
        assert_eq!(c.open(), 2);
        assert!(c.admit(ip(2), |_| {}).is_some());
    }
}
