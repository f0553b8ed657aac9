"""TLS listeners: `listeners:` with `tls:` (certificates picked by SNI, first
as default), TLS 1.2 and 1.3 only (min_version), ALPN, session resumption,
plaintext refused on a TLS port, X-Forwarded-Proto, certificate reload on
SIGHUP, and TLS config errors as FILE:LINE:COL."""

import re
import shutil
import signal
import socket
import ssl
import subprocess
import time

import pytest
import requests

from conftest import (GATEHOUSE_BIN, free_port, port_accepts, proxy_config, raw_request,
                      require_binary, wait_for)
from tls_support import (API_NAME, OTHER_NAME, WILDCARD_SUFFIX, CertFactory, TlsConn,  # noqa: F401
                         copy_cert, echoed_headers, https_request, listener, pki, s_client,
                         tls_block, tls_listener, with_listeners)


@pytest.fixture
def echo(backend):
    return backend("echo")


def tls_gateway(gateway, upstream, tls, *, extra=None, **kwargs):
    """A gateway proxying everything to `upstream`, with the default plain
    `listen:` and one TLS listener (gw.tls_port) using the `tls` block."""
    cfg = proxy_config([upstream], extra=extra)
    return gateway(with_listeners(cfg, listener(tls=tls)), **kwargs)


def new_conn(gw, **kwargs):
    kwargs.setdefault("server_name", API_NAME)
    return TlsConn(gw.tls_port, **kwargs)


# --------------------------------------------------------------------------
# proxying over TLS

def test_https_request_is_proxied_and_backend_sees_forwarded_proto_https(gateway, echo, pki):
    gw = tls_gateway(gateway, echo, tls_block([pki.api]))
    resp, info = https_request(gw.tls_port, "GET", "/tls/a?x=1", server_name=API_NAME, ca=pki.ca)
    seen = echoed_headers(resp)
    assert seen.get("x-forwarded-proto") == "https", seen
    assert resp.json()["path"] == "/tls/a"
    assert resp.headers.get("x-request-id")
    assert info["peer_cn"] == API_NAME
    # the plain listener still says http
    plain = gw.get("/plain/a")
    assert echoed_headers(plain).get("x-forwarded-proto") == "http"
    entries = gw.access_log(2)
    assert sorted(e["path"] for e in entries) == ["/plain/a", "/tls/a"], entries
    assert all(e["status"] == 200 for e in entries)


def test_requests_library_verifies_the_chain_and_ip_san(gateway, echo, pki):
    gw = tls_gateway(gateway, echo, tls_block([pki.api]))
    r = requests.get(f"https://127.0.0.1:{gw.tls_port}/verified", verify=pki.ca.cert, timeout=10)
    assert r.status_code == 200
    assert r.json()["headers"]["x-forwarded-proto"] == "https"


def test_keep_alive_over_tls_serves_several_requests_on_one_connection(gateway, echo, pki):
    gw = tls_gateway(gateway, echo, tls_block([pki.api]))
    with new_conn(gw, ca=pki.ca) as conn:
        for i in range(3):
            resp = conn.request("GET", f"/ka/{i}")
            assert resp.status == 200, resp
            assert resp.json()["path"] == f"/ka/{i}"
        assert not conn.is_closed(0.2)


def test_large_bodies_stream_both_ways_over_tls(gateway, echo, pki):
    gw = tls_gateway(gateway, echo, tls_block([pki.api]))
    upload = 8 << 20
    download = 16 << 20
    with new_conn(gw, ca=pki.ca, timeout=30) as conn:
        resp = conn.request("POST", "/up", body=b"u" * upload, timeout=30)
        assert resp.status == 200, resp
        assert resp.json()["body_bytes"] == upload
        resp = conn.request("GET", f"/down?size={download}", timeout=30)
        assert resp.status == 200
        assert len(resp.body) == download and resp.body.count(b"x") == download


def test_listen_shorthand_and_listeners_serve_side_by_side(gateway, echo, pki, tls_listener):
    gw = gateway(with_listeners(proxy_config([echo]), tls_listener(), listener()))
    assert len(gw.plain_ports) == 2 and len(gw.tls_ports) == 1
    for port in gw.plain_ports:
        r = requests.get(f"http://127.0.0.1:{port}/p", timeout=10)
        assert r.status_code == 200 and r.json()["headers"]["x-forwarded-proto"] == "http"
    resp, _ = https_request(gw.tls_port, "GET", "/t", server_name=API_NAME, ca=pki.ca)
    assert echoed_headers(resp)["x-forwarded-proto"] == "https"


