use std::net::IpAddr;

use hickory_proto::rr::{LowerName, RecordType};

use super::*;
use crate::cluster::records::PodMode;
use crate::cluster::records::RecordOptions;
use crate::cluster::slim::{
    ServiceKind, SlimEndpoint, SlimImport, SlimPort, SlimService, SlimSlice,
};
use crate::dns::name;
use crate::dns::wire::This;

fn index() -> Index {
    Index::new(IndexOptions {
        zones: vec![
            name::fqdn("cluster.local").unwrap(),
            name::fqdn("in-addr.arpa").unwrap(),
        ],
        multicluster: Vec::new(),
        ttl: 5,
        records: RecordOptions {
            pods: PodMode::Insecure,
            endpoint_pod_names: false,
            ignore_empty_service: false,
            zonal: false,
        },
    })
}

fn svc(ns: &str, name: &str, ip: &str) -> SlimService {
    SlimService {
        key: Key::new(ns, name),
        kind: ServiceKind::ClusterIp(vec![ip.parse().unwrap()]),
        ports: vec![SlimPort {
            name: "http".into(),
            protocol: "tcp".into(),
            port: 80,
        }]
        .into(),
        publish_not_ready: false,
        external: Vec::new(),
    }
}

fn slice(ns: &str, svc: &str, ips: &[&str]) -> SlimSlice {
    SlimSlice {
        key: Key::new(ns, &format!("{svc}-1")),
        service: Arc::from(svc),
        import: None,
        endpoints: ips
            .iter()
            .map(|ip| SlimEndpoint {
                addresses: smallvec::smallvec![ip.parse::<IpAddr>().unwrap()],
                hostname: None,
                pod_name: None,
                zone: None,
                ready: true,
            })
            .collect(),
        ports: Some(
            vec![SlimPort {
                name: "http".into(),
                protocol: "tcp".into(),
                port: 8080,
            }]
            .into(),
        ),
    }
}

fn has(ix: &Index, name: &str, rtype: RecordType) -> bool {
    let name = LowerName::new(&name::fqdn(name).unwrap());
    ix.get(&name).is_some_and(|n| n.has(rtype))
}

/// A cluster of 2,000 Services, each with a ready endpoint.
fn big_cluster() -> Snapshot {
    let mut snap = Snapshot::default();
    snap.namespaces.insert(Arc::from("ns"));
    for i in 0..2000u32 {
        let name = format!("svc-{i}");
        let ip = format!("10.96.{}.{}", i / 250, i % 250 + 1);
        let ep = format!("10.244.{}.{}", i / 250, i % 250 + 1);
        let s = slice("ns", &name, &[&ep]);
        snap.services
            .insert(Key::new("ns", &name), svc("ns", &name, &ip));
        snap.slices.insert(s.key.clone(), s);
    }
    snap
}

#[test]
fn one_endpoint_change_rebuilds_only_that_services_names() {
    let ix = index();
    let full = ix.replace_all(big_cluster());
    assert!(full.changed);
    assert!(full.names > 2000 * 5, "{full:?}");

    // Names every Service shares (empty non-terminals) are not rebuilt for one Service.
    let shared = [
        "ns.svc.cluster.local.",
        "10.in-addr.arpa.",
        "244.10.in-addr.arpa.",
    ];
    let node = |n: &str| {
        ix.get(&LowerName::from(Name::from_ascii(n).unwrap()))
            .unwrap()
    };
    let before: Vec<Node> = shared.iter().map(|n| node(n)).collect();

    // One endpoint of one Service moves.
    let mut snap = big_cluster();
    let key = Key::new("ns", "svc-7-1");
    snap.slices
        .insert(key, slice("ns", "svc-7", &["10.244.9.9"]));
    let one = ix.replace_all(snap);
    assert_eq!(one.owners, 1, "{one:?}");
    assert!(one.changed);
    // The Service's names (service, SRV, endpoint, their parents) and the two PTRs' trees.
    assert!(
        one.names < 20,
        "an endpoint change rebuilt {} names",
        one.names
    );
    assert!(has(
        &ix,
        "10-244-9-9.svc-7.ns.svc.cluster.local",
        RecordType::A
    ));
    assert!(!has(
        &ix,
        "10-244-0-8.svc-7.ns.svc.cluster.local",
        RecordType::A
    ));
    assert!(has(&ix, "9.9.244.10.in-addr.arpa", RecordType::PTR));
    assert!(!has(&ix, "8.0.244.10.in-addr.arpa", RecordType::PTR));
    for (n, old) in shared.iter().zip(&before) {
        assert!(old.same(&node(n)), "{n} was rebuilt");
    }

    // Nothing changed: nothing is recomputed.
    let mut snap = big_cluster();
    snap.slices.insert(
        Key::new("ns", "svc-7-1"),
        slice("ns", "svc-7", &["10.244.9.9"]),
    );
    let none = ix.replace_all(snap);
    assert_eq!(none, Applied::default());
}

