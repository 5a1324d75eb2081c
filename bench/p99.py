#!/usr/bin/env python3
"""Paced p99, Knot (every name from memory) against kubeadm's Corefile (bench/run's stock chain,
forwarding to a Knot upstream), alternating the two for several rounds so that a stall of the
machine moves one round, not the figure. Prints each run and the medians (see bench/README.md).
Usage: python3 bench/p99.py DATA [ROUNDS]   (DATA: cargo bench --bench gen -- --out DATA)"""
import os, statistics, subprocess, sys, tempfile
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import runlib  # noqa: E402
m = runlib.load()
data = sys.argv[1]
rounds = int(sys.argv[2]) if len(sys.argv) > 2 else 3
files = ["mix", "pod", "hits"]
work = tempfile.mkdtemp()
m.LATENCY = m.bench_binary("latency")
m.UPSTREAM_PORT = m.free_port()
upstream = subprocess.Popen(["taskset", "-c", m.CLIENT_CPU,
                             *m.knot(work, data, m.UPSTREAM_PORT, "upstream", ("example.com",))],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
m.first_answer(m.UPSTREAM_PORT, "host-1.example.com")
p99 = {}
try:
    for r in range(rounds):
        order = [("knot", m.knot), ("stock", m.clusterdns_stock)]
        if r % 2:
            order.reverse()
        for name, make in order:
            port = m.free_port()
            s = m.Server(name, make(work, data, port), port, work)
            try:
                m.first_answer(port, "svc-1.ns-1.svc.cluster.local")
                for q in files:
                    f = os.path.join(data, f"{q}.txt")
                    m.dnsperf(port, f, 2)  # warm up (and fill the stock chain's cache)
                    lat = m.paced(port, f, 10, 10000)
                    p99.setdefault((name, q), []).append(lat["p99"])
                    print(f"round {r} {name:6} {q:5} p50 {lat['p50']:.0f} us  p99 {lat['p99']:.0f} us"
                          f"  p999 {lat['p999']:.0f} us  lost {lat['lost']:.0f}", flush=True)
            finally:
                s.stop()
finally:
    upstream.terminate()
    upstream.wait()
for q in files:
    k, s = statistics.median(p99[("knot", q)]), statistics.median(p99[("stock", q)])
    print(f"{q:5} median p99: Knot {k:.0f} us, kubeadm's Corefile {s:.0f} us, ratio {s / k:.2f}")
