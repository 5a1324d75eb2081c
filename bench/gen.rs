//! Writes what `bench/run` serves: a synthetic cluster as a Kubernetes objects file (a List
//! in JSON, and for the load figures the same objects as multi-document YAML and as a List in
//! YAML), the same
//! records as zone files for a reference server (Knot DNS), and dnsperf query files.
//!
//! ```text
//! cargo bench --bench gen -- --services 10000 [--endpoints 21000] --out DIR
//! ```
//!
//! The zone files are not a second implementation of the Kubernetes DNS schema: they are what
//! clusterdns's own index holds for the objects file, written out record by record, with the
//! SOA and NS that clusterdns answers at each apex. So both servers serve the very same data.
//!
//! Query files (dnsperf's `NAME TYPE` lines), in a fixed pseudo-random order:
//! - `mix.txt`: 70% A of existing Services, 10% SRV of their named ports, 10% AAAA of
//!   IPv4-only Services (NODATA), 10% search-path names that do not exist (NXDOMAIN);
//! - `hits.txt`: A of existing Services only;
//! - `nxdomain.txt`: search-path names only;
//! - `ptr.txt`: PTR of cluster IPs;
//! - `pod.txt`: what a pod's glibc sends (ndots:5, `NS.svc.cluster.local svc.cluster.local
//!   cluster.local` as its search list, A and AAAA of each name it tries, until one exists)
//!   for lookups that are half cluster names (`SVC` from the Service's own namespace, or
//!   `SVC.NS` from another) and half external names (`host-K.example.com`, through the three
//!   search domains to the name itself), the external ones from `example.com.zone`.
//!
//! - `file.txt`: names of `corp.test.zone`, as `mix.txt` asks the cluster: 70% A of hosts,
//!   10% A of names under its wildcard, 10% AAAA of IPv4-only hosts (NODATA), 10% names that
//!   do not exist (NXDOMAIN).
//!
//! `corp.test.zone` is a zone file of `--zone-records` records (100,000 by default) for the
//! `file` plugin: hosts with an address each, every fourth an IPv6 address too, and a wildcard.
//!
//! `example.com.zone` holds the external names: 1,000 hosts with an address each, every
//! second one an IPv6 address too (the others answer AAAA with NODATA). An upstream serves it
//! for the forwarding Corefile; the reference server serves it with the cluster's zones.

mod cluster;

use std::fmt::Write as _;
use std::path::PathBuf;

use hickory_proto::rr::{LowerName, Name, RecordType};

use cluster::{NAMESPACES, cluster, ip};

struct Args {
    services: usize,
    endpoints: Option<usize>,
    out: PathBuf,
    queries: usize,
    zone_records: usize,
}

fn args() -> Args {
    let mut a = Args {
        services: 10_000,
        endpoints: None,
        out: PathBuf::from("target/bench"),
        queries: 100_000,
        zone_records: 100_000,
    };
    let argv: Vec<String> = std::env::args().skip(1).collect();
    let mut i = 0;
    while i < argv.len() {
        let value = || {
            argv.get(i + 1)
                .cloned()
                .unwrap_or_else(|| panic!("{} needs a value", argv[i]))
        };
        let number = || {
            value()
                .parse()
                .unwrap_or_else(|_| panic!("{} needs a number", argv[i]))
        };
        match argv[i].as_str() {
            "--services" => a.services = number(),
            "--endpoints" => a.endpoints = Some(number()),
            "--queries" => a.queries = number(),
            "--zone-records" => a.zone_records = number(),
            "--out" => a.out = PathBuf::from(value()),
            "--bench" => {
                i += 1;
                continue;
            }
            other => panic!("unknown argument {other}"),
        }
        i += 2;
    }
    a
}

/// A small, fixed pseudo-random sequence (xorshift), so that runs ask the same names.
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: usize) -> usize {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (self.0 % n as u64) as usize
    }
}

const TTL: u32 = 5;

/// How many external names `example.com.zone` holds.
const EXTERNAL_HOSTS: usize = 1000;

