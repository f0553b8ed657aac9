"""Proxying: connection reuse, body framing, hop-by-hop and forwarding
headers, bodiless responses, interim responses and body limits."""

import http.client
import json
import time

import pytest

from conftest import RawConn, proxy_config, raw_request


@pytest.fixture
def echo(backend):
    return backend("echo")


@pytest.fixture
def gw(gateway, echo):
    return gateway(proxy_config([echo]))


def test_client_keepalive_connection_carries_several_requests(gw):
    conn = http.client.HTTPConnection("127.0.0.1", gw.port, timeout=5)
    conn.connect()
    first_socket = conn.sock
    try:
        for i in range(6):
            if i % 2:
                conn.request("POST", f"/req/{i}", body=b"b" * (100 * i))
            else:
                conn.request("GET", f"/req/{i}")
            r = conn.getresponse()
            body = r.read()
            assert r.status == 200
            assert r.getheader("Connection", "").lower() != "close"
            assert conn.sock is first_socket, f"connection was closed after request {i}"
            assert b'"/req/%d"' % i in body
    finally:
        conn.close()


def test_request_body_with_content_length_reaches_the_backend(gw):
    r = gw.post("/upload", data=b"a" * 12345)
    assert r.status_code == 200
    assert r.json()["body_bytes"] == 12345


def test_chunked_request_body_is_streamed_to_the_backend(gw):
    pieces = [b"a" * 1, b"b" * 1000, b"c" * 70000, b"d" * 17]
    conn = http.client.HTTPConnection("127.0.0.1", gw.port, timeout=10)
    try:
        conn.request("POST", "/chunked", body=iter(pieces),
                     headers={"Transfer-Encoding": "chunked"}, encode_chunked=True)
        r = conn.getresponse()
        echo_body = r.read()
    finally:
        conn.close()
    assert r.status == 200, echo_body
    assert json.loads(echo_body)["body_bytes"] == sum(map(len, pieces))


def test_chunked_response_is_relayed_intact(gw):
    r = gw.get("/big?chunked=1&size=300000")
    assert r.status_code == 200
    assert len(r.content) == 300000
    assert r.content == b"x" * 300000


def test_hop_by_hop_request_headers_are_not_forwarded(gw):
    r = gw.get("/h", headers={
        "Connection": "keep-alive, X-Foo",
        "X-Foo": "1",
        "Keep-Alive": "timeout=5",
        "TE": "trailers",
        "Trailer": "X-Trailer",
        "Proxy-Authorization": "Basic Zm9vOmJhcg==",
        "Proxy-Connection": "keep-alive",
        "X-Kept": "yes",
    })
    assert r.status_code == 200
    seen = r.json()["headers"]
    for name in ("x-foo", "keep-alive", "te", "trailer", "proxy-authorization", "proxy-connection"):
        assert name not in seen, f"{name} was forwarded: {seen}"
    assert "x-foo" not in seen.get("connection", "").lower()
    assert seen.get("x-kept") == "yes"


def test_hop_by_hop_response_headers_are_not_relayed(gw):
    r = gw.get("/h?header=Connection:x-bar&header=X-Bar:1&header=Keep-Alive:timeout=9"
               "&header=Proxy-Authenticate:Basic&header=Trailer:X-Trailer&header=X-Kept:yes")
    assert r.status_code == 200
    assert "X-Bar" not in r.headers
    assert "x-bar" not in r.headers.get("Connection", "").lower()
    assert r.headers.get("Keep-Alive") != "timeout=9"
    assert "Proxy-Authenticate" not in r.headers
    assert "Trailer" not in r.headers
    assert r.headers.get("X-Kept") == "yes"


def test_forwarded_headers_are_added_for_a_direct_client(gw):
    r = gw.get("/f", headers={"Host": "shop.example.test:8443"})
    seen = r.json()["headers"]
    assert seen.get("x-forwarded-for") == "127.0.0.1"
    assert seen.get("x-forwarded-proto") == "http"
    assert seen.get("x-forwarded-host") == "shop.example.test:8443"
    assert seen.get("host") == "shop.example.test:8443"


def test_client_address_is_appended_to_incoming_x_forwarded_for(gw):
    r = gw.get("/f", headers={"X-Forwarded-For": "203.0.113.7, 10.0.0.1"})
    assert r.json()["headers"].get("x-forwarded-for") == "203.0.113.7, 10.0.0.1, 127.0.0.1"


def test_head_response_has_no_body_and_connection_stays_usable(gw):
    with RawConn(gw.port) as conn:
        conn.send(b"HEAD /h HTTP/1.1\r\nHost: t\r\n\r\n")
        head = conn.read_response(head_request=True)
        assert head.status == 200, head
        conn.send(b"GET /after HTTP/1.1\r\nHost: t\r\n\r\n")
        after = conn.read_response()
        assert after.status_line and after.status_line.startswith("HTTP/1.1 200"), after
        assert after.json()["path"] == "/after"


