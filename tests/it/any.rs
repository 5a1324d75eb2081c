//! `any`: ANY questions get RFC 8482's single HINFO record; other questions are not touched.

use hickory_proto::op::Message;
use hickory_proto::rr::RecordType;

use clusterdns::plugin::Transport;

use crate::clients;
use crate::support;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn any_questions_get_one_hinfo() {
    let objects = support::root().join("deploy/local/cluster.yaml");
    let corefile = format!(
        ".:0 {{\n    any\n    kubernetes cluster.local in-addr.arpa ip6.arpa {{\n        objects {}\n    }}\n}}\n",
        objects.display()
    );
    let running = support::start(&support::root().join("Corefile"), &corefile).await;
    support::until_ready(&running).await;
    let port = running.listeners()[0].port;
    let ask = |qtype| {
        let running = running.clone();
        async move {
            let q = support::query("kubernetes.default.svc.cluster.local.", qtype, Some(1232));
            let bytes = support::ask(&running, port, &q.to_vec().unwrap(), Transport::Udp)
                .await
                .unwrap();
            Message::from_vec(&bytes).unwrap()
        }
    };
    let m = ask(RecordType::ANY).await;
    assert!(!m.metadata.authoritative);
    let answers: Vec<String> = m
        .answers
        .iter()
        .map(|r| format!("{} {} {}", r.ttl, r.record_type(), r.data))
        .collect();
    assert_eq!(answers, ["8482 HINFO RFC8482 "]);
    let m = ask(RecordType::A).await;
    assert_eq!(m.answers.len(), 1);
    assert_eq!(m.answers[0].record_type(), RecordType::A);

    assert!(clients::have("dig"), "dig is missing (.ci/run installs it)");
    let udp = running.listeners()[0].udp.port();
    let out = tokio::task::spawn_blocking(move || {
        clients::dig(
            udp,
            &["+short", "kubernetes.default.svc.cluster.local", "ANY"],
        )
    })
    .await
    .unwrap();
    assert_eq!(out.trim(), "\"RFC8482\" \"\"");
}
