#!/usr/bin/env python3
"""The node-local role against Unbound as the same caching forwarder, in one run (issue 33).

    python3 bench/nodelocal.py [--services 10000] [--duration 10] [--rate 10000] [--minute 60]

Both caches sit in front of the same upstream, Knot serving the synthetic cluster's zone (what
`cargo bench --bench gen` writes) on the client's CPU, as the Deployment would: each forwards
cluster.local to it over TCP, as node-local-dns's Corefile does (`force_tcp`), and keeps answers
for at most 30 s. clusterdns runs as the DaemonSet runs it: started with node-cache's arguments
(`-localip`, `-conf`, `-basecorefile`, `-upstreamsvc`, `-kubednscm`), the Corefile rendered
from Kubernetes' nodelocaldns.yaml template, without the link and the rules
(`-setupinterface=false -setupiptables=false`: the bench runs on loopback). Unbound is Debian's,
one thread, with its default caches, DNSSEC validation off (the cluster zone is unsigned).
Each cache is pinned to CPU 0 and the clients to CPU 1. For each: a warm-up that fills the
cache with every name of hits.txt, then
  - QPS at saturation (dnsperf) and QPS per server core (from the server's CPU time);
  - p50 and p99 at --rate, from bench/latency.rs (median of three runs);
  - resident memory (VmRSS) --minute seconds after the start.
The zone's TTLs are raised from 5 s to 300 s so that every answer in the run is a cache hit.
"""
import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import runlib  # noqa: E402

m = runlib.load()

# Kubernetes' nodelocaldns.yaml Corefile, ports and addresses made the bench's.
BASE = """cluster.local:{port} {{
    errors
    cache {{
            success 9984 30
            denial 9984 5
    }}
    reload
    loop
    bind __PILLAR__LOCAL__DNS__
    forward . __PILLAR__CLUSTER__DNS__:{upstream} {{
            force_tcp
    }}
    prometheus 127.0.0.1:{prom}
    health 127.0.0.1:{health}
    }}
in-addr.arpa:{port} {{
    errors
    cache 30
    reload
    loop
    bind __PILLAR__LOCAL__DNS__
    forward . __PILLAR__CLUSTER__DNS__:{upstream} {{
            force_tcp
    }}
    prometheus 127.0.0.1:{prom}
    }}
.:{port} {{
    errors
    cache 30
    reload
    loop
    bind __PILLAR__LOCAL__DNS__
    forward . __PILLAR__UPSTREAM__SERVERS__
    prometheus 127.0.0.1:{prom}
    }}
"""


def node_local(work, port, upstream):
    base = os.path.join(work, "Corefile.base")
    with open(base, "w") as f:
        f.write(BASE.format(port=port, upstream=upstream, prom=m.free_port(),
                            health=m.free_port()))
    kubedns = os.path.join(work, "kube-dns")
    os.makedirs(kubedns, exist_ok=True)
    with open(os.path.join(kubedns, "upstreamNameservers"), "w") as f:
        json.dump([f"127.0.0.1:{upstream}"], f)
    return ["env", "KUBE_DNS_UPSTREAM_SERVICE_HOST=127.0.0.1",
            os.path.join(m.ROOT, "target/release/clusterdns"),
            "-localip", "127.0.0.1", "-dns.port", str(port),
            "-conf", os.path.join(work, "Corefile"), "-basecorefile", base,
            "-kubednscm", kubedns, "-upstreamsvc", "kube-dns-upstream",
            "-setupinterface=false", "-setupiptables=false",
            "-metrics-listen-address", f"127.0.0.1:{m.free_port()}", "-quiet"]


