"""The servers under test: one backend nginx and the proxies in front of it.

Every server gets its own free loopback ports and its own directory (config,
pid file, logs, nginx temp paths) under the run's temporary directory. They
run as foreground children in their own process group, pinned with taskset,
and are killed by stop() (bench/run calls stop_all() at exit, on Ctrl-C and on
exceptions). Nothing here touches the system nginx/haproxy configuration.

A server may need credentials on every request (the Gatehouse auth variants):
its `request_headers` are sent by the readiness check and by every client
(wrk -H, the Python clients' --header).

A scenario may put the servers behind TLS (options {"tls": True}, and
{"http2": True} for ALPN h2): nginx, HAProxy and Gatehouse then listen with
the run's certificate (tls_setup.py) and the readiness check asks over HTTPS,
verifying that certificate (and, with http2, that ALPN picks h2).

A server may need a Redis (the gatehouse-rl-redis variant, `needs_redis`): the
Stack starts one redis-server per stack, pinned like the backend (never on the
server under test's CPU), hands it to those servers as `redis` and stops it
with the stack.
"""

import ctypes
import http.client
import json
import os
import random
import secrets
import shutil
import signal
import socket
import ssl
import subprocess
import time

import proc_stats
import tls_setup

HOST = "127.0.0.1"
# About 90 bytes of JSON, the "small JSON" every GET scenario fetches.
SMALL_JSON = '{"id":12345,"name":"gatehouse-bench","status":"ok","tags":["fast","small"],"score":0.9375}'
BIG_PATH = "/big"
BIG_SIZE = 1024 * 1024
MAX_CONNS = 20000  # per server: worker_connections / maxconn
# The harness's RLIMIT_NOFILE, inherited by every server (bench/run sets it).
# Where it is below what MAX_CONNS would need, nginx is given exactly this
# much and HAProxy is told not to insist (no strict-limits).
FD_LIMIT = 2 * MAX_CONNS + 5000

# Canonical order: rounds run a scenario's servers in this order, A B C D E, A B C D E...
# The first five run every standard scenario; the gatehouse-* variants only the
# scenarios that name them (scenarios.py, Scenario.servers).
SERVER_NAMES = ["direct", "haproxy-tcp", "nginx", "haproxy-http", "gatehouse", "gatehouse-keyauth", "gatehouse-jwt",
                "gatehouse-rl-local", "gatehouse-rl-redis"]

_started = []  # every Popen we started, for stop_all()


class StartError(Exception):
    pass


def _ephemeral_low():
    try:
        with open("/proc/sys/net/ipv4/ip_local_port_range") as f:
            return int(f.read().split()[0])
    except (OSError, ValueError, IndexError):
        return 32768


def free_ports(n):
    """n distinct free loopback ports, below the ephemeral range where it can
    (so the clients' thousands of outgoing connections never take one between
    choosing it and the server binding it)."""
    socks = []
    low = _ephemeral_low()
    try:
        for _ in range(200):
            if len(socks) == n:
                break
            s = socket.socket()
            try:
                s.bind((HOST, random.randrange(20000, low) if low > 21000 else 0))
                socks.append(s)
            except OSError:
                s.close()
        while len(socks) < n:
            s = socket.socket()
            s.bind((HOST, 0))
            socks.append(s)
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


def _die_with_parent():
    # PR_SET_PDEATHSIG(SIGKILL): if the harness is killed outright, so is the child.
    try:
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL, 0, 0, 0)
    except Exception:
        pass


def _tail(path, n=600):
    try:
        with open(path, "rb") as f:
            f.seek(0, os.SEEK_END)
            f.seek(max(0, f.tell() - n))
            return f.read().decode("utf-8", "replace").strip()
    except OSError:
        return ""


