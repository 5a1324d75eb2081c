//! `loadbalance [round_robin]`: shuffles the A, AAAA and MX records of every answer, as
//! CoreDNS's `loadbalance` does, so that clients which take the first address spread their
//! connections over a headless Service's endpoints (or an upstream's addresses).
//!
//! In each section: CNAMEs first, then the records of other types, then the addresses shuffled,
//! then the MX records shuffled. A section with fewer than two addresses and fewer than two MX
//! records is left as it is, so a ClusterIP answer (one address) costs nothing.

pub mod config;

use hickory_proto::rr::{Name, Record, RecordType};

use crate::dns::wire::Prepared;
use crate::plugin::PluginError;
use crate::plugin::setup::Setup;
use crate::plugin::shared::shuffle;
use crate::plugin::{FastAnswer, FastQuery, Handler, HandlerFuture, Next, RecordSet, Request, Rrs};

pub struct Loadbalance;

impl Handler for Loadbalance {
    fn name(&self) -> &'static str {
        "loadbalance"
    }

    fn passes_fast(&self, _: FastQuery<'_>) -> bool {
        true
    }

    /// An answer with fewer than two addresses and fewer than two MX records in each section
    /// is sent back as it came (see `shuffle_section`).
    fn keeps_fast(&self, answer: &FastAnswer) -> bool {
        match answer {
            FastAnswer::Answer {
                records,
                authority,
                additionals,
            } => {
                Tally::prepared(records).calm()
                    && [authority, additionals]
                        .iter()
                        .all(|s| s.as_ref().is_none_or(|a| Tally::prepared(a).calm()))
            }
            FastAnswer::Negative(..) => true,
            FastAnswer::Kept { reply, .. } => {
                [&reply.answers, &reply.authority, &reply.additionals]
                    .iter()
                    .all(|section| Tally::of(section).calm())
            }
        }
    }

    fn serve<'a>(&'a self, req: &'a Request<'a>, next: Next<'a>) -> HandlerFuture<'a> {
        Box::pin(async move {
            let mut reply = next.serve(req).await?;
            if matches!(req.query.query_type(), RecordType::AXFR | RecordType::IXFR) {
                return Ok(reply);
            }
            let owner = Name::from(req.query.name());
            for section in [
                &mut reply.answers,
                &mut reply.authority,
                &mut reply.additionals,
            ] {
                shuffle_section(section, &owner);
            }
            Ok(reply)
        })
    }
}

/// The addresses and MX records of a section: what `loadbalance` shuffles.
#[derive(Default)]
struct Tally {
    addresses: usize,
    mx: usize,
}

impl Tally {
    fn of(section: &[Rrs]) -> Self {
        let mut t = Self::default();
        for set in section {
            match set {
                Rrs::Records(r) => r.iter().for_each(|rec| t.add(rec.record_type())),
                Rrs::Prepared(p) => p.types().for_each(|ty| t.add(ty)),
            }
        }
        t
    }

    fn prepared(p: &Prepared) -> Self {
        let mut t = Self::default();
        p.types().for_each(|ty| t.add(ty));
        t
    }

    fn add(&mut self, t: RecordType) {
        match t {
            RecordType::A | RecordType::AAAA => self.addresses += 1,
            RecordType::MX => self.mx += 1,
            _ => {}
        }
    }

    /// Nothing to shuffle: fewer than two of each.
    fn calm(&self) -> bool {
        self.addresses < 2 && self.mx < 2
    }
}

fn shuffle_section(section: &mut Vec<Rrs>, owner: &Name) {
    if Tally::of(section).calm() {
        return;
    }
    let records: Vec<Record> = section.iter().flat_map(|s| s.records(owner)).collect();
    *section = vec![Rrs::Records(RecordSet::from(round_robin(records)))];
}

/// CNAMEs, the rest, the addresses shuffled, the MX records shuffled.
pub fn round_robin(records: Vec<Record>) -> Vec<Record> {
    let (mut cname, mut address, mut mx, mut rest) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for r in records {
        match r.record_type() {
            RecordType::CNAME => cname.push(r),
            RecordType::A | RecordType::AAAA => address.push(r),
            RecordType::MX => mx.push(r),
            _ => rest.push(r),
        }
    }
    shuffle(&mut address);
    shuffle(&mut mx);
    cname.append(&mut rest);
    cname.append(&mut address);
    cname.append(&mut mx);
    cname
}

/// Puts `loadbalance` into the block being set up.
pub fn setup(_: &config::LoadbalanceConfig, s: &mut Setup<'_>) -> Result<(), PluginError> {
    s.handler(Loadbalance);
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::net::Ipv4Addr;

    use hickory_proto::rr::RData;
    use hickory_proto::rr::rdata::{A, CNAME, TXT};

    use super::*;

    fn a(last: u8) -> Record {
        Record::from_rdata(
            Name::from_ascii("x.").unwrap(),
            5,
            RData::A(A(Ipv4Addr::new(10, 0, 0, last))),
        )
    }

    #[test]
    fn cnames_lead_the_rest_follow_and_every_order_of_addresses_comes_up() {
        let cname = Record::from_rdata(
            Name::from_ascii("y.").unwrap(),
            5,
            RData::CNAME(CNAME(Name::from_ascii("x.").unwrap())),
        );
        let txt = Record::from_rdata(
            Name::from_ascii("x.").unwrap(),
            5,
            RData::TXT(TXT::new(vec!["t".into()])),
        );
        let mut firsts = std::collections::BTreeSet::new();
        for _ in 0..200 {
            let out = round_robin(vec![a(1), a(2), txt.clone(), a(3), cname.clone()]);
            assert_eq!(out[0].record_type(), RecordType::CNAME);
            assert_eq!(out[1].record_type(), RecordType::TXT);
            let mut rest: Vec<String> = out[2..].iter().map(|r| r.data.to_string()).collect();
            firsts.insert(rest[0].clone());
            rest.sort();
            assert_eq!(rest, ["10.0.0.1", "10.0.0.2", "10.0.0.3"]);
        }
        assert_eq!(firsts.len(), 3, "every address comes first sometimes");
    }
}
