//! `erratic`: a deliberately unreliable answerer, for testing clients and resolvers: A and AAAA
//! questions get `192.0.2.53` and `2001:db8::53` (TTL 1800, the question's name); other types
//! SERVFAIL. Every n-th query is dropped, truncated (TC) or delayed, as configured.

pub mod config;

use std::net::{Ipv4Addr, Ipv6Addr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use hickory_proto::op::ResponseCode;
use hickory_proto::rr::rdata::{A, AAAA};
use hickory_proto::rr::{Name, RData, Record, RecordType};

use crate::plugin::PluginError;
use crate::plugin::setup::Setup;
use crate::plugin::{Handler, HandlerFuture, Next, RecordSet, Reply, Request};

const NAME: &str = "erratic";

pub struct Erratic {
    drop: u64,
    truncate: u64,
    delay: u64,
    duration: Duration,
    /// Queries seen, which the n-th choices count.
    seen: AtomicU64,
}

/// Whether the query numbered `n` (from 0) is an `every`-th one.
fn every(n: u64, every: u64) -> bool {
    every > 0 && n.is_multiple_of(every)
}

impl Handler for Erratic {
    fn name(&self) -> &'static str {
        NAME
    }

    fn serve<'a>(&'a self, req: &'a Request<'a>, _: Next<'a>) -> HandlerFuture<'a> {
        let n = self.seen.fetch_add(1, Ordering::Relaxed);
        let mut reply = Reply::new(ResponseCode::NoError, NAME);
        reply.authoritative = true;
        let name = Name::from(req.query.name());
        let data = match req.query.query_type() {
            RecordType::A => Some(RData::A(A(Ipv4Addr::new(192, 0, 2, 53)))),
            RecordType::AAAA => Some(RData::AAAA(AAAA(Ipv6Addr::new(
                0x2001, 0xdb8, 0, 0, 0, 0, 0, 0x53,
            )))),
            _ => None,
        };
        match data {
            Some(d) => reply
                .answers
                .push(RecordSet::from(vec![Record::from_rdata(name, 1800, d)]).into()),
            None => reply = Reply::new(ResponseCode::ServFail, NAME),
        }
        reply.truncated = every(n, self.truncate);
        reply.drop = every(n, self.drop);
        let wait = every(n, self.delay).then_some(self.duration);
        Box::pin(async move {
            if let Some(d) = wait {
                tokio::time::sleep(d).await;
            }
            Ok(reply)
        })
    }
}

/// Puts `erratic` into the block being set up.
pub fn setup(cfg: &config::ErraticConfig, s: &mut Setup<'_>) -> Result<(), PluginError> {
    s.handler(Erratic {
        drop: cfg.drop,
        truncate: cfg.truncate,
        delay: cfg.delay,
        duration: cfg.duration,
        seen: AtomicU64::new(0),
    });
    Ok(())
}