def test_listeners_alone_without_listen_shorthand(gateway, echo, pki):
    gw = gateway(with_listeners(proxy_config([echo]), listener(), listener(tls=tls_block([pki.api]))),
                 listen=False)
    assert gw.get("/only-listeners").status_code == 200
    resp, _ = https_request(gw.tls_port, "GET", "/only-listeners", server_name=API_NAME, ca=pki.ca)
    assert resp.status == 200


# --------------------------------------------------------------------------
# versions

@pytest.mark.parametrize("version,expected", [("1.2", "TLSv1.2"), ("1.3", "TLSv1.3")])
def test_tls12_and_tls13_are_accepted_by_default(gateway, echo, pki, version, expected):
    gw = tls_gateway(gateway, echo, tls_block([pki.api]))
    with new_conn(gw, ca=pki.ca, min_version=version, max_version=version) as conn:
        assert conn.version == expected
        assert conn.request("GET", "/v").status == 200
    r = s_client(gw.tls_port, server_name=API_NAME, version=version, ca=pki.ca)
    assert r.handshake_ok and r.protocol == expected, r.output[-2000:]
    assert r.http_status == 200


@pytest.mark.parametrize("version", ["1.0", "1.1"])
def test_tls10_and_tls11_are_refused(gateway, recorder, pki, version):
    rec = recorder()
    gw = tls_gateway(gateway, rec, tls_block([pki.api]))
    # DEFAULT@SECLEVEL=0 so that the client really offers the old version
    r = s_client(gw.tls_port, server_name=API_NAME, version=version)
    assert not r.handshake_ok, f"TLS {version} was negotiated:\n{r.output[-2000:]}"
    assert r.http_status is None
    # the same client offering TLS 1.2 gets through: the refusal is the version
    ok = s_client(gw.tls_port, server_name=API_NAME, version="1.2")
    assert ok.handshake_ok, ok.output[-2000:]
    rec.settle()
    assert b"GET / " in rec.data and rec.connections == 1


def test_min_version_13_refuses_tls12(gateway, echo, pki):
    gw = tls_gateway(gateway, echo, tls_block([pki.api], min_version="1.3"))
    with pytest.raises((ssl.SSLError, OSError)):
        new_conn(gw, ca=pki.ca, max_version="1.2").close()
    r = s_client(gw.tls_port, server_name=API_NAME, version="1.2")
    assert not r.handshake_ok, r.output[-2000:]
    with new_conn(gw, ca=pki.ca) as conn:
        assert conn.version == "TLSv1.3"
        assert conn.request("GET", "/v13").status == 200


def test_min_version_12_explicit_accepts_tls12(gateway, echo, pki):
    gw = tls_gateway(gateway, echo, tls_block([pki.api], min_version="1.2"))
    with new_conn(gw, ca=pki.ca, max_version="1.2") as conn:
        assert conn.version == "TLSv1.2"
        assert conn.request("GET", "/v12").status == 200


# --------------------------------------------------------------------------
# SNI and ALPN

SNI_CASES = {
    "exact-first": (API_NAME, "api"),
    "exact-second": (OTHER_NAME, "other"),
    "wildcard": ("svc" + WILDCARD_SUFFIX, "other"),
    "no-sni": (None, "api"),
    "unknown-name": ("nomatch.example.test", "api"),
}


@pytest.mark.parametrize("case", list(SNI_CASES))
def test_sni_picks_the_certificate_by_name_else_the_first(gateway, echo, pki, case):
    server_name, want = SNI_CASES[case]
    gw = tls_gateway(gateway, echo, tls_block([pki.api, pki.other]))
    with TlsConn(gw.tls_port, server_name=server_name, ca=pki.ca, check_hostname=False) as conn:
        assert conn.peer_fingerprint == getattr(pki, want).fingerprint, \
            f"SNI {server_name!r}: got certificate CN={conn.peer_cn}, expected {want}"
        assert conn.request("GET", "/sni").status == 200
    r = s_client(gw.tls_port, server_name=server_name, ca=pki.ca)
    assert r.subject_cn == getattr(pki, want).cn, r.output[-2000:]


