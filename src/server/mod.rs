//! Queries in, answers out: routing to the right chain, EDNS, size limits, case, and counting
//! every answer. [`listen`] owns the sockets; [`Router::handle_bytes`] is the whole path from
//! the bytes a client sent to the bytes it gets back, used by the sockets, the tests and the
//! fuzzers alike.

pub mod encode;
pub mod fast;
pub mod limit;
pub mod listen;
mod mmsg;
mod tcp;

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::Instant;

use futures_util::FutureExt;
use hickory_proto::op::{
    Edns, Header, LowerQuery, MessageType, Metadata, OpCode, Query, ResponseCode,
};
use hickory_proto::rr::{LowerName, Name, RecordType};
use hickory_proto::serialize::binary::{BinDecodable, BinDecoder};
use hickory_server::net::xfer::Protocol;
use hickory_server::server::Request as HickoryRequest;

use crate::dns::wire::NameKey;
use crate::observe::metrics::{DROPPED, Metrics, Observation, ZoneSeries};
use crate::plugin::{
    Chain, FastAnswer, FastQuery, MAX_DEPTH, Meta, Reply, Request, Rrs, Served, Transport,
    Upstream, UpstreamFuture, Viewer,
};
use crate::vocab::{DnsKey, TcpTimeouts, client_addr};
use encode::{
    Messages, Sections, encode, encode_transfer, formerr, opt_record, preserve_case, write_message,
};

/// The largest UDP payload we answer with, whatever a client advertises.
pub const MAX_UDP_PAYLOAD: u16 = 4096;

/// One server block as a port sees it.
pub struct Block {
    pub zone: LowerName,
    /// The zone in lower-case wire form, for the fast path's routing.
    key: Box<[u8]>,
    /// The zone as the `zone` metric label writes it (`.`, `cluster.local.`).
    pub label: String,
    pub chain: Arc<Chain>,
    /// Where its queries are counted (the `server` label is the router's).
    series: ZoneSeries,
    /// What must hold for a query to be routed here (`view`), and the `view` label.
    view: Option<Arc<dyn Viewer>>,
    view_label: String,
}

/// The server blocks listening on one port, most specific zone first.
pub struct Router {
    blocks: Vec<Block>,
    /// The address and port the router's listener is bound to (`server_ip()`, `server_port()`).
    local: DnsKey,
    /// The `server` metric label: `dns://:53`.
    server: String,
    metrics: Arc<Metrics>,
    /// The per-source UDP limit of the port, where one is set.
    source_limit: Option<limit::SourceLimit>,
    /// The port's TCP timeouts, where a block sets them (`timeouts`).
    tcp_timeouts: Option<TcpTimeouts>,
    /// The port's TLS server configuration: DNS over TLS (`tls://` and `tls`).
    tls: Option<Arc<rustls::ServerConfig>>,
}

/// A response, before encoding.
pub struct Response {
    pub metadata: Metadata,
    pub answers: Vec<Rrs>,
    pub authority: Vec<Rrs>,
    pub additionals: Vec<Rrs>,
    pub edns: Option<Edns>,
    /// The block that took the query, if one did.
    pub block: Option<usize>,
    /// The plugin that wrote the answer (empty when the server did).
    pub plugin: &'static str,
    /// Nothing is sent (a handler dropped the query).
    pub drop: bool,
    /// A zone transfer: sent over TCP in as many messages as it takes.
    pub transfer: bool,
    /// What the block's plugins published about the query (`metadata`).
    pub meta: Meta,
}

impl Response {
    /// The response to `request` before anything answers it: its ID and flags, and our OPT
    /// record where it sent one (its payload within [512, 4096], DO as it asked).
    fn to(request: &HickoryRequest) -> Self {
        let edns = request.edns.as_ref().map(|asked| {
            let mut edns = Edns::new();
            edns.set_max_payload(asked.max_payload().clamp(512, MAX_UDP_PAYLOAD));
            edns.set_version(0);
            edns.set_dnssec_ok(asked.flags().dnssec_ok);
            edns
        });
        Self {
            metadata: Metadata::response_from_request(&request.metadata),
            answers: Vec::new(),
            authority: Vec::new(),
            additionals: Vec::new(),
            edns,
            block: None,
            plugin: "",
            drop: false,
            transfer: false,
            meta: Meta::new(),
        }
    }

