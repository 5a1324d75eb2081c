//! hickory glue: listeners, a request → the right chain, and the response as the client may
//! take it (EDNS, size, case).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use hickory_proto::op::{
    Edns, Header, HeaderCounts, LowerQuery, MessageType, Metadata, OpCode, Query, ResponseCode,
};
use hickory_proto::rr::{LowerName, Name, Record, RecordType};
use hickory_proto::serialize::binary::{BinDecodable, BinDecoder, BinEncoder};
use hickory_server::net::runtime::Time;
use hickory_server::net::xfer::Protocol;
use hickory_server::server::{
    Request as HickoryRequest, RequestHandler, ResponseHandler, ResponseInfo,
};
use hickory_server::zone_handler::{MessageResponse, MessageResponseBuilder, Queries};

use crate::chain::{
    Chain, MAX_DEPTH, RecordSet, Reply, Request, Transport, Upstream, UpstreamFuture,
};

/// The largest UDP payload we answer with, whatever a client advertises.
pub const MAX_UDP_PAYLOAD: u16 = 4096;

/// How long an idle TCP connection is kept.
pub const TCP_IDLE: Duration = Duration::from_secs(10);

/// The server blocks listening on one port, most specific zone first.
pub struct Router {
    blocks: Vec<(LowerName, Arc<Chain>)>,
}

/// A response, before encoding.
pub struct Response {
    pub metadata: Metadata,
    pub answers: Vec<RecordSet>,
    pub authority: Vec<RecordSet>,
    pub additionals: Vec<RecordSet>,
    pub edns: Option<Edns>,
}

impl Router {
    pub fn new(blocks: Vec<(Name, Arc<Chain>)>) -> Self {
        let mut blocks: Vec<(LowerName, Arc<Chain>)> = blocks
            .into_iter()
            .map(|(z, c)| (LowerName::new(&z), c))
            .collect();
        blocks.sort_by_key(|(z, _)| std::cmp::Reverse(z.num_labels()));
        Self { blocks }
    }

    /// The chain of the block with the most specific zone holding `name`.
    pub fn route(&self, name: &LowerName) -> Option<&Arc<Chain>> {
        self.blocks
            .iter()
            .find(|(zone, _)| zone.zone_of(name))
            .map(|(_, chain)| chain)
    }

    /// Answers one parsed request.
    pub async fn respond(&self, request: &HickoryRequest, transport: Transport) -> Response {
        let mut metadata = Metadata::response_from_request(&request.metadata);
        let mut response = Response {
            metadata,
            answers: Vec::new(),
            authority: Vec::new(),
            additionals: Vec::new(),
            edns: None,
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
        if matches!(query.query_type(), RecordType::AXFR | RecordType::IXFR) {
            response.metadata.response_code = ResponseCode::Refused;
            return response;
        }
        let Some(chain) = self.route(query.name()) else {
            response.metadata.response_code = ResponseCode::Refused;
            return response;
        };
        let req = Request {
            query,
            src: request.src(),
            transport,
            dnssec_ok,
            depth: 0,
            upstream: self,
        };
        let reply = match chain.serve(&req).await {
            Ok(reply) => reply,
            Err(_) => Reply::new(ResponseCode::ServFail, ""),
        };
        metadata = response.metadata;
        metadata.response_code = reply.rcode;
        metadata.authoritative = reply.authoritative;
        response.metadata = metadata;
        response.answers = preserve_case(query, reply.answers);
        response.authority = reply.authority;
        response.additionals = reply.additionals;
        response
    }

    /// Answers raw bytes as the socket path does: `None` where the server stays silent.
    pub async fn handle_bytes(
        &self,
        bytes: &[u8],
        src: SocketAddr,
        transport: Transport,
    ) -> Option<Vec<u8>> {
        let header = Header::read(&mut BinDecoder::new(bytes)).ok()?;
        let protocol = match transport {
            Transport::Udp => Protocol::Udp,
            Transport::Tcp => Protocol::Tcp,
        };
        let request = match HickoryRequest::from_bytes(bytes.to_vec(), src, protocol) {
            Ok(r) => r,
            Err(_) => {
                let queries = Queries::read(&mut BinDecoder::new(&[]), 0).ok()?;
                let msg = MessageResponseBuilder::new(&queries, None)
                    .error_msg(&header.metadata, ResponseCode::FormErr);
                let mut buf = Vec::with_capacity(512);
                let mut encoder = BinEncoder::new(&mut buf);
                encoder.set_max_size(512);
                msg.destructive_emit(&mut encoder).ok()?;
                return Some(buf);
            }
        };
        if request.metadata.message_type == MessageType::Response {
            return None;
        }
        let response = self.respond(&request, transport).await;
        let max = match (transport, &response.edns) {
            (Transport::Tcp, _) => u16::MAX,
            (Transport::Udp, Some(edns)) => edns.max_payload(),
            (Transport::Udp, None) => 512,
        };
        Some(encode(&request, &response, max))
    }
}

/// `response` as hickory's message type, the question echoed from `request`.
fn message<'a>(
    request: &'a HickoryRequest,
    response: &'a Response,
) -> MessageResponse<
    'a,
    'a,
    impl Iterator<Item = &'a Record> + Send + 'a,
    impl Iterator<Item = &'a Record> + Send + 'a,
    impl Iterator<Item = &'a Record> + Send + 'a,
    impl Iterator<Item = &'a Record> + Send + 'a,
