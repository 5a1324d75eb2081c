//! `transfer`: zone transfers (AXFR; IXFR answered with the whole zone, as RFC 1995 allows) of
//! the zones the plugins after it hold whole (`kubernetes`, `file`, `k8s_external`), over TCP,
//! to the listed peers. Everyone else, and every transfer over UDP, gets REFUSED; a zone no
//! plugin has whole, NOTAUTH. When a zone's serial changes, every `to` that is one address is
//! sent a NOTIFY (RFC 1996), from `source` where it is set.

pub mod config;

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Weak};
use std::time::Duration;

use hickory_proto::op::{Message, MessageType, OpCode, Query, ResponseCode};
use hickory_proto::rr::{Name, RecordType};
use tokio::net::UdpSocket;

use crate::plugin::PluginError;
use crate::plugin::setup::Setup;
use crate::plugin::{
    Chain, FastQuery, Handler, HandlerFuture, Next, RecordSet, Reply, Request, Transport,
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

/// Puts `transfer` into the block being set up, and its NOTIFY loop on the block's chain.
pub fn setup(cfg: &config::TransferConfig, s: &mut Setup<'_>) -> Result<(), PluginError> {
    s.handler(Transfer {
        zones: cfg.zones.clone(),
        to: cfg.to.clone(),
    });
    if !cfg.notify.is_empty() {
        let (zones, targets, source) = (cfg.zones.clone(), cfg.notify.clone(), cfg.source);
        s.on_chain(move |chain| {
            let chain = Arc::downgrade(chain);
            if let Ok(rt) = tokio::runtime::Handle::try_current() {
                rt.spawn(notify_loop(chain, zones, targets, source));
            }
        });
    }
    Ok(())
}

/// How often the zones' serials are read; a change is noticed within this.
const NOTIFY_EVERY: Duration = Duration::from_secs(1);
/// Tries of one NOTIFY, each waiting this long for its answer (RFC 1996 section 3.6).
const NOTIFY_TRIES: u32 = 5;
const NOTIFY_WAIT: Duration = Duration::from_secs(2);

/// Reads the serials of the zones every [`NOTIFY_EVERY`] and tells the secondaries of each
/// change; ends when the chain is gone (a reload that no longer has it).
async fn notify_loop(
    chain: Weak<Chain>,
    zones: Vec<Name>,
    targets: Vec<SocketAddr>,
    source: Option<IpAddr>,
) {
    let mut known: HashMap<Name, u32> = HashMap::new();
    let mut tick = tokio::time::interval(NOTIFY_EVERY);
    loop {
        tick.tick().await;
        let Some(chain) = chain.upgrade() else {
            return;
        };
        // Every zone the plugins after `transfer` have whole, within its zones.
        for (zone, serial) in chain.serials_after(NAME) {
            if !zones.iter().any(|z| z.zone_of(&zone)) {
                continue;
            }
            if known
                .insert(zone.clone(), serial)
                .is_some_and(|old| old != serial)
            {
                for to in &targets {
                    tokio::spawn(notify(zone.clone(), *to, source));
                }
            }
        }
    }
}

/// One NOTIFY for `zone` to `to`, asked again until it is answered.
async fn notify(zone: Name, to: SocketAddr, source: Option<IpAddr>) {
    let local = match source {
        Some(ip) => SocketAddr::new(ip, 0),
        None if to.is_ipv4() => SocketAddr::from(([0, 0, 0, 0], 0)),
        None => SocketAddr::from((std::net::Ipv6Addr::UNSPECIFIED, 0)),
    };
    let sock = match UdpSocket::bind(local).await {
        Ok(s) => s,
        Err(e) => {
            tracing::warn!("plugin/transfer: cannot send NOTIFY from {local}: {e}");
            return;
        }
    };
    let id: u16 = rand::random();
    let mut msg = Message::new(id, MessageType::Query, OpCode::Notify);
    msg.metadata.authoritative = true;
    msg.add_query(Query::query(zone.clone(), RecordType::SOA));
    let Ok(bytes) = msg.to_vec() else {
        return;
    };
    let mut buf = [0u8; 512];
    for _ in 0..NOTIFY_TRIES {
        if sock.send_to(&bytes, to).await.is_err() {
            break;
        }
        let answered = tokio::time::timeout(NOTIFY_WAIT, async {
            loop {
                let Ok((n, from)) = sock.recv_from(&mut buf).await else {
                    return false;
                };
                if from == to && n >= 2 && buf[..2] == id.to_be_bytes() {
                    return true;
                }
            }
        })
        .await;
        if matches!(answered, Ok(true)) {
            tracing::info!("plugin/transfer: sent NOTIFY for {zone} to {to}");
            return;
        }
    }
    tracing::warn!("plugin/transfer: NOTIFY for {zone} to {to} was not answered");
}
