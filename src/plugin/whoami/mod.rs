//! `whoami`: answers every question with where it came from. The answer section is empty; the
//! additional section holds the client's address (A or AAAA, named as the question) and an
//! SRV record `_udp.NAME` or `_tcp.NAME` whose port is the client's. TTL 0, authoritative. It
//! never passes a query on.

pub mod config;

use std::net::IpAddr;

use hickory_proto::op::ResponseCode;
use hickory_proto::rr::rdata::{A, AAAA, SRV};
use hickory_proto::rr::{Name, RData, Record};

use crate::plugin::PluginError;
use crate::plugin::setup::Setup;
use crate::plugin::{Handler, HandlerFuture, Next, RecordSet, Reply, Request, Transport};

pub struct Whoami;

impl Handler for Whoami {
    fn name(&self) -> &'static str {
        "whoami"
    }

    fn serve<'a>(&'a self, req: &'a Request<'a>, _: Next<'a>) -> HandlerFuture<'a> {
        // As the client wrote it: these records are not in the answer section, where the server
        // would restore the client's spelling.
        let name = req.query.original().name().clone();
        let class = req.query.query_class();
        let address = match req.src.ip() {
            IpAddr::V4(ip) => RData::A(A(ip)),
            IpAddr::V6(ip) => RData::AAAA(AAAA(ip)),
        };
        let proto = match req.transport {
            Transport::Udp => "_udp",
            Transport::Tcp => "_tcp",
        };
        let mut records = Vec::with_capacity(2);
        let mut address = Record::from_rdata(name.clone(), 0, address);
        address.dns_class = class;
        records.push(address);
        if let Ok(srv_name) =
            Name::from_labels([proto.as_bytes()]).and_then(|l| l.append_name(&name))
        {
            let srv = SRV::new(0, 0, req.src.port(), Name::root());
            let mut srv = Record::from_rdata(srv_name, 0, RData::SRV(srv));
            srv.dns_class = class;
            records.push(srv);
        }
        let mut reply = Reply::new(ResponseCode::NoError, "whoami");
        reply.authoritative = true;
        reply.additionals.push(RecordSet::from(records).into());
        Box::pin(std::future::ready(Ok(reply)))
    }
}

/// Puts `whoami` into the block being set up.
pub fn setup(_: &config::WhoamiConfig, s: &mut Setup<'_>) -> Result<(), PluginError> {
    s.handler(Whoami);
    Ok(())
}