#[test]
fn namespaces_gate_their_services_and_deletions_remove_every_name() {
    let ix = index();
    let before = ix.len();
    let mut snap = Snapshot::default();
    snap.services
        .insert(Key::new("a", "web"), svc("a", "web", "10.96.0.5"));
    ix.replace_all(snap.clone());
    // No namespace yet: nothing is served.
    assert!(!has(&ix, "web.a.svc.cluster.local", RecordType::A));
    snap.namespaces.insert(Arc::from("a"));
    ix.replace_all(snap.clone());
    assert!(has(&ix, "web.a.svc.cluster.local", RecordType::A));
    assert!(has(&ix, "5.0.96.10.in-addr.arpa", RecordType::PTR));
    // Deleting everything leaves only the static names, and the SOA serial moved on.
    let serial = |ix: &Index| match &ix.zones()[0].soa()[0].data {
        hickory_proto::rr::RData::SOA(soa) => soa.serial,
        _ => unreachable!(),
    };
    let s1 = serial(&ix);
    ix.replace_all(Snapshot::default());
    assert_eq!(ix.len(), before);
    assert!(serial(&ix) > s1);
}

#[test]
fn a_relist_swaps_in_whole() {
    // A source that relists hands over a complete snapshot; readers see either the old or the
    // new answer for each name, never a missing Service that exists in both.
    let ix = index();
    ix.replace_all(big_cluster());
    let mut snap = big_cluster();
    snap.services.remove(&Key::new("ns", "svc-1"));
    ix.replace_all(snap);
    assert!(!has(&ix, "svc-1.ns.svc.cluster.local", RecordType::A));
    assert!(has(&ix, "svc-2.ns.svc.cluster.local", RecordType::A));
}

#[test]
fn a_relist_of_one_kind_applies_what_changed_and_removes_what_it_did_not_list() {
    let ix = index();
    ix.replace_all(big_cluster());
    let kept = ix.generation();
    let mut relist = Relist::default();
    // svc-1 unchanged, svc-2 with a new address, svc-3 not listed, svc-new added.
    let changed =
        |name: &str, ip: &str| Change::Service(Key::new("ns", name), Some(svc("ns", name, ip)));
    let snapshot = big_cluster();
    for (k, v) in snapshot.services {
        if k.name.as_ref() == "svc-3" {
            continue;
        }
        let change = match k.name.as_ref() {
            "svc-2" => changed("svc-2", "10.99.0.2"),
            _ => Change::Service(k, Some(v)),
        };
        ix.relist_object(&mut relist, change);
    }
    ix.relist_object(&mut relist, changed("svc-new", "10.99.0.9"));
    // Nothing is taken away before the list is over.
    assert!(has(&ix, "svc-3.ns.svc.cluster.local", RecordType::A));
    let applied = ix.finish_relist(Kind::Service, relist);
    assert!(!has(&ix, "svc-3.ns.svc.cluster.local", RecordType::A));
    assert!(has(&ix, "svc-new.ns.svc.cluster.local", RecordType::A));
    assert!(has(&ix, "svc-1.ns.svc.cluster.local", RecordType::A));
    // Only what changed was rebuilt: svc-2, svc-3 and svc-new, not the 2,000.
    assert!(applied.owners <= 3, "{applied:?}");
    assert!(ix.generation() > kept);
    assert_eq!(ix.count(Kind::Service), 2000);
}

