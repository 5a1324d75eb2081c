//! `file`: a zone file served next to the cluster, through dig over UDP and TCP; the same
//! answers as Knot DNS serving the same file; the fast path byte for byte the general one;
//! reloads on a raised serial, and a broken file keeps the last good zone.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use hickory_proto::op::Message;
use hickory_proto::rr::RecordType;

use clusterdns::app::App;
use clusterdns::plugin::Transport;

use crate::clients;
use crate::support;
use crate::upstream::Knot;

pub const ZONE: &str = "\
$ORIGIN example.org.
$TTL 3600
@       IN SOA ns1 hostmaster 2024010101 7200 3600 1209600 300
        IN NS  ns1
        IN MX  10 mail
        IN A   192.0.2.10
ns1     IN A   192.0.2.1
mail    IN A   192.0.2.25
        IN AAAA 2001:db8::25
www     IN CNAME web
web     IN A   192.0.2.80
        IN A   192.0.2.81
api     IN CNAME kubernetes.default.svc.cluster.local.
gone    IN CNAME nothing
*.apps  IN A   192.0.2.99
a.b.c   IN TXT \"deep\"
sub     IN NS  ns.sub
ns.sub  IN A   192.0.2.53
_http._tcp IN SRV 0 5 80 web
";

/// Names asked of both Knot and clusterdns: (name, type).
const ASKED: &[(&str, RecordType)] = &[
    ("example.org.", RecordType::SOA),
    ("example.org.", RecordType::NS),
    ("example.org.", RecordType::MX),
    ("example.org.", RecordType::A),
    ("Example.ORG.", RecordType::A),
    ("www.example.org.", RecordType::A),
    ("web.example.org.", RecordType::A),
    ("web.example.org.", RecordType::AAAA),
    ("gone.example.org.", RecordType::A),
    ("x.apps.example.org.", RecordType::A),
    ("y.x.apps.example.org.", RecordType::A),
    ("x.apps.example.org.", RecordType::TXT),
    ("b.c.example.org.", RecordType::A),
    ("a.b.c.example.org.", RecordType::TXT),
    ("nope.example.org.", RecordType::A),
    ("sub.example.org.", RecordType::A),
    ("host.sub.example.org.", RecordType::A),
    ("_http._tcp.example.org.", RecordType::SRV),
];

async fn serve(dir: &Path, reload: &str) -> Arc<App> {
    let objects = support::root().join("deploy/local/cluster.yaml");
    let corefile = format!(
        ".:0 {{\n    file {} example.org {{\n        reload {reload}\n    }}\n    kubernetes cluster.local in-addr.arpa ip6.arpa {{\n        objects {}\n    }}\n}}\n",
        dir.join("db.example.org").display(),
        objects.display()
    );
    let running = support::start(&dir.join("Corefile"), &corefile).await;
    support::until_ready(&running).await;
    running
}

async fn ask_at(to: SocketAddr, name: &str, qtype: RecordType, how: Transport) -> Message {
    let q = support::query(name, qtype, Some(1232)).to_vec().unwrap();
    let bytes = match how {
        Transport::Udp => support::udp(to, &q).await,
        Transport::Tcp => support::tcp(to, &q).await,
    };
    Message::from_vec(&bytes.expect("an answer")).unwrap()
}

