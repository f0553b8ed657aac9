"""rate_limit, the answers (docs/protection.md, "rate_limit"): RateLimit-*
headers on every limited response, 429 problem+json with Retry-After, the
access log's `detail`, several limits on one route, and the three
algorithms (sliding_window, fixed_window, token_bucket with burst)."""

import time

import pytest

from conftest import assert_problem, metric_sum
from ratelimit_support import (RATE_LIMITED_DETAIL, assert_rate_limited, config, get_many, retry_after,
                               respond_route, rl, rl_headers, route)

API_KEY = "k-alice-secret-0001"


@pytest.fixture
def echo(backend):
    return backend("echo")


def one_route_gw(gateway, echo, plugins, **extra):
    return gateway(config({"svc": echo}, [route("api", "/api/", plugins)], **extra), workers=1)


# --------------------------------------------------------------------------
# headers and the 429

def test_allowed_responses_carry_ratelimit_headers_counting_down(gateway, echo):
    gw = one_route_gw(gateway, echo, [rl(3, "1m", key="ip")])
    seen = []
    for r in get_many(gw, "/api/x", 3):
        assert r.status_code == 200, r.text
        assert r.json()["backend"] == "echo", "an allowed request must be proxied"
        seen.append(rl_headers(r))
    assert [s[0] for s in seen] == [3, 3, 3], seen
    assert [s[1] for s in seen] == [2, 1, 0], seen
    for _, _, reset in seen:
        assert 1 <= reset <= 60, f"RateLimit-Reset {reset} for a 1m window"


def test_request_over_the_limit_is_429_problem_with_retry_after_and_headers(gateway, echo, recorder):
    rec = recorder()
    gw = gateway(config({"svc": echo, "rec": rec},
                        [route("api", "/api/", [rl(2, "1m", key="route")], upstream="rec")]), workers=1)
    for r in get_many(gw, "/api/x", 2):
        assert r.status_code == 200
    sent_before = rec.connections
    r = gw.get("/api/x")
    problem = assert_rate_limited(r, window_s=60)
    assert problem["title"] == "Too Many Requests", problem
    limit, remaining, reset = rl_headers(r)
    assert (limit, remaining) == (2, 0)
    assert 1 <= reset <= 60
    rec.settle(0.2)
    assert rec.connections == sent_before, "a refused request must not reach the upstream"


def test_refusals_keep_refusing_and_do_not_reach_the_backend(gateway, echo):
    gw = one_route_gw(gateway, echo, [rl(2, "1m", key="ip")])
    got = [r.status_code for r in get_many(gw, "/api/x", 6)]
    assert got == [200, 200, 429, 429, 429, 429], got


def test_access_log_detail_names_the_limit_that_refused(gateway, echo):
    gw = gateway(config({"svc": echo}, [route("api", "/api/", [
        {"key_auth": {"header": "X-API-Key"}}, rl(2, "1m", key="consumer")])],
        consumers=[{"name": "alice", "api_keys": [API_KEY]}]), workers=1)
    got = [r.status_code for r in get_many(gw, "/api/x", 3, headers={"X-API-Key": API_KEY})]
    assert got == [200, 200, 429], got
    entries = gw.access_log(3)
    assert len(entries) == 3, entries
    refused = [e for e in entries if e["status"] == 429]
    assert len(refused) == 1, entries
    detail = refused[0].get("detail")
    assert isinstance(detail, str) and detail.startswith("rate_limit"), refused[0]
    assert "consumer" in detail, f"detail should name the key kind: {detail!r}"
    assert "2/60s" in detail, f"detail should name the limit (2/60s): {detail!r}"
    assert refused[0]["route"] == "api"
    text = open(gw.access_log_path).read()
    assert API_KEY not in text, "the access log must never hold a credential"


def test_rate_limit_on_a_locally_answered_route(gateway):
    gw = gateway(config({}, [respond_route("ping", "/ping", [rl(2, "1m", key="ip")], body="pong")]),
                 workers=1)
    rs = get_many(gw, "/ping", 3)
    assert [r.status_code for r in rs] == [200, 200, 429]
    assert rs[0].text == "pong"
    assert rl_headers(rs[0])[:2] == (2, 1)
    assert rl_headers(rs[1])[:2] == (2, 0)
    assert_rate_limited(rs[2])


