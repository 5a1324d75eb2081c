//! Plugins: one folder per Corefile directive (`<name>/`: handler and setup, `config.rs`,
//! `README.md`), the table that knows them all (`registry`), what their setup is given
//! (`setup`), and here the chain contract every handler keeps. Every server block runs its
//! handlers in CoreDNS's fixed order.
//!
//! A [`Handler`] is given the request and the rest of the chain ([`Next`]). It may
//! - answer: return a [`Reply`] (an answer, NODATA, NXDOMAIN, any rcode: DNS outcomes are data);
//! - pass the query on: return `next.serve(req)`;
//! - wrap the rest of the chain: call `next.serve(req)` and look at or change what comes back.
//!
//! `Err` is for real failures only (a backend not ready, an upstream that timed out); the server
//! answers those with SERVFAIL. When the last handler passes the query on, there is no one left
//! to answer it: that is [`HandlerError::NoNextPlugin`], also SERVFAIL, as in CoreDNS.

pub mod registry;
pub mod setup;
pub mod shared;

pub mod acl;
pub mod any;
pub mod autopath;
pub mod bind;
pub mod bufsize;
pub mod cache;
pub mod cancel;
pub mod chaos;
pub mod debug;
pub mod dns64;
pub mod dnstap;
pub mod erratic;
pub mod errors;
pub mod file;
pub mod forward;
pub mod header;
pub mod health;
pub mod hosts;
pub mod k8s_external;
pub mod kubernetes;
pub mod loadbalance;
pub mod local;
pub mod log;
pub mod r#loop;
pub mod metadata;
pub mod minimal;
pub mod nsid;
pub mod prometheus;
pub mod ratelimit;
pub mod ready;
pub mod reload;
pub mod rewrite;
pub mod shed;
pub mod template;
pub mod timeouts;
pub mod tls;
pub mod transfer;
pub mod view;
pub mod whoami;

use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use hickory_proto::op::{Edns, LowerQuery, Metadata, OpCode, ResponseCode};
use hickory_proto::rr::rdata::opt::EdnsOption;
use hickory_proto::rr::{Name, Record, RecordType};

use crate::dns::name::WireName;
use crate::dns::wire::Prepared;
use crate::vocab::DnsKey;

pub use crate::dns::wire::{RecordSet, Transport};

/// A run of records in a reply: hickory's records, or records prepared in wire form by an index.
#[derive(Clone, Debug)]
pub enum Rrs {
    Records(RecordSet),
    Prepared(Prepared),
}

impl Rrs {
    pub fn len(&self) -> usize {
        match self {
            Rrs::Records(r) => r.len(),
            Rrs::Prepared(p) => p.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The records as hickory's type, a prepared owner that stands for the question read as
    /// `question`.
    pub fn records(&self, question: &Name) -> Vec<Record> {
        match self {
            Rrs::Records(r) => r.to_vec(),
            // Prepared runs come from our own builder; one that does not read back is a bug
            // the tests catch, not something a reader can act on.
            Rrs::Prepared(p) => p.records(question).unwrap_or_default(),
        }
    }
}

impl From<RecordSet> for Rrs {
    fn from(r: RecordSet) -> Self {
        Rrs::Records(r)
    }
}

impl From<Prepared> for Rrs {
    fn from(p: Prepared) -> Self {
        Rrs::Prepared(p)
    }
}

/// One question on its way through a chain.
pub struct Request<'a> {
    /// The question; `query.name()` is lower-cased, `query.original()` is as the client wrote it.
    pub query: &'a LowerQuery,
    pub src: SocketAddr,
    pub transport: Transport,
    pub dnssec_ok: bool,
    /// The client's EDNS record, options and all (what `forward` passes on).
    pub edns: Option<&'a Edns>,
    /// The client's RD and CD bits.
    pub recursion_desired: bool,
    pub checking_disabled: bool,
    /// The `server` label of the metrics: `dns://:53`.
    pub server: &'a str,
    /// The `view` label of the metrics: the block's view, or empty.
    pub view: &'a str,
    /// How many lookups deep this is (CNAME targets resolved through [`Upstream`]).
    pub depth: u8,
    /// The message's ID and its size on the wire (0 for a query the server asks itself).
    pub id: u16,
    pub size: usize,
    /// Where the query came to: the listener's address, where it is bound to one, and port.
    pub local: DnsKey,
    /// The server's own routing, for following names out of a handler's zone.
    pub upstream: &'a dyn Upstream,
}

/// Which answers a handler takes from a name it follows out of its zone ([`Request::follow`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Take {
    /// Only a NOERROR answer adds to the reply (`kubernetes`, `k8s_external`): an alias
    /// whose target does not exist is answered with the alias alone.
    NoError,
    /// Whatever came back adds its answer section (`file`, `template`), as CoreDNS's `file`
    /// appends its upstream's answer whatever the rcode.
    Any,
}

