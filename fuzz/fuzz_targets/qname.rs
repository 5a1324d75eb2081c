//! Bytes → a DNS name (wire format) → the `kubernetes` handler's lookup for every common type:
//! the cluster-name parser (services, namespaces, ports, protocols, pods, reverse names).
//! Properties: no panic; negative answers carry the zone's SOA; positive ones answer the name.
#![no_main]

use std::path::Path;
use std::sync::{Arc, OnceLock};

use hickory_proto::op::ResponseCode;
use hickory_proto::rr::{LowerName, Name, RecordType};
use hickory_proto::serialize::binary::{BinDecodable, BinDecoder};
use libfuzzer_sys::fuzz_target;

use clusterdns::cluster::source::Filters;
use clusterdns::cluster::source::file::load;
use clusterdns::cluster::index::{Index, IndexOptions};
use clusterdns::cluster::records::RecordOptions;
use clusterdns::cluster::source::SourceStatus;
use clusterdns::plugin::kubernetes::config::PodMode;
use clusterdns::plugin::shared::fallthrough::Fallthrough;
use clusterdns::dns::name;
use clusterdns::plugin::kubernetes::{Kubernetes, Outcome};

fn handler() -> &'static Kubernetes {
    static K: OnceLock<Kubernetes> = OnceLock::new();
    K.get_or_init(|| {
        let objects = concat!(env!("CARGO_MANIFEST_DIR"), "/../deploy/local/cluster.yaml");
        let index = Arc::new(Index::new(IndexOptions {
            zones: ["cluster.local.", "clusterset.local.", "in-addr.arpa.", "ip6.arpa."]
                .iter()
                .filter_map(|z| name::fqdn(z))
                .collect(),
            multicluster: name::fqdn("clusterset.local.").into_iter().collect(),
            ttl: 5,
            records: RecordOptions {
                pods: PodMode::Insecure,
                endpoint_pod_names: false,
                ignore_empty_service: false,
                zonal: true,
            },
        }));
        index.replace_all(load(Path::new(objects), &Filters { zones: true, ..Filters::default() }).unwrap());
        Kubernetes::new(
            index,
            Fallthrough::Never,
            PodMode::Insecure,
            SourceStatus::loaded(),
            true,
        )
    })
}

const TYPES: &[RecordType] = &[
    RecordType::A,
    RecordType::AAAA,
    RecordType::SRV,
    RecordType::PTR,
    RecordType::TXT,
    RecordType::NS,
    RecordType::SOA,
    RecordType::CNAME,
    RecordType::ANY,
    RecordType::MX,
];

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = name::undash(text);
        let _ = name::fqdn(text);
    }
    let Ok(name) = Name::read(&mut BinDecoder::new(data)) else {
        return;
    };
    let lower = LowerName::new(&name);
    let k = handler();
    for &t in TYPES {
        match k.lookup(&lower, t, 0) {
            Outcome::NotMine => {}
            Outcome::NxDomain(r) => {
                assert_eq!(r.rcode, ResponseCode::NXDomain);
                assert!(
                    r.answers.is_empty() && r.authority.len() == 1,
                    "NXDOMAIN carries the SOA"
                );
            }
            Outcome::Answer(r) | Outcome::Chase(r, _) => {
                let answers = r.answer_records(&name);
                if answers.is_empty() {
                    assert_eq!(r.authority.len(), 1, "NODATA carries the SOA");
                } else {
                    assert_eq!(
                        answers[0].name, *lower,
                        "the first answer is for the name asked"
                    );
                }
            }
        }
    }
});
