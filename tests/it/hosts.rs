//! `hosts`: a hosts file and inline lines answer A, AAAA and PTR, beside the cluster, and the
//! file is re-read when it changes.

use std::path::Path;
use std::time::{Duration, Instant};

use hickory_proto::op::Message;
use hickory_proto::rr::RecordType;

use clusterdns::app::App;
use clusterdns::plugin::Transport;

use crate::clients;
use crate::support;

/// (rcode, aa, the answer's records as `name ttl type data`).
async fn ask(running: &App, name: &str, qtype: RecordType) -> (String, bool, Vec<String>) {
    let q = support::query(name, qtype, Some(1232)).to_vec().unwrap();
    let port = running.listeners()[0].port;
    let bytes = support::ask(running, port, &q, Transport::Udp)
        .await
        .expect("an answer");
    let msg = Message::from_vec(&bytes).unwrap();
    let answers = msg
        .answers
        .iter()
        .map(|r| format!("{} {} {} {}", r.name, r.ttl, r.record_type(), r.data))
        .collect();
    (
        support::rcode_name(msg.metadata.response_code),
        msg.metadata.authoritative,
        answers,
    )
}

fn write(path: &Path, text: &str) {
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, text).unwrap();
    std::fs::rename(&tmp, path).unwrap();
}

fn cluster_block(hosts: &str) -> String {
    let objects = support::root().join("deploy/local/cluster.yaml");
    format!(
        ".:0 {{\n{hosts}\n    kubernetes cluster.local in-addr.arpa ip6.arpa {{\n        objects {}\n        pods insecure\n        fallthrough in-addr.arpa ip6.arpa\n    }}\n}}\n",
        objects.display()
    )
}