def test_default_certificate_is_the_first_listed(gateway, echo, pki):
    gw = tls_gateway(gateway, echo, tls_block([pki.other, pki.api]))
    with TlsConn(gw.tls_port, ca=pki.ca) as conn:
        assert conn.peer_fingerprint == pki.other.fingerprint
    with TlsConn(gw.tls_port, server_name=API_NAME, ca=pki.ca) as conn:
        assert conn.peer_fingerprint == pki.api.fingerprint


@pytest.mark.parametrize("offer,expected", [
    pytest.param(["h2", "http/1.1"], "h2", id="h2-first"),
    pytest.param(["http/1.1"], "http/1.1", id="http11-only"),
    pytest.param(["http/1.1", "h2"], None, id="http11-first"),
])
def test_alpn_negotiates_h2_and_http11(gateway, echo, pki, offer, expected):
    gw = tls_gateway(gateway, echo, tls_block([pki.api]))
    with new_conn(gw, ca=pki.ca, alpn=offer) as conn:
        if expected is None:  # either is fine: the server picks by its preference
            assert conn.alpn in ("h2", "http/1.1")
        else:
            assert conn.alpn == expected
        if conn.alpn == "http/1.1":
            assert conn.request("GET", "/alpn").status == 200
    r = s_client(gw.tls_port, server_name=API_NAME, alpn=",".join(offer))
    assert r.alpn == (expected or r.alpn) and r.alpn in ("h2", "http/1.1"), r.output[-2000:]


def test_no_alpn_offered_speaks_http11(gateway, echo, pki):
    gw = tls_gateway(gateway, echo, tls_block([pki.api]))
    with new_conn(gw, ca=pki.ca) as conn:
        assert conn.alpn is None
        assert conn.request("GET", "/no-alpn").status == 200


# --------------------------------------------------------------------------
# session resumption

@pytest.mark.parametrize("version", ["1.2", "1.3"])
def test_sessions_are_resumed(gateway, echo, pki, tmp_path, version):
    gw = tls_gateway(gateway, echo, tls_block([pki.api]))
    sess = tmp_path / f"session-{version}.pem"
    first = s_client(gw.tls_port, server_name=API_NAME, version=version, ca=pki.ca, sess_out=sess)
    assert first.handshake_ok and not first.reused, first.output[-2000:]
    assert first.http_status == 200
    assert sess.exists() and sess.stat().st_size > 0, "s_client saved no session"
    second = s_client(gw.tls_port, server_name=API_NAME, version=version, ca=pki.ca, sess_in=sess)
    assert second.handshake_ok, second.output[-2000:]
    assert second.reused, f"TLS {version} session was not resumed:\n{second.output[-2500:]}"
    assert second.http_status == 200


# --------------------------------------------------------------------------
# plaintext on a TLS port

def test_plaintext_http_on_a_tls_port_gets_no_http_response_and_never_reaches_the_backend(
        gateway, recorder, pki):
    rec = recorder()
    gw = tls_gateway(gateway, rec, tls_block([pki.api]))
    resp = raw_request(gw.tls_port, b"GET /plain-on-tls HTTP/1.1\r\nHost: t\r\n\r\n",
                       timeout=3, close_wait=3)
    assert resp.status_line is None, f"an HTTP response came back: {resp.status_line!r}"
    assert resp.closed, "the gateway kept the connection open"
    rec.settle()
    assert rec.bytes == 0, f"the backend received {rec.data[:200]!r}"
    # the listener is fine afterwards
    resp, _ = https_request(gw.tls_port, "GET", "/after", server_name=API_NAME, ca=pki.ca)
    assert resp.status == 200


def test_a_client_that_aborts_the_handshake_does_not_disturb_others(gateway, echo, pki):
    gw = tls_gateway(gateway, echo, tls_block([pki.api]))
    for _ in range(3):
        with socket.create_connection(("127.0.0.1", gw.tls_port), timeout=3) as s:
            s.sendall(b"\x16\x03\x01\x00\x05\x01\x00")  # a torn ClientHello
    resp, _ = https_request(gw.tls_port, "GET", "/ok", server_name=API_NAME, ca=pki.ca)
    assert resp.status == 200


# --------------------------------------------------------------------------
# TLS records and TCP segments: however the client cuts its bytes

