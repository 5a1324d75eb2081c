//! `dnstap listen SOCKET` (CoreDNS 1.14): collectors connect to us, each is sent every
//! message from then on. Each has its own bounded queue: one that falls behind loses what does
//! not fit (counted) and is disconnected, and the others do not notice.
//!
//! The query path only reads the list of connected collectors (an atomic load) and offers
//! each the payload without waiting; the accept loop and the sessions change the list.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Weak};

use arc_swap::ArcSwap;
use bytes::Bytes;
use prometheus::IntCounter;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::sync::mpsc;
use tokio_util::sync::{CancellationToken, DropGuard};

use super::config::{DnstapConfig, Sink};
use super::tap::{HANDSHAKE, SocketOptions, handshake, session};
use crate::plugin::shared::tls::{self, ClientCerts};

/// The listening side of a tap; dropping it (a reload) closes the socket and ends every
/// session with STOP.
pub struct Listener {
    collectors: Arc<Collectors>,
    _stop: DropGuard,
}

#[derive(Default)]
struct Collectors {
    list: ArcSwap<Vec<Arc<Connected>>>,
    next_id: AtomicU64,
}

/// One connected collector.
struct Connected {
    id: u64,
    tx: mpsc::Sender<Bytes>,
    /// Cancelled when its queue overflowed: its session ends.
    behind: CancellationToken,
}

enum Bound {
    Tcp(std::net::TcpListener),
    Unix(std::os::unix::net::UnixListener),
}

/// Binds SOCKET now, so that a port in use is an error when the Corefile is set up. TCP with
/// SO_REUSEPORT, so that a reload's new listener binds while the old one still runs; a unix
/// socket's file is replaced.
fn bind(sink: &Sink) -> std::io::Result<Bound> {
    match sink {
        Sink::Tcp(addr) | Sink::Tls(addr) => {
            let socket = socket2::Socket::new(
                socket2::Domain::for_address(*addr),
                socket2::Type::STREAM,
                None,
            )?;
            socket.set_reuse_address(true)?;
            socket.set_reuse_port(true)?;
            socket.set_nonblocking(true)?;
            socket.bind(&(*addr).into())?;
            socket.listen(128)?;
            Ok(Bound::Tcp(socket.into()))
        }
        Sink::Unix(path) => {
            use std::os::unix::fs::FileTypeExt;
            if std::fs::symlink_metadata(path).is_ok_and(|m| m.file_type().is_socket()) {
                std::fs::remove_file(path)?;
            }
            let l = std::os::unix::net::UnixListener::bind(path)?;
            l.set_nonblocking(true)?;
            Ok(Bound::Unix(l))
        }
    }
}

impl Listener {
    pub fn start(cfg: &DnstapConfig, queue: usize, opts: SocketOptions) -> Result<Self, String> {
        let rt = tokio::runtime::Handle::try_current()
            .map_err(|_| "listen: no runtime to accept collectors on".to_string())?;
        let tls = match &cfg.tls {
            None => None,
            Some(t) => {
                let clients = match (&t.ca, cfg.skip_verify) {
                    (Some(ca), false) => ClientCerts::Verify {
                        ca,
                        optional: false,
                    },
                    _ => ClientCerts::None,
                };
                let config = crate::plugin::shared::blocking(|| {
                    tls::server_config(&t.cert, &t.key, clients, &[])
                })?;
                Some(tokio_rustls::TlsAcceptor::from(Arc::new(config)))
            }
        };
        let bound = bind(&cfg.sink).map_err(|e| format!("listen {}: {e}", cfg.sink))?;
        let collectors = Arc::new(Collectors::default());
        let stop = CancellationToken::new();
        let accept = Accept {
            collectors: Arc::downgrade(&collectors),
            tls,
            queue,
            opts,
            stop: stop.clone(),
            sink: cfg.sink.to_string(),
        };
        rt.spawn(accept.run(bound));
        Ok(Listener {
            collectors,
            _stop: stop.drop_guard(),
        })
    }

    pub fn has_collectors(&self) -> bool {
        !self.collectors.list.load().is_empty()
    }

