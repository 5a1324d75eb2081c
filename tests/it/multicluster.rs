//! `kubernetes … { multicluster }`: the MCS API's names (KEP-1645's DNS specification, schema
//! 1.0.0) from ServiceImports and the EndpointSlices labelled with them, through dig over UDP
//! and TCP; from an objects file and live from the test API server (whose CRD can be missing).

use std::sync::Arc;

use hickory_proto::rr::RecordType;
use serde_json::{Value, json};

use clusterdns::app::App;

use crate::apiserver::ApiServer;
use crate::clients;
use crate::live::{ask, eventually, namespace, service};
use crate::support;

/// The zones Cilium's documentation has operators write: the cluster set's zone beside the
/// cluster's, and `multicluster` naming it.
fn corefile(source: &str, extra: &str) -> String {
    format!(
        ".:0 {{\n    ready 127.0.0.1:0\n    prometheus 127.0.0.1:0\n    kubernetes cluster.local clusterset.local in-addr.arpa ip6.arpa {{\n        {source}\n        pods insecure\n        multicluster clusterset.local\n        fallthrough in-addr.arpa ip6.arpa\n{extra}\n    }}\n}}\n"
    )
}

async fn from_fixture() -> Arc<App> {
    let objects = support::root().join("tests/fixtures/multicluster.yaml");
    let text = corefile(&format!("objects {}", objects.display()), "");
    let running = support::start(&support::root().join("Corefile"), &text).await;
    support::until_ready(&running).await;
    running
}

/// `dig +short` over UDP and TCP: the lines of each, sorted; both must agree.
async fn short(running: &App, qtype: &str, name: &str) -> Vec<String> {
    let port = running.listeners()[0].udp.port();
    let [udp, tcp] = clients::dig_both(port, &["+short", qtype, name]).await;
    let lines = |s: &str| {
        let mut v: Vec<String> = s.lines().map(str::to_string).collect();
        v.sort();
        v
    };
    assert_eq!(
        lines(&udp),
        lines(&tcp),
        "{qtype} {name}: UDP and TCP differ"
    );
    lines(&udp)
}

