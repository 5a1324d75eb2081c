//! `autopath @kubernetes`: a pod's search path walked by the server, the answer given under the
//! name the pod asked.

use std::net::Ipv4Addr;
use std::path::Path;

use hickory_proto::op::Message;
use hickory_proto::rr::RecordType;

use clusterdns::app::App;
use clusterdns::plugin::Transport;

use crate::clients;
use crate::support;
use crate::upstream::FakeUpstream;

/// The test's client, 127.0.0.1, as a pod in namespace `shop`.
const CLIENT_POD: &str = "apiVersion: v1\nkind: Pod\nmetadata: {name: client, namespace: shop}\nspec: {containers: [{name: c, image: nicolaka/netshoot}]}\nstatus: {phase: App, podIP: 127.0.0.1, podIPs: [{ip: 127.0.0.1}]}\n";

async fn server(dir: &Path, with_client: bool, up: &FakeUpstream) -> std::sync::Arc<App> {
    let client: &[(&str, &str)] = if with_client {
        &[("client.yaml", CLIENT_POD)]
    } else {
        &[]
    };
    let objects = support::demo_objects(dir, client);
    let corefile = format!(
        ".:0 {{\n    errors\n    autopath @kubernetes\n    kubernetes cluster.local in-addr.arpa ip6.arpa {{\n        objects {}\n        pods verified\n        fallthrough in-addr.arpa ip6.arpa\n    }}\n    forward . {}\n}}\n",
        objects.display(),
        up.addr
    );
    let running = support::start(&dir.join("Corefile"), &corefile).await;
    support::until_ready(&running).await;
    running
}

