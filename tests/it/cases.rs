//! DNS behaviour as data: every `tests/cases/*.yaml` is run in-process, over UDP and over TCP.
//!
//! ```yaml
//! fixture: ../fixtures/edge.yaml        # Kubernetes objects, relative to the case file
//! corefile: |                           # FIXTURE stands for the fixture's path; port 0 = any
//!   .:0 { kubernetes cluster.local { objects FIXTURE } }
//! cases:
//!   - qname: web.shop.svc.cluster.local.
//!     qtype: A
//!     rcode: NOERROR                    # default NOERROR
//!     aa: true                          # checked when given
//!     answer: ["web.shop.svc.cluster.local. 5 IN A 10.96.0.7"]   # each section defaults to []
//!     ns: []
//!     extra: []
//! ```

use std::path::{Path, PathBuf};

use hickory_proto::op::Message;
use hickory_proto::rr::RecordType;
use serde::Deserialize;

use clusterdns::plugin::Transport;

use crate::apiserver::ApiServer;
use crate::support::{self, fmt_record, rcode_name};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CaseFile {
    fixture: String,
    corefile: String,
    cases: Vec<Case>,
}

#[derive(Deserialize, Debug)]
#[serde(deny_unknown_fields)]
struct Case {
    qname: String,
    qtype: String,
    #[serde(default = "noerror")]
    rcode: String,
    aa: Option<bool>,
    #[serde(default)]
    answer: Vec<String>,
    #[serde(default)]
    ns: Vec<String>,
    #[serde(default)]
    extra: Vec<String>,
    /// Send EDNS with this UDP size.
    edns: Option<u16>,
}

fn noerror() -> String {
    "NOERROR".into()
}

fn case_files() -> Vec<PathBuf> {
    let dir = support::root().join("tests/cases");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .expect("tests/cases exists")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
        .collect();
    files.sort();
    assert!(!files.is_empty(), "no case files in {}", dir.display());
    files
}

fn sorted(mut v: Vec<String>) -> Vec<String> {
    v.sort();
    v
}

fn normalise(expected: &[String]) -> Vec<String> {
    sorted(
        expected
            .iter()
            .map(|s| s.split_whitespace().collect::<Vec<_>>().join(" "))
            .collect(),
    )
}

fn section(records: &[hickory_proto::rr::Record]) -> Vec<String> {
    sorted(
        records
            .iter()
            .map(|r| {
                fmt_record(r)
                    .split_whitespace()
                    .collect::<Vec<_>>()
                    .join(" ")
            })
            .collect(),
    )
}

/// Checks one response; returns a description of every difference.
fn check(case: &Case, how: &str, bytes: Option<Vec<u8>>) -> Vec<String> {
    let Some(bytes) = bytes else {
        return vec![format!("{how}: no response")];
    };
    let msg = match Message::from_vec(&bytes) {
        Ok(m) => m,
        Err(e) => return vec![format!("{how}: response does not parse: {e}")],
    };
    let mut diffs = Vec::new();
    let rcode = rcode_name(msg.metadata.response_code);
    if rcode != case.rcode {
        diffs.push(format!("{how}: rcode {rcode}, expected {}", case.rcode));
    }
    if let Some(aa) = case.aa
        && msg.metadata.authoritative != aa
    {
        diffs.push(format!(
            "{how}: aa {}, expected {aa}",
            msg.metadata.authoritative
        ));
    }
    for (name, got, want) in [
        ("answer", section(&msg.answers), normalise(&case.answer)),
        ("ns", section(&msg.authorities), normalise(&case.ns)),
        ("extra", section(&msg.additionals), normalise(&case.extra)),
    ] {
        if got != want {
            diffs.push(format!(
                "{how}: {name}\n    got:  {got:#?}\n    want: {want:#?}"
            ));
        }
    }
    diffs
}

/// Where a case file's cluster comes from.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Source {
    /// `objects FIXTURE`, as written.
    Objects,
    /// The fixture loaded into the test API server, and `kubeconfig` in place of `objects`.
    Live,
}

