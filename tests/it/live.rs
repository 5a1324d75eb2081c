//! The live source: clusterdns watching the test Kubernetes API (`apiserver.rs`) through the
//! real kube client, configured by a kubeconfig. Changes, dropped and cut watches, 410 Gone,
//! outages and readiness. (The whole DNS case battery also runs through the API: see
//! `cases::every_case_through_the_kubernetes_api`.)

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use futures_util::StreamExt;
use hickory_proto::op::{Message, ResponseCode};
use hickory_proto::rr::RecordType;
use k8s_openapi::api::core::v1::Service;
use kube::api::{Api, ListParams, WatchEvent, WatchParams};
use serde_json::{Value, json};

use clusterdns::app::App;

use crate::apiserver::{ApiServer, Mode};
use crate::operability::http_get;
use crate::support::{self, rcode_name};

pub fn namespace(name: &str) -> Value {
    json!({"kind": "Namespace", "metadata": {"name": name}})
}

pub fn service(ns: &str, name: &str, ip: &str) -> Value {
    json!({
        "kind": "Service",
        "metadata": {"name": name, "namespace": ns, "labels": {"app": name}},
        "spec": {"clusterIP": ip, "clusterIPs": [ip], "ports": [{"name": "http", "port": 80, "protocol": "TCP"}]},
    })
}

pub fn headless(ns: &str, name: &str) -> Value {
    json!({
        "kind": "Service",
        "metadata": {"name": name, "namespace": ns},
        "spec": {"clusterIP": "None", "clusterIPs": ["None"], "selector": {"app": name},
                 "ports": [{"name": "http", "port": 80, "protocol": "TCP"}]},
    })
}

/// An EndpointSlice of `svc` with ready endpoints at `ips`, stamped with the time of the change
/// behind it as the EndpointSlice controller does.
pub fn slice(ns: &str, svc: &str, name: &str, ips: &[&str]) -> Value {
    let endpoints: Vec<Value> = ips
        .iter()
        .map(|ip| json!({"addresses": [ip], "conditions": {"ready": true}}))
        .collect();
    let now = k8s_openapi::jiff::Timestamp::now().to_string();
    json!({
        "kind": "EndpointSlice",
        "metadata": {
            "name": name, "namespace": ns,
            "labels": {"kubernetes.io/service-name": svc},
            "annotations": {"endpoints.kubernetes.io/last-change-trigger-time": now},
        },
        "addressType": "IPv4",
        "endpoints": endpoints,
        "ports": [{"name": "http", "port": 8080, "protocol": "TCP"}],
    })
}

/// A server for a cluster on the test API, with `ready` and `prometheus` on a port of their own.
pub async fn start(api: &ApiServer, dir: &std::path::Path, extra: &str) -> Arc<App> {
    let kubeconfig = api.kubeconfig(dir);
    let corefile = format!(
        ".:0 {{\n    ready 127.0.0.1:0\n    prometheus 127.0.0.1:0\n    errors\n    kubernetes cluster.local in-addr.arpa ip6.arpa {{\n        kubeconfig {}\n{extra}\n    }}\n}}\n",
        kubeconfig.display()
    );
    support::start(&dir.join("Corefile"), &corefile).await
}

/// The answer's rcode and its records' data, sorted.
pub async fn ask(running: &App, name: &str, qtype: RecordType) -> (String, Vec<String>) {
    let port = running.listeners()[0].port;
    let q = support::query(name, qtype, None).to_vec().unwrap();
    let Some(bytes) = support::ask(running, port, &q, clusterdns::plugin::Transport::Udp).await
    else {
        return ("no answer".into(), Vec::new());
    };
    let msg = Message::from_vec(&bytes).expect("answer parses");
    let mut data: Vec<String> = msg.answers.iter().map(|r| r.data.to_string()).collect();
    data.sort();
    (rcode_name(msg.metadata.response_code), data)
}

