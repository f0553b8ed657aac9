"""Support for the TLS / HTTP/2 / gRPC / WebSocket / SSE / mTLS black-box
tests (tests/e2e/test_tls*.py, test_h2.py, test_grpc.py, test_websocket.py,
test_sse.py):

- a certificate factory driving the `openssl` CLI (ECDSA P-256): CAs, server
  certificates with SAN DNS names and IP:127.0.0.1, client certificates with a
  chosen CN / SAN URI / SAN DNS, and a session-wide `pki` of them;
- `openssl s_client` with a timeout, its output parsed (protocol, cipher,
  subject, Reused, ALPN, verify code);
- TLS clients (`TlsConn`, a RawConn over TLS), listener config blocks;
- backends: HTTPS echo (optional client-cert requirement; records headers,
  SNI, peer CN), WebSocket echo (python3-websockets on its own event loop in a
  thread), SSE (one event, then waits to be released), gRPC (a tiny .proto
  compiled at test time with grpc_tools.protoc, served by grpcio, h2c or TLS);
- clients: a raw WebSocket client, an HTTP/2 client on python3-h2 (plain h2c
  with prior knowledge, or TLS with ALPN h2), a raw HTTP/2 frame writer for
  abuse tests, gRPC-Web framing.

Everything listens on 127.0.0.1 and every network action has a timeout.
"""

import asyncio
import base64
import hashlib
import importlib
import json
import os
import re
import secrets
import select
import shutil
import socket
import ssl
import struct
import subprocess
import sys
import threading
import time
import urllib.parse
from concurrent import futures
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import SimpleNamespace
from typing import NamedTuple, Optional

import pytest

from conftest import RawConn, free_port, wait_for

OPENSSL = shutil.which("openssl") or "/usr/bin/openssl"
CURL = shutil.which("curl") or "/usr/bin/curl"
H2LOAD = shutil.which("h2load") or "/usr/bin/h2load"

IDENTITY_HEADERS = ("X-Consumer", "X-Consumer-Tier", "X-User-ID", "X-User-Role",
                    "X-Auth-Verified", "X-Gateway-Signature", "X-Anonymous-Consumer")


# ==========================================================================
# certificates

class Cert(NamedTuple):
    name: str
    cert: str          # PEM certificate path
    key: str           # PEM private key path (PKCS#8)
    ca: str            # PEM path of the issuing CA's certificate (itself for a CA)
    cn: str
    dns: tuple = ()
    uris: tuple = ()
    ips: tuple = ()

    def cert_pem(self):
        return Path(self.cert).read_bytes()

    def key_pem(self):
        return Path(self.key).read_bytes()

    def ca_pem(self):
        return Path(self.ca).read_bytes()

    @property
    def fingerprint(self):
        return cert_fingerprint(self.cert)


def cert_fingerprint(path):
    """SHA-256 (hex) of the DER of a PEM certificate file."""
    return hashlib.sha256(ssl.PEM_cert_to_DER_cert(Path(path).read_text())).hexdigest()


def der_fingerprint(der):
    return hashlib.sha256(der).hexdigest() if der else None


def der_subject_cn(der):
    """The subject CN of a DER certificate (None when absent)."""
    if not der:
        return None
    from cryptography import x509
    from cryptography.x509.oid import NameOID
    attrs = x509.load_der_x509_certificate(der).subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    return attrs[0].value if attrs else None


class CertFactory:
    """Makes keys and certificates with the openssl CLI in `directory`."""

    def __init__(self, directory):
        self.dir = Path(directory)
        self.dir.mkdir(parents=True, exist_ok=True)

    def _openssl(self, *args):
        r = subprocess.run([OPENSSL, *args], capture_output=True, text=True, timeout=30,
                           stdin=subprocess.DEVNULL)
        if r.returncode != 0:
            raise AssertionError(f"openssl {' '.join(args)} failed ({r.returncode}):\n{r.stderr}")
        return r

    def ca(self, name, cn=None):
        cn = cn or f"Gatehouse Test {name}"
        cert, key = self.dir / f"{name}.crt", self.dir / f"{name}.key"
        self._openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
                      "-nodes", "-keyout", str(key), "-out", str(cert), "-days", "30",
                      "-subj", f"/CN={cn}",
                      "-addext", "basicConstraints=critical,CA:TRUE",
                      "-addext", "keyUsage=critical,keyCertSign,cRLSign",
                      "-addext", "subjectKeyIdentifier=hash")
        return Cert(name, str(cert), str(key), str(cert), cn)

    def leaf(self, name, ca, cn, *, dns=(), ips=(), uris=(), server=True, client=False,
             key_from=None):
        """A certificate signed by `ca` (a Cert). key_from: reuse that Cert's key."""
        cert, key, csr, ext = (self.dir / f"{name}.{s}" for s in ("crt", "key", "csr", "ext"))
        if key_from is not None:
            shutil.copyfile(key_from.key, key)
            self._openssl("req", "-new", "-key", str(key), "-out", str(csr), "-subj", f"/CN={cn}")
        else:
            self._openssl("req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
                          "-nodes", "-keyout", str(key), "-out", str(csr), "-subj", f"/CN={cn}")
        usages = [u for u, on in (("serverAuth", server), ("clientAuth", client)) if on]
        sans = [f"DNS:{d}" for d in dns] + [f"IP:{i}" for i in ips] + [f"URI:{u}" for u in uris]
        lines = ["basicConstraints=critical,CA:FALSE",
                 "keyUsage=critical,digitalSignature",
                 f"extendedKeyUsage={','.join(usages)}",
                 "authorityKeyIdentifier=keyid"]
        if sans:
            lines.append("subjectAltName=" + ",".join(sans))
        ext.write_text("\n".join(lines) + "\n")
        self._openssl("x509", "-req", "-in", str(csr), "-CA", ca.cert, "-CAkey", ca.key,
                      "-set_serial", "0x" + secrets.token_hex(8), "-days", "30",
                      "-extfile", str(ext), "-out", str(cert))
        csr.unlink()
        ext.unlink()
        return Cert(name, str(cert), str(key), ca.cert, cn, tuple(dns), tuple(uris), tuple(ips))

    def server(self, name, ca, dns, *, cn=None, ips=("127.0.0.1",), key_from=None):
        return self.leaf(name, ca, cn or dns[0], dns=dns, ips=ips, server=True, client=False,
                         key_from=key_from)

    def client(self, name, ca, cn, *, uris=(), dns=()):
        return self.leaf(name, ca, cn, dns=dns, uris=uris, server=False, client=True)

    def verify(self, cert, ca_path=None):
        """`openssl verify` of cert against its CA (or ca_path): (ok, output)."""
        r = subprocess.run([OPENSSL, "verify", "-CAfile", ca_path or cert.ca, cert.cert],
                           capture_output=True, text=True, timeout=30)
        return r.returncode == 0, (r.stdout + r.stderr).strip()


def copy_cert(cert, directory, name=None):
    """A copy of cert's files in directory (for tests that overwrite them)."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    name = name or cert.name
    c, k = directory / f"{name}.crt", directory / f"{name}.key"
    shutil.copyfile(cert.cert, c)
    shutil.copyfile(cert.key, k)
    return cert._replace(name=name, cert=str(c), key=str(k))


class Pki(SimpleNamespace):
    """The session's certificates; see the `pki` fixture."""


ALICE_URI = "spiffe://example.test/ns/prod/sa/alice"
BOB_URI = "spiffe://example.test/ns/prod/sa/bob"
ALICE_DNS = "alice.clients.example.test"
BOB_DNS = "bob.clients.example.test"
API_NAME = "api.example.test"
OTHER_NAME = "other.example.test"
WILDCARD_SUFFIX = ".wild.example.test"
UPSTREAM_NAME = "orders.internal"


