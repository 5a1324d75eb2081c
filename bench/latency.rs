//! A paced latency client: one query every 1/RATE seconds, on schedule, from one UDP socket,
//! and the time from each send to its answer.
//!
//! ```text
//! cargo bench --bench latency -- --server 127.0.0.1:53 --queries mix.txt [--rate 10000] [--seconds 10]
//! ```
//!
//! dnsperf 2.10 paces `-Q` in bursts, so its percentiles at a fixed rate measure how long a
//! burst waits in the server's socket queue. This client sends each query at its own time (it
//! spins between sends, so it wants a core of its own: bench/run pins it), reads answers in the
//! same loop, and so sees what one steadily paced client sees. Queries come from a dnsperf
//! query file (`NAME TYPE` per line), in order, round and round.
//!
//! Prints one line of `key=value` figures for bench/run: sent, answered, lost (no answer within
//! one second), and the latency percentiles p50, p90, p99, p999 and max in microseconds.

use std::io::ErrorKind;
use std::net::{SocketAddr, UdpSocket};
use std::time::{Duration, Instant};

struct Args {
    server: SocketAddr,
    queries: String,
    rate: u64,
    seconds: u64,
}

fn args() -> Args {
    let mut server = None;
    let mut queries = None;
    let (mut rate, mut seconds) = (10_000, 10);
    let mut argv = std::env::args().skip(1);
    while let Some(flag) = argv.next() {
        if flag == "--bench" {
            continue; // cargo bench passes it
        }
        let value = argv
            .next()
            .unwrap_or_else(|| panic!("{flag} needs a value"));
        match flag.as_str() {
            "--server" => server = Some(value.parse().expect("--server: an address:port")),
            "--queries" => queries = Some(value),
            "--rate" => rate = value.parse().expect("--rate: queries a second"),
            "--seconds" => seconds = value.parse().expect("--seconds: a number"),
            other => panic!("unknown argument {other}"),
        }
    }
    Args {
        server: server.expect("--server is required"),
        queries: queries.expect("--queries is required"),
        rate: rate.max(1),
        seconds,
    }
}

/// A query in wire form with ID 0, recursion desired, from `NAME TYPE`.
fn encode(line: &str) -> Option<Vec<u8>> {
    let mut parts = line.split_whitespace();
    let name = parts.next()?;
    let qtype: u16 = match parts.next().unwrap_or("A").to_ascii_uppercase().as_str() {
        "A" => 1,
        "NS" => 2,
        "CNAME" => 5,
        "SOA" => 6,
        "PTR" => 12,
        "MX" => 15,
        "TXT" => 16,
        "AAAA" => 28,
        "SRV" => 33,
        "ANY" => 255,
        other => panic!("query type {other} is not one this client knows"),
    };
    let mut wire = vec![0, 0, 0x01, 0, 0, 1, 0, 0, 0, 0, 0, 0];
    for label in name.trim_end_matches('.').split('.') {
        wire.push(u8::try_from(label.len()).ok().filter(|n| *n < 64)?);
        wire.extend_from_slice(label.as_bytes());
    }
    wire.push(0);
    wire.extend_from_slice(&qtype.to_be_bytes());
    wire.extend_from_slice(&1u16.to_be_bytes());
    Some(wire)
}

fn percentile(sorted: &[u64], p: f64) -> u64 {
    if sorted.is_empty() {
        return 0;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

fn main() {
    let a = args();
    let text = std::fs::read_to_string(&a.queries).expect("the query file");
    let mut queries: Vec<Vec<u8>> = text
        .lines()
        .filter(|l| !l.trim().is_empty() && !l.starts_with('#'))
        .filter_map(encode)
        .collect();
    assert!(!queries.is_empty(), "{}: no queries", a.queries);

    let socket = UdpSocket::bind(if a.server.is_ipv4() {
        "0.0.0.0:0"
    } else {
        "[::]:0"
    })
    .expect("a UDP socket");
    socket.connect(a.server).expect("connect");
    socket.set_nonblocking(true).expect("non-blocking");

    let total = a.rate * a.seconds;
    let interval = Duration::from_nanos(1_000_000_000 / a.rate);
    // Send times by query ID; at most 65,536 queries are ever outstanding (far more than a
    // second's worth at any rate this client keeps up), and an answer later than a second is
    // counted lost.
    let mut sent_at: Vec<Option<Instant>> = vec![None; 65_536];
    let mut latencies: Vec<u64> = Vec::with_capacity(total as usize);
    let (mut sent, mut late) = (0u64, 0u64);
    let mut buf = [0u8; 4096];
    let start = Instant::now();
    let mut last_send = start;
    let end_of_sending = start + interval * total as u32;
    let deadline = end_of_sending + Duration::from_secs(1);
    loop {
        let now = Instant::now();
        if sent < total && now >= start + interval * sent as u32 {
            let id = (sent & 0xFFFF) as u16;
            let n = queries.len();
            let q = &mut queries[(sent as usize) % n];
            q[..2].copy_from_slice(&id.to_be_bytes());
            let at = Instant::now();
            match socket.send(q) {
                Ok(_) => {
                    sent_at[usize::from(id)] = Some(at);
                    last_send = at;
                }
                Err(e) if e.kind() == ErrorKind::WouldBlock => {}
                Err(e) => panic!("send: {e}"),
            }
            sent += 1;
            continue;
        }
        match socket.recv(&mut buf) {
            Ok(n) if n >= 2 => {
                let got = Instant::now();
                let id = u16::from_be_bytes([buf[0], buf[1]]);
                if let Some(at) = sent_at[usize::from(id)].take() {
                    let took = got.duration_since(at);
                    if took <= Duration::from_secs(1) {
                        latencies.push(took.as_micros() as u64);
                    } else {
                        late += 1;
                    }
                }
            }
            Ok(_) => {}
            Err(e) if e.kind() == ErrorKind::WouldBlock => {
                if sent >= total && (now >= deadline || latencies.len() as u64 + late >= sent) {
                    break;
                }
                std::hint::spin_loop();
            }
            Err(e) if e.kind() == ErrorKind::ConnectionRefused => {}
            Err(e) => panic!("recv: {e}"),
        }
    }
    // The rate the queries really went out at: a client that fell behind its schedule says so.
    let elapsed = last_send.duration_since(start);
    latencies.sort_unstable();
    let answered = latencies.len() as u64;
    println!(
        "sent={sent} answered={answered} lost={} rate={:.0} p50={} p90={} p99={} p999={} max={}",
        sent - answered,
        sent as f64 / elapsed.as_secs_f64().max(1e-9),
        percentile(&latencies, 50.0),
        percentile(&latencies, 90.0),
        percentile(&latencies, 99.0),
        percentile(&latencies, 99.9),
        latencies.last().copied().unwrap_or(0),
    );
}
