//! The synthetic cluster the benchmarks serve: namespaces, Services (one in ten headless, two
//! named ports each) and one EndpointSlice per Service with its share of the endpoints, as
//! Kubernetes API objects.

use std::path::Path;

use hickory_proto::rr::Name;
use serde_json::{Value, json};

use clusterdns::cluster::index::{Index, IndexOptions};
use clusterdns::cluster::records::RecordOptions;
use clusterdns::cluster::source::Filters;
use clusterdns::cluster::source::file;
use clusterdns::plugin::kubernetes::config::PodMode;

pub const NAMESPACES: usize = 20;

pub fn ip(i: usize, base: u8) -> String {
    // Past 65,536 Services the second octet moves on.
    format!(
        "10.{}.{}.{}",
        usize::from(base) + (i >> 16),
        (i >> 8) & 0xff,
        i & 0xff
    )
}

pub fn ip_wide(i: usize) -> String {
    format!(
        "10.{}.{}.{}",
        128 + ((i >> 16) & 0x3f),
        (i >> 8) & 0xff,
        i & 0xff
    )
}

/// Namespaces, Services (one in ten headless, named ports) and one EndpointSlice per Service
/// holding its share of the endpoints, with pod target references.
pub fn cluster(services: usize, endpoints: usize) -> Vec<Value> {
    let mut objs: Vec<Value> = (0..NAMESPACES)
        .map(|n| json!({"kind": "Namespace", "metadata": {"name": format!("ns-{n}")}}))
        .collect();
    let mut next_ep = 0;
    for s in 0..services {
        let ns = format!("ns-{}", s % NAMESPACES);
        let name = format!("svc-{s}");
        let headless = s % 10 == 0;
        let cluster_ip = if headless {
            "None".to_string()
        } else {
            ip(s, 96)
        };
        objs.push(json!({
            "kind": "Service",
            "metadata": {"name": name, "namespace": ns, "labels": {"app": name}},
            "spec": {"clusterIP": cluster_ip, "clusterIPs": [cluster_ip], "selector": {"app": name},
                     "ports": [{"name": "http", "port": 80, "protocol": "TCP"},
                               {"name": "metrics", "port": 9090, "protocol": "TCP"}]},
        }));
        // Spread the endpoints evenly; the first services take the remainder.
        let share = endpoints / services + usize::from(s < endpoints % services);
        let eps: Vec<Value> = (0..share)
            .map(|k| {
                let e = next_ep + k;
                json!({"addresses": [ip_wide(e)], "conditions": {"ready": true},
                       "targetRef": {"kind": "Pod", "name": format!("{name}-{k}"), "namespace": ns}})
            })
            .collect();
        next_ep += share;
        objs.push(slice(&ns, &name, eps));
    }
    objs
}

pub fn slice(ns: &str, svc: &str, eps: Vec<Value>) -> Value {
    let now = k8s_openapi::jiff::Timestamp::now().to_string();
    json!({
        "kind": "EndpointSlice",
        "metadata": {"name": format!("{svc}-abcde"), "namespace": ns,
                     "labels": {"kubernetes.io/service-name": svc},
                     "annotations": {"endpoints.kubernetes.io/last-change-trigger-time": now}},
        "addressType": "IPv4",
        "endpoints": eps,
        "ports": [{"name": "http", "port": 8080, "protocol": "TCP"},
                  {"name": "metrics", "port": 9090, "protocol": "TCP"}],
    })
}

/// The index the served cluster's `kubernetes` block builds from `objects` (`pods insecure`,
/// TTL `ttl`), for what reads the records without a server.
#[allow(dead_code)] // live.rs shares this module and serves through the API instead
pub fn index(objects: &Path, ttl: u32) -> Index {
    let index = Index::new(IndexOptions {
        zones: ["cluster.local.", "in-addr.arpa."]
            .iter()
            .map(|z| Name::from_ascii(z).unwrap())
            .collect(),
        multicluster: Vec::new(),
        ttl,
        records: RecordOptions {
            pods: PodMode::Insecure,
            endpoint_pod_names: false,
            ignore_empty_service: false,
            zonal: false,
        },
    });
    index.replace_all(file::load(objects, &Filters::default()).expect("the objects load"));
    index
}
