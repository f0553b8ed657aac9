"""concurrency_limit and limits.max_connections_per_ip
(docs/protection.md): at most N requests of a route in flight across the
instance (beyond: 503, Retry-After: 1), and connections beyond the per-IP
limit closed at accept, before any byte is read."""

import threading
import time

import pytest
import requests

from conftest import RawConn, assert_problem, metric_sum
from ratelimit_support import CONCURRENCY_DETAIL, config, hold_backend, respond_route, route  # noqa: F401

REFUSED = "gatehouse_connections_refused_total"


def _send_async(gw, path, results, index):
    try:
        r = requests.get(gw.url(path), timeout=15)
        results[index] = r.status_code
    except requests.RequestException as e:
        results[index] = repr(e)


def test_concurrency_limit_refuses_beyond_max_in_flight_and_recovers(gateway, hold_backend, backend):
    slow = hold_backend()
    echo = backend("echo")
    gw = gateway(config({"slow": slow, "svc": echo}, [
        route("held", "/held/", [{"concurrency_limit": {"max": 3}}], upstream="slow"),
        route("other", "/other/"),
    ]), workers=2)
    results = [None] * 3
    threads = [threading.Thread(target=_send_async, args=(gw, f"/held/{i}", results, i), daemon=True)
               for i in range(3)]
    for t in threads:
        t.start()
    try:
        assert slow.wait_held(3) == 3, "three requests should be in flight at the backend"
        # The fourth, on its own connection: refused at once.
        t0 = time.monotonic()
        r = gw.get("/held/extra", timeout=5)
        took = time.monotonic() - t0
        problem = assert_problem(r.status_code, r.headers, r.content, 503)
        assert problem["detail"] == CONCURRENCY_DETAIL, problem
        assert r.headers.get("Retry-After") == "1"
        assert took < 2.0, f"the refusal took {took:.2f}s: it must not wait for a slot"
        # Other routes are not limited by this route's in-flight count.
        assert gw.get("/other/x", timeout=5).status_code == 200
        assert slow.arrivals == 3, "the refused request must not reach the backend"
    finally:
        slow.release()
    for t in threads:
        t.join(timeout=10)
    assert results == [200, 200, 200], results
    # Slots are free again once those finished (also after a refusal).
    got = [gw.get(f"/held/after-{i}", timeout=5).status_code for i in range(4)]
    assert got == [200] * 4, got
    assert slow.max_held <= 3


def test_concurrency_limit_counts_requests_not_connections(gateway, hold_backend):
    slow = hold_backend()
    gw = gateway(config({"slow": slow}, [
        route("held", "/held/", [{"concurrency_limit": {"max": 2}}], upstream="slow")]), workers=1)
    # Sequential requests on one keep-alive connection never exceed the limit.
    slow.release()
    with requests.Session() as s:
        got = [s.get(gw.url(f"/held/{i}"), timeout=5).status_code for i in range(6)]
    assert got == [200] * 6, got


def test_concurrency_limit_of_one(gateway, hold_backend):
    slow = hold_backend()
    gw = gateway(config({"slow": slow}, [
        route("held", "/held/", [{"concurrency_limit": {"max": 1}}], upstream="slow")]), workers=2)
    results = [None]
    t = threading.Thread(target=_send_async, args=(gw, "/held/first", results, 0), daemon=True)
    t.start()
    try:
        assert slow.wait_held(1) == 1
        r = gw.get("/held/second", timeout=5)
        assert r.status_code == 503
        assert r.headers.get("Retry-After") == "1"
    finally:
        slow.release()
    t.join(timeout=10)
    assert results == [200]
    assert gw.get("/held/third", timeout=5).status_code == 200


# --------------------------------------------------------------------------
# max_connections_per_ip

def _open_served(gw):
    """A connection that completed one keep-alive request (so the gateway has accepted it)."""
    conn = RawConn(gw.port, timeout=3)
    conn.send(b"GET /ping HTTP/1.1\r\nHost: t\r\n\r\n")
    resp = conn.read_response()
    assert resp.status == 200, f"an allowed connection was not served: {resp}"
    return conn


def _wait_served(gw, timeout=5.0):
    """_open_served, retried (bounded): connections the gateway has not yet
    seen closed (the fixture's startup probe, one the test just closed)
    still count against the limit for a moment."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            return _open_served(gw)
        except (AssertionError, OSError):
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)


def _refused(gw):
    """True if a new connection is closed without any response."""
    conn = RawConn(gw.port, timeout=3)
    try:
        try:
            conn.send(b"GET /ping HTTP/1.1\r\nHost: t\r\n\r\n")
        except (BrokenPipeError, ConnectionResetError):
            return True
        resp = conn.read_response(timeout=3)
        if resp.status_line is not None:
            return False
        return conn.is_closed(1.0)
    finally:
        conn.close()


def test_connections_beyond_the_per_ip_limit_are_closed_without_a_response(gateway):
    gw = gateway(config({}, [respond_route("ping", "/ping")], limits={"max_connections_per_ip": 3}),
                 workers=2)
    before = metric_sum(gw.metrics(), REFUSED)
    held = [_wait_served(gw) for _ in range(3)]
    try:
        assert _refused(gw), "the 4th connection from 127.0.0.1 should be closed at accept"
        assert metric_sum(gw.metrics(), REFUSED) >= before + 1
        # The three held connections still work.
        for conn in held:
            conn.send(b"GET /ping HTTP/1.1\r\nHost: t\r\n\r\n")
            assert conn.read_response().status == 200
        # Closing one makes room (the gateway notices the close asynchronously).
        held.pop().close()
        try:
            held.append(_wait_served(gw))
        except (AssertionError, OSError):
            pytest.fail("no room for a new connection 5s after closing one")
        assert _refused(gw), "the limit still holds with three open again"
    finally:
        for conn in held:
            conn.close()


def test_refused_connection_gets_no_bytes_even_for_a_complete_request(gateway):
    gw = gateway(config({}, [respond_route("ping", "/ping")], limits={"max_connections_per_ip": 1}),
                 workers=1)
    first = _wait_served(gw)
    try:
        conn = RawConn(gw.port, timeout=3)
        try:
            try:
                conn.send(b"GET /ping HTTP/1.1\r\nHost: t\r\n\r\n")
            except (BrokenPipeError, ConnectionResetError):
                pass
            resp = conn.read_response(timeout=3)
            assert resp.status_line is None, f"a refused connection got {resp.status_line!r}"
            assert resp.body == b"", f"a refused connection got bytes: {resp.body[:100]!r}"
            assert conn.is_closed(1.0)
        finally:
            conn.close()
    finally:
        first.close()


def test_without_the_limit_many_connections_are_served(gateway):
    gw = gateway(config({}, [respond_route("ping", "/ping")]), workers=1)
    held = [_open_served(gw) for _ in range(20)]
    for conn in held:
        conn.close()
