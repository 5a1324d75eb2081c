//! The node-local link and its addresses, through rtnetlink (NETLINK_ROUTE) directly: four
//! requests (find a link, create a dummy one, add or remove an address, remove the link) are
//! less code than a netlink crate's dependencies, and need no `ip` binary in the image.

use std::io;
use std::net::IpAddr;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

/// The alias a link created here carries, so that a later instance (after a SIGKILL) knows
/// the link is ours to remove, and a link an operator made is left alone.
pub const OUR_ALIAS: &str = "clusterdns node-local";

const NLMSG_HDR: usize = 16;
const NLMSG_ERROR: u16 = 2;
const NLMSG_DONE: u16 = 3;
const RTM_NEWLINK: u16 = 16;
const RTM_DELLINK: u16 = 17;
const RTM_GETLINK: u16 = 18;
const RTM_NEWADDR: u16 = 20;
const RTM_DELADDR: u16 = 21;
const NLM_F_REQUEST: u16 = 0x1;
const NLM_F_ACK: u16 = 0x4;
const NLM_F_EXCL: u16 = 0x200;
const NLM_F_CREATE: u16 = 0x400;
const IFLA_IFNAME: u16 = 3;
const IFLA_LINKINFO: u16 = 18;
const IFLA_IFALIAS: u16 = 20;
const IFLA_INFO_KIND: u16 = 1;
const IFA_ADDRESS: u16 = 1;
const IFA_LOCAL: u16 = 2;
/// No duplicate address detection: an IPv6 address is usable (bindable) at once.
const IFA_F_NODAD: u8 = 0x02;
const IFF_UP: u32 = 0x1;

/// A link found by name.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Link {
    pub index: u32,
    pub alias: Option<String>,
}

/// One NETLINK_ROUTE socket; each call is a request and its acknowledgement.
pub struct Netlink {
    fd: OwnedFd,
    seq: u32,
}

impl Netlink {
    pub fn open() -> io::Result<Self> {
        // SAFETY: plain socket(2); the descriptor is owned at once.
        let fd = unsafe {
            libc::socket(
                libc::AF_NETLINK,
                libc::SOCK_RAW | libc::SOCK_CLOEXEC,
                libc::NETLINK_ROUTE,
            )
        };
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: fd is a new descriptor nobody else owns.
        let fd = unsafe { OwnedFd::from_raw_fd(fd) };
        // SAFETY: sockaddr_nl is plain data; zeroed with nl_family set is "any port id".
        let mut addr: libc::sockaddr_nl = unsafe { std::mem::zeroed() };
        addr.nl_family = libc::AF_NETLINK as u16;
        // SAFETY: addr lives across the call and its size is given.
        let rc = unsafe {
            libc::bind(
                fd.as_raw_fd(),
                &addr as *const libc::sockaddr_nl as *const libc::sockaddr,
                std::mem::size_of::<libc::sockaddr_nl>() as u32,
            )
        };
        if rc < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(Self { fd, seq: 1 })
    }

