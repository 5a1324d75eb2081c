//! `autopath`: a pod's search-path walk done in one round trip.
//!
//! A pod with `ndots:5` asks `example.org.NS.svc.cluster.local.` first. When the question is
//! under the first element of the client's search path, autopath takes the name the client
//! started from (`example.org`) and asks the rest of the chain for it under each element in
//! turn, then bare; the first answer that is not NXDOMAIN (nor SERVFAIL, REFUSED, FORMERR or
//! NOTIMP) goes back, with a CNAME from the name asked to the name that answered when they
//! differ, so the client has its answer under the name it asked. When every try fails, the
//! first try's reply goes back and the client walks its path as usual.
//!
//! With `@kubernetes` the search path is the asking pod's: `NS.svc.ZONE`, `svc.ZONE`, `ZONE`,
//! then this server's own resolv.conf search domains, found from the client's IP among the
//! pods (`pods verified`); a client that is not a known pod gets no autopath.

pub mod config;

use std::net::IpAddr;
use std::sync::Arc;

use hickory_proto::op::{LowerQuery, Query, ResponseCode};
use hickory_proto::rr::rdata::CNAME;
use hickory_proto::rr::{LowerName, Name, RData, Record};

use crate::cluster::index::Index;
use crate::cluster::source::ClusterSource;
use crate::observe::metrics::Metrics;
use crate::plugin::PluginError;
use crate::plugin::setup::Setup;
use crate::plugin::shared::services::Gates;
use crate::plugin::{Handler, HandlerFuture, Next, RecordSet, Reply, Request, Rrs};
use config::{SearchFrom, resolv_conf_search};

const NAME: &str = "autopath";

pub enum Search {
    /// The asking pod's path, from the block's `kubernetes` index, then these domains.
    Kubernetes(Arc<Index>, Vec<Name>),
    /// The same path for every client.
    Fixed(Vec<Name>),
}

pub struct Autopath {
    zones: Vec<LowerName>,
    search: Search,
    metrics: Arc<Metrics>,
    /// What the client may ask (`acl`): a name of the walk it may not ask ends the walk.
    gates: Gates,
}

impl Autopath {
    pub fn new(zones: &[Name], search: Search, metrics: Arc<Metrics>) -> Self {
        Self {
            zones: zones.iter().map(LowerName::from).collect(),
            search,
            metrics,
            gates: Gates::default(),
        }
    }

    /// The same, asking `gates` before each name of a walk.
    pub fn with_gates(self, gates: Gates) -> Self {
        Self { gates, ..self }
    }

    /// The search path for a client, without the final bare name; empty: no autopath.
    pub fn path(&self, name: &LowerName, client: IpAddr) -> Vec<Name> {
        match &self.search {
            Search::Fixed(list) => list.clone(),
            Search::Kubernetes(index, host) => {
                let Some(zone) = index.zone_of(name).filter(|z| !z.reverse) else {
                    return Vec::new();
                };
                let Some(ns) = index.pod_namespace(client) else {
                    return Vec::new();
                };
                let zone = Name::from(&zone.name);
                let mut out: Vec<Name> = [vec![ns.as_ref(), "svc"], vec!["svc"]]
                    .iter()
                    .filter_map(|labels| crate::dns::name::join(labels, &zone))
                    .collect();
                out.push(zone);
                out.extend(host.iter().cloned());
                out
            }
        }
    }
}

