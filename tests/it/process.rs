//! The binary under a steady query load: SIGTERM through lameduck, reloads (SIGUSR1 and the
//! `reload` directive) that lose no query and never make `/ready` fail, and what it logs.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use hickory_proto::op::Message;
use hickory_proto::rr::RecordType;

use crate::cli::free_port;
use crate::support;

/// These tests load the machine (floods, steady query streams) and watch for lost queries:
/// they run one at a time so that they do not skew each other.
static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

fn one_at_a_time() -> std::sync::MutexGuard<'static, ()> {
    ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner())
}

/// A running `clusterdns` and everything it printed.
pub struct Proc {
    child: Child,
    out: Arc<Mutex<Vec<String>>>,
    dns: u16,
}

impl Proc {
    pub fn start(dir: &Path, args: &[&str], dns: u16) -> Proc {
        let mut child = Command::new(env!("CARGO_BIN_EXE_clusterdns"))
            .arg("-conf")
            .arg(dir.join("Corefile"))
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("binary starts");
        let out = Arc::new(Mutex::new(Vec::new()));
        for stream in [
            Box::new(child.stdout.take().unwrap()) as Box<dyn Read + Send>,
            Box::new(child.stderr.take().unwrap()),
        ] {
            let out = out.clone();
            std::thread::spawn(move || {
                for line in BufReader::new(stream).lines().map_while(Result::ok) {
                    out.lock().unwrap().push(line);
                }
            });
        }
        let p = Proc { child, out, dns };
        let deadline = Instant::now() + Duration::from_secs(20);
        while p.ttl("kubernetes.default.svc.cluster.local.").is_none() {
            assert!(
                Instant::now() < deadline,
                "the server never answered:\n{}",
                p.output()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        p
    }

    pub fn output(&self) -> String {
        self.out.lock().unwrap().join("\n")
    }

    fn signal(&self, sig: &str) {
        let ok = Command::new("kill")
            .args([&format!("-{sig}"), &self.child.id().to_string()])
            .status()
            .is_ok_and(|s| s.success());
        assert!(ok, "kill -{sig}");
    }

    fn ttl(&self, name: &str) -> Option<u32> {
        let m = query(self.dns, name, Duration::from_millis(500))?;
        m.answers.first().map(|r| r.ttl)
    }

    /// Waits until the process prints a line containing `what`.
    fn wait_for_line(&self, what: &str, within: Duration) -> String {
        let deadline = Instant::now() + within;
        loop {
            if let Some(l) = self.out.lock().unwrap().iter().find(|l| l.contains(what)) {
                return l.clone();
            }
            assert!(
                Instant::now() < deadline,
                "no line with {what:?}:\n{}",
                self.output()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn query(port: u16, name: &str, timeout: Duration) -> Option<Message> {
    query_from("127.0.0.1", port, name, timeout)
}

/// Like [`query`], from another loopback address (all of 127/8 is loopback on Linux): another
/// client, as far as per-source accounting goes.
fn query_from(src: &str, port: u16, name: &str, timeout: Duration) -> Option<Message> {
    let sock = UdpSocket::bind((src, 0)).ok()?;
    sock.set_read_timeout(Some(timeout)).ok()?;
    let q = support::query(name, RecordType::A, None);
    sock.send_to(&q.to_vec().ok()?, ("127.0.0.1", port)).ok()?;
    let mut buf = [0u8; 4096];
    loop {
        let n = sock.recv(&mut buf).ok()?;
        let m = Message::from_vec(&buf[..n]).ok()?;
        if m.metadata.id == q.metadata.id {
            return Some(m);
        }
    }
}

/// Sends queries one after another until stopped; counts those that got no answer in 1 s.
struct Load {
    stop: Arc<AtomicBool>,
    sent: Arc<AtomicU64>,
    lost: Arc<AtomicU64>,
    thread: JoinHandle<()>,
}

impl Load {
    fn start(port: u16) -> Load {
        let stop = Arc::new(AtomicBool::new(false));
        let sent = Arc::new(AtomicU64::new(0));
        let lost = Arc::new(AtomicU64::new(0));
        let (s, n, l) = (stop.clone(), sent.clone(), lost.clone());
        let thread = std::thread::spawn(move || {
            while !s.load(Ordering::Relaxed) {
                n.fetch_add(1, Ordering::Relaxed);
                let ok = query(
                    port,
                    "kubernetes.default.svc.cluster.local.",
                    Duration::from_secs(1),
                )
                .is_some_and(|m| m.answers.len() == 1);
                if !ok {
                    l.fetch_add(1, Ordering::Relaxed);
                }
                std::thread::sleep(Duration::from_millis(2));
            }
        });
        Load {
            stop,
            sent,
            lost,
            thread,
        }
    }

    /// Stops and returns (sent, lost).
    fn finish(self) -> (u64, u64) {
        self.stop.store(true, Ordering::Relaxed);
        let _ = self.thread.join();
        (
            self.sent.load(Ordering::Relaxed),
            self.lost.load(Ordering::Relaxed),
        )
    }
}

/// Polls `GET path` until stopped; counts answers that were not 200.
struct Poll {
    stop: Arc<AtomicBool>,
    bad: Arc<Mutex<Vec<String>>>,
    polls: Arc<AtomicU64>,
    thread: JoinHandle<()>,
}

impl Poll {
    fn start(addr: SocketAddr, path: &'static str) -> Poll {
        let stop = Arc::new(AtomicBool::new(false));
        let bad = Arc::new(Mutex::new(Vec::new()));
        let polls = Arc::new(AtomicU64::new(0));
        let (s, b, n) = (stop.clone(), bad.clone(), polls.clone());
        let thread = std::thread::spawn(move || {
            while !s.load(Ordering::Relaxed) {
                n.fetch_add(1, Ordering::Relaxed);
                match http_status(addr, path) {
                    Some(200) => {}
                    other => b.lock().unwrap().push(format!("{other:?}")),
                }
                std::thread::sleep(Duration::from_millis(20));
            }
        });
        Poll {
            stop,
            bad,
            polls,
            thread,
        }
    }

    /// Stops and returns (polls, the answers that were not 200).
    fn finish(self) -> (u64, Vec<String>) {
        self.stop.store(true, Ordering::Relaxed);
        let _ = self.thread.join();
        (
            self.polls.load(Ordering::Relaxed),
            self.bad.lock().unwrap().clone(),
        )
    }
}

fn http_status(addr: SocketAddr, path: &str) -> Option<u16> {
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(1)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(2))).ok()?;
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    )
    .ok()?;
    let mut head = [0u8; 12];
    s.read_exact(&mut head).ok()?;
    std::str::from_utf8(&head[9..12]).ok()?.parse().ok()
}

fn http_body(addr: SocketAddr, path: &str) -> String {
    let mut s = TcpStream::connect(addr).unwrap();
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut text = String::new();
    s.read_to_string(&mut text).unwrap();
    text
}

/// A folder with the demo cluster and a Corefile serving it on `dns`, with `extra` lines in
/// the server block and `ttl`.
fn setup(dns: u16, extra: &str, ttl: u32) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    std::fs::copy(
        support::root().join("deploy/local/cluster.yaml"),
        dir.path().join("cluster.yaml"),
    )
    .unwrap();
    let core = dir.path().join("Corefile");
    std::fs::write(&core, corefile(dns, extra, ttl)).unwrap();
    (dir, core)
}

fn corefile(dns: u16, extra: &str, ttl: u32) -> String {
    format!(
        ".:{dns} {{\n{extra}\n    errors\n    kubernetes cluster.local in-addr.arpa ip6.arpa {{\n        objects cluster.yaml\n        pods insecure\n        ttl {ttl}\n    }}\n}}\n"
    )
}

#[test]
fn sigterm_with_lameduck_loses_no_query() {
    let _serial = one_at_a_time();
    let (dns, health) = (free_port(), free_port());
    let extra = format!("    health 127.0.0.1:{health} {{\n        lameduck 2s\n    }}");
    let (dir, _) = setup(dns, &extra, 5);
    let mut p = Proc::start(dir.path(), &[], dns);
    let health_addr: SocketAddr = ([127, 0, 0, 1], health).into();
    let load = Load::start(dns);
    std::thread::sleep(Duration::from_millis(300));
    p.signal("TERM");
    let term = Instant::now();
    // Through the lameduck time, queries and /health are answered.
    let poll = Poll::start(health_addr, "/health");
    std::thread::sleep(Duration::from_millis(1500));
    let (polls, bad) = poll.finish();
    let (sent, lost) = load.finish();
    println!(
        "lameduck: {sent} queries sent during lameduck, {lost} lost; /health polled {polls} times, {} not 200",
        bad.len()
    );
    assert!(sent > 50, "only {sent} queries sent");
    assert_eq!(
        lost,
        0,
        "{lost} of {sent} queries lost during lameduck:\n{}",
        p.output()
    );
    assert!(
        polls > 10 && bad.is_empty(),
        "/health during lameduck: {bad:?}"
    );
    p.wait_for_line("Going into lameduck mode for 2s", Duration::from_secs(1));
    // Then it stops, cleanly, no sooner than the lameduck time.
    let status = p.child.wait().unwrap();
    let waited = term.elapsed();
    assert!(status.success(), "{status:?}\n{}", p.output());
    assert!(waited >= Duration::from_secs(2), "stopped after {waited:?}");
    assert!(
        query(
            dns,
            "kubernetes.default.svc.cluster.local.",
            Duration::from_millis(300)
        )
        .is_none()
    );
}

/// Without a lameduck time, SIGTERM stops the server without waiting on its clients: an idle
/// TCP connection, one that sent half a query, one that does not read its answers. (Waiting
/// for the 3 s a client gets to finish a message held every stop that long.)
#[test]
fn sigterm_without_lameduck_does_not_wait_on_clients() {
    use std::io::Write;
    let _serial = one_at_a_time();
    let dns = free_port();
    let (dir, _) = setup(dns, "", 5);
    let mut p = Proc::start(dir.path(), &[], dns);
    let idle = std::net::TcpStream::connect(("127.0.0.1", dns)).unwrap();
    let mut half = std::net::TcpStream::connect(("127.0.0.1", dns)).unwrap();
    half.write_all(&[0, 48, 1, 2, 3]).unwrap();
    // Queries it never reads the answers of, until the socket buffers are full.
    let mut deaf = std::net::TcpStream::connect(("127.0.0.1", dns)).unwrap();
    let q = support::query("postgres-peers.db.svc.cluster.local.", RecordType::A, None)
        .to_vec()
        .unwrap();
    let mut framed = (q.len() as u16).to_be_bytes().to_vec();
    framed.extend_from_slice(&q);
    deaf.set_write_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    for _ in 0..20_000 {
        if deaf.write_all(&framed).is_err() {
            break;
        }
    }
    std::thread::sleep(Duration::from_millis(200));
    p.signal("TERM");
    let term = Instant::now();
    let status = p.child.wait().unwrap();
    let waited = term.elapsed();
    assert!(status.success(), "{status:?}\n{}", p.output());
    assert!(
        waited < Duration::from_secs(2),
        "stopped after {waited:?}: it waited on a client"
    );
    println!("SIGTERM to exit, with three stalled TCP clients: {waited:?}");
    drop((idle, half, deaf));
}

/// A warning about the Corefile is said once, when it is read, not again at every `reload`
/// interval that finds it unchanged.
#[test]
fn a_corefile_warning_is_said_once_not_every_reload_interval() {
    let _serial = one_at_a_time();
    let dns = free_port();
    let (dir, _) = setup(dns, "    reload 2s 1s\n    cache 30s", 5);
    let p = Proc::start(dir.path(), &[], dns);
    // Two intervals and more (2 s ± 0.5 s each).
    std::thread::sleep(Duration::from_millis(5500));
    let out = p.output();
    assert_eq!(out.matches("'30s' is read as a zone").count(), 1, "{out}");
}

#[test]
fn reloads_lose_no_query_and_never_make_ready_fail() {
    let _serial = one_at_a_time();
    let (dns, ready, metrics) = (free_port(), free_port(), free_port());
    let extra = format!(
        "    ready 127.0.0.1:{ready}\n    prometheus 127.0.0.1:{metrics}\n    reload 2s 1s"
    );
    let (dir, core) = setup(dns, &extra, 5);
    let p = Proc::start(dir.path(), &[], dns);
    let name = "kubernetes.default.svc.cluster.local.";
    let ready_addr: SocketAddr = ([127, 0, 0, 1], ready).into();
    let metrics_addr: SocketAddr = ([127, 0, 0, 1], metrics).into();
    let load = Load::start(dns);
    let poll = Poll::start(ready_addr, "/ready");

    // A changed Corefile, picked up at once on SIGUSR1.
    std::fs::write(&core, corefile(dns, &extra, 7)).unwrap();
    p.signal("USR1");
    let deadline = Instant::now() + Duration::from_secs(5);
    while p.ttl(name) != Some(7) {
        assert!(
            Instant::now() < deadline,
            "SIGUSR1 did not reload:\n{}",
            p.output()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    // A broken one: logged with its position, counted, and the old configuration serves on.
    std::fs::write(
        &core,
        corefile(dns, &extra, 7).replace("pods insecure", "pods maybe"),
    )
    .unwrap();
    p.signal("USR1");
    let line = p.wait_for_line("Restart failed", Duration::from_secs(5));
    assert!(
        line.contains("Corefile:8:14: kubernetes: pods: unknown mode 'maybe'"),
        "{line}"
    );
    let deadline = Instant::now() + Duration::from_secs(5);
    while !http_body(metrics_addr, "/metrics").contains("coredns_reload_failed_total 1") {
        assert!(Instant::now() < deadline, "reload failure not counted");
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(p.ttl(name), Some(7));
    // The reload directive notices a change by itself (every 2s ± 1s).
    std::fs::write(&core, corefile(dns, &extra, 9)).unwrap();
    let deadline = Instant::now() + Duration::from_secs(8);
    while p.ttl(name) != Some(9) {
        assert!(
            Instant::now() < deadline,
            "the reload directive did not reload:\n{}",
            p.output()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let (polls, bad) = poll.finish();
    let (sent, lost) = load.finish();
    println!(
        "reloads: {sent} queries sent across three reloads, {lost} lost; /ready polled {polls} times, {} not 200",
        bad.len()
    );
    assert!(sent > 100 && polls > 20, "sent {sent}, polled {polls}");
    assert_eq!(
        lost,
        0,
        "{lost} of {sent} queries lost across reloads:\n{}",
        p.output()
    );
    assert!(bad.is_empty(), "/ready answered {bad:?} during reloads");
    let metrics = http_body(metrics_addr, "/metrics");
    assert!(
        metrics.contains("coredns_reload_version_info{hash=\"sha512\",value=\""),
        "{metrics}"
    );
    assert!(p.output().contains("Reloading complete"));
}

/// `consolidate … show_first` (CoreDNS 1.14): the first error of a period is logged at once,
/// at the pattern's level, and the report at its end counts every error of the period; a
/// period with one error has no report.
#[test]
fn show_first_logs_the_first_error_at_once() {
    let _serial = one_at_a_time();
    let dns = free_port();
    let (dir, _) = setup(dns, "", 5);
    let text = std::fs::read_to_string(dir.path().join("Corefile"))
        .unwrap()
        .replace(
            "    errors\n",
            "    errors {\n        consolidate 2s \".*no next plugin found\" warning show_first\n    }\n",
        );
    std::fs::write(dir.path().join("Corefile"), text).unwrap();
    let p = Proc::start(dir.path(), &[], dns);
    for _ in 0..3 {
        let m = query(dns, "example.com.", Duration::from_secs(1)).unwrap();
        assert_eq!(support::rcode_name(m.metadata.response_code), "SERVFAIL");
    }
    let first = p.wait_for_line(
        "example.com. A: no next plugin found",
        Duration::from_secs(1),
    );
    assert!(
        first.starts_with("[WARNING] plugin/errors: 2 example.com. A:"),
        "{first}"
    );
    let report = p.wait_for_line("errors like", Duration::from_secs(4));
    assert!(
        report.starts_with(
            "[WARNING] plugin/errors: 3 errors like '.*no next plugin found' occurred in last 2s"
        ),
        "{report}"
    );
    // One error in a period: said once, no report after it.
    std::thread::sleep(Duration::from_millis(500));
    let m = query(dns, "example.net.", Duration::from_secs(1)).unwrap();
    assert_eq!(support::rcode_name(m.metadata.response_code), "SERVFAIL");
    p.wait_for_line(
        "example.net. A: no next plugin found",
        Duration::from_secs(1),
    );
    std::thread::sleep(Duration::from_millis(2500));
    let reports = p.output().matches("errors like").count();
    assert_eq!(reports, 1, "{}", p.output());
}

#[test]
fn log_lines_json_output_and_consolidated_errors() {
    let _serial = one_at_a_time();
    let dns = free_port();
    let extra = "    log\n    errors {\n        consolidate 2s \".*no next plugin found\"\n    }";
    let (dir, _) = setup(
        dns,
        &extra.replace("    errors {", "    errors_placeholder {"),
        5,
    );
    // The errors directive with consolidate replaces the plain one.
    let text = std::fs::read_to_string(dir.path().join("Corefile"))
        .unwrap()
        .replace("    errors\n", "")
        .replace("errors_placeholder", "errors");
    std::fs::write(dir.path().join("Corefile"), text).unwrap();
    let p = Proc::start(dir.path(), &[], dns);
    // A query log line in CoreDNS's format.
    let line = p.wait_for_line(
        "\"A IN kubernetes.default.svc.cluster.local. udp ",
        Duration::from_secs(2),
    );
    assert!(line.starts_with("[INFO] 127.0.0.1:"), "{line}");
    assert!(line.contains(" NOERROR qr,aa,rd "), "{line}");
    // Three failing queries: one consolidated report instead of three lines.
    for _ in 0..3 {
        let m = query(dns, "example.com.", Duration::from_secs(1)).unwrap();
        assert_eq!(support::rcode_name(m.metadata.response_code), "SERVFAIL");
    }
    let report = p.wait_for_line("errors like", Duration::from_secs(4));
    assert!(
        report.starts_with(
            "[ERROR] plugin/errors: 3 errors like '.*no next plugin found' occurred in last 2s"
        ),
        "{report}"
    );
    assert!(
        !p.output()
            .contains("2 example.com. A: no next plugin found"),
        "{}",
        p.output()
    );
    drop(p);

    // --log-format json: one JSON object a line.
    let p = Proc::start(dir.path(), &["--log-format", "json"], dns);
    let line = p.wait_for_line(
        "kubernetes.default.svc.cluster.local. udp",
        Duration::from_secs(2),
    );
    let v: serde_json::Value =
        serde_json::from_str(&line).unwrap_or_else(|e| panic!("{e}: {line}"));
    assert_eq!(v["level"], "INFO");
    assert!(
        v["message"]
            .as_str()
            .unwrap_or_default()
            .contains("NOERROR"),
        "{v}"
    );
}

/// A field of /proc/PID/status, in kB.
fn status_kb(pid: u32, field: &str) -> u64 {
    let text = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    text.lines()
        .find(|l| l.starts_with(field))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

#[test]
fn a_udp_flood_from_one_source_costs_bounded_memory_and_others_are_answered() {
    let _serial = one_at_a_time();
    let dns = free_port();
    let (dir, _) = setup(dns, "    ratelimit 20000", 5);
    let p = Proc::start(dir.path(), &[], dns);
    let pid = p.child.id();
    let before = status_kb(pid, "VmRSS:");
    // One source floods and never reads its answers: about 50,000 queries a second (2.5 times
    // the per-source limit, more than a CoreDNS pod usually serves), or as fast as it can with
    // FLOOD_UNPACED=1, where on a 2-core machine the flooder takes a whole core and what the
    // others get says more about the machine than about the server.
    let unpaced = std::env::var_os("FLOOD_UNPACED").is_some();
    let stop = Arc::new(AtomicBool::new(false));
    let sent = Arc::new(AtomicU64::new(0));
    let (s, n) = (stop.clone(), sent.clone());
    let flood = std::thread::spawn(move || {
        let sock = UdpSocket::bind("127.0.0.1:0").unwrap();
        let q = support::query("postgres-peers.db.svc.cluster.local.", RecordType::A, None)
            .to_vec()
            .unwrap();
        while !s.load(Ordering::Relaxed) {
            for _ in 0..if unpaced { 1 } else { 500 } {
                if sock.send_to(&q, ("127.0.0.1", dns)).is_ok() {
                    n.fetch_add(1, Ordering::Relaxed);
                }
            }
            if !unpaced {
                std::thread::sleep(Duration::from_millis(10));
            }
        }
    });
    // Meanwhile another client (another address) asks once every 20 ms, as a stub resolver does:
    // a new socket (source port) per attempt, and one retry after a timeout.
    let (mut answered, mut first_try) = (0, 0);
    let asked = 100;
    for _ in 0..asked {
        for attempt in 0..2 {
            if query_from(
                "127.0.0.2",
                dns,
                "kubernetes.default.svc.cluster.local.",
                Duration::from_secs(1),
            )
            .is_some()
            {
                answered += 1;
                first_try += usize::from(attempt == 0);
                break;
            }
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    stop.store(true, Ordering::Relaxed);
    flood.join().unwrap();
    let peak = status_kb(pid, "VmHWM:");
    let after = status_kb(pid, "VmRSS:");
    let flooded = sent.load(Ordering::Relaxed);
    println!(
        "flood: {flooded} queries from one source; others answered {answered}/{asked} ({first_try} at the first attempt); server RSS {before} kB before, {after} kB after, peak {peak} kB"
    );
    assert!(flooded > 50_000, "the flood sent only {flooded}");
    assert!(
        answered >= asked * 9 / 10,
        "only {answered} of {asked} answered during the flood"
    );
    assert!(peak < 128 * 1024, "peak RSS {peak} kB");
    // The flooding address is answered again once a new second starts.
    std::thread::sleep(Duration::from_millis(1100));
    assert!(p.ttl("kubernetes.default.svc.cluster.local.").is_some());
}

/// Sends `n` queries at once, each from its own socket (source port), and counts the answers.
fn burst(port: u16, n: usize) -> usize {
    let socks: Vec<UdpSocket> = (0..n)
        .map(|_| UdpSocket::bind("127.0.0.1:0").unwrap())
        .collect();
    let q = support::query("kubernetes.default.svc.cluster.local.", RecordType::A, None)
        .to_vec()
        .unwrap();
    for s in &socks {
        s.send_to(&q, ("127.0.0.1", port)).unwrap();
    }
    // Wait once for every answer that is coming, then read without waiting.
    std::thread::sleep(Duration::from_millis(700));
    let mut buf = [0u8; 512];
    socks
        .iter()
        .filter(|s| {
            s.set_nonblocking(true).unwrap();
            s.recv(&mut buf).is_ok()
        })
        .count()
}

#[test]
fn the_per_source_limit_counts_an_address_across_its_source_ports() {
    let _serial = one_at_a_time();
    let dns = free_port();
    let (dir, _) = setup(dns, "", 5);
    let p = Proc::start(dir.path(), &["--udp-per-source-qps", "50"], dns);
    std::thread::sleep(Duration::from_millis(1100)); // a fresh one-second window
    let answered = burst(dns, 200);
    assert!(
        (40..=100).contains(&answered),
        "{answered} of 200 answered with a limit of 50"
    );
    drop(p);
    let dns = free_port();
    let (dir, _) = setup(dns, "", 5);
    let _p = Proc::start(dir.path(), &["--udp-per-source-qps", "0"], dns);
    assert_eq!(burst(dns, 200), 200, "no limit");
}

/// Out of the box there is no per-source limit (as in CoreDNS and Knot): dnsperf from one host,
/// or every pod of a node behind NodeLocal DNSCache, is one address. The Corefile's `ratelimit`
/// sets one (so the ConfigMap controls it), over the command line's, and its `whitelist` is
/// never limited.
#[test]
fn the_per_source_limit_is_off_by_default_and_set_by_the_corefile() {
    let _serial = one_at_a_time();
    let dns = free_port();
    let (dir, _) = setup(dns, "", 5);
    let p = Proc::start(dir.path(), &[], dns);
    assert_eq!(burst(dns, 200), 200, "no limit by default");
    drop(p);

    let dns = free_port();
    let (dir, _) = setup(dns, "    ratelimit 50", 5);
    let p = Proc::start(dir.path(), &["--udp-per-source-qps", "1000"], dns);
    std::thread::sleep(Duration::from_millis(1100));
    let answered = burst(dns, 200);
    assert!(
        (40..=100).contains(&answered),
        "{answered} of 200 answered with ratelimit 50"
    );
    drop(p);

    let dns = free_port();
    let (dir, _) = setup(
        dns,
        "    ratelimit 50 {\n        whitelist 127.0.0.1\n    }",
        5,
    );
    let _p = Proc::start(dir.path(), &[], dns);
    assert_eq!(burst(dns, 200), 200, "a whitelisted source");
}

/// `debug` turns the plugins' debug lines on, and a reload without it turns them off.
#[test]
fn debug_turns_debug_lines_on_until_a_reload_without_it() {
    let _serial = one_at_a_time();
    let dns = free_port();
    // An upstream that refuses (nothing listens): forward says so in a debug line.
    let dead = {
        let s = UdpSocket::bind("127.0.0.1:0").unwrap();
        s.local_addr().unwrap()
    };
    let extra = format!("    debug\n    forward . {dead}");
    let (dir, core) = setup(dns, &extra, 5);
    let p = Proc::start(dir.path(), &[], dns);
    p.wait_for_line("debug log lines on", Duration::from_secs(5));
    let debug_lines = || {
        p.out
            .lock()
            .unwrap()
            .iter()
            .filter(|l| l.starts_with("[DEBUG] plugin/forward"))
            .count()
    };
    let _ = query(dns, "example.org.", Duration::from_secs(3));
    p.wait_for_line("[DEBUG] plugin/forward", Duration::from_secs(5));
    std::fs::write(&core, corefile(dns, &format!("    forward . {dead}"), 5)).unwrap();
    p.signal("USR1");
    p.wait_for_line("debug log lines off", Duration::from_secs(5));
    let before = debug_lines();
    let _ = query(dns, "example.net.", Duration::from_secs(3));
    // `errors` logs the failure after forward would have written its debug line, on the
    // same stream: once the error is in, a debug line would be too.
    p.wait_for_line("example.net.", Duration::from_secs(5));
    assert_eq!(debug_lines(), before, "{}", p.output());
}

/// `metadata` with `log`: `{/LABEL}` writes what `kubernetes` published about the query.
#[test]
fn log_writes_the_metadata_kubernetes_publishes() {
    let _serial = one_at_a_time();
    let dns = free_port();
    let extra = "    metadata\n    log . \"{name} kind={/kubernetes/kind} ns={/kubernetes/namespace} svc={/kubernetes/service} port={/kubernetes/port-name} x={/nothing}\"";
    let (dir, _core) = setup(dns, extra, 5);
    let p = Proc::start(dir.path(), &[], dns);
    let _ = query(
        dns,
        "_http._tcp.frontend.shop.svc.cluster.local.",
        Duration::from_secs(2),
    );
    p.wait_for_line(
        "_http._tcp.frontend.shop.svc.cluster.local. kind=svc ns=shop svc=frontend port=http x=-",
        Duration::from_secs(5),
    );
}

/// With `zonal`, `kubernetes` also publishes `kubernetes/zone`: the zone a zonal name asks
/// for, empty for any other name.
#[test]
fn log_writes_the_zone_a_zonal_name_asks_for() {
    let _serial = one_at_a_time();
    let dns = free_port();
    let extra =
        "    metadata\n    log . \"{name} zone=[{/kubernetes/zone}] svc={/kubernetes/service}\"";
    let (dir, core) = setup(dns, extra, 5);
    let text = std::fs::read_to_string(&core).unwrap();
    std::fs::write(
        &core,
        text.replace("pods insecure", "pods insecure\n        zonal"),
    )
    .unwrap();
    let p = Proc::start(dir.path(), &[], dns);
    for name in [
        "us-west-2a.pin._zone.frontend.shop.svc.cluster.local.",
        "frontend.shop.svc.cluster.local.",
    ] {
        let _ = query(dns, name, Duration::from_secs(2));
    }
    p.wait_for_line(
        "us-west-2a.pin._zone.frontend.shop.svc.cluster.local. zone=[us-west-2a] svc=",
        Duration::from_secs(5),
    );
    p.wait_for_line(
        "frontend.shop.svc.cluster.local. zone=[] svc=frontend",
        Duration::from_secs(5),
    );
}

/// `{/log/class}` and `{/log/type}` (CoreDNS 1.14): what `log` publishes about each answer,
/// with `metadata` in the block; `-` without it.
#[test]
fn log_publishes_the_class_and_type_of_each_answer() {
    let _serial = one_at_a_time();
    let dns = free_port();
    let extra = "    metadata\n    log . \"{name} {type} {/log/class} {/log/type}\"";
    let (dir, _core) = setup(dns, extra, 5);
    let p = Proc::start(dir.path(), &[], dns);
    let _ = query(dns, "nope.shop.svc.cluster.local.", Duration::from_secs(2));
    let aaaa = support::query(
        "kubernetes.default.svc.cluster.local.",
        RecordType::AAAA,
        None,
    );
    let sock = UdpSocket::bind("127.0.0.1:0").unwrap();
    sock.send_to(&aaaa.to_vec().unwrap(), ("127.0.0.1", dns))
        .unwrap();
    for line in [
        "kubernetes.default.svc.cluster.local. A success NOERROR",
        "nope.shop.svc.cluster.local. A denial NXDOMAIN",
        "kubernetes.default.svc.cluster.local. AAAA denial NODATA",
    ] {
        p.wait_for_line(line, Duration::from_secs(5));
    }
    drop(p);
    // Without `metadata`, nothing is published.
    let extra = "    log . \"{name} {type} {/log/class} {/log/type}\"";
    let (dir, _core) = setup(dns, extra, 5);
    let p = Proc::start(dir.path(), &[], dns);
    p.wait_for_line(
        "kubernetes.default.svc.cluster.local. A - -",
        Duration::from_secs(5),
    );
}
