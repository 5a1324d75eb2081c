//! `forward`: sends names under FROM (and not under `except`) to the upstreams, as CoreDNS does.
//!
//! Per query: the upstreams in the policy's order, skipping those that are down; the query as
//! the client sent it (its RD and CD bits, its EDNS record with every option and the DO bit)
//! under a fresh ID; UDP unless the client came over TCP (or `force_tcp`, or `prefer_udp`), and
//! a truncated UDP answer asked again over TCP. An upstream that fails is health-checked and
//! the next one tried, all within [`DEADLINE`]; when none answers, the client gets SERVFAIL.

pub mod config;
mod resolve;
pub mod upstream;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use hickory_proto::op::{Message, MessageType, OpCode, ResponseCode};
use hickory_proto::rr::{LowerName, RData, Record};

use crate::observe::metrics::{Metrics, rcode_label};
use crate::plugin::PluginError;
use crate::plugin::forward::config::{ForwardConfig, Policy, Scheme};
use crate::plugin::forward::upstream::{ExchangeError, Proto, Proxy, ProxyOptions, tls_connector};
use crate::plugin::setup::Setup;
use crate::plugin::shared::services::{MessageTap, SentUpstream, TapEvent, TapKind, TapWire, Taps};
use crate::plugin::shared::shuffle;
use crate::plugin::{
    Handler, HandlerError, HandlerFuture, Next, RecordSet, Reply, Request, Transport,
};

/// How long one query may spend on all its upstreams (CoreDNS's `defaultTimeout`).
pub const DEADLINE: Duration = Duration::from_secs(5);

const NAME: &str = "forward";

pub struct Forward {
    from: LowerName,
    except: Vec<LowerName>,
    proxies: Vec<Arc<Proxy>>,
    policy: Policy,
    round_robin: AtomicUsize,
    force_tcp: bool,
    prefer_udp: bool,
    max_concurrent: Option<u64>,
    concurrent: AtomicU64,
    next: Vec<ResponseCode>,
    next_on_nodata: bool,
    failover: Vec<ResponseCode>,
    failfast: bool,
    /// Upstream attempts a query may make; `None`: no cap.
    max_attempts: Option<usize>,
    metrics: Arc<Metrics>,
    /// The `loop` probe of this server block, told where its query went.
    probe: Option<Arc<dyn SentUpstream>>,
    /// The block's `dnstap` collectors, sent each exchange with an upstream.
    taps: Vec<Arc<dyn MessageTap>>,
}

