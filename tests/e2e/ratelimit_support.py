"""Support for the rate-limit and traffic-protection black-box tests
(tests/e2e/test_ratelimit_*.py, tests/e2e/test_protection_*.py; the contract
is docs/protection.md): a real redis-server on a free loopback port (killed,
restarted on the same port, paused with SIGSTOP), a backend that holds
requests until released (concurrency_limit), concurrent and pipelined
clients, config builders and assertions on RateLimit-* answers.

Only stdlib, pytest, requests, redis-py (python3-redis) and PyJWT.
"""

import json
import os
import re
import signal
import socket
import subprocess
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import requests

from conftest import (GATEHOUSE_BIN, HTTP_TIMEOUT, START_TIMEOUT, assert_problem, free_port,
                      require_binary)

REDIS_SERVER_BIN = os.environ.get("REDIS_SERVER_BIN") or "/usr/bin/redis-server"

RATE_LIMITED_DETAIL = "rate limit exceeded"
STORE_UNAVAILABLE_DETAIL = "rate limit store unavailable"
CONCURRENCY_DETAIL = "too many concurrent requests"
IP_REFUSED_DETAIL = "client address not allowed"
CORS_REFUSED_DETAIL = "CORS preflight refused"

RL_HEADERS = ("RateLimit-Limit", "RateLimit-Remaining", "RateLimit-Reset")


# --------------------------------------------------------------------------
# config builders

def addr_of(upstream):
    return upstream if isinstance(upstream, str) else upstream.addr


def route(name, prefix, plugins=None, upstream="svc", **extra):
    r = {"name": name, "match": {"path_prefix": prefix}, "upstream": upstream}
    if plugins:
        r["plugins"] = plugins
    r.update(extra)
    return r


def respond_route(name, prefix, plugins=None, body="ok"):
    """A route answered by the gateway itself (no upstream)."""
    r = {"name": name, "match": {"path_prefix": prefix},
         "respond": {"status": 200, "body": body}}
    if plugins:
        r["plugins"] = plugins
    return r


def rl(limit, window="1m", **extra):
    """A `rate_limit` plugin entry."""
    conf = {"limit": limit, "window": window}
    conf.update(extra)
    return {"rate_limit": conf}


def config(upstreams, routes, **extra):
    """A config dict. `upstreams`: {name: Backend | Recorder | "host:port"}."""
    cfg = {"upstreams": {name: {"targets": [addr_of(u)]} for name, u in upstreams.items()},
           "routes": routes}
    cfg.update(extra)
    return cfg


# --------------------------------------------------------------------------
# RateLimit-* headers and answers

def rl_headers(r):
    """(limit, remaining, reset) of a requests response or RawResponse, as
    ints; fails with the response when one is missing or not an integer."""
    headers = {k.lower(): v for k, v in r.headers.items()}
    out = []
    for name in RL_HEADERS:
        value = headers.get(name.lower())
        status = getattr(r, "status_code", None) or getattr(r, "status", None)
        assert value is not None, f"no {name} on a limited {status} response: {dict(headers)}"
        assert re.fullmatch(r"\d+", value.strip()), f"{name}: {value!r} is not delta-seconds/integer"
        out.append(int(value))
    return tuple(out)


def retry_after(r):
    value = r.headers.get("Retry-After")
    assert value is not None, f"no Retry-After on {r.status_code}: {dict(r.headers)}"
    assert re.fullmatch(r"\d+", value.strip()), f"Retry-After {value!r} is not seconds"
    return int(value)


def assert_rate_limited(r, *, window_s=60, max_retry=None):
    """A 429 problem+json `rate limit exceeded` with RateLimit-* (remaining 0)
    and Retry-After in seconds (1 .. max_retry, default two windows)."""
    problem = assert_problem(r.status_code, r.headers, r.content, 429)
    assert problem["detail"] == RATE_LIMITED_DETAIL, problem
    limit, remaining, reset = rl_headers(r)
    assert remaining == 0, f"RateLimit-Remaining {remaining} on a 429"
    assert limit >= 1
    wait = retry_after(r)
    assert 1 <= wait <= (max_retry if max_retry is not None else 2 * window_s), \
        f"Retry-After {wait}s for a {window_s}s window"
    return problem