impl Request<'_> {
    /// Follows `target`, where an alias (CNAME) out of the handler's zone points, through the
    /// server's own routing (CoreDNS's `upstream`): one lookup deeper, and never past
    /// [`MAX_DEPTH`], so that aliases pointing at each other end. `None` where the bound is
    /// reached, nothing answered, or `take` does not take the answer's rcode. The one way every
    /// handler chases an alias.
    pub async fn follow(&self, target: Name, qtype: RecordType, take: Take) -> Option<Reply> {
        if self.depth >= MAX_DEPTH {
            return None;
        }
        let reply = self.upstream.lookup(target, qtype, self.depth + 1).await?;
        (take == Take::Any || reply.rcode == ResponseCode::NoError).then_some(reply)
    }
}

/// Labelled values about one query (`metadata`): label, value.
pub type Meta = Vec<(&'static str, String)>;

/// What decides whether a query is routed to a server block (`view` offers one; CoreDNS's
/// `Viewer`). The server asks it for every query that reaches a block of the zone, in Corefile
/// order, and knows nothing of how it decides.
pub trait Viewer: Send + Sync {
    /// The view's name: the `view` label of the block's metrics, `view/name` in metadata.
    fn name(&self) -> &str;
    /// Whether `req` may be answered by this block, given what the block's plugins published
    /// about it (`meta`, where the block has `metadata`).
    fn admits(&self, req: &Request, meta: &[(&'static str, String)]) -> bool;
}

/// How many times a name may be followed through [`Upstream`] before we stop.
pub const MAX_DEPTH: u8 = 8;

/// What a handler answers: sections as shared record runs.
#[derive(Clone, Debug)]
pub struct Reply {
    pub rcode: ResponseCode,
    pub authoritative: bool,
    pub answers: Vec<Rrs>,
    pub authority: Vec<Rrs>,
    pub additionals: Vec<Rrs>,
    /// The handler that wrote the reply (the `plugin` label of CoreDNS's metrics).
    pub plugin: &'static str,
    /// Header bits an upstream set (`forward`), passed on to the client.
    pub recursion_available: bool,
    pub authentic_data: bool,
    /// The upstream's answer was cut short and could not be had whole.
    pub truncated: bool,
    /// The RD bit to answer with, where a handler decides it (`header`); `None`: the client's.
    pub recursion_desired: Option<bool>,
    /// EDNS options to answer with (`nsid`); sent only to a client that sent EDNS.
    pub edns_options: Vec<EdnsOption>,
    /// Send nothing at all (`acl`'s drop, `erratic`): the client times out and retries.
    pub drop: bool,
    /// A zone transfer: the answers are a whole zone, sent over TCP in as many messages as
    /// they take (RFC 5936).
    pub transfer: bool,
}

impl Reply {
    pub fn new(rcode: ResponseCode, plugin: &'static str) -> Self {
        Self {
            rcode,
            authoritative: false,
            answers: Vec::new(),
            authority: Vec::new(),
            additionals: Vec::new(),
            plugin,
            recursion_available: false,
            authentic_data: false,
            truncated: false,
            recursion_desired: None,
            edns_options: Vec::new(),
            drop: false,
            transfer: false,
        }
    }

    /// An authoritative reply (AA set) with this rcode, its sections still empty: what a
    /// handler that is the authority for a zone starts from.
    pub fn authoritative(rcode: ResponseCode, plugin: &'static str) -> Self {
        Self {
            authoritative: true,
            ..Self::new(rcode, plugin)
        }
    }

    /// NOERROR with `records` in the answer section, authoritative.
    pub fn answer(plugin: &'static str, records: impl Into<Rrs>) -> Self {
        let mut reply = Self::authoritative(ResponseCode::NoError, plugin);
        reply.answers.push(records.into());
        reply
    }

    /// A negative answer, authoritative: NXDOMAIN, or NOERROR with no records (NODATA), with
    /// the zone's SOA in the authority section (RFC 2308).
    pub fn negative(plugin: &'static str, rcode: ResponseCode, soa: impl Into<Rrs>) -> Self {
        let mut reply = Self::authoritative(rcode, plugin);
        reply.authority.push(soa.into());
        reply
    }

    /// The answer section as hickory's records (see [`Rrs::records`]).
    pub fn answer_records(&self, question: &Name) -> Vec<Record> {
        self.answers
            .iter()
            .flat_map(|s| s.records(question))
            .collect()
    }
}

/// What went wrong in a plugin, said as CoreDNS says it (`plugin/NAME: what went wrong`), with
/// the Corefile position where it is about the configuration (`plugin/NAME: FILE:LINE:COL: …`). The one error
/// type of a plugin's `setup` (a file it cannot read, an upstream it cannot use) and of a
/// handler's real failures ([`HandlerError::Failed`]).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct PluginError {
    pub plugin: &'static str,
    /// The server block's position (`file:line:col`), where the error is about configuration.
    pub at: Option<crate::corefile::Pos>,
    pub msg: String,
}

impl PluginError {
    pub fn new(plugin: &'static str, msg: impl std::fmt::Display) -> Self {
        Self {
            plugin,
            at: None,
            msg: msg.to_string(),
        }
    }

    /// The same error, placed at `pos` unless it has a place already.
    pub fn at(mut self, pos: &crate::corefile::Pos) -> Self {
        self.at.get_or_insert_with(|| pos.clone());
        self
    }
}

impl std::fmt::Display for PluginError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "plugin/{}: ", self.plugin)?;
        if let Some(at) = &self.at {
            write!(f, "{at}: ")?;
        }
        write!(f, "{}", self.msg)
    }
}

