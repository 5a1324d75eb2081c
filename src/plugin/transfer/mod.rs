//! `transfer`: zone transfers (AXFR; IXFR answered with the whole zone, as RFC 1995 allows) of
//! the zones the plugins after it hold whole (`kubernetes`, `file`, `k8s_external`), over TCP,
//! to the listed peers. Everyone else, and every transfer over UDP, gets REFUSED; a zone no
//! plugin has whole, NOTAUTH.

pub mod config;

use hickory_proto::op::ResponseCode;
use hickory_proto::rr::{Name, RecordType};

use crate::plugin::PluginError;
use crate::plugin::setup::Setup;
use crate::plugin::{
    FastQuery, Handler, HandlerFuture, Next, RecordSet, Reply, Request, Transport,
};
use config::Peer;

const NAME: &str = "transfer";

pub struct Transfer {
    zones: Vec<Name>,
    to: Vec<Peer>,
}

impl Handler for Transfer {
    fn name(&self) -> &'static str {
        NAME
    }

    fn serve<'a>(&'a self, req: &'a Request<'a>, next: Next<'a>) -> HandlerFuture<'a> {
        if !matches!(req.query.query_type(), RecordType::AXFR | RecordType::IXFR) {
            return next.serve(req);
        }
        let zone = Name::from(req.query.name());
        let ip = req.src.ip();
        let allowed = req.transport == Transport::Tcp
            && self.zones.iter().any(|z| z.zone_of(&zone))
            && self.to.iter().any(|p| p.admits(ip));
        let reply = if !allowed {
            Reply::new(ResponseCode::Refused, NAME)
        } else {
            match next.transfer(&zone) {
                Some(records) if !records.is_empty() => {
                    let soa = records[0].clone();
                    let mut reply = Reply::new(ResponseCode::NoError, NAME);
                    reply.authoritative = true;
                    reply.transfer = true;
                    reply.answers.push(RecordSet::from(records).into());
                    reply.answers.push(RecordSet::from(vec![soa]).into());
                    tracing::info!("plugin/transfer: outgoing transfer of {zone} to {ip}");
                    reply
                }
                _ => Reply::new(ResponseCode::NotAuth, NAME),
            }
        };
        Box::pin(std::future::ready(Ok(reply)))
    }

    /// The fast path reads only ordinary query types, never AXFR or IXFR: it passes them all.
    fn passes_fast(&self, _: FastQuery<'_>) -> bool {
        true
    }
}

/// Puts `transfer` into the block being set up.
pub fn setup(cfg: &config::TransferConfig, s: &mut Setup<'_>) -> Result<(), PluginError> {
    s.handler(Transfer {
        zones: cfg.zones.clone(),
        to: cfg.to.clone(),
    });
    Ok(())
}