def make_pki(directory):
    f = CertFactory(directory)
    p = Pki(dir=str(directory), factory=f)
    p.ca = f.ca("server-ca", "Gatehouse Test Server CA")          # signs listener certificates
    p.clients_ca = f.ca("clients-ca", "Gatehouse Test Clients CA")  # client_ca of mTLS listeners
    p.other_ca = f.ca("other-ca", "Unrelated Test CA")             # trusted by nobody
    p.internal_ca = f.ca("internal-ca", "Gatehouse Test Internal CA")  # upstream side
    # listener certificates (picked by SNI)
    p.api = f.server("api", p.ca, [API_NAME, "localhost"])
    p.other = f.server("other", p.ca, [OTHER_NAME, "*" + WILDCARD_SUFFIX])
    # client certificates
    p.alice = f.client("alice", p.clients_ca, "alice", uris=[ALICE_URI], dns=[ALICE_DNS])
    p.bob = f.client("bob", p.clients_ca, "bob", uris=[BOB_URI], dns=[BOB_DNS])
    p.mallory = f.client("mallory", p.clients_ca, "mallory",
                         uris=["spiffe://example.test/ns/prod/sa/mallory"],
                         dns=["mallory.clients.example.test"])
    p.rogue = f.client("rogue-alice", p.other_ca, "alice", uris=[ALICE_URI], dns=[ALICE_DNS])
    p.server_ca_alice = f.client("server-ca-alice", p.ca, "alice", uris=[ALICE_URI],
                                 dns=[ALICE_DNS])
    # upstream side
    p.gw_client = f.client("gw-client", p.internal_ca, "gatehouse-gw")
    p.orders = f.server("orders", p.internal_ca, [UPSTREAM_NAME])
    p.orders_wrong_name = f.server("orders-wrong-name", p.internal_ca, ["billing.internal"])
    p.orders_foreign = f.server("orders-foreign", p.other_ca, [UPSTREAM_NAME])
    return p


@pytest.fixture(scope="session")
def pki(tmp_path_factory):
    """Session-wide certificates (never modify them; copy_cert first)."""
    return make_pki(tmp_path_factory.mktemp("pki"))


# ==========================================================================
# openssl s_client

class SClient(NamedTuple):
    returncode: Optional[int]
    output: str
    handshake_ok: bool
    protocol: Optional[str]     # "TLSv1.3", "TLSv1.2", "TLSv1.1", "TLSv1" (None: no handshake)
    cipher: Optional[str]
    reused: bool
    subject: Optional[str]      # "CN = api.example.test"
    subject_cn: Optional[str]
    alpn: Optional[str]         # None: no ALPN negotiated
    verify_code: Optional[int]
    http_status: Optional[int]  # status of an HTTP response that came back, if any


_VERSION_FLAGS = {"1.0": "-tls1", "1.1": "-tls1_1", "1.2": "-tls1_2", "1.3": "-tls1_3"}