/// The PTR targets of `name`, sorted.
fn ptrs(ix: &Index, name: &str) -> Vec<String> {
    let name = name::fqdn(name).unwrap();
    let Some(node) = ix.get(&LowerName::new(&name)) else {
        return Vec::new();
    };
    let Some(set) = node.get(RecordType::PTR, &This::Question) else {
        return Vec::new();
    };
    let mut out: Vec<String> = set
        .records
        .records(&name)
        .unwrap()
        .iter()
        .map(|r| r.data.to_string())
        .collect();
    out.sort();
    out
}

#[test]
fn a_name_two_owners_share_follows_each_of_them() {
    // One pod IP behind two Services: its PTR names an endpoint of each.
    let ix = index();
    let mut snap = Snapshot::default();
    snap.namespaces.insert(Arc::from("ns"));
    for (name, ip) in [("a", "10.96.0.1"), ("b", "10.96.0.2")] {
        snap.services
            .insert(Key::new("ns", name), svc("ns", name, ip));
        let s = slice("ns", name, &["10.244.0.9"]);
        snap.slices.insert(s.key.clone(), s);
    }
    let ptr = "9.0.244.10.in-addr.arpa";
    let both = [
        "10-244-0-9.a.ns.svc.cluster.local.",
        "10-244-0-9.b.ns.svc.cluster.local.",
    ];
    // Both owners arrive in one update, then one at a time.
    ix.replace_all(snap.clone());
    assert_eq!(ptrs(&ix, ptr), both);
    let mut only_b = snap.clone();
    only_b.services.remove(&Key::new("ns", "a"));
    ix.replace_all(only_b.clone());
    assert_eq!(ptrs(&ix, ptr), [both[1]]);
    ix.replace_all(snap.clone());
    assert_eq!(ptrs(&ix, ptr), both);
    // A change to one owner keeps what the other gives.
    let mut moved = snap.clone();
    let s = slice("ns", "a", &["10.244.0.10"]);
    moved.slices.insert(s.key.clone(), s);
    ix.replace_all(moved);
    assert_eq!(ptrs(&ix, ptr), [both[1]]);
    assert_eq!(
        ptrs(&ix, "10.0.244.10.in-addr.arpa"),
        ["10-244-0-10.a.ns.svc.cluster.local."]
    );
    // With neither, the name is gone, and nothing is kept for it.
    ix.replace_all(Snapshot::default());
    assert!(ix.get(&LowerName::new(&name::fqdn(ptr).unwrap())).is_none());
    assert!(ix.lock_writer().shared.is_empty());
}

#[test]
fn pods_are_found_by_ip_through_updates_and_deletes() {
    use crate::cluster::slim::SlimPod;
    let idx = index();
    let pod = |ns: &str, name: &str, ips: &[&str]| SlimPod {
        key: Key::new(ns, name),
        ips: ips.iter().map(|i| i.parse().unwrap()).collect(),
    };
    let ip = |s: &str| -> IpAddr { s.parse().unwrap() };
    idx.apply([
        Change::Namespace {
            name: "shop".into(),
            present: true,
        },
        Change::Pod(
            Key::new("shop", "a"),
            Some(pod("shop", "a", &["10.0.0.1", "fd00::1"])),
        ),
        Change::Pod(Key::new("db", "b"), Some(pod("db", "b", &["10.0.0.2"]))),
    ]);
    assert_eq!(idx.pod_namespace(ip("10.0.0.1")).as_deref(), Some("shop"));
    assert_eq!(idx.pod_namespace(ip("fd00::1")).as_deref(), Some("shop"));
    assert_eq!(idx.pod_namespace(ip("10.0.0.2")).as_deref(), Some("db"));
    // A new IP for the same pod: the old one is gone, one it keeps stays.
    idx.apply([Change::Pod(
        Key::new("shop", "a"),
        Some(pod("shop", "a", &["10.0.0.3", "fd00::1"])),
    )]);
    assert_eq!(idx.pod_namespace(ip("10.0.0.1")), None);
    assert_eq!(idx.pod_namespace(ip("10.0.0.3")).as_deref(), Some("shop"));
    assert_eq!(idx.pod_namespace(ip("fd00::1")).as_deref(), Some("shop"));
    idx.apply([Change::Pod(Key::new("shop", "a"), None)]);
    assert_eq!(idx.pod_namespace(ip("10.0.0.3")), None);
    assert_eq!(idx.pod_namespace(ip("fd00::1")), None);
    assert_eq!(idx.pod_namespace(ip("10.0.0.2")).as_deref(), Some("db"));
}

