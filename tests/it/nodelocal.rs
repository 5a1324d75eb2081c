//! The node-local role, on a node made of network namespaces: a "node" with the link
//! `nodelocaldns` (a veth: this kernel has no dummy links), kube-proxy's DNAT of the kube-dns
//! ClusterIPs (as nft's `kube-proxy` table, or as iptables nat rules), Knot as the cluster's
//! DNS (the Deployment) behind them, and a "pod" beside it asking through `dig`, glibc's
//! resolver and a UDP socket. clusterdns runs with node-cache's command line.
//!
//! What tells the two answerers apart: the template block `node.test` exists only in the
//! cache's Corefile, so a TXT answer for it comes from the cache, and anything else from Knot.
//! A query for the kube-dns ClusterIP that the cache answers was not DNATed, so its packets
//! were not tracked: the NOTRACK rules were in place.

use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use hickory_proto::op::Message;
use hickory_proto::rr::RecordType;

use crate::clients::have;
use crate::support;

const LOCAL: &str = "169.254.20.10";
const CLUSTER_IP: &str = "10.96.0.10";
const LOCAL6: &str = "fd00::a";
const CLUSTER_IP6: &str = "fd00:96::a";
const UPSTREAM_IP: &str = "10.96.0.11";
const KNOT: &str = "10.244.0.1";
const KNOT6: &str = "fd00:244::1";

/// The Corefile base: Kubernetes' nodelocaldns.yaml ConfigMap after its documented edits,
/// with every local address through `__PILLAR__LOCAL__DNS__`, and the `node.test` block.
const BASE: &str = "cluster.local:53 {
    errors
    cache {
            success 9984 30
            denial 9984 5
    }
    reload
    loop
    bind __PILLAR__LOCAL__DNS__
    forward . __PILLAR__CLUSTER__DNS__ {
            force_tcp
    }
    prometheus :9253
    health 169.254.20.10:8080
    }
node.test:53 {
    bind __PILLAR__LOCAL__DNS__
    template IN TXT node.test {
        answer \"{{ .Name }} 5 IN TXT WHO\"
    }
}
.:53 {
    errors
    cache 30
    reload
    loop
    bind __PILLAR__LOCAL__DNS__
    forward . __PILLAR__UPSTREAM__SERVERS__
    prometheus :9253
    }
";

const CLUSTER_ZONE: &str = "$ORIGIN cluster.local.
$TTL 30
@ IN SOA ns.dns.cluster.local. hostmaster.cluster.local. 1 3600 600 86400 5
@ IN NS ns.dns.cluster.local.
ns.dns IN A 10.96.0.10
web.default.svc IN A 10.0.0.5
web.default.svc IN AAAA fd00:10::5
";

const STUB_ZONE: &str = "$ORIGIN stub.test.
$TTL 30
@ IN SOA ns.stub.test. hostmaster.stub.test. 1 3600 600 86400 5
@ IN NS ns.stub.test.
ns IN A 10.244.0.1
www IN A 192.0.2.7
";

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Firewall {
    Nft,
    Iptables,
}

fn run(argv: &[&str]) -> Output {
    Command::new(argv[0])
        .args(&argv[1..])
        .output()
        .unwrap_or_else(|e| panic!("{argv:?}: {e}"))
}

/// A node and a pod, each a network namespace, and Knot on the node.
struct Node {
    node: String,
    pod: String,
    dir: tempfile::TempDir,
    knot: Option<Child>,
    firewall: Firewall,
}

