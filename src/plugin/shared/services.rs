//! What one plugin offers the plugins after it in the same block, as traits: the offering
//! plugin shares an `Arc<dyn Trait>` (or a value holding them) through
//! [`Setup::share`](crate::plugin::setup::Setup::share), the user asks
//! [`Setup::shared`](crate::plugin::setup::Setup::shared) for it, and neither names the other's
//! folder. CoreDNS's plugins find each other the same way (autopath's `AutoPather`, the
//! server's `Viewer`); here the chain's order decides who is set up first.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::SystemTime;

use hickory_proto::rr::{LowerName, Name, RecordType};

/// Where a DNS message was seen, as dnstap says it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TapKind {
    ClientQuery,
    ClientResponse,
    ForwarderQuery,
    ForwarderResponse,
}

/// The transport a tapped message went over.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TapWire {
    Udp,
    Tcp,
    Tls,
    Https,
}

/// One message seen, for a tap.
pub struct TapEvent<'a> {
    pub kind: TapKind,
    pub wire: TapWire,
    /// The query's sender and receiver.
    pub query_from: Option<SocketAddr>,
    pub response_from: Option<SocketAddr>,
    pub query_time: SystemTime,
    pub query: Option<&'a [u8]>,
    pub response_time: Option<SystemTime>,
    pub response: Option<&'a [u8]>,
}

/// A collector of the messages a block exchanges (`dnstap` offers these; `forward` sends its
/// exchanges with upstreams to them). Never waits.
pub trait MessageTap: Send + Sync {
    fn emit(&self, event: &TapEvent);
}

/// The block's taps, in the order they were set up.
#[derive(Clone, Default)]
pub struct Taps(pub Vec<Arc<dyn MessageTap>>);

/// Says whether a question may be answered for a client at all (`acl` offers one). A plugin
/// that asks the rest of the chain other names on a client's behalf (`autopath` walking a
/// search path) asks it first, so that a name the client may not ask is not reached that way
/// (CoreDNS 1.14, #8290).
pub trait QueryGate: Send + Sync {
    fn admits(&self, name: &Name, qtype: RecordType, client: IpAddr) -> bool;
}

/// The block's gates, in the order they were set up.
#[derive(Clone, Default)]
pub struct Gates(pub Vec<Arc<dyn QueryGate>>);

/// Told where a block's queries were sent upstream (`loop` offers this: its probe learns
/// which upstream sent it back; `forward` tells it).
pub trait SentUpstream: Send + Sync {
    fn sent(&self, name: &LowerName, upstream: &str);
}
