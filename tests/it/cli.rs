//! The `clusterdns` binary: CoreDNS's flags, `check`, and serving the demo.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::support;

fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_clusterdns"))
}

fn run(args: &[&str]) -> (bool, String, String) {
    let out = bin().args(args).output().expect("binary runs");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn coredns_single_dash_flags() {
    let (ok, out, _) = run(&["-version"]);
    assert!(ok && out.starts_with("clusterdns-"), "{out}");
    assert!(
        out.contains(&format!(
            "Corefile support: CoreDNS-{}",
            clusterdns::COREDNS_RELEASE
        )),
        "{out}"
    );
    assert_eq!(clusterdns::COREDNS_RELEASE, "1.14.7");
    let (ok, out, _) = run(&["--version"]);
    assert!(ok && out.starts_with("clusterdns-"), "{out}");
    let (ok, out, _) = run(&["-plugins"]);
    assert!(
        ok && out.contains("dns.kubernetes") && out.contains("dns.errors"),
        "{out}"
    );
    let (ok, out, _) = run(&["--help"]);
    assert!(
        ok && out.contains("-conf") && out.contains("check"),
        "{out}"
    );
}

#[test]
fn check_accepts_the_demo() {
    let demo = support::root().join("deploy/local/Corefile");
    let (ok, out, err) = run(&["check", demo.to_str().unwrap()]);
    assert!(ok, "{out}{err}");
    assert!(out.contains("OK"), "{out}");
}

#[test]
fn check_prints_every_error_with_its_position() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("Corefile");
    std::fs::write(
        &path,
        ".:53 {\n    errors\n    kubernetes cluster.local {\n        podz insecure\n        objects c.yaml\n        ttl forever\n    }\n    cache 30 {\n        prefetch 0\n    }\n}\n",
    )
    .unwrap();
    let (ok, out, err) = run(&["check", path.to_str().unwrap()]);
    assert!(!ok, "{out}");
    let p = path.display();
    let lines: Vec<&str> = err.lines().collect();
    assert_eq!(lines.len(), 3, "{err}");
    assert!(
        lines[0].starts_with(&format!("{p}:4:9: kubernetes: unknown property 'podz'")),
        "{err}"
    );
    assert!(
        lines[1].starts_with(&format!(
            "{p}:6:13: kubernetes: ttl: 'forever' is not a TTL"
        )),
        "{err}"
    );
    assert!(
        lines[2].starts_with(&format!(
            "{p}:9:18: cache: prefetch: '0' is not an amount above 0"
        )),
        "{err}"
    );
}

#[test]
fn check_reports_a_broken_objects_file_with_its_position() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("Corefile"),
        ".:53 {\n kubernetes {\n  objects objs.yaml\n }\n}\n",
    )
    .unwrap();
    std::fs::write(
        dir.path().join("objs.yaml"),
        "kind: List\nitems:\n  - kind: Service\n    metadata: {name: x\n",
    )
    .unwrap();
    let (ok, _, err) = run(&["check", dir.path().join("Corefile").to_str().unwrap()]);
    assert!(!ok);
    assert!(
        err.contains("objs.yaml:") && err.contains("invalid YAML"),
        "{err}"
    );
}

/// Every error of `check` has a place: an objects file that cannot be read is named at the
/// Corefile line of its `objects` property.
#[test]
fn check_names_the_corefile_line_of_an_objects_file_it_cannot_read() {
    let dir = tempfile::tempdir().unwrap();
    let corefile = dir.path().join("Corefile");
    std::fs::write(
        &corefile,
        ".:53 {\n kubernetes {\n  objects nosuch.yaml\n }\n}\n",
    )
    .unwrap();
    let (ok, _, err) = run(&["check", corefile.to_str().unwrap()]);
    assert!(!ok);
    let want = format!(
        "{}:3:3: kubernetes: objects: {}: cannot read",
        corefile.display(),
        dir.path().join("nosuch.yaml").display()
    );
    assert!(err.starts_with(&want), "{err}");
}

