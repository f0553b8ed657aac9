"""store: redis (docs/protection.md, "rate_limit"): exact across every
instance sharing one Redis, one script call per request, on_store_error
allow (local limits while Redis is down, shared counting again by itself)
and deny (503), no request waits past redis.timeout, and long windows that
survive a gateway restart. Every test runs its own redis-server."""

import time

import pytest

from conftest import assert_problem, metric_sum
from ratelimit_support import (STORE_UNAVAILABLE_DETAIL, assert_rate_limited, config, count, fire,
                               get_many, redis_block, redis_server, rl, rl_headers, route,  # noqa: F401
                               timed_get)

DEGRADED = "gatehouse_rate_limit_degraded_total"
TIMEOUT_S = 0.1   # redis.timeout in these tests
SLACK_S = 0.6     # what a request may take beyond the Redis timeout


@pytest.fixture
def echo(backend):
    return backend("echo")


def redis_gw(gateway, echo, server, plugin, *, workers=1, timeout="100ms", db=None):
    block = redis_block(server, timeout)
    if db is not None:
        block["url"] = f"redis://127.0.0.1:{server.port}/{db}"
    return gateway(config({"svc": echo}, [route("api", "/api/", [plugin])], redis=block),
                   workers=workers)


def test_two_instances_share_one_budget_exactly(gateway, echo, redis_server):
    server = redis_server()
    plugin = rl(100, "1m", key="ip", store="redis")
    a = redis_gw(gateway, echo, server, plugin, workers=2)
    b = redis_gw(gateway, echo, server, plugin, workers=2)
    answers = fire([a, b], "/api/x", 300, threads=24)
    got = [x.status_code for x in answers]
    assert count(got, 200) == 100, f"{count(got, 200)} passed over two instances, expected exactly 100"
    assert count(got, 429) == 200, sorted(set(got))
    passed_on = {x.gw_index for x in answers if x.status_code == 200}
    assert passed_on == {0, 1}, "both instances should have let some of the shared budget through"
    remaining = sorted(rl_headers(x)[1] for x in answers if x.status_code == 200)
    assert remaining == list(range(100)), f"each allowed request must take its own unit: {remaining}"
    for x in answers:
        if x.status_code == 429:
            assert_rate_limited(x)
    assert server.dbsize() >= 1, "nothing was written to Redis"


def test_sequential_requests_over_two_instances_count_down_one_counter(gateway, echo, redis_server):
    server = redis_server()
    plugin = rl(6, "1m", key="ip", store="redis")
    a = redis_gw(gateway, echo, server, plugin)
    b = redis_gw(gateway, echo, server, plugin)
    seen = []
    for i in range(8):
        r = (a if i % 2 == 0 else b).get("/api/x")
        seen.append((r.status_code, rl_headers(r)[1]))
    assert seen == [(200, 5), (200, 4), (200, 3), (200, 2), (200, 1), (200, 0), (429, 0), (429, 0)], seen


def test_one_script_call_per_request(gateway, echo, redis_server):
    server = redis_server()
    gw = redis_gw(gateway, echo, server, rl(1000, "1m", key="ip", store="redis"), workers=2)
    with server.client() as c:
        c.config_resetstat()
    n = 20
    assert [r.status_code for r in get_many(gw, "/api/x", n)] == [200] * n
    with server.client() as c:
        stats = c.info("commandstats")
    calls = {k.replace("cmdstat_", ""): v.get("calls", 0) for k, v in stats.items()}
    scripted = calls.get("evalsha", 0) + calls.get("eval", 0)
    # (commands a script runs inside Redis are counted too, so only the
    # script calls themselves are compared)
    assert n <= scripted <= n + 4, f"{scripted} script calls for {n} requests: {calls}"
    assert calls.get("multi", 0) == 0 and calls.get("exec", 0) == 0, calls


def test_redis_url_selects_the_database(gateway, echo, redis_server):
    server = redis_server()
    gw = redis_gw(gateway, echo, server, rl(10, "1m", key="ip", store="redis"), db=2)
    assert gw.get("/api/x").status_code == 200
    import redis
    with redis.Redis(host="127.0.0.1", port=server.port, db=2, socket_timeout=1) as c2, \
            redis.Redis(host="127.0.0.1", port=server.port, db=0, socket_timeout=1) as c0:
        assert c2.dbsize() >= 1, "the counter should live in database 2"
        assert c0.dbsize() == 0, "nothing belongs in database 0"


# --------------------------------------------------------------------------
# Redis failing

def _probe_pair(a, b, key):
    """One request through each instance with a fresh key; (statuses, remainings)."""
    ra, rb = a.get("/api/x", headers={"X-Key": key}), b.get("/api/x", headers={"X-Key": key})
    rem = []
    for r in (ra, rb):
        try:
            rem.append(rl_headers(r)[1])
        except AssertionError:
            rem.append(None)
    return (ra.status_code, rb.status_code), tuple(rem)


