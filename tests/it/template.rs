//! `template`: AKS's two templates, AAAA filtering, answers from regex groups, every section,
//! CNAMEs followed, failures counted.

use std::net::Ipv4Addr;

use hickory_proto::rr::{DNSClass, RecordType};

use clusterdns::app::App;

use crate::support;
use crate::upstream::FakeUpstream;

use support::Sections as Answer;

async fn ask_class(running: &App, name: &str, qtype: RecordType, class: DNSClass) -> Answer {
    support::ask_sections(running, name, qtype, class).await
}

async fn ask(running: &App, name: &str, qtype: RecordType) -> Answer {
    support::ask_sections(running, name, qtype, DNSClass::IN).await
}

async fn server(templates: &str, upstream: &FakeUpstream) -> std::sync::Arc<App> {
    let objects = support::root().join("deploy/local/cluster.yaml");
    let corefile = format!(
        ".:0 {{\n    errors\n    kubernetes cluster.local in-addr.arpa ip6.arpa {{\n        objects {}\n        pods insecure\n        fallthrough in-addr.arpa ip6.arpa\n    }}\n    forward . {}\n{templates}\n}}\n",
        objects.display(),
        upstream.addr
    );
    let running = support::start(&support::root().join("Corefile"), &corefile).await;
    support::until_ready(&running).await;
    running
}

