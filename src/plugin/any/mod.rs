//! `any`: answers every ANY question with a single HINFO record, as RFC 8482 allows and CoreDNS's
//! `any` does (`"RFC8482" ""`, TTL 8482, not authoritative), so that ANY cannot be used to pull a
//! Service's or an upstream's records in one large answer. Other questions go on.

pub mod config;

use hickory_proto::op::ResponseCode;
use hickory_proto::rr::rdata::HINFO;
use hickory_proto::rr::{Name, RData, Record, RecordType};

use crate::plugin::PluginError;
use crate::plugin::setup::Setup;
use crate::plugin::{Handler, HandlerFuture, Next, RecordSet, Reply, Request};

pub struct Any;

impl Handler for Any {
    fn name(&self) -> &'static str {
        "any"
    }

    fn serve<'a>(&'a self, req: &'a Request<'a>, next: Next<'a>) -> HandlerFuture<'a> {
        if req.query.query_type() != RecordType::ANY {
            return next.serve(req);
        }
        let hinfo = Record::from_rdata(
            Name::from(req.query.name()),
            8482,
            RData::HINFO(HINFO::new("RFC8482".into(), String::new())),
        );
        let mut reply = Reply::new(ResponseCode::NoError, "any");
        reply.answers.push(RecordSet::from(vec![hinfo]).into());
        Box::pin(std::future::ready(Ok(reply)))
    }
}

/// Puts `any` into the block being set up.
pub fn setup(_: &config::AnyConfig, s: &mut Setup<'_>) -> Result<(), PluginError> {
    s.handler(Any);
    Ok(())
}