/// The failures, and how many answers (UDP and TCP) the fast path gave.
async fn run_file(path: &Path, source: Source) -> (Vec<String>, usize) {
    let text = std::fs::read_to_string(path).expect("case file reads");
    let file: CaseFile =
        yaml_serde::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let dir = path.parent().expect("case dir");
    let fixture = dir.join(&file.fixture);
    assert!(
        fixture.exists(),
        "{}: fixture {} is missing",
        path.display(),
        fixture.display()
    );
    let tmp = tempfile::tempdir().expect("tempdir");
    let mut api = None;
    let corefile = match source {
        Source::Objects => file
            .corefile
            .replace("FIXTURE", &fixture.display().to_string()),
        Source::Live => {
            let server = ApiServer::start().await;
            server.load_file(&fixture);
            let kubeconfig = server.kubeconfig(tmp.path());
            api = Some(server);
            file.corefile.replace(
                "objects FIXTURE",
                &format!("kubeconfig {}", kubeconfig.display()),
            )
        }
    };
    let running = support::start(&path.with_extension("Corefile"), &corefile).await;
    if source == Source::Live {
        support::until_ready(&running).await;
    }
    let how = |t: &str| match source {
        Source::Objects => t.to_string(),
        Source::Live => format!("live {t}"),
    };
    let port = running.listeners()[0].port;
    let router = running.router(port).expect("router");
    let mut failures = Vec::new();
    let mut fast = 0;
    for case in &file.cases {
        let qtype: RecordType = case
            .qtype
            .parse()
            .unwrap_or_else(|_| panic!("qtype {}", case.qtype));
        let q = support::query(&case.qname, qtype, case.edns);
        let bytes = q.to_vec().expect("query encodes");
        let mut diffs = check(
            case,
            &how("in-process"),
            support::in_process(&running, port, &bytes).await,
        );
        diffs.extend(check(
            case,
            &how("udp"),
            support::ask(&running, port, &bytes, Transport::Udp).await,
        ));
        diffs.extend(check(
            case,
            &how("tcp"),
            support::ask(&running, port, &bytes, Transport::Tcp).await,
        ));
        // The fast path, where it answers, must answer as the general path does, to the byte.
        let src = std::net::SocketAddr::from(([127, 0, 0, 1], 40000));
        for transport in [Transport::Udp, Transport::Tcp] {
            let mut out = Vec::new();
            if !router.answer_fast(&bytes, src, transport, &mut out) {
                continue;
            }
            fast += 1;
            let general = router.handle_bytes_general(&bytes, src, transport).await;
            // An answer the cache keeps counts its TTLs down: a second may pass between two.
            if !general
                .as_deref()
                .is_some_and(|g| support::same_but_a_second(g, &out))
            {
                diffs.push(format!(
                    "{}: the fast path answered {out:02x?}, the general path {general:02x?}",
                    how(transport.as_str())
                ));
            }
        }
        if !diffs.is_empty() {
            failures.push(format!(
                "{} {} {}:\n  {}",
                path.file_name().unwrap_or_default().to_string_lossy(),
                case.qname,
                case.qtype,
                diffs.join("\n  ")
            ));
        }
    }
    running.shutdown().await;
    drop(api);
    (failures, fast)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_case_in_process_udp_and_tcp() {
    let mut failures = Vec::new();
    let mut count = 0;
    let mut fast = 0;
    for f in case_files() {
        let text = std::fs::read_to_string(&f).unwrap();
        count += text.matches("- qname:").count();
        let (failed, answered_fast) = run_file(&f, Source::Objects).await;
        failures.extend(failed);
        fast += answered_fast;
    }
    assert!(count > 0);
    // Most cluster names are plain A, AAAA, SRV and PTR questions: the fast path must have
    // taken a good share of the battery, or it was not tested.
    assert!(
        fast * 4 >= count,
        "the fast path answered {fast} of {count} cases (UDP and TCP)"
    );
    assert!(
        failures.is_empty(),
        "{} of {count} cases failed:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

/// The same battery with the cluster served by the (test) Kubernetes API: the live source must
/// answer exactly as the objects file does.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_case_through_the_kubernetes_api() {
    let mut failures = Vec::new();
    for f in case_files() {
        failures.extend(run_file(&f, Source::Live).await.0);
    }
    assert!(
        failures.is_empty(),
        "{} cases failed through the API:\n{}",
        failures.len(),
        failures.join("\n")
    );
}