class Process:
    """One foreground server process (and its children) in its own process group."""

    def __init__(self, name, argv, workdir, cpu):
        self.name = name
        self.log = os.path.join(workdir, "output.log")
        cmd = (["taskset", "-c", str(cpu)] if cpu is not None else []) + argv
        self.command = " ".join(cmd)
        logf = open(self.log, "ab")
        try:
            self.popen = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=logf, stderr=subprocess.STDOUT,
                                          cwd=workdir, start_new_session=True, preexec_fn=_die_with_parent)
        except OSError as e:
            raise StartError(f"cannot start {argv[0]}: {e}")
        finally:
            logf.close()
        _started.append(self)

    @property
    def pid(self):
        return self.popen.pid

    def alive(self):
        return self.popen.poll() is None

    def pids(self):
        return proc_stats.process_tree(self.pid) if self.alive() else []

    def log_tail(self):
        return _tail(self.log)

    def exit_description(self):
        rc = self.popen.poll()
        if rc is None:
            return "running"
        if rc < 0:
            try:
                return f"killed by {signal.Signals(-rc).name}"
            except ValueError:
                return f"killed by signal {-rc}"
        return f"exit status {rc}"

    def stop(self, grace=5.0):
        if self in _started:
            _started.remove(self)
        if self.popen.poll() is not None and not self._group_exists():
            return
        self._signal_group(signal.SIGTERM)
        try:
            self.popen.wait(timeout=grace)
        except subprocess.TimeoutExpired:
            pass
        # nginx workers may outlive the master for a moment; finish the group.
        deadline = time.monotonic() + grace
        while self._group_exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        if self._group_exists():
            self._signal_group(signal.SIGKILL)
        try:
            self.popen.wait(timeout=grace)
        except subprocess.TimeoutExpired:
            pass

    def _group_exists(self):
        try:
            os.killpg(self.popen.pid, 0)
            return True
        except (ProcessLookupError, PermissionError):
            return False

    def _signal_group(self, sig):
        try:
            os.killpg(self.popen.pid, sig)
        except (ProcessLookupError, PermissionError):
            pass


def stop_all():
    for p in list(reversed(_started)):
        try:
            p.stop(grace=3.0)
        except Exception:
            pass


def accepts(port, timeout=1.0):
    """True if something accepts TCP connections on the loopback port."""
    try:
        socket.create_connection((HOST, port), timeout=timeout).close()
        return True
    except OSError:
        return False


def wait_ready(proc, port, timeout=15.0, path="/", headers=None, expect_header=None, ssl_context=None):
    """Waits until port accepts and answers GET path (with headers) with a 2xx; raises StartError.

    expect_header: (name, value) the 2xx answer must carry (proof that a plugin
    is really on the route), else StartError at once.
    ssl_context: ask over HTTPS with this client context (it verifies that the
    server presents the run's certificate)."""
    deadline = time.monotonic() + timeout
    while True:
        if not proc.alive():
            raise StartError(f"{proc.exit_description()} before listening: {proc.log_tail()}")
        try:
            socket.create_connection((HOST, port), timeout=0.5).close()
            break
        except OSError:
            if time.monotonic() > deadline:
                raise StartError(f"port {port} not accepting after {timeout:.0f} s: {proc.log_tail()}")
            time.sleep(0.05)
    last = None
    while time.monotonic() < deadline + 5:
        try:
            if ssl_context is not None:
                conn = http.client.HTTPSConnection(HOST, port, timeout=5, context=ssl_context)
            else:
                conn = http.client.HTTPConnection(HOST, port, timeout=5)
            conn.request("GET", path, headers=headers or {})
            resp = conn.getresponse()
            body = resp.read()
            conn.close()
            if 200 <= resp.status < 300:
                if expect_header:
                    got = resp.getheader(expect_header[0])
                    if got != expect_header[1]:
                        raise StartError(f"GET {path} answered {resp.status} with {expect_header[0]}: {got!r}, "
                                         f"expected {expect_header[1]!r} (is the plugin on the route?)")
                return
            last = f"GET {path} answered {resp.status}: {body[:200]!r}"
        except (OSError, http.client.HTTPException) as e:
            last = f"{'HTTPS ' if ssl_context is not None else ''}GET {path} failed: {type(e).__name__}: {e}"
            if isinstance(e, ssl.SSLError):
                last += " (no TLS on this port, or another certificate?)"
        if not proc.alive():
            break
        time.sleep(0.2)
    raise StartError(f"{last} {proc.log_tail()}".strip())


