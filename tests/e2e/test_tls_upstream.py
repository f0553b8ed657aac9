"""TLS to upstreams: `upstreams.NAME.tls: {ca, cert, key, server_name}`: the
gateway verifies the backend's certificate against `ca` and `server_name`
(sent as SNI), presents its own client certificate, and answers 502 when the
backend cannot be verified. `protocol: h2` speaks HTTP/2 over that TLS."""

import subprocess

import pytest

from conftest import GATEHOUSE_BIN, assert_problem, require_binary, wait_for
from tls_support import (UPSTREAM_NAME, grpc_backend, grpc_channel, grpc_mods,  # noqa: F401
                         grpc_stub, https_backend, pki)


def upstream_tls(pki, *, client_cert=True, server_name=UPSTREAM_NAME, ca=None):
    tls = {"ca": (ca or pki.internal_ca).cert, "server_name": server_name}
    if client_cert:
        tls.update({"cert": pki.gw_client.cert, "key": pki.gw_client.key})
    return tls


def config(target_addr, tls, **upstream_extra):
    up = {"targets": [target_addr], "tls": tls}
    up.update(upstream_extra)
    return {"upstreams": {"orders": up},
            "routes": [{"name": "orders", "match": {"path_prefix": "/"}, "upstream": "orders"}]}


def test_gateway_verifies_the_backend_and_presents_its_client_certificate(gateway, https_backend, pki):
    b = https_backend(pki.orders, client_ca=pki.internal_ca, require_client_cert=True)
    gw = gateway(config(b.addr, upstream_tls(pki)))
    r = gw.get("/orders/1?x=2")
    assert r.status_code == 200, r.text
    seen = r.json()
    assert seen["backend"] == "https-echo"
    assert seen["path"] == "/orders/1" and seen["query"] == "x=2"
    assert seen["peer_cn"] == "gatehouse-gw", "the backend saw no (or another) client certificate"
    assert seen["headers"].get("x-forwarded-proto") == "http"  # the client spoke plain HTTP
    assert b.snis and set(b.snis) == {UPSTREAM_NAME}, f"SNI sent upstream: {b.snis}"


def test_several_requests_and_bodies_over_upstream_tls(gateway, https_backend, pki):
    b = https_backend(pki.orders, client_ca=pki.internal_ca, require_client_cert=True)
    gw = gateway(config(b.addr, upstream_tls(pki)))
    for i in range(5):
        r = gw.post(f"/orders/{i}", data=b"p" * (1 << 20))
        assert r.status_code == 200, r.text
        assert r.json()["body_bytes"] == 1 << 20
    r = gw.get("/download?size=4194304")
    assert r.status_code == 200 and len(r.content) == 4 << 20
    assert b.hits() == 6


def test_no_client_certificate_configured_backend_requires_one_is_502(gateway, https_backend, pki):
    b = https_backend(pki.orders, client_ca=pki.internal_ca, require_client_cert=True)
    gw = gateway(config(b.addr, upstream_tls(pki, client_cert=False)))
    r = gw.get("/orders/1")
    assert_problem(r.status_code, r.headers, r.content, 502)
    assert b.hits() == 0
    assert wait_for(lambda: b.handshake_failures, 3), "the backend saw no failed handshake"


def test_backend_certificate_not_matching_server_name_is_502(gateway, https_backend, pki):
    b = https_backend(pki.orders_wrong_name)
    gw = gateway(config(b.addr, upstream_tls(pki)))
    r = gw.get("/orders/1")
    assert_problem(r.status_code, r.headers, r.content, 502)
    assert b.hits() == 0, "a request went to a backend whose certificate names another host"


def test_backend_certificate_from_an_untrusted_ca_is_502(gateway, https_backend, pki):
    b = https_backend(pki.orders_foreign)
    gw = gateway(config(b.addr, upstream_tls(pki)))
    r = gw.get("/orders/1")
    assert_problem(r.status_code, r.headers, r.content, 502)
    assert b.hits() == 0


def test_server_name_decides_which_name_is_checked(gateway, https_backend, pki):
    b = https_backend(pki.orders_wrong_name)
    gw = gateway(config(b.addr, upstream_tls(pki, server_name="billing.internal")))
    r = gw.get("/billing/1")
    assert r.status_code == 200, r.text
    assert set(b.snis) == {"billing.internal"}


def test_plain_http_backend_behind_a_tls_upstream_is_502(gateway, backend, pki):
    plain = backend("plain")
    gw = gateway(config(plain.addr, upstream_tls(pki), timeouts={"connect": "2s", "read": "2s"}))
    r = gw.get("/orders/1", timeout=15)
    assert r.status_code in (502, 504), r.text
    assert_problem(r.status_code, r.headers, r.content, r.status_code)


def test_protocol_h2_over_tls_carries_grpc(gateway, grpc_backend, grpc_channel, grpc_mods, pki):
    b = grpc_backend(tls=(pki.orders, pki.internal_ca, True))
    gw = gateway(config(b.addr, upstream_tls(pki), protocol="h2"))
    stub = grpc_stub(grpc_mods, grpc_channel(gw.port))
    reply = stub.Echo(grpc_mods.pb2.EchoRequest(message="over tls"), timeout=10)
    assert reply.message == "over tls"
    assert b.call_count("Echo") == 1


# --------------------------------------------------------------------------
# config

def _text(upstream_lines):
    return ("listen: 127.0.0.1:18080\nworkers: 1\naccess_log: off\n"
            "upstreams:\n  orders:\n    targets:\n      - 127.0.0.1:9001\n"
            f"{upstream_lines}"
            "routes:\n  - name: r\n    match:\n      path_prefix: /\n    upstream: orders\n")


@pytest.mark.parametrize("case", ["bad-protocol", "missing-ca-file", "key-not-matching"])
def test_validate_rejects_bad_upstream_tls_config(pki, tmp_path, case):
    require_binary(GATEHOUSE_BIN)
    missing = str(tmp_path / "missing-ca.crt")
    lines, needle = {
        "bad-protocol": ("    protocol: spdy\n", "protocol: spdy"),
        "missing-ca-file": ("    tls:\n"
                            f"      ca: {missing}\n"
                            f"      server_name: {UPSTREAM_NAME}\n", missing),
        "key-not-matching": ("    tls:\n"
                             f"      ca: {pki.internal_ca.cert}\n"
                             f"      cert: {pki.gw_client.cert}\n"
                             f"      key: {pki.orders.key}\n", None),
    }[case]
    text = _text(lines)
    path = tmp_path / f"{case}.yaml"
    path.write_text(text)
    r = subprocess.run([GATEHOUSE_BIN, "validate", "-c", str(path)], capture_output=True, text=True,
                       timeout=10)
    assert r.returncode == 1, (r.stdout, r.stderr)
    assert f"{path}:" in r.stderr, r.stderr
    if needle:
        line_no = next(i + 1 for i, l in enumerate(text.splitlines()) if needle in l)
        assert f"{path}:{line_no}:" in r.stderr, r.stderr
    else:
        wanted = {i + 1 for i, l in enumerate(text.splitlines())
                  if pki.orders.key in l or pki.gw_client.cert in l}
        assert any(f"{path}:{n}:" in r.stderr for n in wanted), r.stderr
