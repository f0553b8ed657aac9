"""The admin listener: health, readiness and Prometheus metrics."""

import signal

import pytest
import requests

from conftest import (RawConn, closed_port, metric_sum, parse_metrics, raw_request,
                      send_in_flight, wait_for)

PING = {"name": "ping", "match": {"path": "/ping"}, "respond": {"status": 200, "body": "pong"}}


@pytest.fixture
def gw(gateway):
    return gateway({"routes": [PING]})


def metric_after(gw, name, expected, timeout=3.0, **labels):
    """Polls /metrics until the summed sample reaches `expected`; returns the last value."""
    value = None

    def reached():
        nonlocal value
        value = metric_sum(gw.metrics(), name, **labels)
        return value >= expected

    wait_for(reached, timeout=timeout)
    return value


def test_healthz_says_ok(gw):
    r = requests.get(gw.admin_url("/healthz"), timeout=5)
    assert r.status_code == 200
    assert r.json() == {"status": "ok"}


def test_readyz_says_ready_while_serving(gw):
    r = requests.get(gw.admin_url("/readyz"), timeout=5)
    assert r.status_code == 200
    assert r.json() == {"status": "ready"}


def test_readyz_says_503_while_shutting_down(gateway, backend):
    b = backend("slow")
    gw = gateway({"upstreams": {"svc": {"targets": [b.addr]}},
                  "routes": [{"name": "all", "match": {"path_prefix": "/"}, "upstream": "svc"}]})
    readyz = gw.admin_url("/readyz")
    conn = send_in_flight(gw, "/slow?delay_ms=2500")
    gw.send_signal(signal.SIGTERM)

    def not_ready():
        try:
            return requests.get(readyz, timeout=1).status_code == 503
        except requests.RequestException:
            return False

    assert wait_for(not_ready, timeout=1.5), "readyz did not answer 503 during shutdown"
    with conn:
        assert conn.read_response(timeout=10).status == 200
    assert gw.wait_exit(10) == 0


def test_metrics_are_prometheus_text(gw):
    r = requests.get(gw.admin_url("/metrics"), timeout=5)
    assert r.status_code == 200
    assert r.headers["Content-Type"].startswith("text/plain")
    assert "version=0.0.4" in r.headers["Content-Type"]
    parse_metrics(r.text)


def test_requests_total_counts_by_route_and_status_class(gw):
    before = metric_sum(gw.metrics(), "gatehouse_requests_total", route="ping", status_class="2xx")
    for _ in range(5):
        assert gw.get("/ping").status_code == 200
    after = metric_after(gw, "gatehouse_requests_total", before + 5, route="ping", status_class="2xx")
    assert after == before + 5


def test_unmatched_requests_are_counted_under_empty_route(gw):
    for _ in range(3):
        assert gw.get("/nope").status_code == 404
    value = metric_after(gw, "gatehouse_requests_total", 3, route="", status_class="4xx")
    assert value == 3


def test_request_latency_histogram_is_exposed_and_counts_requests(gw):
    name = "gatehouse_request_duration_seconds"
    before = metric_sum(gw.metrics(), name + "_count")
    for _ in range(4):
        gw.get("/ping")
    after = metric_after(gw, name + "_count", before + 4)
    assert after == before + 4
    samples = gw.metrics()
    buckets = [(l, v) for n, l, v in samples if n == name + "_bucket"]
    assert buckets and all("le" in l for l, _ in buckets)
    assert any(l["le"] == "+Inf" for l, _ in buckets)
    assert metric_sum(samples, name + "_sum") >= 0
    series = {}
    for labels, value in buckets:
        key = tuple(sorted((k, v) for k, v in labels.items() if k != "le"))
        series.setdefault(key, []).append((float(labels["le"].replace("Inf", "inf")), value))
    for points in series.values():
        counts = [v for _, v in sorted(points)]
        assert counts == sorted(counts), f"buckets not cumulative: {points}"
    assert metric_sum(samples, name + "_bucket", le="+Inf") == after


def test_upstream_connect_errors_counter_increases_after_refused_target(gateway):
    gw = gateway({"upstreams": {"dead": {"targets": [f"127.0.0.1:{closed_port()}"]}},
                  "routes": [{"name": "all", "match": {"path_prefix": "/"}, "upstream": "dead"}]},
                 workers=1)
    assert metric_sum(gw.metrics(), "gatehouse_upstream_connect_errors_total", upstream="dead") == 0
    assert gw.get("/x").status_code == 502
    assert metric_after(gw, "gatehouse_upstream_connect_errors_total", 1, upstream="dead") >= 1


def test_open_connections_gauge_tracks_client_connections(gw):
    gauge = "gatehouse_open_connections"
    # Let the fixture's readiness probe connection drain out of the gauge first.
    wait_for(lambda: metric_sum(gw.metrics(), gauge) == 0, timeout=3)
    base = metric_sum(gw.metrics(), gauge)
    conns = [RawConn(gw.port) for _ in range(3)]
    try:
        for c in conns:
            c.send(b"GET /ping HTTP/1.1\r\nHost: t\r\n\r\n")
            assert c.read_response().status == 200
        assert metric_after(gw, gauge, base + 3) >= base + 3
    finally:
        for c in conns:
            c.close()
    assert wait_for(lambda: metric_sum(gw.metrics(), gauge) <= base, timeout=3), \
        "gauge did not drop after the connections closed"


def test_rejected_requests_counter_increases_on_bad_input(gw):
    name = "gatehouse_rejected_requests_total"
    before = metric_sum(gw.metrics(), name, status="400")
    resp = raw_request(gw.port, b"GET /ping HTTP/1.1\r\nHost: t\r\nContent-Length: 1\r\n"
                       b"Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n")
    assert resp.status == 400
    assert metric_after(gw, name, before + 1, status="400") >= before + 1


def test_rejected_requests_counter_counts_every_local_error_status(gw):
    """404 and 405 are answered by the gateway too, so they are counted by status."""
    name = "gatehouse_rejected_requests_total"
    before = metric_sum(gw.metrics(), name, status="404")
    assert gw.get("/no/such/route").status_code == 404
    assert metric_after(gw, name, before + 1, status="404") >= before + 1