/// Polls `check` until it is true (every 10 ms, at most 60 s); panics with `what` otherwise.
pub async fn eventually<F, Fut>(what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let bound: usize = std::env::var("EVENTUALLY_MS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(60_000)
        / 10;
    for _ in 0..bound {
        if check().await {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("never happened: {what}");
}

async fn answers(running: &App, name: &str, want: &[&str]) -> bool {
    let (rcode, data) = ask(running, name, RecordType::A).await;
    rcode == "NOERROR" && data == want
}

async fn nxdomain(running: &App, name: &str) -> bool {
    ask(running, name, RecordType::A).await.0 == "NXDOMAIN"
}

fn ready_addr(running: &App) -> SocketAddr {
    running.http_addr("127.0.0.1:0").expect("ready listener")
}

fn metrics(running: &App) -> String {
    String::from_utf8(running.metrics().render()).unwrap()
}

/// `clusterdns_kubernetes_stale_seconds` of namespaces, services and endpointslices.
fn stale_seconds(running: &App) -> Vec<Option<f64>> {
    let m = metrics(running);
    ["namespaces", "services", "endpointslices"]
        .iter()
        .map(|k| {
            sample(
                &m,
                &format!("clusterdns_kubernetes_stale_seconds{{kind=\"{k}\"}}"),
            )
        })
        .collect()
}

/// The value of the sample whose line starts with `prefix`.
fn sample(text: &str, prefix: &str) -> Option<f64> {
    text.lines()
        .find(|l| l.starts_with(prefix))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
}

async fn small_cluster() -> ApiServer {
    let api = ApiServer::start().await;
    api.apply_all(vec![
        namespace("default"),
        namespace("shop"),
        service("default", "kubernetes", "10.96.0.1"),
        service("shop", "web", "10.96.0.10"),
    ]);
    api
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn creates_updates_and_deletes_reach_the_answers() {
    let api = small_cluster().await;
    let dir = tempfile::tempdir().unwrap();
    let running = start(&api, dir.path(), "").await;
    support::until_ready(&running).await;
    assert!(answers(&running, "web.shop.svc.cluster.local.", &["10.96.0.10"]).await);

    api.apply(service("shop", "cart", "10.96.0.11"));
    eventually("a new Service resolves", || {
        answers(&running, "cart.shop.svc.cluster.local.", &["10.96.0.11"])
    })
    .await;
    api.apply(service("shop", "web", "10.96.0.20"));
    eventually("an updated cluster IP is answered", || {
        answers(&running, "web.shop.svc.cluster.local.", &["10.96.0.20"])
    })
    .await;
    eventually("the reverse name follows", || async {
        ask(&running, "20.0.96.10.in-addr.arpa.", RecordType::PTR).await
            == ("NOERROR".into(), vec!["web.shop.svc.cluster.local.".into()])
    })
    .await;
    api.delete("Service", "shop", "web");
    eventually("a deleted Service is gone", || {
        nxdomain(&running, "web.shop.svc.cluster.local.")
    })
    .await;
    api.delete("Namespace", "", "shop");
    eventually("a deleted namespace takes its names", || {
        nxdomain(&running, "cart.shop.svc.cluster.local.")
    })
    .await;
    // Only what the stock system:coredns ClusterRole grants: list and watch of four kinds; and
    // `/version`, which system:public-info-viewer grants everyone.
    for r in api.requests() {
        let path = r
            .strip_prefix("GET ")
            .unwrap_or_else(|| panic!("not a GET: {r}"));
        let path = path.split('?').next().unwrap();
        let allowed = [
            "/version",
            "/api/v1/namespaces",
            "/api/v1/services",
            "/api/v1/pods",
            "/apis/discovery.k8s.io/v1/endpointslices",
        ]
        .contains(&path);
        assert!(allowed, "{r}");
    }
    let m = metrics(&running);
    assert_eq!(
        sample(&m, "clusterdns_kubernetes_objects{kind=\"services\"}"),
        Some(2.0),
        "{m}"
    );
    assert_eq!(
        sample(&m, "clusterdns_kubernetes_objects{kind=\"namespaces\"}"),
        Some(1.0)
    );
    running.shutdown().await;
}

/// `endpoint URL` instead of a kubeconfig (here without `tls`: the test server speaks HTTP).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_endpoint_url_is_enough() {
    let api = small_cluster().await;
    let dir = tempfile::tempdir().unwrap();
    let corefile = format!(
        ".:0 {{\n    kubernetes cluster.local {{\n        endpoint http://{}\n    }}\n}}\n",
        api.addr
    );
    let running = support::start(&dir.path().join("Corefile"), &corefile).await;
    support::until_ready(&running).await;
    assert!(answers(&running, "web.shop.svc.cluster.local.", &["10.96.0.10"]).await);
    running.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_headless_services_endpoints_follow_its_slices() {
    let api = small_cluster().await;
    api.apply_all(vec![
        headless("shop", "db"),
        slice("shop", "db", "db-abc", &["10.1.0.1", "10.1.0.2"]),
    ]);
    let dir = tempfile::tempdir().unwrap();
    let running = start(&api, dir.path(), "").await;
    support::until_ready(&running).await;
    let name = "db.shop.svc.cluster.local.";
    assert!(answers(&running, name, &["10.1.0.1", "10.1.0.2"]).await);

    api.apply(slice("shop", "db", "db-abc", &["10.1.0.2", "10.1.0.3"]));
    eventually("a changed slice changes the answer", || {
        answers(&running, name, &["10.1.0.2", "10.1.0.3"])
    })
    .await;
    api.apply(slice("shop", "db", "db-def", &["10.1.0.9"]));
    eventually("a second slice adds its endpoints", || {
        answers(&running, name, &["10.1.0.2", "10.1.0.3", "10.1.0.9"])
    })
    .await;
    api.delete("EndpointSlice", "shop", "db-abc");
    eventually("a deleted slice takes its endpoints", || {
        answers(&running, name, &["10.1.0.9"])
    })
    .await;
    // CoreDNS's programming-latency histogram saw the two watched slice changes (not the
    // deletion, which carries no new trigger time).
    let m = metrics(&running);
    assert_eq!(
        sample(
            &m,
            "coredns_kubernetes_dns_programming_duration_seconds_count{service_kind=\"headless_with_selector\"}"
        ),
        Some(2.0),
        "{m}"
    );
    // CoreDNS's buckets: ExponentialBuckets(0.001, 2, 20), 1 ms to about 9 minutes.
    let les: Vec<&str> = m
        .lines()
        .filter(|l| l.starts_with("coredns_kubernetes_dns_programming_duration_seconds_bucket{"))
        .filter_map(|l| l.split("le=\"").nth(1)?.split('"').next())
        .collect();
    assert_eq!(les.len(), 21, "{les:?}");
    assert_eq!((les[0], les[19], les[20]), ("0.001", "524.288", "+Inf"));
    running.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cut_watches_reconnect_and_catch_up() {
    let api = small_cluster().await;
    let dir = tempfile::tempdir().unwrap();
    let running = start(&api, dir.path(), "").await;
    support::until_ready(&running).await;
    let watches_before = api
        .requests()
        .iter()
        .filter(|r| r.contains("watch=true"))
        .count();
    for round in 0..3 {
        api.drop_watches();
        let ip = format!("10.96.1.{round}");
        api.apply(service("shop", "web", &ip));
        api.apply(service("shop", &format!("new{round}"), "10.96.2.1"));
        eventually("changes made as the watches were cut arrive", || async {
            answers(&running, "web.shop.svc.cluster.local.", &[&ip]).await
                && answers(
                    &running,
                    &format!("new{round}.shop.svc.cluster.local."),
                    &["10.96.2.1"],
                )
                .await
        })
        .await;
    }
    let watches_after = api
        .requests()
        .iter()
        .filter(|r| r.contains("watch=true"))
        .count();
    assert!(
        watches_after > watches_before,
        "no new watch after the cuts: {:#?}",
        api.requests()
    );
    running.shutdown().await;
}

/// A watch that ends cleanly (its timeout) is resumed from the last version; when that version
/// has been compacted the server says 410 Gone, and the relist must apply what was deleted
/// meanwhile.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gone_relists_and_applies_the_deletions_it_missed() {
    let api = small_cluster().await;
    api.apply(service("shop", "cart", "10.96.0.11"));
    let dir = tempfile::tempdir().unwrap();
    let running = start(&api, dir.path(), "").await;
    support::until_ready(&running).await;
    assert!(answers(&running, "cart.shop.svc.cluster.local.", &["10.96.0.11"]).await);

    // The watches go silent; meanwhile a Service is deleted and another added, and the history
    // that told of it is compacted away.
    api.set_mode(Mode::Hung);
    api.delete("Service", "shop", "cart");
    api.apply(service("shop", "till", "10.96.0.12"));
    api.expire_history();
    api.end_watches();
    // While the API is hung, the old answers stand.
    assert!(answers(&running, "cart.shop.svc.cluster.local.", &["10.96.0.11"]).await);
    api.set_mode(Mode::Up);
    eventually("the relist applies the deletion", || {
        nxdomain(&running, "cart.shop.svc.cluster.local.")
    })
    .await;
    eventually("and the addition", || {
        answers(&running, "till.shop.svc.cluster.local.", &["10.96.0.12"])
    })
    .await;
    assert!(
        api.gone_sent() > 0,
        "no 410 was sent: {:#?}",
        api.requests()
    );
    // Unchanged names were never lost.
    assert!(answers(&running, "web.shop.svc.cluster.local.", &["10.96.0.10"]).await);
    running.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_outage_serves_the_last_data_then_catches_up() {
    let api = small_cluster().await;
    let dir = tempfile::tempdir().unwrap();
    let running = start(&api, dir.path(), "").await;
    support::until_ready(&running).await;

    api.set_mode(Mode::Down);
    // The cluster changes while clusterdns cannot see it.
    api.delete("Service", "shop", "web");
    api.apply(service("shop", "cart", "10.96.0.11"));
    eventually("the outage is noticed and shown as a metric", || async {
        sample(
            &metrics(&running),
            "clusterdns_kubernetes_stale_seconds{kind=\"services\"}",
        )
        .is_some_and(|v| v > 0.0)
    })
    .await;
    // Three seconds of outage and 500s: answers keep coming from the last data, and the server
    // stays ready (a kube-system probe must not pull every replica out at once).
    for i in 0..30 {
        if i == 15 {
            api.set_mode(Mode::Failing);
        }
        assert!(answers(&running, "web.shop.svc.cluster.local.", &["10.96.0.10"]).await);
        assert!(running.is_ready());
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    api.set_mode(Mode::Up);
    eventually("catches up when the API is back", || async {
        nxdomain(&running, "web.shop.svc.cluster.local.").await
            && answers(&running, "cart.shop.svc.cluster.local.", &["10.96.0.11"]).await
    })
    .await;
    eventually("the stale metric goes back to 0", || async {
        stale_seconds(&running).iter().all(|v| *v == Some(0.0))
    })
    .await;
    running.shutdown().await;
}

/// After an outage of 500s and then of requests that hang (the two shapes an API outage takes),
/// clusterdns catches up from where its watches were: while the API is down only one cheap
/// probe (`GET /version`) asks it, and once it answers every kind resumes its watch from the
/// last resourceVersion, with no list. Checked in the test server's terms (the recovery event,
/// then the requests and the first correct answer), not by the clock: `bench/live.rs --outage`
/// measures how long the catch-up takes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_an_outage_the_watches_resume_without_a_list() {
    let api = small_cluster().await;
    let dir = tempfile::tempdir().unwrap();
    let running = start(&api, dir.path(), "").await;
    support::until_ready(&running).await;
    let before = api.requests().len();
    api.set_mode(Mode::Failing);
    eventually("the outage is noticed", || async {
        stale_seconds(&running)
            .iter()
            .all(|v| v.is_some_and(|s| s > 0.0))
    })
    .await;
    // Created while clusterdns cannot see the API.
    api.apply(service("shop", "cart", "10.96.0.11"));
    // A while of errors (the probe fails and asks again), then of requests that hang.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    api.set_mode(Mode::Hung);
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(answers(&running, "web.shop.svc.cluster.local.", &["10.96.0.10"]).await);
    let at = api.recover();
    eventually("the Service made during the outage answers", || async {
        answers(&running, "cart.shop.svc.cluster.local.", &["10.96.0.11"]).await
    })
    .await;
    eventually("the stale metric goes back to 0", || async {
        stale_seconds(&running).iter().all(|v| *v == Some(0.0))
    })
    .await;
    let log = api.requests();
    let (during, after) = (&log[before..at], &log[at..]);
    let probes = |rs: &[String]| rs.iter().filter(|r| r.contains(" /version")).count();
    // During the outage: each kind's one failed re-watch, and probes; no kind retried on its
    // own while the probe found the API down.
    let watched = during.len() - probes(during);
    assert!(
        (3..=6).contains(&watched),
        "requests other than probes during the outage: {during:#?}"
    );
    assert!(probes(during) >= 2, "the probe asked again: {during:#?}");
    // After it: the watches resumed from a resourceVersion; nothing listed.
    let lists: Vec<&String> = after
        .iter()
        .filter(|r| !r.contains(" /version") && !r.contains("watch=true"))
        .collect();
    assert!(lists.is_empty(), "listed after the outage: {after:#?}");
    assert!(
        after
            .iter()
            .any(|r| r.contains("/services?") && r.contains("resourceVersion=")),
        "services' watch resumed from its version: {after:#?}"
    );
    running.shutdown().await;
}

/// An API server that answers 503 (all of them down behind a load balancer) is an outage at
/// once, not after the kube client's own retries of 503 (minutes of them): clusterdns asks
/// without them and retries in its watch loop, which says what it sees. (With those retries on,
/// `an_outage_serves_the_last_data_then_catches_up` failed now and then: a re-watch that went
/// out on a kept-alive connection met 503s and was retried silently past the test's minute.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_api_answering_503_is_an_outage_at_once() {
    let api = small_cluster().await;
    let dir = tempfile::tempdir().unwrap();
    let running = start(&api, dir.path(), "").await;
    support::until_ready(&running).await;
    api.set_mode(Mode::Unavailable);
    eventually("the outage is noticed and shown as a metric", || async {
        stale_seconds(&running)
            .iter()
            .all(|v| v.is_some_and(|v| v > 0.0))
    })
    .await;
    assert!(answers(&running, "web.shop.svc.cluster.local.", &["10.96.0.10"]).await);
    api.set_mode(Mode::Up);
    eventually("the stale metric goes back to 0", || async {
        sample(
            &metrics(&running),
            "clusterdns_kubernetes_stale_seconds{kind=\"services\"}",
        ) == Some(0.0)
    })
    .await;
    running.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ready_is_503_until_every_kind_is_listed() {
    let api = small_cluster().await;
    api.set_mode(Mode::Hung);
    let dir = tempfile::tempdir().unwrap();
    let running = start(&api, dir.path(), "        startup_timeout 1h").await;
    let addr = ready_addr(&running);
    for _ in 0..10 {
        let (code, body) = http_get(addr, "/ready").await.expect("ready answers");
        assert_eq!(code, 503, "{body}");
        assert!(body.contains("kubernetes"), "{body}");
        // Before the first list, a cluster name is SERVFAIL, not an NXDOMAIN to be cached.
        let (rcode, _) = ask(&running, "web.shop.svc.cluster.local.", RecordType::A).await;
        assert_eq!(rcode, rcode_name(ResponseCode::ServFail));
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    api.set_mode(Mode::Up);
    eventually("ready once listed", || async {
        http_get(addr, "/ready")
            .await
            .is_some_and(|(c, _)| c == 200)
    })
    .await;
    assert!(answers(&running, "web.shop.svc.cluster.local.", &["10.96.0.10"]).await);
    running.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn startup_timeout_makes_it_ready_without_the_api() {
    let api = small_cluster().await;
    api.set_mode(Mode::Hung);
    let dir = tempfile::tempdir().unwrap();
    let running = start(&api, dir.path(), "        startup_timeout 1s").await;
    let addr = ready_addr(&running);
    let (code, _) = http_get(addr, "/ready").await.expect("ready answers");
    assert_eq!(code, 503);
    eventually("ready once startup_timeout has passed", || async {
        http_get(addr, "/ready")
            .await
            .is_some_and(|(c, _)| c == 200)
    })
    .await;
    // Then it answers from what it has (nothing yet): NXDOMAIN, as CoreDNS.
    assert!(nxdomain(&running, "web.shop.svc.cluster.local.").await);
    api.set_mode(Mode::Up);
    eventually("and catches up when the API answers", || {
        answers(&running, "web.shop.svc.cluster.local.", &["10.96.0.10"])
    })
    .await;
    running.shutdown().await;
}

/// `labels` and `namespaces` become server-side selectors: the API sends only what is served.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn filters_are_sent_to_the_api() {
    let api = small_cluster().await;
    api.apply(service("shop", "cart", "10.96.0.11"));
    let dir = tempfile::tempdir().unwrap();
    let running = start(
        &api,
        dir.path(),
        "        namespaces shop\n        labels app=cart",
    )
    .await;
    support::until_ready(&running).await;
    assert!(answers(&running, "cart.shop.svc.cluster.local.", &["10.96.0.11"]).await);
    assert!(nxdomain(&running, "web.shop.svc.cluster.local.").await);
    assert!(nxdomain(&running, "kubernetes.default.svc.cluster.local.").await);
    let requests = api.requests();
    let services: Vec<&String> = requests
        .iter()
        .filter(|r| r.contains("/services"))
        .collect();
    assert!(!services.is_empty());
    for r in &services {
        assert!(
            r.contains("/api/v1/namespaces/shop/services")
                && r.contains("labelSelector=app%3Dcart"),
            "{r}"
        );
    }
    assert!(
        requests.iter().any(|r| r.contains("/api/v1/namespaces?")
            && r.contains("fieldSelector=metadata.name%3Dshop")),
        "{requests:#?}"
    );
    running.shutdown().await;
}

/// A large cluster is listed the cheap ways, never page by page from etcd: streaming lists
/// (the objects one by one from the watch cache) where the server offers them; where it refuses
/// them (1.33, whose WatchList gate is off by default, answers 422) or cannot have them (before
/// 1.27), one `resourceVersion=0` list per kind from the watch cache, as client-go asks.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_large_cluster_is_listed_from_the_watch_cache() {
    for (minor, streaming) in [(34, true), (33, false), (26, false)] {
        let api = small_cluster().await;
        api.set_version(minor, streaming);
        let many: Vec<Value> = (0..1200)
            .map(|i| {
                service(
                    "shop",
                    &format!("s{i}"),
                    &format!("10.97.{}.{}", i / 250, i % 250),
                )
            })
            .collect();
        api.apply_all(many);
        let dir = tempfile::tempdir().unwrap();
        let running = start(&api, dir.path(), "").await;
        support::until_ready(&running).await;
        // More than a batch of a first list (applied as it comes): the first and last of them.
        assert!(answers(&running, "s0.shop.svc.cluster.local.", &["10.97.0.0"]).await);
        assert!(answers(&running, "s1199.shop.svc.cluster.local.", &["10.97.4.199"]).await);
        let requests = api.requests();
        let served = api.served();
        let case = format!("1.{minor}: {served:?}\n{requests:#?}");
        assert_eq!(served.etcd_pages, 0, "{case}");
        let lists: Vec<&String> = requests
            .iter()
            .filter(|r| r.contains("/api") && !r.contains("watch=true"))
            .collect();
        let streamed = requests
            .iter()
            .filter(|r| r.contains("sendInitialEvents=true"))
            .count();
        // Namespaces, Services and EndpointSlices (Pods only under `pods verified`).
        match minor {
            34 => {
                assert!(lists.is_empty(), "{case}");
                assert_eq!(streamed, 3, "{case}");
            }
            33 => {
                assert_eq!(streamed, 3, "{case}");
                assert_eq!(served.cache_lists, 3, "{case}");
            }
            _ => {
                assert_eq!(streamed, 0, "{case}");
                assert_eq!(served.cache_lists, 3, "{case}");
            }
        }
        for r in lists {
            assert!(
                r.contains("resourceVersion=0")
                    && !r.contains("limit=")
                    && !r.contains("continue="),
                "{r}"
            );
        }
        running.shutdown().await;
    }
}

// The test server itself, against the kube client directly: the parts of the protocol the
// watcher above does not reach on its own.

fn client(api: &ApiServer) -> kube::Client {
    let config = kube::Config::new(format!("http://{}", api.addr).parse().unwrap());
    kube::Client::try_from(config).unwrap()
}

/// What each kind of list costs the server: a `limit` without a version reads etcd a page at a
/// time; `resourceVersion=0` is one answer from the watch cache, whatever the `limit`.
#[tokio::test]
async fn the_test_server_charges_etcd_pages_and_serves_version_zero_from_its_cache() {
    use k8s_openapi::api::core::v1::Service;
    use kube::api::{Api, ListParams};
    let api = ApiServer::start().await;
    api.apply_all(
        (0..25)
            .map(|i| service("shop", &format!("s{i}"), &format!("10.97.0.{i}")))
            .collect(),
    );
    let services: Api<Service> = Api::all(client(&api));
    let mut token: Option<String> = None;
    let mut seen = 0;
    loop {
        let mut lp = ListParams::default().limit(10);
        if let Some(t) = &token {
            lp = lp.continue_token(t);
        }
        let page = services.list(&lp).await.unwrap();
        seen += page.items.len();
        token = page.metadata.continue_.filter(|t| !t.is_empty());
        if token.is_none() {
            break;
        }
    }
    assert_eq!(seen, 25);
    let paged = api.served();
    assert_eq!(
        (paged.etcd_pages, paged.etcd_objects, paged.cache_lists),
        (3, 25, 0)
    );
    // kube sends resourceVersion=0 only without a limit; with one, the server would ignore it.
    let whole = services
        .list(&ListParams::default().match_any())
        .await
        .unwrap();
    assert_eq!(whole.items.len(), 25);
    assert!(whole.metadata.continue_.is_none_or(|c| c.is_empty()));
    let after = api.served();
    assert_eq!((after.etcd_pages, after.cache_lists), (3, 1));
    assert!(after.bytes > paged.bytes);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_test_api_server_speaks_list_and_watch() {
    let api = small_cluster().await;
    for i in 0..5 {
        api.apply(service("shop", &format!("p{i}"), "10.96.3.1"));
    }
    let services: Api<Service> = Api::all(client(&api));

    // Pages: a continue token reads the snapshot of the first page.
    let first = services
        .list(&ListParams::default().limit(3))
        .await
        .unwrap();
    assert_eq!(first.items.len(), 3);
    let token = first.metadata.continue_.clone().expect("a continue token");
    api.apply(service("shop", "a-late-one", "10.96.3.2"));
    let rest = services
        .list(&ListParams::default().limit(100).continue_token(&token))
        .await
        .unwrap();
    let names: Vec<String> = first
        .items
        .iter()
        .chain(&rest.items)
        .filter_map(|s| s.metadata.name.clone())
        .collect();
    assert_eq!(names.len(), 7, "{names:?}");
    assert!(!names.contains(&"a-late-one".to_string()));
    // Selectors.
    let web = services
        .list(&ListParams::default().labels("app in (web, p1)"))
        .await
        .unwrap();
    assert_eq!(web.items.len(), 2);
    let shop = services
        .list(&ListParams::default().fields("metadata.namespace=shop,metadata.name!=web"))
        .await
        .unwrap();
    assert_eq!(shop.items.len(), 6);

    // Compaction: the old token and the old version are gone.
    let rv = first.metadata.resource_version.clone().unwrap();
    api.expire_history();
    let err = services
        .list(&ListParams::default().limit(100).continue_token(&token))
        .await
        .unwrap_err();
    assert!(
        matches!(&err, kube::Error::Api(s) if s.code == 410),
        "{err:?}"
    );
    let mut stream = services
        .watch(&WatchParams::default(), &rv)
        .await
        .unwrap()
        .boxed();
    match stream.next().await {
        Some(Ok(WatchEvent::Error(e))) => assert_eq!(e.code, 410),
        other => panic!("expected 410 Gone, got {other:?}"),
    }

    // A watch from now: events, then bookmarks, then the clean end of timeoutSeconds.
    let now = api.resource_version().to_string();
    let mut stream = services
        .watch(&WatchParams::default().timeout(3), &now)
        .await
        .unwrap()
        .boxed();
    api.apply(service("shop", "w", "10.96.3.3"));
    api.delete("Service", "shop", "w");
    let mut seen = Vec::new();
    while let Some(ev) = stream.next().await {
        seen.push(match ev.unwrap() {
            WatchEvent::Added(s) => format!("ADDED {}", s.metadata.name.unwrap()),
            WatchEvent::Deleted(s) => format!("DELETED {}", s.metadata.name.unwrap()),
            WatchEvent::Modified(s) => format!("MODIFIED {}", s.metadata.name.unwrap()),
            WatchEvent::Bookmark(_) => "BOOKMARK".into(),
            WatchEvent::Error(e) => format!("ERROR {}", e.code),
        });
    }
    assert_eq!(seen[..2], ["ADDED w", "DELETED w"], "{seen:?}");
    assert!(
        seen[2..].iter().all(|e| e == "BOOKMARK") && seen.len() > 2,
        "{seen:?}"
    );

    // A streaming list: the state as ADDED events, then the bookmark that ends them.
    let mut stream = services
        .watch(&WatchParams::streaming_lists().timeout(2), "0")
        .await
        .unwrap()
        .boxed();
    let mut added = 0;
    loop {
        match stream.next().await {
            Some(Ok(WatchEvent::Added(_))) => added += 1,
            Some(Ok(WatchEvent::Bookmark(b))) => {
                assert!(
                    b.metadata
                        .annotations
                        .contains_key("k8s.io/initial-events-end")
                );
                break;
            }
            other => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!(added, 8);
    let sent = api.requests();
    assert!(
        sent.iter().any(|r| r.contains("sendInitialEvents=true")),
        "{sent:#?}"
    );
}

/// CoreDNS 1.14's `apiserver_qps`, `apiserver_burst` and `apiserver_max_inflight` are real
/// limits on the client, as the test server counts them: with one request in flight allowed,
/// it never sees two at once (even while it hangs them all); with 2 a second and bursts of 1,
/// the requests to sync come at least half a second apart.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn apiserver_limits_hold_on_the_client() {
    let api = small_cluster().await;
    api.set_mode(Mode::Hung);
    let dir = tempfile::tempdir().unwrap();
    let running = start(&api, dir.path(), "        apiserver_max_inflight 1").await;
    // Everything the source asks at start hangs: the first request only has gone out.
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(api.inflight(), (1, 1), "{:?}", api.requests());
    api.set_mode(Mode::Up);
    support::until_ready(&running).await;
    assert!(answers(&running, "web.shop.svc.cluster.local.", &["10.96.0.10"]).await);
    assert_eq!(api.inflight().1, 1, "{:?}", api.requests());
    running.shutdown().await;

    let api = small_cluster().await;
    let dir = tempfile::tempdir().unwrap();
    let running = start(
        &api,
        dir.path(),
        "        apiserver_qps 2\n        apiserver_burst 1",
    )
    .await;
    support::until_ready(&running).await;
    let times = api.request_times();
    assert!(times.len() >= 4, "{:?}", api.requests());
    let spread = times[times.len() - 1].duration_since(times[0]);
    // n requests at 2 a second, one at a time: at least (n - 1) / 2 seconds from first to last.
    let least = Duration::from_millis(500) * (times.len() as u32 - 1);
    assert!(
        spread >= least.mul_f64(0.9),
        "{} requests in {spread:?}: {:?}",
        times.len(),
        api.requests()
    );
    running.shutdown().await;
}
