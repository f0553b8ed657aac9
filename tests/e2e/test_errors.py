"""Every locally generated error is problem+json carrying the request id."""

import time

import pytest

from conftest import RawConn, assert_problem, closed_port, proxy_config, raw_request

PING = {"name": "ping", "match": {"path": "/ping", "methods": ["GET", "HEAD"]},
        "respond": {"status": 200, "body": "pong"}}


@pytest.fixture
def echo(backend):
    return backend("echo")


def test_malformed_request_gets_400_problem_and_close(gateway):
    gw = gateway({"routes": [PING]})
    resp = raw_request(gw.port, b"GET /ping HTTP/1.1\r\nHost: t\r\nBad Header: x\r\n\r\n")
    assert_problem(resp.status, resp.headers, resp.body, 400)
    assert resp.closed


def test_no_route_gets_404_problem(gateway):
    gw = gateway({"routes": [PING]})
    r = gw.get("/nope")
    assert_problem(r.status_code, r.headers, r.content, 404)


def test_wrong_method_gets_405_problem_with_allow(gateway):
    gw = gateway({"routes": [PING]})
    r = gw.post("/ping", data=b"")
    assert_problem(r.status_code, r.headers, r.content, 405)
    assert r.headers.get("Allow")


def test_unfinished_request_head_gets_408_problem_after_header_timeout(gateway):
    gw = gateway({"routes": [PING], "limits": {"header_timeout": "1s"}})
    with RawConn(gw.port, timeout=5) as conn:
        started = time.monotonic()
        conn.send(b"GET /ping HTTP/1.1\r\nHost: t\r\n")
        resp = conn.read_response(timeout=4)
        elapsed = time.monotonic() - started
        closed = conn.is_closed(2)
    assert_problem(resp.status, resp.headers, resp.body, 408)
    assert 0.8 <= elapsed <= 3, f"408 after {elapsed:.2f}s with header_timeout: 1s"
    assert closed


def test_body_over_limit_gets_413_problem(gateway, echo):
    gw = gateway(proxy_config([echo], extra={"limits": {"max_body_bytes": 10}}))
    resp = raw_request(gw.port, b"POST /x HTTP/1.1\r\nHost: t\r\nContent-Length: 11\r\n\r\nhello world")
    assert_problem(resp.status, resp.headers, resp.body, 413)
    assert resp.closed


def test_header_section_over_limit_gets_431_problem(gateway):
    gw = gateway({"routes": [PING], "limits": {"max_header_bytes": 1024}})
    resp = raw_request(gw.port, b"GET /ping HTTP/1.1\r\nHost: t\r\nX-Big: " + b"a" * 2000 + b"\r\n\r\n")
    assert_problem(resp.status, resp.headers, resp.body, 431)
    assert resp.closed


def test_over_long_request_line_gets_431_not_414(gateway):
    gw = gateway({"routes": [PING], "limits": {"max_header_bytes": 1024}})
    resp = raw_request(gw.port, b"GET /ping?" + b"q" * 2000 + b" HTTP/1.1\r\nHost: t\r\n\r\n")
    assert_problem(resp.status, resp.headers, resp.body, 431)


def test_refused_upstream_gets_502_problem(gateway):
    gw = gateway(proxy_config([f"127.0.0.1:{closed_port()}"]), workers=1)
    r = gw.get("/x")
    assert_problem(r.status_code, r.headers, r.content, 502)


def test_upstream_closing_without_response_gets_502_problem(gateway, echo):
    gw = gateway(proxy_config([echo]))
    r = gw.get("/x?close=1")
    assert_problem(r.status_code, r.headers, r.content, 502)


def test_no_healthy_target_gets_503_problem(gateway):
    gw = gateway(proxy_config([f"127.0.0.1:{closed_port()}"]), workers=1)
    assert gw.get("/x").status_code == 502
    r = gw.get("/x")
    assert_problem(r.status_code, r.headers, r.content, 503)


def test_slow_upstream_gets_504_problem_after_read_timeout(gateway, echo):
    gw = gateway(proxy_config([echo], upstream_extra={"timeouts": {"read": "500ms"}}))
    started = time.monotonic()
    r = gw.get("/x?delay_ms=2000")
    elapsed = time.monotonic() - started
    assert_problem(r.status_code, r.headers, r.content, 504)
    assert 0.4 <= elapsed < 1.8, f"504 after {elapsed:.2f}s with read: 500ms"


def test_unknown_transfer_coding_gets_501_problem(gateway):
    gw = gateway({"routes": [PING]})
    resp = raw_request(gw.port, b"POST /ping HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: foo\r\n\r\n")
    assert_problem(resp.status, resp.headers, resp.body, 501)
    assert resp.closed


def test_unsupported_http_version_gets_505_problem(gateway):
    gw = gateway({"routes": [PING]})
    resp = raw_request(gw.port, b"GET /ping HTTP/1.2\r\nHost: t\r\n\r\n")
    assert_problem(resp.status, resp.headers, resp.body, 505)
    assert resp.closed
