//! Queries in, answers out: routing to the right chain, EDNS, size limits, case, and counting
//! every answer. [`listen`] owns the sockets; [`Router::handle_bytes`] is the whole path from
//! the bytes a client sent to the bytes it gets back, used by the sockets, the tests and the
//! fuzzers alike.

pub mod fast;
pub mod limit;
pub mod listen;
mod mmsg;

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::Instant;

use futures_util::FutureExt;
use hickory_proto::ProtoError;
use hickory_proto::op::{
    Edns, Header, HeaderCounts, LowerQuery, MessageType, Metadata, OpCode, Query, ResponseCode,
};
use hickory_proto::rr::{LowerName, Name, Record, RecordType};
use hickory_proto::serialize::binary::{
    BinDecodable, BinDecoder, BinEncodable, BinEncoder, NameEncoding,
};
use hickory_server::net::xfer::Protocol;
use hickory_server::server::Request as HickoryRequest;
use hickory_server::zone_handler::{MessageResponseBuilder, Queries};

use crate::dns::wire::{Compressor, NameKey};
use crate::observe::metrics::{DROPPED, Metrics, Observation, ZoneSeries};
use crate::plugin::{
    Chain, FastAnswer, FastQuery, MAX_DEPTH, Meta, RecordSet, Reply, Request, Rrs, Served,
    Transport, Upstream, UpstreamFuture, Viewer,
};
use crate::vocab::{DnsKey, TcpTimeouts, client_addr};

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

    /// Answers one parsed request (`size` bytes long).
    pub async fn respond(
        &self,
        request: &HickoryRequest,
        transport: Transport,
        size: usize,
    ) -> Response {
        let mut response = Response {
            metadata: Metadata::response_from_request(&request.metadata),
            answers: Vec::new(),
            authority: Vec::new(),
            additionals: Vec::new(),
            edns: None,
            block: None,
            plugin: "",
            drop: false,
            transfer: false,
            meta: Meta::new(),
        };
        let mut dnssec_ok = false;
        if let Some(req_edns) = &request.edns {
            let mut edns = Edns::new();
            edns.set_max_payload(req_edns.max_payload().clamp(512, MAX_UDP_PAYLOAD));
            edns.set_version(0);
            edns.set_dnssec_ok(req_edns.flags().dnssec_ok);
            dnssec_ok = req_edns.flags().dnssec_ok;
            response.edns = Some(edns);
            if req_edns.version() > 0 {
                response.metadata.response_code = ResponseCode::BADVERS;
                return response;
            }
        }
        if request.metadata.op_code != OpCode::Query {
            response.metadata.response_code = ResponseCode::NotImp;
            return response;
        }
        let [query] = request.queries.queries() else {
            response.metadata.response_code = ResponseCode::FormErr;
            return response;
        };
        let capped: Option<Edns>;
        let mut req = Request {
            query,
            src: request.src(),
            transport,
            dnssec_ok,
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
        // Zone transfers only where the block has `transfer`, which decides who gets one.
        let transfer = matches!(query.query_type(), RecordType::AXFR | RecordType::IXFR);
        if transfer && !self.blocks[block].chain.has("transfer") {
            response.metadata.response_code = ResponseCode::Refused;
            return response;
        }
        response.block = Some(block);
        req.view = &self.blocks[block].view_label;
        // `bufsize`: the block's cap on what the client may be answered with, and on what is
        // asked upstream for it.
        if let (Some(cap), Some(edns)) = (self.blocks[block].chain.bufsize(), &mut response.edns)
            && edns.max_payload() > cap
        {
            edns.set_max_payload(cap);
            let mut asked = request.edns.clone().unwrap_or_default();
            asked.set_max_payload(cap);
            capped = Some(asked);
            req.edns = capped.as_ref();
        }
        response.meta = self.blocks[block].chain.metadata(&req);
        // A handler that panics costs its query (SERVFAIL), never the server.
        let served = std::panic::AssertUnwindSafe(self.blocks[block].chain.serve(&req))
            .catch_unwind()
            .await;
        let reply = match served {
            Ok(Ok(reply)) => reply,
            Ok(Err(_)) => Reply::new(ResponseCode::ServFail, ""),
            Err(_) => {
                self.metrics.panics.inc();
                tracing::error!(
                    "recovered from a panic answering {} {}",
                    query.original().name(),
                    query.query_type()
                );
                Reply::new(ResponseCode::ServFail, "")
            }
        };
        response.metadata.response_code = reply.rcode;
        response.metadata.authoritative = reply.authoritative;
        response.metadata.recursion_available |= reply.recursion_available;
        response.metadata.authentic_data = reply.authentic_data;
        response.metadata.truncation |= reply.truncated;
        if let Some(rd) = reply.recursion_desired {
            response.metadata.recursion_desired = rd;
        }
        if let Some(edns) = &mut response.edns {
            for option in reply.edns_options {
                edns.options_mut().insert(option);
            }
        }
        response.drop = reply.drop;
        response.transfer = reply.transfer;
        response.plugin = reply.plugin;
        response.answers = preserve_case(query, reply.answers);
        response.authority = reply.authority;
        response.additionals = reply.additionals;
        response
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
        let (mut answer, mut authority, mut additional, mut kept) = (None, None, None, None);
        match found {
            FastAnswer::Answer {
                records,
                authority: ns,
                additionals,
            } => {
                answer = Some(Rrs::Prepared(records));
                authority = ns.map(Rrs::Prepared);
                additional = additionals.map(Rrs::Prepared);
            }
            FastAnswer::Negative(rcode, soa) => {
                metadata.response_code = rcode;
                authority = Some(Rrs::Prepared(soa));
            }
            // As `respond` sets the header from a reply.
            FastAnswer::Kept { reply, kind } => {
                metadata.authoritative = reply.authoritative;
                metadata.recursion_available = reply.recursion_available;
                metadata.authentic_data = reply.authentic_data;
                metadata.truncation = reply.truncated;
                metadata.response_code = reply.rcode;
                kept = Some((reply, kind));
            }
        }
        let sections = match &kept {
            Some((reply, _)) => Sections {
                answers: &reply.answers,
                authority: &reply.authority,
                additionals: &reply.additionals,
            },
            None => Sections {
                answers: answer.as_slice(),
                authority: authority.as_slice(),
                additionals: additional.as_slice(),
            },
        };
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
        if let Some((reply, kind)) = &kept {
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

/// FORMERR for a request whose header could be read but not the rest.
fn formerr(header: &Header) -> Option<Vec<u8>> {
    let queries = Queries::read(&mut BinDecoder::new(&[]), 0).ok()?;
    let msg = MessageResponseBuilder::new(&queries, None)
        .error_msg(&header.metadata, ResponseCode::FormErr);
    let mut buf = Vec::with_capacity(512);
    let mut encoder = BinEncoder::new(&mut buf);
    encoder.set_max_size(512);
    msg.destructive_emit(&mut encoder).ok()?;
    Some(buf)
}

/// The question as it goes back to the client. Usually the bytes it sent; but a name in them
/// may use a compression pointer (into the header, say), which would point at other bytes in
/// our answer: such a question is written out again, uncompressed.
fn echoed_question(request: &HickoryRequest) -> Option<Queries> {
    let raw = request.queries.as_bytes();
    let mut i = 0;
    let mut pointer = false;
    while i < raw.len() {
        let len = raw[i];
        if len & 0xC0 != 0 {
            pointer = true;
            break;
        }
        i += if len == 0 { 5 } else { 1 + usize::from(len) };
    }
    if !pointer {
        return None;
    }
    let mut buf = Vec::with_capacity(raw.len() + 32);
    let mut encoder = BinEncoder::new(&mut buf);
    // Uncompressed: a pointer here would count from this buffer, not from the answer's start.
    encoder.set_name_encoding(NameEncoding::Uncompressed);
    for q in request.queries.queries() {
        q.original().emit(&mut encoder).ok()?;
    }
    Queries::read(&mut BinDecoder::new(&buf), request.queries.len()).ok()
}

/// Encodes `response` to at most `max` bytes.
///
/// What does not fit is left out as CoreDNS leaves it out: additional records silently
/// (RFC 2181 section 9), answers and authority with TC set, and nothing after the first record
/// that did not fit; every whole record before it stays, part of an RRset too (a resolver
/// that never retries over TCP, such as musl's before 1.2.4, still gets addresses). Room for the OPT record is kept, so an EDNS client always gets one.
pub fn encode(request: &HickoryRequest, response: &Response, max: u16) -> Vec<u8> {
    let echo = echoed_question(request);
    let queries = echo.as_ref().unwrap_or(&request.queries);
    let opt = response.edns.as_ref().and_then(|edns| {
        let mut edns = edns.clone();
        edns.set_rcode_high(response.metadata.response_code.high());
        let mut bytes = Vec::with_capacity(16);
        Record::from(&edns)
            .emit(&mut BinEncoder::new(&mut bytes))
            .ok()?;
        Some(bytes)
    });
    let question = request
        .queries
        .queries()
        .first()
        .map(|q| NameKey::new(q.name()));
    // Compression points at the question only when there is exactly one.
    let key = question
        .as_ref()
        .filter(|_| queries.len() == 1)
        .map(NameKey::as_bytes);
    let sections = Sections {
        answers: &response.answers,
        authority: &response.authority,
        additionals: &response.additionals,
    };
    let mut buf = Vec::with_capacity(512);
    let written = write_message(
        &mut buf,
        queries.as_bytes(),
        queries.len() as u16,
        key,
        response.metadata,
        sections,
        opt.as_deref(),
        max,
    );
    match written {
        Ok(()) => buf,
        Err(_) => {
            // Could not encode: SERVFAIL with the header alone.
            let mut buf = Vec::with_capacity(12);
            let mut metadata = Metadata::response_from_request(&request.metadata);
            metadata.response_code = ResponseCode::ServFail;
            let header = Header {
                metadata,
                counts: HeaderCounts::default(),
            };
            let mut encoder = BinEncoder::new(&mut buf);
            let _ = header.emit(&mut encoder);
            buf
        }
    }
}

/// The messages of an answer: one, or the many of a zone transfer.
pub type Messages = smallvec::SmallVec<[Vec<u8>; 1]>;

/// How full a zone transfer's message is filled before the next one starts (Knot and BIND send
/// messages of about this size: large enough to be cheap, small enough to stream).
const TRANSFER_MESSAGE: usize = 16 * 1024;

/// A zone transfer's answer (its records, SOA to SOA) as messages of about
/// [`TRANSFER_MESSAGE`] bytes: the question in the first only, the OPT record in each where the
/// client sent one (RFC 5936 section 2.2).
fn encode_transfer(request: &HickoryRequest, response: &Response) -> Messages {
    let qname = request
        .queries
        .queries()
        .first()
        .map_or_else(Name::root, |q| Name::from(q.name()));
    let records: Vec<Record> = response
        .answers
        .iter()
        .flat_map(|s| s.records(&qname))
        .collect();
    let opt = response.edns.as_ref().and_then(|edns| {
        let mut bytes = Vec::with_capacity(16);
        Record::from(edns)
            .emit(&mut BinEncoder::new(&mut bytes))
            .ok()?;
        Some(bytes)
    });
    let mut out = Messages::new();
    let mut i = 0;
    loop {
        let first = out.is_empty();
        let mut buf = Vec::with_capacity(TRANSFER_MESSAGE + 512);
        let mut enc = BinEncoder::new(&mut buf);
        let opt_len = opt.as_ref().map_or(0, Vec::len);
        enc.set_max_size(u16::MAX - opt_len as u16);
        let Ok(place) = enc.place::<Header>() else {
            break;
        };
        if first && enc.emit_vec(request.queries.as_bytes()).is_err() {
            break;
        }
        let mut n = 0u16;
        while i < records.len() && enc.offset() < TRANSFER_MESSAGE {
            let mark = enc.offset();
            if records[i].emit(&mut enc).is_err() {
                enc.set_offset(mark);
                enc.trim();
                break;
            }
            i += 1;
            n += 1;
        }
        if n == 0 && i < records.len() {
            // A record no message can hold: the transfer fails as a whole.
            let mut metadata = response.metadata;
            metadata.response_code = ResponseCode::ServFail;
            let mut buf = Vec::with_capacity(12);
            let _ = Header {
                metadata,
                counts: HeaderCounts::default(),
            }
            .emit(&mut BinEncoder::new(&mut buf));
            return smallvec::smallvec![buf];
        }
        let mut counts = HeaderCounts {
            queries: u16::from(first) * request.queries.len() as u16,
            answers: n,
            ..HeaderCounts::default()
        };
        if let Some(opt) = &opt {
            enc.set_max_size(u16::MAX);
            if enc.emit_vec(opt).is_ok() {
                counts.additionals = 1;
            }
        }
        let header = Header {
            metadata: response.metadata,
            counts,
        };
        if place.replace(&mut enc, header).is_err() {
            break;
        }
        out.push(buf);
        if i >= records.len() {
            break;
        }
    }
    out
}

/// An OPT record as we answer with it: no options, version 0, DO clear, the extended bits of
/// `rcode`. The same bytes hickory writes for such an [`Edns`] (the test below holds them equal).
fn opt_record(payload: u16, rcode: ResponseCode) -> [u8; 11] {
    let [p0, p1] = payload.to_be_bytes();
    [0, 0, 41, p0, p1, rcode.high(), 0, 0, 0, 0, 0]
}

/// A response's record sections.
struct Sections<'a> {
    answers: &'a [Rrs],
    authority: &'a [Rrs],
    additionals: &'a [Rrs],
}

/// Writes a response into `buf`: the header from `metadata`, the question section `question`
/// (`qcount` questions, as the client sent them), the sections, and `opt` last; at most `max`
/// bytes. `key` is the one question's name in lower-case wire form, which answers' names are
/// compressed against.
#[allow(clippy::too_many_arguments)]
fn write_message(
    buf: &mut Vec<u8>,
    question: &[u8],
    qcount: u16,
    key: Option<&[u8]>,
    metadata: Metadata,
    sections: Sections<'_>,
    opt: Option<&[u8]>,
    max: u16,
) -> Result<(), ProtoError> {
    let mut enc = BinEncoder::new(buf);
    let opt_len = opt.map_or(0, <[u8]>::len) as u16;
    enc.set_max_size(max.saturating_sub(opt_len));
    let place = enc.place::<Header>()?;
    enc.emit_vec(question)?;
    let root = [0u8];
    let mut names = Compressor::new(key.unwrap_or(&root[..]));
    if key.is_none() {
        names.truncate(0); // no question to point at
    }
    let mut metadata = metadata;
    let mut counts = HeaderCounts {
        queries: qcount,
        ..HeaderCounts::default()
    };
    let (answers, full) = write_section(&mut enc, &mut names, sections.answers);
    counts.answers = answers;
    let mut truncated = full;
    if !truncated {
        let (n, full) = write_section(&mut enc, &mut names, sections.authority);
        counts.authorities = n;
        truncated = full;
        if !truncated {
            counts.additionals = write_section(&mut enc, &mut names, sections.additionals).0;
        }
    }
    metadata.truncation |= truncated;
    if let Some(opt) = opt {
        enc.set_max_size(max);
        enc.emit_vec(opt)?;
        counts.additionals += 1;
    }
    place.replace(&mut enc, Header { metadata, counts })?;
    Ok(())
}

/// Writes whole records until one does not fit; returns how many went in, and whether one
/// did not fit.
fn write_section<'a>(
    enc: &mut BinEncoder<'_>,
    names: &mut Compressor<'a>,
    sets: &'a [Rrs],
) -> (u16, bool) {
    let mut count = 0u16;
    for set in sets {
        match set {
            Rrs::Records(records) => {
                for r in records.iter() {
                    let mark = enc.offset();
                    if r.emit(enc).is_err() {
                        enc.set_offset(mark);
                        enc.trim();
                        return (count, true);
                    }
                    count += 1;
                }
            }
            Rrs::Prepared(p) => {
                let (n, full) = p.write_fitting(enc, names);
                count += n;
                if full {
                    return (count, true);
                }
            }
        }
    }
    (count, false)
}

/// Answers carry the owner name as the client wrote it (`KUBERNETES.default…` stays upper
/// case). Prepared records do it by pointing at the question; hickory's are renamed here.
fn preserve_case(query: &LowerQuery, answers: Vec<Rrs>) -> Vec<Rrs> {
    let original = query.original().name();
    let lower: &Name = query.name();
    if original.eq_case(lower) {
        return answers;
    }
    answers
        .into_iter()
        .map(|set| {
            let Rrs::Records(set) = set else {
                return set;
            };
            if !set.iter().any(|r| &r.name == lower) {
                return Rrs::Records(set);
            }
            let renamed: Vec<Record> = set
                .iter()
                .map(|r| {
                    let mut r = r.clone();
                    if &r.name == lower {
                        r.name = original.clone();
                    }
                    r
                })
                .collect();
            Rrs::Records(RecordSet::from(renamed))
        })
        .collect()
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_fast_paths_opt_record_is_hickorys() {
        for (payload, rcode) in [
            (512, ResponseCode::NoError),
            (1232, ResponseCode::NXDomain),
            (4096, ResponseCode::BADVERS),
        ] {
            let mut edns = Edns::new();
            edns.set_max_payload(payload);
            edns.set_version(0);
            edns.set_dnssec_ok(false);
            edns.set_rcode_high(rcode.high());
            let mut bytes = Vec::new();
            Record::from(&edns)
                .emit(&mut BinEncoder::new(&mut bytes))
                .unwrap();
            assert_eq!(
                opt_record(payload, rcode)[..],
                bytes[..],
                "{payload} {rcode}"
            );
        }
    }
}