def check_alpn(port, ssl_context, want):
    """Raises StartError unless a TLS handshake offering only `want` (e.g. "h2") negotiates it by ALPN."""
    try:
        with socket.create_connection((HOST, port), timeout=5) as raw:
            with ssl_context.wrap_socket(raw, server_hostname=HOST) as tls:
                got = tls.selected_alpn_protocol()
    except OSError as e:
        raise StartError(f"TLS handshake offering ALPN {want!r} failed: {type(e).__name__}: {e}")
    if got != want:
        raise StartError(f"offered only {want!r} by ALPN, the server chose {got!r}: "
                         f"{'HTTP/2 over TLS is not enabled' if want == 'h2' else 'protocol not offered'}")


def _write(path, text):
    with open(path, "w") as f:
        f.write(text)


def _mkdir(path):
    os.makedirs(path, exist_ok=True)
    os.chmod(path, 0o755)  # nginx workers may run as nobody when we are root
    return path


def _nginx_common(d):
    for sub in ("body", "proxy", "fastcgi", "uwsgi", "scgi"):
        _mkdir(os.path.join(d, "tmp", sub))
    return f"""worker_processes 1;
worker_rlimit_nofile {FD_LIMIT};
pid {d}/nginx.pid;
error_log {d}/error.log warn;
events {{
    worker_connections {MAX_CONNS};
}}
"""


def _nginx_http_common(d):
    return f"""    access_log off;
    client_body_temp_path {d}/tmp/body;
    proxy_temp_path {d}/tmp/proxy;
    fastcgi_temp_path {d}/tmp/fastcgi;
    uwsgi_temp_path {d}/tmp/uwsgi;
    scgi_temp_path {d}/tmp/scgi;
    keepalive_timeout 300s;
    keepalive_requests 1000000;
"""


def _nginx_argv(d, conf):
    return ["nginx", "-p", d + "/", "-e", f"{d}/error.log", "-c", conf, "-g", "daemon off;"]


class Backend:
    """The one backend for everyone: nginx `return 200` + a 1 MiB static file."""

    name = "backend"

    def __init__(self, workdir, cpu, scenario=None):
        self.dir = _mkdir(os.path.join(workdir, "backend"))
        self.cpu = cpu
        self.port = None
        self.proc = None
        self.scenario = scenario

    def start(self, port):
        self.port = port
        d = self.dir
        www = _mkdir(os.path.join(d, "www"))
        big = os.path.join(www, BIG_PATH.lstrip("/"))
        if not os.path.exists(big):
            chunk = bytes(range(256)) * 4096
            with open(big, "wb") as f:
                f.write(chunk[:BIG_SIZE])
        conf = os.path.join(d, "nginx.conf")
        _write(conf, _nginx_common(d) + f"""http {{
{_nginx_http_common(d)}    sendfile on;
    tcp_nopush on;
    server {{
        listen {HOST}:{port} backlog=4096;
        location = {BIG_PATH} {{
            root {www};
            default_type application/octet-stream;
        }}
        location / {{
            default_type application/json;
            return 200 '{SMALL_JSON}';
        }}
    }}
}}
""")
        self.proc = Process("backend", _nginx_argv(d, conf), d, self.cpu)
        wait_ready(self.proc, port)
        wait_ready(self.proc, port, path=BIG_PATH)

    def stop(self):
        if self.proc:
            self.proc.stop()


REDIS_SERVER = "/usr/bin/redis-server"


def redis_command(port, *args, timeout=2.0):
    """Sends one command (RESP) to the Redis on the loopback port; returns the raw reply bytes."""
    req = f"*{len(args)}\r\n".encode() + b"".join(
        f"${len(a.encode())}\r\n".encode() + a.encode() + b"\r\n" for a in args)
    with socket.create_connection((HOST, port), timeout=timeout) as s:
        s.sendall(req)
        data = b""
        while True:
            chunk = s.recv(65536)
            data += chunk
            if not chunk or _resp_complete(data):
                return data


