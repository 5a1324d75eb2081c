//! `rewrite`: questions changed on the way in, answers changed back on the way out, through the
//! real server and dig.

use std::net::Ipv4Addr;

use hickory_proto::op::Message;
use hickory_proto::rr::RecordType;

use clusterdns::app::App;
use clusterdns::plugin::Transport;

use crate::clients;
use crate::support;
use crate::upstream::FakeUpstream;

async fn ask(running: &App, name: &str, qtype: RecordType) -> (String, Vec<String>) {
    let q = support::query(name, qtype, Some(1232)).to_vec().unwrap();
    let port = running.listeners()[0].port;
    let bytes = support::ask(running, port, &q, Transport::Udp)
        .await
        .unwrap();
    let msg = Message::from_vec(&bytes).unwrap();
    assert_eq!(
        msg.queries[0].name().to_ascii().to_lowercase(),
        name.to_lowercase(),
        "the client's own question comes back"
    );
    let answers = msg
        .answers
        .iter()
        .map(|r| format!("{} {} {}", r.name, r.record_type(), r.data))
        .collect();
    (support::rcode_name(msg.metadata.response_code), answers)
}

const RULES: &str = r#"    rewrite stop {
        name regex (.*)\.corp\.example {1}.default.svc.cluster.local
        answer name (.*)\.default\.svc\.cluster\.local {1}.corp.example
    }
    rewrite name legacy.shop.svc.cluster.local frontend.shop.svc.cluster.local
    rewrite name suffix .lab.example .shop.svc.cluster.local answer auto
    rewrite name prefix old-kube kubernetes
    rewrite continue type MX A
    rewrite name mx.test kubernetes.default.svc.cluster.local"#;

async fn server(up: &FakeUpstream) -> std::sync::Arc<App> {
    let objects = support::root().join("deploy/local/cluster.yaml");
    let corefile = format!(
        ".:0 {{\n    errors\n{RULES}\n    cache 30\n    kubernetes cluster.local in-addr.arpa ip6.arpa {{\n        objects {}\n        fallthrough in-addr.arpa ip6.arpa\n    }}\n    forward . {}\n}}\n",
        objects.display(),
        up.addr
    );
    let running = support::start(&support::root().join("Corefile"), &corefile).await;
    support::until_ready(&running).await;
    running
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn questions_are_rewritten_and_answers_reverted() {
    let up = FakeUpstream::start(Ipv4Addr::new(192, 0, 2, 1)).await;
    let running = server(&up).await;
    // Regex with an answer rule (Gardener's and AKS's docs' form).
    let (rcode, answers) = ask(&running, "kubernetes.corp.example.", RecordType::A).await;
    assert_eq!(rcode, "NOERROR");
    assert_eq!(answers, ["kubernetes.corp.example. A 10.96.0.1"]);
    // Twice: the second answer comes from the cache, keyed by the client's question.
    let (_, again) = ask(&running, "kubernetes.corp.example.", RecordType::A).await;
    assert_eq!(again, answers);
    // Exact: reverted by itself.
    let (_, answers) = ask(&running, "legacy.shop.svc.cluster.local.", RecordType::A).await;
    assert_eq!(answers, ["legacy.shop.svc.cluster.local. A 10.96.12.34"]);
    // Suffix with answer auto.
    let (_, answers) = ask(&running, "frontend.lab.example.", RecordType::AAAA).await;
    assert_eq!(answers, ["frontend.lab.example. AAAA fd00:10:96::1234"]);
    // Prefix without an answer rule: as in CoreDNS, the answer keeps the rewritten name.
    let (_, answers) = ask(
        &running,
        "old-kube.default.svc.cluster.local.",
        RecordType::A,
    )
    .await;
    assert_eq!(
        answers,
        ["kubernetes.default.svc.cluster.local. A 10.96.0.1"]
    );
    // A type rewrite that continues into a name rewrite.
    let (_, answers) = ask(&running, "mx.test.", RecordType::MX).await;
    assert_eq!(answers, ["mx.test. A 10.96.0.1"]);
    // What no rule matches is untouched and forwarded.
    let (_, answers) = ask(&running, "www.example.net.", RecordType::A).await;
    assert_eq!(answers, ["www.example.net. A 192.0.2.1"]);
    let last = up.state.last.lock().unwrap().clone().unwrap();
    let sent = Message::from_vec(&last).unwrap();
    assert_eq!(sent.queries[0].name().to_ascii(), "www.example.net.");

    assert!(clients::have("dig"), "dig is missing (.ci/run installs it)");
    let port = running.listeners()[0].udp.port();
    let out = tokio::task::spawn_blocking(move || {
        clients::dig(
            port,
            &["+noall", "+answer", "+question", "web.corp.example", "A"],
        ) + &clients::dig(port, &["+noall", "+answer", "kubernetes.corp.example", "A"])
    })
    .await
    .unwrap();
    assert!(out.contains(";web.corp.example.\t\tIN\tA"), "{out}");
    let line = out
        .lines()
        .find(|l| l.starts_with("kubernetes.corp.example."))
        .unwrap_or_else(|| panic!("{out}"));
    assert!(line.ends_with("IN\tA\t10.96.0.1"), "{out}");
}
