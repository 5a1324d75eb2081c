//! `bufsize`: a client's EDNS buffer size capped, in what it is answered with (truncation and
//! the OPT record, on the fast and the general path) and in what `forward` asks upstream.

use std::net::Ipv4Addr;

use hickory_proto::op::Message;
use hickory_proto::rr::RecordType;

use clusterdns::plugin::Transport;

use crate::clients;
use crate::support;
use crate::upstream::FakeUpstream;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cap_sizes_answers_and_upstream_queries() {
    let up = FakeUpstream::start(Ipv4Addr::new(192, 0, 2, 99)).await;
    let objects = support::root().join("deploy/local/cluster.yaml");
    // Forty addresses for one name: about 700 bytes, more than 512.
    let hosts: String = (1..=40)
        .map(|i| format!("        10.1.0.{i} big.test\n"))
        .collect();
    let corefile = format!(
        ".:0 {{\n    bufsize 512\n    hosts {{\n{hosts}        fallthrough\n    }}\n    kubernetes cluster.local {{\n        objects {}\n    }}\n    forward . {}\n}}\n",
        objects.display(),
        up.addr
    );
    let running = support::start(&support::root().join("Corefile"), &corefile).await;
    support::until_ready(&running).await;
    let port = running.listeners()[0].port;
    let ask = |name: &'static str, how: Transport| {
        let running = running.clone();
        async move {
            let q = support::query(name, RecordType::A, Some(4096))
                .to_vec()
                .unwrap();
            let bytes = support::ask(&running, port, &q, how).await.unwrap();
            Message::from_vec(&bytes).unwrap()
        }
    };
    // Over UDP the client said 4096, the cap says 512: truncated, and 512 advertised.
    let m = ask("big.test.", Transport::Udp).await;
    assert!(m.metadata.truncation);
    assert_eq!(m.edns.as_ref().map(|e| e.max_payload()), Some(512));
    // Over TCP, whole.
    let m = ask("big.test.", Transport::Tcp).await;
    assert_eq!(m.answers.len(), 40);
    // The fast path advertises the cap too.
    let m = ask("kubernetes.default.svc.cluster.local.", Transport::Udp).await;
    assert_eq!(m.edns.as_ref().map(|e| e.max_payload()), Some(512));
    // Upstream is asked with the cap.
    let m = ask("www.example.org.", Transport::Udp).await;
    assert_eq!(m.answers.len(), 1);
    let last = up
        .state
        .last
        .lock()
        .unwrap()
        .clone()
        .expect("a query upstream");
    let asked = Message::from_vec(&last).unwrap();
    assert_eq!(asked.edns.map(|e| e.max_payload()), Some(512));

    // dig sees it as well, over UDP and TCP.
    assert!(clients::have("dig"), "dig is missing (.ci/run installs it)");
    let udp = running.listeners()[0].udp.port();
    let (a, b) = tokio::task::spawn_blocking(move || {
        let args = [
            "+bufsize=4096",
            "+ignore",
            "kubernetes.default.svc.cluster.local",
        ];
        let mut tcp = args.to_vec();
        tcp.push("+tcp");
        (clients::dig(udp, &args), clients::dig(udp, &tcp))
    })
    .await
    .unwrap();
    for out in [a, b] {
        assert!(out.contains("udp: 512"), "{out}");
        assert!(out.contains("10.96.0.1"), "{out}");
    }
}