def _resp_complete(data):
    if not data.endswith(b"\r\n"):
        return False
    if data[:1] == b"$":  # bulk string: "$N\r\n" + N bytes + "\r\n"
        head, _, rest = data.partition(b"\r\n")
        n = int(head[1:])
        return n < 0 or len(rest) >= n + 2
    return True


class RedisServer:
    """A throw-away redis-server for the Redis-backed rate limit: loopback only,
    no persistence (`--save '' --appendonly no`), its own directory."""

    name = "redis"

    def __init__(self, workdir, cpu):
        self.dir = _mkdir(os.path.join(workdir, "redis"))
        self.cpu = cpu
        self.port = None
        self.proc = None

    def start(self):
        binary = REDIS_SERVER if os.access(REDIS_SERVER, os.X_OK) else shutil.which("redis-server")
        if not binary:
            raise StartError(f"redis-server not found ({REDIS_SERVER} or on PATH): the Redis rate-limit variant "
                             f"needs it (scripts/install-deps installs redis-server)")
        for attempt in range(2):
            self.port = free_ports(1)[0]
            argv = [binary, "--port", str(self.port), "--bind", HOST, "--save", "", "--appendonly", "no",
                    "--daemonize", "no", "--dir", self.dir, "--logfile", ""]
            self.proc = Process(self.name, argv, self.dir, self.cpu)
            try:
                self._wait_ready()
                return
            except StartError as e:
                self.proc.stop()
                if attempt or "in use" not in str(e):
                    raise StartError(f"redis-server: {e}")

    def _wait_ready(self, timeout=15.0):
        deadline = time.monotonic() + timeout
        last = ""
        while time.monotonic() < deadline:
            if not self.proc.alive():
                raise StartError(f"{self.proc.exit_description()} before answering: {self.proc.log_tail()}")
            try:
                reply = redis_command(self.port, "PING", timeout=0.5)
                if reply.startswith(b"+PONG"):
                    return
                last = f"PING answered {reply[:100]!r}"
            except OSError as e:
                last = f"PING failed: {e}"
            time.sleep(0.05)
        raise StartError(f"no PONG on port {self.port} after {timeout:.0f} s ({last}): {self.proc.log_tail()}")

    def script_calls(self):
        """EVAL + EVALSHA calls served so far (INFO commandstats), or None if Redis does not answer."""
        try:
            info = redis_command(self.port, "INFO", "commandstats").decode("utf-8", "replace")
        except (OSError, ValueError):
            return None
        total = 0
        for line in info.splitlines():
            if line.startswith(("cmdstat_evalsha:", "cmdstat_eval:")):
                for field in line.split(":", 1)[1].split(","):
                    if field.startswith("calls="):
                        total += int(field[6:])
        return total

    def alive(self):
        return self.proc is not None and self.proc.alive()

    def exit_description(self):
        return self.proc.exit_description() if self.proc else "not started"

    def log_tail(self):
        return self.proc.log_tail() if self.proc else ""

    def stop(self):
        if self.proc:
            self.proc.stop()


class Server:
    """A server under test. Subclasses write a config and give the argv."""

    name = "?"
    request_headers = {}  # sent with every request (readiness check and clients)
    expect_header = None  # (name, value) the readiness check's answer must carry
    needs_redis = False   # the Stack starts a redis-server and sets self.redis before start()

    def __init__(self, workdir, cpu, options):
        self.dir = _mkdir(os.path.join(workdir, self.name))
        self.cpu = cpu
        self.options = options
        self.port = None
        self.proc = None
        self.redis = None  # the stack's RedisServer, for needs_redis servers

    def start(self, backend, scenario):
        for attempt in range(2):
            self.port = free_ports(1)[0]
            argv = self.configure(backend, scenario)
            self.proc = Process(self.name, argv, self.dir, self.cpu)
            try:
                tls = self.tls(scenario)
                wait_ready(self.proc, self.port, timeout=self.ready_timeout, headers=self.request_headers,
                           expect_header=self.expect_header,
                           ssl_context=tls.ssl_context(["http/1.1"]) if tls else None)
                if tls and scenario.options.get("http2"):
                    check_alpn(self.port, tls.ssl_context(["h2"]), "h2")
                return
            except StartError as e:
                self.proc.stop()
                if attempt or "in use" not in str(e):  # retry only if the port was taken meanwhile
                    raise

    ready_timeout = 15.0

    def tls(self, scenario):
        """The run's TlsMaterial when the scenario listens with TLS (options {"tls": True}), else None."""
        if not scenario.options.get("tls"):
            return None
        try:
            return tls_setup.tls_material(self.options)
        except tls_setup.TlsSetupError as e:
            raise StartError(str(e))

    def configure(self, backend, scenario):
        raise NotImplementedError

    def pids(self):
        """The processes whose CPU and memory count for this server."""
        return self.proc.pids() if self.proc else []

    def alive(self):
        return self.proc is not None and self.proc.alive()

    def log_tail(self):
        return self.proc.log_tail() if self.proc else ""

    def exit_description(self):
        return self.proc.exit_description() if self.proc else "not started"

    def stop(self):
        if self.proc:
            self.proc.stop()