/// `check` with no FILE reads ./Corefile, as `-conf` does.
#[test]
fn check_defaults_to_the_corefile_here() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::copy(
        support::root().join("deploy/local/cluster.yaml"),
        dir.path().join("cluster.yaml"),
    )
    .unwrap();
    std::fs::copy(
        support::root().join("deploy/local/Corefile"),
        dir.path().join("Corefile"),
    )
    .unwrap();
    let out = bin().arg("check").current_dir(dir.path()).output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("Corefile: OK"), "{stdout}");
    let empty = tempfile::tempdir().unwrap();
    let out = bin()
        .arg("check")
        .current_dir(empty.path())
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).starts_with("Corefile: cannot read the Corefile"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A zone that looks like a duration, a number or an address is kept (CoreDNS reads it as a
/// zone too), with a warning at its place.
#[test]
fn check_warns_of_zones_that_look_like_slips() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("Corefile");
    std::fs::write(
        &path,
        ".:53 {\n cache 30s\n}\ncluster.local:53 {\n cache 30 60 10.0.0.1\n}\n",
    )
    .unwrap();
    let (ok, out, err) = run(&["check", path.to_str().unwrap()]);
    assert!(ok, "{out}{err}");
    for want in [
        ":2:8: '30s' is read as a zone, as CoreDNS reads it, but it looks like a duration",
        ":5:11: '60' is read as a zone, as CoreDNS reads it, but it looks like a number",
        ":5:14: '10.0.0.1' is read as a zone, as CoreDNS reads it, but it looks like an address",
    ] {
        assert!(out.contains(want), "{want}\n{out}");
    }
}

#[test]
fn check_reads_the_kubeconfig_and_its_context() {
    let dir = tempfile::tempdir().unwrap();
    let corefile = dir.path().join("Corefile");
    let kc = "apiVersion: v1\nkind: Config\nclusters:\n- name: c\n  cluster: {server: 'https://k:6443'}\nusers:\n- name: u\n  user: {}\ncontexts:\n- name: prod\n  context: {cluster: c, user: u}\ncurrent-context: prod\n";
    std::fs::write(dir.path().join("kubeconfig"), kc).unwrap();
    let check = |text: &str| {
        std::fs::write(&corefile, text).unwrap();
        run(&["check", corefile.to_str().unwrap()])
    };
    let (ok, out, err) = check(".:53 {\n kubernetes {\n  kubeconfig kubeconfig prod\n }\n}\n");
    assert!(ok, "{out}{err}");
    let (ok, _, err) = check(".:53 {\n kubernetes {\n  kubeconfig kubeconfig staging\n }\n}\n");
    assert!(!ok);
    assert!(
        err.contains("no context named 'staging' (it has: prod)"),
        "{err}"
    );
    let (ok, _, err) = check(".:53 {\n kubernetes {\n  kubeconfig missing.yaml\n }\n}\n");
    assert!(!ok);
    assert!(err.contains("missing.yaml"), "{err}");
}

#[test]
fn check_shows_warnings_about_deprecated_properties() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("Corefile");
    let demo = support::root().join("deploy/local/cluster.yaml");
    let text = format!(
        ".:53 {{\n kubernetes {{\n  objects {}\n  upstream\n }}\n}}\n",
        demo.display()
    );
    std::fs::write(&path, text).unwrap();
    let (ok, out, err) = run(&["check", path.to_str().unwrap()]);
    assert!(ok, "{out}{err}");
    assert!(
        out.contains(":4:3: kubernetes: 'upstream' is deprecated and ignored"),
        "{out}"
    );
}

#[test]
fn missing_corefile_is_a_clear_error() {
    let (ok, _, err) = run(&["-conf", "/nonexistent/Corefile"]);
    assert!(!ok);
    assert!(
        err.starts_with("/nonexistent/Corefile: cannot read the Corefile"),
        "{err}"
    );
}

/// The README's first command, on a free port: the demo answers `dig`.
#[test]
fn the_binary_serves_the_demo_with_dns_port() {
    if !crate::clients::have("dig") {
        panic!("dig is missing: install bind9-dnsutils (.ci/run does)");
    }
    let dir = tempfile::tempdir().unwrap();
    let demo = support::root().join("deploy/local");
    // The demo Corefile with its ports left to -dns.port.
    let text = std::fs::read_to_string(demo.join("Corefile"))
        .unwrap()
        .replace(":1053", "");
    std::fs::write(dir.path().join("Corefile"), text).unwrap();
    std::fs::copy(demo.join("cluster.yaml"), dir.path().join("cluster.yaml")).unwrap();
    let port = free_port();
    let child = bin()
        .args([
            "-conf",
            dir.path().join("Corefile").to_str().unwrap(),
            "-dns.port",
            &port.to_string(),
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut answer = String::new();
    while Instant::now() < deadline {
        answer = crate::clients::dig(port, &["kubernetes.default.svc.cluster.local", "+short"]);
        if answer.trim() == "10.96.0.1" {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let _ = Command::new("kill").arg(child.id().to_string()).status();
    let out = child.wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        answer.trim(),
        "10.96.0.1",
        "stdout: {stdout}\nstderr: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains(&format!(".:{port}")) && stdout.contains("clusterdns-"),
        "{stdout}"
    );
    assert!(out.status.success(), "exit on SIGTERM: {:?}", out.status);
}

pub fn free_port() -> u16 {
    support::free_port()
}
