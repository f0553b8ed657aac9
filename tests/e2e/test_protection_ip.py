"""ip_restriction and trusted_proxies (docs/protection.md, "ip_restriction"):
allow/deny CIDR blocks and single addresses, IPv4 and IPv6, deny winning
over allow, and the client IP taken from X-Forwarded-For only through
trusted proxies, walked from the right."""

import pytest

from conftest import assert_problem, free_port
from ratelimit_support import (IP_REFUSED_DETAIL, config, get_many, require_ipv6, rl, route)


@pytest.fixture
def echo(backend):
    return backend("echo")


def assert_ip_refused(r):
    problem = assert_problem(r.status_code, r.headers, r.content, 403)
    assert problem["detail"] == IP_REFUSED_DETAIL, problem
    return problem


def xff(value):
    return {"X-Forwarded-For": value}


ALLOW_10_DENY_ONE = {"ip_restriction": {"allow": ["10.0.0.0/8"], "deny": ["10.1.2.3/32"]}}


@pytest.fixture
def trusted_gw(gateway, echo, recorder):
    """127.0.0.1 and 192.0.2.0/24 are trusted proxies."""
    rec = recorder()
    gw = gateway(config({"svc": echo, "rec": rec}, [
        route("allow", "/allow/", [ALLOW_10_DENY_ONE]),
        route("deny-local", "/deny-local/", [{"ip_restriction": {"deny": ["127.0.0.0/8"]}}], upstream="rec"),
        route("single", "/single/", [{"ip_restriction": {"allow": ["10.9.9.9"]}}]),
        route("open", "/open/"),
    ], trusted_proxies=["127.0.0.1/32", "192.0.2.0/24"]), workers=1)
    gw.rec = rec
    return gw


def test_allowed_block_passes_and_reaches_the_upstream(trusted_gw):
    r = trusted_gw.get("/allow/x", headers=xff("10.5.5.5"))
    assert r.status_code == 200, r.text
    assert r.json()["backend"] == "echo"


def test_deny_wins_over_allow(trusted_gw):
    assert_ip_refused(trusted_gw.get("/allow/x", headers=xff("10.1.2.3")))
    assert trusted_gw.get("/allow/x", headers=xff("10.1.2.4")).status_code == 200


def test_with_an_allow_list_any_other_address_is_refused(trusted_gw):
    assert_ip_refused(trusted_gw.get("/allow/x", headers=xff("192.168.1.1")))
    assert_ip_refused(trusted_gw.get("/allow/x", headers=xff("11.0.0.1")))
    # No X-Forwarded-For: the peer, 127.0.0.1, is not in the allow list.
    assert_ip_refused(trusted_gw.get("/allow/x"))


def test_a_single_address_entry_matches_only_that_address(trusted_gw):
    assert trusted_gw.get("/single/x", headers=xff("10.9.9.9")).status_code == 200
    assert_ip_refused(trusted_gw.get("/single/x", headers=xff("10.9.9.8")))


def test_deny_only_refuses_the_block_and_nothing_reaches_the_upstream(trusted_gw):
    r = trusted_gw.get("/deny-local/x")
    assert_ip_refused(r)
    trusted_gw.rec.settle(0.2)
    assert trusted_gw.rec.bytes == 0, "a refused request must not reach the upstream"
    # Another client address, believed through the trusted peer, passes.
    assert trusted_gw.get("/deny-local/x", headers=xff("10.5.5.5")).status_code == 200
    assert trusted_gw.get("/open/x").status_code == 200


def test_x_forwarded_for_is_walked_from_the_right(trusted_gw):
    # The right-most untrusted entry is the client; anything left of it is the client's word.
    assert_ip_refused(trusted_gw.get("/allow/x", headers=xff("10.5.5.5, 10.1.2.3")))
    assert trusted_gw.get("/allow/x", headers=xff("10.1.2.3, 10.5.5.5")).status_code == 200
    # 192.0.2.7 is a trusted proxy: skipped, the hop before it is the client.
    assert trusted_gw.get("/allow/x", headers=xff("10.5.5.5, 192.0.2.7")).status_code == 200
    assert_ip_refused(trusted_gw.get("/allow/x", headers=xff("10.1.2.3, 192.0.2.7")))
    # An untrusted hop stops the walk even if a trusted one follows it.
    assert_ip_refused(trusted_gw.get("/allow/x", headers=xff("10.5.5.5, 198.51.100.1, 192.0.2.7")))


