//! `k8s_external`: Services' external IPs and load balancers under a zone of their own, from an
//! objects file and through the live API, asked in-process and with dig.

use std::net::Ipv4Addr;
use std::path::Path;
use std::sync::Arc;

use hickory_proto::rr::{DNSClass, RecordType};
use serde_json::json;

use clusterdns::app::App;

use crate::apiserver::ApiServer;
use crate::clients;
use crate::live::{eventually, namespace};
use crate::support;
use crate::upstream::FakeUpstream;

/// Services with external addresses, beside the demo cluster (whose `frontend` is a
/// LoadBalancer at 203.0.113.10, and whose `postgres` is headless).
const EXTRA: &str = r#"
apiVersion: v1
kind: List
items:
- apiVersion: v1
  kind: Service
  metadata: {name: web, namespace: shop}
  spec:
    type: LoadBalancer
    clusterIP: 10.96.50.1
    clusterIPs: [10.96.50.1]
    externalIPs: [198.51.100.7]
    ports:
    - {name: http, port: 80, protocol: TCP, nodePort: 30081}
    - {name: https, port: 443, protocol: TCP, nodePort: 30443}
  status:
    loadBalancer:
      ingress:
      - {ip: 203.0.113.20}
      - {ip: "2001:db8::20"}
- apiVersion: v1
  kind: Service
  metadata: {name: elb, namespace: shop}
  spec:
    type: LoadBalancer
    clusterIP: 10.96.50.2
    clusterIPs: [10.96.50.2]
    ports:
    - {name: http, port: 80, protocol: TCP}
  status:
    loadBalancer:
      ingress:
      - {hostname: web-123.elb.example.com}
- apiVersion: v1
  kind: Service
  metadata: {name: bare, namespace: shop}
  spec:
    clusterIP: 10.96.50.3
    clusterIPs: [10.96.50.3]
    externalIPs: [198.51.100.9]
"#;

async fn server(dir: &Path, directive: &str, up: &FakeUpstream) -> Arc<App> {
    let objects = support::demo_objects(dir, &[("extra.yaml", EXTRA)]);
    let corefile = format!(
        ".:0 {{\n    errors\n    {directive}\n    kubernetes cluster.local in-addr.arpa ip6.arpa {{\n        objects {}\n        fallthrough in-addr.arpa ip6.arpa\n    }}\n    forward . {}\n}}\n",
        objects.display(),
        up.addr
    );
    let running = support::start(&dir.join("Corefile"), &corefile).await;
    support::until_ready(&running).await;
    running
}

/// The reply's sections, with SOA serials written `SERIAL` (they follow the cluster's changes).
async fn ask(running: &App, name: &str, qtype: RecordType) -> support::Sections {
    let mut a = support::ask_sections(running, name, qtype, DNSClass::IN).await;
    for r in a.answers.iter_mut().chain(a.authority.iter_mut()) {
        let mut f: Vec<&str> = r.split(' ').collect();
        if f.get(2) == Some(&"SOA") && f.len() > 5 {
            f[5] = "SERIAL";
            *r = f.join(" ");
        }
    }
    a
}