#[test]
fn external_addresses_follow_service_updates_and_deletes() {
    use crate::cluster::slim::External;
    let ix = index();
    let ip = |s: &str| -> IpAddr { s.parse().unwrap() };
    let with = |ips: &[&str]| {
        let mut s = svc("shop", "web", "10.96.0.5");
        s.external = ips.iter().map(|i| External::Ip(ip(i))).collect();
        s
    };
    let key = Key::new("shop", "web");
    ix.apply([
        Change::Namespace {
            name: Arc::from("shop"),
            present: true,
        },
        Change::Service(key.clone(), Some(with(&["203.0.113.1", "203.0.113.2"]))),
        Change::Service(Key::new("shop", "db"), Some(svc("shop", "db", "10.96.0.6"))),
    ]);
    assert!(ix.namespace_exists("shop"));
    assert!(!ix.namespace_exists("nowhere"));
    let e = ix.exposed("shop", "web").expect("exposed");
    assert_eq!(e.external.len(), 2);
    assert!(!e.headless);
    // A Service without external addresses that is not headless is not kept.
    assert!(ix.exposed("shop", "db").is_none());
    assert_eq!(
        ix.external_owners(ip("203.0.113.1")),
        std::slice::from_ref(&key)
    );

    // The load balancer moves: the old IP no longer points here.
    ix.apply([Change::Service(
        key.clone(),
        Some(with(&["203.0.113.2", "203.0.113.3"])),
    )]);
    assert!(ix.external_owners(ip("203.0.113.1")).is_empty());
    assert_eq!(
        ix.external_owners(ip("203.0.113.3")),
        std::slice::from_ref(&key)
    );
    // Two Services share an IP; deleting one leaves the other.
    let other = Key::new("shop", "web2");
    let mut s2 = with(&["203.0.113.3"]);
    s2.key = other.clone();
    ix.apply([Change::Service(other.clone(), Some(s2))]);
    assert_eq!(
        ix.external_owners(ip("203.0.113.3")),
        [key.clone(), other.clone()]
    );
    ix.apply([Change::Service(key.clone(), None)]);
    assert!(ix.exposed("shop", "web").is_none());
    assert!(ix.external_owners(ip("203.0.113.2")).is_empty());
    assert_eq!(ix.external_owners(ip("203.0.113.3")), [other]);

    // A headless Service is kept (for `headless`), with no addresses.
    let mut h = svc("shop", "pg", "10.96.0.7");
    h.kind = ServiceKind::Headless;
    ix.apply([Change::Service(Key::new("shop", "pg"), Some(h))]);
    let e = ix.exposed("shop", "pg").expect("headless kept");
    assert!(e.headless && e.external.is_empty());
}