class RecordConn:
    """A TLS client over a memory BIO: the test decides which ciphertext
    bytes go out in which send(), so records can be split across segments
    or several records (requests) packed into one."""

    def __init__(self, port, ca):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=5)
        ctx = ssl.create_default_context(cafile=ca.cert)
        self.incoming, self.outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
        self.obj = ctx.wrap_bio(self.incoming, self.outgoing, server_hostname=API_NAME)
        self.plain = b""
        while True:
            try:
                self.obj.do_handshake()
                break
            except ssl.SSLWantReadError:
                self.sock.sendall(self.outgoing.read())
                self.incoming.write(self.sock.recv(65536))
        self.sock.sendall(self.outgoing.read())

    def records(self, *chunks):
        """The ciphertext of each chunk written as its own record(s)."""
        for chunk in chunks:
            self.obj.write(chunk)
        return self.outgoing.read()

    def response(self, timeout=5.0):
        """The next response's head and body (Content-Length framed)."""
        deadline = time.monotonic() + timeout
        while True:
            head_end = self.plain.find(b"\r\n\r\n")
            if head_end >= 0:
                head = self.plain[:head_end].decode("latin-1")
                m = re.search(r"(?im)^content-length:\s*(\d+)", head)
                total = head_end + 4 + (int(m.group(1)) if m else 0)
                if len(self.plain) >= total:
                    body = self.plain[head_end + 4:total]
                    self.plain = self.plain[total:]
                    return head, body
            left = deadline - time.monotonic()
            assert left > 0, f"no complete response, got {self.plain[:200]!r}"
            self.sock.settimeout(left)
            data = self.sock.recv(65536)
            assert data, f"connection closed, got {self.plain[:200]!r}"
            self.incoming.write(data)
            try:
                while True:
                    self.plain += self.obj.read(65536)
            except ssl.SSLWantReadError:
                pass

    def close(self):
        self.sock.close()


def _cpu_ticks(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])  # utime + stime


def _get(path):
    return f"GET {path} HTTP/1.1\r\nHost: t\r\n\r\n".encode()


def test_a_record_split_across_segments_waits_quietly_for_the_rest(gateway, echo, pki):
    gw = tls_gateway(gateway, echo, tls_block([pki.api]))
    conn = RecordConn(gw.tls_port, pki.ca)
    try:
        for path in ("/split/1", "/split/2"):  # the first request and one between requests
            wire = conn.records(_get(path))
            conn.sock.sendall(wire[:7])  # the record header and two bytes
            before = _cpu_ticks(gw.pid)
            time.sleep(0.5)
            spent = _cpu_ticks(gw.pid) - before
            # waiting for the rest of a record costs nothing (a spin would
            # burn the whole 50 ticks)
            assert spent <= 10, f"{spent} ticks of CPU while a record was half sent"
            conn.sock.sendall(wire[7:])
            head, body = conn.response()
            assert head.startswith("HTTP/1.1 200"), head
            assert f'"path":"{path}"'.encode() in body.replace(b" ", b""), body
    finally:
        conn.close()


def test_requests_packed_into_one_segment_are_all_answered(gateway, echo, pki):
    gw = tls_gateway(gateway, echo, tls_block([pki.api]))
    conn = RecordConn(gw.tls_port, pki.ca)
    try:
        # three requests, each its own record, in one send; then a request
        # cut into many tiny records
        conn.sock.sendall(conn.records(_get("/packed/1"), _get("/packed/2"), _get("/packed/3")))
        for i in (1, 2, 3):
            head, body = conn.response()
            assert head.startswith("HTTP/1.1 200"), head
            assert f'"path":"/packed/{i}"'.encode() in body.replace(b" ", b""), body
        req = _get("/tiny")
        conn.sock.sendall(conn.records(*[req[i:i + 3] for i in range(0, len(req), 3)]))
        head, body = conn.response()
        assert head.startswith("HTTP/1.1 200"), head
        assert b"/tiny" in body
    finally:
        conn.close()


# --------------------------------------------------------------------------
# SIGHUP: certificate reload