const SOA: &str =
    "example.org. 5 SOA ns1.dns.example.org. hostmaster.dns.example.org. SERIAL 7200 1800 86400 5";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn external_ips_and_load_balancers_answer_under_their_zone() {
    let up = FakeUpstream::start(Ipv4Addr::new(192, 0, 2, 44)).await;
    let dir = tempfile::tempdir().unwrap();
    let running = server(
        dir.path(),
        "k8s_external example.org in-addr.arpa {\n        fallthrough in-addr.arpa\n    }",
        &up,
    )
    .await;

    // spec.externalIPs first, then the load balancer's ingress, as CoreDNS lists them.
    let a = ask(&running, "web.shop.example.org.", RecordType::A).await;
    assert_eq!((a.rcode.as_str(), a.aa), ("NOERROR", true));
    assert_eq!(
        a.answers,
        [
            "web.shop.example.org. 5 A 198.51.100.7",
            "web.shop.example.org. 5 A 203.0.113.20"
        ]
    );
    let a = ask(&running, "web.shop.example.org.", RecordType::AAAA).await;
    assert_eq!(a.answers, ["web.shop.example.org. 5 AAAA 2001:db8::20"]);
    // The demo's frontend, a LoadBalancer.
    let a = ask(&running, "frontend.shop.example.org.", RecordType::A).await;
    assert_eq!(a.answers, ["frontend.shop.example.org. 5 A 203.0.113.10"]);

    // SRV: one record per port, weighted over the 6 address×port entries; the addresses of the
    // target in the additional section.
    let a = ask(&running, "web.shop.example.org.", RecordType::SRV).await;
    assert_eq!(
        a.answers,
        [
            "web.shop.example.org. 5 SRV 0 16 80 web.shop.example.org.",
            "web.shop.example.org. 5 SRV 0 16 443 web.shop.example.org."
        ]
    );
    assert_eq!(
        a.additional,
        [
            "web.shop.example.org. 5 A 198.51.100.7",
            "web.shop.example.org. 5 A 203.0.113.20",
            "web.shop.example.org. 5 AAAA 2001:db8::20"
        ]
    );
    let a = ask(
        &running,
        "_https._tcp.web.shop.example.org.",
        RecordType::SRV,
    )
    .await;
    assert_eq!(
        a.answers,
        ["_https._tcp.web.shop.example.org. 5 SRV 0 33 443 web.shop.example.org."]
    );
    // A port and protocol select addresses as well.
    let a = ask(&running, "_http._tcp.web.shop.example.org.", RecordType::A).await;
    assert_eq!(a.answers.len(), 2);
    let a = ask(
        &running,
        "_http._udp.web.shop.example.org.",
        RecordType::SRV,
    )
    .await;
    assert_eq!(a.rcode, "NXDOMAIN");
    assert_eq!(a.authority, [SOA]);
    // CoreDNS reads a third label as an endpoint name, which a Service with external addresses
    // ignores.
    let a = ask(&running, "anything.web.shop.example.org.", RecordType::A).await;
    assert_eq!(a.answers.len(), 2);

    // A load balancer known by hostname: a CNAME, followed through the server (forward).
    let a = ask(&running, "elb.shop.example.org.", RecordType::A).await;
    assert_eq!(a.rcode, "NOERROR");
    assert_eq!(
        a.answers[0],
        "elb.shop.example.org. 5 CNAME web-123.elb.example.com."
    );
    assert!(
        a.answers[1].starts_with("web-123.elb.example.com.")
            && a.answers[1].ends_with("A 192.0.2.44"),
        "{:?}",
        a.answers
    );
    // Its SRV target is the hostname, with what it resolves to as additionals.
    let a = ask(&running, "elb.shop.example.org.", RecordType::SRV).await;
    assert_eq!(
        a.answers,
        ["elb.shop.example.org. 5 SRV 0 100 80 web-123.elb.example.com."]
    );
    assert!(
        a.additional.iter().any(|r| r.ends_with("A 192.0.2.44")),
        "{:?}",
        a.additional
    );

    // A Service with no ports: addresses, but no SRV records.
    let a = ask(&running, "bare.shop.example.org.", RecordType::A).await;
    assert_eq!(a.answers, ["bare.shop.example.org. 5 A 198.51.100.9"]);
    let a = ask(&running, "bare.shop.example.org.", RecordType::SRV).await;
    assert_eq!((a.rcode.as_str(), a.answers.len()), ("NOERROR", 0));
    assert_eq!(a.authority, [SOA]);

    // Types the plugin does not serve, names without external addresses, and names that do not
    // exist.
    let a = ask(&running, "web.shop.example.org.", RecordType::TXT).await;
    assert_eq!((a.rcode.as_str(), a.answers.len()), ("NOERROR", 0));
    for name in [
        "cart.shop.example.org.",   // a ClusterIP Service without external addresses
        "postgres.db.example.org.", // headless, and `headless` is off
        "missing.shop.example.org.", // no such Service
        "web.nowhere.example.org.", // no such namespace
        "a.b.web.shop.example.org.", // too many labels
    ] {
        let a = ask(&running, name, RecordType::A).await;
        assert_eq!(a.rcode, "NXDOMAIN", "{name}");
        assert_eq!(a.authority, [SOA], "{name}");
        assert!(a.aa, "{name}");
    }
    let a = ask(&running, "shop.example.org.", RecordType::A).await;
    assert_eq!((a.rcode.as_str(), a.answers.len()), ("NOERROR", 0));

    // The apex: SOA and NS, the name server under `dns` (kube-dns has no external IPs here, so
    // no addresses), and nothing else below `dns`.
    let a = ask(&running, "example.org.", RecordType::SOA).await;
    assert_eq!(a.answers, [SOA]);
    let a = ask(&running, "example.org.", RecordType::NS).await;
    assert_eq!(a.answers, ["example.org. 5 NS ns1.dns.example.org."]);
    let a = ask(&running, "dns.example.org.", RecordType::A).await;
    assert_eq!((a.rcode.as_str(), a.answers.len()), ("NOERROR", 0));
    let a = ask(&running, "ns1.dns.example.org.", RecordType::A).await;
    assert_eq!((a.rcode.as_str(), a.answers.len()), ("NOERROR", 0));
    let a = ask(&running, "ns2.dns.example.org.", RecordType::A).await;
    assert_eq!(a.rcode, "NXDOMAIN");

    // PTR for an external IP, pointing into the first zone; a cluster IP falls through to the
    // kubernetes plugin.
    let a = ask(&running, "7.100.51.198.in-addr.arpa.", RecordType::PTR).await;
    assert_eq!(
        a.answers,
        ["7.100.51.198.in-addr.arpa. 5 PTR web.shop.example.org."]
    );
    let a = ask(&running, "1.0.96.10.in-addr.arpa.", RecordType::PTR).await;
    assert_eq!(a.rcode, "NOERROR");
    assert!(
        a.answers[0].ends_with("PTR kubernetes.default.svc.cluster.local."),
        "{:?}",
        a.answers
    );
    // The cluster zone is as before.
    let a = ask(&running, "frontend.shop.svc.cluster.local.", RecordType::A).await;
    assert_eq!(a.answers.len(), 1);
    assert!(a.answers[0].ends_with("A 10.96.12.34"));

    if clients::have("dig") {
        let port = running.listeners()[0].udp.port();
        let out = tokio::task::spawn_blocking(move || {
            (
                clients::dig(port, &["+short", "frontend.shop.example.org"]),
                clients::dig(port, &["+short", "-x", "198.51.100.7"]),
                clients::dig(port, &["+short", "SRV", "_https._tcp.web.shop.example.org"]),
            )
        })
        .await
        .unwrap();
        assert_eq!(out.0.trim(), "203.0.113.10");
        assert_eq!(out.1.trim(), "web.shop.example.org.");
        assert_eq!(out.2.trim(), "0 33 443 web.shop.example.org.");
    }
    running.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn headless_apex_and_ttl_options() {
    let up = FakeUpstream::start(Ipv4Addr::new(192, 0, 2, 44)).await;
    let dir = tempfile::tempdir().unwrap();
    let running = server(
        dir.path(),
        "k8s_external ext.test {\n        headless\n        apex ns\n        ttl 30\n    }",
        &up,
    )
    .await;
    let soa = "ext.test. 30 SOA ns1.ns.ext.test. hostmaster.ns.ext.test. SERIAL 7200 1800 86400 30";
    // A headless Service: its ready endpoints, as the cluster zone has them.
    let a = ask(&running, "postgres.db.ext.test.", RecordType::A).await;
    assert_eq!(a.rcode, "NOERROR");
    let mut answers = a.answers.clone();
    answers.sort();
    assert_eq!(
        answers,
        [
            "postgres.db.ext.test. 30 A 10.244.1.30",
            "postgres.db.ext.test. 30 A 10.244.2.31"
        ]
    );
    let a = ask(&running, "postgres-0.postgres.db.ext.test.", RecordType::A).await;
    assert_eq!(
        a.answers,
        ["postgres-0.postgres.db.ext.test. 30 A 10.244.1.30"]
    );
    // SRV targets and their addresses are renamed into this zone.
    let a = ask(
        &running,
        "_tcp-postgres._tcp.postgres.db.ext.test.",
        RecordType::SRV,
    )
    .await;
    let mut answers = a.answers.clone();
    answers.sort();
    assert_eq!(
        answers,
        [
            "_tcp-postgres._tcp.postgres.db.ext.test. 30 SRV 0 50 5432 postgres-0.postgres.db.ext.test.",
            "_tcp-postgres._tcp.postgres.db.ext.test. 30 SRV 0 50 5432 postgres-1.postgres.db.ext.test."
        ]
    );
    let mut extra = a.additional.clone();
    extra.retain(|r| !r.contains("OPT"));
    extra.sort();
    assert_eq!(
        extra,
        [
            "postgres-0.postgres.db.ext.test. 30 A 10.244.1.30",
            "postgres-1.postgres.db.ext.test. 30 A 10.244.2.31"
        ]
    );
    // A not-ready endpoint has no name; a ClusterIP Service without external addresses still
    // has none here.
    let a = ask(&running, "postgres-2.postgres.db.ext.test.", RecordType::A).await;
    assert_eq!(a.rcode, "NXDOMAIN");
    assert_eq!(a.authority, [soa]);
    let a = ask(&running, "cart.shop.ext.test.", RecordType::A).await;
    assert_eq!(a.rcode, "NXDOMAIN");
    let a = ask(&running, "postgres.db.ext.test.", RecordType::MX).await;
    assert_eq!((a.rcode.as_str(), a.answers.len()), ("NOERROR", 0));
    // External addresses win over endpoints, and take the ttl.
    let a = ask(&running, "frontend.shop.ext.test.", RecordType::A).await;
    assert_eq!(a.answers, ["frontend.shop.ext.test. 30 A 203.0.113.10"]);
    // The apex label.
    let a = ask(&running, "ext.test.", RecordType::NS).await;
    assert_eq!(a.answers, ["ext.test. 30 NS ns1.ns.ext.test."]);
    let a = ask(&running, "ext.test.", RecordType::SOA).await;
    assert_eq!(a.answers, [soa]);
    running.close().await;
}

fn lb(ns: &str, name: &str, ingress: &[&str]) -> serde_json::Value {
    let ingress: Vec<_> = ingress.iter().map(|ip| json!({"ip": ip})).collect();
    json!({
        "kind": "Service",
        "metadata": {"name": name, "namespace": ns},
        "spec": {"type": "LoadBalancer", "clusterIP": "10.96.9.9", "clusterIPs": ["10.96.9.9"],
                 "ports": [{"name": "http", "port": 80, "protocol": "TCP"}]},
        "status": {"loadBalancer": {"ingress": ingress}},
    })
}

/// Through the real kube client: a load balancer getting its address, moving, and going away;
/// the name server's addresses from kube-dns's external IPs.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn load_balancer_changes_are_followed_live() {
    let api = ApiServer::start().await;
    api.apply_all(vec![
        namespace("shop"),
        namespace("kube-system"),
        lb("shop", "web", &[]),
        json!({
            "kind": "Service",
            "metadata": {"name": "kube-dns", "namespace": "kube-system"},
            "spec": {"clusterIP": "10.96.0.10", "clusterIPs": ["10.96.0.10"],
                     "externalIPs": ["198.51.100.53"],
                     "ports": [{"name": "dns", "port": 53, "protocol": "UDP"}]},
        }),
    ]);
    let dir = tempfile::tempdir().unwrap();
    let corefile = format!(
        ".:0 {{\n    k8s_external example.org in-addr.arpa\n    kubernetes cluster.local {{\n        kubeconfig {}\n    }}\n}}\n",
        api.kubeconfig(dir.path()).display()
    );
    let running = support::start(&dir.path().join("Corefile"), &corefile).await;
    support::until_ready(&running).await;

    let a = ask(&running, "web.shop.example.org.", RecordType::A).await;
    assert_eq!(a.rcode, "NXDOMAIN", "no ingress yet");
    let a = ask(&running, "example.org.", RecordType::NS).await;
    assert_eq!(
        a.additional
            .iter()
            .filter(|r| !r.contains("OPT"))
            .collect::<Vec<_>>(),
        ["ns1.dns.example.org. 5 A 198.51.100.53"]
    );
    let a = ask(&running, "ns1.dns.example.org.", RecordType::A).await;
    assert_eq!(a.answers, ["ns1.dns.example.org. 5 A 198.51.100.53"]);

    // The controller writes the address into the status.
    api.apply(lb("shop", "web", &["203.0.113.77"]));
    eventually("the ingress IP answers", || async {
        ask(&running, "web.shop.example.org.", RecordType::A)
            .await
            .answers
            == ["web.shop.example.org. 5 A 203.0.113.77"]
    })
    .await;
    let a = ask(&running, "77.113.0.203.in-addr.arpa.", RecordType::PTR).await;
    assert_eq!(
        a.answers,
        ["77.113.0.203.in-addr.arpa. 5 PTR web.shop.example.org."]
    );

    // It moves: the old address no longer has a PTR.
    api.apply(lb("shop", "web", &["203.0.113.78"]));
    eventually("the new ingress IP answers", || async {
        ask(&running, "web.shop.example.org.", RecordType::A)
            .await
            .answers
            == ["web.shop.example.org. 5 A 203.0.113.78"]
    })
    .await;
    let a = ask(&running, "77.113.0.203.in-addr.arpa.", RecordType::PTR).await;
    assert_eq!(a.rcode, "NXDOMAIN");

    api.delete("Service", "shop", "web");
    eventually("the Service is gone", || async {
        ask(&running, "web.shop.example.org.", RecordType::A)
            .await
            .rcode
            == "NXDOMAIN"
    })
    .await;
    let a = ask(&running, "78.113.0.203.in-addr.arpa.", RecordType::PTR).await;
    assert_eq!(a.rcode, "NXDOMAIN");
    running.close().await;
}
