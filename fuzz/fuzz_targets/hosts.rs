//! Bytes → the hosts(5) reader (`hosts FILE`, k3s's NodeHosts) → the answer table.
//! Properties: no panic; every address read for a name is answered for it, once (a wildcard
//! owner, `*.NAME`, through the wildcard); every address of a name that is not a wildcard
//! answers its reverse name (a wildcard gives no PTR).
#![no_main]

use std::net::IpAddr;

use hickory_proto::rr::{Name, RData, RecordType};
use libfuzzer_sys::fuzz_target;

use clusterdns::plugin::hosts::config::HostsConfig;
use clusterdns::plugin::shared::fallthrough::Fallthrough;
use clusterdns::dns::name;
use clusterdns::plugin::hosts::{Table, parse_file};

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let (entries, _) = parse_file(&text);
    let cfg = HostsConfig {
        path: "/etc/hosts".into(),
        pos: clusterdns::corefile::Pos {
            file: "fuzz".into(),
            line: 1,
            col: 1,
        },
        zones: vec![Name::root()],
        inline: Vec::new(),
        ttl: 60,
        reload: std::time::Duration::ZERO,
        reverse: true,
        fallthrough: Fallthrough::Never,
        fallthrough_unsupported: false,
    };
    let table = Table::build(&entries, &cfg);
    for (ip, hosts) in &entries {
        for host in hosts {
            let qtype = if ip.is_ipv4() {
                RecordType::A
            } else {
                RecordType::AAAA
            };
            let key = hickory_proto::rr::LowerName::from(host);
            let answer = table
                .lookup(&key, qtype)
                .flatten()
                .expect("a name read is known");
            let got: Vec<IpAddr> = answer
                .iter()
                .filter_map(|r| match &r.data {
                    RData::A(a) => Some(IpAddr::V4(a.0)),
                    RData::AAAA(a) => Some(IpAddr::V6(a.0)),
                    _ => None,
                })
                .collect();
            assert_eq!(got.iter().filter(|g| *g == ip).count(), 1, "{host} {ip}");
            if host.is_wildcard() {
                continue;
            }
            let ptr = table
                .lookup(
                    &hickory_proto::rr::LowerName::from(name::reverse_name(*ip)),
                    RecordType::PTR,
                )
                .flatten()
                .expect("a reverse name");
            assert!(
                ptr.iter()
                    .any(|r| matches!(&r.data, RData::PTR(p) if p.0 == *host)),
                "{ip} {host}"
            );
        }
    }
});