def statuses(responses):
    return [r.status_code for r in responses]


def count(values, wanted):
    return sum(1 for v in values if v == wanted)


# --------------------------------------------------------------------------
# clients

def get_many(gw, path, n, **kwargs):
    """n sequential GETs on one keep-alive session; the list of responses."""
    kwargs.setdefault("timeout", HTTP_TIMEOUT)
    with requests.Session() as s:
        return [s.get(gw.url(path), **kwargs) for _ in range(n)]


class Answer:
    """What a concurrent client saw: status, headers, body and elapsed time."""

    def __init__(self, gw_index, status, headers, body, elapsed):
        self.gw_index = gw_index
        self.status_code = status
        self.headers = headers
        self.content = body
        self.elapsed_s = elapsed

    def json(self):
        return json.loads(self.content)


def fire(gws, path, n, *, threads=20, headers=None, timeout=HTTP_TIMEOUT):
    """n GETs of `path`, round-robin over the gateways `gws` (one Gateway or a
    list), from `threads` threads at once, each with its own keep-alive
    session (so many client connections, spread over every worker). Returns
    the list of Answer in request order."""
    if not isinstance(gws, (list, tuple)):
        gws = [gws]
    local = threading.local()
    start = threading.Barrier(min(threads, n))

    def one(i):
        s = getattr(local, "session", None)
        if s is None:
            s = local.session = requests.Session()
            try:
                start.wait(timeout=10)
            except threading.BrokenBarrierError:
                pass
        gi = i % len(gws)
        t0 = time.monotonic()
        r = s.get(gws[gi].url(path), headers=headers, timeout=timeout)
        return Answer(gi, r.status_code, r.headers, r.content, time.monotonic() - t0)

    with ThreadPoolExecutor(max_workers=min(threads, n)) as pool:
        return list(pool.map(one, range(n)))


def timed_get(gw, path, **kwargs):
    """(response, seconds) of one GET on a fresh connection."""
    kwargs.setdefault("timeout", HTTP_TIMEOUT)
    t0 = time.monotonic()
    r = requests.get(gw.url(path), **kwargs)
    return r, time.monotonic() - t0


def pipelined(port, requests_bytes, *, host="127.0.0.1", batch=200, deadline=None):
    """Sends the raw requests (a list of bytes) on ONE keep-alive connection,
    `batch` of them pipelined per write, and returns the list of response
    status codes in order (each response framed by Content-Length or as
    chunked). Stops at `deadline` (time.monotonic()) with what it has."""
    statuses_out = []
    with socket.create_connection((host, port), timeout=10) as sock:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        buf = bytearray()
        for start in range(0, len(requests_bytes), batch):
            if deadline is not None and time.monotonic() > deadline:
                break
            chunk = requests_bytes[start:start + batch]
            sock.sendall(b"".join(chunk))
            want = len(statuses_out) + len(chunk)
            while len(statuses_out) < want:
                status, used = _parse_one_response(buf)
                if status is None:
                    data = sock.recv(1 << 20)
                    if not data:
                        return statuses_out
                    buf += data
                    continue
                statuses_out.append(status)
                del buf[:used]
    return statuses_out


def _parse_one_response(buf):
    """(status, bytes used) of the first complete response in buf, or (None, 0)."""
    end = buf.find(b"\r\n\r\n")
    if end < 0:
        return None, 0
    head = bytes(buf[:end]).decode("latin-1")
    lines = head.split("\r\n")
    status = int(lines[0].split(" ", 2)[1])
    length = None
    chunked = False
    for line in lines[1:]:
        name, _, value = line.partition(":")
        name = name.strip().lower()
        if name == "content-length":
            length = int(value.strip())
        elif name == "transfer-encoding" and "chunked" in value.lower():
            chunked = True
    pos = end + 4
    if 100 <= status < 200:
        return _parse_one_response_after(buf, pos)
    if status in (204, 304):
        return status, pos
    if chunked:
        while True:
            line_end = buf.find(b"\r\n", pos)
            if line_end < 0:
                return None, 0
            size = int(bytes(buf[pos:line_end]).split(b";")[0].strip() or b"0", 16)
            pos = line_end + 2
            if size == 0:
                trailer_end = buf.find(b"\r\n", pos)
                while trailer_end > pos:  # skip trailer fields
                    pos = trailer_end + 2
                    trailer_end = buf.find(b"\r\n", pos)
                if trailer_end < 0:
                    return None, 0
                return status, trailer_end + 2
            if len(buf) < pos + size + 2:
                return None, 0
            pos += size + 2
    if length is None:
        raise AssertionError(f"a keep-alive response without Content-Length: {head!r}")
    if len(buf) < pos + length:
        return None, 0
    return status, pos + length