def test_sighup_reloads_certificates_new_connections_get_the_new_one(gateway, echo, pki, tmp_path):
    live = copy_cert(pki.api, tmp_path / "live", "api")
    fresh = CertFactory(tmp_path / "fresh").server("api-v2", pki.ca, [API_NAME, "localhost"],
                                                   cn="api-v2.example.test")
    gw = tls_gateway(gateway, echo, tls_block([live]))
    old = new_conn(gw, ca=pki.ca)
    try:
        assert old.request("GET", "/before").status == 200
        assert old.peer_fingerprint == pki.api.fingerprint
        shutil.copyfile(fresh.cert, live.cert)
        shutil.copyfile(fresh.key, live.key)
        gw.send_signal(signal.SIGHUP)

        def served_fingerprint():
            try:
                with new_conn(gw, ca=pki.ca) as c:
                    return c.peer_fingerprint
            except (ssl.SSLError, OSError):
                return None

        got = wait_for(lambda: served_fingerprint() == fresh.fingerprint, timeout=5)
        assert got, "new connections still get the old certificate after SIGHUP"
        with new_conn(gw, ca=pki.ca) as c:
            assert c.peer_cn == "api-v2.example.test"
            assert c.request("GET", "/after").status == 200
        # the keep-alive connection opened before the reload still works
        resp = old.request("GET", "/old-conn-after-reload")
        assert resp.status == 200, resp
        assert resp.json()["path"] == "/old-conn-after-reload"
    finally:
        old.close()
    assert gw.proc.poll() is None


BAD_RELOADS = {
    "garbage-pem": lambda live, pki: open(live.cert, "w").write(
        "-----BEGIN CERTIFICATE-----\nbm90IGEgY2VydGlmaWNhdGU=!!\n-----END CERTIFICATE-----\n"),
    "key-not-matching": lambda live, pki: shutil.copyfile(pki.other.key, live.key),
}


@pytest.mark.parametrize("case", list(BAD_RELOADS))
def test_sighup_with_a_bad_certificate_keeps_the_old_one_and_names_the_file(
        gateway, echo, pki, tmp_path, case):
    live = copy_cert(pki.api, tmp_path / "live", "api")
    gw = tls_gateway(gateway, echo, tls_block([live]))
    with new_conn(gw, ca=pki.ca) as c:
        assert c.peer_fingerprint == pki.api.fingerprint
    BAD_RELOADS[case](live, pki)
    gw.send_signal(signal.SIGHUP)
    names = (live.cert,) if case == "garbage-pem" else (live.cert, live.key)
    logged = wait_for(lambda: any(n in gw.stderr() for n in names), timeout=5)
    assert logged, f"no stderr line naming {names}:\n{gw.stderr()[-2000:]}"
    line = next(l for l in gw.stderr().splitlines() if any(n in l for n in names))
    assert line.strip(), line
    assert gw.proc.poll() is None, "the gateway died on a bad reload"
    with new_conn(gw, ca=pki.ca) as c:
        assert c.peer_fingerprint == pki.api.fingerprint, "the old certificate was not kept"
        assert c.request("GET", "/still-serving").status == 200


# --------------------------------------------------------------------------
# relative paths and config errors

def test_relative_certificate_paths_are_relative_to_the_config_file(gateway, echo, pki, tmp_path):
    certs = tmp_path / "certs"
    copy_cert(pki.api, certs, "api")
    copy_cert(pki.other, certs, "other")
    tls = {"certificates": [{"cert": "certs/api.crt", "key": "certs/api.key"},
                            {"cert": "certs/other.crt", "key": "certs/other.key"}]}
    gw = gateway(with_listeners(proxy_config([echo]), listener(tls=tls)))
    r = subprocess.run([GATEHOUSE_BIN, "validate", "-c", gw.config_path], capture_output=True,
                       text=True, timeout=10, cwd="/")
    assert r.returncode == 0, r.stderr
    with TlsConn(gw.tls_port, server_name=OTHER_NAME, ca=pki.ca) as c:
        assert c.peer_fingerprint == pki.other.fingerprint
        assert c.request("GET", "/rel").status == 200


def _config_text(plain_port, tls_port, tls_lines):
    return (f"listen: 127.0.0.1:{plain_port}\n"
            "workers: 1\n"
            "access_log: off\n"
            "listeners:\n"
            f"  - listen: 127.0.0.1:{tls_port}\n"
            "    tls:\n"
            f"{tls_lines}"
            "upstreams:\n"
            "  svc:\n"
            "    targets:\n"
            "      - 127.0.0.1:9001\n"
            "routes:\n"
            "  - name: all\n"
            "    match:\n"
            "      path_prefix: /\n"
            "    upstream: svc\n")


def _certs_lines(cert, key):
    return ("      certificates:\n"
            f"        - cert: {cert}\n"
            f"          key: {key}\n")