fn main() {
    let a = args();
    // About 2.1 endpoints per Service, as the issue's reference cluster has.
    let endpoints = a.endpoints.unwrap_or(a.services * 21 / 10);
    std::fs::create_dir_all(&a.out).expect("the output folder");
    let objects = a.out.join("cluster.json");
    let items = cluster(a.services, endpoints);
    // The other forms an objects file takes, for bench/run's load figures: the objects as
    // multi-document YAML (`kubectl get -o yaml` of each, `---` between them), and as one List
    // in YAML (`kubectl get -o yaml` of several kinds at once).
    let mut docs = String::new();
    for item in &items {
        docs.push_str("---\n");
        docs.push_str(&yaml_serde::to_string(item).unwrap());
    }
    std::fs::write(a.out.join("cluster.yaml"), docs).unwrap();
    let list = serde_json::json!({"apiVersion": "v1", "kind": "List", "items": items});
    std::fs::write(
        a.out.join("cluster-list.yaml"),
        yaml_serde::to_string(&list).unwrap(),
    )
    .unwrap();
    std::fs::write(&objects, serde_json::to_vec(&list).unwrap()).unwrap();

    let zones = ["cluster.local.", "in-addr.arpa."];
    let index = cluster::index(&objects, TTL);

    let mut files: Vec<String> = zones
        .iter()
        .map(|z| {
            // The apex as clusterdns answers it.
            format!(
                "$ORIGIN {z}\n{z} {TTL} IN SOA ns.dns.{z} hostmaster.{z} 1 7200 1800 86400 {TTL}\n{z} {TTL} IN NS ns.dns.{z}\n"
            )
        })
        .collect();
    let mut count = 0;
    let mut records = index.records();
    records.sort_by(|x, y| x.name.cmp(&y.name));
    for r in records {
        let lower = LowerName::new(&r.name);
        let Some(i) = zones
            .iter()
            .position(|z| LowerName::new(&Name::from_ascii(z).unwrap()).zone_of(&lower))
        else {
            continue;
        };
        writeln!(files[i], "{r}").unwrap();
        count += 1;
    }
    for (z, text) in zones.iter().zip(&files) {
        std::fs::write(a.out.join(format!("{z}zone")), text).unwrap();
    }

    // Query files.
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let service = |rng: &mut Rng| {
        let s = rng.below(a.services);
        (
            format!("svc-{s}"),
            format!("ns-{}", s % NAMESPACES),
            s.is_multiple_of(10),
        )
    };
    let hit = |rng: &mut Rng| {
        let (name, ns, _) = service(rng);
        format!("{name}.{ns}.svc.cluster.local A")
    };
    let nx = |rng: &mut Rng| {
        // What a pod's resolver asks first for a name with fewer than five dots: the name with
        // its own namespace's search domain appended.
        let (name, ns, _) = service(rng);
        format!("{name}.{ns}.svc.cluster.local.{ns}.svc.cluster.local A")
    };
    let mut mix = String::new();
    let mut hits = String::new();
    let mut nxdomain = String::new();
    let mut ptr = String::new();
    for q in 0..a.queries {
        let line = match q % 10 {
            0..=6 => hit(&mut rng),
            7 => {
                let (name, ns, _) = service(&mut rng);
                format!("_http._tcp.{name}.{ns}.svc.cluster.local SRV")
            }
            8 => {
                // A ClusterIP Service: IPv4 only, so AAAA is NODATA.
                let (mut name, mut ns, mut headless) = service(&mut rng);
                while headless {
                    (name, ns, headless) = service(&mut rng);
                }
                format!("{name}.{ns}.svc.cluster.local AAAA")
            }
            _ => nx(&mut rng),
        };
        writeln!(mix, "{line}").unwrap();
        writeln!(hits, "{}", hit(&mut rng)).unwrap();
        writeln!(nxdomain, "{}", nx(&mut rng)).unwrap();
        let mut s = rng.below(a.services);
        if s.is_multiple_of(10) {
            s += 1; // headless Services have no cluster IP
        }
        let addr: std::net::IpAddr = ip(s % a.services, 96).parse().unwrap();
        writeln!(ptr, "{} PTR", clusterdns::dns::name::reverse_name(addr)).unwrap();
    }
    // The external zone, and what pods ask.
    let mut external = String::from(
        "$ORIGIN example.com.\n$TTL 300\n@ IN SOA ns.example.com. hostmaster.example.com. 1 7200 1800 86400 300\n@ IN NS ns.example.com.\nns IN A 192.0.2.53\n",
    );
    for k in 0..EXTERNAL_HOSTS {
        writeln!(external, "host-{k} IN A 198.51.{}.{}", k / 250, k % 250 + 1).unwrap();
        if k % 2 == 0 {
            writeln!(external, "host-{k} IN AAAA 2001:db8::{k:x}").unwrap();
        }
    }
    std::fs::write(a.out.join("example.com.zone"), external).unwrap();
    let mut pod = String::new();
    let mut lines = 0;
    while lines < a.queries {
        // The pod's own namespace, and the names its resolver tries in turn: A and AAAA of
        // each, up to the one that exists (the last).
        let own = format!("ns-{}", rng.below(NAMESPACES));
        let tries: Vec<String> = match rng.below(4) {
            0 => {
                let (name, ns, _) = service(&mut rng);
                vec![format!("{name}.{ns}.svc.cluster.local")]
            }
            1 => {
                let (name, ns, _) = service(&mut rng);
                vec![
                    format!("{name}.{ns}.{own}.svc.cluster.local"),
                    format!("{name}.{ns}.svc.cluster.local"),
                ]
            }
            _ => {
                let host = format!("host-{}.example.com", rng.below(EXTERNAL_HOSTS));
                vec![
                    format!("{host}.{own}.svc.cluster.local"),
                    format!("{host}.svc.cluster.local"),
                    format!("{host}.cluster.local"),
                    host,
                ]
            }
        };
        for name in tries {
            writeln!(pod, "{name} A\n{name} AAAA").unwrap();
            lines += 2;
        }
    }
    // The zone file for `file`: hosts h-K (an A each, every fourth an AAAA too) and a wildcard.
    let hosts = (a.zone_records * 4 / 5).max(1);
    let mut corp = String::from(
        "$ORIGIN corp.test.\n$TTL 300\n@ IN SOA ns.corp.test. hostmaster.corp.test. 1 7200 1800 86400 60\n@ IN NS ns.corp.test.\nns IN A 192.0.2.54\n*.wild IN A 192.0.2.99\n",
    );
    for k in 0..hosts {
        writeln!(
            corp,
            "h-{k} IN A 10.{}.{}.{}",
            k >> 16 & 255,
            k >> 8 & 255,
            k & 255
        )
        .unwrap();
        if k % 4 == 0 {
            writeln!(
                corp,
                "h-{k} IN AAAA fd00:c0::{:x}:{:x}",
                k >> 16,
                k & 0xffff
            )
            .unwrap();
        }
    }
    std::fs::write(a.out.join("corp.test.zone"), corp).unwrap();
    let mut zone_queries = String::new();
    for _ in 0..a.queries {
        let k = rng.below(hosts);
        // An odd host has no AAAA.
        let odd = if k | 1 < hosts { k | 1 } else { 1 };
        let line = match rng.below(10) {
            0 => format!("x{k}.wild.corp.test A"),
            1 => format!("h-{odd}.corp.test AAAA"),
            2 => format!("nothing-{k}.corp.test A"),
            _ => format!("h-{k}.corp.test A"),
        };
        writeln!(zone_queries, "{line}").unwrap();
    }
    for (file, text) in [
        ("file.txt", zone_queries),
        ("pod.txt", pod),
        ("mix.txt", mix),
        ("hits.txt", hits),
        ("nxdomain.txt", nxdomain),
        ("ptr.txt", ptr),
    ] {
        std::fs::write(a.out.join(file), text).unwrap();
    }
    println!(
        "{} Services, {endpoints} endpoints: {} names, {count} records (+ SOA and NS per zone) in {}",
        a.services,
        index.len(),
        a.out.display()
    );
    // Every query type's answer exists in the index, or deliberately does not.
    let probe = Name::from_ascii("svc-1.ns-1.svc.cluster.local.").unwrap();
    let node = index.get(&LowerName::new(&probe)).expect("svc-1 exists");
    assert!(node.has(RecordType::A) && !node.has(RecordType::AAAA));
}