def _parse_one_response_after(buf, pos):
    status, used = _parse_one_response(buf[pos:])
    return (status, pos + used) if status is not None else (None, 0)


# --------------------------------------------------------------------------
# a real redis-server

class RedisServer:
    """One redis-server on 127.0.0.1:<port> (no persistence). kill() and
    start() again reuse the same port; pause()/resume() send SIGSTOP/SIGCONT."""

    def __init__(self, procs, workdir, port=None):
        self.procs = procs
        self.workdir = workdir
        self.port = port or free_port()
        self.proc = None
        self.paused = False
        self.starts = 0

    @property
    def url(self):
        return f"redis://127.0.0.1:{self.port}/0"

    def client(self, timeout=1.0):
        import redis  # python3-redis
        return redis.Redis(host="127.0.0.1", port=self.port, socket_timeout=timeout,
                           socket_connect_timeout=timeout)

    def ping(self):
        try:
            with self.client(0.5) as c:
                return bool(c.ping())
        except Exception:
            return False

    def start(self):
        if not os.access(REDIS_SERVER_BIN, os.X_OK):
            pytest.skip(f"{REDIS_SERVER_BIN} is not installed")
        assert self.proc is None or self.proc.poll() is not None, "redis-server is already running"
        last_error = ""
        for attempt in range(5):  # the port may be briefly busy right after a kill
            self.starts += 1
            log = os.path.join(self.workdir, f"redis-{self.port}-{self.starts}.log")
            self.proc = self.procs.spawn(
                [REDIS_SERVER_BIN, "--port", str(self.port), "--bind", "127.0.0.1",
                 "--save", "", "--appendonly", "no", "--daemonize", "no",
                 "--dir", str(self.workdir), "--logfile", log, "--databases", "4"],
                stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            deadline = time.monotonic() + START_TIMEOUT
            while time.monotonic() < deadline:
                if self.proc.poll() is not None:
                    break
                if self.ping():
                    self.paused = False
                    return self
                time.sleep(0.05)
            try:
                last_error = open(log).read()[-1500:]
            except OSError:
                last_error = ""
            self._kill_proc()
            time.sleep(0.3)
        pytest.fail(f"redis-server did not start on port {self.port}:\n{last_error}", pytrace=False)

    def _kill_proc(self):
        if self.proc is not None and self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signal.SIGKILL)
            except OSError:
                self.proc.kill()
            try:
                self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                pass

    def kill(self):
        """SIGKILL: the port stops accepting at once."""
        self._kill_proc()
        self.paused = False
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.2):
                    pass
            except OSError:
                return
            time.sleep(0.05)
        raise AssertionError(f"port {self.port} still accepts after killing redis-server")

    def restart(self):
        self.kill()
        return self.start()

    def pause(self):
        """SIGSTOP: connections stay open (the kernel still accepts) but nothing answers."""
        os.kill(self.proc.pid, signal.SIGSTOP)
        self.paused = True

    def resume(self):
        if self.paused and self.proc is not None and self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGCONT)
        self.paused = False

    def dbsize(self):
        with self.client() as c:
            return c.dbsize()

    def flushall(self):
        with self.client() as c:
            c.flushall()


@pytest.fixture
def redis_server(procs, tmp_path):
    """redis_server() starts a RedisServer on a free port; at teardown it is
    resumed (if paused) and killed with every other child."""
    made = []

    def start(port=None):
        s = RedisServer(procs, tmp_path, port)
        made.append(s)
        return s.start()

    yield start
    for s in made:
        s.resume()


def redis_block(server, timeout="100ms"):
    """The top-level `redis` config for a RedisServer."""
    return {"url": server.url, "timeout": timeout}