    /// Takes what a handler answered `query` with: its rcode, header bits, EDNS options and
    /// sections (the answers in the client's case).
    fn take(&mut self, reply: Reply, query: &LowerQuery) {
        let m = &mut self.metadata;
        m.response_code = reply.rcode;
        m.authoritative = reply.authoritative;
        m.recursion_available |= reply.recursion_available;
        m.authentic_data = reply.authentic_data;
        m.truncation |= reply.truncated;
        if let Some(rd) = reply.recursion_desired {
            m.recursion_desired = rd;
        }
        if let Some(edns) = &mut self.edns {
            for option in reply.edns_options {
                edns.options_mut().insert(option);
            }
        }
        self.drop = reply.drop;
        self.transfer = reply.transfer;
        self.plugin = reply.plugin;
        self.answers = preserve_case(query, reply.answers);
        self.authority = reply.authority;
        self.additionals = reply.additionals;
    }
}

/// What a fast answer puts in a message's sections.
enum FastRuns {
    /// From an index or a zone: the records, and what goes with them.
    Prepared {
        answer: Option<Rrs>,
        authority: Option<Rrs>,
        additional: Option<Rrs>,
    },
    /// A message a cache keeps, and what its handler counts it as.
    Kept(Reply, &'static str),
}

impl FastRuns {
    /// The runs of `found`, with the header bits it sets written into `metadata` (as `respond`
    /// sets them from a reply).
    fn of(found: FastAnswer, metadata: &mut Metadata) -> Self {
        match found {
            FastAnswer::Answer {
                records,
                authority,
                additionals,
            } => FastRuns::Prepared {
                answer: Some(Rrs::Prepared(records)),
                authority: authority.map(Rrs::Prepared),
                additional: additionals.map(Rrs::Prepared),
            },
            FastAnswer::Negative(rcode, soa) => {
                metadata.response_code = rcode;
                FastRuns::Prepared {
                    answer: None,
                    authority: Some(Rrs::Prepared(soa)),
                    additional: None,
                }
            }
            FastAnswer::Kept { reply, kind } => {
                metadata.authoritative = reply.authoritative;
                metadata.recursion_available = reply.recursion_available;
                metadata.authentic_data = reply.authentic_data;
                metadata.truncation = reply.truncated;
                metadata.response_code = reply.rcode;
                FastRuns::Kept(reply, kind)
            }
        }
    }

    fn sections(&self) -> Sections<'_> {
        match self {
            FastRuns::Kept(reply, _) => Sections {
                answers: &reply.answers,
                authority: &reply.authority,
                additionals: &reply.additionals,
            },
            FastRuns::Prepared {
                answer,
                authority,
                additional,
            } => Sections {
                answers: answer.as_slice(),
                authority: authority.as_slice(),
                additionals: additional.as_slice(),
            },
        }
    }
}

/// The checks every request passes before it is routed: EDNS version 0 (else BADVERS), opcode
/// QUERY (else NOTIMP), exactly one question (else FORMERR). The question, or `None` with the
/// rcode set in `response`.
fn admit<'r>(request: &'r HickoryRequest, response: &mut Response) -> Option<&'r LowerQuery> {
    if request.edns.as_ref().is_some_and(|e| e.version() > 0) {
        response.metadata.response_code = ResponseCode::BADVERS;
        return None;
    }
    if request.metadata.op_code != OpCode::Query {
        response.metadata.response_code = ResponseCode::NotImp;
        return None;
    }
    match request.queries.queries() {
        [query] => Some(query),
        _ => {
            response.metadata.response_code = ResponseCode::FormErr;
            None
        }
    }
}