# case -> (tls lines, substrings of the lines the error may point at, words of which the
# message must contain one)
def _bad_tls_cases(pki, tmp_path):
    ok = _certs_lines(pki.api.cert, pki.api.key)
    missing = str(tmp_path / "nowhere" / "missing.crt")
    return {
        "missing-cert-file": (_certs_lines(missing, pki.api.key), [missing],
                              ["missing.crt", "no such", "not found", "exist", "read", "open"]),
        "key-not-matching-cert": (_certs_lines(pki.api.cert, pki.other.key),
                                  [pki.other.key, pki.api.cert],
                                  ["match", "key"]),
        "min-version-1.1": (ok + '      min_version: "1.1"\n', ["min_version"],
                            ["min_version", "1.1", "1.2", "1.3", "version"]),
        "client-auth-without-client-ca": (ok + "      client_auth: required\n",
                                          ["client_auth", "tls:"], ["client_ca", "client_auth"]),
        "client-auth-maybe": (ok + f"      client_ca: {pki.clients_ca.cert}\n"
                              + "      client_auth: maybe\n", ["client_auth"],
                              ["client_auth", "maybe", "optional", "required"]),
    }


def _error_lines(stderr, path):
    return [(int(m.group(1)), int(m.group(2)), m.group(3)) for m in
            (re.match(re.escape(path) + r":(\d+):(\d+): (.+)$", l) for l in stderr.splitlines()) if m]


def _expected_lines(text, needles):
    lines = text.splitlines()
    return {i + 1 for i, l in enumerate(lines) if any(n in l for n in needles)}


CASE_NAMES = ["missing-cert-file", "key-not-matching-cert", "min-version-1.1",
              "client-auth-without-client-ca", "client-auth-maybe"]


@pytest.mark.parametrize("case", CASE_NAMES)
def test_validate_rejects_bad_tls_config_with_file_line_col(pki, tmp_path, case):
    require_binary(GATEHOUSE_BIN)
    tls_lines, needles, words = _bad_tls_cases(pki, tmp_path)[case]
    text = _config_text(18080, 18443, tls_lines)
    path = tmp_path / f"{case}.yaml"
    path.write_text(text)
    r = subprocess.run([GATEHOUSE_BIN, "validate", "-c", str(path)], capture_output=True, text=True,
                       timeout=10)
    assert r.returncode == 1, (r.returncode, r.stdout, r.stderr)
    errors = _error_lines(r.stderr, str(path))
    assert errors, f"no FILE:LINE:COL error:\n{r.stderr}"
    expected = _expected_lines(text, needles)
    hits = [(l, c, m) for l, c, m in errors if l in expected]
    assert hits, f"errors at lines {[e[:2] for e in errors]}, expected one of lines {sorted(expected)}:\n{r.stderr}"
    line, col, message = hits[0]
    assert 1 <= col <= len(text.splitlines()[line - 1]) + 1
    assert any(w in message.lower() for w in words), f"message should mention one of {words}: {message}"


def test_validate_accepts_a_good_tls_config(pki, tmp_path):
    require_binary(GATEHOUSE_BIN)
    text = _config_text(18080, 18443, _certs_lines(pki.api.cert, pki.api.key)
                        + '      min_version: "1.3"\n'
                        + f"      client_ca: {pki.clients_ca.cert}\n"
                        + "      client_auth: optional\n")
    path = tmp_path / "good.yaml"
    path.write_text(text)
    r = subprocess.run([GATEHOUSE_BIN, "validate", "-c", str(path)], capture_output=True, text=True,
                       timeout=10)
    assert r.returncode == 0, r.stderr


def test_run_refuses_a_bad_tls_config_and_never_listens(pki, tmp_path, procs):
    require_binary(GATEHOUSE_BIN)
    plain, tls = free_port(), free_port()
    text = _config_text(plain, tls, _certs_lines(pki.api.cert, pki.other.key))
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    proc = procs.spawn([GATEHOUSE_BIN, "run", "-c", str(path)], stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, stdin=subprocess.DEVNULL)
    try:
        out, err = proc.communicate(timeout=10)
    except subprocess.TimeoutExpired:
        pytest.fail("gatehouse run kept running with a key that does not match its certificate")
    assert proc.returncode == 1, (proc.returncode, err)
    expected = _expected_lines(text, [pki.api.cert, pki.other.key])
    errors = _error_lines(err.decode(), str(path))
    assert any(l in expected for l, _, _ in errors), \
        f"no FILE:LINE:COL error on lines {sorted(expected)}:\n{err.decode()}"
    assert not port_accepts(plain) and not port_accepts(tls)