@pytest.mark.parametrize("status", [204, 304])
def test_bodiless_status_has_no_body_and_connection_stays_usable(gw, status):
    with RawConn(gw.port) as conn:
        conn.send(b"GET /s?status=%d HTTP/1.1\r\nHost: t\r\n\r\n" % status)
        first = conn.read_response()
        assert first.status == status, first
        assert "transfer-encoding" not in first.headers
        conn.send(b"GET /after HTTP/1.1\r\nHost: t\r\n\r\n")
        after = conn.read_response()
        assert after.status_line and after.status_line.startswith("HTTP/1.1 200"), after
        assert after.json()["path"] == "/after"


def test_early_hints_from_backend_then_the_final_200_reach_the_client(gw):
    # Raw socket: http.client (and so requests) treats a 103 as the final response.
    with RawConn(gw.port) as conn:
        conn.send(b"GET /hints?early_hints=1 HTTP/1.1\r\nHost: t\r\n\r\n")
        resp = conn.read_response()
        assert resp.status == 200, resp
        assert all(line.split()[1] == "103" for line in resp.interim), resp.interim
        assert resp.json()["path"] == "/hints"
        conn.send(b"GET /again HTTP/1.1\r\nHost: t\r\n\r\n")
        assert conn.read_response().status == 200


def test_expect_100_continue_gets_continue_then_the_final_response(gw):
    with RawConn(gw.port) as conn:
        conn.send(b"POST /upload HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\n"
                  b"Expect: 100-continue\r\n\r\n")
        head = conn.read_head(timeout=3)
        assert head is not None, "neither 100 Continue nor a final response within 3s"
        assert head[0].split()[1] == "100", head
        conn.send(b"hello")
        resp = conn.read_response()
        assert resp.status == 200, resp
        assert resp.json()["body_bytes"] == 5


def test_body_over_max_body_bytes_by_content_length_gets_413_and_never_reaches_backend(
        gateway, recorder):
    rec = recorder()
    gw = gateway(proxy_config([rec.addr], extra={"limits": {"max_body_bytes": 1000}}))
    resp = raw_request(gw.port, b"POST /up HTTP/1.1\r\nHost: t\r\nContent-Length: 1001\r\n\r\n"
                       + b"x" * 1001)
    assert resp.status == 413, resp
    rec.settle()
    assert rec.bytes == 0, rec.data[:200]
    entry = gw.access_log(1)[-1]
    assert entry["status"] == 413
    assert entry["upstream_addr"] is None


def test_body_at_exactly_max_body_bytes_is_accepted(gateway, echo):
    gw = gateway(proxy_config([echo], extra={"limits": {"max_body_bytes": 1000}}))
    r = gw.post("/up", data=b"x" * 1000)
    assert r.status_code == 200
    assert r.json()["body_bytes"] == 1000


def test_expect_continue_over_max_body_bytes_gets_413_without_continue(gateway, recorder):
    rec = recorder()
    gw = gateway(proxy_config([rec.addr], extra={"limits": {"max_body_bytes": 1000}}))
    with RawConn(gw.port) as conn:
        conn.send(b"POST /up HTTP/1.1\r\nHost: t\r\nContent-Length: 5000\r\n"
                  b"Expect: 100-continue\r\n\r\n")
        resp = conn.read_response(timeout=3, skip_interim=False)
        assert resp.status == 413, resp
    rec.settle()
    assert rec.bytes == 0


def test_chunked_body_crossing_max_body_bytes_fails_and_never_completes_upstream(
        gateway, recorder):
    rec = recorder(answer=False)
    gw = gateway(proxy_config([rec.addr], extra={"limits": {"max_body_bytes": 1000}},
                              upstream_extra={"timeouts": {"read": "2s"}}))
    with RawConn(gw.port, timeout=5) as conn:
        conn.send(b"POST /up HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n"
                  b"258\r\n" + b"x" * 600 + b"\r\n")
        time.sleep(0.3)
        try:
            conn.send(b"258\r\n" + b"x" * 600 + b"\r\n0\r\n\r\n")
        except (BrokenPipeError, ConnectionResetError):
            pass
        resp = conn.read_response(timeout=4)
        closed = conn.is_closed(2)
    assert resp.status in (413, None), resp
    if resp.status is None:
        assert closed, "no response and the connection stayed open"
    rec.settle()
    assert rec.data.count(b"x") < 1200, "the whole over-limit body reached the upstream"
    assert not rec.data.endswith(b"0\r\n\r\n"), "the over-limit request was completed upstream"
