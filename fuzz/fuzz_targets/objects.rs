//! Bytes → the objects-file decoder (YAML or JSON) → the index, then everything deleted again.
//! Properties: no panic; errors name a line inside the input; deleting every object leaves only
//! the names that always exist.
#![no_main]

use std::path::Path;

use libfuzzer_sys::fuzz_target;

use clusterdns::cluster::source::Filters;
use clusterdns::cluster::source::file::decode;
use clusterdns::cluster::change::Snapshot;
use clusterdns::cluster::index::{Index, IndexOptions};
use clusterdns::cluster::records::RecordOptions;
use clusterdns::plugin::kubernetes::config::PodMode;
use clusterdns::dns::name;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    // Line breaks as YAML counts them: \n, \r\n, and a lone \r.
    let lines = text.replace("\r\n", "\n").matches(['\n', '\r']).count() + 1;
    let filters = Filters {
        pods: true,
        imports: true,
        zones: true,
        ..Filters::default()
    };
    let snap = match decode(Path::new("fuzz.yaml"), &text, &filters) {
        Ok(s) => s,
        Err(e) => {
            if let Some(line) = e.line {
                assert!(
                    line >= 1 && line <= lines + 1,
                    "{e} (input has {lines} lines)"
                );
            }
            return;
        }
    };
    let index = Index::new(IndexOptions {
        zones: ["cluster.local.", "clusterset.local.", "in-addr.arpa.", "ip6.arpa."]
            .iter()
            .filter_map(|z| name::fqdn(z))
            .collect(),
        multicluster: name::fqdn("clusterset.local.").into_iter().collect(),
        ttl: 5,
        records: RecordOptions {
            pods: PodMode::Verified,
            endpoint_pod_names: true,
            ignore_empty_service: false,
            zonal: true,
        },
    });
    let empty = index.len();
    index.replace_all(snap);
    index.replace_all(Snapshot::default());
    assert_eq!(
        index.len(),
        empty,
        "deleting every object left names behind"
    );
});
