//! `Corefile-compat/`: every real-world Corefile there passes `clusterdns check` as it is, then
//! serves from a copy with only its addresses changed: server ports and HTTP addresses moved to
//! free loopback ports, the cluster read from the demo objects file, and each `forward` sent to a
//! local upstream. A cluster name, a reverse name and a forwarded name must answer, and then what
//! the folder's `expect` file lists.

use std::collections::{BTreeMap, BTreeSet};
use std::net::{Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::Command;

use hickory_proto::op::Message;
use hickory_proto::rr::RecordType;

use clusterdns::app::App;
use clusterdns::plugin::Transport;

use crate::support;
use crate::upstream::{FakeUpstream, Knot};

/// The folders the issue names; a missing one fails the test.
const EXPECTED: &[&str] = &[
    "aaaa-filter",
    "aks",
    "autopath",
    "cilium-mcsapi",
    "coredns-deployment",
    "eks",
    "gardener",
    "k3s",
    "kubeadm",
    "kubeadm-plain-cache",
    "kubespray",
    "kubespray-k8s-external",
    "microk8s",
    "minikube",
    "nodelocaldns",
    "openshift",
    "rewrite-answers",
    "rke2",
    "snippet",
    "stub-domain",
];

/// What every Corefile must answer: `NAME TYPE RCODE DATA…` as in the `expect` files.
const EVERYWHERE: &str = "\
kubernetes.default.svc.cluster.local. A NOERROR 10.96.0.1
1.0.96.10.in-addr.arpa. PTR NOERROR kubernetes.default.svc.cluster.local.
example.org. A NOERROR 93.184.215.14
";

/// The address a stub domain's test upstream answers with.
const STUB_ANSWER: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 53);

fn corpus() -> PathBuf {
    support::root().join("Corefile-compat")
}

fn folders() -> Vec<PathBuf> {
    let mut out: Vec<PathBuf> = std::fs::read_dir(corpus())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.join("Corefile").is_file())
        .collect();
    out.sort();
    out
}

/// Where each `forward` of the copy goes.
pub(crate) struct Upstreams {
    /// Blocks for the root zone: the node's resolvers, here Knot DNS.
    pub root: SocketAddr,
    /// Blocks for the cluster's zones (NodeLocal DNSCache): a clusterdns serving the demo.
    pub cluster: SocketAddr,
    /// Blocks for other zones (stub domains): a test upstream answering [`STUB_ANSWER`].
    pub stub: SocketAddr,
}

/// The upstreams a localized Corefile forwards to, running (keep them while it runs): Knot
/// for the root zone, a test upstream for stub domains, the demo for the cluster's zones.
pub(crate) async fn local_upstreams() -> (Knot, FakeUpstream, std::sync::Arc<App>, Upstreams) {
    let knot = Knot::start().await;
    let stub = FakeUpstream::start(STUB_ANSWER).await;
    let demo = support::demo().await;
    support::until_ready(&demo).await;
    let up = Upstreams {
        root: SocketAddr::from((Ipv4Addr::LOCALHOST, knot.port)),
        cluster: demo.listeners()[0].udp,
        stub: stub.addr,
    };
    (knot, stub, demo, up)
}

/// The Corefile with its addresses changed; nothing else is touched.
pub(crate) fn localize(text: &str, dir: &Path, port: u16, up: &Upstreams) -> String {
    let demo = support::root().join("deploy/local/cluster.yaml");
    // A folder with objects of its own (`imports.yaml`) serves them beside the demo cluster.
    let imports = dir.join("imports.yaml");
    let objects = if imports.is_file() {
        let folder = dir.join("objects");
        std::fs::create_dir_all(&folder).unwrap();
        std::fs::copy(&demo, folder.join("cluster.yaml")).unwrap();
        std::fs::copy(&imports, folder.join("imports.yaml")).unwrap();
        folder
    } else {
        demo
    };
    let mut http: BTreeMap<String, u16> = BTreeMap::new();
    let mut out = String::new();
    let mut depth = 0i32;
    let mut zone = String::new();
    for line in text
        .replace("/etc/coredns/", &format!("{}/", dir.display()))
        .lines()
    {
        let trimmed = line.trim();
        let indent = &line[..line.len() - line.trim_start().len()];
        let mut words: Vec<String> = trimmed.split_whitespace().map(String::from).collect();
        let opens = words.last().is_some_and(|w| w == "{");
        if opens {
            words.pop();
        }
        let mut after = None;
        if depth == 0 && opens && !trimmed.starts_with('(') {
            zone = words[0].trim_start_matches("dns://").to_string();
            zone = zone.split(':').next().unwrap_or(".").to_string();
            for w in words.iter_mut() {
                let bare = w.rsplit_once(':').map_or(w.as_str(), |(z, _)| z);
                *w = format!("{bare}:{port}");
            }
        } else if depth >= 1 && !words.is_empty() {
            match words[0].as_str() {
                "health" | "ready" | "prometheus" => {
                    let key = format!("{} {}", words[0], words.get(1).cloned().unwrap_or_default());
                    let p = *http.entry(key).or_insert_with(crate::cli::free_port);
                    words.truncate(1);
                    words.push(format!("127.0.0.1:{p}"));
                }
                "forward" if words.len() >= 3 => {
                    let to = match zone.as_str() {
                        "." => up.root,
                        "cluster.local" | "in-addr.arpa" | "ip6.arpa" => up.cluster,
                        _ => up.stub,
                    };
                    words.truncate(2);
                    words.push(to.to_string());
                }
                "kubernetes" => {
                    let line = format!("{indent}    objects {}", objects.display());
                    if !opens {
                        words.push("{".into());
                        after = Some(format!("{line}\n{indent}}}"));
                    } else {
                        after = Some(line);
                    }
                }
                "bind" => words.truncate(1),
                _ => {}
            }
            if words[0] == "bind" {
                words.push("127.0.0.1".into());
            }
        }
        if opens {
            words.push("{".into());
        }
        out.push_str(indent);
        out.push_str(&words.join(" "));
        out.push('\n');
        if let Some(a) = after {
            out.push_str(&a);
            out.push('\n');
        }
        depth += trimmed.matches('{').count() as i32 - trimmed.matches('}').count() as i32;
    }
    out
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let p = e.unwrap().path();
        let dest = to.join(p.file_name().unwrap());
        if p.is_dir() {
            copy_dir(&p, &dest);
        } else {
            std::fs::copy(&p, &dest).unwrap();
        }
    }
}

