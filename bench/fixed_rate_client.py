#!/usr/bin/python3
"""Sends GETs at a fixed rate over a few keep-alive connections; prints latency.

wrk only does closed-loop load, so this measures latency at a moderate,
fixed arrival rate (open loop): request i is due at start + i/rate and goes
out on the first idle connection. Latency is measured from the moment the
request is written to the moment its response is complete
(time.perf_counter_ns), so Python's own timer jitter is not counted; a
request sent more than 1 ms after it was due counts as "late" (client lag,
reported so a saturated client is visible). Prints one JSON object.

Used by bench/run for the added-latency scenario; stdlib only.
"""

import argparse
import collections
import json
import math
import selectors
import socket
import sys
import time

from http_response_reader import ProtocolError, ResponseReader


class Conn:
    __slots__ = ("sock", "reader", "t_send")

    def __init__(self, host, port):
        self.sock = socket.create_connection((host, port), timeout=5)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.sock.setblocking(False)
        self.reader = ResponseReader()
        self.t_send = 0


def percentile(sorted_values, p):
    if not sorted_values:
        return None
    k = max(0, math.ceil(p / 100 * len(sorted_values)) - 1)  # nearest rank
    return sorted_values[k]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--path", default="/")
    ap.add_argument("--rate", type=float, default=1000.0, help="requests per second")
    ap.add_argument("--duration", type=float, default=5.0, help="seconds")
    ap.add_argument("--connections", type=int, default=4)
    ap.add_argument("--header", action="append", default=[], help="'Name: value' added to every request")
    args = ap.parse_args()

    request = (f"GET {args.path} HTTP/1.1\r\nHost: {args.host}:{args.port}\r\n"
               "User-Agent: gatehouse-bench-fixed-rate\r\n" + "".join(h + "\r\n" for h in args.header)
               + "\r\n").encode()
    # select(2) takes a microsecond timeout; epoll's is rounded up to whole
    # milliseconds, which would make the client send in 1 ms bursts.
    sel = selectors.SelectSelector()
    idle = []
    try:
        for _ in range(args.connections):
            c = Conn(args.host, args.port)
            sel.register(c.sock, selectors.EVENT_READ, c)
            idle.append(c)
    except OSError as e:
        print(json.dumps({"fatal": f"cannot connect to {args.host}:{args.port}: {e}"}))
        return 1

    total = int(args.rate * args.duration)
    interval = 1e9 / args.rate
    latencies = []
    due_queue = collections.deque()
    sent = non2xx = errors = late = reconnects = 0
    next_i = 0
    start = time.perf_counter_ns() + 10_000_000
    hard_stop = time.monotonic() + args.duration + 15

    def replace(c):
        nonlocal reconnects
        sel.unregister(c.sock)
        c.sock.close()
        reconnects += 1
        try:
            n = Conn(args.host, args.port)
        except OSError:
            return  # the server is gone; the connections left (if any) carry on
        sel.register(n.sock, selectors.EVENT_READ, n)
        idle.append(n)

    busy = set()
    while time.monotonic() < hard_stop:
        now = time.perf_counter_ns()
        while next_i < total and start + next_i * interval <= now:
            due_queue.append(start + next_i * interval)
            next_i += 1
        while due_queue and idle:
            c = idle.pop()
            due = due_queue.popleft()
            c.t_send = time.perf_counter_ns()
            if c.t_send - due > 1_000_000:
                late += 1
            try:
                c.sock.send(request)
            except OSError:
                errors += 1
                replace(c)
                continue
            sent += 1
            busy.add(c)
        if next_i >= total and not due_queue and not busy:
            break
        if not idle and not busy:
            errors += len(due_queue) + total - next_i  # every connection is gone
            break
        if due_queue or next_i >= total:
            timeout = 0.1
        else:
            timeout = max(0.0, (start + next_i * interval - time.perf_counter_ns()) / 1e9)
        for key, _ in sel.select(timeout):
            c = key.data
            try:
                data = c.sock.recv(65536)
            except BlockingIOError:
                continue
            except OSError:
                data = b""
            if not data:
                if c in busy:
                    busy.discard(c)
                    errors += 1
                else:
                    idle.remove(c)
                replace(c)
                continue
            try:
                statuses = c.reader.feed(data)
            except ProtocolError:
                busy.discard(c)
                errors += 1
                replace(c)
                continue
            if statuses and c in busy:
                latencies.append(time.perf_counter_ns() - c.t_send)
                if not 200 <= statuses[0] < 300:
                    non2xx += 1
                busy.discard(c)
                idle.append(c)
    errors += len(busy)  # still unanswered at the hard stop

    latencies.sort()
    us = lambda v: None if v is None else round(v / 1000, 1)
    print(json.dumps({
        "sent": sent, "completed": len(latencies), "non2xx": non2xx, "errors": errors,
        "late": late, "reconnects": reconnects,
        "p50_us": us(percentile(latencies, 50)), "p90_us": us(percentile(latencies, 90)),
        "p99_us": us(percentile(latencies, 99)), "max_us": us(latencies[-1] if latencies else None),
        "mean_us": us(sum(latencies) / len(latencies) if latencies else None),
    }))


if __name__ == "__main__":
    sys.exit(main())