#[test]
fn each_node_records_its_owner_in_the_shortest_spelling_that_reads_back() {
    let ix = index();
    ix.replace_all(big_cluster());
    let svc = Owner::Service(Key::new("ns", "svc-7"));
    let cases = [
        // The name spells the Service: two bytes.
        ("svc-7.ns.svc.cluster.local.", 5),
        ("_http._tcp.svc-7.ns.svc.cluster.local.", 5),
        ("10-244-0-8.svc-7.ns.svc.cluster.local.", 5),
        // A PTR's target spells it.
        ("8.0.96.10.in-addr.arpa.", 6),
        ("8.0.244.10.in-addr.arpa.", 6),
    ];
    for (name, tag) in cases {
        let node = ix
            .get(&LowerName::from(Name::from_ascii(name).unwrap()))
            .unwrap();
        assert_eq!(node.owner_bytes(), [tag, node.owner_bytes()[1]], "{name}");
        assert_eq!(node.owner(), Some(svc.clone()), "{name}");
        assert!(node.owned_by(&svc), "{name}");
        assert!(
            !node.owned_by(&Owner::Service(Key::new("ns", "svc-8"))),
            "{name}"
        );
        assert!(
            !node.owned_by(&Owner::Pod(Key::new("ns", "svc-7"))),
            "{name}"
        );
    }
    // A node without an owner, and one whose name does not spell its owner (a Pod's), which
    // keeps the owner whole.
    let node = Node::address(
        NameKey::new(&Name::from_ascii("1.200.244.10.in-addr.arpa.").unwrap()).as_bytes(),
        "10.244.200.1".parse().unwrap(),
        5,
    );
    assert_eq!(node.owner(), None);
    let wire = NameKey::new(&Name::from_ascii("x.ns.pod.cluster.local.").unwrap());
    let mut b = NodeBuilder::new(wire.as_bytes(), 5);
    b.set([Data::A("10.244.200.1".parse().unwrap())], Vec::new());
    let pod = Owner::Pod(Key::new("ns", "p"));
    let node = b.finish(wire.as_bytes(), Some(&pod));
    assert_eq!(node.owner_bytes()[0], 4);
    assert_eq!(node.owner(), Some(pod.clone()));
    assert!(node.owned_by(&pod));
}

#[test]
fn a_set_of_more_than_255_records_makes_the_node_wide_and_it_reads_the_same() {
    let ix = index();
    let mut snap = Snapshot::default();
    snap.namespaces.insert(Arc::from("ns"));
    let ips: Vec<String> = (0..300)
        .map(|i| format!("10.244.{}.{}", i / 200, i % 200 + 1))
        .collect();
    let refs: Vec<&str> = ips.iter().map(String::as_str).collect();
    let mut headless = svc("ns", "big", "10.96.0.1");
    headless.kind = ServiceKind::Headless;
    snap.services.insert(Key::new("ns", "big"), headless);
    let s = slice("ns", "big", &refs);
    snap.slices.insert(s.key.clone(), s);
    let mut small = svc("ns", "small", "10.96.0.2");
    small.kind = ServiceKind::Headless;
    snap.services.insert(Key::new("ns", "small"), small);
    let s = slice("ns", "small", &refs[..2]);
    snap.slices.insert(s.key.clone(), s);
    ix.replace_all(snap);

    let question = Name::from_ascii("big.ns.svc.cluster.local.").unwrap();
    let node = ix.get(&LowerName::from(question.clone())).unwrap();
    assert!(!node.narrow());
    let a = node.get(RecordType::A, &This::Question).unwrap();
    assert_eq!(a.records.records(&question).unwrap().len(), 300);
    assert!(a.additionals.is_none());
    let srv = node.get(RecordType::SRV, &This::Question).unwrap();
    assert_eq!(srv.records.records(&question).unwrap().len(), 300);
    assert_eq!(
        srv.additionals.unwrap().records(&question).unwrap().len(),
        300
    );
    assert_eq!(node.owner(), Some(Owner::Service(Key::new("ns", "big"))));

    let question = Name::from_ascii("small.ns.svc.cluster.local.").unwrap();
    let node = ix.get(&LowerName::from(question.clone())).unwrap();
    assert!(node.narrow());
    let srv = node.get(RecordType::SRV, &This::Question).unwrap();
    let text: Vec<String> = srv
        .records
        .records(&question)
        .unwrap()
        .iter()
        .map(|r| r.to_string())
        .collect();
    assert_eq!(
        text,
        [
            "small.ns.svc.cluster.local. 5 IN SRV 0 50 8080 10-244-0-1.small.ns.svc.cluster.local.",
            "small.ns.svc.cluster.local. 5 IN SRV 0 50 8080 10-244-0-2.small.ns.svc.cluster.local.",
        ]
    );
}