> {
    let records = |sets: &'a [RecordSet]| sets.iter().flat_map(|s| s.iter());
    MessageResponseBuilder::new(&request.queries, response.edns.as_ref()).build(
        response.metadata,
        records(&response.answers),
        records(&response.authority),
        std::iter::empty(),
        records(&response.additionals),
    )
}

/// Encodes `response` to at most `max` bytes, truncating (TC) as hickory's socket path does.
pub fn encode(request: &HickoryRequest, response: &Response, max: u16) -> Vec<u8> {
    let msg = message(request, response);
    let mut buf = Vec::with_capacity(512);
    let mut encoder = BinEncoder::new(&mut buf);
    encoder.set_max_size(max);
    if msg.destructive_emit(&mut encoder).is_ok() {
        return buf;
    }
    // Could not encode: SERVFAIL with the header alone.
    let mut buf = Vec::with_capacity(12);
    let mut metadata = Metadata::response_from_request(&request.metadata);
    metadata.response_code = ResponseCode::ServFail;
    let header = Header {
        metadata,
        counts: HeaderCounts::default(),
    };
    let mut encoder = BinEncoder::new(&mut buf);
    let _ = hickory_proto::serialize::binary::BinEncodable::emit(&header, &mut encoder);
    buf
}

/// Answers carry the owner name as the client wrote it (`KUBERNETES.default…` stays upper case).
fn preserve_case(query: &LowerQuery, answers: Vec<RecordSet>) -> Vec<RecordSet> {
    let original = query.original().name();
    let lower: &Name = query.name();
    if original.eq_case(lower) {
        return answers;
    }
    answers
        .into_iter()
        .map(|set| {
            if !set.iter().any(|r| &r.name == lower) {
                return set;
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
            RecordSet::from(renamed)
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
            let chain = self.route(query.name())?;
            let req = Request {
                query: &query,
                src: SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 0),
                transport: Transport::Udp,
                dnssec_ok: false,
                depth,
                upstream: self,
            };
            chain.serve(&req).await.ok()
        })
    }
}

/// hickory's request handler: every socket's queries come through here.
pub struct DnsHandler {
    pub router: Arc<Router>,
}

#[async_trait::async_trait]
impl RequestHandler for DnsHandler {
    async fn handle_request<R: ResponseHandler, T: Time>(
        &self,
        request: &HickoryRequest,
        mut response_handle: R,
    ) -> ResponseInfo {
        let transport = match request.protocol() {
            Protocol::Tcp => Transport::Tcp,
            _ => Transport::Udp,
        };
        let response = self.router.respond(request, transport).await;
        match response_handle
            .send_response(message(request, &response))
            .await
        {
            Ok(info) => info,
            Err(e) => {
                tracing::debug!("sending a response to {}: {e}", request.src());
                let mut metadata = Metadata::response_from_request(&request.metadata);
                metadata.response_code = ResponseCode::ServFail;
                ResponseInfo::from(Header {
                    metadata,
                    counts: HeaderCounts::default(),
                })
            }
        }
    }
}

/// Binds UDP and TCP on the same port: on `addr` if given, else on every address (IPv6 and
/// IPv4 where the host has IPv6, IPv4 alone otherwise). Port 0 picks a free port for both.
pub async fn bind(
    addr: Option<IpAddr>,
    port: u16,
) -> std::io::Result<(tokio::net::UdpSocket, tokio::net::TcpListener)> {
    let candidates: Vec<IpAddr> = match addr {
        Some(a) => vec![a],
        None => vec![
            IpAddr::V6(Ipv6Addr::UNSPECIFIED),
            IpAddr::V4(Ipv4Addr::UNSPECIFIED),
        ],
    };
    let mut last_err = None;
    for ip in candidates {
        // With port 0 the kernel picks the UDP port; TCP must then get the same one, which
        // another process may hold: try a few times.
        for _ in 0..if port == 0 { 20 } else { 1 } {
            let udp = match tokio::net::UdpSocket::bind(SocketAddr::new(ip, port)).await {
                Ok(u) => u,
                Err(e) => {
                    last_err = Some(e);
                    break;
                }
            };
            let bound = udp.local_addr()?;
            match tokio::net::TcpListener::bind(bound).await {
                Ok(tcp) => return Ok((udp, tcp)),
                Err(e) => last_err = Some(e),
            }
        }
    }
    Err(last_err.unwrap_or_else(|| std::io::Error::other("no address to bind")))
}
