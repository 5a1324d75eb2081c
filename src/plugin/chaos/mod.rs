//! `chaos`: answers the CH-class TXT questions operators ask a server about itself:
//! `version.bind` and `version.server` (the configured version), `authors.bind` (the authors,
//! one record each), `hostname.bind` and `id.server` (the host name: the pod's name). Every
//! other question goes on, CH ones included.

pub mod config;

use hickory_proto::op::ResponseCode;
use hickory_proto::rr::rdata::TXT;
use hickory_proto::rr::{DNSClass, Name, RData, Record, RecordType};

use crate::plugin::PluginError;
use crate::plugin::setup::Setup;
use crate::plugin::shared::{cut, hostname};
use crate::plugin::{FastQuery, Handler, HandlerFuture, Next, RecordSet, Reply, Request};

pub struct Chaos {
    version: String,
    authors: Vec<String>,
    hostname: String,
}

impl Chaos {
    fn texts(&self, name: &str) -> Option<Vec<&str>> {
        Some(match name {
            "version.bind." | "version.server." => vec![self.version.as_str()],
            "authors.bind." => self.authors.iter().map(String::as_str).collect(),
            "hostname.bind." | "id.server." => vec![self.hostname.as_str()],
            _ => return None,
        })
    }
}

impl Handler for Chaos {
    fn name(&self) -> &'static str {
        "chaos"
    }

    fn serve<'a>(&'a self, req: &'a Request<'a>, next: Next<'a>) -> HandlerFuture<'a> {
        let q = req.query;
        if q.query_class() != DNSClass::CH || q.query_type() != RecordType::TXT {
            return next.serve(req);
        }
        let name = Name::from(q.name());
        let Some(texts) = self.texts(&name.to_ascii()) else {
            return next.serve(req);
        };
        let records: Vec<Record> = texts
            .into_iter()
            .map(|t| {
                // A TXT string holds 255 bytes; a longer one is cut rather than not answered.
                let txt = TXT::new(vec![cut(t, 255).to_owned()]);
                let mut r = Record::from_rdata(name.clone(), 0, RData::TXT(txt));
                r.dns_class = DNSClass::CH;
                r
            })
            .collect();
        let mut reply = Reply::new(ResponseCode::NoError, "chaos");
        reply.answers.push(RecordSet::from(records).into());
        Box::pin(std::future::ready(Ok(reply)))
    }

    /// The fast path only reads IN questions, which this never answers.
    fn passes_fast(&self, _: FastQuery<'_>) -> bool {
        true
    }
}

/// Puts `chaos` into the block being set up.
pub fn setup(cfg: &config::ChaosConfig, s: &mut Setup<'_>) -> Result<(), PluginError> {
    s.handler(Chaos {
        version: cfg.version.clone(),
        authors: cfg.authors.clone(),
        hostname: hostname(),
    });
    Ok(())
}