const NODE_HOSTS: &str = "# k3s writes one line per node\n172.18.0.2 server-0\n172.18.0.3 agent-0 agent-0.lan\nfd00:18::3 agent-0\nfe80::1%eth0 linklocal\nnot-an-address stray\n";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn k3s_node_hosts_answer_beside_the_cluster() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("NodeHosts");
    write(&file, NODE_HOSTS);
    let corefile = cluster_block(&format!(
        "    hosts {} {{\n      ttl 60\n      reload 15s\n      fallthrough\n    }}",
        file.display()
    ));
    let running = support::start(&dir.path().join("Corefile"), &corefile).await;
    support::until_ready(&running).await;

    let (rcode, aa, answers) = ask(&running, "server-0.", RecordType::A).await;
    assert_eq!((rcode.as_str(), aa), ("NOERROR", true));
    assert_eq!(answers, ["server-0. 60 A 172.18.0.2"]);
    // One name, both families; a second name on the line.
    let (_, _, answers) = ask(&running, "AGENT-0.", RecordType::AAAA).await;
    assert_eq!(
        answers,
        ["AGENT-0. 60 AAAA fd00:18::3"],
        "the question's case"
    );
    let (_, _, answers) = ask(&running, "agent-0.lan.", RecordType::A).await;
    assert_eq!(answers, ["agent-0.lan. 60 A 172.18.0.3"]);
    // A zone index is dropped; a line without an address is skipped.
    let (_, _, answers) = ask(&running, "linklocal.", RecordType::AAAA).await;
    assert_eq!(answers, ["linklocal. 60 AAAA fe80::1"]);
    // A known name asked for another type: NODATA, authoritative.
    let (rcode, aa, answers) = ask(&running, "server-0.", RecordType::MX).await;
    assert_eq!((rcode.as_str(), aa, answers.len()), ("NOERROR", true, 0));
    let (rcode, aa, answers) = ask(&running, "server-0.", RecordType::AAAA).await;
    assert_eq!((rcode.as_str(), aa, answers.len()), ("NOERROR", true, 0));
    // Reverse names of the file's addresses, every name of the line.
    let (_, aa, answers) = ask(&running, "3.0.18.172.in-addr.arpa.", RecordType::PTR).await;
    assert!(aa);
    assert_eq!(
        answers,
        [
            "3.0.18.172.in-addr.arpa. 60 PTR agent-0.",
            "3.0.18.172.in-addr.arpa. 60 PTR agent-0.lan."
        ]
    );
    // Everything else falls through to the cluster, reverse names included.
    let (rcode, _, answers) = ask(
        &running,
        "kubernetes.default.svc.cluster.local.",
        RecordType::A,
    )
    .await;
    assert_eq!(rcode, "NOERROR");
    assert_eq!(answers.len(), 1, "{answers:?}");
    let (_, _, answers) = ask(&running, "10.0.96.10.in-addr.arpa.", RecordType::PTR).await;
    assert_eq!(
        answers,
        ["10.0.96.10.in-addr.arpa. 5 PTR kube-dns.kube-system.svc.cluster.local."]
    );

    let metrics = String::from_utf8(running.metrics().render()).unwrap();
    let entries = format!(
        "coredns_hosts_entries{{hostsfile=\"{}\"}} 5\n",
        file.display()
    );
    assert!(metrics.contains(&entries), "{entries} in {metrics}");
    assert!(metrics.contains("coredns_hosts_reload_timestamp_seconds 1"));
    assert!(metrics.contains("coredns_plugin_enabled{name=\"hosts\""));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_changed_file_is_served_and_an_unreadable_one_keeps_the_last() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("hosts");
    // Missing at start: a warning, and served once it appears.
    let corefile = format!(
        ".:0 {{\n    hosts {} {{\n      reload 200ms\n    }}\n}}\n",
        file.display()
    );
    let running = support::start(&dir.path().join("Corefile"), &corefile).await;
    assert_eq!(ask(&running, "node-a.", RecordType::A).await.0, "SERVFAIL");

    write(&file, "10.0.0.1 node-a\n");
    let t = Instant::now();
    eventually(&running, "node-a.", &["node-a. 3600 A 10.0.0.1"]).await;
    let first = t.elapsed();

    write(&file, "10.0.0.2 node-a\n10.0.0.3 node-b\n");
    eventually(&running, "node-a.", &["node-a. 3600 A 10.0.0.2"]).await;
    eventually(&running, "node-b.", &["node-b. 3600 A 10.0.0.3"]).await;
    // The old address is gone, its reverse name with it.
    let (rcode, _, _) = ask(&running, "1.0.0.10.in-addr.arpa.", RecordType::PTR).await;
    assert_eq!(rcode, "SERVFAIL", "no one after hosts to answer it");

    // A file that cannot be read (here: removed) keeps what was read last.
    std::fs::remove_file(&file).unwrap();
    tokio::time::sleep(Duration::from_millis(700)).await;
    let (_, _, answers) = ask(&running, "node-b.", RecordType::A).await;
    assert_eq!(answers, ["node-b. 3600 A 10.0.0.3"]);
    assert!(first < Duration::from_secs(5), "{first:?}");
}

