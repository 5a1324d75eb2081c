#!/usr/bin/env python3
"""The node-local role against Unbound as the same caching forwarder, in one run (issue 33).

    python3 bench/nodelocal.py [--services 10000] [--duration 10] [--rate 10000] [--minute 60]
                               [--rounds 5]

Both caches sit in front of the same upstream, Knot serving the synthetic cluster's zone (what
`cargo bench --bench gen` writes) on the client's CPU, as the Deployment would: each forwards
cluster.local to it over TCP, as node-local-dns's Corefile does (`force_tcp`), and keeps answers
for at most 30 s. clusterdns runs as the DaemonSet runs it: the image's binary (static, from
deploy/build-static.sh, as deploy/Dockerfile builds it), started with node-cache's arguments
(`-localip`, `-conf`, `-basecorefile`, `-upstreamsvc`, `-kubednscm`), the Corefile rendered
from Kubernetes' nodelocaldns.yaml template, without the link and the rules
(`-setupinterface=false -setupiptables=false`: the bench runs on loopback). Unbound is Debian's,
one thread, with its default caches, DNSSEC validation off (the cluster zone is unsigned).
Each cache is pinned to CPU 0 and the clients to CPU 1. The queries are hits.txt's, for its
first 9,984 names (the Corefile's `success 9984`: more names than that would make some queries
misses by design). Each start of a cache is followed by a warm-up that fills it with every one
of those names. Measured:
  - QPS at saturation (dnsperf) and QPS per server core (from the server's CPU time), in
    --rounds rounds, each cache started afresh in turn; the ratio is the median of the rounds';
  - the cache misses during those runs (clusterdns's coredns_cache_misses_total, Unbound's
    total.num.cachemiss): 0 when every answer was a hit;
  - then, both started again and run at saturation once: p50 and p99 at --rate, from
    bench/latency.rs (median of three runs), and resident memory (VmRSS) --minute seconds after
    the start.
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
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import runlib  # noqa: E402

m = runlib.load()

# `success` of nodelocaldns.yaml's Corefile: the names the bench asks for.
CAPACITY = 9984

# Kubernetes' nodelocaldns.yaml Corefile, ports and addresses made the bench's.
BASE = """cluster.local:{port} {{
    errors
    cache {{
            success {capacity} 30
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


def node_local(work, port, upstream, binary):
    """The command line, and how to read the cache misses so far."""
    base = os.path.join(work, "Corefile.base")
    prom = m.free_port()
    with open(base, "w") as f:
        f.write(BASE.format(port=port, upstream=upstream, prom=prom, health=m.free_port(),
                            capacity=CAPACITY))
    kubedns = os.path.join(work, "kube-dns")
    os.makedirs(kubedns, exist_ok=True)
    with open(os.path.join(kubedns, "upstreamNameservers"), "w") as f:
        json.dump([f"127.0.0.1:{upstream}"], f)
    return ["env", "KUBE_DNS_UPSTREAM_SERVICE_HOST=127.0.0.1",
            binary,
            "-localip", "127.0.0.1", "-dns.port", str(port),
            "-conf", os.path.join(work, "Corefile"), "-basecorefile", base,
            "-kubednscm", kubedns, "-upstreamsvc", "kube-dns-upstream",
            "-setupinterface=false", "-setupiptables=false",
            "-metrics-listen-address", f"127.0.0.1:{m.free_port()}", "-quiet"], \
        lambda: cache_misses(prom)


def cache_misses(prom):
    with urllib.request.urlopen(f"http://127.0.0.1:{prom}/metrics", timeout=5) as r:
        text = r.read().decode()
    return sum(float(line.split()[-1]) for line in text.splitlines()
               if line.startswith("coredns_cache_misses_total"))


def unbound(work, port, upstream, _binary):
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
    statistics-cumulative: yes
    module-config: "iterator"
    qname-minimisation: no
    cache-max-ttl: 30
    cache-max-negative-ttl: 5
forward-zone:
    name: "cluster.local."
    forward-addr: 127.0.0.1@{upstream}
    forward-tcp-upstream: yes
remote-control:
    control-enable: yes
    control-interface: {work}/unbound.ctl
""")
    subprocess.run(["unbound-checkconf", conf], check=True, capture_output=True)

    def misses():
        out = subprocess.run(["unbound-control", "-c", conf, "stats_noreset"], check=True,
                             capture_output=True, text=True).stdout
        return float(re.search(r"(?m)^total\.num\.cachemiss=(\d+)", out).group(1))
    return ["unbound", "-d", "-c", conf], misses


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--services", type=int, default=10000)
    ap.add_argument("--duration", type=int, default=10)
    ap.add_argument("--rate", type=int, default=10000)
    ap.add_argument("--minute", type=int, default=60)
    ap.add_argument("--rounds", type=int, default=5)
    args = ap.parse_args()
    m.need([("dnsperf", "dnsperf"), ("knotd", "knot"), ("unbound", "unbound"),
            ("taskset", "util-linux"), ("setcap", "libcap2-bin")])  # setcap: build-static.sh
    m.LATENCY = m.bench_binary("latency")
    work = tempfile.mkdtemp(prefix="clusterdns-nodelocal-")
    # The image's binary: linked statically, so its resident memory holds no shared library.
    subprocess.run([os.path.join(m.ROOT, "deploy/build-static.sh"), os.path.join(work, "out"),
                    "release"], check=True)
    binary = os.path.join(work, "out", "clusterdns")
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
    hits = os.path.join(work, "hits.txt")
    kept = set()
    with open(os.path.join(data, "hits.txt")) as src, open(hits, "w") as out:
        for line in src:
            name = line.split()[0]
            if name not in kept and len(kept) == CAPACITY:
                continue
            kept.add(name)
            out.write(line)
    names = ["unbound", "clusterdns"]
    makers = {"unbound": unbound, "clusterdns": node_local}
    results = {n: {"qps": [], "qps_per_core": [], "lost": 0, "misses": 0} for n in names}
    servers = {}

    def start(name):
        port = m.free_port()
        argv, misses = makers[name](work, port, up, binary)
        servers[name] = (m.Server(name, argv, port, work), port, misses)
        m.first_answer(port, "svc-1.ns-1.svc.cluster.local")
        m.dnsperf(port, hits, 3)  # fills the cache
        return servers[name]

    def stop(name):
        servers.pop(name)[0].stop()

    try:
        m.first_answer(up, "svc-1.ns-1.svc.cluster.local")
        # QPS in rounds, each server started afresh, filled and measured in turn (the first to
        # go alternates): a round's two figures see the same machine, and the ratio is the
        # median of the rounds'. Measured once each, the machine moved both servers' figures by
        # a third from run to run. Afresh, because the caches keep answers 30 s.
        for r in range(args.rounds):
            for name in (names if r % 2 == 0 else names[::-1]):
                s, port, misses = start(name)
                before, missed = m.cpu_seconds(s.proc.pid), misses()
                summary = m.parse_summary(m.dnsperf(port, hits, args.duration))
                used = m.cpu_seconds(s.proc.pid) - before
                res = results[name]
                res["qps"].append(summary.get("qps", 0.0))
                res["qps_per_core"].append(summary.get("completed", 0) / used if used else 0.0)
                res["lost"] += summary.get("lost", 0)
                res["misses"] += misses() - missed
                stop(name)
        # Latency and memory: both started, filled and run at saturation once more, then paced,
        # then left alone until --minute after their start.
        for name in names:
            s, port, _ = start(name)
            m.dnsperf(port, hits, args.duration)
        for name in names:
            s, port, _ = servers[name]
            runs = [m.paced(port, hits, max(1, args.duration // 3), args.rate)
                    for _ in range(3)]
            results[name].update({k: sorted(r[k] for r in runs)[1] for k in ("p50", "p99")})
            results[name]["paced_lost"] = sum(r["lost"] for r in runs)
        for name in names:
            s = servers[name][0]
            wait = args.minute - (time.monotonic() - s.started)
            if wait > 0:
                time.sleep(wait)
            results[name]["rss_mib"] = m.rss_mib(s.proc.pid)
    finally:
        for name in list(servers):
            stop(name)
        upstream.terminate()
        upstream.wait()
    u, c = results["unbound"], results["clusterdns"]
    ratios = sorted(cq / uq for cq, uq in zip(c["qps_per_core"], u["qps_per_core"]) if uq)
    print(f"\ncache hits ({CAPACITY} names of hits.txt), caches on CPU 0, {args.rounds} rounds:")
    print(f"{'round':>6}{'Unbound QPS/core':>18}{'clusterdns QPS/core':>21}{'ratio':>8}")
    for r, (uq, cq) in enumerate(zip(u["qps_per_core"], c["qps_per_core"]), 1):
        print(f"{r:>6}{uq:>18.0f}{cq:>21.0f}{cq / uq if uq else float('nan'):>8.2f}")
    print(f"median ratio of QPS per core: {ratios[len(ratios) // 2]:.2f}")
    for res in (u, c):
        res["qps"] = sorted(res["qps"])[len(res["qps"]) // 2]
        res["qps_per_core"] = sorted(res["qps_per_core"])[len(res["qps_per_core"]) // 2]
    u, c = results["unbound"], results["clusterdns"]
    print(f"\n{'':24}{'Unbound':>12}{'clusterdns':>12}{'ratio':>8}")
    for key, label, fmt in [("qps", "QPS (median)", "{:.0f}"),
                            ("qps_per_core", "QPS per core (median)", "{:.0f}"),
                            ("p50", "p50 (us)", "{:.0f}"), ("p99", "p99 (us)", "{:.0f}"),
                            ("rss_mib", f"RSS at {args.minute} s (MiB)", "{:.1f}"),
                            ("lost", "lost (dnsperf, all rounds)", "{:.0f}"),
                            ("misses", "cache misses (all rounds)", "{:.0f}"),
                            ("paced_lost", "lost (paced)", "{:.0f}")]:
        ratio = c[key] / u[key] if u[key] else float("nan")
        print(f"{label:24}{fmt.format(u[key]):>12}{fmt.format(c[key]):>12}{ratio:>8.2f}")


if __name__ == "__main__":
    main()
