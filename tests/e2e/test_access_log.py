"""The access log: one JSON object per request, with the contract's fields."""

import json
import re
from datetime import datetime, timezone

import pytest

from conftest import ACCESS_LOG_FIELDS, raw_request, wait_for

TIMESTAMP = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")


@pytest.fixture
def echo(backend):
    return backend("echo")


@pytest.fixture
def gw(gateway, echo):
    return gateway({
        "upstreams": {"svc": {"targets": [echo.addr]}},
        "routes": [
            {"name": "items", "match": {"path": "/items/{id}"}, "upstream": "svc"},
            {"name": "ping", "match": {"path": "/ping"}, "respond": {"status": 200, "body": "pong"}},
        ],
    })


def only_entry(gw):
    entries = gw.access_log(1)
    assert len(entries) == 1, entries
    return entries[0]


def test_one_json_line_per_request_with_every_field(gw):
    for i in range(3):
        assert gw.get(f"/items/{i}").status_code == 200
    entries = gw.access_log(3)
    assert len(entries) == 3, entries
    for entry in entries:
        missing = [f for f in ACCESS_LOG_FIELDS if f not in entry]
        assert not missing, f"missing {missing} in {entry}"
    assert sorted(e["path"] for e in entries) == ["/items/0", "/items/1", "/items/2"]


def test_timestamp_is_rfc3339_utc_with_milliseconds(gw):
    gw.get("/ping")
    ts = only_entry(gw)["timestamp"]
    assert TIMESTAMP.match(ts), ts
    when = datetime.strptime(ts, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=timezone.utc)
    assert abs((datetime.now(timezone.utc) - when).total_seconds()) < 60


def test_proxied_request_logs_route_status_upstream_and_client(gw, echo):
    r = gw.get("/items/7?x=1")
    e = only_entry(gw)
    assert e["request_id"] == r.headers["X-Request-Id"]
    assert e["method"] == "GET"
    assert e["path"] == "/items/7"
    assert e["route"] == "items"
    assert e["status"] == 200
    assert e["upstream_service"] == "svc"
    assert e["upstream_addr"] == echo.addr
    assert isinstance(e["upstream_latency_ms"], (int, float)) and e["upstream_latency_ms"] >= 0
    assert isinstance(e["latency_ms"], (int, float)) and e["latency_ms"] >= 0
    assert e["client_ip"] == "127.0.0.1"


def test_bytes_in_and_out_count_body_bytes(gw):
    r = gw.post("/items/7?size=1234", data=b"hello world")
    assert len(r.content) == 1234
    e = only_entry(gw)
    assert e["bytes_in"] == 11
    assert e["bytes_out"] == 1234


def test_latency_covers_a_slow_upstream(gw):
    gw.get("/items/1?delay_ms=300")
    e = only_entry(gw)
    assert e["latency_ms"] >= 290
    assert e["upstream_latency_ms"] >= 290


def test_not_yet_implemented_fields_are_null(gw):
    gw.get("/items/1")
    e = only_entry(gw)
    assert e["user_id"] is None and e["consumer_tier"] is None and e["cache"] is None


def test_unmatched_request_logs_null_route_and_upstream(gw):
    r = gw.get("/nowhere")
    assert r.status_code == 404
    e = only_entry(gw)
    assert e["status"] == 404
    assert e["route"] is None
    assert e["upstream_service"] is None
    assert e["upstream_addr"] is None
    assert e["upstream_latency_ms"] is None
    assert e["request_id"] == r.headers["X-Request-Id"]


def test_direct_response_logs_route_without_upstream(gw):
    gw.get("/ping")
    e = only_entry(gw)
    assert (e["route"], e["status"], e["upstream_addr"], e["upstream_service"]) == ("ping", 200, None, None)
    assert e["bytes_out"] == 4


def test_logged_path_is_as_received_without_query(gw):
    raw_request(gw.port, b"GET /items/../items/./5?secret=1 HTTP/1.1\r\nHost: t\r\n\r\n", close_wait=0.1)
    e = only_entry(gw)
    assert e["path"] == "/items/../items/./5"


def test_access_log_to_stdout_writes_json_lines(gateway):
    gw = gateway({"routes": [{"name": "ping", "match": {"path": "/ping"},
                              "respond": {"status": 200, "body": "pong"}}]}, access_log="stdout")
    gw.get("/ping")
    assert wait_for(lambda: gw.stdout().strip(), timeout=5), "nothing on stdout"
    lines = [l for l in gw.stdout().splitlines() if l.strip()]
    entries = [json.loads(l) for l in lines]
    assert [e["route"] for e in entries] == ["ping"]


def test_access_log_off_writes_nothing(gateway):
    gw = gateway({"routes": [{"name": "ping", "match": {"path": "/ping"},
                              "respond": {"status": 200, "body": "pong"}}]}, access_log="off")
    gw.get("/ping")
    assert gw.stop() == 0
    assert gw.stdout().strip() == ""