def s_client(port, *, host="127.0.0.1", server_name=None, version=None, alpn=None,
             ciphers=None, ca=None, cert=None, sess_out=None, sess_in=None,
             request=None, timeout=8.0):
    """Runs `openssl s_client` against host:port, sends `request` (default: a
    GET / with Connection: close) and waits for the server to close. version:
    "1.0".."1.3" pins it (1.0/1.1 use DEFAULT@SECLEVEL=0 so they are offered
    at all); alpn: "h2,http/1.1"; ca/cert: Cert or path."""
    args = [OPENSSL, "s_client", "-connect", f"{host}:{port}", "-ign_eof"]
    args += ["-servername", server_name] if server_name else ["-noservername"]
    if version:
        args.append(_VERSION_FLAGS[version])
        if version in ("1.0", "1.1") and ciphers is None:
            ciphers = "DEFAULT@SECLEVEL=0"
    if ciphers:
        args += ["-cipher", ciphers]
    if alpn:
        args += ["-alpn", alpn]
    if ca is not None:
        args += ["-CAfile", ca.cert if isinstance(ca, Cert) else str(ca)]
    if cert is not None:
        args += ["-cert", cert.cert, "-key", cert.key]
    if sess_out:
        args += ["-sess_out", str(sess_out)]
    if sess_in:
        args += ["-sess_in", str(sess_in)]
    if request is None:
        request = f"GET / HTTP/1.1\r\nHost: {server_name or 't'}\r\nConnection: close\r\n\r\n"
    proc = subprocess.Popen(args, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, start_new_session=True)
    try:
        out, _ = proc.communicate(request.encode() if isinstance(request, str) else request,
                                  timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, _ = proc.communicate(timeout=5)
    return parse_s_client(out.decode(errors="replace"), proc.returncode)


def parse_s_client(text, returncode=None):
    m = re.search(r"^(New|Reused), (\S+), Cipher is (\S+)", text, re.M)
    protocol = cipher = None
    reused = False
    if m:  # (its middle word is the cipher's version, not the protocol's)
        reused = m.group(1) == "Reused"
        cipher = m.group(3) if m.group(3) not in ("(NONE)", "0000") else None
    pm = re.search(r"^\s+Protocol\s*: (\S+)", text, re.M)
    if cipher and pm:
        protocol = pm.group(1)
    sm = re.search(r"^subject=(.*)$", text, re.M)
    subject = sm.group(1).strip() if sm else None
    cn = None
    if subject:
        cm = re.search(r"CN\s*=\s*([^,/]+)", subject)
        cn = cm.group(1).strip() if cm else None
    am = re.search(r"^ALPN protocol: (\S+)", text, re.M)
    vm = re.search(r"Verify return code: (\d+)", text)
    hm = re.search(r"^HTTP/1\.[01] (\d{3})", text, re.M)
    return SClient(returncode, text, bool(cipher), protocol, cipher, reused, subject, cn,
                   am.group(1) if am else None, int(vm.group(1)) if vm else None,
                   int(hm.group(1)) if hm else None)


class SServer:
    """`openssl s_server -www` on a free loopback port (harness self-checks)."""

    def __init__(self, procs, cert, *, extra=()):
        self.port = free_port()
        self.proc = procs.spawn([OPENSSL, "s_server", "-accept", f"127.0.0.1:{self.port}",
                                 "-cert", cert.cert, "-key", cert.key, "-www", *extra],
                                stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL)
        from conftest import port_accepts
        if not wait_for(lambda: port_accepts(self.port), timeout=5):
            raise AssertionError("openssl s_server did not start")


# ==========================================================================
# TLS clients

TLS_VERSIONS = {"1.0": ssl.TLSVersion.TLSv1, "1.1": ssl.TLSVersion.TLSv1_1,
                "1.2": ssl.TLSVersion.TLSv1_2, "1.3": ssl.TLSVersion.TLSv1_3}


def client_context(*, ca=None, cert=None, alpn=None, min_version=None, max_version=None,
                   check_hostname=True, ciphers=None):
    """An ssl.SSLContext for a client. ca: Cert or path (None: no verification
    at all); cert: a Cert to present; versions "1.2"/"1.3"; alpn: a list."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    if ca is None:
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
    else:
        ctx.load_verify_locations(ca.cert if isinstance(ca, Cert) else str(ca))
        ctx.check_hostname = check_hostname
    if cert is not None:
        ctx.load_cert_chain(cert.cert, cert.key)
    if ciphers:
        ctx.set_ciphers(ciphers)
    if min_version:
        ctx.minimum_version = TLS_VERSIONS[min_version]
    if max_version:
        ctx.maximum_version = TLS_VERSIONS[max_version]
    if alpn:
        ctx.set_alpn_protocols(list(alpn))
    return ctx


class TlsConn(RawConn):
    """RawConn over TLS: the handshake happens in the constructor (raises
    ssl.SSLError / OSError when it fails). server_name: SNI (None: none sent;
    with a `ca` the certificate must then match it). Context options as for
    client_context()."""

    def __init__(self, port, host="127.0.0.1", *, server_name=None, context=None, timeout=5.0,
                 **ctx_options):
        self.timeout = timeout
        self.buf = b""
        self.eof = False
        if context is None:
            if server_name is None:
                ctx_options.setdefault("check_hostname", False)
            context = client_context(**ctx_options)
        raw = socket.create_connection((host, port), timeout=timeout)
        try:
            self.sock = context.wrap_socket(raw, server_hostname=server_name)
        except BaseException:
            raw.close()
            raise

    def _fill(self, deadline):
        try:
            return super()._fill(deadline)
        except (ssl.SSLError, OSError):
            self.eof = True
            return False

    def _read_exact(self, n, deadline):
        # TLS records are at most 16 KiB: gather into a bytearray, not by
        # re-concatenating self.buf (quadratic for multi-MiB bodies)
        out = bytearray(self.buf[:n])
        self.buf = self.buf[n:]
        while len(out) < n and not self.eof:
            left = deadline - time.monotonic()
            if left <= 0:
                break
            self.sock.settimeout(left)
            try:
                chunk = self.sock.recv(min(1 << 20, n - len(out)))
            except socket.timeout:
                break
            except (ssl.SSLError, OSError):
                self.eof = True
                break
            if not chunk:
                self.eof = True
                break
            out += chunk
        return bytes(out)

    def send(self, data):
        self.sock.sendall(data)

    @property
    def version(self):
        return self.sock.version()

    @property
    def cipher(self):
        return self.sock.cipher()[0]

    @property
    def alpn(self):
        return self.sock.selected_alpn_protocol()

    @property
    def session_reused(self):
        return self.sock.session_reused

    @property
    def peer_der(self):
        return self.sock.getpeercert(binary_form=True)

    @property
    def peer_fingerprint(self):
        return der_fingerprint(self.peer_der)

    @property
    def peer_cn(self):
        return der_subject_cn(self.peer_der)

    def request(self, method="GET", path="/", headers=None, body=b"", host="t", timeout=None):
        """Sends one HTTP/1.1 request and reads the response (keep-alive)."""
        send_request(self, method, path, headers, body, host)
        return self.read_response(head_request=method == "HEAD", timeout=timeout)


def send_request(conn, method="GET", path="/", headers=None, body=b"", host="t"):
    if isinstance(body, str):
        body = body.encode()
    lines = [f"{method} {path} HTTP/1.1", f"Host: {host}"]
    hdrs = dict(headers or {})
    if body or method in ("POST", "PUT", "PATCH"):
        hdrs.setdefault("Content-Length", str(len(body)))
    lines += [f"{k}: {v}" for k, v in hdrs.items()]
    conn.send(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body)


def https_request(port, method="GET", path="/", *, headers=None, body=b"", host="t",
                  timeout=5.0, **conn_options):
    """One request on a fresh TLS connection; (RawResponse, TlsConn info dict)."""
    with TlsConn(port, timeout=timeout, **conn_options) as conn:
        resp = conn.request(method, path, headers, body, host, timeout)
        info = {"version": conn.version, "alpn": conn.alpn, "peer_cn": conn.peer_cn,
                "fingerprint": conn.peer_fingerprint}
    return resp, info


def tls_attempt(port, path="/", *, timeout=5.0, **conn_options):
    """Tries a handshake and one GET. Returns (RawResponse or None, error
    string or None). With TLS 1.3 a refused client certificate surfaces
    after the handshake, as an alert on the first read: both count as
    failure (no response)."""
    try:
        with TlsConn(port, timeout=timeout, **conn_options) as conn:
            try:
                resp = conn.request("GET", path, timeout=timeout)
            except (ssl.SSLError, OSError) as e:
                return None, f"after handshake: {e!r}"
            if resp.status is None:
                return None, "no HTTP response (connection closed)"
            return resp, None
    except (ssl.SSLError, OSError) as e:
        return None, f"handshake: {e!r}"


def echoed_headers(resp):
    """What an echo backend (demo-backend or HttpsEchoBackend) received, from
    a RawResponse or a requests response."""
    status = getattr(resp, "status_code", None) or getattr(resp, "status", None)
    body = resp.content if hasattr(resp, "content") else resp.body
    assert status == 200, f"{status}: {body[:500]!r}"
    return json.loads(body)["headers"]


# ==========================================================================
# listener config blocks

def tls_block(certs, *, min_version=None, client_ca=None, client_auth=None):
    """The `tls:` map of a listener. certs: [Cert] (first is the default)."""
    tls = {"certificates": [{"cert": c.cert, "key": c.key} for c in certs]}
    if min_version is not None:
        tls["min_version"] = min_version
    if client_ca is not None:
        tls["client_ca"] = client_ca.cert if isinstance(client_ca, Cert) else str(client_ca)
    if client_auth is not None:
        tls["client_auth"] = client_auth
    return tls


def listener(port=None, tls=None, host="127.0.0.1"):
    entry = {"listen": f"{host}:{port or free_port()}"}
    if tls:
        entry["tls"] = tls
    return entry


@pytest.fixture
def tls_listener(pki):
    """tls_listener(certs=None, **tls_options) -> a `listeners:` entry on a
    free port, TLS with pki.api (then certs...) by default."""
    def make(certs=None, *, port=None, **tls_options):
        return listener(port, tls_block(certs or [pki.api], **tls_options))
    return make


def with_listeners(cfg, *entries):
    cfg = dict(cfg)
    cfg["listeners"] = list(entries)
    return cfg


# ==========================================================================
# HTTPS echo backend

class _TlsHTTPServer(ThreadingHTTPServer):
    daemon_threads = True

    def finish_request(self, request, client_address):
        owner = self.owner
        request.settimeout(10)
        try:
            tls = owner.context.wrap_socket(request, server_side=True, do_handshake_on_connect=False)
            tls.do_handshake()
        except (ssl.SSLError, OSError) as e:
            with owner.lock:
                owner.handshake_failures.append(repr(e))
            try:
                request.close()
            except OSError:
                pass
            return
        with owner.lock:
            owner.handshakes += 1
        self.RequestHandlerClass(tls, client_address, self)

    def handle_error(self, request, client_address):
        pass  # a client that goes away mid-request is not a backend error


class _EchoHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    timeout = 30

    def log_message(self, *args):
        pass

    def _handle(self):
        owner = self.server.owner
        length = int(self.headers.get("Content-Length") or 0)
        body_bytes = 0
        while body_bytes < length:
            chunk = self.rfile.read(min(65536, length - body_bytes))
            if not chunk:
                break
            body_bytes += len(chunk)
        split = urllib.parse.urlsplit(self.path)
        query = urllib.parse.parse_qs(split.query)
        der = self.connection.getpeercert(binary_form=True)
        seen = {"backend": owner.name, "method": self.command, "path": split.path,
                "query": split.query,
                "headers": {k.lower(): v for k, v in self.headers.items()},
                "body_bytes": body_bytes, "peer_cn": der_subject_cn(der),
                "tls_version": self.connection.version()}
        with owner.lock:
            owner.requests.append(seen)
        status = int(query.get("status", ["200"])[0])
        if "size" in query:
            payload = b"x" * int(query["size"][0])
            ctype = "application/octet-stream"
        else:
            payload = json.dumps(seen).encode()
            ctype = "application/json"
        try:
            self.send_response(status)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(payload)))
            self.send_header("X-Backend", owner.name)
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(payload)
        except OSError:
            self.close_connection = True

    do_GET = do_POST = do_PUT = do_HEAD = do_DELETE = _handle


class HttpsEchoBackend:
    """An HTTPS server echoing each request as demo-backend does (JSON with
    method, path, query, headers, body_bytes, plus peer_cn and tls_version);
    `?status=N`, `?size=N`. client_ca: verify client certificates against it
    (require_client_cert: refuse the handshake without one). Records SNI
    names, handshakes and handshake failures."""

    def __init__(self, cert, *, client_ca=None, require_client_cert=False, name="https-echo"):
        self.name = name
        self.lock = threading.Lock()
        self.requests = []
        self.snis = []
        self.handshakes = 0
        self.handshake_failures = []
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(cert.cert, cert.key)
        if client_ca is not None:
            ctx.load_verify_locations(client_ca.cert if isinstance(client_ca, Cert) else client_ca)
            ctx.verify_mode = ssl.CERT_REQUIRED if require_client_cert else ssl.CERT_OPTIONAL
        ctx.sni_callback = self._on_sni
        self.context = ctx
        self.httpd = _TlsHTTPServer(("127.0.0.1", 0), _EchoHandler)
        self.httpd.owner = self
        self.port = self.httpd.server_address[1]
        self.thread = threading.Thread(target=self.httpd.serve_forever,
                                       kwargs={"poll_interval": 0.05}, daemon=True)
        self.thread.start()

    def _on_sni(self, sslobj, server_name, ctx):
        with self.lock:
            self.snis.append(server_name)
        return None

    @property
    def addr(self):
        return f"127.0.0.1:{self.port}"

    def hits(self):
        with self.lock:
            return len(self.requests)

    def last(self):
        with self.lock:
            return self.requests[-1] if self.requests else None

    def stop(self):
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def https_backend():
    made = []

    def start(cert, **kwargs):
        b = HttpsEchoBackend(cert, **kwargs)
        made.append(b)
        return b

    yield start
    for b in made:
        b.stop()


# ==========================================================================
# WebSocket echo backend (python3-websockets, its own event loop in a thread)

class WsEchoBackend:
    """Echoes every message. Text "close:CODE" makes it close with CODE.
    Paths containing /reject -> answers the upgrade with 403 and a text body;
    containing /plain -> 200 text (no upgrade). Records each upgrade's path and
    headers, messages received, and the close codes it saw."""

    REJECT_BODY = b"upgrade refused by the backend\n"

    def __init__(self, ssl_context=None):
        import websockets  # noqa: F401  (fail early if missing)
        self.lock = threading.Lock()
        self.upgrades = []      # (path, {lower-case header: value})
        self.requests = []      # every handshake request, accepted or not
        self.messages = []
        self.close_codes = []
        self.open = 0
        self.ssl_context = ssl_context
        self.loop = asyncio.new_event_loop()
        self.ready = threading.Event()
        self.error = None
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()
        if not self.ready.wait(10):
            raise AssertionError(f"websocket backend did not start: {self.error!r}")
        if self.error:
            raise AssertionError(f"websocket backend failed: {self.error!r}")

    def _run(self):
        import websockets
        asyncio.set_event_loop(self.loop)

        async def main():
            self.stop_future = self.loop.create_future()
            try:
                server = await websockets.serve(self._handler, "127.0.0.1", 0,
                                                process_request=self._process_request,
                                                ssl=self.ssl_context, ping_interval=None,
                                                max_size=None, close_timeout=2)
            except Exception as e:  # noqa: BLE001
                self.error = e
                self.ready.set()
                return
            self.port = server.sockets[0].getsockname()[1]
            self.ready.set()
            await self.stop_future
            server.close()
            await server.wait_closed()

        try:
            self.loop.run_until_complete(main())
        finally:
            self.loop.close()

    async def _process_request(self, path, request_headers):
        from http import HTTPStatus
        headers = {k.lower(): v for k, v in request_headers.raw_items()}
        with self.lock:
            self.requests.append((path, headers))
        if "/reject" in path:
            return (HTTPStatus.FORBIDDEN,
                    [("Content-Type", "text/plain"), ("X-Backend", "ws")], self.REJECT_BODY)
        if "/plain" in path:
            return (HTTPStatus.OK, [("Content-Type", "text/plain"), ("X-Backend", "ws")],
                    b"plain answer\n")
        return None

    async def _handler(self, ws, path=None):
        import websockets
        headers = {k.lower(): v for k, v in ws.request_headers.raw_items()}
        with self.lock:
            self.upgrades.append((ws.path, headers))
            self.open += 1
        try:
            async for message in ws:
                with self.lock:
                    self.messages.append(message)
                if isinstance(message, str) and message.startswith("close:"):
                    await ws.close(code=int(message.split(":", 1)[1]), reason="backend closes")
                    break
                await ws.send(message)
        except websockets.ConnectionClosed:
            pass
        finally:
            with self.lock:
                self.close_codes.append(ws.close_code)
                self.open -= 1

    @property
    def addr(self):
        return f"127.0.0.1:{self.port}"

    def stop(self):
        if self.loop.is_closed():
            return
        try:
            self.loop.call_soon_threadsafe(
                lambda: self.stop_future.done() or self.stop_future.set_result(None))
        except RuntimeError:
            return
        self.thread.join(5)


@pytest.fixture
def ws_backend():
    made = []

    def start(**kwargs):
        b = WsEchoBackend(**kwargs)
        made.append(b)
        return b

    yield start
    for b in made:
        b.stop()


# --------------------------------------------------------------------------
# WebSocket client (raw, RFC 6455)

WS_GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
OP_CONT, OP_TEXT, OP_BINARY, OP_CLOSE, OP_PING, OP_PONG = 0, 1, 2, 8, 9, 10


def ws_accept(key):
    return base64.b64encode(hashlib.sha1((key + WS_GUID).encode()).digest()).decode()


class WsClient:
    """Opens a WebSocket over `conn` (RawConn or TlsConn): sends the upgrade,
    reads the answer (self.response: a RawResponse; body read for non-101).
    self.upgraded: 101 with the right Sec-WebSocket-Accept."""

    def __init__(self, conn, path="/", headers=None, host="t", timeout=5.0):
        self.conn = conn
        self.timeout = timeout
        self.key = base64.b64encode(os.urandom(16)).decode()
        hdrs = {"Upgrade": "websocket", "Connection": "Upgrade",
                "Sec-WebSocket-Key": self.key, "Sec-WebSocket-Version": "13"}
        hdrs.update(headers or {})
        send_request(conn, "GET", path, hdrs, b"", host)
        self.response = conn.read_response(timeout=timeout)
        self.upgraded = (self.response.status == 101
                         and self.response.headers.get("sec-websocket-accept") == ws_accept(self.key))
        self.peer_closed = False

    def send_frame(self, opcode, payload=b"", fin=True):
        if isinstance(payload, str):
            payload = payload.encode()
        head = bytes([(0x80 if fin else 0) | opcode])
        n = len(payload)
        if n < 126:
            head += bytes([0x80 | n])
        elif n < 65536:
            head += bytes([0x80 | 126]) + struct.pack("!H", n)
        else:
            head += bytes([0x80 | 127]) + struct.pack("!Q", n)
        mask = os.urandom(4)
        masked = bytes(b ^ mask[i % 4] for i, b in enumerate(payload)) if n < 4096 else \
            _mask_fast(payload, mask)
        self.conn.send(head + mask + masked)

    def send_text(self, text):
        self.send_frame(OP_TEXT, text.encode())

    def send_binary(self, data):
        self.send_frame(OP_BINARY, data)

    def send_close(self, code=1000, reason=""):
        self.send_frame(OP_CLOSE, struct.pack("!H", code) + reason.encode())

    def _need(self, n, deadline):
        while len(self.conn.buf) < n:
            if not self.conn._fill(deadline):
                return False
        return True

    def recv_frame(self, timeout=None):
        """(fin, opcode, payload) or None (EOF / timeout: see peer_closed)."""
        deadline = time.monotonic() + (timeout or self.timeout)
        if not self._need(2, deadline):
            self.peer_closed = self.conn.eof
            return None
        b0, b1 = self.conn.buf[0], self.conn.buf[1]
        n = b1 & 0x7F
        off = 2
        if n == 126:
            if not self._need(4, deadline):
                return None
            n = struct.unpack("!H", self.conn.buf[2:4])[0]
            off = 4
        elif n == 127:
            if not self._need(10, deadline):
                return None
            n = struct.unpack("!Q", self.conn.buf[2:10])[0]
            off = 10
        mask = None
        if b1 & 0x80:
            if not self._need(off + 4, deadline):
                return None
            mask = self.conn.buf[off:off + 4]
            off += 4
        if not self._need(off + n, deadline):
            self.peer_closed = self.conn.eof
            return None
        payload = self.conn.buf[off:off + n]
        self.conn.buf = self.conn.buf[off + n:]
        if mask:
            payload = _mask_fast(payload, mask)
        return bool(b0 & 0x80), b0 & 0x0F, payload

    def recv_message(self, timeout=None):
        """(opcode, payload) of the next data message, or (OP_CLOSE, (code,
        reason)); pings are answered. None on EOF / timeout."""
        deadline = time.monotonic() + (timeout or self.timeout)
        parts, opcode = [], None
        while True:
            frame = self.recv_frame(max(0.001, deadline - time.monotonic()))
            if frame is None:
                return None
            fin, op, payload = frame
            if op == OP_PING:
                self.send_frame(OP_PONG, payload)
                continue
            if op == OP_PONG:
                continue
            if op == OP_CLOSE:
                code = struct.unpack("!H", payload[:2])[0] if len(payload) >= 2 else None
                return OP_CLOSE, (code, payload[2:].decode(errors="replace"))
            if op != OP_CONT:
                opcode = op
            parts.append(payload)
            if fin:
                data = b"".join(parts)
                return opcode, data.decode() if opcode == OP_TEXT else data

    def close(self):
        self.conn.close()


def _mask_fast(data, mask):
    n = len(data)
    m = int.from_bytes((mask * (n // 4 + 1))[:n], "big")
    return (int.from_bytes(data, "big") ^ m).to_bytes(n, "big") if n else b""


# ==========================================================================
# SSE backend

class _SseHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    timeout = 30

    def log_message(self, *args):
        pass

    def do_GET(self):
        owner = self.server.owner
        split = urllib.parse.urlsplit(self.path)
        query = urllib.parse.parse_qs(split.query)
        with owner.lock:
            owner.requests.append((split.path, {k.lower(): v for k, v in self.headers.items()}))
        if not split.path.startswith("/events"):
            body = b'{"ok": true}'
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
            return
        mode = query.get("mode", ["chunked"])[0]
        chunked = mode == "chunked"
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Cache-Control", "no-cache")
        if chunked:
            self.send_header("Transfer-Encoding", "chunked")
        else:
            self.send_header("Connection", "close")
            self.close_connection = True
        self.end_headers()

        def emit(data):
            if chunked:
                data = b"%x\r\n%s\r\n" % (len(data), data)
            self.wfile.write(data)
            self.wfile.flush()

        try:
            emit(owner.FIRST)
            owner.first_sent.set()
            released = owner.release.wait(20)
            owner.released_in_time = released
            for event in owner.REST:
                emit(event)
            if chunked:
                self.wfile.write(b"0\r\n\r\n")
                self.wfile.flush()
        except OSError:
            pass
        finally:
            owner.finished.set()
        if not chunked:
            self.close_connection = True


class SseBackend:
    """GET /events[?mode=chunked|close]: text/event-stream; sends FIRST at
    once, then waits until release() (at most 20 s) before sending REST and
    ending the stream (a 0-chunk, or closing the connection with
    mode=close). Other paths: a small JSON 200. first_sent / finished are
    threading.Events."""

    FIRST = b"id: 1\nevent: greeting\ndata: first\n\n"
    REST = (b"id: 2\ndata: second\n\n", b"id: 3\ndata: third\n\n")
    ALL = FIRST + b"".join(REST)

    def __init__(self):
        self.lock = threading.Lock()
        self.requests = []
        self.first_sent = threading.Event()
        self.release = threading.Event()
        self.finished = threading.Event()
        self.released_in_time = None
        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), _SseHandler)
        self.httpd.daemon_threads = True
        self.httpd.owner = self
        self.port = self.httpd.server_address[1]
        self.thread = threading.Thread(target=self.httpd.serve_forever,
                                       kwargs={"poll_interval": 0.05}, daemon=True)
        self.thread.start()

    @property
    def addr(self):
        return f"127.0.0.1:{self.port}"

    def stop(self):
        self.release.set()
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def sse_backend():
    made = []

    def start():
        b = SseBackend()
        made.append(b)
        return b

    yield start
    for b in made:
        b.stop()


def dechunk(data):
    """(payload so far, complete?) of a chunked body prefix."""
    out = bytearray()
    pos = 0
    while True:
        end = data.find(b"\r\n", pos)
        if end < 0:
            return bytes(out), False
        size = int(data[pos:end].split(b";")[0].strip() or b"0", 16)
        if size == 0:
            return bytes(out), True
        if len(data) < end + 2 + size + 2:
            out += data[end + 2:end + 2 + size]
            return bytes(out), False
        out += data[end + 2:end + 2 + size]
        pos = end + 2 + size + 2


class StreamReader:
    """Reads a streamed HTTP/1.1 response body incrementally from a RawConn
    after read_head(): chunked, Content-Length or close-delimited."""

    def __init__(self, conn, header_list):
        self.conn = conn
        self.headers = dict(header_list)
        self.chunked = "chunked" in self.headers.get("transfer-encoding", "").lower()
        self.length = int(self.headers["content-length"]) if "content-length" in self.headers else None
        self.raw = b""

    def body(self):
        if self.chunked:
            return dechunk(self.raw)
        if self.length is not None:
            return self.raw[:self.length], len(self.raw) >= self.length
        return self.raw, self.conn.eof

    def read_until(self, predicate, timeout):
        """Reads until predicate(body_so_far) or the body is complete or the
        timeout; returns (body, complete)."""
        deadline = time.monotonic() + timeout
        self.raw += self.conn.buf
        self.conn.buf = b""
        while True:
            body, complete = self.body()
            if predicate(body) or complete:
                return body, complete
            if not self.conn._fill(deadline):
                body, complete = self.body()
                return body, complete or self.conn.eof and not self.chunked
            self.raw += self.conn.buf
            self.conn.buf = b""


# ==========================================================================
# HTTP/2 client on python3-h2

class H2Stream:
    def __init__(self, sid, keep_data=True):
        self.sid = sid
        self.keep_data = keep_data
        self.headers = None      # [(name, value)] of the final response
        self.informational = []
        self.data = bytearray()
        self.data_len = 0
        self.trailers = None
        self.ended = False
        self.reset = None        # RST_STREAM error code
        self.first_data_at = None
        self.unacked = 0
        self.why = None          # set when response() returns an unfinished stream

    def __repr__(self):
        return (f"H2Stream(sid={self.sid}, status={self.status}, ended={self.ended}, "
                f"reset={self.reset}, data={bytes(self.data[:200])!r}, why={self.why})")

    @property
    def done(self):
        return self.ended or self.reset is not None

    @property
    def status(self):
        return int(self.header(":status")) if self.headers else None

    def header(self, name, default=None):
        for k, v in self.headers or ():
            if k == name:
                return v
        return default

    def header_dict(self):
        return {k: v for k, v in self.headers or ()}

    def trailer(self, name, default=None):
        for k, v in self.trailers or ():
            if k == name:
                return v
        return default

    def json(self):
        return json.loads(bytes(self.data))


class H2Client:
    """An HTTP/2 client connection: h2c with prior knowledge, or TLS with ALPN
    h2 (pass context=, server_name=). auto_ack=False leaves flow control to
    the caller (ack()). settings: dict of SETTINGS to send at start."""

    def __init__(self, port, host="127.0.0.1", *, context=None, server_name=None, timeout=10.0,
                 auto_ack=True, settings=None):
        import h2.config
        import h2.connection
        self.timeout = timeout
        self.auto_ack = auto_ack
        raw = socket.create_connection((host, port), timeout=timeout)
        if context is not None:
            try:
                raw = context.wrap_socket(raw, server_hostname=server_name)
            except BaseException:
                raw.close()
                raise
            assert raw.selected_alpn_protocol() == "h2", \
                f"ALPN chose {raw.selected_alpn_protocol()!r}, not h2"
        self.sock = raw
        self.conn = h2.connection.H2Connection(
            h2.config.H2Configuration(client_side=True, header_encoding="utf-8"))
        self.conn.initiate_connection()
        if settings:
            self.conn.update_settings(settings)
        self.streams = {}
        self.goaway = None       # (error_code, last_stream_id)
        self.closed = False
        self.error = None
        self.remote_settings = {}
        self.flush()

    # -- sending
    def flush(self):
        data = self.conn.data_to_send()
        if data:
            try:
                self.sock.sendall(data)
            except (OSError, ssl.SSLError) as e:
                self.closed = True
                self.error = self.error or repr(e)

    def request(self, method="GET", path="/", headers=(), body=None, *, authority="t",
                scheme=None, end_stream=True, keep_data=True):
        """Opens a stream; returns its id. body (bytes) is sent respecting
        flow control; end_stream=False leaves the stream open for send_data()."""
        scheme = scheme or ("https" if isinstance(self.sock, ssl.SSLSocket) else "http")
        sid = self.conn.get_next_available_stream_id()
        hdrs = [(":method", method), (":scheme", scheme), (":authority", authority),
                (":path", path)] + [(k.lower(), v) for k, v in
                                    (headers.items() if isinstance(headers, dict) else headers)]
        self.streams[sid] = H2Stream(sid, keep_data)
        no_body = body is None or body == b""
        self.conn.send_headers(sid, hdrs, end_stream=end_stream and no_body)
        self.flush()
        if not no_body:
            self.send_data(sid, body, end_stream=end_stream)
        return sid

    def send_data(self, sid, data, end_stream=False, timeout=None):
        deadline = time.monotonic() + (timeout or self.timeout)
        view = memoryview(data)
        while len(view):
            window = min(self.conn.local_flow_control_window(sid), self.conn.max_outbound_frame_size)
            if window <= 0:
                if time.monotonic() > deadline or not self.pump(0.2) and self.closed:
                    raise AssertionError("flow-control window never reopened")
                continue
            n = min(window, len(view))
            self.conn.send_data(sid, bytes(view[:n]))
            view = view[n:]
            self.flush()
        if end_stream:
            self.conn.end_stream(sid)
            self.flush()

    def end_stream(self, sid):
        self.conn.end_stream(sid)
        self.flush()

    def reset(self, sid, code=8):
        self.conn.reset_stream(sid, code)
        self.flush()

    def ack(self, sid, n=None):
        """Acknowledges (frees flow-control window for) n received bytes
        (default: everything not yet acknowledged)."""
        st = self.streams[sid]
        n = st.unacked if n is None else min(n, st.unacked)
        if n:
            st.unacked -= n
            try:
                self.conn.acknowledge_received_data(n, sid)
            except Exception:  # noqa: BLE001 (stream already closed)
                pass
            self.flush()

    # -- receiving
    def pump(self, timeout=0.2):
        """Reads once (waiting at most timeout) and handles the events.
        False when the connection is closed."""
        import h2.events
        import h2.exceptions
        if self.closed:
            return False
        try:
            if not (isinstance(self.sock, ssl.SSLSocket) and self.sock.pending()):
                ready, _, _ = select.select([self.sock], [], [], timeout)
                if not ready:
                    return True
            self.sock.settimeout(max(timeout, 0.5))
            data = self.sock.recv(1 << 20)
        except (socket.timeout, ssl.SSLWantReadError):
            return True
        except (OSError, ssl.SSLError) as e:
            self.closed = True
            self.error = self.error or repr(e)
            return False
        if not data:
            self.closed = True
            return False
        try:
            events = self.conn.receive_data(data)
        except h2.exceptions.ProtocolError as e:
            self.closed = True
            self.error = self.error or f"h2 protocol error: {e!r}"
            return False
        for ev in events:
            st = self.streams.get(getattr(ev, "stream_id", None) or -1)
            if isinstance(ev, h2.events.ResponseReceived):
                st.headers = ev.headers
            elif isinstance(ev, h2.events.InformationalResponseReceived):
                st.informational.append(ev.headers)
            elif isinstance(ev, h2.events.DataReceived):
                if st is not None:
                    if st.first_data_at is None:
                        st.first_data_at = time.monotonic()
                    st.data_len += len(ev.data)
                    if st.keep_data:
                        st.data += ev.data
                    st.unacked += ev.flow_controlled_length
                    if self.auto_ack:
                        self.ack(ev.stream_id)
                elif ev.flow_controlled_length:
                    self.conn.acknowledge_received_data(ev.flow_controlled_length, ev.stream_id)
            elif isinstance(ev, h2.events.TrailersReceived):
                st.trailers = ev.headers
            elif isinstance(ev, h2.events.StreamEnded):
                if st is not None:
                    st.ended = True
            elif isinstance(ev, h2.events.StreamReset):
                if st is not None:
                    st.reset = ev.error_code
            elif isinstance(ev, h2.events.ConnectionTerminated):
                self.goaway = (int(ev.error_code), ev.last_stream_id)
            elif isinstance(ev, h2.events.RemoteSettingsChanged):
                for code, change in ev.changed_settings.items():
                    self.remote_settings[int(code)] = change.new_value
        self.flush()
        return True

    def wait(self, predicate, timeout=None):
        deadline = time.monotonic() + (timeout or self.timeout)
        while not predicate():
            if time.monotonic() > deadline:
                return False
            if not self.pump(min(0.2, max(0.001, deadline - time.monotonic()))) and not predicate():
                return predicate()
        return True

    def response(self, sid, timeout=None):
        """The stream once ended or reset (or whatever arrived before the
        timeout / connection close: check .done)."""
        self.wait(lambda: self.streams[sid].done, timeout)
        st = self.streams[sid]
        if not st.done:
            st.why = (f"connection closed ({self.error or 'EOF'}), goaway={self.goaway}" if self.closed
                      else f"no end of stream within the timeout, goaway={self.goaway}")
        return st

    def get(self, path, headers=(), timeout=None, **kwargs):
        return self.response(self.request("GET", path, headers, **kwargs), timeout)

    def close(self):
        try:
            self.conn.close_connection()
            self.flush()
        except Exception:  # noqa: BLE001
            pass
        try:
            self.sock.close()
        except OSError:
            pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def h2_tls_context(ca, cert=None):
    return client_context(ca=ca, cert=cert, alpn=["h2", "http/1.1"])


# --------------------------------------------------------------------------
# raw HTTP/2 frames (abuse tests)

PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
DATA, HEADERS, PRIORITY, RST_STREAM, SETTINGS, PUSH_PROMISE, PING, GOAWAY, WINDOW_UPDATE, \
    CONTINUATION = range(10)
END_STREAM, ACK, END_HEADERS, PADDED, PRIORITY_FLAG = 0x1, 0x1, 0x4, 0x8, 0x20
NO_ERROR, PROTOCOL_ERROR, REFUSED_STREAM, CANCEL, ENHANCE_YOUR_CALM = 0x0, 0x1, 0x7, 0x8, 0xb
SETTINGS_MAX_CONCURRENT_STREAMS = 0x3
SETTINGS_MAX_HEADER_LIST_SIZE = 0x6


def frame(ftype, flags, sid, payload=b""):
    return struct.pack("!I", len(payload))[1:] + bytes([ftype, flags]) + \
        struct.pack("!I", sid & 0x7FFFFFFF) + payload


class RawH2:
    """Writes HTTP/2 frames by hand and parses what comes back: SETTINGS
    (acknowledged), PING (answered), GOAWAY, RST_STREAM, response HEADERS
    (decoded) and DATA (counted, window re-opened). One HPACK encoder for
    every header block it sends, so the peer's decoder stays in step."""

    def __init__(self, port, host="127.0.0.1", *, context=None, server_name=None, timeout=5.0):
        import hpack
        raw = socket.create_connection((host, port), timeout=timeout)
        if context is not None:
            try:
                raw = context.wrap_socket(raw, server_hostname=server_name)
            except BaseException:
                raw.close()
                raise
            assert raw.selected_alpn_protocol() == "h2", raw.selected_alpn_protocol()
        self.sock = raw
        self.encoder = hpack.Encoder()
        self.decoder = hpack.Decoder()
        self.decoder.max_header_list_size = 1 << 20
        self.buf = b""
        self.eof = False
        self.eof_at = None
        self.send_failed = False
        self.goaway = None          # (error code, last stream id)
        self.goaway_at = None
        self.resets = {}            # sid -> error code
        self.responses = {}         # sid -> [(name, value)]
        self.ended = set()
        self.data_bytes = {}
        self.settings = {}
        self.settings_seen = False
        self.settings_acked = False
        self._block = None          # (sid, flags, bytes) while CONTINUATION is expected
        self.frames_in = 0

    def send(self, data):
        if self.send_failed:
            return False
        try:
            self.sock.sendall(data)
            return True
        except (OSError, ssl.SSLError):
            self.send_failed = True
            return False

    def start(self, settings=None, timeout=5.0):
        payload = b"".join(struct.pack("!HI", k, v) for k, v in (settings or {}).items())
        self.send(PREFACE + frame(SETTINGS, 0, 0, payload))
        ok = self.read_until(lambda: self.settings_seen and self.settings_acked, timeout)
        assert ok, f"no SETTINGS exchange with the server (eof={self.eof}, goaway={self.goaway})"

    def header_block(self, headers, never_index=False):
        import hpack
        if never_index:
            headers = [hpack.NeverIndexedHeaderTuple(k, v) for k, v in headers]
        return self.encoder.encode(headers)

    def request_headers(self, path="/", method="GET", authority="t", scheme=None, extra=()):
        scheme = scheme or ("https" if isinstance(self.sock, ssl.SSLSocket) else "http")
        return [(":method", method), (":scheme", scheme), (":authority", authority),
                (":path", path)] + list(extra)

    def headers_frame(self, sid, headers, end_stream=True, end_headers=True):
        flags = (END_STREAM if end_stream else 0) | (END_HEADERS if end_headers else 0)
        return frame(HEADERS, flags, sid, self.header_block(headers))

    def rst_frame(self, sid, code=CANCEL):
        return frame(RST_STREAM, 0, sid, struct.pack("!I", code))

    @property
    def closed(self):
        return self.eof or self.send_failed

    def _recv(self, timeout):
        if self.eof:
            return False
        try:
            if not (isinstance(self.sock, ssl.SSLSocket) and self.sock.pending()):
                ready, _, _ = select.select([self.sock], [], [], max(0.0, timeout))
                if not ready:
                    return False
            self.sock.settimeout(1.0)
            data = self.sock.recv(1 << 20)
        except (socket.timeout, ssl.SSLWantReadError):
            return False
        except (OSError, ssl.SSLError):
            data = b""
        if not data:
            self.eof = True
            self.eof_at = time.monotonic()
            return False
        self.buf += data
        self._parse()
        return True

    def _parse(self):
        while len(self.buf) >= 9:
            length = int.from_bytes(self.buf[:3], "big")
            if len(self.buf) < 9 + length:
                return
            ftype, flags = self.buf[3], self.buf[4]
            sid = int.from_bytes(self.buf[5:9], "big") & 0x7FFFFFFF
            payload = self.buf[9:9 + length]
            self.buf = self.buf[9 + length:]
            self.frames_in += 1
            self._on_frame(ftype, flags, sid, payload)

    def _on_frame(self, ftype, flags, sid, payload):
        if ftype == SETTINGS:
            if flags & ACK:
                self.settings_acked = True
            else:
                for i in range(0, len(payload) - 5, 6):
                    k, v = struct.unpack("!HI", payload[i:i + 6])
                    self.settings[k] = v
                self.settings_seen = True
                self.send(frame(SETTINGS, ACK, 0))
        elif ftype == PING and not flags & ACK:
            self.send(frame(PING, ACK, 0, payload))
        elif ftype == GOAWAY:
            last, code = struct.unpack("!II", payload[:8])
            self.goaway = (code, last & 0x7FFFFFFF)
            self.goaway_at = self.goaway_at or time.monotonic()
        elif ftype == RST_STREAM:
            self.resets[sid] = struct.unpack("!I", payload[:4])[0]
        elif ftype == HEADERS:
            body = payload
            if flags & PADDED:
                pad = body[0]
                body = body[1:len(body) - pad]
            if flags & PRIORITY_FLAG:
                body = body[5:]
            self._block = (sid, flags, body)
            if flags & END_HEADERS:
                self._finish_block()
        elif ftype == CONTINUATION and self._block:
            s, f, b = self._block
            self._block = (s, f | (flags & END_HEADERS), b + payload)
            if flags & END_HEADERS:
                self._finish_block()
        elif ftype == DATA:
            self.data_bytes[sid] = self.data_bytes.get(sid, 0) + len(payload)
            if payload:
                inc = struct.pack("!I", len(payload))
                self.send(frame(WINDOW_UPDATE, 0, 0, inc) + frame(WINDOW_UPDATE, 0, sid, inc))
            if flags & END_STREAM:
                self.ended.add(sid)

    def _finish_block(self):
        sid, flags, block = self._block
        self._block = None
        headers = self.decoder.decode(block)
        if sid in self.responses and not any(k == ":status" for k, _ in headers):
            pass  # trailers
        elif any(k == ":status" and not v.startswith("1") for k, v in headers):
            self.responses[sid] = headers
        if flags & END_STREAM:
            self.ended.add(sid)

    def status(self, sid):
        for k, v in self.responses.get(sid, ()):
            if k == ":status":
                return int(v)
        return None

    def poll(self):
        """Handles whatever already arrived, without waiting."""
        while self._recv(0):
            pass

    def read_until(self, predicate, timeout):
        deadline = time.monotonic() + timeout
        while not predicate():
            left = deadline - time.monotonic()
            if left <= 0 or self.eof:
                return predicate()
            self._recv(min(left, 0.2))
        return True

    def wait_closed(self, timeout):
        """True once the server closed the connection (EOF/reset)."""
        return self.read_until(lambda: self.eof, timeout)

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


# ==========================================================================
# curl and h2load

class CurlResult(NamedTuple):
    returncode: int
    http_version: Optional[str]
    status: Optional[int]
    body: bytes
    stderr: str


def curl(url, *args, timeout=15):
    """Runs curl -sS; returns the negotiated HTTP version ("1.1", "2") and status."""
    out = subprocess.run([CURL, "-sS", "--max-time", str(int(timeout) - 2), "-o", "-",
                          "-w", "\n@@CURL@@ %{http_version} %{http_code}", *args, url],
                         capture_output=True, timeout=timeout)
    body, _, meta = out.stdout.rpartition(b"\n@@CURL@@ ")
    parts = meta.decode().split()
    version = parts[0] if parts else None
    status = int(parts[1]) if len(parts) > 1 and parts[1].isdigit() and parts[1] != "000" else None
    return CurlResult(out.returncode, version, status, body, out.stderr.decode(errors="replace"))


class H2loadResult(NamedTuple):
    returncode: int
    output: str
    total: int
    succeeded: int
    failed: int
    errored: int
    status_2xx: int
    status_other: int


def h2load(url, n=2000, c=2, m=50, timeout=60):
    r = subprocess.run([H2LOAD, "-n", str(n), "-c", str(c), "-m", str(m), url],
                       capture_output=True, text=True, timeout=timeout)
    out = r.stdout + r.stderr
    req = re.search(r"requests: (\d+) total, \d+ started, \d+ done, (\d+) succeeded, (\d+) failed, "
                    r"(\d+) errored", out)
    codes = re.search(r"status codes: (\d+) 2xx, (\d+) 3xx, (\d+) 4xx, (\d+) 5xx", out)
    if not req or not codes:
        return H2loadResult(r.returncode, out, 0, 0, 0, 0, 0, 0)
    return H2loadResult(r.returncode, out, int(req.group(1)), int(req.group(2)), int(req.group(3)),
                        int(req.group(4)), int(codes.group(1)),
                        int(codes.group(2)) + int(codes.group(3)) + int(codes.group(4)))


# ==========================================================================
# RSS sampling

class RssSampler(threading.Thread):
    """Peak VmRSS (KiB) of a pid while running."""

    def __init__(self, pid):
        super().__init__(daemon=True)
        self.pid = pid
        self.peak = 0
        self.done = threading.Event()

    @staticmethod
    def rss(pid):
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
        return 0

    def run(self):
        while not self.done.is_set():
            try:
                self.peak = max(self.peak, self.rss(self.pid))
            except OSError:
                return
            self.done.wait(0.05)

    def stop(self):
        self.done.set()
        self.join(2)
        return self.peak


# ==========================================================================
# gRPC: a tiny service compiled at test time

PROTO = """\
syntax = "proto3";

package orders.v1;

message EchoRequest {
  string message = 1;
  int32 delay_ms = 2;     // Slow: sleep this long first
  int32 code = 3;         // Fail: the status code to answer with
  string detail = 4;      // Fail: its message
}

message EchoReply {
  string message = 1;
  map<string, string> metadata = 2;   // the request metadata the backend received
  int32 seq = 3;
}

service Orders {
  rpc Echo(EchoRequest) returns (EchoReply);
  rpc Chat(stream EchoRequest) returns (stream EchoReply);
  rpc WithTrailers(EchoRequest) returns (EchoReply);
  rpc Fail(EchoRequest) returns (EchoReply);
  rpc Slow(EchoRequest) returns (EchoReply);
}
"""

GRPC_SERVICE = "orders.v1.Orders"
GRPC_PREFIX = f"/{GRPC_SERVICE}/"
TRAILER_TEXT = ("x-trailer-one", "alpha")
TRAILER_BIN = ("x-blob-bin", b"\x00\x01\xfe\xff")
FAIL_TRAILER = ("x-fail-reason", "requested")

_compile_lock = threading.Lock()


def compile_proto(directory):
    """Compiles PROTO into directory with grpc_tools.protoc and imports the
    modules: SimpleNamespace(pb2, pb2_grpc)."""
    directory = Path(directory)
    proto = directory / "gatehouse_orders.proto"
    proto.write_text(PROTO)
    r = subprocess.run([sys.executable, "-m", "grpc_tools.protoc", f"-I{directory}",
                        f"--python_out={directory}", f"--grpc_python_out={directory}", str(proto)],
                       capture_output=True, text=True, timeout=120)
    if r.returncode != 0:
        raise AssertionError(f"protoc failed:\n{r.stdout}\n{r.stderr}")
    with _compile_lock:
        if str(directory) not in sys.path:
            sys.path.insert(0, str(directory))
        pb2 = importlib.import_module("gatehouse_orders_pb2")
        pb2_grpc = importlib.import_module("gatehouse_orders_pb2_grpc")
    return SimpleNamespace(pb2=pb2, pb2_grpc=pb2_grpc)


@pytest.fixture(scope="session")
def grpc_mods(tmp_path_factory):
    return compile_proto(tmp_path_factory.mktemp("grpc_proto"))


def _status_code(value):
    import grpc
    for code in grpc.StatusCode:
        if code.value[0] == value:
            return code
    return grpc.StatusCode.UNKNOWN


class GrpcBackend:
    """grpcio server for orders.v1.Orders on 127.0.0.1:<free port>: h2c
    (insecure port), or TLS with tls=(server Cert, client CA Cert or None,
    require_client_auth). Echo: message + metadata; Chat: one reply per
    message, seq counting; WithTrailers: trailing metadata TRAILER_TEXT and
    TRAILER_BIN; Fail: aborts with (code, detail) and FAIL_TRAILER; Slow:
    sleeps delay_ms. Records calls (method, metadata)."""

    def __init__(self, mods, tls=None):
        import grpc
        self.mods = mods
        self.lock = threading.Lock()
        self.calls = []
        self.server = grpc.server(futures.ThreadPoolExecutor(max_workers=16),
                                  options=[("grpc.so_reuseport", 0)])
        mods.pb2_grpc.add_OrdersServicer_to_server(self._servicer(), self.server)
        if tls is None:
            self.port = self.server.add_insecure_port("127.0.0.1:0")
        else:
            cert, client_ca, require = tls
            creds = grpc.ssl_server_credentials(
                [(cert.key_pem(), cert.cert_pem())],
                root_certificates=client_ca.cert_pem() if client_ca else None,
                require_client_auth=require)
            self.port = self.server.add_secure_port("127.0.0.1:0", creds)
        assert self.port, "grpc server could not bind"
        self.server.start()

    @property
    def addr(self):
        return f"127.0.0.1:{self.port}"

    def _record(self, method, context):
        md = {}
        for k, v in context.invocation_metadata():
            if not k.endswith("-bin"):
                md[k] = v if k not in md else md[k] + ", " + v
        with self.lock:
            self.calls.append((method, md))
        return md

    def call_count(self, method=None):
        with self.lock:
            return sum(1 for m, _ in self.calls if method is None or m == method)

    def _servicer(self):
        pb2, pb2_grpc = self.mods.pb2, self.mods.pb2_grpc
        backend = self

        class Servicer(pb2_grpc.OrdersServicer):
            def Echo(self, request, context):
                md = backend._record("Echo", context)
                return pb2.EchoReply(message=request.message, metadata=md)

            def Chat(self, request_iterator, context):
                backend._record("Chat", context)
                for seq, req in enumerate(request_iterator, 1):
                    yield pb2.EchoReply(message=req.message, seq=seq)

            def WithTrailers(self, request, context):
                backend._record("WithTrailers", context)
                context.set_trailing_metadata((TRAILER_TEXT, TRAILER_BIN))
                return pb2.EchoReply(message=request.message)

            def Fail(self, request, context):
                backend._record("Fail", context)
                context.set_trailing_metadata((FAIL_TRAILER,))
                context.abort(_status_code(request.code), request.detail)

            def Slow(self, request, context):
                backend._record("Slow", context)
                end = time.monotonic() + request.delay_ms / 1000
                while time.monotonic() < end and context.is_active():
                    time.sleep(0.02)
                return pb2.EchoReply(message=request.message)

        return Servicer()

    def stop(self):
        self.server.stop(grace=0)


@pytest.fixture
def grpc_backend(grpc_mods):
    made = []

    def start(tls=None):
        b = GrpcBackend(grpc_mods, tls)
        made.append(b)
        return b

    yield start
    for b in made:
        b.stop()


GRPC_CHANNEL_OPTIONS = [("grpc.enable_retries", 0), ("grpc.max_reconnect_backoff_ms", 500),
                        ("grpc.initial_reconnect_backoff_ms", 100)]


@pytest.fixture
def grpc_channel():
    """grpc_channel(port, tls=None | (ca Cert, server_name, client Cert or None))
    -> a channel to 127.0.0.1:port (h2c prior knowledge when tls is None);
    all closed at teardown."""
    import grpc
    made = []

    def open_channel(port, tls=None):
        target = f"127.0.0.1:{port}"
        if tls is None:
            ch = grpc.insecure_channel(target, options=GRPC_CHANNEL_OPTIONS)
        else:
            ca, server_name, client = tls
            creds = grpc.ssl_channel_credentials(
                root_certificates=ca.cert_pem(),
                private_key=client.key_pem() if client else None,
                certificate_chain=client.cert_pem() if client else None)
            ch = grpc.secure_channel(target, creds, options=GRPC_CHANNEL_OPTIONS + [
                ("grpc.ssl_target_name_override", server_name)])
        made.append(ch)
        return ch

    yield open_channel
    for ch in made:
        ch.close()


def grpc_stub(mods, channel):
    return mods.pb2_grpc.OrdersStub(channel)


# Gateway config for gRPC tests: one route for the Orders service to an h2c
# upstream, with consumers for key_auth.
API_KEY = "k-acme-123456"
BLOCKED_KEY = "k-blocked-123456"
CONSUMERS = [{"name": "acme", "groups": ["partners"], "api_keys": [API_KEY]},
             {"name": "blocked", "groups": ["banned"], "api_keys": [BLOCKED_KEY]}]


def grpc_config(target, plugins=None, upstream_extra=None, extra=None):
    up = {"targets": [target if isinstance(target, str) else target.addr], "protocol": "h2c"}
    up.update(upstream_extra or {})
    route = {"name": "orders", "match": {"path_prefix": GRPC_PREFIX}, "upstream": "orders"}
    if plugins:
        route["plugins"] = plugins
    cfg = {"upstreams": {"orders": up}, "consumers": CONSUMERS, "routes": [route]}
    cfg.update(extra or {})
    return cfg


@pytest.fixture
def gb(grpc_backend):
    """A started GrpcBackend (h2c)."""
    return grpc_backend()


# --------------------------------------------------------------------------
# gRPC wire framing and gRPC-Web

def grpc_frame(message_bytes, flags=0):
    return bytes([flags]) + struct.pack("!I", len(message_bytes)) + message_bytes


def grpc_frames(data):
    """[(flags, payload)] of length-prefixed frames; raises on a torn frame."""
    out = []
    pos = 0
    while pos < len(data):
        if len(data) - pos < 5:
            raise AssertionError(f"torn gRPC frame header at {pos}: {data[pos:]!r}")
        flags = data[pos]
        n = struct.unpack("!I", data[pos + 1:pos + 5])[0]
        if len(data) - pos - 5 < n:
            raise AssertionError(f"torn gRPC frame at {pos}: want {n}, have {len(data) - pos - 5}")
        out.append((flags, bytes(data[pos + 5:pos + 5 + n])))
        pos += 5 + n
    return out


def grpc_web_trailers(payload):
    """{lower-case name: value} of a gRPC-Web trailer frame payload."""
    out = {}
    for line in payload.decode("latin-1").split("\r\n"):
        if not line.strip():
            continue
        name, _, value = line.partition(":")
        out[name.strip().lower()] = value.strip()
    return out


def b64_segments_decode(text):
    """Decodes base64 that may be several padded segments concatenated
    (how gRPC-Web-text servers may stream)."""
    if isinstance(text, bytes):
        text = text.decode("ascii")
    text = re.sub(r"\s", "", text)
    out = bytearray()
    for seg in re.findall(r"[^=]*=*", text):
        if seg:
            out += base64.b64decode(seg + "=" * (-len(seg) % 4))
    return bytes(out)


def grpc_request_headers(metadata=()):
    return [("content-type", "application/grpc"), ("te", "trailers")] + list(metadata)