    /// The link named `name`, if there is one.
    pub fn link(&mut self, name: &str) -> io::Result<Option<Link>> {
        let mut body = ifinfomsg(0, 0, 0);
        attr(&mut body, IFLA_IFNAME, &cstr(name));
        match self.request(RTM_GETLINK, 0, &body) {
            Ok(replies) => Ok(replies.iter().find_map(|m| parse_link(m))),
            Err(e) if e.raw_os_error() == Some(libc::ENODEV) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Creates a dummy link named `name`, marked with [`OUR_ALIAS`], and sets it up.
    pub fn create_dummy(&mut self, name: &str) -> io::Result<Link> {
        let mut body = ifinfomsg(0, IFF_UP, IFF_UP);
        attr(&mut body, IFLA_IFNAME, &cstr(name));
        attr(&mut body, IFLA_IFALIAS, OUR_ALIAS.as_bytes());
        let mut info = Vec::new();
        attr(&mut info, IFLA_INFO_KIND, b"dummy");
        attr(&mut body, IFLA_LINKINFO, &info);
        self.request(RTM_NEWLINK, NLM_F_CREATE | NLM_F_EXCL, &body)?;
        self.link(name)?
            .ok_or_else(|| io::Error::other(format!("link {name} was created but is not found")))
    }

    /// Removes the link with this index.
    pub fn delete_link(&mut self, index: u32) -> io::Result<()> {
        let body = ifinfomsg(index, 0, 0);
        self.request(RTM_DELLINK, 0, &body).map(drop)
    }

    /// Adds `ip` (as a host address, /32 or /128) to the link; `Ok(false)` when it was there.
    pub fn add_address(&mut self, index: u32, ip: IpAddr) -> io::Result<bool> {
        let body = ifaddrmsg(index, ip);
        match self.request(RTM_NEWADDR, NLM_F_CREATE | NLM_F_EXCL, &body) {
            Ok(_) => Ok(true),
            Err(e) if e.raw_os_error() == Some(libc::EEXIST) => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// Removes `ip` from the link; `Ok(false)` when it was not there.
    pub fn delete_address(&mut self, index: u32, ip: IpAddr) -> io::Result<bool> {
        let body = ifaddrmsg(index, ip);
        match self.request(RTM_DELADDR, 0, &body) {
            Ok(_) => Ok(true),
            Err(e) if e.raw_os_error() == Some(libc::EADDRNOTAVAIL) => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// Sends one request and reads until its acknowledgement; returns the messages before it.
    fn request(&mut self, kind: u16, flags: u16, body: &[u8]) -> io::Result<Vec<Vec<u8>>> {
        self.seq = self.seq.wrapping_add(1);
        let seq = self.seq;
        let mut msg = Vec::with_capacity(NLMSG_HDR + body.len());
        msg.extend_from_slice(&((NLMSG_HDR + body.len()) as u32).to_ne_bytes());
        msg.extend_from_slice(&kind.to_ne_bytes());
        msg.extend_from_slice(&(flags | NLM_F_REQUEST | NLM_F_ACK).to_ne_bytes());
        msg.extend_from_slice(&seq.to_ne_bytes());
        msg.extend_from_slice(&0u32.to_ne_bytes());
        msg.extend_from_slice(body);
        // SAFETY: msg is a live buffer of the length given.
        let sent = unsafe { libc::send(self.fd.as_raw_fd(), msg.as_ptr().cast(), msg.len(), 0) };
        if sent < 0 {
            return Err(io::Error::last_os_error());
        }
        let mut replies = Vec::new();
        let mut buf = vec![0u8; 32 * 1024];
        loop {
            // SAFETY: buf is a live buffer of the length given.
            let n =
                unsafe { libc::recv(self.fd.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len(), 0) };
            if n < 0 {
                let e = io::Error::last_os_error();
                if e.kind() == io::ErrorKind::Interrupted {
                    continue;
                }
                return Err(e);
            }
            let mut rest = &buf[..n as usize];
            while rest.len() >= NLMSG_HDR {
                let len = u32::from_ne_bytes(rest[0..4].try_into().unwrap_or_default()) as usize;
                if len < NLMSG_HDR || len > rest.len() {
                    return Err(io::Error::other("a netlink reply with a bad length"));
                }
                let kind = u16::from_ne_bytes([rest[4], rest[5]]);
                let their = u32::from_ne_bytes(rest[8..12].try_into().unwrap_or_default());
                let payload = &rest[NLMSG_HDR..len];
                rest = &rest[align(len).min(rest.len())..];
                if their != seq {
                    continue;
                }
                match kind {
                    NLMSG_ERROR => {
                        let code = payload
                            .get(0..4)
                            .map(|b| i32::from_ne_bytes(b.try_into().unwrap_or_default()))
                            .unwrap_or(-libc::EIO);
                        return if code == 0 {
                            Ok(replies)
                        } else {
                            Err(io::Error::from_raw_os_error(-code))
                        };
                    }
                    NLMSG_DONE => return Ok(replies),
                    _ => replies.push(payload.to_vec()),
                }
            }
        }
    }
}

fn align(n: usize) -> usize {
    (n + 3) & !3
}

fn cstr(s: &str) -> Vec<u8> {
    let mut v = s.as_bytes().to_vec();
    v.push(0);
    v
}

fn attr(buf: &mut Vec<u8>, kind: u16, data: &[u8]) {
    let len = 4 + data.len();
    buf.extend_from_slice(&(len as u16).to_ne_bytes());
    buf.extend_from_slice(&kind.to_ne_bytes());
    buf.extend_from_slice(data);
    buf.resize(align(buf.len()), 0);
}

fn ifinfomsg(index: u32, flags: u32, change: u32) -> Vec<u8> {
    let mut b = vec![libc::AF_UNSPEC as u8, 0, 0, 0];
    b.extend_from_slice(&index.to_ne_bytes());
    b.extend_from_slice(&flags.to_ne_bytes());
    b.extend_from_slice(&change.to_ne_bytes());
    b
}

fn ifaddrmsg(index: u32, ip: IpAddr) -> Vec<u8> {
    let (family, prefix, bytes) = match ip {
        IpAddr::V4(v4) => (libc::AF_INET as u8, 32u8, v4.octets().to_vec()),
        IpAddr::V6(v6) => (libc::AF_INET6 as u8, 128u8, v6.octets().to_vec()),
    };
    let mut b = vec![family, prefix, IFA_F_NODAD, 0];
    b.extend_from_slice(&index.to_ne_bytes());
    attr(&mut b, IFA_LOCAL, &bytes);
    attr(&mut b, IFA_ADDRESS, &bytes);
    b
}

/// The index and alias of an RTM_NEWLINK reply.
fn parse_link(payload: &[u8]) -> Option<Link> {
    let index = u32::from_ne_bytes(payload.get(4..8)?.try_into().ok()?);
    let mut alias = None;
    let mut rest = payload.get(16..)?;
    while rest.len() >= 4 {
        let len = u16::from_ne_bytes([rest[0], rest[1]]) as usize;
        let kind = u16::from_ne_bytes([rest[2], rest[3]]);
        if len < 4 || len > rest.len() {
            break;
        }
        if kind == IFLA_IFALIAS {
            let data = &rest[4..len];
            let data = data.split(|b| *b == 0).next().unwrap_or_default();
            alias = Some(String::from_utf8_lossy(data).into_owned());
        }
        rest = &rest[align(len).min(rest.len())..];
    }
    Some(Link { index, alias })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_address_request_is_laid_out_as_the_kernel_reads_it() {
        let b = ifaddrmsg(7, "169.254.20.10".parse().unwrap());
        assert_eq!(&b[..4], &[libc::AF_INET as u8, 32, IFA_F_NODAD, 0]);
        assert_eq!(u32::from_ne_bytes(b[4..8].try_into().unwrap()), 7);
        // Two attributes of 4 + 4 bytes.
        assert_eq!(b.len(), 8 + 8 + 8);
        assert_eq!(&b[12..16], &[169, 254, 20, 10]);
        let b = ifaddrmsg(7, "fd00::a".parse().unwrap());
        assert_eq!(b[1], 128);
        assert_eq!(b.len(), 8 + 20 + 20);
    }

    #[test]
    fn a_link_reply_gives_its_index_and_alias() {
        let mut p = ifinfomsg(9, 0, 0);
        attr(&mut p, IFLA_IFNAME, &cstr("nodelocaldns"));
        attr(&mut p, IFLA_IFALIAS, &cstr(OUR_ALIAS));
        assert_eq!(
            parse_link(&p),
            Some(Link {
                index: 9,
                alias: Some(OUR_ALIAS.to_string())
            })
        );
        assert_eq!(parse_link(&p[..3]), None);
    }
}
