#!/usr/bin/python3
"""Opens N keep-alive connections to a server and holds them idle.

Each connection sends one GET and reads the whole response (so the server has
gone through a full keep-alive cycle on it), then stays open. When all are
open it prints one JSON line {"event": "ready", ...} on stdout, then holds the
connections until it reads "close" or EOF on stdin, prints
{"event": "done", ...} and resets every connection (SO_LINGER 0, so no
TIME_WAIT piles up between rounds).

Used by bench/run for the idle-connections scenario; stdlib only.
"""

import argparse
import errno
import json
import resource
import selectors
import socket
import struct
import sys
import time

from http_response_reader import ProtocolError, ResponseReader

CONNECTING, WAITING, HELD = range(3)


class Conn:
    __slots__ = ("sock", "state", "reader")

    def __init__(self, sock):
        self.sock = sock
        self.state = CONNECTING
        self.reader = ResponseReader()


def raise_nofile(need):
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = need + 64
    if soft >= want:
        return
    try:
        resource.setrlimit(resource.RLIMIT_NOFILE, (max(want, soft), max(want, hard)))
    except (ValueError, OSError):
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


def emit(obj):
    sys.stdout.write(json.dumps(obj) + "\n")
    sys.stdout.flush()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--count", type=int, required=True)
    ap.add_argument("--path", default="/")
    ap.add_argument("--window", type=int, default=256, help="connections being set up at once")
    ap.add_argument("--timeout", type=float, default=120.0, help="give up opening after this many seconds")
    ap.add_argument("--stall", type=float, default=10.0,
                    help="give up on the rest when no connection got its response for this many seconds")
    ap.add_argument("--header", action="append", default=[], help="'Name: value' added to every request")
    args = ap.parse_args()

    raise_nofile(args.count)
    request = (f"GET {args.path} HTTP/1.1\r\nHost: {args.host}:{args.port}\r\n"
               "User-Agent: gatehouse-bench-idle\r\n" + "".join(h + "\r\n" for h in args.header)
               + "\r\n").encode()
    sel = selectors.DefaultSelector()
    started = held = failed = non2xx = inflight = 0
    errors = {}
    conns = []
    t0 = time.monotonic()
    deadline = t0 + args.timeout

    def fail(c, why):
        nonlocal failed, inflight
        failed += 1
        inflight -= 1
        errors[why] = errors.get(why, 0) + 1
        sel.unregister(c.sock)
        c.sock.close()

    closed_by_peer = 0

    def check_held(c):
        """A held connection became readable: the peer closed it (or sent junk)."""
        nonlocal closed_by_peer
        try:
            data = c.sock.recv(4096)
        except BlockingIOError:
            return
        except OSError:
            data = b""
        if not data:
            closed_by_peer += 1
            sel.unregister(c.sock)
            c.sock.close()
            c.state = None

    last_progress = time.monotonic()
    while held + failed < args.count and time.monotonic() < deadline:
        if time.monotonic() - last_progress > args.stall:
            break
        while started < args.count and inflight < args.window:
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.setblocking(False)
            started += 1
            inflight += 1
            c = Conn(s)
            err = s.connect_ex((args.host, args.port))
            if err not in (0, errno.EINPROGRESS):
                failed += 1
                inflight -= 1
                errors[errno.errorcode.get(err, str(err))] = errors.get(errno.errorcode.get(err, str(err)), 0) + 1
                s.close()
                continue
            sel.register(s, selectors.EVENT_WRITE, c)
        for key, _ in sel.select(1.0):
            c = key.data
            if c.state == CONNECTING:
                err = c.sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
                if err:
                    fail(c, errno.errorcode.get(err, str(err)))
                    continue
                try:
                    c.sock.sendall(request)
                except OSError as e:
                    fail(c, type(e).__name__)
                    continue
                c.state = WAITING
                sel.modify(c.sock, selectors.EVENT_READ, c)
            elif c.state == WAITING:
                try:
                    data = c.sock.recv(65536)
                except BlockingIOError:
                    continue
                except OSError as e:
                    fail(c, type(e).__name__)
                    continue
                if not data:
                    fail(c, "closed before response")
                    continue
                try:
                    statuses = c.reader.feed(data)
                except ProtocolError as e:
                    fail(c, f"protocol: {e}")
                    continue
                if statuses:
                    if not 200 <= statuses[0] < 300:
                        non2xx += 1
                    c.state = HELD
                    inflight -= 1
                    held += 1
                    conns.append(c)
                    last_progress = time.monotonic()
            elif c.state == HELD:
                check_held(c)
    # Anything still connecting at the deadline counts as failed.
    for key in list(sel.get_map().values()):
        c = key.data
        if c is not None and c.state != HELD:
            fail(c, "no response" if c.state == WAITING else "connect timeout")
    open_seconds = time.monotonic() - t0
    failed += args.count - started  # never attempted after a stall
    emit({"event": "ready", "held": held, "failed": failed, "non2xx": non2xx,
          "errors": errors, "closed_by_peer": closed_by_peer, "open_seconds": round(open_seconds, 3)})

    # Hold: watch for peer closes and for the harness's "close" on stdin.
    sel.register(sys.stdin, selectors.EVENT_READ, None)
    stop = False
    while not stop:
        for key, _ in sel.select(5.0):
            c = key.data
            if c is None:
                line = sys.stdin.readline()
                if not line or line.strip() == "close":
                    stop = True
                continue
            check_held(c)
    linger = struct.pack("ii", 1, 0)
    for c in conns:
        if c.state == HELD:
            try:
                c.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, linger)
            except OSError:
                pass
            c.sock.close()
    emit({"event": "done", "closed_by_peer": closed_by_peer})


if __name__ == "__main__":
    main()