class Direct(Server):
    """The backend itself: the physical limit. Its CPU and memory are the backend's."""

    name = "direct"

    def start(self, backend, scenario):
        self.backend = backend
        self.port = backend.port
        if not backend.proc or not backend.proc.alive():
            raise StartError("backend is not running")

    def pids(self):
        return self.backend.proc.pids()

    def alive(self):
        return self.backend.proc.alive()

    def log_tail(self):
        return self.backend.proc.log_tail()

    def exit_description(self):
        return "backend " + self.backend.proc.exit_description()

    def stop(self):
        pass


class Nginx(Server):
    name = "nginx"

    def configure(self, backend, scenario):
        d = self.dir
        conf = os.path.join(d, "nginx.conf")
        tls = self.tls(scenario)
        listen = f"listen {HOST}:{self.port} backlog=4096;"
        if tls:
            # nginx 1.22: `http2` is a flag of the listen directive. Sessions:
            # nginx's defaults (tickets on, no session cache); the clients
            # never resume (tls_setup.py).
            listen = f"""listen {HOST}:{self.port} ssl{' http2' if scenario.options.get('http2') else ''} backlog=4096;
        ssl_certificate {tls.cert};
        ssl_certificate_key {tls.key};
        ssl_protocols TLSv1.2 TLSv1.3;"""
        # Idle upstream connections nginx keeps: 64 unless the scenario has
        # more requests in flight (HTTP/2 streams), else every request over
        # the cap would open and close a backend connection.
        keepalive = scenario.options.get("upstream_keepalive", 64)
        _write(conf, _nginx_common(d) + f"""http {{
{_nginx_http_common(d)}    upstream backend {{
        server {HOST}:{backend.port};
        keepalive {keepalive};
        keepalive_requests 1000000;
        keepalive_timeout 300s;
    }}
    server {{
        {listen}
        location / {{
            proxy_pass http://backend;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            # Stream large responses instead of spilling them to temp files.
            proxy_max_temp_file_size 0;
        }}
    }}
}}
""")
        return _nginx_argv(d, conf)


class HAProxy(Server):
    mode = "http"

    def configure(self, backend, scenario):
        d = self.dir
        conf = os.path.join(d, "haproxy.cfg")
        http_only = """    timeout http-keep-alive 300s
    timeout http-request 30s
""" if self.mode == "http" else ""
        reuse = "    http-reuse always\n" if self.mode == "http" else ""
        # maxconn 20000 wants about 40k descriptors; where the hard limit is
        # lower, run with what there is (a full tcp-mode proxy of N connections
        # needs 2N descriptors, an idle http-mode client connection one).
        strict = "    no strict-limits\n" if FD_LIMIT < 2 * MAX_CONNS + 1000 else ""
        tls = self.tls(scenario)
        bind = f"{HOST}:{self.port}"
        if tls:
            # Certificate and key in one PEM; sessions: HAProxy's defaults
            # (tickets on, a 20,000-entry cache); the clients never resume.
            alpn = "h2,http/1.1" if scenario.options.get("http2") else "http/1.1"
            bind += f" ssl crt {tls.combined} alpn {alpn} ssl-min-ver TLSv1.2"
        _write(conf, f"""global
    nbthread 1
    maxconn {MAX_CONNS}
{strict}    pidfile {d}/haproxy.pid

defaults
    mode {self.mode}
    maxconn {MAX_CONNS}
    timeout connect 5s
    timeout client 300s
    timeout server 300s
{http_only}
frontend fe
    bind {bind}
    default_backend be

backend be
{reuse}    server backend {HOST}:{backend.port}
""")
        return ["haproxy", "-f", conf, "-db"]


