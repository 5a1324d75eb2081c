//! The live path at scale: a generated cluster served by the test API server
//! (`tests/it/apiserver.rs`, in this process), and the release `clusterdns` binary watching it
//! through a kubeconfig, in a process of its own so that its memory is its own.
//!
//! ```text
//! cargo build --release && cargo bench --bench live -- [--services 10000] [--endpoints 100000] [--changes 200] [--server-minor 34] [--no-streaming] [--outage SECONDS] [--outage-runs 5] [--restart]
//! ```
//!
//! `BENCH_BIN=PATH` runs another binary (the image's static one, from deploy/build-static.sh).
//!
//! Prints: time from start to `/ready` 200 (every kind listed) and the CPU it took, what the
//! API server served for it (lists from its watch cache, pages read from etcd, watches, bytes),
//! resident memory after sync (VmRSS, and the peak VmHWM), and the time from a change at the
//! API to the first correct answer, for new Services and for endpoint changes of headless
//! Services (median, p95, p99).
//!
//! `--outage S` then takes the API away `--outage-runs` times for S seconds each: the first
//! half answering 500, the second half hanging every request (`--outage-kind both`, the
//! default; `errors` or `hang` for one kind all along), a Service created meanwhile.
//! For each it prints the time from the recovery to the first correct answer for that
//! Service, and the requests made during the outage and until then, by kind (probes, watches,
//! lists); then the median catch-up. `--restart` then restarts the API server as a real one
//! restarts (its history compacted, every watch cut, a moment of refused connections) and
//! prints the peak memory of the relist against the steady state, and how many answers were
//! wrong while it ran (it asks a sample of names all along).
//! Figures are for comparing runs on one machine, not for asserting.

#[allow(dead_code)]
#[path = "../tests/it/apiserver.rs"]
mod apiserver;
mod cluster;

use std::net::{SocketAddr, UdpSocket};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use hickory_proto::op::{Message, MessageType, OpCode, Query, ResponseCode};
use hickory_proto::rr::{Name, RecordType};
use serde_json::{Value, json};

use apiserver::ApiServer;
use cluster::{NAMESPACES, cluster, ip, ip_wide, slice};

struct Args {
    services: usize,
    endpoints: usize,
    changes: usize,
    /// The API server's Kubernetes minor version (1.27+ may stream lists).
    server_minor: u32,
    /// The server refuses streaming lists (the WatchList gate off, as in 1.33).
    no_streaming: bool,
    /// Seconds of each API outage to measure the catch-up after (0: none).
    outage: u64,
    outage_runs: usize,
    /// What the outage is: `both` (500s, then hanging), `errors` or `hang`.
    outage_kind: String,
    /// Restart the API server and measure the relist.
    restart: bool,
}

fn args() -> Args {
    let mut a = Args {
        services: 10_000,
        endpoints: 100_000,
        changes: 200,
        server_minor: 34,
        no_streaming: false,
        outage: 0,
        outage_runs: 5,
        outage_kind: "both".into(),
        restart: false,
    };
    let argv: Vec<String> = std::env::args().skip(1).collect();
    let mut i = 0;
    while i < argv.len() {
        let value = || {
            argv.get(i + 1)
                .and_then(|v| v.parse().ok())
                .unwrap_or_else(|| panic!("{} needs a number", argv[i]))
        };
        match argv[i].as_str() {
            "--services" => a.services = value(),
            "--endpoints" => a.endpoints = value(),
            "--changes" => a.changes = value(),
            "--server-minor" => a.server_minor = value() as u32,
            "--outage" => a.outage = value() as u64,
            "--outage-runs" => a.outage_runs = value(),
            "--outage-kind" => {
                a.outage_kind = argv.get(i + 1).cloned().unwrap_or_default();
                assert!(
                    ["both", "errors", "hang"].contains(&a.outage_kind.as_str()),
                    "--outage-kind is both, errors or hang"
                );
            }
            "--no-streaming" => {
                a.no_streaming = true;
                i += 1;
                continue;
            }
            "--restart" => {
                a.restart = true;
                i += 1;
                continue;
            }
            // cargo bench passes --bench; anything else is a mistake worth hearing about.
            "--bench" => {
                i += 1;
                continue;
            }
            other => panic!("unknown argument {other}"),
        }
        i += 2;
    }
    a
}

