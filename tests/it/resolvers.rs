//! The stub resolvers pods really use, asking the server as pods do: port 53, the search list
//! `NS.svc.cluster.local svc.cluster.local cluster.local` and `options ndots:5`.
//!
//! Each test makes a network namespace of its own (`ip netns add`), runs the demo (its
//! Corefile on port 53, its cluster plus a headless Service of 60 endpoints) inside it, and
//! asks through `ip netns exec`, which also gives each client a mount namespace with the
//! namespace's own resolv.conf, hosts and nsswitch.conf bind-mounted over /etc's (as `unshare
//! -m` and `mount --bind` would). The clients:
//! - glibc: `getent ahosts`/`hosts`, and `tests/resolvers/resolve.c` built with `cc`;
//! - musl 1.2.3 (Debian's musl-tools): the same program built with `musl-gcc`. Before 1.2.4
//!   musl never retries over TCP, so a truncated answer is all it gets;
//! - c-ares, through Node's `dns.Resolver` (it retries a truncated answer over TCP).
//!
//! They need root (network namespaces), as CI runs; `.ci/run` installs musl-tools and nodejs.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use crate::support;

/// The pod's namespace: its search list starts with `shop.svc.cluster.local`.
const POD_NAMESPACE: &str = "shop";

/// Endpoints of the large headless Service: more A records than fit in 512 bytes.
const BIG: usize = 60;

fn big_ip(i: usize) -> String {
    format!("10.60.0.{}", i + 1)
}

/// A network namespace with the demo serving on 127.0.0.1:53 inside it.
struct Pod {
    netns: String,
    /// The server, once started (the namespace is cleaned up either way).
    server: Option<Child>,
    _dir: tempfile::TempDir,
}

fn ip(args: &[&str]) -> Output {
    Command::new("ip")
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("ip {args:?}: {e} (install iproute2; .ci/run does)"))
}

