"""The `headers` plugin: the phase pipeline edits the request sent upstream and
the response sent back, and plugin config errors carry file:line:col."""

import re
import subprocess

from conftest import GATEHOUSE_BIN, raw_request


def headers_gateway(gateway, echo, plugin):
    return gateway({
        "upstreams": {"svc": {"targets": [echo.addr]}},
        "routes": [{"name": "edited", "match": {"path_prefix": "/"}, "upstream": "svc",
                    "plugins": [{"headers": plugin}]}],
    })


def test_request_headers_are_set_and_removed_before_the_upstream_sees_them(gateway, backend):
    gw = headers_gateway(gateway, backend("echo"),
                         {"request": {"set": {"X-Api-Version": "2"}, "remove": ["X-Debug"]}})
    r = gw.get("/x", headers={"X-Debug": "1", "X-Api-Version": "1", "X-Kept": "yes"})
    assert r.status_code == 200
    seen = r.json()["headers"]
    assert seen.get("x-api-version") == "2"
    assert "x-debug" not in seen
    assert seen.get("x-kept") == "yes"


def test_response_headers_are_set_and_removed_before_the_client_sees_them(gateway, backend):
    gw = headers_gateway(gateway, backend("echo"),
                         {"response": {"set": {"X-Frame-Options": "DENY"}, "remove": ["X-Backend"]}})
    r = gw.get("/x")
    assert r.status_code == 200
    assert r.headers.get("X-Frame-Options") == "DENY"
    assert "X-Backend" not in r.headers
    assert r.json()["backend"] == "echo"


def test_two_connection_fields_both_name_hop_by_hop_headers(gateway, backend):
    gw = headers_gateway(gateway, backend("echo"), {"request": {"set": {"X-A": "1"}}})
    resp = raw_request(gw.port, b"GET /x HTTP/1.1\r\nHost: t\r\nConnection: x-one\r\n"
                                b"Connection: x-two\r\nX-One: 1\r\nX-Two: 2\r\nX-Three: 3\r\n"
                                b"Connection: close\r\n\r\n")
    assert resp.status == 200
    seen = resp.json()["headers"]
    assert "x-one" not in seen and "x-two" not in seen
    assert seen.get("x-three") == "3"


def test_invalid_plugin_config_is_reported_with_its_position(tmp_path):
    cfg = tmp_path / "bad.yaml"
    cfg.write_text(
        "listen: 127.0.0.1:18080\n"
        "upstreams:\n"
        "  svc: {targets: [\"127.0.0.1:9\"]}\n"
        "routes:\n"
        "  - name: r\n"
        "    match: {path_prefix: /}\n"
        "    upstream: svc\n"
        "    plugins:\n"
        "      - headers: {request: {set: {Content-Length: \"1\"}}}\n"
        "      - nosuch: {}\n")
    out = subprocess.run([GATEHOUSE_BIN, "validate", "-c", str(cfg)], capture_output=True,
                         text=True, timeout=10)
    assert out.returncode == 1
    lines = out.stderr.strip().splitlines()
    assert any(re.match(rf"{re.escape(str(cfg))}:9:\d+: cannot set header 'Content-Length'", l)
               for l in lines), lines
    assert any(re.match(rf"{re.escape(str(cfg))}:10:9: unknown plugin 'nosuch'", l)
               for l in lines), lines
