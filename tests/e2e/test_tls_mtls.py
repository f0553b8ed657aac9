"""Client certificates: listener `client_ca` + `client_auth: optional |
required`, and the `mtls_auth` plugin ({consumer_from: subject_cn | san_uri |
san_dns}) naming a consumer; identity headers as in docs/auth.md."""

import subprocess

import pytest

from conftest import GATEHOUSE_BIN, assert_problem, raw_request, require_binary
from tls_support import (ALICE_DNS, ALICE_URI, API_NAME, IDENTITY_HEADERS, H2Client,  # noqa: F401
                         TlsConn, client_context, echoed_headers, listener, pki, tls_attempt,
                         tls_block, with_listeners)


@pytest.fixture
def echo(backend):
    return backend("echo")


CONSUMERS = [
    {"name": "alice", "plan": "gold", "groups": ["staff", "ops"]},
    {"name": "bob"},
    {"name": ALICE_URI},
    {"name": ALICE_DNS},
]


def _route(name, prefix, plugins=None, upstream="svc"):
    r = {"name": name, "match": {"path_prefix": prefix}, "upstream": upstream}
    if plugins:
        r["plugins"] = plugins
    return r


def mtls_config(upstream, pki, client_auth="optional"):
    cfg = {
        "upstreams": {"svc": {"targets": [upstream.addr]}},
        "consumers": CONSUMERS,
        "routes": [
            _route("cn", "/cn/", [{"mtls_auth": {"consumer_from": "subject_cn"}}]),
            _route("uri", "/uri/", [{"mtls_auth": {"consumer_from": "san_uri"}}]),
            _route("dns", "/dns/", [{"mtls_auth": {"consumer_from": "san_dns"}}]),
            _route("open", "/open/"),
        ],
    }
    tls = tls_block([pki.api], client_ca=pki.clients_ca, client_auth=client_auth)
    return with_listeners(cfg, listener(tls=tls))


@pytest.fixture
def optional_gw(gateway, echo, pki):
    """Starts (in the test body: a refused config fails the test) a gateway
    with client_auth: optional."""
    return lambda: gateway(mtls_config(echo, pki, "optional"))


def get(gw, pki, path, cert=None, headers=None, **kwargs):
    """One GET over TLS presenting `cert` (a Cert or None)."""
    with TlsConn(gw.tls_port, server_name=API_NAME, ca=pki.ca, cert=cert, **kwargs) as conn:
        return conn.request("GET", path, headers)


def assert_401(resp):
    return assert_problem(resp.status, resp.headers, resp.body, 401)


# --------------------------------------------------------------------------
# client_auth: required

def test_required_refuses_a_client_without_certificate(gateway, recorder, pki):
    rec = recorder()
    gw = gateway(mtls_config(rec, pki, "required"))
    resp, err = tls_attempt(gw.tls_port, "/open/x", server_name=API_NAME, ca=pki.ca)
    assert resp is None, f"a client without certificate got {resp.status_line!r}"
    rec.settle()
    assert rec.bytes == 0


@pytest.mark.parametrize("which", ["rogue", "server_ca_alice"])
def test_required_refuses_a_certificate_not_signed_by_client_ca(gateway, recorder, pki, which):
    rec = recorder()
    gw = gateway(mtls_config(rec, pki, "required"))
    resp, err = tls_attempt(gw.tls_port, "/open/x", server_name=API_NAME, ca=pki.ca,
                            cert=getattr(pki, which))
    assert resp is None, f"a {which} certificate got {resp.status_line!r}"
    rec.settle()
    assert rec.bytes == 0


def test_required_accepts_a_verified_certificate(gateway, echo, pki):
    gw = gateway(mtls_config(echo, pki, "required"))
    resp = get(gw, pki, "/open/x", pki.alice)
    assert resp.status == 200, resp
    # a route without mtls_auth does not identify anyone
    assert "x-consumer" not in echoed_headers(resp)
    resp = get(gw, pki, "/cn/x", pki.alice)
    assert echoed_headers(resp).get("x-consumer") == "alice"


# --------------------------------------------------------------------------
# client_auth: optional

def test_optional_accepts_no_certificate_on_routes_without_mtls_auth(optional_gw, pki):
    gw = optional_gw()
    resp = get(gw, pki, "/open/x")
    assert resp.status == 200, resp


def test_optional_completes_the_handshake_with_an_unverifiable_certificate(optional_gw, pki):
    gw = optional_gw()
    resp = get(gw, pki, "/open/x", pki.rogue)
    assert resp.status == 200, resp
    assert "x-consumer" not in echoed_headers(resp)


# --------------------------------------------------------------------------
# mtls_auth

def test_mtls_auth_without_certificate_is_401(optional_gw, pki):
    gw = optional_gw()
    assert_401(get(gw, pki, "/cn/x"))


@pytest.mark.parametrize("which", ["rogue", "server_ca_alice"])
def test_mtls_auth_with_an_unverified_certificate_is_401(optional_gw, pki, which):
    gw = optional_gw()
    # same names as alice, but not signed by client_ca
    for path in ("/cn/x", "/uri/x", "/dns/x"):
        assert_401(get(gw, pki, path, getattr(pki, which)))


