"""store: local (docs/protection.md, "rate_limit"): exact for the whole
instance across every worker thread, memory bounded under a flood of
distinct keys, long windows as quotas."""

import threading
import time

import pytest

from conftest import metric_sum
from ratelimit_support import (assert_rate_limited, config, count, fire, get_many, pipelined, rl,
                               rl_headers, route)

UNTRACKED = "gatehouse_rate_limit_untracked_total"
TRACKED_KEYS_PER_ENTRY = 65536


@pytest.fixture
def echo(backend):
    return backend("echo")


def test_local_store_is_exact_across_four_busy_workers(gateway, echo):
    gw = gateway(config({"svc": echo}, [route("api", "/api/", [rl(50, "1m", key="route", store="local")])]),
                 workers=4)
    answers = fire(gw, "/api/x", 200, threads=24)
    got = [a.status_code for a in answers]
    assert count(got, 200) == 50, f"{count(got, 200)} passed, expected exactly 50 (statuses {sorted(set(got))})"
    assert count(got, 429) == 150, f"statuses: {sorted(set(got))}"
    remaining = sorted(rl_headers(a)[1] for a in answers if a.status_code == 200)
    assert remaining == list(range(50)), f"each allowed request must take its own slot: {remaining}"
    for a in answers:
        if a.status_code == 429:
            assert_rate_limited(a)
    # And afterwards, from a fresh connection: still refused.
    assert gw.get("/api/x").status_code == 429


def test_local_store_is_exact_per_key_across_workers(gateway, echo):
    gw = gateway(config({"svc": echo}, [route("api", "/api/", [rl(20, "1m", key="header:X-Key")])]),
                 workers=4)
    a = fire(gw, "/api/x", 80, threads=16, headers={"X-Key": "one"})
    b = fire(gw, "/api/x", 80, threads=16, headers={"X-Key": "two"})
    assert count([x.status_code for x in a], 200) == 20
    assert count([x.status_code for x in b], 200) == 20


def _flood_requests(n, prefix):
    return [f"GET /api/x HTTP/1.1\r\nHost: t\r\nX-Key: {prefix}{i}\r\n\r\n".encode() for i in range(n)]


@pytest.mark.slow
def test_a_flood_of_distinct_keys_keeps_memory_bounded_and_limits_working(gateway, echo):
    gw = gateway(config({"svc": echo}, [route("api", "/api/", [rl(10, "1m", key="header:X-Key")])]),
                 workers=4)
    known = {"X-Key": "known-client"}
    # The known key takes 4 of its 10 before the flood.
    first = get_many(gw, "/api/x", 4, headers=known)
    assert [r.status_code for r in first] == [200] * 4
    assert rl_headers(first[-1])[1] == 6
    # Warm up buffers and connections so the baseline is honest.
    warm = pipelined(gw.port, _flood_requests(2000, "warm-"), batch=200)
    assert len(warm) == 2000 and set(warm) == {200}, sorted(set(warm))
    baseline_kib = gw.rss_kib()

    n = 100_000
    flood = _flood_requests(n, "flood-")
    connections = 8
    deadline = time.monotonic() + 60
    results = [None] * connections

    def run(i):
        results[i] = pipelined(gw.port, flood[i::connections], batch=250, deadline=deadline)

    threads = [threading.Thread(target=run, args=(i,), daemon=True) for i in range(connections)]
    t0 = time.monotonic()
    for t in threads:
        t.start()
    peak_kib = baseline_kib
    while any(t.is_alive() for t in threads):
        peak_kib = max(peak_kib, gw.rss_kib())
        time.sleep(0.1)
    elapsed = time.monotonic() - t0
    got = [s for part in results for s in (part or [])]
    assert len(got) == n, f"only {len(got)} of {n} flood requests answered in {elapsed:.1f}s"
    # Every flood key was hit once: tracked or not, each must pass.
    assert set(got) == {200}, {s: got.count(s) for s in set(got)}
    peak_kib = max(peak_kib, gw.rss_kib())
    grew_mib = (peak_kib - baseline_kib) / 1024
    assert grew_mib < 64, f"RSS grew by {grew_mib:.1f} MiB under {n} distinct keys"

    # The known key is still limited exactly: 6 left of 10.
    after = get_many(gw, "/api/x", 7, headers=known)
    assert [r.status_code for r in after] == [200] * 6 + [429], [r.status_code for r in after]
    assert_rate_limited(after[-1])

    # At most 65,536 keys are tracked per entry; the others were let through and counted.
    untracked = metric_sum(gw.metrics(), UNTRACKED)
    assert untracked >= n - TRACKED_KEYS_PER_ENTRY, \
        f"{UNTRACKED} = {untracked}: more than {TRACKED_KEYS_PER_ENTRY} keys tracked?"


# --------------------------------------------------------------------------
# long windows

@pytest.mark.parametrize("window,seconds", [("1d", 86400), ("30d", 30 * 86400)])
def test_long_windows_are_quotas(gateway, echo, window, seconds):
    gw = gateway(config({"svc": echo}, [route("api", "/api/", [rl(3, window, key="ip")])]), workers=2)
    rs = get_many(gw, "/api/x", 4)
    assert [r.status_code for r in rs] == [200, 200, 200, 429]
    for r in rs:
        limit, _, reset = rl_headers(r)
        assert limit == 3
        assert 1 <= reset <= seconds, f"RateLimit-Reset {reset} for a {window} window"
    assert_rate_limited(rs[3], window_s=seconds)