impl Forward {
    pub fn new(
        cfg: &ForwardConfig,
        metrics: Arc<Metrics>,
        probe: Option<Arc<dyn SentUpstream>>,
    ) -> Result<Self, String> {
        let tls = if cfg.to.iter().any(|t| t.scheme == Scheme::Tls) {
            let files = cfg.tls.clone().unwrap_or_default();
            Some((tls_connector(&files, false)?, cfg.tls_servername.clone()))
        } else {
            None
        };
        let doh = if cfg.to.iter().any(|t| t.scheme == Scheme::Https) {
            let files = cfg.tls.clone().unwrap_or_default();
            Some((tls_connector(&files, true)?, cfg.tls_servername.clone()))
        } else {
            None
        };
        let opts = ProxyOptions {
            expire: cfg.expire,
            max_idle: cfg.max_idle_conns,
            max_fails: cfg.max_fails,
            health: cfg.health_check.clone(),
            force_tcp: cfg.force_tcp,
            tls,
            doh,
            doh_method: cfg.doh_method,
            metrics: metrics.clone(),
            read_timeout: cfg.read_timeout,
            source: cfg.source_address,
        };
        let proxies = cfg
            .to
            .iter()
            .map(|to| Proxy::new(to.clone(), opts.clone()).map(Arc::new))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Self {
            from: LowerName::new(&cfg.from),
            except: cfg.except.iter().map(LowerName::new).collect(),
            proxies,
            policy: cfg.policy,
            round_robin: AtomicUsize::new(0),
            force_tcp: cfg.force_tcp,
            prefer_udp: cfg.prefer_udp,
            max_concurrent: cfg.max_concurrent,
            concurrent: AtomicU64::new(0),
            next: cfg.next.clone(),
            next_on_nodata: cfg.next_on_nodata,
            failover: cfg.failover.clone(),
            failfast: cfg.failfast_all_unhealthy_upstreams,
            max_attempts: match cfg.max_connect_attempts {
                None => Some(2 * cfg.to.len()),
                Some(0) => None,
                Some(n) => Some(n as usize),
            },
            metrics,
            probe,
            taps: Vec::new(),
        })
    }

    fn matches(&self, name: &LowerName) -> bool {
        self.from.zone_of(name) && !self.except.iter().any(|e| e.zone_of(name))
    }

    /// The upstreams in the order this query tries them.
    fn list(&self) -> Vec<Arc<Proxy>> {
        let mut list = self.proxies.clone();
        match self.policy {
            Policy::Sequential => {}
            Policy::RoundRobin => {
                let n = self.round_robin.fetch_add(1, Ordering::Relaxed);
                let len = list.len();
                list.rotate_left(n % len.max(1));
            }
            Policy::Random => shuffle(&mut list),
        }
        list
    }

    fn wanted_proto(&self, req: &Request) -> Proto {
        if self.force_tcp {
            Proto::Tcp
        } else if self.prefer_udp {
            Proto::Udp
        } else {
            match req.transport {
                Transport::Udp => Proto::Udp,
                Transport::Tcp => Proto::Tcp,
            }
        }
    }

    async fn forward(&self, req: &Request<'_>) -> Result<Outcome, HandlerError> {
        let query = query_bytes(req).map_err(|msg| HandlerError::failed(NAME, msg))?;
        let deadline = Instant::now() + DEADLINE;
        let list = self.list();
        let wanted = self.wanted_proto(req);
        let mut down = 0;
        let mut last_error: Option<String> = None;
        let mut failed_over: Option<Reply> = None;
        let mut i = 0;
        let mut attempts = 0;
        // Around the list as many times as the deadline and `max_connect_attempts` allow (by
        // default twice the upstreams: two passes, as in CoreDNS 1.14).
        while Instant::now() < deadline && self.max_attempts.is_none_or(|max| attempts < max) {
            if i == list.len() {
                i = 0;
                down = 0;
            }
            let mut proxy = &list[i];
            i += 1;
            if proxy.down() {
                down += 1;
                if down < self.proxies.len() {
                    continue;
                }
                // Every upstream is down: the health checks themselves may be what is broken.
                self.metrics.forward.healthcheck_broken.inc();
                if self.failfast {
                    break;
                }
                proxy = &self.proxies[rand::random_range(0..self.proxies.len())];
            }
            if let Some(probe) = &self.probe {
                probe.sent(req.query.name(), &proxy.label);
            }
            attempts += 1;
            let start = Instant::now();
            let remaining = deadline.saturating_duration_since(start);
            let result = tokio::time::timeout(remaining, self.exchange(proxy, &query, wanted))
                .await
                .unwrap_or(Err(ExchangeError::Timeout));
            let answer = match result {
                Ok(a) => a,
                Err(e) => {
                    tracing::debug!("plugin/forward: {}: {e}", proxy.label);
                    last_error = Some(format!("{}: {e}", proxy.label));
                    proxy.start_probe();
                    continue;
                }
            };
            let msg = match Message::from_vec(&answer) {
                Ok(m) => m,
                Err(e) => {
                    last_error = Some(format!("{}: unreadable answer: {e}", proxy.label));
                    proxy.start_probe();
                    continue;
                }
            };
            let rcode = msg.metadata.response_code;
            self.count(proxy, rcode, start.elapsed());
            if !same_question(req, &msg) {
                tracing::debug!(
                    "plugin/forward: {} answered another question than {}",
                    proxy.label,
                    req.query.original()
                );
                return Ok(Outcome::Reply(Reply::new(ResponseCode::FormErr, NAME)));
            }
            let reply = reply_from(msg);
            if self.failover.contains(&rcode) && i < list.len() {
                failed_over = Some(reply);
                continue;
            }
            let nodata = rcode == ResponseCode::NoError && reply.answers.is_empty();
            if self.next.contains(&rcode) || (self.next_on_nodata && nodata) {
                return Ok(Outcome::Next(reply));
            }
            return Ok(Outcome::Reply(reply));
        }
        if let Some(reply) = failed_over {
            return Ok(Outcome::Reply(reply));
        }
        Err(HandlerError::failed(
            NAME,
            last_error.unwrap_or_else(|| "no healthy upstream".into()),
        ))
    }

    /// One exchange with one upstream; a truncated UDP answer is asked again over TCP.
    async fn exchange(
        &self,
        proxy: &Proxy,
        query: &[u8],
        wanted: Proto,
    ) -> Result<Vec<u8>, ExchangeError> {
        let mut query = query.to_vec();
        let id: u16 = rand::random();
        query[..2].copy_from_slice(&id.to_be_bytes());
        let proto = proxy.proto_for(wanted);
        let answer = self.tapped(proxy, &query, proto).await?;
        let truncated = answer.get(2).is_some_and(|b| b & 0x02 != 0);
        if proto == Proto::Udp && truncated {
            return self.tapped(proxy, &query, Proto::Tcp).await;
        }
        Ok(answer)
    }

    /// One exchange, told to the block's `dnstap` collectors (FORWARDER_QUERY, then
    /// FORWARDER_RESPONSE when an answer came).
    async fn tapped(
        &self,
        proxy: &Proxy,
        query: &[u8],
        proto: Proto,
    ) -> Result<Vec<u8>, ExchangeError> {
        if self.taps.is_empty() {
            return proxy.exchange(query, proto).await;
        }
        let wire = match proto {
            Proto::Udp => TapWire::Udp,
            Proto::Tcp => TapWire::Tcp,
            Proto::Tls => TapWire::Tls,
            Proto::Https => TapWire::Https,
        };
        let sent = std::time::SystemTime::now();
        let mut event = TapEvent {
            kind: TapKind::ForwarderQuery,
            wire,
            query_from: None,
            response_from: Some(proxy.to.addr),
            query_time: sent,
            query: Some(query),
            response_time: None,
            response: None,
        };
        for t in &self.taps {
            t.emit(&event);
        }
        let answer = proxy.exchange(query, proto).await?;
        event.kind = TapKind::ForwarderResponse;
        event.response_time = Some(std::time::SystemTime::now());
        event.response = Some(&answer);
        for t in &self.taps {
            t.emit(&event);
        }
        Ok(answer)
    }

    fn count(&self, proxy: &Proxy, rcode: ResponseCode, took: Duration) {
        let f = &self.metrics.forward;
        let rcode = rcode_label(rcode);
        let secs = took.as_secs_f64();
        f.duration
            .with_label_values(&[NAME, &proxy.label, &rcode])
            .observe(secs);
        f.legacy_requests.with_label_values(&[&proxy.label]).inc();
        f.legacy_responses
            .with_label_values(&[proxy.label.as_str(), &rcode])
            .inc();
        f.legacy_duration
            .with_label_values(&[proxy.label.as_str(), &rcode])
            .observe(secs);
    }
}