impl Router {
    pub fn new(blocks: Vec<(Name, Arc<Chain>)>, server: String, metrics: Arc<Metrics>) -> Self {
        let mut blocks: Vec<Block> = blocks
            .into_iter()
            .map(|(z, chain)| Block {
                zone: LowerName::new(&z),
                key: NameKey::new(&z).as_bytes().into(),
                label: z.to_string(),
                view: chain.view().cloned(),
                view_label: chain
                    .view()
                    .map(|v| v.name().to_owned())
                    .unwrap_or_default(),
                chain,
                series: ZoneSeries::default(),
            })
            .collect();
        // Most specific zone first; blocks of one zone keep their Corefile order (views).
        blocks.sort_by_key(|b| std::cmp::Reverse(b.zone.num_labels()));
        let local = local_of(&server);
        Self {
            blocks,
            local,
            server,
            metrics,
            source_limit: None,
            tcp_timeouts: None,
            tls: None,
        }
    }

    /// The same router, serving DNS over TLS with `config`.
    pub fn with_tls(self, config: Option<Arc<rustls::ServerConfig>>) -> Self {
        Self {
            tls: config,
            ..self
        }
    }

    /// The port's TLS server configuration, where it serves DNS over TLS.
    pub fn tls(&self) -> Option<Arc<rustls::ServerConfig>> {
        self.tls.clone()
    }

    /// The same router, with the port's TCP timeouts (the listener's own where `t` is `None`).
    pub fn with_tcp_timeouts(self, t: Option<TcpTimeouts>) -> Self {
        Self {
            tcp_timeouts: t,
            ..self
        }
    }

    /// The port's TCP timeouts, if a block set them.
    pub fn tcp_timeouts(&self) -> Option<TcpTimeouts> {
        self.tcp_timeouts
    }

    /// The same router, with the port's per-source UDP limit (none where `cfg` sets none).
    pub fn with_source_limit(self, cfg: &crate::vocab::SourceLimitConfig) -> Self {
        Self {
            source_limit: limit::SourceLimit::new(cfg),
            ..self
        }
    }

    /// The port's per-source UDP limit, if one is set.
    pub fn source_limit(&self) -> Option<&limit::SourceLimit> {
        self.source_limit.as_ref()
    }

    /// The block with the most specific zone holding the query's name whose view, if any,
    /// admits the query.
    fn route(&self, req: &Request) -> Option<usize> {
        let name = req.query.name();
        self.blocks.iter().position(|b| {
            b.zone.zone_of(name)
                && b.view.as_ref().is_none_or(|v| {
                    // `metadata()` reads what this block's plugins publish.
                    let meta = b.chain.metadata(req);
                    v.admits(req, &meta)
                })
        })
    }

    pub fn blocks(&self) -> &[Block] {
        &self.blocks
    }

    pub fn metrics(&self) -> &Metrics {
        &self.metrics
    }

    /// The port's `server` metric label: `dns://:53`.
    pub fn server_label(&self) -> &str {
        &self.server
    }

    /// Answers one parsed request (`size` bytes long): the checks every query passes, then
    /// routing to a block, then its chain.
    pub async fn respond(
        &self,
        request: &HickoryRequest,
        transport: Transport,
        size: usize,
    ) -> Response {
        let mut response = Response::to(request);
        let Some(query) = admit(request, &mut response) else {
            return response;
        };
        let capped: Option<Edns>;
        let mut req = Request {
            query,
            src: request.src(),
            transport,
            dnssec_ok: request.edns.as_ref().is_some_and(|e| e.flags().dnssec_ok),
            edns: request.edns.as_ref(),
            recursion_desired: request.metadata.recursion_desired,
            checking_disabled: request.metadata.checking_disabled,
            server: &self.server,
            view: "",
            depth: 0,
            id: request.metadata.id,
            size,
            local: self.local,
            upstream: self,
        };
        let Some(block) = self.route(&req) else {
            response.metadata.response_code = ResponseCode::Refused;
            return response;
        };
        let chain = &self.blocks[block].chain;
        // Zone transfers only where the block has `transfer`, which decides who gets one.
        let transfer = matches!(query.query_type(), RecordType::AXFR | RecordType::IXFR);
        if transfer && !chain.has("transfer") {
            response.metadata.response_code = ResponseCode::Refused;
            return response;
        }
        response.block = Some(block);
        req.view = &self.blocks[block].view_label;
        // `bufsize`: the block's cap on what the client may be answered with, and on what is
        // asked upstream for it.
        if let (Some(cap), Some(edns)) = (chain.bufsize(), &mut response.edns)
            && edns.max_payload() > cap
        {
            edns.set_max_payload(cap);
            let mut asked = request.edns.clone().unwrap_or_default();
            asked.set_max_payload(cap);
            capped = Some(asked);
            req.edns = capped.as_ref();
        }
        response.meta = chain.metadata(&req);
        let reply = self.serve_guarded(chain, &req).await;
        response.take(reply, query);
        response
    }