async fn ask(running: &App, name: &str) -> (String, Vec<String>) {
    let q = support::query(name, RecordType::A, Some(1232))
        .to_vec()
        .unwrap();
    let port = running.listeners()[0].port;
    let bytes = support::ask(running, port, &q, Transport::Udp)
        .await
        .unwrap();
    let msg = Message::from_vec(&bytes).unwrap();
    let answers = msg
        .answers
        .iter()
        .map(|r| format!("{} {} {}", r.name, r.record_type(), r.data))
        .collect();
    (support::rcode_name(msg.metadata.response_code), answers)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pods_search_path_is_walked_for_it() {
    let up = FakeUpstream::start(Ipv4Addr::new(192, 0, 2, 1)).await;
    let dir = tempfile::tempdir().unwrap();
    let running = server(dir.path(), true, &up).await;
    // The first name of the walk exists: answered as is.
    let (rcode, answers) = ask(&running, "frontend.shop.svc.cluster.local.").await;
    assert_eq!(rcode, "NOERROR");
    assert_eq!(answers, ["frontend.shop.svc.cluster.local. A 10.96.12.34"]);
    // `kubernetes.default` from a pod in `shop`: found at the second step, under a CNAME from the
    // name asked.
    let (rcode, answers) = ask(&running, "kubernetes.default.shop.svc.cluster.local.").await;
    assert_eq!(rcode, "NOERROR");
    assert_eq!(
        answers,
        [
            "kubernetes.default.shop.svc.cluster.local. CNAME kubernetes.default.svc.cluster.local.",
            "kubernetes.default.svc.cluster.local. A 10.96.0.1"
        ]
    );
    // An outside name: the walk ends bare, through forward.
    let (_, answers) = ask(&running, "www.example.net.shop.svc.cluster.local.").await;
    assert_eq!(
        answers,
        [
            "www.example.net.shop.svc.cluster.local. CNAME www.example.net.",
            "www.example.net. A 192.0.2.1"
        ]
    );
    // Nothing anywhere (the upstream denies `nx…`): the first step's NXDOMAIN goes back.
    let (rcode, answers) = ask(&running, "nx-nothing.shop.svc.cluster.local.").await;
    assert_eq!((rcode.as_str(), answers.len()), ("NXDOMAIN", 0));
    // Not under the first search domain: no autopath.
    let (rcode, _) = ask(&running, "kubernetes.default.db.svc.cluster.local.").await;
    assert_eq!(rcode, "NXDOMAIN");
    let metrics = String::from_utf8(running.metrics().render()).unwrap();
    let line = metrics
        .lines()
        .find(|l| l.starts_with("coredns_autopath_success_total{"))
        .unwrap_or_else(|| panic!("{metrics}"));
    assert!(line.ends_with(" 3"), "{line}");

    assert!(clients::have("dig"), "dig is missing (.ci/run installs it)");
    let port = running.listeners()[0].udp.port();
    let out = tokio::task::spawn_blocking(move || {
        clients::dig(
            port,
            &["+short", "kubernetes.default.shop.svc.cluster.local"],
        )
    })
    .await
    .unwrap();
    assert_eq!(
        out.trim(),
        "kubernetes.default.svc.cluster.local.\n10.96.0.1"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_is_no_pod_walks_its_own_path() {
    let up = FakeUpstream::start(Ipv4Addr::new(192, 0, 2, 1)).await;
    let dir = tempfile::tempdir().unwrap();
    let running = server(dir.path(), false, &up).await;
    let (rcode, answers) = ask(&running, "kubernetes.default.shop.svc.cluster.local.").await;
    assert_eq!((rcode.as_str(), answers.len()), ("NXDOMAIN", 0));
}

/// CoreDNS 1.14's fixes, as `acl` and `autopath` and `cache` meet here: a name the client may
/// not ask is not reached through its search path (#8290), and an answer the cache keeps for
/// one client is not given to a client `acl` blocks (#8289). Through `dig` and in-process.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acl_holds_for_the_search_path_and_the_cache() {
    let up = FakeUpstream::start(Ipv4Addr::new(192, 0, 2, 1)).await;
    let dir = tempfile::tempdir().unwrap();
    let objects = support::demo_objects(dir.path(), &[("client.yaml", CLIENT_POD)]);
    let corefile = format!(
        ".:0 {{\n    acl blocked.example {{\n        block net 127.0.0.1/32\n    }}\n    cache 30\n    autopath @kubernetes\n    kubernetes cluster.local in-addr.arpa ip6.arpa {{\n        objects {}\n        pods verified\n        fallthrough in-addr.arpa ip6.arpa\n    }}\n    forward . {}\n}}\n",
        objects.display(),
        up.addr
    );
    let running = support::start(&dir.path().join("Corefile"), &corefile).await;
    support::until_ready(&running).await;
    // The pod (127.0.0.1) may not ask blocked.example: not directly…
    let (rcode, _) = ask(&running, "blocked.example.").await;
    assert_eq!(rcode, "REFUSED");
    // …nor through its search path: the walk stops, and the pod gets the answer to its own
    // question, as without autopath.
    let (rcode, answers) = ask(&running, "blocked.example.shop.svc.cluster.local.").await;
    assert_eq!(
        (rcode.as_str(), answers.len()),
        ("NXDOMAIN", 0),
        "{answers:?}"
    );
    // Another name is walked as before.
    let (rcode, answers) = ask(&running, "allowed.example.shop.svc.cluster.local.").await;
    assert_eq!(rcode, "NOERROR");
    assert_eq!(
        answers,
        [
            "allowed.example.shop.svc.cluster.local. CNAME allowed.example.",
            "allowed.example. A 192.0.2.1"
        ]
    );
    // Another client (127.0.0.2, which acl lets through) gets blocked.example, and the cache
    // keeps it; the pod still gets REFUSED, over UDP (the fast path) and TCP.
    let l = running.listeners()[0].clone();
    let q = support::query("blocked.example.", RecordType::A, None)
        .to_vec()
        .unwrap();
    let other = tokio::net::UdpSocket::bind("127.0.0.2:0").await.unwrap();
    other.send_to(&q, l.udp).await.unwrap();
    let mut buf = [0u8; 1500];
    let n = tokio::time::timeout(std::time::Duration::from_secs(2), other.recv(&mut buf))
        .await
        .unwrap()
        .unwrap();
    let m = Message::from_vec(&buf[..n]).unwrap();
    assert_eq!(support::rcode_name(m.metadata.response_code), "NOERROR");
    let before = up.state.queries();
    assert!(clients::have("dig"), "dig is missing (.ci/run installs it)");
    let port = l.udp.port();
    let outs = tokio::task::spawn_blocking(move || {
        [
            clients::dig(port, &["blocked.example"]),
            clients::dig(port, &["blocked.example", "+tcp"]),
        ]
    })
    .await
    .unwrap();
    for out in outs {
        assert!(out.contains("status: REFUSED"), "{out}");
    }
    assert_eq!(up.state.queries(), before);
    running.close().await;
}
