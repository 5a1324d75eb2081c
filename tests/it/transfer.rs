//! `transfer`: AXFR (and IXFR, answered whole) of the `kubernetes`, `file` and `k8s_external`
//! zones over TCP to the listed peers, with `dig` and with Knot DNS as a secondary that then
//! answers the same names; REFUSED for everyone else and over UDP.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;

use hickory_proto::op::{Message, ResponseCode};
use hickory_proto::rr::RecordType;

use clusterdns::app::App;
use clusterdns::plugin::Transport;

use crate::clients;
use crate::support;
use crate::upstream::Knot;

async fn serve(dir: &Path, to: &str) -> Arc<App> {
    std::fs::write(dir.join("db.example.org"), crate::file::ZONE).unwrap();
    let objects = support::root().join("deploy/local/cluster.yaml");
    let corefile = format!(
        ".:0 {{\n    transfer {{\n        to {to}\n    }}\n    k8s_external example.com\n    kubernetes cluster.local in-addr.arpa ip6.arpa {{\n        objects {}\n    }}\n    file {} example.org\n}}\n",
        objects.display(),
        dir.join("db.example.org").display(),
    );
    let running = support::start(&dir.join("Corefile"), &corefile).await;
    support::until_ready(&running).await;
    running
}

/// `dig AXFR` (or IXFR) of `zone`: the records, one per line, as dig prints them.
async fn dig_xfr(running: &App, zone: &str, kind: &str) -> Vec<String> {
    assert!(clients::have("dig"), "dig is missing (.ci/run installs it)");
    let port = running.listeners()[0].udp.port();
    let (zone, kind) = (zone.to_string(), kind.to_string());
    let out = tokio::task::spawn_blocking(move || {
        clients::dig(port, &["+noall", "+answer", &kind, &zone])
    })
    .await
    .unwrap();
    out.lines()
        .filter(|l| !l.is_empty() && !l.starts_with(';'))
        .map(|l| l.split_whitespace().collect::<Vec<_>>().join(" "))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dig_transfers_the_cluster_the_zone_file_and_the_external_zone() {
    let dir = tempfile::tempdir().unwrap();
    let running = serve(dir.path(), "127.0.0.1").await;

    let cluster = dig_xfr(&running, "cluster.local", "AXFR").await;
    assert!(cluster.len() > 20, "{cluster:#?}");
    assert!(
        cluster[0].starts_with("cluster.local. 5 IN SOA"),
        "{}",
        cluster[0]
    );
    assert_eq!(cluster.first(), cluster.last(), "SOA first and last");
    for want in [
        "cluster.local. 5 IN NS ns.dns.cluster.local.",
        "kubernetes.default.svc.cluster.local. 5 IN A 10.96.0.1",
        "_https._tcp.kubernetes.default.svc.cluster.local. 5 IN SRV 0 100 443 kubernetes.default.svc.cluster.local.",
        "postgres-0.postgres.db.svc.cluster.local. 5 IN A 10.244.1.30",
        "frontend.shop.svc.cluster.local. 5 IN AAAA fd00:10:96::1234",
    ] {
        assert!(
            cluster.iter().any(|l| l == want),
            "no {want:?} in\n{cluster:#?}"
        );
    }
    // The reverse zone is the index's PTR records.
    let reverse = dig_xfr(&running, "in-addr.arpa", "AXFR").await;
    assert!(
        reverse
            .iter()
            .any(|l| l == "1.0.96.10.in-addr.arpa. 5 IN PTR kubernetes.default.svc.cluster.local."),
        "{reverse:#?}"
    );
    // IXFR gets the whole zone (RFC 1995 allows it).
    let ixfr = dig_xfr(&running, "cluster.local", "IXFR=1").await;
    assert_eq!(ixfr, cluster);

    // The zone file, every record, the SOA at both ends.
    let file = dig_xfr(&running, "example.org", "AXFR").await;
    assert_eq!(file.len(), 17 + 1, "{file:#?}");
    assert!(
        file.iter()
            .any(|l| l == "*.apps.example.org. 3600 IN A 192.0.2.99")
    );

    // The external zone: the load balancer's address and its named port.
    let external = dig_xfr(&running, "example.com", "AXFR").await;
    for want in [
        "frontend.shop.example.com. 5 IN A 203.0.113.10",
        "_http._tcp.frontend.shop.example.com. 5 IN SRV 0 100 80 frontend.shop.example.com.",
    ] {
        assert!(
            external.iter().any(|l| l == want),
            "no {want:?} in\n{external:#?}"
        );
    }
    assert!(
        external[0].starts_with("example.com. 5 IN SOA"),
        "{external:#?}"
    );

    // transfer leaves ordinary queries to the fast path.
    let router = running.router(running.listeners()[0].port).unwrap();
    let q = support::query("kubernetes.default.svc.cluster.local.", RecordType::A, None)
        .to_vec()
        .unwrap();
    let mut out = Vec::new();
    let src: SocketAddr = ([127, 0, 0, 1], 40000).into();
    assert!(router.answer_fast(&q, src, Transport::Udp, &mut out));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_listed_peers_over_tcp_get_a_transfer() {
    let dir = tempfile::tempdir().unwrap();
    let running = serve(dir.path(), "192.0.2.1 10.0.0.0/8").await;
    // Not from 127.0.0.1.
    assert!(dig_xfr(&running, "cluster.local", "AXFR").await.is_empty());
    let l = running.listeners()[0].clone();
    let q = support::query("cluster.local.", RecordType::AXFR, None)
        .to_vec()
        .unwrap();
    let m = Message::from_vec(&support::tcp(l.tcp, &q).await.unwrap()).unwrap();
    assert_eq!(m.metadata.response_code, ResponseCode::Refused);

    // Allowed, but over UDP: refused.
    let running = serve(dir.path(), "*").await;
    let l = running.listeners()[0].clone();
    let m = Message::from_vec(&support::udp(l.udp, &q).await.unwrap()).unwrap();
    assert_eq!(m.metadata.response_code, ResponseCode::Refused);
    // A zone no plugin holds whole: NOTAUTH.
    let q = support::query("svc.cluster.local.", RecordType::AXFR, None)
        .to_vec()
        .unwrap();
    let m = Message::from_vec(&support::tcp(l.tcp, &q).await.unwrap()).unwrap();
    assert_eq!(m.metadata.response_code, ResponseCode::NotAuth);

    // Without `transfer`, nobody gets one.
    let objects = support::root().join("deploy/local/cluster.yaml");
    let corefile = format!(
        ".:0 {{\n    kubernetes cluster.local {{\n        objects {}\n    }}\n}}\n",
        objects.display()
    );
    let plain = support::start(&dir.path().join("Corefile"), &corefile).await;
    support::until_ready(&plain).await;
    let q = support::query("cluster.local.", RecordType::AXFR, None)
        .to_vec()
        .unwrap();
    let at = plain.listeners()[0].tcp;
    let m = Message::from_vec(&support::tcp(at, &q).await.unwrap()).unwrap();
    assert_eq!(m.metadata.response_code, ResponseCode::Refused);
}

/// rcode and answers, sorted.
fn summary(m: &Message) -> (ResponseCode, Vec<String>) {
    let mut a: Vec<String> = m.answers.iter().map(support::fmt_record).collect();
    a.sort();
    (m.metadata.response_code, a)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn knot_as_a_secondary_answers_what_clusterdns_answers() {
    let dir = tempfile::tempdir().unwrap();
    let running = serve(dir.path(), "127.0.0.1").await;
    let port = running.listeners()[0].udp.port();
    let zones = format!(
        "remote:\n  - id: primary\n    address: 127.0.0.1@{port}\nzone:\n  - domain: cluster.local\n    master: primary\n  - domain: example.org\n    master: primary\n"
    );
    let knot = Knot::start_conf(&[], &zones, "cluster.local").await;
    let knot_at: SocketAddr = ([127, 0, 0, 1], knot.port).into();
    // The second zone may land a moment after the first.
    let soa = support::query("example.org.", RecordType::SOA, None)
        .to_vec()
        .unwrap();
    for _ in 0..100 {
        let a = support::udp(knot_at, &soa)
            .await
            .map(|b| Message::from_vec(&b).unwrap());
        if a.is_some_and(|m| !m.answers.is_empty()) {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    for (name, qtype) in [
        ("kubernetes.default.svc.cluster.local.", RecordType::A),
        ("frontend.shop.svc.cluster.local.", RecordType::AAAA),
        (
            "_https._tcp.kubernetes.default.svc.cluster.local.",
            RecordType::SRV,
        ),
        ("postgres.db.svc.cluster.local.", RecordType::A),
        ("postgres-1.postgres.db.svc.cluster.local.", RecordType::A),
        ("cluster.local.", RecordType::NS),
        ("nothing.default.svc.cluster.local.", RecordType::A),
        ("web.example.org.", RecordType::A),
        ("x.apps.example.org.", RecordType::A),
        ("example.org.", RecordType::MX),
        ("nope.example.org.", RecordType::A),
    ] {
        let q = support::query(name, qtype, Some(1232)).to_vec().unwrap();
        let from_knot = Message::from_vec(&support::udp(knot_at, &q).await.unwrap()).unwrap();
        let from_us = Message::from_vec(
            &support::ask(&running, running.listeners()[0].port, &q, Transport::Udp)
                .await
                .unwrap(),
        )
        .unwrap();
        assert_eq!(summary(&from_knot), summary(&from_us), "{name} {qtype}");
    }
}

/// When a zone changes, `transfer` sends its secondaries a NOTIFY (RFC 1996), from `source`
/// (CoreDNS 1.14), and Knot, notified, transfers the zone again at once: it answers a Service
/// added to the cluster long before its own refresh (two hours) would.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_change_is_notified_and_knot_transfers_it_again() {
    let dir = tempfile::tempdir().unwrap();
    let objects = support::demo_objects(dir.path(), &[]);
    let knot_port = crate::upstream::free_port().await;
    let corefile = format!(
        ".:0 {{\n    transfer {{\n        to 127.0.0.1:{knot_port}\n        source 127.0.0.1\n    }}\n    kubernetes cluster.local {{\n        objects {}\n    }}\n}}\n",
        objects.display()
    );
    let running = support::start(&dir.path().join("Corefile"), &corefile).await;
    support::until_ready(&running).await;
    let port = running.listeners()[0].udp.port();
    let zones = format!(
        "remote:\n  - id: primary\n    address: 127.0.0.1@{port}\nacl:\n  - id: notify\n    address: 127.0.0.1\n    action: notify\nzone:\n  - domain: cluster.local\n    master: primary\n    acl: notify\n"
    );
    let knot = Knot::start_conf_at(knot_port, &[], &zones, "cluster.local").await;
    let knot_at: SocketAddr = ([127, 0, 0, 1], knot.port).into();
    let q = support::query("notified.default.svc.cluster.local.", RecordType::A, None)
        .to_vec()
        .unwrap();
    let from_knot = |q: Vec<u8>| async move {
        support::udp(knot_at, &q)
            .await
            .map(|b| Message::from_vec(&b).unwrap())
    };
    let m = from_knot(q.clone()).await.expect("knot answers");
    assert_eq!(m.metadata.response_code, ResponseCode::NXDomain);
    std::fs::write(
        objects.join("notified.yaml"),
        "apiVersion: v1\nkind: Service\nmetadata: {name: notified, namespace: default}\nspec: {clusterIP: 10.96.77.7, clusterIPs: [10.96.77.7], ports: [{name: http, port: 80, protocol: TCP}]}\n",
    )
    .unwrap();
    let mut answered = false;
    for _ in 0..300 {
        if let Some(m) = from_knot(q.clone()).await
            && m.answers.iter().any(|r| r.data.to_string() == "10.96.77.7")
        {
            answered = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert!(answered, "Knot never had the new Service: was it notified?");
    running.close().await;
}