async fn eventually(running: &App, name: &str, want: &[&str]) {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let (_, _, got) = ask(running, name, RecordType::A).await;
        if got == want {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{name}: still {got:?}, waiting for {want:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn minikube_inline_entry_zones_no_reverse_and_no_fallthrough() {
    let dir = tempfile::tempdir().unwrap();
    let empty = dir.path().join("empty-hosts");
    write(&empty, "");
    // minikube's inserted block: inline, no file argument (here a file of our own, so that the
    // machine's /etc/hosts does not leak into the answers).
    let corefile = format!(
        ".:0 {{\n    hosts {} example.org {{\n      192.168.49.1 host.minikube.internal gw.example.org\n      10.1.1.1 web.example.org\n      no_reverse\n    }}\n}}\n",
        empty.display()
    );
    let running = support::start(&dir.path().join("Corefile"), &corefile).await;
    // Outside the zones given: not ours, so the query goes on (and here no one is left).
    let (rcode, _, _) = ask(&running, "host.minikube.internal.", RecordType::A).await;
    assert_eq!(rcode, "SERVFAIL");
    let (rcode, aa, answers) = ask(&running, "web.example.org.", RecordType::A).await;
    assert_eq!((rcode.as_str(), aa), ("NOERROR", true));
    assert_eq!(answers, ["web.example.org. 3600 A 10.1.1.1"]);
    assert_eq!(
        ask(&running, "gw.example.org.", RecordType::A).await.2,
        ["gw.example.org. 3600 A 192.168.49.1"]
    );
    // no_reverse: no PTR.
    let (rcode, _, answers) = ask(&running, "1.1.1.10.in-addr.arpa.", RecordType::PTR).await;
    assert_eq!((rcode.as_str(), answers.len()), ("SERVFAIL", 0));
    // In the zone, unknown, no fallthrough: SERVFAIL from hosts itself (no SOA to deny with).
    let (rcode, aa, _) = ask(&running, "nothing.example.org.", RecordType::A).await;
    assert_eq!((rcode.as_str(), aa), ("SERVFAIL", false));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dig_and_nslookup_see_the_hosts_entries() {
    if !clients::have("dig") || !clients::have("nslookup") {
        panic!("dig and nslookup are needed: install bind9-dnsutils (.ci/run does)");
    }
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("NodeHosts");
    write(&file, NODE_HOSTS);
    let corefile = cluster_block(&format!(
        "    hosts {} {{\n      ttl 60\n      fallthrough\n    }}",
        file.display()
    ));
    let running = support::start(&dir.path().join("Corefile"), &corefile).await;
    support::until_ready(&running).await;
    let port = running.listeners()[0].udp.port();
    let (short, ptr, ns) = tokio::task::spawn_blocking(move || {
        let short = clients::dig(port, &["+short", "agent-0", "A"]);
        let ptr = clients::dig(port, &["+short", "-x", "172.18.0.2"]);
        let out = std::process::Command::new("nslookup")
            .args([&format!("-port={port}"), "server-0.", "127.0.0.1"])
            .output()
            .unwrap();
        (
            short,
            ptr,
            String::from_utf8_lossy(&out.stdout).into_owned(),
        )
    })
    .await
    .unwrap();
    assert_eq!(short.trim(), "172.18.0.3");
    assert_eq!(ptr.trim(), "server-0.");
    assert!(ns.contains("Address: 172.18.0.2"), "{ns}");
}

/// A plugin that parses but cannot be built stops the start with `plugin/NAME: …`, the one form
/// every plugin's setup errors take, and says where in the Corefile the trouble is.
#[tokio::test]
async fn a_plugin_that_cannot_be_built_names_itself_and_the_line() {
    use clusterdns::app::{App, StartOptions};
    use clusterdns::config::{self, LoadOptions};

    let dir = tempfile::tempdir().unwrap();
    let corefile = dir.path().join("Corefile");
    let folder = dir.path().join("hosts.d");
    std::fs::create_dir(&folder).unwrap();
    for (text, want) in [
        (
            format!(".:0 {{\n    hosts {}\n}}\n", folder.display()),
            format!(
                "plugin/hosts: {}:2:11: {} is a folder, not a hosts file",
                corefile.display(),
                folder.display()
            ),
        ),
        (
            ".:0 {\n    autopath /nonexistent/resolv.conf\n}\n".to_string(),
            // Where the plugin knows no line of its own: its server block's.
            format!(
                "plugin/autopath: {}:1:1: /nonexistent/resolv.conf: No such file or directory",
                corefile.display()
            ),
        ),
    ] {
        let cfg = config::from_str(
            &corefile.display().to_string(),
            &text,
            &LoadOptions::default(),
        )
        .unwrap();
        let opts = StartOptions {
            bind: Some(std::net::IpAddr::V4(std::net::Ipv4Addr::LOCALHOST)),
            ..StartOptions::default()
        };
        let err = match App::start(&cfg, opts).await {
            Ok(_) => panic!("{text}: started"),
            Err(e) => format!("{e:#}"),
        };
        assert!(err.starts_with(&want), "{text}\n got: {err}\nwant: {want}");
    }
}

/// Wildcard owners (CoreDNS 1.14): `*` as the leftmost label matches exactly one label below
/// its name, never the name itself nor deeper, an explicit entry wins, and a wildcard gives no
/// PTR. `fallthrough_unsupported` sends a type hosts does not serve (TXT) for a name it has on
/// to the next plugin, here `forward`. Through `dig`, over UDP and TCP.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wildcards_and_fallthrough_unsupported_through_dig() {
    use std::net::Ipv4Addr;
    use std::sync::atomic::Ordering;

    let up = crate::upstream::FakeUpstream::start(Ipv4Addr::new(192, 0, 2, 99)).await;
    let dir = tempfile::tempdir().unwrap();
    let corefile = format!(
        ".:0 {{\n    hosts {{\n        192.168.1.10 *.example.com\n        192.168.1.11 a.example.com\n        192.168.1.12 example.com\n        fallthrough\n        fallthrough_unsupported\n    }}\n    forward . {}\n}}\n",
        up.addr
    );
    let running = support::start(&dir.path().join("Corefile"), &corefile).await;
    let port = running.listeners()[0].udp.port();
    let dig = |args: &'static [&'static str]| {
        let args: Vec<&str> = args.to_vec();
        tokio::task::spawn_blocking(move || {
            let mut tcp = args.clone();
            tcp.push("+tcp");
            [clients::dig(port, &args), clients::dig(port, &tcp)]
        })
    };
    assert!(clients::have("dig"), "dig is missing (.ci/run installs it)");
    for (args, want) in [
        (&["+short", "apps.example.com"][..], "192.168.1.10"),
        (&["+short", "a.example.com"][..], "192.168.1.11"),
        (&["+short", "example.com"][..], "192.168.1.12"),
        // Deeper than one label: not the wildcard's; on to forward (fallthrough).
        (&["+short", "deep.apps.example.com"][..], "192.0.2.99"),
    ] {
        for out in dig(args).await.unwrap() {
            assert_eq!(out.trim(), want, "{args:?}");
        }
    }
    // The wildcard's answer carries the name asked.
    let (rcode, aa, answers) = ask(&running, "Apps.Example.com.", RecordType::A).await;
    assert_eq!((rcode.as_str(), aa), ("NOERROR", true));
    assert_eq!(answers, ["Apps.Example.com. 3600 A 192.168.1.10"]);
    // No PTR for a wildcard; the explicit entries have theirs.
    for out in dig(&["+short", "-x", "192.168.1.10"]).await.unwrap() {
        assert_eq!(out.trim(), "", "a wildcard has no PTR");
    }
    for out in dig(&["+short", "-x", "192.168.1.11"]).await.unwrap() {
        assert_eq!(out.trim(), "a.example.com.");
    }
    // TXT for a name hosts has: forwarded (the upstream answers, not hosts with NODATA); AAAA
    // is a type hosts serves, NODATA from hosts.
    let before = up.state.udp.load(Ordering::SeqCst);
    let (rcode, aa, _) = ask(&running, "a.example.com.", RecordType::TXT).await;
    assert_eq!((rcode.as_str(), aa), ("NOERROR", false));
    assert_eq!(up.state.udp.load(Ordering::SeqCst), before + 1);
    let (rcode, aa, answers) = ask(&running, "a.example.com.", RecordType::AAAA).await;
    assert_eq!((rcode.as_str(), aa, answers.len()), ("NOERROR", true, 0));
    assert_eq!(up.state.udp.load(Ordering::SeqCst), before + 1);
    running.close().await;
}
