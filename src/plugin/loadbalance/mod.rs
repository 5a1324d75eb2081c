//! `loadbalance [round_robin]`: shuffles the A, AAAA and MX records of every answer, as
//! CoreDNS's `loadbalance` does, so that clients which take the first address spread their
//! connections over a headless Service's endpoints (or an upstream's addresses).
//!
//! In each section: CNAMEs first, then the records of other types, then the addresses shuffled,
//! then the MX records shuffled. A section with fewer than two addresses and fewer than two MX
//! records is left as it is, so a ClusterIP answer (one address) costs nothing.

pub mod config;

use hickory_proto::rr::{Name, Record, RecordType};

use crate::plugin::setup::{Setup, SetupError};
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
        let calm = |types: &mut dyn Iterator<Item = RecordType>| {
            let (mut addresses, mut mx) = (0, 0);
            for t in types {
                match t {
                    RecordType::A | RecordType::AAAA => addresses += 1,
                    RecordType::MX => mx += 1,
                    _ => {}
                }
            }
            addresses < 2 && mx < 2
        };
        let section =
            |sets: &[Rrs]| {
                calm(&mut sets.iter().flat_map(
                    |set| -> Box<dyn Iterator<Item = RecordType> + '_> {
                        match set {
                            Rrs::Prepared(p) => Box::new(p.types()),
                            Rrs::Records(records) => {
                                Box::new(records.iter().map(Record::record_type))
                            }
                        }
                    },
                ))
            };
        match answer {
            FastAnswer::Answer {
                records,
                additionals,
            } => {
                calm(&mut records.types())
                    && additionals.as_ref().is_none_or(|a| calm(&mut a.types()))
            }
            FastAnswer::Negative(..) => true,
            FastAnswer::Kept { reply, .. } => {
                section(&reply.answers) && section(&reply.authority) && section(&reply.additionals)
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

fn shuffle_section(section: &mut Vec<Rrs>, owner: &Name) {
    let (mut addresses, mut mx) = (0, 0);
    let mut count = |t: RecordType| match t {
        RecordType::A | RecordType::AAAA => addresses += 1,
        RecordType::MX => mx += 1,
        _ => {}
    };
    for set in section.iter() {
        match set {
            Rrs::Records(r) => r.iter().for_each(|rec| count(rec.record_type())),
            Rrs::Prepared(p) => p.types().for_each(&mut count),
        }
    }
    if addresses < 2 && mx < 2 {
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
pub async fn setup(_: &config::LoadbalanceConfig, s: &mut Setup<'_>) -> Result<(), SetupError> {
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
