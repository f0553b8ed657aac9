"""Black-box test harness: starts the real gateway, demo backends and tiny
recording TCP servers on fresh loopback ports, and kills every child at
teardown, even when a test fails.

Binaries: build/gatehouse and build/demo-backend by default; override with
GATEHOUSE_BIN / DEMO_BACKEND_BIN. Only stdlib, pytest and requests.
"""

import json
import os
import re
import select
import signal
import socket
import subprocess
import threading
import time
from pathlib import Path
from typing import NamedTuple, Optional

import pytest
import requests

REPO_ROOT = Path(__file__).resolve().parents[2]
GATEHOUSE_BIN = os.environ.get("GATEHOUSE_BIN") or str(REPO_ROOT / "build" / "gatehouse")
DEMO_BACKEND_BIN = os.environ.get("DEMO_BACKEND_BIN") or str(REPO_ROOT / "build" / "demo-backend")

START_TIMEOUT = 10.0  # seconds for a process to start listening
STOP_TIMEOUT = 10.0  # seconds for a gateway to exit after SIGTERM (shutdown_timeout is 5s)
TEST_TIME_LIMIT = 45  # seconds per test body (slow tests: 120)
HTTP_TIMEOUT = 10  # default timeout for requests calls

ACCESS_LOG_FIELDS = (
    "request_id", "timestamp", "method", "path", "route", "status", "latency_ms",
    "upstream_service", "upstream_addr", "upstream_latency_ms", "client_ip",
    "bytes_in", "bytes_out", "user_id", "consumer_tier", "cache",
)


# --------------------------------------------------------------------------
# pytest hooks: the `slow` marker and a per-test time limit (no test hangs).

def pytest_configure(config):
    config.addinivalue_line(
        "markers", "slow: long transfers (1 GiB through the gateway); still run by default")


class TestTimeLimitExceeded(Exception):
    pass


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_call(item):
    limit = 120 if item.get_closest_marker("slow") else TEST_TIME_LIMIT
    use_alarm = threading.current_thread() is threading.main_thread()
    if use_alarm:
        def on_alarm(signum, frame):
            raise TestTimeLimitExceeded(f"test exceeded its {limit}s limit")
        old = signal.signal(signal.SIGALRM, on_alarm)
        signal.setitimer(signal.ITIMER_REAL, limit)
    try:
        yield
    finally:
        if use_alarm:
            signal.setitimer(signal.ITIMER_REAL, 0)
            signal.signal(signal.SIGALRM, old)


# --------------------------------------------------------------------------
# ports

_handed_out_ports = set()
_port_lock = threading.Lock()


