//! Batched UDP for the listener's loop: on Linux, `recvmmsg` reads up to [`SLOTS`] queued
//! datagrams in one system call and `sendmmsg` sends the answers of a batch in one more.
//!
//! Why: under load, a profile of the fast path (bench/README.md, "Profiles") put about 6% of
//! the server's CPU in what every system call costs whatever it carries (entry and exit, the
//! file lookup, the libc wrapper). Two calls per query become two per batch. The per-datagram
//! work in the kernel (routing, the copy, the loopback's delivery) stays as it is.
//!
//! Elsewhere each call reads or sends one datagram, with tokio's own calls.

use std::io;
use std::net::SocketAddr;

use tokio::net::UdpSocket;

/// Datagrams per system call.
pub const SLOTS: usize = 16;

/// The longest query read whole. A longer datagram is cut to this length, and its parse then
/// fails (its counts promise more than is there), so it gets FORMERR as other malformed
/// queries do. No client sends a query this long: a question is at most 260 bytes.
pub const SLOT: usize = 4096;

/// What one receive read: the datagrams, each with its source.
pub struct Received {
    bufs: Box<[u8]>,
    got: Vec<(usize, Option<SocketAddr>)>,
    #[cfg(target_os = "linux")]
    names: Box<[libc::sockaddr_storage]>,
}

impl Default for Received {
    fn default() -> Self {
        Self {
            bufs: vec![0; SLOTS * SLOT].into_boxed_slice(),
            got: Vec::with_capacity(SLOTS),
            #[cfg(target_os = "linux")]
            // SAFETY: all zeros is a valid `sockaddr_storage` (family AF_UNSPEC).
            names: vec![unsafe { std::mem::zeroed::<libc::sockaddr_storage>() }; SLOTS]
                .into_boxed_slice(),
        }
    }
}

impl Received {
    /// Reads what is queued on `sock`, up to [`SLOTS`] datagrams, without waiting; `WouldBlock`
    /// when nothing is (and tokio then waits for readiness again).
    pub fn recv(&mut self, sock: &UdpSocket) -> io::Result<usize> {
        self.got.clear();
        #[cfg(target_os = "linux")]
        {
            sock.try_io(tokio::io::Interest::READABLE, || self.recv_linux(sock))
        }
        #[cfg(not(target_os = "linux"))]
        {
            let (n, src) = sock.try_recv_from(&mut self.bufs[..SLOT])?;
            self.got.push((n, Some(src)));
            Ok(1)
        }
    }

    /// The datagrams of the last receive: their bytes and where they came from (`None` for an
    /// address family other than IPv4 and IPv6, which cannot be answered).
    pub fn iter(&self) -> impl Iterator<Item = (&[u8], Option<SocketAddr>)> {
        self.got
            .iter()
            .zip(self.bufs.chunks_exact(SLOT))
            .map(|(&(n, src), buf)| (&buf[..n.min(SLOT)], src))
    }

    #[cfg(target_os = "linux")]
    fn recv_linux(&mut self, sock: &UdpSocket) -> io::Result<usize> {
        use std::os::fd::AsRawFd;
        // The headers point into `bufs` and `names`; they live only for this call.
        // SAFETY: all zeros is a valid iovec and mmsghdr (null pointers, zero lengths); each is
        // filled in below before the kernel sees it.
        let mut iovs: [libc::iovec; SLOTS] = unsafe { std::mem::zeroed() };
        let mut hdrs: [libc::mmsghdr; SLOTS] = unsafe { std::mem::zeroed() };
        for (i, buf) in self.bufs.chunks_exact_mut(SLOT).enumerate() {
            iovs[i] = libc::iovec {
                iov_base: buf.as_mut_ptr().cast(),
                iov_len: SLOT,
            };
        }
        for (i, (hdr, name)) in hdrs.iter_mut().zip(self.names.iter_mut()).enumerate() {
            hdr.msg_hdr.msg_name = (name as *mut libc::sockaddr_storage).cast();
            hdr.msg_hdr.msg_namelen = std::mem::size_of::<libc::sockaddr_storage>() as _;
            hdr.msg_hdr.msg_iov = &mut iovs[i];
            hdr.msg_hdr.msg_iovlen = 1;
        }
        // SAFETY: every header points at a buffer of SLOT bytes and a sockaddr_storage that
        // outlive the call, and `hdrs` holds SLOTS headers.
        let n = unsafe {
            libc::recvmmsg(
                sock.as_raw_fd(),
                hdrs.as_mut_ptr(),
                SLOTS as _,
                libc::MSG_DONTWAIT,
                std::ptr::null_mut(),
            )
        };
        if n < 0 {
            return Err(io::Error::last_os_error());
        }
        let n = n as usize;
        for (hdr, name) in hdrs.iter().zip(self.names.iter()).take(n) {
            let src = socket_addr(name, hdr.msg_hdr.msg_namelen as usize);
            self.got.push((hdr.msg_len as usize, src));
        }
        Ok(n)
    }
}