enum Outcome {
    Reply(Reply),
    /// The upstream's rcode is one `next` names: the rest of the chain answers (or, if nothing
    /// is left, this reply).
    Next(Reply),
}

/// Decrements the count of queries in flight when one ends, however it ends.
struct InFlight<'a>(&'a AtomicU64);

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

impl Handler for Forward {
    fn name(&self) -> &'static str {
        NAME
    }

    fn serve<'a>(&'a self, req: &'a Request<'a>, next: Next<'a>) -> HandlerFuture<'a> {
        Box::pin(async move {
            if !self.matches(req.query.name()) {
                return next.serve(req).await;
            }
            let _in_flight = match self.max_concurrent {
                Some(max) => {
                    let now = self.concurrent.fetch_add(1, Ordering::AcqRel) + 1;
                    let guard = InFlight(&self.concurrent);
                    if now > max {
                        self.metrics.forward.max_concurrent_rejects.inc();
                        return Ok(Reply::new(ResponseCode::Refused, NAME));
                    }
                    Some(guard)
                }
                None => None,
            };
            match self.forward(req).await? {
                Outcome::Reply(reply) => Ok(reply),
                Outcome::Next(reply) => match next.serve(req).await {
                    Err(HandlerError::NoNextPlugin) => Ok(reply),
                    other => other,
                },
            }
        })
    }
}

/// The client's query as it goes upstream (its ID is set per exchange).
fn query_bytes(req: &Request) -> Result<Vec<u8>, String> {
    let mut msg = Message::new(0, MessageType::Query, OpCode::Query);
    msg.metadata.recursion_desired = req.recursion_desired;
    msg.metadata.checking_disabled = req.checking_disabled;
    msg.add_query(req.query.original().clone());
    if let Some(edns) = req.edns {
        msg.set_edns(edns.clone());
    }
    msg.to_vec()
        .map_err(|e| format!("cannot encode the query: {e}"))
}

/// The answer is a QUERY response to the question asked (an UPDATE answer, say, reads records
/// a QUERY answer cannot hold).
fn same_question(req: &Request, msg: &Message) -> bool {
    let q = req.query.original();
    matches!(msg.queries.as_slice(), [a] if a.name() == q.name()
        && a.query_type() == q.query_type()
        && a.query_class() == q.query_class())
        && msg.metadata.message_type == MessageType::Response
        && msg.metadata.op_code == OpCode::Query
}

fn reply_from(msg: Message) -> Reply {
    let mut reply = Reply::new(msg.metadata.response_code, NAME);
    reply.authoritative = msg.metadata.authoritative;
    reply.recursion_available = msg.metadata.recursion_available;
    reply.authentic_data = msg.metadata.authentic_data;
    reply.truncated = msg.metadata.truncation;
    let set = |mut records: Vec<Record>| -> Vec<crate::plugin::Rrs> {
        // Records without data exist only in UPDATE messages.
        records.retain(|r| !matches!(r.data, RData::Update0(_)));
        if records.is_empty() {
            Vec::new()
        } else {
            vec![RecordSet::from(records).into()]
        }
    };
    reply.answers = set(msg.answers);
    reply.authority = set(msg.authorities);
    reply.additionals = set(msg.additionals);
    reply
}

/// Puts `forward` into the block being set up.
pub fn setup(cfg: &config::ForwardConfig, s: &mut Setup<'_>) -> Result<(), PluginError> {
    let probe = s.shared::<Arc<dyn SentUpstream>>();
    // Host names among the upstreams are resolved now, once (a blocking exchange, off the
    // runtime's other tasks).
    let mut cfg = cfg.clone();
    cfg.to = crate::plugin::shared::blocking(|| resolve::resolve(&cfg))
        .map_err(|e| PluginError::new(NAME, e))?;
    let mut f =
        Forward::new(&cfg, s.metrics.clone(), probe).map_err(|e| PluginError::new(NAME, e))?;
    f.taps = s.shared::<Taps>().unwrap_or_default().0;
    s.handler(f);
    Ok(())
}