/// A real failure inside the chain: the client gets SERVFAIL and `errors` logs it.
#[derive(Debug, Clone, thiserror::Error)]
pub enum HandlerError {
    #[error("no next plugin found")]
    NoNextPlugin,
    #[error(transparent)]
    Failed(PluginError),
}

impl HandlerError {
    /// A plugin's failure to answer.
    pub fn failed(plugin: &'static str, msg: impl std::fmt::Display) -> Self {
        Self::Failed(PluginError::new(plugin, msg))
    }
}

pub type HandlerFuture<'a> = Pin<Box<dyn Future<Output = Result<Reply, HandlerError>> + Send + 'a>>;

/// A plugin at run time. See the module documentation for the protocol.
pub trait Handler: Send + Sync {
    fn name(&self) -> &'static str;
    fn serve<'a>(&'a self, req: &'a Request<'a>, next: Next<'a>) -> HandlerFuture<'a>;

    /// Whether this handler leaves alone a plain query the rest of the chain answers without
    /// error (`errors`, `loop`): the fast path may then skip it.
    fn transparent(&self) -> bool {
        false
    }

    /// Whether this handler hands the plain query `q` to the rest of the chain as it is, so
    /// that the fast path may look further down for the answer (`cache` for a zone it does not
    /// keep). The answer found is then offered to [`Handler::keeps_fast`].
    fn passes_fast(&self, q: FastQuery<'_>) -> bool {
        let _ = q;
        self.transparent()
    }

    /// Whether this handler, having passed a query on, would send `answer` back exactly as it
    /// came (`loadbalance`, for an answer with nothing to shuffle).
    fn keeps_fast(&self, answer: &FastAnswer) -> bool {
        let _ = answer;
        true
    }

    /// Answers a plain query from data prepared in wire form, without running the chain: only
    /// where [`Handler::serve`] would answer it exactly so, to the byte. The query is IN, not
    /// ANY, with DO clear and no EDNS option the handler would act on. `None` leaves the query
    /// to `serve`. The server asks through [`Chain::answer_fast`], where nothing observes the
    /// answers ([`crate::server::Router::answer_fast`]).
    fn answer_fast(&self, q: FastQuery<'_>) -> Option<FastAnswer> {
        let _ = q;
        None
    }

    /// Told that a [`FastAnswer::Kept`] this handler gave was sent, for `server` (the `server`
    /// label): what `serve` counts when answering, the fast path counts here, once the answer
    /// is sure to go (a handler in front may still refuse it; the general path then answers,
    /// and counts, instead).
    fn served_kept(&self, reply: &Reply, kind: &'static str, server: &str) {
        let _ = (reply, kind, server);
    }

    /// Adds the labelled values this handler publishes about `req` (`kubernetes/namespace`,
    /// …) where the block has `metadata`: what `log`'s `{/LABEL}` and `view`'s `metadata()`
    /// read.
    fn metadata(&self, req: &Request, out: &mut Meta) {
        let _ = (req, out);
    }

    /// Every record of `zone`, its SOA first, for a zone transfer (`transfer` asks the
    /// handlers after it), where this handler is authoritative for exactly that zone.
    fn transfer(&self, zone: &Name) -> Option<Vec<Record>> {
        let _ = zone;
        None
    }

