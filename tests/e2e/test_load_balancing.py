"""Load balancing across targets, and refused targets being skipped."""

import threading
import time
from collections import Counter

import requests

from conftest import assert_problem, closed_port, metric_sum, proxy_config


def backend_names(gw, count, path="/lb", session=None, **kwargs):
    names = []
    getter = session.get if session else requests.get
    for i in range(count):
        r = getter(gw.url(f"{path}/{i}"), timeout=10, **kwargs)
        assert r.status_code == 200, r.text
        names.append(r.headers["X-Backend"])
    return names


def test_round_robin_honours_weights_exactly_on_one_worker(gateway, backend):
    a, b = backend("a"), backend("b")
    gw = gateway(proxy_config([a.addr, {"address": b.addr, "weight": 3}],
                              upstream_extra={"balance": "round_robin"}), workers=1)
    with requests.Session() as s:
        counts = Counter(backend_names(gw, 40, session=s))
    assert counts == {"a": 10, "b": 30}


def test_round_robin_alternates_between_equal_targets(gateway, backend):
    a, b = backend("a"), backend("b")
    gw = gateway(proxy_config([a, b]), workers=1)
    names = backend_names(gw, 10)
    assert Counter(names) == {"a": 5, "b": 5}
    assert all(x != y for x, y in zip(names, names[1:])), names


def test_consistent_hash_on_header_keeps_each_user_on_one_backend(gateway, backend):
    a, b = backend("a"), backend("b")
    gw = gateway(proxy_config([a, b], upstream_extra={"balance": "consistent_hash",
                                                       "hash_on": "header:X-User-ID"}))
    placement = {}
    for rep in range(3):
        for user in range(20):
            r = gw.get(f"/u?rep={rep}", headers={"X-User-ID": f"user-{user}"})
            assert r.status_code == 200
            placement.setdefault(user, set()).add(r.headers["X-Backend"])
    moved = {u: s for u, s in placement.items() if len(s) > 1}
    assert not moved, f"users seen on more than one backend: {moved}"
    used = set().union(*placement.values())
    assert used == {"a", "b"}, "20 users all hashed to one backend"


def test_consistent_hash_on_path_keeps_each_path_on_one_backend(gateway, backend):
    a, b = backend("a"), backend("b")
    gw = gateway(proxy_config([a, b], upstream_extra={"balance": "consistent_hash",
                                                       "hash_on": "path"}))
    placement = {}
    for rep in range(2):
        for item in range(20):
            r = gw.get(f"/items/{item}")
            placement.setdefault(item, set()).add(r.headers["X-Backend"])
    assert all(len(s) == 1 for s in placement.values()), placement
    assert set().union(*placement.values()) == {"a", "b"}


def test_random_balancing_spreads_over_both_targets(gateway, backend):
    a, b = backend("a"), backend("b")
    gw = gateway(proxy_config([a, b], upstream_extra={"balance": "random"}))
    counts = Counter(backend_names(gw, 40))
    assert counts["a"] >= 5 and counts["b"] >= 5, counts


def test_least_request_spreads_concurrent_requests_over_both_targets(gateway, backend):
    a, b = backend("a"), backend("b")
    gw = gateway(proxy_config([a, b], upstream_extra={"balance": "least_request"}), workers=1)
    names, errors = [], []

    def one(i):
        try:
            r = gw.get(f"/slow/{i}?delay_ms=600")
            names.append(r.headers.get("X-Backend"))
        except Exception as e:
            errors.append(e)

    threads = [threading.Thread(target=one, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
        time.sleep(0.02)
    for t in threads:
        t.join(15)
    assert not errors, errors
    counts = Counter(names)
    assert counts["a"] >= 3 and counts["b"] >= 3, counts


def test_least_request_sends_new_requests_to_the_idle_target(gateway, backend):
    a, b = backend("a"), backend("b")
    gw = gateway(proxy_config([a, b], upstream_extra={"balance": "least_request"}), workers=1)
    slow = {}
    t = threading.Thread(target=lambda: slow.setdefault("r", gw.get("/slow?delay_ms=1500")))
    t.start()
    time.sleep(0.3)
    quick = backend_names(gw, 6, path="/quick")
    t.join(10)
    busy = slow["r"].headers["X-Backend"]
    assert busy not in quick, f"slow request on {busy}, quick ones went to {quick}"


def test_refused_target_is_skipped_and_then_avoided(gateway, backend):
    a = backend("a")
    dead = f"127.0.0.1:{closed_port()}"
    gw = gateway(proxy_config([dead, a.addr]))
    names = backend_names(gw, 20)
    assert set(names) == {"a"}
    errors = metric_sum(gw.metrics(), "gatehouse_upstream_connect_errors_total", upstream="svc")
    assert 1 <= errors <= 2, f"{errors} connect errors: the refused target was not avoided"


def test_all_targets_refusing_gives_502_then_503_while_avoided(gateway):
    dead = [f"127.0.0.1:{closed_port()}", f"127.0.0.1:{closed_port()}"]
    gw = gateway(proxy_config(dead), workers=1)
    r = gw.get("/x")
    assert_problem(r.status_code, r.headers, r.content, 502)
    for _ in range(2):
        r = gw.get("/x")
        assert_problem(r.status_code, r.headers, r.content, 503)