/// One line of an `expect` file checked against the server; `Err` says what differed. A line is
/// `NAME TYPE RCODE DATA…`, `-` for no records; records whose data holds spaces (SRV) end with
/// `;`.
pub(crate) async fn check(running: &App, port: u16, line: &str) -> Result<(), String> {
    let mut f = line.splitn(4, char::is_whitespace);
    let (Some(name), Some(qtype), Some(rcode)) = (f.next(), f.next(), f.next()) else {
        return Err(format!("bad expect line: {line}"));
    };
    // The records' data: separated by spaces, or by ';' when one holds spaces (SRV).
    let rest = f.next().unwrap_or_default();
    let want: BTreeSet<String> = if rest.contains(';') {
        rest.split(';')
            .map(str::trim)
            .filter(|w| !w.is_empty())
            .map(String::from)
            .collect()
    } else {
        rest.split_whitespace()
            .filter(|w| *w != "-")
            .map(String::from)
            .collect()
    };
    let qtype: RecordType = qtype.parse().map_err(|_| format!("bad type in {line}"))?;
    let q = support::query(name, qtype, Some(1232)).to_vec().unwrap();
    let Some(bytes) = support::ask(running, port, &q, Transport::Udp).await else {
        return Err(format!("{name} {qtype}: no answer"));
    };
    let msg = Message::from_vec(&bytes).map_err(|e| e.to_string())?;
    let got_rcode = support::rcode_name(msg.metadata.response_code);
    let got: BTreeSet<String> = msg
        .answers
        .iter()
        .filter(|r| r.record_type() == qtype)
        .map(|r| {
            // An answer for another name than the one asked is a failure whatever its data.
            if r.name.to_ascii().to_lowercase() == name.to_lowercase() {
                r.data.to_string()
            } else {
                format!("{} (for {})", r.data, r.name)
            }
        })
        .collect();
    if got_rcode != rcode || got != want {
        return Err(format!(
            "{name} {qtype}: got {got_rcode} {got:?}, expected {rcode} {want:?}"
        ));
    }
    Ok(())
}

#[test]
fn every_corefile_passes_check_as_shipped() {
    let names: Vec<String> = folders()
        .iter()
        .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
        .collect();
    for e in EXPECTED {
        assert!(
            names.iter().any(|n| n == e),
            "Corefile-compat/{e} is missing"
        );
    }
    for dir in folders() {
        assert!(
            dir.join("NOTE.md").is_file(),
            "{}: no NOTE.md",
            dir.display()
        );
        let out = Command::new(env!("CARGO_BIN_EXE_clusterdns"))
            .arg("check")
            .arg(dir.join("Corefile"))
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}: {}{}",
            dir.display(),
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_corefile_serves_the_cluster_and_forwards() {
    let (_knot, _stub, _demo, up) = local_upstreams().await;
    let mut failures = Vec::new();
    for folder in folders() {
        let name = folder.file_name().unwrap().to_string_lossy().into_owned();
        let tmp = tempfile::tempdir().unwrap();
        copy_dir(&folder, tmp.path());
        let text = std::fs::read_to_string(folder.join("Corefile")).unwrap();
        let port = crate::cli::free_port();
        let corefile = localize(&text, tmp.path(), port, &up);
        let path = tmp.path().join("Corefile");
        std::fs::write(&path, &corefile).unwrap();
        if std::env::var_os("COMPAT_SHOW").is_some() {
            eprintln!("== {name}\n{corefile}");
        }
        let running = support::start(&path, &corefile).await;
        support::until_ready(&running).await;
        let expect = std::fs::read_to_string(folder.join("expect")).unwrap_or_default();
        let lines = EVERYWHERE
            .lines()
            .chain(expect.lines())
            .filter(|l| !l.trim().is_empty() && !l.starts_with('#'));
        for line in lines {
            if let Err(e) = check(&running, port, line).await {
                failures.push(format!("{name}: {e}"));
            }
        }
        running.close().await;
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