@pytest.mark.slow
def test_redis_down_with_allow_limits_locally_then_shared_counting_resumes(gateway, echo, redis_server):
    server = redis_server()
    plugin = rl(10, "1m", key="header:X-Key", store="redis", on_store_error="allow")
    a = redis_gw(gateway, echo, server, plugin)
    b = redis_gw(gateway, echo, server, plugin)

    # Shared: 3 through each instance leave 4 of 10 (no X-Key: the client IP).
    for gw in (a, b):
        assert [r.status_code for r in get_many(gw, "/api/x", 3)] == [200] * 3
    assert rl_headers(b.get("/api/x"))[1] == 3, "the two instances do not share the counter"

    server.kill()
    answers = []
    for _ in range(14):
        r, took = timed_get(a, "/api/x")
        assert took < 1.0, f"a request took {took:.2f}s with Redis down"
        answers.append(r)
    got = [r.status_code for r in answers]
    assert set(got) <= {200, 429}, got
    passed = count(got, 200)
    assert 7 <= passed <= 10, f"{passed} passed with Redis down: local limits of 10 should apply ({got})"
    assert got == sorted(got), f"once refused, stays refused: {got}"
    for r in answers[passed:]:
        assert_rate_limited(r)
    assert metric_sum(a.metrics(), DEGRADED) >= 1, f"{DEGRADED} should count degraded decisions"
    details = [str(e.get("detail") or "") for e in a.access_log(1)]
    degraded = [d for d in details if d.startswith("rate_limit")
                and any(w in d.lower() for w in ("degraded", "locally", "unavailable"))]
    assert degraded, f"the access log's detail should say the decision was degraded: {set(details)}"

    server.start()  # same port
    deadline = time.monotonic() + 15
    i = 0
    while True:
        i += 1
        codes, rem = _probe_pair(a, b, f"probe-{i}")
        if codes == (200, 200) and rem[0] is not None and rem[1] == rem[0] - 1:
            break
        assert time.monotonic() < deadline, \
            f"shared counting did not resume within 15s of Redis coming back (last {codes} {rem})"
        time.sleep(0.2)
    # Exact again across both: a fresh key gets exactly 10, counted down 9..0.
    seen = []
    for j in range(12):
        r = (a if j % 2 == 0 else b).get("/api/x", headers={"X-Key": "after-restart"})
        seen.append((r.status_code, rl_headers(r)[1]))
    assert seen == [(200, n) for n in range(9, -1, -1)] + [(429, 0), (429, 0)], seen


def test_redis_down_with_deny_answers_503_quickly_and_recovers(gateway, echo, redis_server):
    server = redis_server()
    gw = redis_gw(gateway, echo, server, rl(10, "1m", key="ip", store="redis", on_store_error="deny"))
    assert gw.get("/api/x").status_code == 200
    server.kill()
    for _ in range(3):
        r, took = timed_get(gw, "/api/x")
        assert took < 1.0, f"{took:.2f}s with Redis down"
        problem = assert_problem(r.status_code, r.headers, r.content, 503)
        assert problem["detail"] == STORE_UNAVAILABLE_DETAIL, problem
    server.start()
    deadline = time.monotonic() + 10
    while True:
        r = gw.get("/api/x")
        if r.status_code == 200:
            break
        assert r.status_code == 503, r.text
        assert time.monotonic() < deadline, "still 503 10s after Redis came back"
        time.sleep(0.2)


def test_on_store_error_defaults_to_allow(gateway, echo, redis_server):
    server = redis_server()
    gw = redis_gw(gateway, echo, server, rl(3, "1m", key="ip", store="redis"))
    assert gw.get("/api/x").status_code == 200
    server.kill()
    got = []
    for _ in range(5):
        r, took = timed_get(gw, "/api/x")
        assert took < 1.0
        got.append(r.status_code)
    assert got[0] == 200 and set(got) <= {200, 429} and got.count(200) <= 3, got


@pytest.mark.parametrize("on_error,expected", [("allow", 200), ("deny", 503)])
def test_a_paused_redis_never_hangs_requests(gateway, echo, redis_server, on_error, expected):
    server = redis_server()
    gw = redis_gw(gateway, echo, server,
                  rl(1000, "1m", key="header:X-Key", store="redis", on_store_error=on_error))
    assert gw.get("/api/x").status_code == 200
    server.pause()
    try:
        for i in range(5):
            r, took = timed_get(gw, "/api/x", headers={"X-Key": f"paused-{i}"})
            assert took < TIMEOUT_S + SLACK_S, \
                f"request {i} took {took:.2f}s with Redis stopped (timeout {TIMEOUT_S}s)"
            assert r.status_code == expected, r.text
            if expected == 503:
                assert_problem(r.status_code, r.headers, r.content, 503)
    finally:
        server.resume()
    # Redis answers again: stale replies are dropped, counting lands in Redis again.
    time.sleep(0.5)
    server.flushall()
    deadline = time.monotonic() + 10
    i = 0
    while True:
        i += 1
        r = gw.get("/api/x", headers={"X-Key": f"resumed-{i}"})
        if r.status_code == 200 and server.dbsize() >= 1:
            break
        assert time.monotonic() < deadline, \
            f"Redis not used again within 10s of SIGCONT (last status {r.status_code})"
        time.sleep(0.2)


# --------------------------------------------------------------------------
# long windows

@pytest.mark.parametrize("window,seconds", [("1d", 86400), ("30d", 30 * 86400)])
def test_long_window_quota_on_redis_survives_a_gateway_restart(gateway, echo, redis_server,
                                                              window, seconds):
    server = redis_server()
    plugin = rl(5, window, key="ip", store="redis")
    gw = redis_gw(gateway, echo, server, plugin)
    rs = get_many(gw, "/api/x", 2)
    assert [(r.status_code, rl_headers(r)[1]) for r in rs] == [(200, 4), (200, 3)]
    assert 1 <= rl_headers(rs[1])[2] <= seconds
    rc = gw.stop()
    assert rc == 0, f"the gateway exited {rc} after SIGTERM (None: still running after 10s)"

    again = redis_gw(gateway, echo, server, plugin)
    rs = get_many(again, "/api/x", 4)
    assert [(r.status_code, rl_headers(r)[1]) for r in rs] == [(200, 2), (200, 1), (200, 0), (429, 0)], \
        "the quota must continue where the previous gateway left it"
    assert_rate_limited(rs[3], window_s=seconds)
