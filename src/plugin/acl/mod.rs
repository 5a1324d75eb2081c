//! `acl`: checks each query against the rules of the block's `acl` lines, in order. The first
//! rule whose zones hold the name and one of whose lines matches the query's type and source
//! decides: `allow` passes it on (no later rule is looked at), `block` answers REFUSED,
//! `filter` answers NOERROR with nothing, `drop` answers nothing. A query no line matches is
//! allowed. The source is the client's address as the server sees it (an IPv4 client on a
//! dual-stack socket is its IPv4 address).

pub mod config;

use config::{Action, Policy, Rule};
use hickory_proto::op::ResponseCode;
use hickory_proto::rr::{Name, RecordType};
use prometheus::{IntCounter, IntCounterVec};

use std::sync::Arc;

use crate::plugin::PluginError;
use crate::plugin::setup::Setup;
use crate::plugin::shared::services::{Gates, QueryGate};
use crate::plugin::{Handler, HandlerFuture, Next, Reply, Request};

const NAME: &str = "acl";

struct Counters {
    blocked: IntCounterVec,
    filtered: IntCounterVec,
    dropped: IntCounterVec,
    /// Per `server` label of the block's ports (a block may listen on several).
    allowed: IntCounterVec,
}

pub struct Acl {
    rules: Arc<Rules>,
    counters: Counters,
}

/// The block's rules, each with its zones as the metrics' labels; shared with the plugins that
/// ask names on a client's behalf, as a [`QueryGate`].
struct Rules(Vec<(Rule, Vec<String>)>);

fn matches(p: &Policy, qtype: RecordType, ip: std::net::IpAddr) -> bool {
    p.qtypes.as_ref().is_none_or(|t| t.contains(&qtype))
        && p.nets
            .as_ref()
            .is_none_or(|n| n.iter().any(|n| n.contains(&ip)))
}

impl Rules {
    /// What the first rule to match says of a query, and the zone (label) it matched in;
    /// `None` where no rule matches (allowed).
    fn decide(
        &self,
        name: &Name,
        qtype: RecordType,
        ip: std::net::IpAddr,
    ) -> Option<(Action, &str)> {
        for (rule, labels) in &self.0 {
            let Some(zone) = rule.zones.iter().position(|z| z.zone_of(name)) else {
                continue;
            };
            if let Some(p) = rule.policies.iter().find(|p| matches(p, qtype, ip)) {
                return Some((p.action, labels[zone].as_str()));
            }
        }
        None
    }
}

impl QueryGate for Rules {
    fn admits(&self, name: &Name, qtype: RecordType, client: std::net::IpAddr) -> bool {
        matches!(
            self.decide(name, qtype, client),
            None | Some((Action::Allow, _))
        )
    }
}

impl Acl {
    fn counter(c: &IntCounterVec, server: &str, zone: &str, view: &str) -> IntCounter {
        c.with_label_values(&[server, zone, view])
    }
}

impl Handler for Acl {
    fn name(&self) -> &'static str {
        NAME
    }

    fn serve<'a>(&'a self, req: &'a Request<'a>, next: Next<'a>) -> HandlerFuture<'a> {
        let name = Name::from(req.query.name());
        let ip = req.src.ip();
        let mut reply = Reply::new(ResponseCode::NoError, NAME);
        let (counter, zone) = match self.rules.decide(&name, req.query.query_type(), ip) {
            None | Some((Action::Allow, _)) => {
                self.counters
                    .allowed
                    .with_label_values(&[req.server, req.view])
                    .inc();
                return next.serve(req);
            }
            Some((Action::Block, zone)) => {
                reply.rcode = ResponseCode::Refused;
                (&self.counters.blocked, zone)
            }
            Some((Action::Filter, zone)) => (&self.counters.filtered, zone),
            Some((Action::Drop, zone)) => {
                reply.drop = true;
                (&self.counters.dropped, zone)
            }
        };
        Self::counter(counter, req.server, zone, req.view).inc();
        Box::pin(std::future::ready(Ok(reply)))
    }
}

/// Puts `acl` into the block being set up.
pub fn setup(cfg: &config::AclConfig, s: &mut Setup<'_>) -> Result<(), PluginError> {
    let m = s.metrics;
    let with_zone = ["server", "zone", "view"];
    let counters = Counters {
        blocked: m.plugin_counter(
            "coredns_acl_blocked_requests_total",
            "Counter of DNS requests being blocked.",
            &with_zone,
        ),
        filtered: m.plugin_counter(
            "coredns_acl_filtered_requests_total",
            "Counter of DNS requests being filtered.",
            &with_zone,
        ),
        dropped: m.plugin_counter(
            "coredns_acl_dropped_requests_total",
            "Counter of DNS requests being dropped.",
            &with_zone,
        ),
        allowed: m.plugin_counter(
            "coredns_acl_allowed_requests_total",
            "Counter of DNS requests being allowed.",
            &["server", "view"],
        ),
    };
    let rules = Arc::new(Rules(
        cfg.rules
            .iter()
            .map(|r| (r.clone(), r.zones.iter().map(|z| z.to_string()).collect()))
            .collect(),
    ));
    s.handler(Acl {
        rules: rules.clone(),
        counters,
    });
    // The plugins after it that ask names on a client's behalf (`autopath`) ask it first.
    let mut gates = s.shared::<Gates>().unwrap_or_default();
    gates.0.push(rules as Arc<dyn QueryGate>);
    s.share(gates);
    Ok(())
}
