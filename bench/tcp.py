#!/usr/bin/env python3
"""TCP connections against a running server on 127.0.0.1 (issue 33's figures).

  bench/tcp.py connects PORT N   N sequential connects, held open: how many waited (a
                                 SYN the kernel dropped costs the client a second), then
                                 whether a new connection's query is answered.
  bench/tcp.py idle PORT N PID   N idle connections from 8 loopback sources: the server's
                                 (PID) resident memory before and after, and whether
                                 another client's query is answered meanwhile.
"""
import socket
import struct
import sys
import time

QUERY = bytes.fromhex("abcd01000001000000000000") + \
    b"\x0akubernetes\x07default\x03svc\x07cluster\x05local\x00\x00\x01\x00\x01"


def answered(port):
    s = socket.socket()
    s.settimeout(3)
    try:
        s.connect(("127.0.0.1", port))
        s.sendall(struct.pack(">H", len(QUERY)) + QUERY)
        return len(s.recv(2)) == 2
    except OSError as e:
        return f"no ({e})"
    finally:
        s.close()


def rss_kib(pid):
    for line in open(f"/proc/{pid}/status"):
        if line.startswith("VmRSS"):
            return int(line.split()[1])
    return 0


def connects(port, n):
    held, slow = [], []
    start = time.time()
    for i in range(n):
        s = socket.socket()
        s.settimeout(5)
        t = time.time()
        s.connect(("127.0.0.1", port))
        if time.time() - t > 0.2:
            slow.append((i, round(time.time() - t, 2)))
        held.append(s)
    print(f"{n} sequential connects in {time.time() - start:.2f} s; "
          f"{len(slow)} waited (connect number, seconds): {slow[:10]}")
    print("a new connection's query answered:", answered(port))


def idle(port, n, pid):
    answered(port)
    time.sleep(0.5)
    before = rss_kib(pid)
    held = []
    for i in range(n):
        s = socket.socket()
        s.bind((f"127.0.0.{2 + i % 8}", 0))
        s.connect(("127.0.0.1", port))
        held.append(s)
    time.sleep(1)
    after = rss_kib(pid)
    print(f"{n} idle connections: RSS {before / 1024:.1f} -> {after / 1024:.1f} MiB "
          f"(+{(after - before) / 1024:.1f} MiB, {(after - before) * 1024 / n:.0f} B each); "
          f"another client's query answered: {answered(port)}")


if __name__ == "__main__":
    if len(sys.argv) == 4 and sys.argv[1] == "connects":
        connects(int(sys.argv[2]), int(sys.argv[3]))
    elif len(sys.argv) == 5 and sys.argv[1] == "idle":
        idle(int(sys.argv[2]), int(sys.argv[3]), sys.argv[4])
    else:
        sys.exit(__doc__)