    /// Offers `frame` to every collector; one whose queue is full loses it and is let go.
    pub fn send(&self, frame: Bytes, dropped: &IntCounter) {
        for c in self.collectors.list.load().iter() {
            if c.tx.try_send(frame.clone()).is_err() {
                dropped.inc();
                c.behind.cancel();
            }
        }
    }
}

/// The accept loop's state.
struct Accept {
    collectors: Weak<Collectors>,
    tls: Option<tokio_rustls::TlsAcceptor>,
    queue: usize,
    opts: SocketOptions,
    stop: CancellationToken,
    sink: String,
}

impl Accept {
    async fn run(self, bound: Bound) {
        let this = Arc::new(self);
        match bound {
            Bound::Tcp(l) => {
                let Ok(l) = tokio::net::TcpListener::from_std(l) else {
                    return;
                };
                loop {
                    let accepted = tokio::select! {
                        _ = this.stop.cancelled() => return,
                        a = l.accept() => a,
                    };
                    let Ok((s, _)) = accepted else {
                        // Out of file descriptors, say: do not spin.
                        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
                        continue;
                    };
                    let _ = s.set_nodelay(true);
                    this.opts.apply(&s);
                    let this = this.clone();
                    tokio::spawn(async move {
                        match &this.tls {
                            None => this.serve(s).await,
                            Some(acceptor) => {
                                let tls = tokio::time::timeout(HANDSHAKE, acceptor.accept(s)).await;
                                match tls {
                                    Ok(Ok(s)) => this.serve(s).await,
                                    Ok(Err(e)) => tracing::debug!(
                                        "plugin/dnstap: {}: a collector's TLS handshake: {e}",
                                        this.sink
                                    ),
                                    Err(_) => {}
                                }
                            }
                        }
                    });
                }
            }
            Bound::Unix(l) => {
                let Ok(l) = tokio::net::UnixListener::from_std(l) else {
                    return;
                };
                loop {
                    let accepted = tokio::select! {
                        _ = this.stop.cancelled() => return,
                        a = l.accept() => a,
                    };
                    let Ok((s, _)) = accepted else {
                        // Out of file descriptors, say: do not spin.
                        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
                        continue;
                    };
                    this.opts.apply(&s);
                    let this = this.clone();
                    tokio::spawn(async move { this.serve(s).await });
                }
            }
        }
    }

    /// One collector: the handshake, then every message until the tap goes (STOP), the
    /// collector goes, or it falls behind.
    async fn serve<S: AsyncRead + AsyncWrite + Unpin>(&self, mut s: S) {
        if !matches!(
            tokio::time::timeout(HANDSHAKE, handshake(&mut s)).await,
            Ok(Ok(()))
        ) {
            return;
        }
        let Some(collectors) = self.collectors.upgrade() else {
            return;
        };
        let (tx, mut rx) = mpsc::channel(self.queue);
        let me = Arc::new(Connected {
            id: collectors.next_id.fetch_add(1, Ordering::Relaxed),
            tx,
            behind: CancellationToken::new(),
        });
        collectors.list.rcu(|list| {
            let mut list = Vec::clone(list);
            list.push(me.clone());
            list
        });
        let behind = me.behind.clone();
        let id = me.id;
        drop(me);
        // The tap holds the only other strong reference: when it goes, `tx` goes with the list
        // and the session ends with STOP.
        let weak = Arc::downgrade(&collectors);
        drop(collectors);
        tokio::select! {
            r = session(s, &mut rx) => {
                if let Err(e) = r {
                    tracing::debug!("plugin/dnstap: {}: a collector left: {e}", self.sink);
                }
            }
            _ = behind.cancelled() => {
                tracing::warn!("plugin/dnstap: {}: a collector fell behind; disconnected", self.sink);
            }
        }
        if let Some(collectors) = weak.upgrade() {
            collectors.list.rcu(|list| {
                list.iter()
                    .filter(|c| c.id != id)
                    .cloned()
                    .collect::<Vec<_>>()
            });
        }
    }
}