def free_port(host="127.0.0.1"):
    """A port nobody listens on right now, never handed out twice per session."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    for _ in range(100):
        with socket.socket(family, socket.SOCK_STREAM) as s:
            s.bind((host, 0))
            port = s.getsockname()[1]
        with _port_lock:
            if port not in _handed_out_ports:
                _handed_out_ports.add(port)
                return port
    raise RuntimeError("no free port")


def closed_port():
    """A loopback port where connections are refused."""
    return free_port()


def port_accepts(port, host="127.0.0.1", timeout=0.2):
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


@pytest.fixture
def port():
    return free_port()


# --------------------------------------------------------------------------
# child processes

def require_binary(path):
    if not os.access(path, os.X_OK):
        pytest.fail(f"{path} is missing: build it (make build), or set GATEHOUSE_BIN / "
                    f"DEMO_BACKEND_BIN", pytrace=False)


class Processes:
    """Every child a test starts; all are killed at teardown."""

    def __init__(self):
        self.procs = []

    def spawn(self, argv, **kwargs):
        proc = subprocess.Popen(argv, start_new_session=True, **kwargs)
        self.procs.append(proc)
        return proc

    def kill_all(self):
        for proc in self.procs:
            if proc.poll() is None:
                try:
                    os.killpg(proc.pid, signal.SIGKILL)
                except OSError:
                    proc.kill()
        for proc in self.procs:
            try:
                proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                pass


@pytest.fixture
def procs():
    p = Processes()
    yield p
    p.kill_all()


def _read_line(fd, timeout):
    """One line from a raw pipe fd, or None on timeout / EOF."""
    deadline = time.monotonic() + timeout
    data = b""
    while b"\n" not in data:
        left = deadline - time.monotonic()
        if left <= 0:
            return None
        ready, _, _ = select.select([fd], [], [], left)
        if not ready:
            return None
        chunk = os.read(fd, 4096)
        if not chunk:
            return data.decode(errors="replace") or None
        data += chunk
    return data.split(b"\n", 1)[0].decode(errors="replace")


def _drain(fd):
    try:
        while os.read(fd, 65536):
            pass
    except OSError:
        pass


# --------------------------------------------------------------------------
# demo backend

class Backend(NamedTuple):
    name: str
    host: str
    port: int
    proc: subprocess.Popen

    @property
    def addr(self):
        return f"{self.host}:{self.port}"

    @property
    def url(self):
        return f"http://{self.addr}"


@pytest.fixture
def backend(procs, tmp_path):
    """backend(name) starts a demo-backend on a free port and returns a Backend."""
    counter = [0]

    def start(name="backend"):
        require_binary(DEMO_BACKEND_BIN)
        counter[0] += 1
        err = open(tmp_path / f"backend-{name}-{counter[0]}.stderr", "wb")
        proc = procs.spawn([DEMO_BACKEND_BIN, "--listen", "127.0.0.1:0", "--name", name],
                           stdout=subprocess.PIPE, stderr=err, bufsize=0)
        err.close()
        line = _read_line(proc.stdout.fileno(), START_TIMEOUT)
        m = re.search(r"listening on (\S+):(\d+)", line or "")
        if not m:
            pytest.fail(f"demo-backend {name} did not print 'listening on HOST:PORT' "
                        f"(got {line!r}, exit={proc.poll()})", pytrace=False)
        threading.Thread(target=_drain, args=(proc.stdout.fileno(),), daemon=True).start()
        host = m.group(1).strip("[]")
        return Backend(name, host, int(m.group(2)), proc)

    return start


# --------------------------------------------------------------------------
# recording TCP server: proves that nothing reached the "backend"

class Recorder:
    """Accepts TCP connections, records every byte received. After a request
    head it answers a tiny 200 and closes, so a gateway that wrongly forwards
    a request never hangs the test (answer=False: never answers, so the
    gateway's upstream read timeout applies). `bytes == 0`: nothing arrived."""

    def __init__(self, answer=True):
        self.answer = answer
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(64)
        self.sock.settimeout(0.2)
        self.port = self.sock.getsockname()[1]
        self.lock = threading.Lock()
        self.connections = 0
        self.chunks = []  # (connection index, bytes)
        self.stopped = threading.Event()
        self.thread = threading.Thread(target=self._accept_loop, daemon=True)
        self.thread.start()

    @property
    def addr(self):
        return f"127.0.0.1:{self.port}"

    @property
    def data(self):
        with self.lock:
            return b"".join(c for _, c in self.chunks)

    @property
    def bytes(self):
        return len(self.data)

    def _accept_loop(self):
        while not self.stopped.is_set():
            try:
                conn, _ = self.sock.accept()
            except socket.timeout:
                continue
            except OSError:
                return
            with self.lock:
                self.connections += 1
                index = self.connections
            threading.Thread(target=self._serve, args=(conn, index), daemon=True).start()

    def _serve(self, conn, index):
        conn.settimeout(0.2)
        seen = b""
        answered = False
        deadline = time.monotonic() + 10
        with conn:
            while not self.stopped.is_set() and time.monotonic() < deadline:
                try:
                    chunk = conn.recv(65536)
                except socket.timeout:
                    if answered:
                        return
                    continue
                except OSError:
                    return
                if not chunk:
                    return
                with self.lock:
                    self.chunks.append((index, chunk))
                seen += chunk
                if self.answer and not answered and b"\r\n\r\n" in seen:
                    answered = True
                    try:
                        conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 8\r\n"
                                     b"Connection: close\r\n\r\nrecorded")
                    except OSError:
                        return

    def settle(self, seconds=0.3):
        """Give a gateway that (wrongly) forwards asynchronously time to do it."""
        time.sleep(seconds)

    def close(self):
        self.stopped.set()
        self.sock.close()


@pytest.fixture
def recorder():
    made = []

    def start(answer=True):
        r = Recorder(answer)
        made.append(r)
        return r

    yield start
    for r in made:
        r.close()


# --------------------------------------------------------------------------
# YAML: a tiny block-style emitter (no PyYAML allowed)

_PLAIN_KEY = re.compile(r"^[A-Za-z_][A-Za-z0-9_.\-]*$")


def _yaml_scalar(v):
    if v is None:
        return "null"
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (int, float)):
        return str(v)
    return json.dumps(str(v))  # a JSON string is a valid YAML double-quoted scalar


