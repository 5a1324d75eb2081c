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
    names: Box<[socket2::SockAddrStorage]>,
}

impl Default for Received {
    fn default() -> Self {
        Self {
            bufs: vec![0; SLOTS * SLOT].into_boxed_slice(),
            got: Vec::with_capacity(SLOTS),
            #[cfg(target_os = "linux")]
            names: (0..SLOTS)
                .map(|_| socket2::SockAddrStorage::zeroed())
                .collect(),
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
            hdr.msg_hdr.msg_namelen = name.size_of();
            hdr.msg_hdr.msg_name = (name as *mut socket2::SockAddrStorage).cast();
            hdr.msg_hdr.msg_iov = &mut iovs[i];
            hdr.msg_hdr.msg_iovlen = 1;
        }
        // SAFETY: every header points at a buffer of SLOT bytes and an address storage that
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
        for (hdr, name) in hdrs.iter().zip(self.names.iter_mut()).take(n) {
            let name = std::mem::replace(name, socket2::SockAddrStorage::zeroed());
            // SAFETY: the kernel wrote an address of this length into the storage.
            let src = unsafe { socket2::SockAddr::new(name, hdr.msg_hdr.msg_namelen) };
            self.got.push((hdr.msg_len as usize, src.as_socket()));
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
        let names: smallvec::SmallVec<[socket2::SockAddr; SLOTS]> = self.to[from..]
            .iter()
            .map(|&to| socket2::SockAddr::from(to))
            .collect();
        // SAFETY: as in `recv_linux`: zeroed headers are valid and are filled in before use.
        let mut iovs: [libc::iovec; SLOTS] = unsafe { std::mem::zeroed() };
        let mut hdrs: [libc::mmsghdr; SLOTS] = unsafe { std::mem::zeroed() };
        for (i, name) in names.iter().enumerate() {
            let buf = &self.bufs[from + i];
            iovs[i] = libc::iovec {
                // The kernel only reads through it.
                iov_base: buf.as_ptr().cast_mut().cast(),
                iov_len: buf.len(),
            };
            // Read, not written, by the kernel, as the answer.
            hdrs[i].msg_hdr.msg_name = name.as_ptr().cast_mut().cast();
            hdrs[i].msg_hdr.msg_namelen = name.len();
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

#[cfg(all(test, target_os = "linux"))]
mod tests {
    use super::*;

    /// A source goes through socket2's storage as `recv_linux` reads it, and comes back whole.
    #[test]
    fn addresses_survive_the_round_trip_through_the_storage() {
        for addr in [
            "192.0.2.7:53".parse::<SocketAddr>().unwrap(),
            "[2001:db8::1]:5353".parse().unwrap(),
            "[::ffff:10.1.2.3]:40000".parse().unwrap(),
            "[fe80::1%3]:1".parse().unwrap(),
        ] {
            let written = socket2::SockAddr::from(addr);
            let (len, storage) = (written.len(), written.as_storage());
            // SAFETY: `storage` holds an address of `len` bytes.
            let read = unsafe { socket2::SockAddr::new(storage, len) };
            assert_eq!(read.as_socket(), Some(addr));
        }
        // SAFETY: a zeroed storage is AF_UNSPEC.
        let unspec = unsafe { socket2::SockAddr::new(socket2::SockAddrStorage::zeroed(), 16) };
        assert_eq!(unspec.as_socket(), None, "AF_UNSPEC is no address");
    }
}