/// The answers of one batch, each in a buffer kept from batch to batch.
pub struct Answers {
    bufs: Vec<Vec<u8>>,
    to: Vec<SocketAddr>,
}

impl Default for Answers {
    fn default() -> Self {
        Self {
            // Each grows to its longest answer once, and is kept: a quiet socket uses one.
            bufs: (0..SLOTS).map(|_| Vec::new()).collect(),
            to: Vec::with_capacity(SLOTS),
        }
    }
}

impl Answers {
    /// The buffer the next answer is written into; [`Answers::push`] keeps it. `None` when the
    /// batch is full (it holds as many answers as a receive reads datagrams).
    pub fn next(&mut self) -> Option<&mut Vec<u8>> {
        self.bufs.get_mut(self.to.len())
    }

    /// Keeps the answer just written into [`Answers::next`]'s buffer, for `to`.
    pub fn push(&mut self, to: SocketAddr) {
        if self.to.len() < self.bufs.len() {
            self.to.push(to);
        }
    }

    /// Sends the batch. What the socket has no room for goes to `blocked` (which waits for
    /// room); an answer the kernel refuses is logged and skipped.
    pub fn send(&mut self, sock: &UdpSocket, mut blocked: impl FnMut(&[u8], SocketAddr)) {
        let mut from = 0;
        while from < self.to.len() {
            match self.send_some(sock, from) {
                Ok(0) => break,
                Ok(n) => from += n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    for (buf, &to) in self.bufs[from..].iter().zip(&self.to[from..]) {
                        blocked(buf, to);
                    }
                    break;
                }
                Err(e) => {
                    tracing::debug!("udp send to {}: {e}", self.to[from]);
                    from += 1;
                }
            }
        }
        self.to.clear();
    }

    #[cfg(not(target_os = "linux"))]
    fn send_some(&self, sock: &UdpSocket, from: usize) -> io::Result<usize> {
        sock.try_send_to(&self.bufs[from], self.to[from]).map(|_| 1)
    }

    #[cfg(target_os = "linux")]
    fn send_some(&self, sock: &UdpSocket, from: usize) -> io::Result<usize> {
        use std::os::fd::AsRawFd;
        let count = self.to.len() - from;
        // SAFETY: as in `recv_linux`: zeroed headers are valid and are filled in before use.
        let mut names: [libc::sockaddr_storage; SLOTS] = unsafe { std::mem::zeroed() };
        let mut iovs: [libc::iovec; SLOTS] = unsafe { std::mem::zeroed() };
        let mut hdrs: [libc::mmsghdr; SLOTS] = unsafe { std::mem::zeroed() };
        for i in 0..count {
            let buf = &self.bufs[from + i];
            iovs[i] = libc::iovec {
                // The kernel only reads through it.
                iov_base: buf.as_ptr().cast_mut().cast(),
                iov_len: buf.len(),
            };
            let len = sockaddr(self.to[from + i], &mut names[i]);
            hdrs[i].msg_hdr.msg_name = (&mut names[i] as *mut libc::sockaddr_storage).cast();
            hdrs[i].msg_hdr.msg_namelen = len;
            hdrs[i].msg_hdr.msg_iov = &mut iovs[i];
            hdrs[i].msg_hdr.msg_iovlen = 1;
        }
        sock.try_io(tokio::io::Interest::WRITABLE, || {
            // SAFETY: the first `count` headers point at live answers and addresses.
            let n = unsafe {
                libc::sendmmsg(
                    sock.as_raw_fd(),
                    hdrs.as_mut_ptr(),
                    count as _,
                    libc::MSG_DONTWAIT,
                )
            };
            if n < 0 {
                Err(io::Error::last_os_error())
            } else {
                Ok(n as usize)
            }
        })
    }
}