    /// Runs a block's chain. A handler that panics costs its query (SERVFAIL), never the server;
    /// a handler's failure is SERVFAIL too.
    async fn serve_guarded(&self, chain: &Chain, req: &Request<'_>) -> Reply {
        let served = std::panic::AssertUnwindSafe(chain.serve(req))
            .catch_unwind()
            .await;
        match served {
            Ok(Ok(reply)) => reply,
            Ok(Err(_)) => Reply::new(ResponseCode::ServFail, ""),
            Err(_) => {
                self.metrics.core.panics.inc();
                tracing::error!(
                    "recovered from a panic answering {} {}",
                    req.query.original().name(),
                    req.query.query_type()
                );
                Reply::new(ResponseCode::ServFail, "")
            }
        }
    }

    /// Answers raw bytes: `None` where the server stays silent (no header, or not a query).
    /// The fast path first ([`Router::answer_fast`]), the general one for the rest.
    pub async fn handle_bytes(
        &self,
        bytes: &[u8],
        src: SocketAddr,
        transport: Transport,
    ) -> Option<Vec<u8>> {
        let mut out = Vec::new();
        if self.answer_fast(bytes, src, transport, &mut out) {
            return Some(out);
        }
        self.handle_bytes_general(bytes, src, transport).await
    }

    /// Answers the plainest queries into `out` without building a message or running the
    /// chain: read the question from the bytes, ask the block's chain for prepared records
    /// ([`Chain::answer_fast`]: an index's answer, NODATA or NXDOMAIN, or a message `cache`
    /// keeps), and copy them behind the client's own question. Only where the chain would
    /// answer exactly so, and no `log` is in the block; `false` leaves the query, untouched, to
    /// [`Router::handle_bytes_general`]. The answer is counted in the metrics as the general
    /// path counts it, and is the same to the byte (the DNS case battery and the `message`
    /// fuzzer compare the two).
    pub fn answer_fast(
        &self,
        bytes: &[u8],
        src: SocketAddr,
        transport: Transport,
        out: &mut Vec<u8>,
    ) -> bool {
        let start = Instant::now();
        // Where a query enters: the client's address as the chain reads it.
        let src = client_addr(src);
        let Some(q) = fast::parse(bytes) else {
            return false;
        };
        let name = q.name();
        let Some(block) = self.blocks.iter().find(|b| name.is_in(&b.key)) else {
            return false;
        };
        // A view's expressions read more of the query than the fast path does.
        if block.view.is_some() {
            return false;
        }
        let query = FastQuery {
            name,
            qtype: q.qtype,
            checking_disabled: q.checking_disabled,
        };
        let Some((handler, found)) = block.chain.answer_fast(query) else {
            return false;
        };
        let mut metadata = Metadata::new(q.id, MessageType::Response, OpCode::Query);
        metadata.recursion_desired = q.recursion_desired;
        metadata.checking_disabled = q.checking_disabled;
        metadata.authoritative = true;
        let runs = FastRuns::of(found, &mut metadata);
        let sections = runs.sections();
        let rcode = metadata.response_code;
        // As the general path: the payload we offer is the client's within [512, 4096].
        let cap = block.chain.bufsize().unwrap_or(MAX_UDP_PAYLOAD);
        let payload = match q.edns {
            fast::Edns::None => None,
            fast::Edns::Payload(p) => Some(p.clamp(512, MAX_UDP_PAYLOAD).min(cap)),
        };
        let max = match transport {
            Transport::Tcp => u16::MAX,
            Transport::Udp => payload.unwrap_or(512),
        };
        let opt = payload.map(|p| opt_record(p, rcode));
        out.clear();
        let written = write_message(
            out,
            q.raw,
            1,
            Some(name.key()),
            metadata,
            sections,
            opt.as_ref().map(|o| &o[..]),
            max,
        );
        if written.is_err() {
            return false;
        }
        if let FastRuns::Kept(reply, kind) = &runs {
            handler.served_kept(reply, kind, &self.server);
        }
        self.metrics.observe_in(
            &block.series,
            &Observation {
                server: &self.server,
                zone: &block.label,
                transport,
                src,
                qtype: Some(q.qtype),
                dnssec_ok: false,
                rcode,
                plugin: handler.name(),
                view: "",
                request_size: bytes.len(),
                response_size: out.len(),
                duration: start.elapsed(),
            },
        );
        true
    }

