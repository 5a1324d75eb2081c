#!/usr/bin/env python3
"""Writes the seed corpora in fuzz/seeds/<target>/ from the tests' own data.

message: every case in tests/cases/*.yaml as a query (with and without EDNS), plus the
         malformed packets of tests/it/packets.rs;
qname:   every case's name in wire format;
corefile: the demo and every case file's Corefile;
objects: the fixtures and the demo cluster, as YAML and as JSON.
Needs PyYAML. The seeds are committed, so CI does not run this.
"""
import glob
import hashlib
import json
import os
import struct

import yaml

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
OUT = os.path.join(ROOT, "fuzz", "seeds")
TYPES = {"A": 1, "NS": 2, "CNAME": 5, "SOA": 6, "PTR": 12, "MX": 15, "TXT": 16, "AAAA": 28,
         "SRV": 33, "ANY": 255, "AXFR": 252, "IXFR": 251}


def write(target, data):
    d = os.path.join(OUT, target)
    os.makedirs(d, exist_ok=True)
    if isinstance(data, str):
        data = data.encode()
    with open(os.path.join(d, hashlib.sha1(data).hexdigest()), "wb") as f:
        f.write(data)


def wire_name(name):
    out = b""
    for label in name.rstrip(".").split("."):
        if label:
            out += bytes([len(label)]) + label.encode()
    return out + b"\0"


def query(qid, name, qtype, edns=None, flags=0x0100):
    arcount = 1 if edns else 0
    msg = struct.pack(">HHHHHH", qid, flags, 1, 0, 0, arcount)
    msg += wire_name(name) + struct.pack(">HH", qtype, 1)
    if edns:
        msg += b"\0" + struct.pack(">HHIH", 41, edns, 0, 0)
    return msg


def main():
    cases = sorted(glob.glob(os.path.join(ROOT, "tests", "cases", "*.yaml")))
    for i, path in enumerate(cases):
        doc = yaml.safe_load(open(path))
        write("corefile", doc["corefile"].replace("FIXTURE", "cluster.yaml"))
        for j, case in enumerate(doc["cases"]):
            qtype = TYPES.get(case["qtype"], 1)
            write("message", query(i * 1000 + j, case["qname"], qtype))
            write("message", query(i * 1000 + j, case["qname"].upper(), qtype, edns=1232))
            write("qname", wire_name(case["qname"]))
    write("corefile", open(os.path.join(ROOT, "deploy", "local", "Corefile")).read())
    # Malformed packets, as the packet tests send them.
    q = wire_name("kubernetes.default.svc.cluster.local") + struct.pack(">HH", 1, 1)
    opt = b"\0" + struct.pack(">HHIH", 41, 1232, 0, 0)
    opt_v1 = b"\0" + struct.pack(">HHIH", 41, 1232, 0x00010000, 0)
    for flags, qd, ar, body in [
        (0x0100, 0, 0, b""), (0x0100, 2, 0, q + q), (0x0100, 65535, 0, q),
        (0x0100, 1, 0, bytes([64]) + b"a" * 64 + b"\0\0\1\0\1"),
        (0x0100, 1, 0, b"\xc0\x0c\0\1\0\1"), (0x0100, 1, 0, b"\xc0\x14\0\1\0\1\1a\0"),
        (0x8100, 1, 0, q), (0x1100, 1, 0, q), (0x0100, 1, 1, q + opt_v1),
        (0x0100, 1, 2, q + opt + opt), (0x0100, 1, 0, q[:10]),
    ]:
        write("message", struct.pack(">HHHHHH", 7, flags, qd, 0, 0, ar) + body)
    write("message", b"\x12\x34\x01")
    for path in sorted(glob.glob(os.path.join(ROOT, "tests", "fixtures", "*.yaml"))) + [
            os.path.join(ROOT, "deploy", "local", "cluster.yaml")]:
        text = open(path).read()
        write("objects", text)
        docs = [d for d in yaml.safe_load_all(text) if d]
        write("objects", json.dumps(docs[0] if len(docs) == 1 else {"kind": "List", "items": docs}))

    # Every real-world Corefile of the compatibility corpus.
    for path in sorted(glob.glob(os.path.join(ROOT, "Corefile-compat", "*", "Corefile"))):
        write("corefile", open(path).read())

    # Hosts files as k3s (NodeHosts) and a machine's /etc/hosts write them.
    write("hosts", "# k3s NodeHosts\n172.18.0.2 server-0\n172.18.0.3 agent-0 agent-0.lan\nfd00:18::3 agent-0\n")
    write("hosts", "127.0.0.1\tlocalhost\n::1 localhost ip6-localhost ip6-loopback\nfe80::1%eth0 link # c\n")


if __name__ == "__main__":
    main()