/// A source address as the kernel wrote it.
#[cfg(target_os = "linux")]
fn socket_addr(name: &libc::sockaddr_storage, len: usize) -> Option<SocketAddr> {
    use std::net::{Ipv4Addr, Ipv6Addr, SocketAddrV4, SocketAddrV6};
    let p = (name as *const libc::sockaddr_storage).cast::<u8>();
    match libc::c_int::from(name.ss_family) {
        libc::AF_INET if len >= std::mem::size_of::<libc::sockaddr_in>() => {
            // SAFETY: the kernel wrote a sockaddr_in there; storage is aligned for any sockaddr.
            let sin = unsafe { &*p.cast::<libc::sockaddr_in>() };
            Some(SocketAddr::V4(SocketAddrV4::new(
                Ipv4Addr::from(u32::from_be(sin.sin_addr.s_addr)),
                u16::from_be(sin.sin_port),
            )))
        }
        libc::AF_INET6 if len >= std::mem::size_of::<libc::sockaddr_in6>() => {
            // SAFETY: as above, a sockaddr_in6.
            let sin6 = unsafe { &*p.cast::<libc::sockaddr_in6>() };
            Some(SocketAddr::V6(SocketAddrV6::new(
                Ipv6Addr::from(sin6.sin6_addr.s6_addr),
                u16::from_be(sin6.sin6_port),
                sin6.sin6_flowinfo,
                sin6.sin6_scope_id,
            )))
        }
        _ => None,
    }
}

/// Writes `addr` as a sockaddr into `out`, and returns its length.
#[cfg(target_os = "linux")]
fn sockaddr(addr: SocketAddr, out: &mut libc::sockaddr_storage) -> libc::socklen_t {
    let p = (out as *mut libc::sockaddr_storage).cast::<u8>();
    match addr {
        SocketAddr::V4(a) => {
            // SAFETY: sockaddr_storage is large and aligned enough for any sockaddr.
            let sin = unsafe { &mut *p.cast::<libc::sockaddr_in>() };
            sin.sin_family = libc::AF_INET as libc::sa_family_t;
            sin.sin_port = a.port().to_be();
            sin.sin_addr = libc::in_addr {
                s_addr: u32::from(*a.ip()).to_be(),
            };
            std::mem::size_of::<libc::sockaddr_in>() as libc::socklen_t
        }
        SocketAddr::V6(a) => {
            // SAFETY: as above.
            let sin6 = unsafe { &mut *p.cast::<libc::sockaddr_in6>() };
            sin6.sin6_family = libc::AF_INET6 as libc::sa_family_t;
            sin6.sin6_port = a.port().to_be();
            sin6.sin6_flowinfo = a.flowinfo();
            sin6.sin6_addr = libc::in6_addr {
                s6_addr: a.ip().octets(),
            };
            sin6.sin6_scope_id = a.scope_id();
            std::mem::size_of::<libc::sockaddr_in6>() as libc::socklen_t
        }
    }
}

#[cfg(all(test, target_os = "linux"))]
mod tests {
    use super::*;

    #[test]
    fn addresses_survive_the_round_trip_through_sockaddr() {
        for addr in [
            "192.0.2.7:53".parse::<SocketAddr>().unwrap(),
            "[2001:db8::1]:5353".parse().unwrap(),
            "[::ffff:10.1.2.3]:40000".parse().unwrap(),
            "[fe80::1%3]:1".parse().unwrap(),
        ] {
            // SAFETY: all zeros is a valid sockaddr_storage.
            let mut s: libc::sockaddr_storage = unsafe { std::mem::zeroed() };
            let len = sockaddr(addr, &mut s);
            assert_eq!(socket_addr(&s, len as usize), Some(addr));
        }
        // SAFETY: as above.
        let s: libc::sockaddr_storage = unsafe { std::mem::zeroed() };
        assert_eq!(socket_addr(&s, 16), None, "AF_UNSPEC is no address");
    }
}