#[test]
fn a_full_list_leaves_the_object_maps_packed() {
    let ix = index();
    ix.replace_all(big_cluster());
    let w = ix.lock_writer();
    // Packed, the maps answer as before: every object is there, in order.
    assert_eq!(w.state.services.len(), 2000);
    assert_eq!(w.state.slices.len(), 2000);
    assert!(w.state.services.keys().is_sorted());
    drop(w);
    assert!(has(&ix, "svc-1999.ns.svc.cluster.local", RecordType::A));
    // A change after the repack lands as any other.
    let mut snap = big_cluster();
    snap.services.remove(&Key::new("ns", "svc-5"));
    ix.replace_all(snap);
    assert!(!has(&ix, "svc-5.ns.svc.cluster.local", RecordType::A));
    assert_eq!(ix.count(Kind::Service), 1999);
}

#[test]
fn objects_share_one_copy_of_each_namespace_and_port_list() {
    let ix = index();
    ix.replace_all(big_cluster());
    let w = ix.lock_writer();
    let services: Vec<&SlimService> = w.state.services.values().collect();
    let (a, b) = (services[0], services[1]);
    assert!(Arc::ptr_eq(&a.ports, &b.ports));
    assert!(Arc::ptr_eq(&a.key.namespace, &b.key.namespace));
    let slices: Vec<&SlimSlice> = w.state.slices.values().collect();
    assert!(Arc::ptr_eq(
        slices[0].ports.as_ref().unwrap(),
        slices[1].ports.as_ref().unwrap()
    ));
    assert!(Arc::ptr_eq(&slices[0].key.namespace, &a.key.namespace));
    let (key, _) = w.state.services.first_key_value().unwrap();
    assert!(Arc::ptr_eq(&key.namespace, &a.key.namespace));
    // A different list is its own, and equal lists compare equal whatever their copy.
    drop(w);
    let mut snap = big_cluster();
    let mut odd = svc("ns", "svc-3", "10.96.0.4");
    odd.ports = vec![SlimPort {
        name: "dns".into(),
        protocol: "udp".into(),
        port: 53,
    }]
    .into();
    snap.services.insert(Key::new("ns", "svc-3"), odd);
    ix.replace_all(snap);
    assert!(has(
        &ix,
        "_dns._udp.svc-3.ns.svc.cluster.local",
        RecordType::SRV
    ));
    assert!(!has(
        &ix,
        "_http._tcp.svc-3.ns.svc.cluster.local",
        RecordType::SRV
    ));
    assert!(has(
        &ix,
        "_http._tcp.svc-4.ns.svc.cluster.local",
        RecordType::SRV
    ));
}

#[test]
fn interned_values_nobody_holds_are_swept_when_the_table_doubles() {
    let mut shared: Interned<str> = Interned::default();
    let kept = shared.get(Arc::from("kept"));
    for i in 0..63 {
        shared.get(Arc::from(format!("gone-{i}")));
    }
    assert_eq!(shared.set.len(), 64);
    // The 65th value sweeps: only what is still held stays.
    let again = shared.get(Arc::from("new"));
    assert_eq!(shared.set.len(), 2);
    assert!(Arc::ptr_eq(&shared.get(Arc::from("kept")), &kept));
    assert!(Arc::ptr_eq(&shared.get(Arc::from("new")), &again));
}

/// An index serving `clusterset.local` as `multicluster` does.
fn multicluster_index() -> Index {
    Index::new(IndexOptions {
        zones: ["cluster.local", "clusterset.local", "in-addr.arpa"]
            .iter()
            .map(|z| name::fqdn(z).unwrap())
            .collect(),
        multicluster: vec![name::fqdn("clusterset.local").unwrap()],
        ttl: 5,
        records: RecordOptions {
            pods: PodMode::Disabled,
            endpoint_pod_names: false,
            ignore_empty_service: false,
            zonal: false,
        },
    })
}