class HAProxyTCP(HAProxy):
    name = "haproxy-tcp"
    mode = "tcp"


class HAProxyHTTP(HAProxy):
    name = "haproxy-http"
    mode = "http"


class AuthMaterial:
    """Credentials for the Gatehouse auth variants, made once per bench run:
    an API key, an RSA-2048 key pair (public key in a PEM file) and one RS256
    token valid for 12 hours, repeated on every request."""

    KID = "bench"

    def __init__(self, directory):
        try:
            import jwt
            from cryptography.hazmat.primitives import serialization
            from cryptography.hazmat.primitives.asymmetric import rsa
        except ImportError as e:
            raise StartError(f"the auth servers need python3-jwt and python3-cryptography "
                             f"(scripts/install-deps): {e}")
        self.api_key = "bench-" + secrets.token_hex(16)
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self.public_pem_file = os.path.join(_mkdir(directory), "jwt-bench.pub.pem")
        _write(self.public_pem_file, key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo).decode())
        now = int(time.time())
        self.token = jwt.encode({"sub": "bench", "iat": now, "nbf": now - 60, "exp": now + 12 * 3600},
                                key, algorithm="RS256", headers={"kid": self.KID})


def auth_material(options):
    """The run's AuthMaterial, made on first use (options is shared by every scenario)."""
    if options.get("auth") is None:
        options["auth"] = AuthMaterial(os.path.join(options["tmp"], "auth-material"))
    return options["auth"]


def _yaml(value):
    return json.dumps(value)  # a JSON string is a valid YAML flow scalar


class Gatehouse(Server):
    """Gatehouse with one route to the backend; the variants below add auth or a rate limit to it."""

    name = "gatehouse"

    def extras(self):
        """(top-level YAML, the route's plugins as flow-YAML list items, request headers)."""
        return "", "", {}

    def start(self, backend, scenario):
        binary = self.options["gatehouse"]
        if not os.path.isfile(binary) or not os.access(binary, os.X_OK):
            raise StartError(f"binary {binary} not found (not built yet?)")
        try:
            super().start(backend, scenario)
        except StartError as e:
            if not scenario.options.get("tls"):
                raise
            what = "a TLS listener with HTTP/2 (ALPN h2)" if scenario.options.get("http2") else "a TLS listener"
            raise StartError(f"with {what} (`listeners: [{{listen, tls: {{certificates, min_version}}}}]`; "
                             f"--keep-tmp keeps its config): {e}")

    def configure(self, backend, scenario):
        admin_port = free_ports(2)
        admin_port = admin_port[0] if admin_port[0] != self.port else admin_port[1]
        conf = os.path.join(self.dir, "gatehouse.yaml")
        top, plugins, self.request_headers = self.extras()
        plugins = f", plugins: [{plugins}]" if plugins else ""
        listen = f"listen: {HOST}:{self.port}\n"
        tls = self.tls(scenario)
        if tls:
            # The TLS listener (ALPN: Gatehouse offers h2 and http/1.1).
            listen = f"""listeners:
  - listen: {HOST}:{self.port}
    tls:
      certificates: [{{cert: {_yaml(tls.cert)}, key: {_yaml(tls.key)}}}]
      min_version: "1.2"
"""
        _write(conf, f"""{listen}workers: 1
access_log: off
admin: {{listen: {HOST}:{admin_port}}}
upstreams:
  backend: {{targets: ["{HOST}:{backend.port}"]}}
{top}routes:
  - {{name: all, match: {{path_prefix: /}}, upstream: backend{plugins}}}
""")
        return [os.path.abspath(self.options["gatehouse"]), "run", "-c", conf]