def test_routes_without_rate_limit_carry_no_ratelimit_headers(gateway, echo):
    gw = gateway(config({"svc": echo}, [route("limited", "/limited/", [rl(5, key="ip")]),
                                        route("free", "/free/")]), workers=1)
    r = gw.get("/free/x")
    assert r.status_code == 200
    for name in ("RateLimit-Limit", "RateLimit-Remaining", "RateLimit-Reset"):
        assert name not in r.headers, f"{name} on a route without rate_limit"
    assert gw.get("/limited/x").headers.get("RateLimit-Limit") == "5"


def test_counters_belong_to_their_route(gateway, echo):
    gw = gateway(config({"svc": echo}, [route("a", "/a/", [rl(2, key="ip")]),
                                        route("b", "/b/", [rl(2, key="ip")])]), workers=1)
    assert [r.status_code for r in get_many(gw, "/a/x", 3)] == [200, 200, 429]
    assert [r.status_code for r in get_many(gw, "/b/x", 3)] == [200, 200, 429]


def test_429_is_counted_in_metrics(gateway, echo):
    gw = one_route_gw(gateway, echo, [rl(1, key="ip")])
    before = metric_sum(gw.metrics(), "gatehouse_requests_total", route="api", status_class="4xx")
    assert [r.status_code for r in get_many(gw, "/api/x", 3)] == [200, 429, 429]
    after = metric_sum(gw.metrics(), "gatehouse_requests_total", route="api", status_class="4xx")
    assert after - before == 2


# --------------------------------------------------------------------------
# several limits on one route

def test_several_limits_report_the_least_remaining_and_the_first_refusal_answers(gateway, echo):
    gw = one_route_gw(gateway, echo, [rl(10, "1m", key="ip"), rl(3, "1m", key="route")])
    rs = get_many(gw, "/api/x", 4)
    assert [r.status_code for r in rs] == [200, 200, 200, 429]
    assert [rl_headers(r)[:2] for r in rs[:3]] == [(3, 2), (3, 1), (3, 0)], \
        "the limit with the least remaining is the one reported"
    assert_rate_limited(rs[3])
    assert rl_headers(rs[3])[:2] == (3, 0)
    refused = [e for e in gw.access_log(4) if e["status"] == 429]
    assert refused and "3/60s" in (refused[0].get("detail") or ""), refused


def test_the_stricter_limit_is_reported_whichever_comes_first(gateway, echo):
    gw = one_route_gw(gateway, echo, [rl(2, "1m", key="route"), rl(10, "1m", key="ip")])
    rs = get_many(gw, "/api/x", 3)
    assert [r.status_code for r in rs] == [200, 200, 429]
    assert [rl_headers(r)[:2] for r in rs[:2]] == [(2, 1), (2, 0)]
    refused = [e for e in gw.access_log(3) if e["status"] == 429]
    assert refused and "2/60s" in (refused[0].get("detail") or ""), refused


# --------------------------------------------------------------------------
# algorithms

def _exhaust_then_wait_for_next_pass(gw, path, limit, budget_s=6.0):
    """Sends `limit` requests (all must pass) and one more (refused); then
    polls every 50 ms until a request passes again. Returns the number of
    seconds that took."""
    rs = get_many(gw, path, limit + 1)
    assert [r.status_code for r in rs] == [200] * limit + [429], [r.status_code for r in rs]
    t0 = time.monotonic()
    deadline = t0 + budget_s
    while time.monotonic() < deadline:
        r = gw.get(path)
        if r.status_code == 200:
            return time.monotonic() - t0
        assert r.status_code == 429, r.text
        time.sleep(0.05)
    pytest.fail(f"no request passed again within {budget_s}s")


