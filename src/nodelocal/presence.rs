//! How one instance knows another is serving on the same node: each holds an abstract unix
//! socket named for the link, from its start to its exit. Abstract names belong to the
//! network namespace, which every hostNetwork pod on a node shares, and the kernel drops the
//! name when the process dies, however it dies. `/proc/net/unix` lists them.

use std::os::linux::net::SocketAddrExt;
use std::os::unix::net::{SocketAddr, UnixDatagram};

const PREFIX: &str = "clusterdns-nodelocal/";

pub struct Presence {
    name: String,
    _socket: UnixDatagram,
}

impl Presence {
    /// Takes a name of our own under the link's prefix.
    pub fn announce(interface: &str) -> std::io::Result<Presence> {
        let name = format!("{PREFIX}{interface}/{:016x}", rand::random::<u64>());
        let addr = SocketAddr::from_abstract_name(name.as_bytes())?;
        let socket = UnixDatagram::bind_addr(&addr)?;
        Ok(Presence {
            name,
            _socket: socket,
        })
    }

    /// How many other instances for the same link are running on this node.
    pub fn others(&self) -> usize {
        let Some((prefix, _)) = self.name.rsplit_once('/') else {
            return 0;
        };
        let prefix = format!("@{prefix}/");
        let me = format!("@{}", self.name);
        std::fs::read_to_string("/proc/net/unix")
            .map(|t| {
                t.lines()
                    .filter_map(|l| l.split_whitespace().nth(7))
                    .filter(|p| p.starts_with(&prefix) && *p != me)
                    .count()
            })
            .unwrap_or(0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn two_instances_see_each_other_and_a_third_link_sees_none() {
        let link = format!("t{}", std::process::id());
        let a = Presence::announce(&link).unwrap();
        assert_eq!(a.others(), 0);
        let b = Presence::announce(&link).unwrap();
        assert_eq!((a.others(), b.others()), (1, 1));
        let c = Presence::announce(&format!("{link}x")).unwrap();
        assert_eq!(c.others(), 0);
        drop(b);
        assert_eq!(a.others(), 0);
    }
}
