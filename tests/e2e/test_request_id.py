"""X-Request-Id: kept when valid, generated otherwise, on every response."""

import re

import pytest
import requests

from conftest import proxy_config, raw_request

GENERATED = re.compile(r"^[0-9a-f]{32}$")


@pytest.fixture
def echo(backend):
    return backend("echo")


@pytest.fixture
def gw(gateway, echo):
    return gateway(proxy_config([echo]))


@pytest.mark.parametrize("rid", ["abc-123_X.y:z", "a", "Z" * 128, "0f" * 16])
def test_valid_incoming_request_id_is_kept_and_sent_upstream(gw, rid):
    r = gw.get("/id", headers={"X-Request-Id": rid})
    assert r.status_code == 200
    assert r.headers["X-Request-Id"] == rid
    assert r.json()["headers"].get("x-request-id") == rid


@pytest.mark.parametrize("rid", ["has space", "semi;colon", "slash/no", "Z" * 129, "ünï"],
                         ids=["space", "semicolon", "slash", "too-long", "non-ascii"])
def test_invalid_incoming_request_id_is_replaced(gw, rid):
    r = gw.get("/id", headers={"X-Request-Id": rid.encode("utf-8")})
    assert r.status_code == 200
    new = r.headers["X-Request-Id"]
    assert GENERATED.match(new), new
    assert r.json()["headers"].get("x-request-id") == new


def test_empty_incoming_request_id_is_replaced(gw):
    resp = raw_request(gw.port, b"GET /id HTTP/1.1\r\nHost: t\r\nX-Request-Id:\r\n\r\n", close_wait=0.1)
    assert resp.status == 200, resp
    assert GENERATED.match(resp.headers.get("x-request-id", "")), resp.headers


def test_generated_request_ids_are_32_hex_and_unique_over_200_requests(gw):
    ids = []
    for i in range(200):
        r = requests.get(gw.url(f"/n/{i}"), timeout=10)  # fresh connection: both workers
        assert r.status_code == 200
        ids.append(r.headers["X-Request-Id"])
        assert r.json()["headers"].get("x-request-id") == ids[-1]
    assert all(GENERATED.match(i) for i in ids), [i for i in ids if not GENERATED.match(i)][:5]
    assert len(set(ids)) == 200


def test_generated_request_ids_differ_across_restarts(gateway):
    cfg = {"routes": [{"name": "ping", "match": {"path": "/ping"}, "respond": {"status": 200, "body": "pong"}}]}
    first = gateway(cfg)
    ids = {first.get("/ping").headers["X-Request-Id"] for _ in range(20)}
    assert first.stop() == 0
    second = gateway(cfg)
    ids2 = {second.get("/ping").headers["X-Request-Id"] for _ in range(20)}
    assert not ids & ids2


def test_error_responses_carry_a_request_id_too(gw):
    resp = raw_request(gw.port, b"GET / HTTP/1.1\r\nHost: t\r\nContent-Length: abc\r\n\r\n")
    assert resp.status == 400, resp
    assert GENERATED.match(resp.headers.get("x-request-id", "")), resp.headers
    assert resp.json()["request_id"] == resp.headers["x-request-id"]


def test_no_route_404_keeps_a_valid_incoming_request_id(gateway):
    gw = gateway({"routes": [{"name": "ping", "match": {"path": "/ping"},
                              "respond": {"status": 200, "body": "pong"}}]})
    r = gw.get("/missing", headers={"X-Request-Id": "trace-42"})
    assert r.status_code == 404
    assert r.headers["X-Request-Id"] == "trace-42"
    assert r.json()["request_id"] == "trace-42"