impl Pod {
    fn start() -> Pod {
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let netns = format!(
            "cdns-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        );
        let added = ip(&["netns", "add", &netns]);
        assert!(
            added.status.success(),
            "cannot make a network namespace (these tests need root, as CI runs them): {}",
            String::from_utf8_lossy(&added.stderr)
        );
        // What `ip netns exec` mounts over /etc for every process it starts.
        let etc = Path::new("/etc/netns").join(&netns);
        std::fs::create_dir_all(&etc).unwrap();
        std::fs::write(
            etc.join("resolv.conf"),
            format!(
                "nameserver 127.0.0.1\nsearch {POD_NAMESPACE}.svc.cluster.local svc.cluster.local cluster.local\noptions ndots:5\n"
            ),
        )
        .unwrap();
        std::fs::write(etc.join("hosts"), "127.0.0.1 localhost\n::1 localhost\n").unwrap();
        std::fs::write(etc.join("nsswitch.conf"), "hosts: files dns\n").unwrap();
        let mut pod = Pod {
            netns,
            server: None,
            _dir: tempfile::tempdir().unwrap(),
        };
        // Loopback, and an interface with an address of each family as a pod has: glibc's
        // getaddrinfo (AI_ADDRCONFIG, as getent asks) asks for no family the host has no
        // address of, loopback aside. The veth's other end stays in the namespace, down:
        // nothing leaves it.
        for argv in [
            &["ip", "link", "set", "lo", "up"][..],
            &[
                "ip", "link", "add", "eth0", "type", "veth", "peer", "name", "eth1",
            ],
            &["ip", "addr", "add", "10.244.9.9/24", "dev", "eth0"],
            &[
                "ip",
                "addr",
                "add",
                "fd00:244::9/64",
                "dev",
                "eth0",
                "nodad",
            ],
            &["ip", "link", "set", "eth0", "up"],
        ] {
            let out = pod.exec(argv);
            assert!(
                out.status.success(),
                "{argv:?}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }

        // The demo, on port 53, with a large headless Service beside its cluster.
        let dir = pod._dir.path();
        support::demo_objects(dir, &[("big.yaml", &big_service())]);
        let corefile = std::fs::read_to_string(support::root().join("deploy/local/Corefile"))
            .unwrap()
            .replace(":1053", ":53")
            .replace("objects cluster.yaml", "objects objects");
        std::fs::write(dir.join("Corefile"), corefile).unwrap();
        let log = std::fs::File::create(dir.join("server.log")).unwrap();
        let server = Command::new("ip")
            .args(["netns", "exec", &pod.netns])
            .arg(env!("CARGO_BIN_EXE_clusterdns"))
            .args(["-conf", dir.join("Corefile").to_str().unwrap()])
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .stdin(Stdio::null())
            .spawn()
            .unwrap();
        pod.server = Some(server);
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let out = pod.exec(&[
                "dig",
                "+short",
                "+time=1",
                "+tries=1",
                "@127.0.0.1",
                "kubernetes.default.svc.cluster.local",
            ]);
            if String::from_utf8_lossy(&out.stdout).trim() == "10.96.0.1" {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "the server does not answer in the namespace: {}",
                std::fs::read_to_string(dir.join("server.log")).unwrap_or_default()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        pod
    }

    /// Runs `argv` inside the namespace, with its resolv.conf.
    fn exec(&self, argv: &[&str]) -> Output {
        Command::new("ip")
            .args(["netns", "exec", &self.netns])
            .args(argv)
            .stdin(Stdio::null())
            .output()
            .unwrap_or_else(|e| panic!("{argv:?}: {e}"))
    }

    /// Standard output's lines of `argv`, and whether it succeeded.
    fn lines(&self, argv: &[&str]) -> (bool, Vec<String>) {
        let out = self.exec(argv);
        let text = String::from_utf8_lossy(&out.stdout);
        (
            out.status.success(),
            text.lines().map(str::to_string).collect(),
        )
    }
}

impl Drop for Pod {
    fn drop(&mut self) {
        if let Some(server) = &mut self.server {
            let _ = server.kill();
            let _ = server.wait();
        }
        let _ = ip(&["netns", "del", &self.netns]);
        let _ = std::fs::remove_dir_all(Path::new("/etc/netns").join(&self.netns));
    }
}

/// `big.shop`: a headless Service with [`BIG`] ready endpoints.
fn big_service() -> String {
    let mut text = String::from(
        "apiVersion: v1\nkind: List\nitems:\n\
         - apiVersion: v1\n  kind: Service\n  metadata: {name: big, namespace: shop}\n  \
         spec: {clusterIP: None, clusterIPs: [None], ports: [{name: http, port: 80, protocol: TCP}]}\n\
         - apiVersion: discovery.k8s.io/v1\n  kind: EndpointSlice\n  \
         metadata: {name: big-1, namespace: shop, labels: {kubernetes.io/service-name: big}}\n  \
         addressType: IPv4\n  ports: [{name: http, port: 80, protocol: TCP}]\n  endpoints:\n",
    );
    for i in 0..BIG {
        text.push_str(&format!(
            "  - addresses: ['{}']\n    conditions: {{ready: true}}\n",
            big_ip(i)
        ));
    }
    text
}

/// `tests/resolvers/resolve.c` built by `compiler` (`cc`: glibc; `musl-gcc`: musl), once.
fn resolve_program(compiler: &str, extra: &[&str]) -> PathBuf {
    let out = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!("resolve-{compiler}"));
    let built = Command::new(compiler)
        .args(["-O2", "-Wall", "-Werror", "-o"])
        .arg(&out)
        .arg(support::root().join("tests/resolvers/resolve.c"))
        .args(extra)
        .output()
        .unwrap_or_else(|e| {
            panic!("{compiler}: {e} (musl-gcc comes with Debian's musl-tools; .ci/run installs it)")
        });
    assert!(
        built.status.success(),
        "{compiler}: {}",
        String::from_utf8_lossy(&built.stderr)
    );
    out
}

fn glibc_program() -> &'static Path {
    static BUILT: OnceLock<PathBuf> = OnceLock::new();
    BUILT.get_or_init(|| resolve_program("cc", &[]))
}

fn musl_program() -> &'static Path {
    static BUILT: OnceLock<PathBuf> = OnceLock::new();
    BUILT.get_or_init(|| resolve_program("musl-gcc", &["-static"]))
}

fn sorted(mut v: Vec<String>) -> Vec<String> {
    v.sort();
    v.dedup();
    v
}

fn strings(v: &[&str]) -> Vec<String> {
    v.iter().map(|s| s.to_string()).collect()
}

/// What every getaddrinfo answers, through the pod's search list: (name as the pod writes it,
/// family flag, the addresses).
fn getaddrinfo_cases() -> Vec<(&'static str, &'static str, Vec<String>)> {
    vec![
        // A short name: the first search domain.
        ("frontend", "-4", strings(&["10.96.12.34"])),
        // AAAA of a dual-stack Service.
        ("frontend", "-6", strings(&["fd00:10:96::1234"])),
        // `svc.ns`: the second search domain, after an NXDOMAIN.
        ("kubernetes.default", "-4", strings(&["10.96.0.1"])),
        // A full name without the final dot (4 dots < ndots: the search list first) and with.
        (
            "kubernetes.default.svc.cluster.local",
            "-4",
            strings(&["10.96.0.1"]),
        ),
        (
            "kubernetes.default.svc.cluster.local.",
            "-4",
            strings(&["10.96.0.1"]),
        ),
        // A headless Service: its ready endpoints.
        (
            "postgres.db",
            "-4",
            strings(&["10.244.1.30", "10.244.2.31"]),
        ),
        // A StatefulSet pod's hostname under its governing Service.
        ("postgres-0.postgres.db", "-4", strings(&["10.244.1.30"])),
    ]
}

/// The cases every getaddrinfo-based client answers alike; `program` prints one address a
/// line or `error KIND …`.
fn check_getaddrinfo(pod: &Pod, program: &Path) {
    let program = program.to_str().unwrap();
    for (name, family, want) in getaddrinfo_cases() {
        let (ok, got) = pod.lines(&[program, family, name]);
        assert!(ok, "{program} {family} {name}: {got:?}");
        assert_eq!(sorted(got), want, "{program} {family} {name}");
    }
    // Both families at once, as most programs ask.
    let (ok, got) = pod.lines(&[program, "frontend"]);
    assert!(ok, "{got:?}");
    assert_eq!(sorted(got), strings(&["10.96.12.34", "fd00:10:96::1234"]));
    // Reverse lookups.
    let (ok, got) = pod.lines(&[program, "-x", "10.96.12.34"]);
    assert!(ok, "{got:?}");
    assert_eq!(got, ["frontend.shop.svc.cluster.local"]);
    let (ok, got) = pod.lines(&[program, "-x", "fd00:10:96::1234"]);
    assert!(ok, "{got:?}");
    assert_eq!(got, ["frontend.shop.svc.cluster.local"]);
    // A name that exists nowhere: a definite "no such name" (not "try again", which has musl
    // retry for seconds and glibc report a temporary failure), in or out of the cluster.
    for name in ["nosuch", "nosuch.example", "nosuch.shop.svc.cluster.local."] {
        let (ok, got) = pod.lines(&[program, name]);
        assert!(!ok, "{name}: {got:?}");
        assert!(
            got.first().is_some_and(|l| l.starts_with("error NONAME")),
            "{program} {name}: {got:?}"
        );
    }
    let (ok, got) = pod.lines(&[program, "-x", "10.1.2.3"]);
    assert!(!ok, "{got:?}");
    assert!(
        got.first().is_some_and(|l| l.starts_with("error NONAME")),
        "{got:?}"
    );
}

/// The large headless Service's addresses as `program` gets them.
fn big(pod: &Pod, program: &Path) -> Vec<String> {
    let (ok, got) = pod.lines(&[program.to_str().unwrap(), "-4", "big"]);
    assert!(ok, "big: {got:?}");
    got
}

fn all_big() -> Vec<String> {
    sorted((0..BIG).map(big_ip).collect())
}

#[test]
fn glibc_resolves_the_names_pods_ask() {
    let pod = Pod::start();
    check_getaddrinfo(&pod, glibc_program());
    // glibc retries a truncated answer over TCP: every address.
    assert_eq!(sorted(big(&pod, glibc_program())), all_big());
    // getent, as people debug with it.
    let (ok, got) = pod.lines(&["getent", "ahosts", "kubernetes.default"]);
    assert!(ok, "{got:?}");
    assert!(got.iter().all(|l| l.starts_with("10.96.0.1 ")), "{got:?}");
    let (ok, got) = pod.lines(&["getent", "hosts", "10.96.0.10"]);
    assert!(ok, "{got:?}");
    assert_eq!(
        got,
        ["10.96.0.10      kube-dns.kube-system.svc.cluster.local"]
    );
    let (ok, got) = pod.lines(&["getent", "ahostsv4", "big"]);
    assert!(ok, "{got:?}");
    let addrs: Vec<String> = got
        .iter()
        .filter_map(|l| l.split_whitespace().next().map(str::to_string))
        .collect();
    assert_eq!(sorted(addrs), all_big());
    let (ok, got) = pod.lines(&["getent", "ahosts", "nosuch"]);
    assert!(!ok && got.is_empty(), "{got:?}");
}

#[test]
fn musl_resolves_the_names_pods_ask_and_gets_what_fits_of_a_large_answer() {
    let pod = Pod::start();
    check_getaddrinfo(&pod, musl_program());
    // musl 1.2.3 does not retry over TCP: it gets what fits in 512 bytes, whole records, and
    // each of them is one of the Service's.
    let got = big(&pod, musl_program());
    let all = all_big();
    assert!(
        got.len() >= 20 && got.len() < BIG,
        "musl got {} addresses: {got:?}",
        got.len()
    );
    assert!(got.iter().all(|a| all.contains(a)), "{got:?}");
}

/// c-ares (Node's `dns.Resolver`): fully qualified names, as it does not walk the search list
/// for `resolve*`; it retries a truncated answer over TCP.
#[test]
fn c_ares_resolves_cluster_names_and_large_answers() {
    let pod = Pod::start();
    let script = r#"
const dns = require('dns').promises;
const r = new dns.Resolver({ timeout: 2000, tries: 1 });
const show = (p) => p.then(v => [].concat(v).sort().join(','), e => 'error ' + e.code);
(async () => {
  for (const [kind, name] of JSON.parse(process.argv[1])) {
    const call = { A: n => r.resolve4(n), AAAA: n => r.resolve6(n), PTR: n => r.reverse(n),
                   SRV: n => r.resolveSrv(n).then(v => v.map(s => `${s.port} ${s.name}`)) }[kind];
    console.log(await show(call(name)));
  }
})();
"#;
    let cases = [
        (
            "A",
            "kubernetes.default.svc.cluster.local",
            "10.96.0.1".to_string(),
        ),
        (
            "AAAA",
            "frontend.shop.svc.cluster.local",
            "fd00:10:96::1234".into(),
        ),
        (
            "A",
            "postgres.db.svc.cluster.local",
            "10.244.1.30,10.244.2.31".into(),
        ),
        (
            "SRV",
            "_http._tcp.frontend.shop.svc.cluster.local",
            "80 frontend.shop.svc.cluster.local".into(),
        ),
        (
            "PTR",
            "10.96.12.34",
            "frontend.shop.svc.cluster.local".into(),
        ),
        ("A", "big.shop.svc.cluster.local", {
            let mut all: Vec<String> = (0..BIG).map(big_ip).collect();
            all.sort();
            all.join(",")
        }),
        (
            "A",
            "nosuch.shop.svc.cluster.local",
            "error ENOTFOUND".into(),
        ),
        ("A", "nosuch.example", "error ENOTFOUND".into()),
    ];
    let arg =
        serde_json::to_string(&cases.iter().map(|(k, n, _)| [*k, *n]).collect::<Vec<_>>()).unwrap();
    let out = pod.exec(&["node", "-e", script, &arg]);
    assert!(
        out.status.success(),
        "node: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    let got: Vec<&str> = text.lines().collect();
    assert_eq!(got.len(), cases.len(), "{text}");
    for ((kind, name, want), got) in cases.iter().zip(got) {
        assert_eq!(got, want, "{kind} {name}");
    }
}