def _yaml_key(k):
    k = str(k)
    return k if _PLAIN_KEY.match(k) else json.dumps(k)


def to_yaml(obj, indent=0):
    pad = " " * indent
    lines = []
    if isinstance(obj, dict):
        if not obj:
            return pad + "{}\n"
        for k, v in obj.items():
            if isinstance(v, (dict, list)) and v:
                lines.append(f"{pad}{_yaml_key(k)}:\n{to_yaml(v, indent + 2)}")
            elif isinstance(v, dict):
                lines.append(f"{pad}{_yaml_key(k)}: {{}}\n")
            elif isinstance(v, list):
                lines.append(f"{pad}{_yaml_key(k)}: []\n")
            else:
                lines.append(f"{pad}{_yaml_key(k)}: {_yaml_scalar(v)}\n")
    elif isinstance(obj, list):
        for item in obj:
            if isinstance(item, (dict, list)) and item:
                body = to_yaml(item, indent + 2)
                lines.append(f"{pad}- {body[indent + 2:]}")
            else:
                lines.append(f"{pad}- {to_yaml(item, 0).strip() if isinstance(item, (dict, list)) else _yaml_scalar(item)}\n")
    else:
        lines.append(pad + _yaml_scalar(obj) + "\n")
    return "".join(lines)


# --------------------------------------------------------------------------
# gateway