impl Node {
    fn new(firewall: Firewall) -> Node {
        for tool in ["dig", "knotd", "nft", "iptables", "getent"] {
            assert!(have(tool), "{tool} is missing: .ci/run installs it");
        }
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let node = format!("cdns-node-{}-{n}", std::process::id());
        let pod = format!("cdns-pod-{}-{n}", std::process::id());
        let mut me = Node {
            node,
            pod,
            dir: tempfile::tempdir().unwrap(),
            knot: None,
            firewall,
        };
        for ns in [&me.node, &me.pod] {
            let out = run(&["ip", "netns", "add", ns]);
            assert!(
                out.status.success(),
                "cannot make a network namespace (these tests need root, as CI runs them): {}",
                String::from_utf8_lossy(&out.stderr)
            );
            std::fs::create_dir_all(Path::new("/etc/netns").join(ns)).unwrap();
        }
        // The node's own resolver (for `.`): an address nothing answers on.
        me.etc(&me.node, "resolv.conf", "nameserver 10.244.0.3\n");
        me.etc(
            &me.pod,
            "resolv.conf",
            &format!("nameserver {CLUSTER_IP}\noptions timeout:2 attempts:1\n"),
        );
        me.etc(&me.pod, "nsswitch.conf", "hosts: dns\n");
        me.etc(&me.pod, "hosts", "127.0.0.1 localhost\n");
        let (node, pod) = (me.node.clone(), me.pod.clone());
        me.sh_ok(&node, "ip link set lo up");
        me.sh_ok(&pod, "ip link set lo up");
        // The link, made beforehand as the issue allows, and the pod's veth.
        me.sh_ok(
            &node,
            "ip link add nodelocaldns type veth peer name nodelocalpeer",
        );
        me.sh_ok(
            &node,
            &format!("ip link add podh type veth peer name eth0 && ip link set eth0 netns {pod}"),
        );
        me.sh_ok(
            &node,
            &format!(
                "ip addr add {KNOT}/24 dev podh && ip addr add {KNOT6}/64 dev podh nodad && ip link set podh up \
                 && ip route add 10.96.0.0/16 dev podh && ip -6 route add fd00:96::/64 dev podh"
            ),
        );
        me.sh_ok(
            &pod,
            &format!("ip addr add 10.244.0.2/24 dev eth0 && ip addr add fd00:244::2/64 dev eth0 nodad && ip link set eth0 up \
             && ip route add default via {KNOT} && ip -6 route add default via {KNOT6}"),
        );
        me.kube_proxy();
        me.start_knot();
        me
    }

    fn etc(&self, ns: &str, file: &str, text: &str) {
        std::fs::write(Path::new("/etc/netns").join(ns).join(file), text).unwrap();
    }

    fn sh(&self, ns: &str, script: &str) -> Output {
        run(&["ip", "netns", "exec", ns, "sh", "-c", script])
    }

    fn sh_ok(&self, ns: &str, script: &str) -> String {
        let out = self.sh(ns, script);
        assert!(
            out.status.success(),
            "{script}: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// kube-proxy's DNAT of the kube-dns and kube-dns-upstream ClusterIPs to Knot.
    fn kube_proxy(&self) {
        let node = self.node.clone();
        match self.firewall {
            Firewall::Nft => {
                let mut script = String::new();
                for (fam, from, upstream, to) in [
                    ("ip", CLUSTER_IP, UPSTREAM_IP, format!("{KNOT}:53")),
                    ("ip6", CLUSTER_IP6, "fd00:96::b", format!("[{KNOT6}]:53")),
                ] {
                    script.push_str(&format!(
                        "table {fam} kube-proxy {{
  chain prerouting {{
    type nat hook prerouting priority dstnat; policy accept;
    {fam} daddr {{ {from}, {upstream} }} meta l4proto {{ tcp, udp }} th dport 53 dnat to {to}
  }}
  chain output {{
    type nat hook output priority -100; policy accept;
    {fam} daddr {{ {from}, {upstream} }} meta l4proto {{ tcp, udp }} th dport 53 dnat to {to}
  }}
}}\n"
                    ));
                }
                std::fs::write(self.dir.path().join("kube-proxy.nft"), script).unwrap();
                self.sh_ok(
                    &node,
                    &format!(
                        "nft -f {}",
                        self.dir.path().join("kube-proxy.nft").display()
                    ),
                );
            }
            Firewall::Iptables => {
                for (tool, from, upstream, to) in [
                    ("iptables", CLUSTER_IP, UPSTREAM_IP, format!("{KNOT}:53")),
                    (
                        "ip6tables",
                        CLUSTER_IP6,
                        "fd00:96::b",
                        format!("[{KNOT6}]:53"),
                    ),
                ] {
                    for chain in ["PREROUTING", "OUTPUT"] {
                        for ip in [from, upstream] {
                            for proto in ["tcp", "udp"] {
                                self.sh_ok(&node, &format!(
                                    "{tool} -t nat -A {chain} -d {ip} -p {proto} --dport 53 -j DNAT --to-destination {to}"
                                ));
                            }
                        }
                    }
                }
            }
        }
    }