class GatehouseKeyAuth(Gatehouse):
    """The route behind key_auth (default header X-API-Key); one consumer with one key."""

    name = "gatehouse-keyauth"
    description = ("gatehouse, the route with `key_auth: {}` and one consumer with one API key; every request "
                   "sends `X-API-Key`")

    def extras(self):
        a = auth_material(self.options)
        return (f"consumers:\n  - {{name: bench, api_keys: [{_yaml(a.api_key)}]}}\n", "{key_auth: {}}",
                {"X-API-Key": a.api_key})


class GatehouseJwt(Gatehouse):
    """The route behind jwt with a static RS256 public key; every request repeats one token."""

    name = "gatehouse-jwt"
    description = ("gatehouse, the route with `jwt: {keys: [{kid, pem_file}], algorithms: [RS256]}` (RSA-2048); "
                   "every request sends `Authorization: Bearer` with the same RS256 token, made at the start of the "
                   "run and valid for 12 h")

    def extras(self):
        a = auth_material(self.options)
        return ("", f"{{jwt: {{keys: [{{kid: {a.KID}, pem_file: {_yaml(a.public_pem_file)}}}], algorithms: [RS256]}}}}",
                {"Authorization": f"Bearer {a.token}"})


# The rate limit of the gatehouse-rl-* variants: one counter (key: ip, and every
# client is 127.0.0.1) that must never refuse during a run. The sliding window
# admits a request while prev * (window - elapsed) / window + cur + 1 <= limit,
# so what it counts is at most the requests of the last two windows: with a
# 1 s window, 16,000,000 (the largest limit is 16,777,215) is reached only at
# 8 million requests/s sustained for two seconds, 40x anything one core can
# serve on loopback (~200k/s). A longer window could be reached: at 200k/s a
# 1m window counts 12 million per minute (close to the limit, and over it at
# 267k/s), a 30d window 16 million after 80 s. However long the run, the 1 s
# window forgets what came before. Every request still runs the full check
# (counter lookup, window roll-over each second, RateLimit-* headers).
RATE_LIMIT = {"limit": 16000000, "window": "1s", "key": "ip"}
REDIS_TIMEOUT = "50ms"


def _rate_limit_plugin(**extra):
    fields = dict(RATE_LIMIT, **extra)
    return "{rate_limit: {" + ", ".join(f"{k}: {v}" for k, v in fields.items()) + "}}"


class GatehouseRateLimitLocal(Gatehouse):
    """The route with a local rate limit that is never reached."""

    name = "gatehouse-rl-local"
    description = (f"gatehouse, the route with `{_rate_limit_plugin()[1:-1]}` (store local, sliding window); "
                   f"all requests come from 127.0.0.1, one counter, never reached (see servers.RATE_LIMIT)")

    @property
    def expect_header(self):
        return ("RateLimit-Limit", str(RATE_LIMIT["limit"]))  # the limit is really on the route

    def extras(self):
        return "", _rate_limit_plugin(), {}


class GatehouseRateLimitRedis(GatehouseRateLimitLocal):
    """The same limit counted on Redis (one EVALSHA per request); a Redis error is a 503, never a local fallback."""

    name = "gatehouse-rl-redis"
    description = (f"gatehouse, the same limit with `store: redis, on_store_error: deny` and top-level "
                   f"`redis: {{url: redis://127.0.0.1:PORT/0, timeout: {REDIS_TIMEOUT}}}`; the harness's own "
                   f"redis-server (`--save '' --appendonly no`) runs on the clients' CPU and its CPU is not in "
                   f"CPU µs/req; `deny` makes any Redis failure or timeout a 503 (counted as an error) instead of a "
                   f"silent fall-back to the local store")
    needs_redis = True

    def extras(self):
        if self.redis is None or not self.redis.alive():
            raise StartError("its redis-server is not running")
        top = f"redis: {{url: \"redis://{HOST}:{self.redis.port}/0\", timeout: {REDIS_TIMEOUT}}}\n"
        return top, _rate_limit_plugin(store="redis", on_store_error="deny"), {}

    def start(self, backend, scenario):
        before = self.redis.script_calls() if self.redis else None
        super().start(backend, scenario)
        after = self.redis.script_calls()
        if before is None or after is None or after <= before:
            self.stop()
            raise StartError(f"gatehouse answered but made no script call to its Redis (EVAL/EVALSHA calls "
                             f"{before} -> {after}): the limit is not counted on Redis")

    def alive(self):
        return super().alive() and self.redis is not None and self.redis.alive()

    def exit_description(self):
        if self.redis is not None and not self.redis.alive():
            return f"its redis-server {self.redis.exit_description()} (gatehouse {super().exit_description()})"
        return super().exit_description()

    def log_tail(self):
        tail = super().log_tail()
        if self.redis is not None and not self.redis.alive():
            tail += " | redis-server: " + self.redis.log_tail()
        return tail