/// AKS's stock templates, as `Corefile-compat/aks` has them.
const AKS: &str = r#"    template ANY ANY internal.cloudapp.net {
      match "^(?:[^.]+\.){4,}internal\.cloudapp\.net\.$"
      rcode NXDOMAIN
      fallthrough
    }
    template ANY ANY reddog.microsoft.com {
      rcode NXDOMAIN
    }"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn aks_templates_deny_search_path_names_and_pass_the_rest() {
    let up = FakeUpstream::start(Ipv4Addr::new(192, 0, 2, 1)).await;
    let running = server(AKS, &up).await;
    // Four or more labels before the zone: the search-path expansions AKS wants to stop.
    let a = ask(
        &running,
        "web.default.svc.cluster.local.internal.cloudapp.net.",
        RecordType::A,
    )
    .await;
    assert_eq!(
        (a.rcode.as_str(), a.aa, a.answers.len()),
        ("NXDOMAIN", true, 0)
    );
    assert_eq!(up.state.queries(), 0, "nothing went upstream");
    // A VM's own name in the zone falls through to forward.
    let a = ask(&running, "vm-1.internal.cloudapp.net.", RecordType::A).await;
    assert_eq!(a.rcode, "NOERROR");
    assert_eq!(a.answers, ["vm-1.internal.cloudapp.net. 60 A 192.0.2.1"]);
    // Everything under reddog.microsoft.com is denied, any type.
    for t in [RecordType::A, RecordType::AAAA, RecordType::TXT] {
        let a = ask(&running, "x.reddog.microsoft.com.", t).await;
        assert_eq!((a.rcode.as_str(), a.aa), ("NXDOMAIN", true), "{t}");
    }
    // The cluster is untouched.
    let a = ask(
        &running,
        "kubernetes.default.svc.cluster.local.",
        RecordType::A,
    )
    .await;
    assert_eq!(
        a.answers,
        ["kubernetes.default.svc.cluster.local. 5 A 10.96.0.1"]
    );
    let metrics = String::from_utf8(running.metrics().render()).unwrap();
    let matches: Vec<&str> = metrics
        .lines()
        .filter(|l| l.starts_with("coredns_template_matches_total{"))
        .collect();
    let reddog: Vec<&&str> = matches
        .iter()
        .filter(|l| l.contains(r#"zone="reddog.microsoft.com.""#))
        .collect();
    assert_eq!(reddog.len(), 3, "one per type: {matches:?}");
    assert!(
        reddog
            .iter()
            .all(|l| l.contains(r#"class="IN""#) && l.ends_with(" 1"))
    );
    assert!(
        matches
            .iter()
            .any(|l| l.contains(r#"zone="internal.cloudapp.net.""#)
                && l.contains(r#"type="A""#)
                && l.ends_with(" 1")),
        "{matches:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn aaaa_filtering_answers_nodata_for_every_name() {
    let up = FakeUpstream::start(Ipv4Addr::new(192, 0, 2, 1)).await;
    let running = server("    template ANY AAAA {\n      rcode NOERROR\n    }", &up).await;
    for name in ["kubernetes.default.svc.cluster.local.", "example.net."] {
        let a = ask(&running, name, RecordType::AAAA).await;
        assert_eq!(
            (a.rcode.as_str(), a.aa, a.answers.len()),
            ("NOERROR", true, 0),
            "{name}"
        );
    }
    assert_eq!(up.state.queries(), 0);
    // Other types are not the template's.
    let a = ask(
        &running,
        "kubernetes.default.svc.cluster.local.",
        RecordType::A,
    )
    .await;
    assert_eq!(a.answers.len(), 1);
    let a = ask(&running, "example.net.", RecordType::A).await;
    assert_eq!(a.answers, ["example.net. 60 A 192.0.2.1"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn answers_are_rendered_from_the_match_into_every_section() {
    let up = FakeUpstream::start(Ipv4Addr::new(192, 0, 2, 1)).await;
    let templates = r#"    template IN A example {
      match "^ip-(?P<a>[0-9]+)-(?P<b>[0-9]+)-(?P<c>[0-9]+)-(?P<d>[0-9]+)[.]example[.]$"
      match ^(alias)[.]example[.]$
      answer "{{ .Name }} 60 IN A {{ .Group.a }}.{{ .Group.b }}.{{ .Group.c }}.{{ .Group.d }}"
      additional "info.{{ .Zone }} 60 IN TXT \"{{ .Type }} from {{ .Remote }}\""
      authority "{{ .Zone }} 60 IN NS ns.{{ .Zone }}"
      fallthrough
    }
    template IN A alias.cluster.local {
      answer "{{ .Name }} 30 IN CNAME kubernetes.default.svc.cluster.local."
      upstream
    }
    template IN TXT example {
      match ^nx[.]
      rcode NXDOMAIN
      authority "{{ .Zone }} 60 IN SOA ns.{{ .Zone }} hostmaster.{{ .Zone }} 1 3600 600 86400 30"
    }
    template IN MX example {
      answer "{{ .Name }} 60 IN A {{ index .Match 1 }}"
    }"#;
    let running = server(templates, &up).await;
    let a = ask(&running, "ip-10-1-2-3.example.", RecordType::A).await;
    assert_eq!((a.rcode.as_str(), a.aa), ("NOERROR", true));
    assert_eq!(a.answers, ["ip-10-1-2-3.example. 60 A 10.1.2.3"]);
    assert_eq!(a.additional, ["info.example. 60 TXT A from 127.0.0.1"]);
    assert_eq!(a.authority, ["example. 60 NS ns.example."]);
    // The second `match` matched: the named groups are empty, so the address does not read.
    let a = ask(&running, "alias.example.", RecordType::A).await;
    assert_eq!(a.rcode, "SERVFAIL");
    // No match in the zone, fallthrough: on to forward.
    let a = ask(&running, "www.example.", RecordType::A).await;
    assert_eq!(a.answers, ["www.example. 60 A 192.0.2.1"]);
    // A CNAME with `upstream` is followed through the server itself.
    let a = ask(&running, "alias.cluster.local.", RecordType::A).await;
    assert_eq!(
        a.answers,
        [
            "alias.cluster.local. 30 CNAME kubernetes.default.svc.cluster.local.",
            "kubernetes.default.svc.cluster.local. 5 A 10.96.0.1"
        ]
    );
    // rcode with an authority section.
    let a = ask(&running, "nx.example.", RecordType::TXT).await;
    assert_eq!((a.rcode.as_str(), a.aa), ("NXDOMAIN", true));
    assert_eq!(
        a.authority,
        ["example. 60 SOA ns.example. hostmaster.example. 1 3600 600 86400 30"]
    );
    // No match, no fallthrough: NXDOMAIN.
    let a = ask(&running, "other.example.", RecordType::TXT).await;
    assert_eq!((a.rcode.as_str(), a.answers.len()), ("NXDOMAIN", 0));
    // Another class is not the template's: it goes on (and kubernetes and forward do not take CH).
    let a = ask_class(
        &running,
        "ip-10-1-2-3.example.",
        RecordType::A,
        DNSClass::CH,
    )
    .await;
    assert_ne!(a.answers, ["ip-10-1-2-3.example. 60 A 10.1.2.3"]);
    // An index past the groups: a template failure, SERVFAIL, counted.
    let a = ask(&running, "mail.example.", RecordType::MX).await;
    assert_eq!(a.rcode, "SERVFAIL");
    let metrics = String::from_utf8(running.metrics().render()).unwrap();
    assert!(
        metrics.lines().any(
            |l| l.starts_with("coredns_template_template_failures_total{")
                && l.contains(r#"section="answer""#)
                && l.ends_with(" 1")
        ),
        "{metrics}"
    );
    assert!(
        metrics
            .lines()
            .any(|l| l.starts_with("coredns_template_rr_failures_total{") && l.ends_with(" 1")),
        "the alias answer did not read as a record"
    );
}