impl Handler for Autopath {
    fn name(&self) -> &'static str {
        NAME
    }

    fn serve<'a>(&'a self, req: &'a Request<'a>, next: Next<'a>) -> HandlerFuture<'a> {
        Box::pin(async move {
            let name = req.query.name();
            if !self.zones.iter().any(|z| z.zone_of(name)) {
                return next.serve(req).await;
            }
            let path = self.path(name, req.src.ip());
            let Some(first) = path.first() else {
                return next.serve(req).await;
            };
            let asked = Name::from(name);
            // The name the client started from: the question less the first search domain.
            let labels = asked.num_labels();
            if labels <= first.num_labels() || !first.zone_of(&asked) {
                return next.serve(req).await;
            }
            let Ok(base) =
                Name::from_labels(asked.iter().take(usize::from(labels - first.num_labels())))
            else {
                return next.serve(req).await;
            };
            let mut first_reply = None;
            for domain in path.iter().map(Some).chain([None]) {
                let Ok(try_name) = (match domain {
                    Some(d) => base.clone().append_domain(d),
                    None => {
                        let mut b = base.clone();
                        b.set_fqdn(true);
                        Ok(b)
                    }
                }) else {
                    continue;
                };
                // A name the client may not ask is not reached through its search path either
                // (CoreDNS #8290): the walk ends, and the client's own search goes on, each of
                // its queries through `acl`.
                let qtype = req.query.query_type();
                if !self
                    .gates
                    .0
                    .iter()
                    .all(|g| g.admits(&try_name, qtype, req.src.ip()))
                {
                    break;
                }
                let mut query = Query::query(try_name.clone(), req.query.query_type());
                query.set_query_class(req.query.query_class());
                let lower = LowerQuery::from(query);
                let inner = Request {
                    query: &lower,
                    ..*req
                };
                let reply = next.serve(&inner).await?;
                let failed = matches!(
                    reply.rcode,
                    ResponseCode::NXDomain
                        | ResponseCode::ServFail
                        | ResponseCode::Refused
                        | ResponseCode::FormErr
                        | ResponseCode::NotImp
                );
                if !failed {
                    self.metrics
                        .autopath_success
                        .with_label_values(&[req.server])
                        .inc();
                    return Ok(cnamer(reply, &asked, &try_name));
                }
                if first_reply.is_none() {
                    first_reply = Some(reply);
                }
            }
            Ok(first_reply.unwrap_or_else(|| Reply::new(ResponseCode::ServFail, NAME)))
        })
    }
}

/// The reply for `found`, with a CNAME from `asked` to the first answer's owner in front when
/// that is another name, as CoreDNS's autopath writes it.
fn cnamer(mut reply: Reply, asked: &Name, found: &Name) -> Reply {
    let mut records: Vec<Record> = reply
        .answers
        .iter()
        .flat_map(|s| s.records(found))
        .collect();
    if let Some(first) = records.first()
        && LowerName::from(&first.name) != LowerName::from(asked)
    {
        let cname = Record::from_rdata(
            asked.clone(),
            first.ttl,
            RData::CNAME(CNAME(first.name.clone())),
        );
        records.insert(0, cname);
    }
    reply.answers = vec![Rrs::Records(RecordSet::from(records))];
    reply
}

/// Puts `autopath` into the block being set up.
pub fn setup(cfg: &config::AutopathConfig, s: &mut Setup<'_>) -> Result<(), PluginError> {
    let search = match &cfg.from {
        SearchFrom::Kubernetes => {
            let Some(k) = s.shared::<Arc<ClusterSource>>() else {
                return Err(PluginError::new(
                    NAME,
                    "@kubernetes needs a kubernetes plugin in the same block",
                ));
            };
            let host = std::fs::read_to_string("/etc/resolv.conf")
                .map(|t| resolv_conf_search(&t))
                .unwrap_or_default();
            Search::Kubernetes(k.index.clone(), host)
        }
        SearchFrom::File(path) => match std::fs::read_to_string(path) {
            Ok(t) => Search::Fixed(resolv_conf_search(&t)),
            Err(e) => return Err(PluginError::new(NAME, format!("{}: {e}", path.display()))),
        },
    };
    let gates = s.shared::<Gates>().unwrap_or_default();
    s.handler(Autopath::new(&cfg.zones, search, s.metrics.clone()).with_gates(gates));
    Ok(())
}