fn import(ns: &str, name: &str, kind: crate::cluster::slim::ImportKind) -> SlimImport {
    SlimImport {
        key: Key::new(ns, name),
        kind,
        ports: Arc::from(Vec::new()),
    }
}

#[test]
fn an_import_shares_addresses_with_services_and_gives_way_in_ptr() {
    use crate::cluster::slim::{ImportKind, ImportLabels};
    let ix = multicluster_index();
    let mut snap = Snapshot::default();
    snap.namespaces.insert(Arc::from("ns"));
    // A headless import whose slice is in cluster "east", and a ClusterSetIP import.
    snap.imports.insert(
        Key::new("ns", "pg"),
        import("ns", "pg", ImportKind::Headless),
    );
    let mut s = slice("ns", "", &["10.244.0.9"]);
    s.key = Key::new("ns", "pg-east");
    s.import = Some(Box::new(ImportLabels {
        service: Arc::from("pg"),
        cluster: Some(Arc::from("east")),
    }));
    snap.slices.insert(s.key.clone(), s);
    let vip = ImportKind::ClusterSetIp(vec!["10.100.0.1".parse().unwrap()]);
    snap.imports
        .insert(Key::new("ns", "web"), import("ns", "web", vip));
    ix.replace_all(snap.clone());
    let endpoint = "10-244-0-9.east.pg.ns.svc.clusterset.local";
    assert!(has(&ix, endpoint, RecordType::A));
    assert!(has(&ix, "pg.ns.svc.clusterset.local", RecordType::A));
    assert!(has(&ix, "web.ns.svc.clusterset.local", RecordType::A));
    assert!(!has(&ix, "pg.ns.svc.cluster.local", RecordType::A));
    // The node records the import as its owner, and reads it back.
    let node = ix
        .get(&LowerName::new(&name::fqdn(endpoint).unwrap()))
        .unwrap();
    assert_eq!(node.owner(), Some(Owner::Import(Key::new("ns", "pg"))));
    assert_eq!(
        ptrs(&ix, "9.0.244.10.in-addr.arpa"),
        [format!("{endpoint}.")]
    );
    assert_eq!(
        ptrs(&ix, "1.0.100.10.in-addr.arpa"),
        ["web.ns.svc.clusterset.local."]
    );

    // A cluster-local Service with the same addresses takes the PTRs; the imports keep
    // their names.
    let mut local = snap.clone();
    local
        .services
        .insert(Key::new("ns", "api"), svc("ns", "api", "10.100.0.1"));
    let s = slice("ns", "api", &["10.244.0.9"]);
    local.slices.insert(s.key.clone(), s);
    ix.replace_all(local);
    assert_eq!(
        ptrs(&ix, "9.0.244.10.in-addr.arpa"),
        ["10-244-0-9.api.ns.svc.cluster.local."]
    );
    assert_eq!(
        ptrs(&ix, "1.0.100.10.in-addr.arpa"),
        ["api.ns.svc.cluster.local."]
    );
    assert!(has(&ix, endpoint, RecordType::A));
    // And gives them back when it goes.
    ix.replace_all(snap.clone());
    assert_eq!(
        ptrs(&ix, "9.0.244.10.in-addr.arpa"),
        [format!("{endpoint}.")]
    );

    // The slice moving to another import, then the import going: nothing is left behind.
    let mut moved = snap.clone();
    moved.slices.values_mut().for_each(|s| {
        if let Some(l) = s.import.as_mut() {
            l.service = Arc::from("other");
        }
    });
    ix.replace_all(moved);
    assert!(!has(&ix, endpoint, RecordType::A));
    assert!(!has(&ix, "pg.ns.svc.clusterset.local", RecordType::A));
    ix.replace_all(Snapshot::default());
    assert!(ix.lock_writer().shared.is_empty());
    assert!(ix.lock_writer().slices_by_import.is_empty());
    assert!(ptrs(&ix, "9.0.244.10.in-addr.arpa").is_empty());
}
