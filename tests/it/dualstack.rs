//! The default listener: with no `bind`, a port is one dual-stack socket, and an IPv4 client
//! arrives on it as `::ffff:a.b.c.d`. The server makes the address canonical once, where the
//! query enters, so every plugin that reads the client's address sees an IPv4 client as IPv4:
//! `autopath` finds an IPv4 pod, `acl`, `view` and `transfer` match IPv4 networks, `whoami`
//! and `template`'s `.Remote` show the IPv4 address. (`log`'s `{remote}` on this listener is
//! tested on the binary, in `process::log_lines_json_output_and_consolidated_errors`.)

use std::net::{Ipv4Addr, SocketAddr};
use std::path::Path;
use std::sync::Arc;

use hickory_proto::op::Message;
use hickory_proto::rr::RecordType;

use clusterdns::app::{App, StartOptions};
use clusterdns::config::{self, LoadOptions};

use crate::support;
use crate::upstream::FakeUpstream;

/// Starts Corefile text on every address (no `bind`, no `--bind`): one dual-stack socket.
async fn dual_stack(dir: &Path, corefile: &str) -> Arc<App> {
    let cfg = config::from_str(
        &dir.join("Corefile").display().to_string(),
        corefile,
        &LoadOptions::default(),
    )
    .unwrap_or_else(|e| panic!("{e}\n{corefile}"));
    let running = App::start(&cfg, StartOptions::default())
        .await
        .expect("server starts");
    let l = &running.listeners()[0];
    assert!(
        l.udp.ip().is_unspecified() && l.udp.is_ipv6(),
        "the default listener is the dual-stack [::], not {}",
        l.udp
    );
    support::until_ready(&running).await;
    running
}

/// Asks the dual-stack port from 127.0.0.1, over UDP and over TCP: both answers, which must
/// agree.
async fn ask(running: &App, name: &str, qtype: RecordType) -> Message {
    let l = &running.listeners()[0];
    let bytes = support::query(name, qtype, Some(1232)).to_vec().unwrap();
    let v4 = |p: u16| SocketAddr::from((Ipv4Addr::LOCALHOST, p));
    let udp = support::udp(v4(l.udp.port()), &bytes)
        .await
        .expect("a UDP answer");
    let tcp = support::tcp(v4(l.tcp.port()), &bytes)
        .await
        .expect("a TCP answer");
    let (udp, tcp) = (
        Message::from_vec(&udp).unwrap(),
        Message::from_vec(&tcp).unwrap(),
    );
    assert_eq!(
        udp.metadata.response_code, tcp.metadata.response_code,
        "{name}"
    );
    assert_eq!(udp.answers, tcp.answers, "{name}");
    udp
}

fn answers(m: &Message) -> Vec<String> {
    m.answers
        .iter()
        .map(|r| format!("{} {} {}", r.name, r.record_type(), r.data))
        .collect()
}