/// rcode, AA, and the answer section, sorted (record order within an RRset is free).
fn summary(m: &Message) -> (String, bool, Vec<String>) {
    let mut answers: Vec<String> = m.answers.iter().map(support::fmt_record).collect();
    answers.sort();
    (
        support::rcode_name(m.metadata.response_code),
        m.metadata.authoritative,
        answers,
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_zone_file_answers_as_knot_answers_it() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("db.example.org"), ZONE).unwrap();
    let running = serve(dir.path(), "0").await;
    let knot = Knot::start_zone("example.org", ZONE).await;
    let knot_at: SocketAddr = ([127, 0, 0, 1], knot.port).into();
    let l = running.listeners()[0].clone();
    for &(name, qtype) in ASKED {
        let want = summary(&ask_at(knot_at, name, qtype, Transport::Udp).await);
        for (how, at) in [(Transport::Udp, l.udp), (Transport::Tcp, l.tcp)] {
            let got = ask_at(at, name, qtype, how).await;
            assert_eq!(summary(&got), want, "{name} {qtype} over {how:?}");
            // Referrals and negative answers carry what Knot's do.
            let knot = ask_at(knot_at, name, qtype, Transport::Udp).await;
            if knot.answers.is_empty() {
                let types = |m: &Message| -> Vec<RecordType> {
                    m.authorities.iter().map(|r| r.record_type()).collect()
                };
                assert_eq!(types(&got), types(&knot), "{name} {qtype}: authority");
            }
        }
    }
    // A CNAME out of the zone is followed through the server: here, into the cluster.
    let m = ask_at(l.udp, "api.example.org.", RecordType::A, Transport::Udp).await;
    let (_, _, answers) = summary(&m);
    assert_eq!(
        answers,
        [
            "api.example.org. 3600 IN CNAME kubernetes.default.svc.cluster.local.",
            "kubernetes.default.svc.cluster.local. 5 IN A 10.96.0.1"
        ]
    );
    // The cluster is still the cluster's.
    let m = ask_at(
        l.udp,
        "kubernetes.default.svc.cluster.local.",
        RecordType::A,
        Transport::Udp,
    )
    .await;
    assert_eq!(m.answers.len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_fast_path_answers_a_zone_file_as_the_general_path_does() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("db.example.org"), ZONE).unwrap();
    let running = serve(dir.path(), "0").await;
    let router = running.router(running.listeners()[0].port).unwrap();
    let src: SocketAddr = ([127, 0, 0, 1], 40000).into();
    let mut fast = 0;
    for &(name, qtype) in ASKED {
        for edns in [None, Some(1232)] {
            let q = support::query(name, qtype, edns).to_vec().unwrap();
            let general = router
                .handle_bytes_general(&q, src, Transport::Udp)
                .await
                .unwrap();
            let mut out = Vec::new();
            if router.answer_fast(&q, src, Transport::Udp, &mut out) {
                fast += 1;
                assert_eq!(out, general, "{name} {qtype} {edns:?}");
            }
        }
    }
    // Everything but the CNAME chains and the referrals is fast.
    assert_eq!(fast, 2 * (ASKED.len() - 4), "fast answers");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dig_reads_a_zone_file_over_udp_and_tcp() {
    assert!(clients::have("dig"), "dig is missing (.ci/run installs it)");
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("db.example.org"), ZONE).unwrap();
    let running = serve(dir.path(), "0").await;
    let port = running.listeners()[0].udp.port();
    let out = tokio::task::spawn_blocking(move || {
        let mut outs = Vec::new();
        for tcp in [false, true] {
            let mut args = vec![
                "+noall",
                "+answer",
                "+authority",
                "+additional",
                "+comments",
            ];
            if tcp {
                args.push("+tcp");
            }
            for q in [
                &["www.example.org"][..],
                &["MX", "example.org"][..],
                &["nope.example.org"][..],
                &["host.sub.example.org"][..],
            ] {
                outs.push(clients::dig(port, &[&args[..], q].concat()));
            }
        }
        outs
    })
    .await
    .unwrap();
    // UDP and TCP answer alike, but for the message ID.
    let no_id = |s: &String| -> String {
        s.lines()
            .filter(|l| !l.contains("->>HEADER<<-"))
            .collect::<Vec<_>>()
            .join("\n")
    };
    for (udp, tcp) in out[..4].iter().zip(&out[4..]) {
        assert_eq!(no_id(udp), no_id(tcp), "UDP and TCP answer alike");
    }
    let [www, mx, nope, sub] = [&out[0], &out[1], &out[2], &out[3]];
    assert!(www.contains("flags: qr aa rd;"), "{www}");
    assert!(
        www.contains("www.example.org.\t3600\tIN\tCNAME\tweb.example.org."),
        "{www}"
    );
    assert!(
        www.contains("web.example.org.\t3600\tIN\tA\t192.0.2.80"),
        "{www}"
    );
    assert!(
        www.contains("example.org.\t\t3600\tIN\tNS\tns1.example.org."),
        "{www}"
    );
    assert!(
        mx.contains("mail.example.org.\t3600\tIN\tAAAA\t2001:db8::25"),
        "{mx}"
    );
    assert!(nope.contains("status: NXDOMAIN"), "{nope}");
    assert!(nope.contains("example.org.\t\t300\tIN\tSOA"), "{nope}");
    assert!(
        sub.contains("flags: qr rd;"),
        "a referral is not authoritative: {sub}"
    );
    assert!(
        sub.contains("sub.example.org.\t3600\tIN\tNS\tns.sub.example.org."),
        "{sub}"
    );
    assert!(
        sub.contains("ns.sub.example.org.\t3600\tIN\tA\t192.0.2.53"),
        "{sub}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_raised_serial_reloads_and_a_broken_file_keeps_the_last_zone() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("db.example.org");
    std::fs::write(&db, ZONE).unwrap();
    let running = serve(dir.path(), "100ms").await;
    let at = running.listeners()[0].udp;
    let new_name = |serial: &str| ZONE.replace("2024010101", serial) + "new IN A 192.0.2.200\n";
    let answers = |name: &'static str| async move {
        ask_at(at, name, RecordType::A, Transport::Udp)
            .await
            .answers
            .len()
    };
    let entries = || {
        let m = String::from_utf8(running.metrics().render()).unwrap();
        m.lines()
            .find(|l| l.starts_with("coredns_file_entries{dns_name=\"example.org.\"}"))
            .map(|l| l.rsplit(' ').next().unwrap().to_string())
    };
    assert_eq!(entries().as_deref(), Some("17"));
    // The same serial: not reloaded (as CoreDNS; the log says why).
    std::fs::write(&db, new_name("2024010101")).unwrap();
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert_eq!(answers("new.example.org.").await, 0);
    // A broken file: still the last good zone.
    std::fs::write(&db, "$ORIGIN example.org.\n@ IN SOA broken\n").unwrap();
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert_eq!(answers("web.example.org.").await, 2);
    // A raised serial: reloaded.
    std::fs::write(&db, new_name("2024010102")).unwrap();
    for _ in 0..100 {
        if answers("new.example.org.").await == 1 {
            assert_eq!(entries().as_deref(), Some("18"));
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("the new serial was not served");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_zone_file_that_does_not_load_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("db.example.org"),
        "$ORIGIN example.org.\n@ 3600 IN SOA ns hm 1 2 3 4 5\nwww 3600 IN A 300.1.1.1\n",
    )
    .unwrap();
    let corefile = format!(
        "example.org:0 {{\n    file {}\n}}\n",
        dir.path().join("db.example.org").display()
    );
    let e = support::start_error(&dir.path().join("Corefile"), &corefile).await;
    assert!(e.contains("plugin/file: "), "{e}");
    assert!(e.contains("Corefile:2:10"), "{e}");
    assert!(e.contains("line 3:"), "{e}");
}