fn free_port() -> u16 {
    UdpSocket::bind("127.0.0.1:0")
        .and_then(|s| s.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

/// `target/release/clusterdns`, or `BENCH_BIN` (the static binary of deploy/build-static.sh,
/// say, to size the image's binary).
fn binary() -> std::path::PathBuf {
    let root = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let bin = std::env::var_os("BENCH_BIN")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| root.join("target/release/clusterdns"));
    assert!(
        bin.exists(),
        "{} is missing: run `cargo build --release` first",
        bin.display()
    );
    bin
}

fn status_kb(pid: u32, field: &str) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find(|l| l.starts_with(field))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

/// CPU seconds (user + system) the process has used.
fn cpu_seconds(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // The fields after the command name, which is in parentheses and may hold spaces.
    let after = stat.rsplit_once(')').map(|(_, rest)| rest).unwrap_or("");
    let fields: Vec<&str> = after.split_whitespace().collect();
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    // utime and stime are fields 14 and 15 of the whole line, 12 and 13 after the name.
    (ticks(11) + ticks(12)) / 100.0
}

fn ready(addr: SocketAddr) -> bool {
    use std::io::{Read, Write};
    let Ok(mut s) = std::net::TcpStream::connect_timeout(&addr, Duration::from_millis(200)) else {
        return false;
    };
    let _ = s.set_read_timeout(Some(Duration::from_secs(1)));
    if s.write_all(b"GET /ready HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .is_err()
    {
        return false;
    }
    let mut buf = Vec::new();
    let _ = s.read_to_end(&mut buf);
    buf.starts_with(b"HTTP/1.1 200")
}

/// One query; the rcode and how many answers.
fn ask(sock: &UdpSocket, to: SocketAddr, name: &str, id: u16) -> Option<(ResponseCode, usize)> {
    let mut m = Message::new(id, MessageType::Query, OpCode::Query);
    m.add_query(Query::query(Name::from_ascii(name).ok()?, RecordType::A));
    sock.send_to(&m.to_vec().ok()?, to).ok()?;
    let mut buf = [0u8; 4096];
    loop {
        let (n, _) = sock.recv_from(&mut buf).ok()?;
        let r = Message::from_vec(&buf[..n]).ok()?;
        if r.metadata.id == id {
            return Some((r.metadata.response_code, r.answers.len()));
        }
    }
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

fn report(what: &str, mut d: Vec<Duration>) {
    if d.is_empty() {
        return;
    }
    d.sort();
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    println!(
        "{what}: n={} median={:.2} ms p95={:.2} ms p99={:.2} ms max={:.2} ms",
        d.len(),
        ms(percentile(&d, 0.5)),
        ms(percentile(&d, 0.95)),
        ms(percentile(&d, 0.99)),
        ms(d[d.len() - 1]),
    );
}

struct Kill(Child);

impl Drop for Kill {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn main() {
    let a = args();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .expect("runtime");
    let api = rt.block_on(ApiServer::start_with(Duration::from_secs(60), 1_000_000));
    api.set_version(a.server_minor, !a.no_streaming);
    let t = Instant::now();
    api.apply_all(cluster(a.services, a.endpoints));
    println!(
        "cluster: {} Services, {} endpoints, {NAMESPACES} namespaces (generated in {:.1} s)",
        a.services,
        a.endpoints,
        t.elapsed().as_secs_f64()
    );

    let dir = tempfile::tempdir().expect("tempdir");
    let kubeconfig = api.kubeconfig(dir.path());
    let (dns, http) = (free_port(), free_port());
    let corefile = dir.path().join("Corefile");
    std::fs::write(
        &corefile,
        format!(
            ".:{dns} {{\n    ready 127.0.0.1:{http}\n    kubernetes cluster.local in-addr.arpa ip6.arpa {{\n        kubeconfig {}\n        startup_timeout 5m\n    }}\n}}\n",
            kubeconfig.display()
        ),
    )
    .expect("write the Corefile");
    let started = Instant::now();
    // BENCH_WRAP runs the server under a profiler: `BENCH_WRAP=heaptrack cargo bench …`.
    let mut command = match std::env::var("BENCH_WRAP") {
        Ok(wrap) if !wrap.trim().is_empty() => {
            let mut words = wrap.split_whitespace();
            let mut c = Command::new(words.next().unwrap_or_default());
            c.args(words).arg(binary());
            c
        }
        _ => Command::new(binary()),
    };
    let child = command
        .arg("-conf")
        .arg(&corefile)
        .arg("-quiet")
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("start clusterdns");
    let child = Kill(child);
    let pid = child.0.id();
    let http_addr: SocketAddr = ([127, 0, 0, 1], http).into();
    while !ready(http_addr) {
        std::thread::sleep(Duration::from_millis(5));
        assert!(
            started.elapsed() < Duration::from_secs(300),
            "not ready in 5 minutes"
        );
    }
    let to_ready = started.elapsed();
    let cpu = cpu_seconds(pid);
    let served = api.served();
    println!(
        "time to ready: {:.3} s, CPU to ready {cpu:.2} s",
        to_ready.as_secs_f64()
    );
    println!(
        "API server served to ready: {} requests; {} lists from the watch cache, {} pages ({} objects) from etcd, {} watches; {:.1} MiB",
        api.requests().len(),
        served.cache_lists,
        served.etcd_pages,
        served.etcd_objects,
        served.watches,
        served.bytes as f64 / 1048576.0
    );
    std::thread::sleep(Duration::from_secs(2));
    println!(
        "memory after sync: VmRSS {:.1} MiB (anonymous {:.1} MiB), VmHWM {:.1} MiB",
        status_kb(pid, "VmRSS:") as f64 / 1024.0,
        status_kb(pid, "RssAnon:") as f64 / 1024.0,
        status_kb(pid, "VmHWM:") as f64 / 1024.0
    );

    let sock = UdpSocket::bind("127.0.0.1:0").expect("client socket");
    sock.set_read_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    let to: SocketAddr = ([127, 0, 0, 1], dns).into();
    let mut id = 1u16;
    let mut wait_for = |name: &str, want: usize| -> Duration {
        let start = Instant::now();
        loop {
            id = id.wrapping_add(1);
            if let Some((ResponseCode::NoError, n)) = ask(&sock, to, name, id)
                && n == want
            {
                return start.elapsed();
            }
            assert!(
                start.elapsed() < Duration::from_secs(30),
                "{name} never answered"
            );
            // Paced below the server's per-source limit (20,000/s), which would drop the rest.
            std::thread::sleep(Duration::from_micros(100));
        }
    };
    // Sanity: the generated names answer.
    wait_for("svc-1.ns-1.svc.cluster.local.", 1);

    // New Services.
    let mut created = Vec::with_capacity(a.changes);
    for i in 0..a.changes {
        let ns = format!("ns-{}", i % NAMESPACES);
        let name = format!("new-{i}");
        let obj = json!({
            "kind": "Service",
            "metadata": {"name": name, "namespace": ns},
            "spec": {"clusterIP": ip(i, 95), "clusterIPs": [ip(i, 95)],
                     "ports": [{"name": "http", "port": 80, "protocol": "TCP"}]},
        });
        let qname = format!("{name}.{ns}.svc.cluster.local.");
        let start = Instant::now();
        api.apply(obj);
        wait_for(&qname, 1);
        created.push(start.elapsed());
    }
    report("new Service to first answer", created);

    // Endpoint changes: a headless Service's slice gains one endpoint.
    let headless: Vec<usize> = (0..a.services).step_by(10).collect();
    let mut changed = Vec::with_capacity(a.changes);
    // The new endpoint gets an address no other has, as in a real cluster.
    for (i, &s) in headless.iter().take(a.changes).enumerate() {
        let ns = format!("ns-{}", s % NAMESPACES);
        let name = format!("svc-{s}");
        let share = a.endpoints / a.services + usize::from(s < a.endpoints % a.services);
        // The endpoints it had (as `cluster` laid them out), and one more.
        let first = s * (a.endpoints / a.services) + s.min(a.endpoints % a.services);
        let n = i + 1;
        let extra = format!(
            "10.{}.{}.{}",
            192 + ((n >> 16) & 0x3f),
            (n >> 8) & 0xff,
            n & 0xff
        );
        let eps: Vec<Value> = (0..share)
            .map(|k| ip_wide(first + k))
            .chain([extra])
            .map(|ip| json!({"addresses": [ip], "conditions": {"ready": true}}))
            .collect();
        let qname = format!("{name}.{ns}.svc.cluster.local.");
        let start = Instant::now();
        api.apply(slice(&ns, &name, eps));
        wait_for(&qname, share + 1);
        changed.push(start.elapsed());
    }
    if !changed.is_empty() {
        report("endpoint change to first answer", changed);
    }
    println!(
        "memory at the end: VmRSS {:.1} MiB, VmHWM {:.1} MiB",
        status_kb(pid, "VmRSS:") as f64 / 1024.0,
        status_kb(pid, "VmHWM:") as f64 / 1024.0
    );
    if a.outage > 0 {
        outages(&api, &rt, &a, &mut wait_for);
    }
    if a.restart {
        restart(&api, &rt, pid, to);
    }
    drop(child);
}

/// What the API server was asked in `log`: probes (`/version`), watches, lists.
fn kinds_of(log: &[String]) -> (usize, usize, usize) {
    let probes = log.iter().filter(|r| r.contains(" /version")).count();
    let watches = log.iter().filter(|r| r.contains("watch=true")).count();
    (probes, watches, log.len() - probes - watches)
}

/// `--outage`: the catch-up after each outage, and what was asked for it.
fn outages(
    api: &ApiServer,
    rt: &tokio::runtime::Runtime,
    a: &Args,
    wait_for: &mut impl FnMut(&str, usize) -> Duration,
) {
    let _enter = rt.enter();
    let half = Duration::from_secs(a.outage) / 2;
    let mut catch_ups = Vec::new();
    for run in 0..a.outage_runs {
        let before = api.requests().len();
        let (first, second) = match a.outage_kind.as_str() {
            "errors" => (apiserver::Mode::Failing, apiserver::Mode::Failing),
            "hang" => (apiserver::Mode::Hung, apiserver::Mode::Hung),
            _ => (apiserver::Mode::Failing, apiserver::Mode::Hung),
        };
        api.set_mode(first);
        let name = format!("outage-{run}");
        api.apply(json!({
            "kind": "Service",
            "metadata": {"name": name, "namespace": "ns-0"},
            "spec": {"clusterIP": ip(run, 94), "clusterIPs": [ip(run, 94)],
                     "ports": [{"name": "http", "port": 80, "protocol": "TCP"}]},
        }));
        std::thread::sleep(half);
        api.set_mode(second);
        std::thread::sleep(half);
        let at = api.recover();
        let took = wait_for(&format!("{name}.ns-0.svc.cluster.local."), 1);
        let log = api.requests();
        let (during, after) = (kinds_of(&log[before..at]), kinds_of(&log[at..]));
        println!(
            "outage {}: {} s ({}): caught up {:.0} ms after the API was back; \
             asked during it: {} probes, {} watches, {} lists; after it, until the answer: {} probes, {} watches, {} lists",
            run + 1,
            a.outage,
            match a.outage_kind.as_str() {
                "errors" => "500s",
                "hang" => "hanging",
                _ => "500s, then hanging",
            },
            took.as_secs_f64() * 1000.0,
            during.0,
            during.1,
            during.2,
            after.0,
            after.1,
            after.2,
        );
        catch_ups.push(took);
        // Settle before the next: every kind back to watching.
        std::thread::sleep(Duration::from_secs(3));
    }
    report(
        "catch-up after an outage (recovery to first correct answer)",
        catch_ups,
    );
}

/// `--restart`: the relist after an API server restart, its peak memory and its answers.
fn restart(api: &ApiServer, rt: &tokio::runtime::Runtime, pid: u32, to: SocketAddr) {
    let _enter = rt.enter();
    // The steady state: the peak so far forgotten (writing 5 to clear_refs resets VmHWM).
    let _ = std::fs::write(format!("/proc/{pid}/clear_refs"), "5");
    std::thread::sleep(Duration::from_secs(2));
    let steady = status_kb(pid, "VmHWM:");
    let sock = UdpSocket::bind("127.0.0.1:0").expect("client socket");
    sock.set_read_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    let before = api.requests().len();
    // A restart: connections refused for a moment, every watch cut, and a watch cache rebuilt
    // from etcd, which remembers no version older than the newest (a write, then the history
    // compacted): every kind's resumed watch gets 410 and lists again.
    api.set_mode(apiserver::Mode::Down);
    api.apply(json!({"kind": "Namespace", "metadata": {"name": "restarted"}}));
    api.expire_history();
    std::thread::sleep(Duration::from_millis(500));
    api.recover();
    let start = Instant::now();
    let (mut asked, mut wrong) = (0usize, 0usize);
    let mut id = 30_000u16;
    // Ask a sample of names until the relist is over (every kind listed again) and a while on.
    while start.elapsed() < Duration::from_secs(20) {
        let i = asked % 1000;
        let name = format!("svc-{i}.ns-{}.svc.cluster.local.", i % NAMESPACES);
        id = id.wrapping_add(1);
        // A ClusterIP Service answers its one address, a headless one (one in ten) its
        // endpoints'.
        let want_one = i % 10 != 0;
        match ask(&sock, to, &name, id) {
            Some((ResponseCode::NoError, 1)) if want_one => {}
            Some((ResponseCode::NoError, n)) if !want_one && n > 0 => {}
            _ => wrong += 1,
        }
        asked += 1;
        std::thread::sleep(Duration::from_millis(2));
    }
    let peak = status_kb(pid, "VmHWM:");
    let log = api.requests();
    let (probes, watches, lists) = kinds_of(&log[before..]);
    println!(
        "restart: {} 410s sent; relist peak VmHWM {:.1} MiB against {:.1} MiB steady ({:+.0}%); {wrong} wrong of {asked} answers; asked: {probes} probes, {watches} watches, {lists} lists",
        api.gone_sent(),
        peak as f64 / 1024.0,
        steady as f64 / 1024.0,
        (peak as f64 / steady as f64 - 1.0) * 100.0
    );
}