fn rcode(m: &Message) -> String {
    support::rcode_name(m.metadata.response_code)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn autopath_walks_an_ipv4_pods_search_path() {
    // The pod is 127.0.0.1 in namespace `shop`, asking through the dual-stack socket.
    const POD: &str = "apiVersion: v1\nkind: Pod\nmetadata: {name: client, namespace: shop}\nspec: {containers: [{name: c, image: nicolaka/netshoot}]}\nstatus: {phase: App, podIP: 127.0.0.1, podIPs: [{ip: 127.0.0.1}]}\n";
    let up = FakeUpstream::start(Ipv4Addr::new(192, 0, 2, 1)).await;
    let dir = tempfile::tempdir().unwrap();
    let objects = support::demo_objects(dir.path(), &[("client.yaml", POD)]);
    let corefile = format!(
        ".:0 {{\n    autopath @kubernetes\n    kubernetes cluster.local in-addr.arpa ip6.arpa {{\n        objects {}\n        pods verified\n        fallthrough in-addr.arpa ip6.arpa\n    }}\n    forward . {}\n}}\n",
        objects.display(),
        up.addr
    );
    let running = dual_stack(dir.path(), &corefile).await;
    let m = ask(
        &running,
        "www.example.org.shop.svc.cluster.local.",
        RecordType::A,
    )
    .await;
    assert_eq!(rcode(&m), "NOERROR");
    assert_eq!(
        answers(&m),
        [
            "www.example.org.shop.svc.cluster.local. CNAME www.example.org.",
            "www.example.org. A 192.0.2.1"
        ]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acl_matches_an_ipv4_client_by_its_ipv4_network() {
    let dir = tempfile::tempdir().unwrap();
    let running = dual_stack(
        dir.path(),
        ".:0 {\n    acl allowed.example {\n        allow net 127.0.0.0/8\n        block\n    }\n    acl blocked.example {\n        block net 127.0.0.1/32\n    }\n    whoami\n}\n",
    )
    .await;
    assert_eq!(
        rcode(&ask(&running, "allowed.example.", RecordType::A).await),
        "NOERROR"
    );
    assert_eq!(
        rcode(&ask(&running, "blocked.example.", RecordType::A).await),
        "REFUSED"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_view_reads_an_ipv4_clients_address() {
    let dir = tempfile::tempdir().unwrap();
    let running = dual_stack(
        dir.path(),
        ".:0 {\n    view v4 {\n        expr incidr(client_ip(), '127.0.0.0/8') && client_ip() == '127.0.0.1'\n    }\n    whoami\n}\n",
    )
    .await;
    assert_eq!(
        rcode(&ask(&running, "example.", RecordType::A).await),
        "NOERROR",
        "the view admits 127.0.0.1 as IPv4"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn whoami_and_templates_show_the_ipv4_address() {
    let dir = tempfile::tempdir().unwrap();
    let running = dual_stack(
        dir.path(),
        ".:0 {\n    template IN TXT remote.example {\n        answer \"{{ .Name }} 60 IN TXT {{ .Remote }}\"\n    }\n    whoami\n}\n",
    )
    .await;
    let m = ask(&running, "remote.example.", RecordType::TXT).await;
    assert_eq!(answers(&m), ["remote.example. TXT 127.0.0.1"]);
    let m = ask(&running, "who.example.", RecordType::A).await;
    let shown: Vec<String> = m
        .additionals
        .iter()
        .filter(|r| matches!(r.record_type(), RecordType::A | RecordType::AAAA))
        .map(|r| format!("{} {}", r.record_type(), r.data))
        .collect();
    assert_eq!(shown, ["A 127.0.0.1"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn transfer_lets_an_ipv4_peer_in() {
    let dir = tempfile::tempdir().unwrap();
    let objects = support::root().join("deploy/local/cluster.yaml");
    let corefile = |to: &str| {
        format!(
            ".:0 {{\n    transfer {{\n        to {to}\n    }}\n    kubernetes cluster.local {{\n        objects {}\n    }}\n}}\n",
            objects.display()
        )
    };
    let axfr = |running: Arc<App>| async move {
        let l = &running.listeners()[0];
        let bytes = support::query("cluster.local.", RecordType::AXFR, None)
            .to_vec()
            .unwrap();
        let to = SocketAddr::from((Ipv4Addr::LOCALHOST, l.tcp.port()));
        Message::from_vec(&support::tcp(to, &bytes).await.expect("an answer")).unwrap()
    };
    let m = axfr(dual_stack(dir.path(), &corefile("127.0.0.1")).await).await;
    assert_eq!(rcode(&m), "NOERROR");
    assert_eq!(
        m.answers.first().map(|r| r.record_type()),
        Some(RecordType::SOA)
    );
    let m = axfr(dual_stack(dir.path(), &corefile("192.0.2.1")).await).await;
    assert_eq!(rcode(&m), "REFUSED");
}
