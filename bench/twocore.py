#!/usr/bin/env python3
"""Two cores: the mix with the server pinned to one CPU and dnsperf to the other, then both on
both CPUs, for Knot and clusterdns (see bench/README.md). Usage: python3 bench/twocore.py DATA"""
import sys, os, tempfile
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import runlib  # noqa: E402
m = runlib.load()
data = sys.argv[1]
work = tempfile.mkdtemp()
for label, server_cpu, client_cpu in [("1 server core, client on the other", "0", "1"), ("server and client on both cores", "0,1", "0,1")]:
    m.SERVER_CPU, m.CLIENT_CPU = server_cpu, client_cpu
    # bench/run's own servers: Knot with the zone, clusterdns with `kubernetes` alone.
    for name, make in [("knot", m.knot), ("clusterdns", m.clusterdns)]:
        port = m.free_port()
        s = m.Server(name, make(work, data, port), port, work)
        try:
            m.first_answer(port, "svc-1.ns-1.svc.cluster.local")
            f = os.path.join(data, "mix.txt")
            m.dnsperf(port, f, 2)
            before = m.cpu_seconds(s.proc.pid)
            summary = m.parse_summary(m.dnsperf(port, f, 10))
            used = m.cpu_seconds(s.proc.pid) - before
            print(f"{label:36} {name:10} QPS {summary.get('qps',0):9.0f}  server cores {used/10:4.2f}  QPS/server core {summary.get('completed',0)/used:9.0f}", flush=True)
        finally:
            s.stop()