def test_fixed_window_restores_the_whole_limit_at_the_window_boundary(gateway, echo):
    gw = one_route_gw(gateway, echo, [rl(4, "2s", key="ip", algorithm="fixed_window")])
    waited = _exhaust_then_wait_for_next_pass(gw, "/api/x", 4)
    assert waited <= 2.5, f"a 2s fixed window reopened only after {waited:.2f}s"
    # Right after the boundary the window is whole: the pass above plus 3 more.
    got = [r.status_code for r in get_many(gw, "/api/x", 4)]
    assert got == [200, 200, 200, 429], got


def test_fixed_window_retry_after_is_within_the_window(gateway, echo):
    gw = one_route_gw(gateway, echo, [rl(1, "1m", key="ip", algorithm="fixed_window")])
    rs = get_many(gw, "/api/x", 2)
    assert [r.status_code for r in rs] == [200, 429]
    assert_rate_limited(rs[1], max_retry=60)


def test_sliding_window_does_not_restore_the_whole_limit_at_a_boundary(gateway, echo):
    gw = one_route_gw(gateway, echo, [rl(4, "2s", key="ip", algorithm="sliding_window")])
    waited = _exhaust_then_wait_for_next_pass(gw, "/api/x", 4)
    assert waited <= 4.5, f"a 2s sliding window reopened only after {waited:.2f}s"
    # The previous window still weighs on the estimate: not 3 more at once.
    got = [r.status_code for r in get_many(gw, "/api/x", 4)]
    assert got.count(200) <= 1, f"sliding window let {got.count(200) + 1} pass right after reopening"
    assert got[-1] == 429, got


def test_sliding_window_is_the_default_algorithm(gateway, echo):
    gw = one_route_gw(gateway, echo, [rl(4, "2s", key="ip")])
    _exhaust_then_wait_for_next_pass(gw, "/api/x", 4)
    got = [r.status_code for r in get_many(gw, "/api/x", 4)]
    assert got.count(200) <= 1, got


def test_token_bucket_allows_the_burst_then_refills_at_limit_per_window(gateway, echo):
    # 2 tokens per 2s = one every second, bucket of 5.
    gw = one_route_gw(gateway, echo, [rl(2, "2s", key="ip", algorithm="token_bucket", burst=5)])
    rs = get_many(gw, "/api/x", 6)
    assert [r.status_code for r in rs] == [200] * 5 + [429], [r.status_code for r in rs]
    assert [rl_headers(r)[1] for r in rs[:5]] == [4, 3, 2, 1, 0]
    assert retry_after(rs[5]) == 1, "the next token is at most a second away"
    assert_rate_limited(rs[5], max_retry=1)
    time.sleep(1.25)
    got = [r.status_code for r in get_many(gw, "/api/x", 3)]
    assert got == [200, 429, 429], f"one token refills per second: {got}"
    time.sleep(1.0)
    got = [r.status_code for r in get_many(gw, "/api/x", 2)]
    assert got == [200, 429], f"one token refills per second: {got}"


def test_token_bucket_without_burst_holds_limit_tokens(gateway, echo):
    gw = one_route_gw(gateway, echo, [rl(3, "1m", key="ip", algorithm="token_bucket")])
    got = [r.status_code for r in get_many(gw, "/api/x", 5)]
    assert got == [200, 200, 200, 429, 429], got


def test_retry_after_is_honest_for_sliding_window(gateway, echo):
    """Waiting Retry-After seconds is enough for the next request to pass."""
    gw = one_route_gw(gateway, echo, [rl(2, "2s", key="ip")])
    rs = get_many(gw, "/api/x", 3)
    assert [r.status_code for r in rs] == [200, 200, 429]
    wait = retry_after(rs[2])
    assert 1 <= wait <= 4, wait
    time.sleep(wait + 0.1)
    r = gw.get("/api/x")
    assert r.status_code == 200, f"still refused after the advertised Retry-After {wait}s"


def test_problem_body_is_json_with_the_request_id(gateway, echo):
    gw = one_route_gw(gateway, echo, [rl(1, key="ip")])
    gw.get("/api/x")
    r = gw.get("/api/x", headers={"X-Request-Id": "rl-test-42"})
    problem = assert_problem(r.status_code, r.headers, r.content, 429)
    assert problem["detail"] == RATE_LIMITED_DETAIL
    assert problem["request_id"] == "rl-test-42"