    /// The zones this handler has whole (what [`transfer`] would send), each with its SOA's
    /// serial: cheap to ask, so that `transfer` can tell its secondaries when one changes.
    ///
    /// [`transfer`]: Handler::transfer
    fn serials(&self) -> Vec<(Name, u32)> {
        Vec::new()
    }
}

/// A plain query as the fast path reads it.
#[derive(Clone, Copy)]
pub struct FastQuery<'a> {
    /// The name, lower case, with where its labels start.
    pub name: WireName<'a>,
    pub qtype: RecordType,
    /// The client's CD bit (a cache keeps CD answers apart).
    pub checking_disabled: bool,
}

/// What [`Handler::answer_fast`] answers: records prepared in wire form (by an index, or kept by
/// a cache), written behind the client's own question.
pub enum FastAnswer {
    /// NOERROR with these records, what goes in the authority section (a zone's NS records,
    /// `file`) and in the additional section with them; AA set.
    Answer {
        records: Prepared,
        authority: Option<Prepared>,
        additionals: Option<Prepared>,
    },
    /// NOERROR without records, or NXDOMAIN: this SOA goes in the authority section; AA set.
    Negative(ResponseCode, Prepared),
    /// A kept message (`cache`): its header bits and its sections, as prepared runs; `kind` is
    /// what the handler counts it as ([`Handler::served_kept`]).
    Kept { reply: Reply, kind: &'static str },
}

/// The handlers after the current one.
#[derive(Clone, Copy)]
pub struct Next<'a> {
    rest: &'a [Box<dyn Handler>],
}

impl<'a> Next<'a> {
    /// The records of `zone` from the first handler after this one that has it whole
    /// ([`Handler::transfer`]).
    pub fn transfer(self, zone: &Name) -> Option<Vec<Record>> {
        self.rest.iter().find_map(|h| h.transfer(zone))
    }

    pub fn serve(self, req: &'a Request<'a>) -> HandlerFuture<'a> {
        match self.rest.split_first() {
            Some((h, rest)) => h.serve(req, Next { rest }),
            None => Box::pin(std::future::ready(Err(HandlerError::NoNextPlugin))),
        }
    }
}

/// A query after its answer was written: what `log` prints.
pub struct Served<'a> {
    pub query: &'a LowerQuery,
    pub src: SocketAddr,
    pub transport: Transport,
    pub id: u16,
    pub opcode: OpCode,
    pub request_size: usize,
    pub dnssec_ok: bool,
    /// The client's EDNS UDP size, 512 without EDNS.
    pub bufsize: u16,
    /// The response header as sent (flags, rcode).
    pub response: Metadata,
    pub answers: usize,
    pub response_size: usize,
    pub duration: Duration,
    /// What the block's plugins published about the query (`metadata`).
    pub metadata: &'a [(&'static str, String)],
    /// Whether the block collects metadata for this name (`metadata`'s zones hold it): what
    /// `log` publishes of the answer (`log/class`, `log/type`) is read only then.
    pub metadata_on: bool,
    /// The query and the answer as they were on the wire (`dnstap`).
    pub query_bytes: &'a [u8],
    pub response_bytes: &'a [u8],
    /// Whether the stream was DNS over TLS.
    pub tls: bool,
    /// The address (where the listener is bound to one) and port the query came to.
    pub local: DnsKey,
}

/// Told about every query a server block answered, once its answer is written.
pub trait Observer: Send + Sync {
    fn served(&self, served: &Served);
}

/// The handlers of one server block, in execution order, and its observers.
pub struct Chain {
    handlers: Vec<Box<dyn Handler>>,
    observers: Vec<Arc<dyn Observer>>,
    /// What must hold for a query to be routed here (`view`).
    view: Option<Arc<dyn Viewer>>,
    /// Where the handlers publish metadata (`metadata`'s zones).
    metadata: Option<Vec<hickory_proto::rr::LowerName>>,
    /// The cap on the EDNS buffer size of the block's queries (`bufsize`).
    bufsize: Option<u16>,
}

impl Chain {
    pub fn new(handlers: Vec<Box<dyn Handler>>, observers: Vec<Arc<dyn Observer>>) -> Self {
        Self {
            handlers,
            observers,
            view: None,
            metadata: None,
            bufsize: None,
        }
    }

    /// The same chain, with its queries' EDNS buffer size capped at `size`.
    pub fn with_bufsize(self, size: Option<u16>) -> Self {
        Self {
            bufsize: size,
            ..self
        }
    }

    pub fn bufsize(&self) -> Option<u16> {
        self.bufsize
    }