    fn start_knot(&mut self) {
        let d = self.dir.path();
        std::fs::write(d.join("cluster.local.zone"), CLUSTER_ZONE).unwrap();
        std::fs::write(d.join("stub.test.zone"), STUB_ZONE).unwrap();
        let conf = format!(
            "server:\n    listen: [ {KNOT}@53, {KNOT6}@53 ]\n    rundir: {dir}\ndatabase:\n    storage: {dir}/db\n{rest}",
            rest = "template:\n  - id: default\n    storage: DIR\n\
                    zone:\n  - domain: cluster.local\n    file: cluster.local.zone\n  \
                    - domain: stub.test\n    file: stub.test.zone\n\
                    log:\n  - target: stderr\n    any: warning\n"
                .replace("DIR", &d.display().to_string()),
            dir = d.display()
        );
        std::fs::write(d.join("knot.conf"), conf).unwrap();
        let child = Command::new("ip")
            .args(["netns", "exec", &self.node, "knotd", "-c"])
            .arg(d.join("knot.conf"))
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(d.join("knot.log")).unwrap())
            .spawn()
            .unwrap();
        self.knot = Some(child);
        let start = Instant::now();
        while !self
            .dig(
                &self.node.clone(),
                KNOT,
                "web.default.svc.cluster.local",
                "A",
            )
            .contains("10.0.0.5")
        {
            assert!(
                start.elapsed() < Duration::from_secs(10),
                "knotd did not start: {}",
                std::fs::read_to_string(d.join("knot.log")).unwrap_or_default()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// `dig @server name type +short` from `ns`, one try of one second, over UDP: the
    /// answer's data, or "" when none came.
    fn dig(&self, ns: &str, server: &str, name: &str, qtype: &str) -> String {
        self.dig_with(ns, server, name, qtype, "+notcp")
    }

    fn dig_tcp(&self, ns: &str, server: &str, name: &str, qtype: &str) -> String {
        self.dig_with(ns, server, name, qtype, "+tcp")
    }

    fn dig_with(&self, ns: &str, server: &str, name: &str, qtype: &str, how: &str) -> String {
        let out = run(&[
            "ip",
            "netns",
            "exec",
            ns,
            "dig",
            &format!("@{server}"),
            name,
            qtype,
            "+short",
            "+time=1",
            "+tries=1",
            how,
        ]);
        // dig +short writes its errors (";; communications error…") to standard output too.
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter(|l| !l.starts_with(';') && !l.trim().is_empty())
            .collect::<Vec<_>>()
            .join("\n")
    }

    /// Whether the cache (not Knot through the DNAT) answers on `server`.
    fn cache_answers(&self, server: &str) -> bool {
        self.dig(&self.pod, server, "node.test", "TXT")
            .contains("clusterdns")
    }

    /// The rules, addresses and links of the node, to compare before and after.
    fn snapshot(&self) -> String {
        let node = self.node.clone();
        let rules = match self.firewall {
            Firewall::Nft => self.sh_ok(&node, "nft list ruleset"),
            Firewall::Iptables => self.sh_ok(
                &node,
                "iptables-save | grep -v '^#'; ip6tables-save | grep -v '^#'; nft list tables",
            ),
        };
        let addrs = self.sh_ok(&node, "ip -o addr show | awk '{print $2, $4}' | sort");
        let links = self.sh_ok(&node, "ip -o link show | awk '{print $2}'");
        format!("{rules}\n{addrs}\n{links}")
    }

    fn base(&self) -> PathBuf {
        self.dir.path().join("Corefile.base")
    }

    fn kubedns(&self) -> PathBuf {
        self.dir.path().join("kube-dns")
    }

    /// clusterdns with node-cache's arguments (every address of both families), syncing
    /// every second; `extra` adds arguments; `tag` names its files.
    fn start(&self, tag: &str, extra: &[&str]) -> Cache {
        if !self.base().exists() {
            std::fs::write(self.base(), BASE.replace("WHO", "clusterdns")).unwrap();
            std::fs::create_dir_all(self.kubedns()).unwrap();
        }
        let d = self.dir.path();
        let pidfile = d.join(format!("{tag}.pid"));
        let log = d.join(format!("{tag}.log"));
        let local = format!("{LOCAL},{CLUSTER_IP},{LOCAL6},{CLUSTER_IP6}");
        let mut args: Vec<String> = vec![
            "-localip".into(),
            local,
            "-conf".into(),
            d.join(format!("{tag}.Corefile")).display().to_string(),
            "-basecorefile".into(),
            self.base().display().to_string(),
            "-kubednscm".into(),
            self.kubedns().display().to_string(),
            "-upstreamsvc".into(),
            "kube-dns-upstream".into(),
            "-pidfile".into(),
            pidfile.display().to_string(),
            "-syncinterval".into(),
            "1s".into(),
            "-configsyncinterval".into(),
            "1s".into(),
            "-metrics-listen-address".into(),
            "127.0.0.1:9353".into(),
        ];
        args.extend(extra.iter().map(|s| s.to_string()));
        let child = Command::new("ip")
            .args(["netns", "exec", &self.node, "env"])
            .arg(format!("KUBE_DNS_UPSTREAM_SERVICE_HOST={UPSTREAM_IP}"))
            .arg(env!("CARGO_BIN_EXE_clusterdns"))
            .args(&args)
            .stdout(std::fs::File::create(&log).unwrap())
            .stderr(std::fs::OpenOptions::new().append(true).open(&log).unwrap())
            .spawn()
            .unwrap();
        Cache {
            child: Some(child),
            pidfile,
            log,
        }
    }

    /// Waits until the cache answers on every local address, UDP and TCP, from the pod.
    fn wait_answering(&self, cache: &mut Cache) {
        let start = Instant::now();
        while !self.cache_answers(LOCAL) {
            if let Some(Some(status)) = cache.child.as_mut().map(|c| c.try_wait().unwrap()) {
                panic!("clusterdns exited ({status}):\n{}", cache.log_text());
            }
            assert!(
                start.elapsed() < Duration::from_secs(20),
                "no answer:\n{}",
                cache.log_text()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn metrics(&self) -> String {
        self.sh_ok(&self.node.clone(), "curl -s http://127.0.0.1:9353/metrics")
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        if let Some(mut k) = self.knot.take() {
            let _ = k.kill();
            let _ = k.wait();
        }
        for ns in [&self.node, &self.pod] {
            let _ = run(&["ip", "netns", "del", ns]);
            let _ = std::fs::remove_dir_all(Path::new("/etc/netns").join(ns));
        }
    }
}

struct Cache {
    child: Option<Child>,
    pidfile: PathBuf,
    log: PathBuf,
}

impl Cache {
    fn pid(&self) -> i32 {
        self.child.as_ref().unwrap().id() as i32
    }

    fn signal(&self, sig: i32) {
        // `ip netns exec` execs env, which execs clusterdns: the child's pid is the server's.
        // SAFETY: kill(2) on our own child.
        unsafe {
            libc::kill(self.pid(), sig);
        }
    }

    /// SIGTERM, and waits for the exit.
    fn stop(&mut self) {
        self.signal(libc::SIGTERM);
        let status = self.child.take().unwrap().wait().unwrap();
        assert!(status.success(), "exit {status}:\n{}", self.log_text());
    }

    fn kill(&mut self) {
        self.signal(libc::SIGKILL);
        let _ = self.child.take().unwrap().wait();
    }

    fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Cache {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// Waits up to `within` for `f`.
fn eventually(within: Duration, mut f: impl FnMut() -> bool) -> bool {
    let start = Instant::now();
    while start.elapsed() < within {
        if f() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    f()
}

/// Asks `server` for a cluster name from the pod, `per_second` times a second for `secs`,
/// one query at a time with a one-second wait; returns (answered, lost). The thread enters
/// the pod's network namespace itself, so the socket is the pod's.
fn steady_load(
    pod: &str,
    server: &str,
    per_second: u32,
    secs: u32,
) -> std::thread::JoinHandle<(u32, u32)> {
    let netns = std::fs::File::open(Path::new("/var/run/netns").join(pod)).unwrap();
    let server: std::net::IpAddr = server.parse().unwrap();
    std::thread::spawn(move || {
        // SAFETY: setns(2) moves only this thread into the namespace.
        let rc = unsafe { libc::setns(netns.as_raw_fd(), libc::CLONE_NEWNET) };
        assert_eq!(rc, 0, "setns: {}", std::io::Error::last_os_error());
        let sock = std::net::UdpSocket::bind("0.0.0.0:0").unwrap();
        sock.set_read_timeout(Some(Duration::from_secs(1))).unwrap();
        let to = std::net::SocketAddr::new(server, 53);
        let (mut answered, mut lost) = (0, 0);
        let every = Duration::from_secs(1) / per_second;
        let start = Instant::now();
        for i in 0..per_second * secs {
            let mut q = support::query("web.default.svc.cluster.local.", RecordType::A, None);
            q.metadata.id = i as u16;
            sock.send_to(&q.to_vec().unwrap(), to).unwrap();
            let mut buf = [0u8; 512];
            let ok = loop {
                match sock.recv(&mut buf) {
                    Ok(n) => match Message::from_vec(&buf[..n]) {
                        Ok(m) if m.metadata.id == i as u16 => break !m.answers.is_empty(),
                        _ => continue,
                    },
                    Err(_) => break false,
                }
            };
            if ok {
                answered += 1;
            } else {
                lost += 1;
            }
            let next = every * (i + 1);
            if let Some(wait) = next.checked_sub(start.elapsed()) {
                std::thread::sleep(wait);
            }
        }
        (answered, lost)
    })
}

/// Every local address of both families answers, over UDP and TCP, through dig and glibc;
/// the rules are in place as soon as the first answer comes (the ClusterIP's answer is the
/// cache's, so its packets skipped conntrack and kube-proxy's DNAT); a rule or an address
/// removed by hand comes back within a sync interval; SIGTERM leaves the node as it was.
fn answers_rules_repair_and_teardown(firewall: Firewall) {
    let node = Node::new(firewall);
    let before = node.snapshot();
    let mut cache = node.start("a", &[]);
    node.wait_answering(&mut cache);
    // At the first answer, every address answers as the cache: the NOTRACK rules are there.
    for server in [LOCAL, CLUSTER_IP, LOCAL6, CLUSTER_IP6] {
        assert!(
            node.cache_answers(server),
            "{server}: not the cache\n{}",
            cache.log_text()
        );
        assert_eq!(
            node.dig(&node.pod, server, "web.default.svc.cluster.local", "A"),
            "10.0.0.5",
            "{server}"
        );
        assert_eq!(
            node.dig_tcp(&node.pod, server, "web.default.svc.cluster.local", "AAAA"),
            "fd00:10::5",
            "{server} over TCP"
        );
    }
    // glibc's resolver, with the kube-dns ClusterIP as its nameserver, as a pod has.
    let got = node.sh_ok(
        &node.pod.clone(),
        "getent ahostsv4 web.default.svc.cluster.local",
    );
    assert!(got.contains("10.0.0.5"), "{got}");
    let log = cache.log_text();
    let want = match firewall {
        Firewall::Nft => "with nftables",
        Firewall::Iptables => "with iptables-nft",
    };
    assert!(log.contains(want), "{log}");

    // The health port answers on the local address, from the node (kubelet's probe).
    let health = node.sh_ok(
        &node.node.clone(),
        "curl -s http://169.254.20.10:8080/health",
    );
    assert_eq!(health, "OK");

    // Removed by hand: comes back within a sync interval (1 s here).
    let installed = node.snapshot();
    let n = node.node.clone();
    match firewall {
        Firewall::Nft => node.sh_ok(&n, "nft flush chain inet clusterdns-nodelocal prerouting"),
        Firewall::Iptables => node.sh_ok(
            &n,
            "iptables -t raw -D PREROUTING -m comment --comment 'clusterdns node-local' -j CLUSTERDNS-NODELOCAL-PRE \
             && iptables -A INPUT -m comment --comment 'clusterdns node-local' -j CLUSTERDNS-NODELOCAL-IN",
        ),
    };
    node.sh_ok(&n, &format!("ip addr del {LOCAL}/32 dev nodelocaldns"));
    assert_ne!(node.snapshot(), installed);
    assert!(
        eventually(Duration::from_secs(3), || node.snapshot() == installed),
        "not repaired:\n{}\n---\n{installed}",
        node.snapshot()
    );
    assert!(node.cache_answers(LOCAL) && node.cache_answers(CLUSTER_IP));
    let log = cache.log_text();
    assert!(log.contains("Put back the node-local rules"), "{log}");
    assert!(
        log.contains(&format!("Added back address {LOCAL}")),
        "{log}"
    );
    assert!(
        node.metrics()
            .contains("coredns_nodecache_setup_errors_total{errortype=\"iptables\"} 0")
    );

    // SIGTERM: exactly what was added goes; the ClusterIP is kube-proxy's again at once.
    cache.stop();
    assert_eq!(node.snapshot(), before, "teardown left a difference");
    assert_eq!(
        node.dig(&node.pod, CLUSTER_IP, "web.default.svc.cluster.local", "A"),
        "10.0.0.5"
    );
    assert!(!node.cache_answers(CLUSTER_IP));
}

#[test]
fn node_local_with_nftables() {
    answers_rules_repair_and_teardown(Firewall::Nft);
}

#[test]
fn node_local_with_iptables() {
    answers_rules_repair_and_teardown(Firewall::Iptables);
}

/// An update with surge: a second instance starts beside the first (SO_REUSEPORT), then the
/// first gets SIGTERM. It sees the second serving and leaves the node's network to it; a
/// steady 100 queries a second to the ClusterIP lose none.
#[test]
fn an_update_with_surge_loses_no_query() {
    let node = Node::new(Firewall::Nft);
    let before = node.snapshot();
    let mut old = node.start("old", &[]);
    node.wait_answering(&mut old);
    let installed = node.snapshot();
    let load = steady_load(&node.pod, CLUSTER_IP, 100, 6);
    std::thread::sleep(Duration::from_secs(1));
    let new = node.start("new", &[]);
    assert!(
        eventually(Duration::from_secs(10), || new.pidfile.exists()),
        "the new instance did not start:\n{}",
        new.log_text()
    );
    std::thread::sleep(Duration::from_millis(500));
    old.stop();
    let (answered, lost) = load.join().unwrap();
    assert_eq!(lost, 0, "{answered} answered, {lost} lost");
    assert!(
        old.log_text()
            .contains("Another instance serves on nodelocaldns")
    );
    // The new instance serves on, with everything in place.
    assert_eq!(node.snapshot(), installed);
    assert!(node.cache_answers(LOCAL) && node.cache_answers(CLUSTER_IP6));
    let mut new = new;
    new.stop();
    assert_eq!(node.snapshot(), before);
}

/// SIGKILL: the rules and addresses stay, yet the kube-dns ClusterIP is answered (by the
/// Deployment, through kube-proxy's DNAT: the NOTRACK applies only while a socket is bound);
/// the link-local address is not. The next start repairs and serves; its SIGTERM leaves the
/// node as it was before the first.
#[test]
fn after_sigkill_the_cluster_ip_falls_back_and_the_next_start_repairs() {
    let node = Node::new(Firewall::Iptables);
    let before = node.snapshot();
    let mut first = node.start("first", &[]);
    node.wait_answering(&mut first);
    let installed = node.snapshot();
    first.kill();
    assert_eq!(node.snapshot(), installed, "SIGKILL removed something");
    assert_eq!(
        node.dig(&node.pod, CLUSTER_IP, "web.default.svc.cluster.local", "A"),
        "10.0.0.5",
        "the ClusterIP is not answered after SIGKILL"
    );
    assert!(!node.cache_answers(CLUSTER_IP));
    assert_eq!(
        node.dig(&node.pod, CLUSTER_IP6, "web.default.svc.cluster.local", "A"),
        "10.0.0.5"
    );
    assert_eq!(
        node.dig(&node.pod, LOCAL, "web.default.svc.cluster.local", "A"),
        ""
    );
    // Someone also took out an address and duplicated a jump meanwhile.
    let n = node.node.clone();
    node.sh_ok(&n, &format!("ip addr del {CLUSTER_IP}/32 dev nodelocaldns"));
    node.sh_ok(
        &n,
        "iptables -t raw -I PREROUTING -m comment --comment 'clusterdns node-local' -j CLUSTERDNS-NODELOCAL-PRE",
    );
    let mut next = node.start("next", &[]);
    node.wait_answering(&mut next);
    assert!(node.cache_answers(CLUSTER_IP));
    assert_eq!(node.snapshot(), installed);
    next.stop();
    assert_eq!(node.snapshot(), before);
}

/// The kube-dns ConfigMap's upstreamNameservers and stubDomains, and a change of the base
/// Corefile, are rendered and served within the sync period; a bad ConfigMap is counted and
/// the last good Corefile serves on.
#[test]
fn configmap_changes_are_rendered_and_reloaded() {
    let node = Node::new(Firewall::Nft);
    let mut cache = node.start("a", &[]);
    node.wait_answering(&mut cache);
    // `.` goes to /etc/resolv.conf, where nothing answers.
    assert_eq!(node.dig(&node.pod, LOCAL, "www.stub.test", "A"), "");
    std::fs::write(
        node.kubedns().join("stubDomains"),
        format!("{{\"stub.test\": [\"{KNOT}\"]}}"),
    )
    .unwrap();
    assert!(
        eventually(Duration::from_secs(5), || node.dig(
            &node.pod,
            LOCAL,
            "www.stub.test",
            "A"
        ) == "192.0.2.7"),
        "the stub domain is not served:\n{}",
        cache.log_text()
    );
    std::fs::write(node.base(), BASE.replace("WHO", "changed")).unwrap();
    assert!(eventually(Duration::from_secs(5), || node
        .dig(&node.pod, LOCAL, "node.test", "TXT")
        .contains("changed")));
    std::fs::write(node.kubedns().join("upstreamNameservers"), "not json").unwrap();
    assert!(eventually(Duration::from_secs(5), || node
        .metrics()
        .contains(
            "coredns_nodecache_setup_errors_total{errortype=\"configmap\"} 1"
        )));
    // The bad key is read as empty, as node-cache does: the stub domain stays served.
    assert_eq!(
        node.dig(&node.pod, LOCAL, "www.stub.test", "A"),
        "192.0.2.7"
    );
    cache.stop();
}

/// Rules that cannot be written are counted under node-cache's metric, and the cache answers
/// on its local address all the same.
#[test]
fn rules_that_cannot_be_written_are_counted() {
    let node = Node::new(Firewall::Nft);
    let mut cache = node.start("a", &["-firewall", "nftables"]);
    // No nft on this PATH.
    drop(cache);
    let d = node.dir.path();
    let child = Command::new("ip")
        .args(["netns", "exec", &node.node, "env", "PATH=/nonexistent"])
        .arg(format!("KUBE_DNS_UPSTREAM_SERVICE_HOST={UPSTREAM_IP}"))
        .arg(env!("CARGO_BIN_EXE_clusterdns"))
        .args([
            "-localip",
            &format!("{LOCAL},{CLUSTER_IP}"),
            "-firewall",
            "nftables",
        ])
        .arg("-conf")
        .arg(d.join("b.Corefile"))
        .arg("-basecorefile")
        .arg(node.base())
        .args(["-upstreamsvc", "kube-dns-upstream", "-syncinterval", "1s"])
        .args(["-metrics-listen-address", "127.0.0.1:9353"])
        .stdout(std::fs::File::create(d.join("b.log")).unwrap())
        .stderr(
            std::fs::OpenOptions::new()
                .append(true)
                .open(d.join("b.log"))
                .unwrap(),
        )
        .spawn()
        .unwrap();
    cache = Cache {
        child: Some(child),
        pidfile: d.join("none"),
        log: d.join("b.log"),
    };
    node.wait_answering(&mut cache);
    assert!(eventually(Duration::from_secs(5), || {
        let m = node.metrics();
        m.lines().any(|l| {
            l.starts_with("coredns_nodecache_setup_errors_total{errortype=\"nftables\"}")
                && !l.ends_with(" 0")
        })
    }));
    assert!(cache.log_text().contains("nft: cannot run it"));
    cache.stop();
}

/// A Corefile that does not load: the start fails with the error at its `file:line:col`, and
/// what the setup added is gone again.
#[test]
fn a_start_that_fails_leaves_the_node_as_it_was() {
    let node = Node::new(Firewall::Nft);
    let before = node.snapshot();
    std::fs::create_dir_all(node.kubedns()).unwrap();
    std::fs::write(
        node.base(),
        ".:53 {\n    bind __PILLAR__LOCAL__DNS__\n    nosuchdirective\n}\n",
    )
    .unwrap();
    let mut cache = node.start("a", &[]);
    let status = cache.child.take().unwrap().wait().unwrap();
    assert!(!status.success());
    let log = cache.log_text();
    assert!(log.contains("a.Corefile:3:5"), "{log}");
    // The rules were written, then taken out again.
    assert!(log.contains("Writing the node's rules with nft"), "{log}");
    assert!(log.contains("Tearing down"), "{log}");
    assert_eq!(node.snapshot(), before);
}