# --------------------------------------------------------------------------
# a backend that holds requests until released

class _HoldHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    timeout = 15

    def log_message(self, *args):
        pass

    def _handle(self):
        length = int(self.headers.get("Content-Length") or 0)
        if length:
            self.rfile.read(length)
        owner = self.server.owner
        owner._arrived(self.path)
        try:
            owner.release_event.wait(timeout=owner.max_hold)
        finally:
            owner._left()
        payload = json.dumps({"backend": "hold", "path": self.path}).encode()
        try:
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)
        except OSError:
            pass

    do_GET = do_POST = do_PUT = do_DELETE = do_HEAD = _handle


class HoldBackend:
    """An HTTP/1.1 upstream on 127.0.0.1 that answers every request only once
    release() is called (or after max_hold seconds); counts arrivals and the
    requests held right now. reset() makes it hold again."""

    def __init__(self, max_hold=10.0):
        self.max_hold = max_hold
        self.lock = threading.Lock()
        self.arrivals = 0
        self.held = 0
        self.max_held = 0
        self.paths = []
        self.release_event = threading.Event()
        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), _HoldHandler)
        self.httpd.daemon_threads = True
        self.httpd.owner = self
        self.port = self.httpd.server_address[1]
        self.thread = threading.Thread(target=self.httpd.serve_forever,
                                       kwargs={"poll_interval": 0.05}, daemon=True)
        self.thread.start()

    @property
    def addr(self):
        return f"127.0.0.1:{self.port}"

    def _arrived(self, path):
        with self.lock:
            self.arrivals += 1
            self.held += 1
            self.max_held = max(self.max_held, self.held)
            self.paths.append(path)

    def _left(self):
        with self.lock:
            self.held -= 1

    def wait_held(self, n, timeout=5.0):
        """Waits (bounded) until n requests are held; returns how many are."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self.lock:
                if self.held >= n:
                    return self.held
            time.sleep(0.02)
        with self.lock:
            return self.held

    def release(self):
        self.release_event.set()

    def reset(self):
        self.release_event = threading.Event()

    def stop(self):
        self.release_event.set()
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def hold_backend():
    made = []

    def start(**kwargs):
        b = HoldBackend(**kwargs)
        made.append(b)
        return b

    yield start
    for b in made:
        b.stop()


# --------------------------------------------------------------------------
# misc

def ipv6_loopback_available():
    try:
        with socket.socket(socket.AF_INET6, socket.SOCK_STREAM) as s:
            s.bind(("::1", 0))
            s.listen(1)
            port = s.getsockname()[1]
            with socket.create_connection(("::1", port), timeout=1):
                pass
        return True
    except OSError:
        return False


def require_ipv6():
    if not ipv6_loopback_available():
        pytest.skip("IPv6 loopback (::1) is not available here")


def validate(path, env_extra=None, drop_env=()):
    """`gatehouse validate -c path`: the CompletedProcess."""
    require_binary(GATEHOUSE_BIN)
    env = {k: v for k, v in os.environ.items() if k not in drop_env}
    env.update(env_extra or {})
    return subprocess.run([GATEHOUSE_BIN, "validate", "-c", str(path)], capture_output=True,
                          text=True, timeout=10, env=env, stdin=subprocess.DEVNULL)


def locate(text, needle, occurrence=1, offset=0):
    """1-based (line, col) of the n-th occurrence of needle (plus offset chars)."""
    index = -1
    for _ in range(occurrence):
        index = text.index(needle, index + 1)
    index += offset
    return text.count("\n", 0, index) + 1, index - (text.rfind("\n", 0, index) + 1) + 1


def error_lines(stderr, path):
    """Parsed `FILE:LINE:COL: message` lines for this file."""
    found = []
    for line in stderr.splitlines():
        m = re.match(re.escape(str(path)) + r":(\d+):(\d+): (.+)$", line)
        if m:
            found.append((int(m.group(1)), int(m.group(2)), m.group(3)))
    return found


def log_entries_with_detail(gw, min_lines=1, timeout=5.0):
    return [e for e in gw.access_log(min_lines, timeout) if e.get("detail")]