def unbound(work, port, upstream):
    conf = os.path.join(work, "unbound.conf")
    with open(conf, "w") as f:
        f.write(f"""server:
    interface: 127.0.0.1@{port}
    port: {port}
    num-threads: 1
    do-daemonize: no
    chroot: ""
    username: ""
    directory: "{work}"
    pidfile: ""
    use-syslog: no
    logfile: ""
    verbosity: 0
    do-not-query-localhost: no
    access-control: 127.0.0.0/8 allow
    module-config: "iterator"
    qname-minimisation: no
    cache-max-ttl: 30
    cache-max-negative-ttl: 5
forward-zone:
    name: "cluster.local."
    forward-addr: 127.0.0.1@{upstream}
    forward-tcp-upstream: yes
""")
    subprocess.run(["unbound-checkconf", conf], check=True, capture_output=True)
    return ["unbound", "-d", "-c", conf]


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--services", type=int, default=10000)
    ap.add_argument("--duration", type=int, default=10)
    ap.add_argument("--rate", type=int, default=10000)
    ap.add_argument("--minute", type=int, default=60)
    args = ap.parse_args()
    m.need([("dnsperf", "dnsperf"), ("knotd", "knot"), ("unbound", "unbound"),
            ("taskset", "util-linux")])
    subprocess.run(["cargo", "build", "--release", "--bin", "clusterdns"], check=True)
    m.LATENCY = m.bench_binary("latency")
    work = tempfile.mkdtemp(prefix="clusterdns-nodelocal-")
    data = os.path.join(work, "data")
    subprocess.run(["cargo", "bench", "--bench", "gen", "--", "--services",
                    str(args.services), "--out", data], check=True)
    # Every answer a cache hit: TTLs of 300 s (the caches keep them 30 s, as configured).
    zone = os.path.join(data, "cluster.local.zone")
    with open(zone) as f:
        text = f.read()
    with open(zone, "w") as f:
        f.write(re.sub(r"(?m)^(\S+\s+)5(\s+IN\s)", r"\g<1>300\g<2>", text))
    up = m.free_port()
    upstream = subprocess.Popen(["taskset", "-c", m.CLIENT_CPU,
                                 *m.knot(work, data, up, "upstream", ("cluster.local",))],
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    hits = os.path.join(data, "hits.txt")
    results = {}
    try:
        m.first_answer(up, "svc-1.ns-1.svc.cluster.local")
        for name, make in [("unbound", unbound), ("clusterdns", node_local)]:
            port = m.free_port()
            s = m.Server(name, make(work, port, up), port, work)
            try:
                m.first_answer(port, "svc-1.ns-1.svc.cluster.local")
                m.dnsperf(port, hits, 3)  # fills the cache
                before = m.cpu_seconds(s.proc.pid)
                summary = m.parse_summary(m.dnsperf(port, hits, args.duration))
                used = m.cpu_seconds(s.proc.pid) - before
                runs = [m.paced(port, hits, max(1, args.duration // 3), args.rate)
                        for _ in range(3)]
                lat = {k: sorted(r[k] for r in runs)[1] for k in ("p50", "p99")}
                wait = args.minute - (time.monotonic() - s.started)
                if wait > 0:
                    time.sleep(wait)
                results[name] = {
                    "qps": summary.get("qps", 0.0),
                    "lost": summary.get("lost", 0),
                    "qps_per_core": summary.get("completed", 0) / used if used else 0.0,
                    "p50_us": lat["p50"],
                    "p99_us": lat["p99"],
                    "paced_lost": sum(r["lost"] for r in runs),
                    "rss_mib": m.rss_mib(s.proc.pid),
                }
            finally:
                s.stop()
    finally:
        upstream.terminate()
        upstream.wait()
    u, c = results["unbound"], results["clusterdns"]
    print(f"\ncache hits ({args.services} Services, hits.txt), caches on one core, one run:")
    print(f"{'':22}{'Unbound':>12}{'clusterdns':>12}{'ratio':>8}")
    for key, label, fmt in [("qps", "QPS", "{:.0f}"), ("qps_per_core", "QPS per core", "{:.0f}"),
                            ("p50_us", "p50 (us)", "{:.0f}"), ("p99_us", "p99 (us)", "{:.0f}"),
                            ("rss_mib", f"RSS at {args.minute} s (MiB)", "{:.1f}"),
                            ("lost", "lost (dnsperf)", "{:.0f}"),
                            ("paced_lost", "lost (paced)", "{:.0f}")]:
        ratio = c[key] / u[key] if u[key] else float("nan")
        print(f"{label:22}{fmt.format(u[key]):>12}{fmt.format(c[key]):>12}{ratio:>8.2f}")


if __name__ == "__main__":
    main()