SERVER_CLASSES = {c.name: c for c in (Direct, HAProxyTCP, Nginx, HAProxyHTTP, Gatehouse, GatehouseKeyAuth,
                                      GatehouseJwt, GatehouseRateLimitLocal, GatehouseRateLimitRedis)}
assert list(SERVER_CLASSES) == SERVER_NAMES


class Stack:
    """The backend plus the selected servers for one scenario."""

    def __init__(self, workdir, names, scenario, pin, options):
        self.workdir = _mkdir(workdir)
        self.names = names
        self.scenario = scenario
        self.pin = pin  # {"client": cpu, "proxy": cpu} or None values
        self.options = options
        self.backend = None
        self.redis = None  # RedisServer, when a server needs_redis
        self.servers = {}
        self.failed = {}  # name -> reason

    def _ensure_redis(self):
        """Starts the stack's redis-server if it is not running; returns the error or None."""
        if self.redis is not None and self.redis.alive():
            return None
        if self.redis is not None:
            self.redis.stop()
        self.redis = RedisServer(self.workdir, self.pin["client"])
        try:
            self.redis.start()
        except StartError as e:
            self.redis.stop()
            return str(e)
        return None

    def _new_server(self, name):
        srv = SERVER_CLASSES[name](self.workdir, self.pin["proxy"], self.options)
        if srv.needs_redis:
            why = self._ensure_redis()
            if why:
                raise StartError(why)
            srv.redis = self.redis
        return srv

    def start(self):
        """Starts the backend and every server; failures are recorded, not raised
        (except a backend failure, which leaves nothing to measure)."""
        self.stop()
        self.failed = {}
        self.backend = Backend(self.workdir, self.pin["client"], self.scenario)
        try:
            self.backend.start(free_ports(1)[0])
        except StartError as e:
            for n in self.names:
                self.failed[n] = f"backend failed to start: {e}"
            return
        for n in self.names:
            try:
                srv = self._new_server(n)
            except StartError as e:
                self.failed[n] = f"failed to start: {e}"
                continue
            self.servers[n] = srv
            try:
                srv.start(self.backend, self.scenario)
            except StartError as e:
                self.failed[n] = f"failed to start: {e}"
                srv.stop()

    def restart(self, name):
        """Starts one server again (after it died); returns the error or None."""
        srv = self.servers.get(name)
        if srv:
            srv.stop()
        try:
            srv = self._new_server(name)  # and a new redis-server if it needs one and that died
        except StartError as e:
            self.servers.pop(name, None)
            self.failed[name] = f"failed to restart: {e}"
            return self.failed[name]
        self.servers[name] = srv
        try:
            srv.start(self.backend, self.scenario)
        except StartError as e:
            srv.stop()
            self.failed[name] = f"failed to restart: {e}"
            return self.failed[name]
        self.failed.pop(name, None)
        return None

    def usable(self, name):
        return name in self.servers and name not in self.failed

    def stop(self):
        for srv in self.servers.values():
            srv.stop()
        self.servers = {}
        if self.redis:
            self.redis.stop()
            self.redis = None
        if self.backend:
            self.backend.stop()
            self.backend = None