def test_several_x_forwarded_for_fields_are_one_list(trusted_gw):
    from conftest import raw_request
    resp = raw_request(trusted_gw.port, b"GET /allow/x HTTP/1.1\r\nHost: t\r\n"
                                        b"X-Forwarded-For: 10.5.5.5\r\n"
                                        b"X-Forwarded-For: 10.1.2.3\r\nConnection: close\r\n\r\n")
    assert resp.status == 403, resp.status_line


def test_x_forwarded_for_from_an_untrusted_peer_is_ignored(gateway, echo):
    gw = gateway(config({"svc": echo}, [
        route("allow", "/allow/", [ALLOW_10_DENY_ONE]),
        route("deny-local", "/deny-local/", [{"ip_restriction": {"deny": ["127.0.0.1"]}}]),
    ], trusted_proxies=["192.0.2.0/24"]), workers=1)
    assert_ip_refused(gw.get("/allow/x", headers=xff("10.5.5.5")))
    assert_ip_refused(gw.get("/deny-local/x", headers=xff("10.5.5.5")))


def test_without_trusted_proxies_the_peer_decides(gateway, echo):
    gw = gateway(config({"svc": echo}, [
        route("local-only", "/x/", [{"ip_restriction": {"allow": ["127.0.0.0/8"]}}]),
    ]), workers=1)
    assert gw.get("/x/a", headers=xff("10.5.5.5")).status_code == 200
    assert gw.get("/x/a").status_code == 200


# --------------------------------------------------------------------------
# IPv6

@pytest.fixture
def v6_gw(gateway, echo):
    require_ipv6()

    def make(routes, **extra):
        cfg = config({"svc": echo}, routes, **extra)
        cfg["listen"] = f"[::1]:{free_port('::1')}"
        return gateway(cfg, workers=1)
    return make


def test_ipv6_peer_is_matched_against_ipv6_blocks(v6_gw):
    gw = v6_gw([
        route("loop", "/loop/", [{"ip_restriction": {"allow": ["::1/128"]}}]),
        route("single", "/single/", [{"ip_restriction": {"allow": ["::1"]}}]),
        route("denied", "/denied/", [{"ip_restriction": {"deny": ["::1"]}}]),
        route("doc", "/doc/", [{"ip_restriction": {"allow": ["2001:db8::/32"]}}]),
        route("v4", "/v4/", [{"ip_restriction": {"allow": ["127.0.0.0/8"]}}]),
        route("both", "/both/", [{"ip_restriction": {"allow": ["::/0"], "deny": ["::1/128"]}}]),
    ])
    assert gw.host == "::1"
    assert gw.get("/loop/x").status_code == 200
    assert gw.get("/single/x").status_code == 200
    assert_ip_refused(gw.get("/denied/x"))
    assert_ip_refused(gw.get("/doc/x"))
    assert_ip_refused(gw.get("/v4/x"))
    assert_ip_refused(gw.get("/both/x"))


def test_ipv6_client_through_a_trusted_ipv6_proxy(v6_gw):
    gw = v6_gw([route("doc", "/doc/", [{"ip_restriction": {"allow": ["2001:db8::/32"],
                                                           "deny": ["2001:db8::bad/128"]}}])],
               trusted_proxies=["::1/128"])
    assert gw.get("/doc/x", headers=xff("2001:db8::5")).status_code == 200
    assert_ip_refused(gw.get("/doc/x", headers=xff("2001:db8::bad")))
    assert_ip_refused(gw.get("/doc/x", headers=xff("2001:db9::1")))
    assert_ip_refused(gw.get("/doc/x"))


def test_ipv6_client_behind_an_ipv4_trusted_proxy(gateway, echo):
    gw = gateway(config({"svc": echo}, [
        route("doc", "/doc/", [{"ip_restriction": {"allow": ["2001:db8::/32"]}}])],
        trusted_proxies=["127.0.0.1/32"]), workers=1)
    assert gw.get("/doc/x", headers=xff("2001:db8::1:5")).status_code == 200
    assert_ip_refused(gw.get("/doc/x", headers=xff("2001:db9::1")))


def test_rate_limit_by_ip_over_ipv6(v6_gw):
    gw = v6_gw([route("api", "/api/", [rl(2, key="ip")])])
    assert [r.status_code for r in get_many(gw, "/api/x", 3)] == [200, 200, 429]