    /// Answers raw bytes through hickory's parser and the chain: every query the fast path
    /// leaves.
    pub async fn handle_bytes_general(
        &self,
        bytes: &[u8],
        src: SocketAddr,
        transport: Transport,
    ) -> Option<Vec<u8>> {
        let messages = self.general(bytes, src, transport).await?;
        messages.into_iter().next()
    }

    /// Answers a query that came over a stream (TCP): every message of the answer, which is
    /// one but for a zone transfer (RFC 5936), in order. Empty: nothing is sent.
    pub async fn handle_stream(&self, bytes: &[u8], src: SocketAddr) -> Messages {
        let mut out = Vec::new();
        if self.answer_fast(bytes, src, Transport::Tcp, &mut out) {
            return smallvec::smallvec![out];
        }
        self.general(bytes, src, Transport::Tcp)
            .await
            .unwrap_or_default()
    }

    /// The general path's answer, as messages.
    async fn general(
        &self,
        bytes: &[u8],
        src: SocketAddr,
        transport: Transport,
    ) -> Option<Messages> {
        let start = Instant::now();
        // Where a query enters: the client's address as the chain reads it, an IPv4 client
        // as IPv4 whatever socket it came through (`vocab::client_addr`).
        let src = client_addr(src);
        let header = Header::read(&mut BinDecoder::new(bytes)).ok()?;
        let protocol = match transport {
            Transport::Udp => Protocol::Udp,
            Transport::Tcp => Protocol::Tcp,
        };
        let request = match HickoryRequest::from_bytes(bytes.to_vec(), src, protocol) {
            Ok(r) => r,
            Err(_) => {
                if header.metadata.message_type == MessageType::Response {
                    return None;
                }
                let out = formerr(&header)?;
                self.metrics.observe(&Observation {
                    server: &self.server,
                    zone: DROPPED,
                    transport,
                    src,
                    qtype: None,
                    dnssec_ok: false,
                    rcode: ResponseCode::FormErr,
                    plugin: "",
                    view: "",
                    request_size: bytes.len(),
                    response_size: out.len(),
                    duration: start.elapsed(),
                });
                return Some(smallvec::smallvec![out]);
            }
        };
        if request.metadata.message_type == MessageType::Response {
            return None;
        }
        let response = self.respond(&request, transport, bytes.len()).await;
        if response.drop {
            // Counted as CoreDNS counts a query a plugin drops: NOERROR, nothing written.
            self.observe(&request, &response, transport, bytes, &[], start);
            return None;
        }
        if response.transfer && transport == Transport::Tcp {
            let messages = encode_transfer(&request, &response);
            if let Some(first) = messages.first() {
                self.observe(&request, &response, transport, bytes, first, start);
            }
            return Some(messages);
        }
        let max = match (transport, &response.edns) {
            (Transport::Tcp, _) => u16::MAX,
            (Transport::Udp, Some(edns)) => edns.max_payload(),
            (Transport::Udp, None) => 512,
        };
        let out = encode(&request, &response, max);
        self.observe(&request, &response, transport, bytes, &out, start);
        Some(smallvec::smallvec![out])
    }