    /// The same chain, collecting metadata for queries in `zones`.
    pub fn with_metadata(self, zones: Option<Vec<hickory_proto::rr::LowerName>>) -> Self {
        Self {
            metadata: zones,
            ..self
        }
    }

    /// Whether the chain collects metadata at all.
    pub fn collects_metadata(&self) -> bool {
        self.metadata.is_some()
    }

    /// Whether the chain collects metadata for `name` (`metadata`'s zones hold it).
    pub fn metadata_covers(&self, name: &hickory_proto::rr::LowerName) -> bool {
        self.metadata
            .as_ref()
            .is_some_and(|zones| zones.iter().any(|z| z.zone_of(name)))
    }

    /// What the handlers publish about `req`, where the block has `metadata` and its zones hold
    /// the name; the view's name too (`view/name`).
    pub fn metadata(&self, req: &Request) -> Meta {
        let mut out = Meta::new();
        let Some(zones) = &self.metadata else {
            return out;
        };
        if !zones.iter().any(|z| z.zone_of(req.query.name())) {
            return out;
        }
        for h in &self.handlers {
            h.metadata(req, &mut out);
        }
        if let Some(v) = &self.view {
            out.push(("view/name", v.name().to_owned()));
        }
        out
    }

    /// The same chain, routed to only where `view` admits the query.
    pub fn with_view(self, view: Option<Arc<dyn Viewer>>) -> Self {
        Self { view, ..self }
    }

    pub fn view(&self) -> Option<&Arc<dyn Viewer>> {
        self.view.as_ref()
    }

    pub fn observers(&self) -> &[Arc<dyn Observer>] {
        &self.observers
    }

    /// Whether a handler of this name is in the chain.
    pub fn has(&self, name: &str) -> bool {
        self.handlers.iter().any(|h| h.name() == name)
    }

    /// A fast answer ([`Handler::answer_fast`]) to a plain query, and the handler that gave
    /// it: from the first handler that does not pass the query on untouched
    /// ([`Handler::passes_fast`]), where every handler in front of it would send that answer
    /// back as it is ([`Handler::keeps_fast`]), and nothing observes the answers (`log`).
    /// Once a kept answer is sent, tell the handler ([`Handler::served_kept`]).
    pub fn answer_fast(&self, q: FastQuery<'_>) -> Option<(&dyn Handler, FastAnswer)> {
        if !self.observers.is_empty() {
            return None;
        }
        for (i, h) in self.handlers.iter().enumerate() {
            if let Some(answer) = h.answer_fast(q) {
                let kept = self.handlers[..i].iter().all(|p| p.keeps_fast(&answer));
                return kept.then_some((h.as_ref(), answer));
            }
            if !h.passes_fast(q) {
                return None;
            }
        }
        None
    }

    pub fn serve<'a>(&'a self, req: &'a Request<'a>) -> HandlerFuture<'a> {
        Next {
            rest: &self.handlers,
        }
        .serve(req)
    }

    /// The zones the handlers after the one named `name` have whole, with their serials
    /// ([`Handler::serials`]).
    pub fn serials_after(&self, name: &str) -> Vec<(Name, u32)> {
        let Some(at) = self.handlers.iter().position(|h| h.name() == name) else {
            return Vec::new();
        };
        self.handlers[at + 1..]
            .iter()
            .flat_map(|h| h.serials())
            .collect()
    }

    /// Runs the handlers after the first one named `name` (a handler that works in the
    /// background, as `cache` refreshing an entry, asks the rest of the chain again).
    pub fn serve_after<'a>(&'a self, name: &str, req: &'a Request<'a>) -> HandlerFuture<'a> {
        let at = self
            .handlers
            .iter()
            .position(|h| h.name() == name)
            .map_or(self.handlers.len(), |i| i + 1);
        Next {
            rest: &self.handlers[at..],
        }
        .serve(req)
    }
}

/// An [`Upstream`] that finds nothing: for requests made outside a server's routing.
pub struct NoUpstream;

impl Upstream for NoUpstream {
    fn lookup<'a>(&'a self, _: Name, _: RecordType, _: u8) -> UpstreamFuture<'a> {
        Box::pin(std::future::ready(None))
    }
}

pub type UpstreamFuture<'a> = Pin<Box<dyn Future<Output = Option<Reply>> + Send + 'a>>;

/// Looks a name up through the server's own routing and chains (CoreDNS's "upstream").
pub trait Upstream: Send + Sync {
    fn lookup<'a>(&'a self, name: Name, qtype: RecordType, depth: u8) -> UpstreamFuture<'a>;
}