def test_mtls_auth_subject_cn_names_the_consumer_and_sets_identity_headers(optional_gw, pki):
    gw = optional_gw()
    resp = get(gw, pki, "/cn/x", pki.alice)
    seen = echoed_headers(resp)
    assert seen.get("x-consumer") == "alice"
    assert seen.get("x-auth-verified") == "true"
    assert seen.get("x-consumer-tier") == "gold"
    assert seen.get("x-user-id") == "alice"
    assert seen.get("x-user-role") == "staff,ops"
    assert "x-anonymous-consumer" not in seen
    resp = get(gw, pki, "/cn/y", pki.bob)
    seen = echoed_headers(resp)
    assert seen.get("x-consumer") == "bob" and seen.get("x-auth-verified") == "true"
    assert "x-consumer-tier" not in seen


def test_mtls_auth_verified_certificate_naming_no_consumer_is_401(optional_gw, pki):
    gw = optional_gw()
    assert_401(get(gw, pki, "/cn/x", pki.mallory))


def test_mtls_auth_san_uri(optional_gw, pki):
    gw = optional_gw()
    seen = echoed_headers(get(gw, pki, "/uri/x", pki.alice))
    assert seen.get("x-consumer") == ALICE_URI
    assert seen.get("x-auth-verified") == "true"
    # bob's CN is a consumer, his SAN URI is not: san_uri looks at the URI only
    assert_401(get(gw, pki, "/uri/x", pki.bob))


def test_mtls_auth_san_dns(optional_gw, pki):
    gw = optional_gw()
    seen = echoed_headers(get(gw, pki, "/dns/x", pki.alice))
    assert seen.get("x-consumer") == ALICE_DNS
    assert seen.get("x-auth-verified") == "true"
    assert_401(get(gw, pki, "/dns/x", pki.bob))


def test_client_sent_identity_headers_are_stripped(optional_gw, pki):
    gw = optional_gw()
    spoof = {h: "mallory" for h in IDENTITY_HEADERS}
    spoof["X-Auth-Verified"] = "true"
    seen = echoed_headers(get(gw, pki, "/cn/x", pki.bob, headers=spoof))
    assert seen.get("x-consumer") == "bob"
    assert seen.get("x-user-id") == "bob"
    assert "mallory" not in seen.values(), seen
    # and on a route without auth, nothing of it arrives
    seen = echoed_headers(get(gw, pki, "/open/x", pki.alice, headers=spoof))
    for h in IDENTITY_HEADERS:
        assert h.lower() not in seen, (h, seen)


def test_mtls_auth_refusal_never_reaches_the_backend(gateway, recorder, pki):
    rec = recorder()
    gw = gateway(mtls_config(rec, pki, "optional"))
    assert_401(get(gw, pki, "/cn/x"))
    assert_401(get(gw, pki, "/cn/x", pki.rogue))
    assert_401(get(gw, pki, "/cn/x", pki.mallory))
    rec.settle()
    assert rec.bytes == 0


def test_mtls_auth_on_the_plain_listener_is_401(optional_gw):
    gw = optional_gw()
    resp = raw_request(gw.port, b"GET /cn/x HTTP/1.1\r\nHost: t\r\n\r\n")
    assert_401(resp)


def test_access_log_names_the_certificate_consumer(optional_gw, pki):
    gw = optional_gw()
    get(gw, pki, "/cn/logged", pki.alice)
    entries = [e for e in gw.access_log(1) if e["path"] == "/cn/logged"]
    assert len(entries) == 1, entries
    assert entries[0]["consumer"] == "alice"
    assert entries[0]["status"] == 200


def test_mtls_auth_over_http2(optional_gw, pki):
    gw = optional_gw()
    ctx = client_context(ca=pki.ca, cert=pki.alice, alpn=["h2"])
    with H2Client(gw.tls_port, context=ctx, server_name=API_NAME) as c:
        ok = c.get("/cn/h2")
        assert ok.status == 200, (ok.headers, bytes(ok.data[:300]))
        assert ok.json()["headers"].get("x-consumer") == "alice"
    ctx = client_context(ca=pki.ca, alpn=["h2"])
    with H2Client(gw.tls_port, context=ctx, server_name=API_NAME) as c:
        refused = c.get("/cn/h2")
        assert refused.status == 401
        assert refused.header("content-type", "").startswith("application/problem+json")


# --------------------------------------------------------------------------
# config

@pytest.mark.parametrize("value", ["email", "subject"])
def test_validate_rejects_an_unknown_consumer_from(pki, tmp_path, value):
    require_binary(GATEHOUSE_BIN)
    text = ("listen: 127.0.0.1:18080\nworkers: 1\naccess_log: off\n"
            "listeners:\n"
            "  - listen: 127.0.0.1:18443\n"
            "    tls:\n"
            "      certificates:\n"
            f"        - cert: {pki.api.cert}\n"
            f"          key: {pki.api.key}\n"
            f"      client_ca: {pki.clients_ca.cert}\n"
            "      client_auth: optional\n"
            "consumers:\n  - name: alice\n"
            "upstreams:\n  svc:\n    targets:\n      - 127.0.0.1:9001\n"
            "routes:\n  - name: r\n    match:\n      path_prefix: /\n    upstream: svc\n"
            "    plugins:\n"
            "      - mtls_auth:\n"
            f"          consumer_from: {value}\n")
    path = tmp_path / "bad-mtls.yaml"
    path.write_text(text)
    r = subprocess.run([GATEHOUSE_BIN, "validate", "-c", str(path)], capture_output=True, text=True,
                       timeout=10)
    assert r.returncode == 1, (r.stdout, r.stderr)
    line_no = text.splitlines().index(f"          consumer_from: {value}") + 1
    assert f"{path}:{line_no}:" in r.stderr, r.stderr