    /// Counts the answer and tells the chain's observers (`log`) about it.
    fn observe(
        &self,
        request: &HickoryRequest,
        response: &Response,
        transport: Transport,
        query_bytes: &[u8],
        out: &[u8],
        start: Instant,
    ) {
        let request_size = query_bytes.len();
        let duration = start.elapsed();
        let block = response.block.map(|i| &self.blocks[i]);
        let query = request.queries.queries().first();
        let dnssec_ok = request.edns.as_ref().is_some_and(|e| e.flags().dnssec_ok);
        // The header as sent: the encoder may have set TC.
        let sent = Header::read(&mut BinDecoder::new(out))
            .map(|h| h.metadata)
            .unwrap_or(response.metadata);
        let observation = Observation {
            server: &self.server,
            zone: block.map_or(DROPPED, |b| b.label.as_str()),
            transport,
            src: request.src(),
            qtype: query.map(|q| q.query_type()),
            dnssec_ok,
            rcode: response.metadata.response_code,
            plugin: response.plugin,
            view: block.map_or("", |b| b.view_label.as_str()),
            request_size,
            response_size: out.len(),
            duration,
        };
        match block {
            Some(block) => self.metrics.observe_in(&block.series, &observation),
            None => self.metrics.observe(&observation),
        }
        if let (Some(block), Some(query)) = (block, query) {
            if block.chain.observers().is_empty() {
                return;
            }
            let served = Served {
                query,
                src: request.src(),
                transport,
                id: request.metadata.id,
                opcode: request.metadata.op_code,
                request_size,
                dnssec_ok,
                bufsize: request.edns.as_ref().map_or(512, |e| e.max_payload()),
                response: sent,
                answers: response.answers.iter().map(Rrs::len).sum(),
                response_size: out.len(),
                duration,
                metadata: &response.meta,
                metadata_on: block.chain.metadata_covers(query.name()),
                query_bytes,
                response_bytes: out,
                tls: self.tls.is_some(),
                local: self.local,
            };
            for o in block.chain.observers() {
                o.served(&served);
            }
        }
    }
}

/// The address and port in a `server` label (`dns://127.0.0.1:53`, `dns://:53`).
fn local_of(server: &str) -> DnsKey {
    let rest = server.split_once("://").map_or(server, |(_, r)| r);
    let Some((host, port)) = rest.rsplit_once(':') else {
        return DnsKey::new(None, 0);
    };
    let host = host.trim_start_matches('[').trim_end_matches(']');
    DnsKey::new(host.parse().ok(), port.parse().unwrap_or(0))
}

impl Upstream for Router {
    fn lookup<'a>(&'a self, name: Name, qtype: RecordType, depth: u8) -> UpstreamFuture<'a> {
        Box::pin(async move {
            if depth > MAX_DEPTH {
                return None;
            }
            let query = LowerQuery::query(Query::query(name, qtype));
            // The server asking itself: as a query from 127.0.0.1 over UDP, for the views.
            let mut req = Request {
                query: &query,
                src: SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 0),
                transport: Transport::Udp,
                dnssec_ok: false,
                edns: None,
                recursion_desired: true,
                checking_disabled: false,
                server: &self.server,
                view: "",
                depth,
                id: 0,
                size: 0,
                local: self.local,
                upstream: self,
            };
            let block = self.route(&req)?;
            req.view = &self.blocks[block].view_label;
            self.blocks[block].chain.serve(&req).await.ok()
        })
    }
}