/// The status dig prints, over UDP and TCP (which must agree).
async fn status(running: &App, qtype: &str, name: &str) -> String {
    let port = running.listeners()[0].udp.port();
    let [udp, tcp] = clients::dig_both(port, &[qtype, name]).await;
    let of = |s: &str| {
        s.split("status: ")
            .nth(1)
            .and_then(|r| r.split(',').next())
            .unwrap_or("no answer")
            .to_string()
    };
    assert_eq!(of(&udp), of(&tcp), "{qtype} {name}: UDP and TCP differ");
    of(&udp)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clusterset_names_are_answered_as_the_mcs_dns_specification_writes_them() {
    let running = from_fixture().await;
    let r = &running;

    // 2.2: the schema version, each zone its own.
    assert_eq!(
        short(r, "TXT", "dns-version.clusterset.local").await,
        ["\"1.0.0\""]
    );
    assert_eq!(
        short(r, "TXT", "dns-version.cluster.local").await,
        ["\"1.1.0\""]
    );

    // 2.3.1: a ClusterSetIP import's name has its ClusterSetIPs, both families.
    assert_eq!(
        short(r, "A", "web.shop.svc.clusterset.local").await,
        ["242.1.0.5"]
    );
    assert_eq!(
        short(r, "AAAA", "web.shop.svc.clusterset.local").await,
        ["fd00:242::5"]
    );
    // 2.3.2: SRV per named port, pointing at the Service's name; the name's own SRV has every
    // port, as a cluster-local Service's does in CoreDNS.
    assert_eq!(
        short(r, "SRV", "_http._tcp.web.shop.svc.clusterset.local").await,
        ["0 50 80 web.shop.svc.clusterset.local."]
    );
    assert_eq!(
        short(r, "SRV", "web.shop.svc.clusterset.local").await,
        [
            "0 25 80 web.shop.svc.clusterset.local.",
            "0 25 9090 web.shop.svc.clusterset.local."
        ]
    );
    // 2.3.3: its PTR, where no cluster-local name has the address...
    assert_eq!(
        short(r, "PTR", "5.0.1.242.in-addr.arpa").await,
        ["web.shop.svc.clusterset.local."]
    );
    assert_eq!(
        short(
            r,
            "PTR",
            "5.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.2.4.2.0.0.0.d.f.ip6.arpa"
        )
        .await,
        ["web.shop.svc.clusterset.local."]
    );
    // ...and the cluster-local one where there is one (one PTR per address).
    assert_eq!(
        short(r, "PTR", "5.20.96.10.in-addr.arpa").await,
        ["cart.shop.svc.cluster.local."]
    );
    assert_eq!(
        short(r, "A", "cart.shop.svc.clusterset.local").await,
        ["10.96.20.5"]
    );
    // 2.3.4: no per-cluster names for a ClusterSetIP import.
    assert_eq!(
        status(r, "A", "east.web.shop.svc.clusterset.local").await,
        "NXDOMAIN"
    );

    // 2.4.1: a headless import's name has every ready endpoint, in every cluster (a slice
    // without a cluster ID included)...
    assert_eq!(
        short(r, "A", "pg.db.svc.clusterset.local").await,
        ["10.1.0.10", "10.2.0.10", "10.2.0.11", "10.3.0.10"]
    );
    // ...and each endpoint its HOSTNAME.CLUSTER name (the hostname, else the dashed IP).
    assert_eq!(
        short(r, "A", "pg-0.east.pg.db.svc.clusterset.local").await,
        ["10.1.0.10"]
    );
    assert_eq!(
        short(r, "A", "pg-0.west.pg.db.svc.clusterset.local").await,
        ["10.2.0.10"]
    );
    assert_eq!(
        short(r, "A", "10-2-0-11.west.pg.db.svc.clusterset.local").await,
        ["10.2.0.11"]
    );
    // An endpoint that is not ready has no name; a cluster's label alone exists, empty.
    assert_eq!(
        status(r, "A", "pg-1.east.pg.db.svc.clusterset.local").await,
        "NXDOMAIN"
    );
    assert_eq!(
        status(r, "A", "east.pg.db.svc.clusterset.local").await,
        "NOERROR"
    );
    assert!(
        short(r, "A", "east.pg.db.svc.clusterset.local")
            .await
            .is_empty()
    );
    // 2.4.2: SRV per endpoint with a name, across clusters.
    assert_eq!(
        short(r, "SRV", "_tcp-postgres._tcp.pg.db.svc.clusterset.local").await,
        [
            "0 33 5432 10-2-0-11.west.pg.db.svc.clusterset.local.",
            "0 33 5432 pg-0.east.pg.db.svc.clusterset.local.",
            "0 33 5432 pg-0.west.pg.db.svc.clusterset.local.",
        ]
    );
    // 2.4.3: PTR to the endpoint's clusterset name, unless the address has a cluster-local
    // one (pg-west is also derived-pg's slice here).
    assert_eq!(
        short(r, "PTR", "10.0.1.10.in-addr.arpa").await,
        ["pg-0.east.pg.db.svc.clusterset.local."]
    );
    assert_eq!(
        short(r, "PTR", "10.0.2.10.in-addr.arpa").await,
        ["pg-0.derived-pg.db.svc.cluster.local."]
    );
    // A headless import without ready endpoints: NXDOMAIN (2.4.1).
    assert_eq!(
        status(r, "A", "empty.db.svc.clusterset.local").await,
        "NXDOMAIN"
    );

    // The zone itself: SOA, NS, namespaces (namespace sameness), nothing else.
    let soa = short(r, "SOA", "clusterset.local").await;
    assert!(
        soa.len() == 1
            && soa[0].starts_with("ns.dns.clusterset.local. hostmaster.clusterset.local."),
        "{soa:?}"
    );
    assert_eq!(
        short(r, "NS", "clusterset.local").await,
        ["ns.dns.clusterset.local."]
    );
    assert_eq!(status(r, "A", "db.svc.clusterset.local").await, "NOERROR");
    assert_eq!(
        status(r, "A", "nope.db.svc.clusterset.local").await,
        "NXDOMAIN"
    );
    assert_eq!(
        status(r, "A", "web.nowhere.svc.clusterset.local").await,
        "NXDOMAIN"
    );
    // No pod names in the cluster set's zone, even with `pods insecure`.
    assert_eq!(
        status(r, "A", "10-1-0-10.db.pod.clusterset.local").await,
        "NXDOMAIN"
    );
    assert_eq!(
        short(r, "A", "10-1-0-10.db.pod.cluster.local").await,
        ["10.1.0.10"]
    );
    // The cluster's own zone is unchanged: no Service is named from an import.
    assert_eq!(
        status(r, "A", "web.shop.svc.cluster.local").await,
        "NXDOMAIN"
    );
    assert_eq!(
        short(r, "A", "pg-0.derived-pg.db.svc.cluster.local").await,
        ["10.2.0.10"]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_multicluster_imports_are_not_read() {
    let objects = support::root().join("tests/fixtures/multicluster.yaml");
    let text = format!(
        ".:0 {{\n    kubernetes cluster.local clusterset.local in-addr.arpa {{\n        objects {}\n    }}\n}}\n",
        objects.display()
    );
    let running = support::start(&support::root().join("Corefile"), &text).await;
    support::until_ready(&running).await;
    // clusterset.local is then a cluster zone like any: Services' names, not imports'.
    assert_eq!(
        status(&running, "A", "web.shop.svc.clusterset.local").await,
        "NXDOMAIN"
    );
    assert_eq!(
        short(&running, "A", "cart.shop.svc.clusterset.local").await,
        ["10.96.20.5"]
    );
    assert_eq!(
        short(&running, "PTR", "5.0.1.242.in-addr.arpa").await,
        Vec::<String>::new()
    );
}

pub fn import(ns: &str, name: &str, kind: &str, ips: &[&str]) -> Value {
    json!({
        "kind": "ServiceImport",
        "metadata": {"name": name, "namespace": ns},
        "spec": {"type": kind, "ips": ips, "ports": [{"name": "http", "port": 80, "protocol": "TCP"}]},
    })
}

fn import_slice(ns: &str, name: &str, import: &str, cluster: &str, ips: &[&str]) -> Value {
    let endpoints: Vec<Value> = ips
        .iter()
        .map(|ip| json!({"addresses": [ip], "conditions": {"ready": true}}))
        .collect();
    json!({
        "kind": "EndpointSlice",
        "metadata": {"name": name, "namespace": ns, "labels": {
            "multicluster.kubernetes.io/service-name": import,
            "multicluster.kubernetes.io/source-cluster": cluster,
        }},
        "addressType": "IPv4",
        "endpoints": endpoints,
        "ports": [{"name": "http", "port": 8080, "protocol": "TCP"}],
    })
}

async fn live(api: &ApiServer, dir: &std::path::Path, extra: &str) -> Arc<App> {
    let kubeconfig = api.kubeconfig(dir);
    let text = corefile(&format!("kubeconfig {}", kubeconfig.display()), extra);
    support::start(&dir.join("Corefile"), &text).await
}

async fn answers(running: &App, name: &str, want: &[&str]) -> bool {
    let (rcode, data) = ask(running, name, RecordType::A).await;
    rcode == "NOERROR" && data == want
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn imports_and_their_slices_are_watched_as_services_are() {
    let api = ApiServer::start().await;
    api.apply_all(vec![
        namespace("shop"),
        service("shop", "cart", "10.96.20.5"),
        import("shop", "web", "ClusterSetIP", &["242.1.0.5"]),
    ]);
    let dir = tempfile::tempdir().unwrap();
    let running = live(&api, dir.path(), "").await;
    support::until_ready(&running).await;
    assert_eq!(
        short(&running, "A", "web.shop.svc.clusterset.local").await,
        ["242.1.0.5"]
    );
    // One list and one watch of ServiceImports, from the watch cache, as for Services.
    let asked: Vec<String> = api
        .requests()
        .into_iter()
        .filter(|r| r.contains("/apis/multicluster.x-k8s.io/v1alpha1/serviceimports"))
        .collect();
    assert!(
        !asked.is_empty() && asked.iter().all(|r| !r.contains("limit=")),
        "{asked:?}"
    );

    api.apply(import("shop", "web", "ClusterSetIP", &["242.1.0.6"]));
    eventually("a changed ClusterSetIP is answered", || {
        answers(&running, "web.shop.svc.clusterset.local", &["242.1.0.6"])
    })
    .await;
    api.apply_all(vec![
        import("shop", "api", "Headless", &[]),
        import_slice("shop", "api-east", "api", "east", &["10.1.0.1"]),
    ]);
    eventually("a headless import's endpoints are answered", || {
        answers(&running, "api.shop.svc.clusterset.local", &["10.1.0.1"])
    })
    .await;
    api.apply(import_slice(
        "shop",
        "api-west",
        "api",
        "west",
        &["10.2.0.1"],
    ));
    eventually("another cluster's slice adds its endpoints", || {
        answers(
            &running,
            "api.shop.svc.clusterset.local",
            &["10.1.0.1", "10.2.0.1"],
        )
    })
    .await;
    eventually("with names of their own", || {
        answers(
            &running,
            "10-2-0-1.west.api.shop.svc.clusterset.local",
            &["10.2.0.1"],
        )
    })
    .await;
    api.delete("EndpointSlice", "shop", "api-east");
    eventually("a deleted slice takes its endpoints", || {
        answers(&running, "api.shop.svc.clusterset.local", &["10.2.0.1"])
    })
    .await;
    api.delete("ServiceImport", "shop", "web");
    eventually("a deleted import is gone", || async {
        ask(&running, "web.shop.svc.clusterset.local", RecordType::A)
            .await
            .0
            == "NXDOMAIN"
    })
    .await;
    // The cluster's names went on as before.
    assert!(answers(&running, "cart.shop.svc.cluster.local", &["10.96.20.5"]).await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cluster_without_the_crd_still_serves_its_own_names() {
    let api = ApiServer::start().await;
    api.set_mcs_crd(false);
    api.apply_all(vec![
        namespace("shop"),
        service("shop", "cart", "10.96.20.5"),
    ]);
    let dir = tempfile::tempdir().unwrap();
    let running = live(&api, dir.path(), "        startup_timeout 1s").await;
    // Ready once startup_timeout passes (the ServiceImport list never succeeds), as CoreDNS.
    support::until_ready(&running).await;
    assert!(answers(&running, "cart.shop.svc.cluster.local", &["10.96.20.5"]).await);
    let metrics = String::from_utf8(running.metrics().render()).unwrap();
    eventually("the missing kind is reported stale", || {
        let metrics = String::from_utf8(running.metrics().render()).unwrap();
        async move {
            metrics.lines().any(|l| {
                l.starts_with("clusterdns_kubernetes_stale_seconds{kind=\"serviceimports\"}")
                    && !l.ends_with(" 0")
            })
        }
    })
    .await;
    drop(metrics);
    // Installing the CRD later is picked up by the watch's next attempt.
    api.set_mcs_crd(true);
    api.apply(import("shop", "web", "ClusterSetIP", &["242.1.0.5"]));
    eventually("the imports arrive once the CRD is there", || {
        answers(&running, "web.shop.svc.clusterset.local", &["242.1.0.5"])
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_multicluster_no_import_is_listed_or_watched() {
    let api = ApiServer::start().await;
    api.apply_all(vec![
        namespace("shop"),
        service("shop", "cart", "10.96.20.5"),
    ]);
    let dir = tempfile::tempdir().unwrap();
    let kubeconfig = api.kubeconfig(dir.path());
    let text = format!(
        ".:0 {{\n    kubernetes cluster.local {{\n        kubeconfig {}\n    }}\n}}\n",
        kubeconfig.display()
    );
    let running = support::start(&dir.path().join("Corefile"), &text).await;
    support::until_ready(&running).await;
    assert!(answers(&running, "cart.shop.svc.cluster.local", &["10.96.20.5"]).await);
    assert!(
        !api.requests().iter().any(|r| r.contains("serviceimports")),
        "{:?}",
        api.requests()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cluster_sets_zone_transfers_whole() {
    let objects = support::root().join("tests/fixtures/multicluster.yaml");
    let text = format!(
        ".:0 {{\n    transfer {{\n        to *\n    }}\n    kubernetes cluster.local clusterset.local in-addr.arpa {{\n        objects {}\n        multicluster\n    }}\n}}\n",
        objects.display()
    );
    let running = support::start(&support::root().join("Corefile"), &text).await;
    support::until_ready(&running).await;
    let port = running.listeners()[0].udp.port();
    let out = tokio::task::spawn_blocking(move || {
        clients::dig(port, &["+noall", "+answer", "AXFR", "clusterset.local"])
    })
    .await
    .unwrap();
    let records: Vec<String> = out
        .lines()
        .filter(|l| !l.is_empty() && !l.starts_with(';'))
        .map(|l| l.split_whitespace().collect::<Vec<_>>().join(" "))
        .collect();
    // SOA first and last, the imports' names between, nothing of cluster.local.
    assert!(
        records.first().is_some_and(|r| r.contains(" SOA "))
            && records.last().is_some_and(|r| r.contains(" SOA ")),
        "{records:?}"
    );
    for want in [
        "web.shop.svc.clusterset.local. 5 IN A 242.1.0.5",
        "pg-0.east.pg.db.svc.clusterset.local. 5 IN A 10.1.0.10",
        "dns-version.clusterset.local. 5 IN TXT \"1.0.0\"",
    ] {
        assert!(records.iter().any(|r| r == want), "{want}: {records:?}");
    }
    assert!(
        records.iter().all(|r| r
            .split(' ')
            .next()
            .is_some_and(|n| n.ends_with("clusterset.local."))),
        "{records:?}"
    );
}