def parse_metrics(text):
    """Prometheus text -> list of (name, {label: value}, float)."""
    samples = []
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        m = re.match(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})?\s+(\S+)(\s+\S+)?$", line)
        if not m:
            raise AssertionError(f"unparsable metrics line: {line!r}")
        labels = dict(re.findall(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"', m.group(3) or ""))
        value = m.group(4)
        samples.append((m.group(1), labels, float(value.replace("Inf", "inf"))))
    return samples


def metric_sum(samples, name, **labels):
    return sum(v for n, l, v in samples
               if n == name and all(l.get(k) == str(x) for k, x in labels.items()))


def read_json_lines(path):
    """Every line of an access-log file as a dict (fails on a non-JSON line)."""
    try:
        text = Path(path).read_text()
    except FileNotFoundError:
        return []
    entries = []
    for line in text.splitlines():
        if not line.strip():
            continue
        try:
            entries.append(json.loads(line))
        except ValueError:
            raise AssertionError(f"access log line is not JSON: {line!r}")
    return entries


class Listener(NamedTuple):
    host: str
    port: int
    tls: bool


def _split_addr(addr):
    host, _, port = str(addr).rpartition(":")
    return host.strip("[]"), int(port)


def _listeners_from_text(text):
    """The `listeners:` entries of a config text: [Listener]. Only the block
    style the tests write: `- listen: ADDR` items, `tls:` anywhere inside."""
    out = []
    m = re.search(r"^listeners:[ \t]*\n((?:[ \t]+.*\n?|[ \t]*\n)*)", text, re.M)
    if not m:
        return out
    items = re.split(r"^\s*-\s+(?=listen:)", m.group(1), flags=re.M)
    for item in items[1:]:
        am = re.match(r"listen:\s*\"?([^\s\"]+)\"?", item)
        if am:
            host, port = _split_addr(am.group(1))
            out.append(Listener(host, port, re.search(r"^\s*tls:", item, re.M) is not None))
    return out


class Gateway:
    def __init__(self, proc, config_path, config_text, host, port, admin_port,
                 access_log_path, stdout_path, stderr_path, listeners=()):
        self.listeners = list(listeners)  # every listening socket: Listener(host, port, tls)
        self.proc = proc
        self.config_path = config_path
        self.config_text = config_text
        self.host = host
        self.port = port
        self.admin_port = admin_port
        self.access_log_path = access_log_path
        self.stdout_path = stdout_path
        self.stderr_path = stderr_path
        self.stopped = False

    # -- addresses
    @property
    def pid(self):
        return self.proc.pid

    @property
    def tls_ports(self):
        return [l.port for l in self.listeners if l.tls]

    @property
    def plain_ports(self):
        return [l.port for l in self.listeners if not l.tls]

    @property
    def tls_port(self):
        """The first TLS listener's port (fails when the config has none)."""
        assert self.tls_ports, "this gateway has no TLS listener"
        return self.tls_ports[0]

    def url(self, path="/"):
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}{path}"

    def admin_url(self, path="/"):
        assert self.admin_port, "this gateway has no admin listener"
        deadline = time.monotonic() + START_TIMEOUT
        while not port_accepts(self.admin_port) and time.monotonic() < deadline:
            time.sleep(0.05)
        return f"http://127.0.0.1:{self.admin_port}{path}"

    # -- requests
    def request(self, method, path, **kwargs):
        kwargs.setdefault("timeout", HTTP_TIMEOUT)
        return requests.request(method, self.url(path), **kwargs)

    def get(self, path, **kwargs):
        return self.request("GET", path, **kwargs)

    def post(self, path, **kwargs):
        return self.request("POST", path, **kwargs)

    def metrics(self):
        r = requests.get(self.admin_url("/metrics"), timeout=HTTP_TIMEOUT)
        assert r.status_code == 200, r.text
        return parse_metrics(r.text)

    # -- output
    def stderr(self):
        return Path(self.stderr_path).read_text(errors="replace")

    def stdout(self):
        return Path(self.stdout_path).read_text(errors="replace")

    def access_log(self, min_lines=1, timeout=5.0):
        """Access-log entries; waits (bounded) until at least min_lines exist."""
        assert self.access_log_path, "this gateway does not log to a file"
        deadline = time.monotonic() + timeout
        while True:
            entries = read_json_lines(self.access_log_path)
            if len(entries) >= min_lines or time.monotonic() > deadline:
                return entries
            time.sleep(0.05)

    def rss_kib(self):
        with open(f"/proc/{self.pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
        raise AssertionError("no VmRSS")

    # -- lifecycle
    def send_signal(self, sig):
        self.proc.send_signal(sig)

    def wait_exit(self, timeout=STOP_TIMEOUT):
        """Exit code, or None if still running after timeout."""
        try:
            rc = self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            return None
        self.stopped = True
        return rc

    def stop(self, sig=signal.SIGTERM, timeout=STOP_TIMEOUT):
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        return self.wait_exit(timeout)


def _top_level_keys(text):
    return set(re.findall(r"^([A-Za-z_][A-Za-z0-9_]*)\s*:", text, re.M))


@pytest.fixture
def gateway(procs, tmp_path):
    """gateway(config) writes the config (a dict, or YAML text) into tmp_path,
    runs `gatehouse run -c FILE`, waits until the listen port accepts and
    returns a Gateway. Defaults filled in when absent: listen on a free port,
    workers: 2, access_log to tmp_path, shutdown_timeout: 5s, admin on a free
    port. At teardown: SIGTERM, and the exit code must be 0."""
    started = []
    counter = [0]

    def start(config, *, workers=2, admin=True, access_log="file", wait=True, listen=True):
        """listen=False: no default `listen:` (a config with only `listeners:`)."""
        require_binary(GATEHOUSE_BIN)
        counter[0] += 1
        n = counter[0]
        access_log_path = str(tmp_path / f"access-{n}.log")
        defaults = {
            "listen": f"127.0.0.1:{free_port()}",
            "workers": workers,
            "access_log": access_log_path if access_log == "file" else access_log,
            "shutdown_timeout": "5s",
        }
        if admin:
            defaults["admin"] = {"listen": f"127.0.0.1:{free_port()}"}
        if not listen:
            del defaults["listen"]
        if isinstance(config, dict):
            merged = dict(defaults)
            merged.update(config)
            text = to_yaml(merged)
        else:
            present = _top_level_keys(config)
            head = {k: v for k, v in defaults.items() if k not in present}
            text = to_yaml(head) + config
        listeners = []
        m = re.search(r"^listen:\s*\"?([^\s\"]+)\"?\s*$", text, re.M)
        if m:
            listeners.append(Listener(*_split_addr(m.group(1)), False))
        if isinstance(config, dict) and config.get("listeners"):
            listeners += [Listener(*_split_addr(l["listen"]), bool(l.get("tls")))
                          for l in config["listeners"]]
        else:
            listeners += _listeners_from_text(text)
        assert listeners, "the config has neither `listen:` nor `listeners:`"
        # gw.host/gw.port: the `listen:` listener, else the first plain one, else the first.
        main = next((l for l in listeners if not l.tls), listeners[0])
        host, port = main.host, main.port
        am = re.search(r"^admin:\s*\n\s+listen:\s*\"?([^\s\"]+)\"?", text, re.M)
        admin_port = int(am.group(1).rpartition(":")[2]) if am else None
        lm = re.search(r"^access_log:\s*\"?([^\s\"]+)\"?", text, re.M)
        log_path = lm.group(1) if lm and lm.group(1) not in ("stdout", "off") else None

        config_path = tmp_path / f"gatehouse-{n}.yaml"
        config_path.write_text(text)
        stdout_path = tmp_path / f"gatehouse-{n}.stdout"
        stderr_path = tmp_path / f"gatehouse-{n}.stderr"
        with open(stdout_path, "wb") as out, open(stderr_path, "wb") as err:
            proc = procs.spawn([GATEHOUSE_BIN, "run", "-c", str(config_path)],
                               stdout=out, stderr=err, stdin=subprocess.DEVNULL)
        gw = Gateway(proc, str(config_path), text, host, int(port), admin_port, log_path,
                     str(stdout_path), str(stderr_path), listeners)
        started.append(gw)
        if wait:
            deadline = time.monotonic() + START_TIMEOUT
            while not all(port_accepts(l.port, host=l.host) for l in listeners):
                if proc.poll() is not None:
                    gw.stopped = True
                    pytest.fail(f"gatehouse exited with {proc.returncode} before listening:\n"
                                f"{gw.stderr()}\nconfig:\n{text}", pytrace=False)
                if time.monotonic() > deadline:
                    pytest.fail(f"gatehouse did not listen on {host}:{port} within "
                                f"{START_TIMEOUT}s:\n{gw.stderr()}", pytrace=False)
                time.sleep(0.02)
        return gw

    yield start

    problems = []
    for gw in started:
        if gw.stopped:
            continue
        if gw.proc.poll() is not None:
            problems.append(f"gatehouse died during the test with exit code {gw.proc.returncode}; "
                            f"stderr:\n{gw.stderr()[-2000:]}")
            continue
        rc = gw.stop(signal.SIGTERM, STOP_TIMEOUT)
        if rc is None:
            problems.append(f"gatehouse pid {gw.pid} did not exit within {STOP_TIMEOUT}s of SIGTERM")
        elif rc != 0:
            problems.append(f"gatehouse exited {rc} after SIGTERM; stderr:\n{gw.stderr()[-2000:]}")
    assert not problems, "\n".join(problems)


# --------------------------------------------------------------------------
# raw HTTP over a socket (for malformed input and exact framing checks)

class RawResponse(NamedTuple):
    status_line: Optional[str]
    headers: dict  # lower-case name -> value (repeats joined with ", ")
    body: bytes
    closed: bool
    header_list: list = []
    interim: list = []  # status lines of 1xx responses seen before this one

    @property
    def status(self):
        if not self.status_line:
            return None
        parts = self.status_line.split(" ", 2)
        try:
            return int(parts[1])
        except (IndexError, ValueError):
            return None

    def json(self):
        return json.loads(self.body)


class RawConn:
    """One client connection; send bytes, read responses with exact framing."""

    def __init__(self, port, host="127.0.0.1", timeout=5.0):
        self.timeout = timeout
        self.sock = socket.create_connection((host, port), timeout=timeout)
        self.buf = b""
        self.eof = False

    def send(self, data):
        self.sock.sendall(data)

    def _fill(self, deadline):
        """Reads more into buf. False on EOF/reset/timeout."""
        if self.eof:
            return False
        left = deadline - time.monotonic()
        if left <= 0:
            return False
        self.sock.settimeout(left)
        try:
            chunk = self.sock.recv(65536)
        except socket.timeout:
            return False
        except (ConnectionResetError, BrokenPipeError):
            self.eof = True
            return False
        if not chunk:
            self.eof = True
            return False
        self.buf += chunk
        return True

    def _read_until(self, marker, deadline):
        while marker not in self.buf:
            if not self._fill(deadline):
                return None
        head, self.buf = self.buf.split(marker, 1)
        return head

    def _read_exact(self, n, deadline):
        while len(self.buf) < n:
            if not self._fill(deadline):
                break
        data, self.buf = self.buf[:n], self.buf[n:]
        return data

    def read_head(self, timeout=None):
        """(status_line, header_list) of the next response head, or None."""
        deadline = time.monotonic() + (timeout or self.timeout)
        head = self._read_until(b"\r\n\r\n", deadline)
        if head is None:
            return None
        lines = head.decode("latin-1").split("\r\n")
        header_list = []
        for line in lines[1:]:
            name, _, value = line.partition(":")
            header_list.append((name.strip().lower(), value.strip()))
        return lines[0], header_list

    def read_response(self, head_request=False, timeout=None, skip_interim=True):
        """The next response. status_line None if nothing (complete) arrived."""
        deadline = time.monotonic() + (timeout or self.timeout)
        interim = []
        while True:
            got = self.read_head(max(0.001, deadline - time.monotonic()))
            if got is None:
                return RawResponse(None, {}, self.buf, self.eof, [], interim)
            status_line, header_list = got
            headers = {}
            for name, value in header_list:
                headers[name] = f"{headers[name]}, {value}" if name in headers else value
            resp = RawResponse(status_line, headers, b"", False, header_list, interim)
            status = resp.status or 0
            if 100 <= status < 200 and skip_interim and status != 101:
                interim.append(status_line)
                continue
            break
        if head_request or 100 <= status < 200 or status in (204, 304):
            body = b""
        elif "chunked" in headers.get("transfer-encoding", "").lower():
            body = self._read_chunked(deadline)
        elif "content-length" in headers:
            body = self._read_exact(int(headers["content-length"]), deadline)
        else:
            while self._fill(deadline):
                pass
            body, self.buf = self.buf, b""
        return resp._replace(body=body)

    def _read_chunked(self, deadline):
        body = b""
        while True:
            line = self._read_until(b"\r\n", deadline)
            if line is None:
                return body
            size = int(line.split(b";")[0].strip() or b"0", 16)
            if size == 0:
                while True:  # trailers
                    t = self._read_until(b"\r\n", deadline)
                    if not t:
                        return body
            body += self._read_exact(size, deadline)
            self._read_until(b"\r\n", deadline)

    def is_closed(self, wait=2.0):
        """True if the peer closed (EOF or reset) within `wait` seconds."""
        if self.eof:
            return True
        deadline = time.monotonic() + wait
        while self._fill(deadline):
            pass
        return self.eof

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def raw_request(port, data, timeout=5.0, head_request=False, close_wait=2.0, host="127.0.0.1"):
    """Sends raw bytes on a fresh connection; returns a RawResponse
    (status_line, headers, body, closed) for the first final response.
    `closed`: the gateway closed the connection within close_wait afterwards."""
    with RawConn(port, host=host, timeout=timeout) as conn:
        try:
            conn.send(data)
        except (BrokenPipeError, ConnectionResetError):
            pass
        resp = conn.read_response(head_request=head_request, timeout=timeout)
        closed = conn.is_closed(close_wait)
        return resp._replace(closed=closed)


def assert_problem(status, headers, body, expected_status):
    """A locally generated error: RFC 9457 problem+json carrying the request id."""
    headers = {k.lower(): v for k, v in headers.items()}
    assert status == expected_status, f"status {status}, body {body[:300]!r}"
    assert headers.get("content-type", "").split(";")[0].strip() == "application/problem+json", headers
    problem = json.loads(body)
    assert problem.get("status") == expected_status, problem
    assert problem.get("type") == "about:blank", problem
    assert isinstance(problem.get("title"), str) and problem["title"], problem
    assert isinstance(problem.get("detail"), str), problem
    rid = headers.get("x-request-id")
    assert rid, f"no X-Request-Id on the {expected_status} response: {headers}"
    assert problem.get("request_id") == rid, (problem, rid)
    return problem


def wait_for(predicate, timeout=3.0, interval=0.05):
    """Polls predicate() until truthy or timeout; returns its last value."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value or time.monotonic() > deadline:
            return value
        time.sleep(interval)


def proxy_config(upstream_targets, *, route=None, upstream_extra=None, extra=None, name="svc"):
    """A config dict with one upstream and one catch-all proxy route (`all`)."""
    targets = [t if isinstance(t, (dict, str)) else t.addr for t in upstream_targets]
    up = {"targets": targets}
    if upstream_extra:
        up.update(upstream_extra)
    r = {"name": "all", "match": {"path_prefix": "/"}, "upstream": name}
    if route:
        r.update(route)
    cfg = {"upstreams": {name: up}, "routes": [r]}
    if extra:
        cfg.update(extra)
    return cfg


def send_in_flight(gw, path, settle=0.4):
    """Sends a GET on a fresh raw connection and gives the gateway time to
    forward it; read the answer later with `.read_response()`. Sending
    synchronously (no client thread) means a signal sent afterwards always
    finds the request in flight."""
    conn = RawConn(gw.port, host=gw.host, timeout=15)
    conn.send(f"GET {path} HTTP/1.1\r\nHost: t\r\n\r\n".encode())
    time.sleep(settle)
    return conn
