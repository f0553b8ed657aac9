"""rate_limit keys and plans (docs/protection.md, "rate_limit"): consumer
(falling back to the client IP), ip (through trusted_proxies), route,
header:NAME, claim:NAME from a verified JWT, lists of keys, use_plan with
consumers' plans, and global_plugins (one budget across routes, a route's own
entry overrides)."""

import time

import jwt
import pytest

from ratelimit_support import assert_rate_limited, config, get_many, rl, rl_headers, route

KEYS = {"alice": "k-alice-0001", "bob": "k-bob-0002", "carol": "k-carol-0003", "dave": "k-dave-0004"}
JWT_ENV = "RL_TEST_JWT_SECRET"
JWT_SECRET = "rl-jwt-secret-0123456789abcdef-0123456789"  # >= 32 bytes for HS256
ISSUER = "https://auth.example.com"
AUDIENCE = "links-api"


@pytest.fixture
def echo(backend):
    return backend("echo")


def consumers():
    return [
        {"name": "alice", "plan": "free", "api_keys": [KEYS["alice"]]},
        {"name": "bob", "plan": "pro", "api_keys": [KEYS["bob"]]},
        {"name": "carol", "api_keys": [KEYS["carol"]]},
        {"name": "dave", "plan": "free", "api_keys": [KEYS["dave"]]},
    ]


PLANS = {"free": {"rate_limit": {"limit": 2, "window": "1m"}},
         "pro": {"rate_limit": {"limit": 5, "window": "1m"}}}

KEY_AUTH = {"key_auth": {"header": "X-API-Key"}}


def as_(name):
    return {"X-API-Key": KEYS[name]}


def codes(gw, path, n, **kwargs):
    return [r.status_code for r in get_many(gw, path, n, **kwargs)]


# --------------------------------------------------------------------------
# key: consumer (the default)

def test_consumer_key_gives_each_consumer_its_own_budget(gateway, echo):
    gw = gateway(config({"svc": echo}, [route("api", "/api/", [KEY_AUTH, rl(2)])],
                        consumers=consumers()), workers=1)
    assert codes(gw, "/api/x", 3, headers=as_("alice")) == [200, 200, 429]
    assert codes(gw, "/api/x", 3, headers=as_("bob")) == [200, 200, 429]
    r = gw.get("/api/x", headers=as_("alice"))
    assert_rate_limited(r)


def test_consumer_key_falls_back_to_the_client_ip_without_a_consumer(gateway, echo):
    gw = gateway(config({"svc": echo}, [route("api", "/api/", [rl(2, key="consumer")])],
                        trusted_proxies=["127.0.0.1/32"]), workers=1)
    a = {"X-Forwarded-For": "198.51.100.1"}
    b = {"X-Forwarded-For": "198.51.100.2"}
    assert codes(gw, "/api/x", 3, headers=a) == [200, 200, 429]
    assert codes(gw, "/api/x", 3, headers=b) == [200, 200, 429], "another client IP, another budget"


def test_default_key_is_consumer(gateway, echo):
    gw = gateway(config({"svc": echo}, [route("api", "/api/", [KEY_AUTH, rl(1)])],
                        consumers=consumers()), workers=1)
    assert codes(gw, "/api/x", 2, headers=as_("alice")) == [200, 429]
    assert codes(gw, "/api/x", 2, headers=as_("carol")) == [200, 429]


# --------------------------------------------------------------------------
# key: ip, route, header

def test_ip_key_shares_one_budget_between_consumers_of_one_address(gateway, echo):
    gw = gateway(config({"svc": echo}, [route("api", "/api/", [KEY_AUTH, rl(3, key="ip")])],
                        consumers=consumers()), workers=1)
    got = [gw.get("/api/x", headers=as_(n)).status_code for n in ("alice", "bob", "carol", "dave")]
    assert got == [200, 200, 200, 429], got


def test_route_key_is_one_budget_for_everyone(gateway, echo):
    gw = gateway(config({"svc": echo}, [route("api", "/api/", [rl(3, key="route")]),
                                        route("other", "/other/", [rl(3, key="route")])],
                        trusted_proxies=["127.0.0.1/32"]), workers=1)
    got = [gw.get("/api/x", headers={"X-Forwarded-For": f"203.0.113.{i}"}).status_code
           for i in range(1, 5)]
    assert got == [200, 200, 200, 429], got
    assert codes(gw, "/other/x", 1) == [200], "another route's counter is its own"


def test_header_key_counts_per_header_value(gateway, echo):
    gw = gateway(config({"svc": echo}, [route("api", "/api/", [rl(2, key="header:X-Tenant")])]),
                 workers=1)
    assert codes(gw, "/api/x", 3, headers={"X-Tenant": "acme"}) == [200, 200, 429]
    assert codes(gw, "/api/x", 2, headers={"X-Tenant": "globex"}) == [200, 200]
    # Header names are case-insensitive.
    assert codes(gw, "/api/x", 1, headers={"x-tenant": "globex"}) == [429]


def test_header_key_without_the_header_falls_back_to_the_client_ip(gateway, echo):
    gw = gateway(config({"svc": echo}, [route("api", "/api/", [rl(2, key="header:X-Tenant")])],
                        trusted_proxies=["127.0.0.1/32"]), workers=1)
    a = {"X-Forwarded-For": "198.51.100.7"}
    b = {"X-Forwarded-For": "198.51.100.8"}
    assert codes(gw, "/api/x", 3, headers=a) == [200, 200, 429]
    assert codes(gw, "/api/x", 2, headers=b) == [200, 200]
    assert codes(gw, "/api/x", 1, headers={**a, "X-Tenant": "t1"}) == [200]


def test_list_of_keys_combines_them(gateway, echo):
    gw = gateway(config({"svc": echo}, [route("api", "/api/", [
        KEY_AUTH, rl(2, key=["consumer", "header:X-Tenant"])])], consumers=consumers()), workers=1)
    t1, t2 = {"X-Tenant": "t1"}, {"X-Tenant": "t2"}
    assert codes(gw, "/api/x", 3, headers={**as_("alice"), **t1}) == [200, 200, 429]
    assert codes(gw, "/api/x", 1, headers={**as_("alice"), **t2}) == [200]
    assert codes(gw, "/api/x", 1, headers={**as_("bob"), **t1}) == [200]


# --------------------------------------------------------------------------
# key: claim:NAME

def token(sub, **extra):
    now = int(time.time())
    c = {"sub": sub, "iss": ISSUER, "aud": AUDIENCE, "iat": now, "exp": now + 300}
    c.update(extra)
    return {"Authorization": "Bearer " + jwt.encode(c, JWT_SECRET, algorithm="HS256")}


@pytest.fixture
def jwt_gw(gateway, echo, monkeypatch):
    monkeypatch.setenv(JWT_ENV, JWT_SECRET)

    def make(key, limit=2):
        plugin = {"jwt": {"secret_env": JWT_ENV, "algorithms": ["HS256"], "issuer": ISSUER,
                          "audience": AUDIENCE,
                          "claims_to_headers": {"X-User-ID": "sub", "X-Org": "org"}}}
        return gateway(config({"svc": echo}, [route("api", "/api/", [plugin, rl(limit, key=key)])]),
                       workers=1)
    return make


def test_claim_key_counts_per_claim_value(jwt_gw):
    gw = jwt_gw("claim:org")
    u1, u2, u3 = token("u1", org="acme"), token("u2", org="acme"), token("u3", org="globex")
    assert gw.get("/api/x", headers=u1).status_code == 200
    assert gw.get("/api/x", headers=u2).status_code == 200
    r = gw.get("/api/x", headers=u1)
    assert_rate_limited(r)
    assert codes(gw, "/api/x", 2, headers=u3) == [200, 200], "another org, another budget"


def test_claim_sub_is_the_user_id(jwt_gw):
    gw = jwt_gw("claim:sub")
    u1a, u1b, u2 = token("u1", org="acme"), token("u1", org="globex"), token("u2", org="acme")
    assert gw.get("/api/x", headers=u1a).status_code == 200
    assert gw.get("/api/x", headers=u1b).status_code == 200
    assert gw.get("/api/x", headers=u1a).status_code == 429, "u1's budget is spent"
    assert gw.get("/api/x", headers=u2).status_code == 200


def test_invalid_token_is_refused_before_it_counts(jwt_gw):
    gw = jwt_gw("claim:sub", limit=1)
    bad = {"Authorization": "Bearer " + jwt.encode({"sub": "u1", "iss": ISSUER, "aud": AUDIENCE,
                                                    "exp": int(time.time()) + 300},
                                                   "x" * 40, algorithm="HS256")}
    assert gw.get("/api/x", headers=bad).status_code == 401
    assert gw.get("/api/x", headers=token("u1")).status_code == 200


# --------------------------------------------------------------------------
# plans

def test_use_plan_takes_limit_and_window_from_the_consumers_plan(gateway, echo):
    gw = gateway(config({"svc": echo}, [route("api", "/api/", [KEY_AUTH, {"rate_limit": {"use_plan": True}}])],
                        consumers=consumers(), plans=PLANS), workers=1)
    alice = get_many(gw, "/api/x", 3, headers=as_("alice"))
    assert [r.status_code for r in alice] == [200, 200, 429]
    assert rl_headers(alice[0])[:2] == (2, 1)
    assert_rate_limited(alice[2])
    bob = get_many(gw, "/api/x", 6, headers=as_("bob"))
    assert [r.status_code for r in bob] == [200] * 5 + [429]
    assert rl_headers(bob[0])[:2] == (5, 4)
    # dave is on the same plan as alice but counts apart (key: consumer).
    assert codes(gw, "/api/x", 3, headers=as_("dave")) == [200, 200, 429]


def test_a_consumer_without_plan_and_no_own_limit_passes_unlimited(gateway, echo):
    gw = gateway(config({"svc": echo}, [route("api", "/api/", [KEY_AUTH, {"rate_limit": {"use_plan": True}}])],
                        consumers=consumers(), plans=PLANS), workers=1)
    assert codes(gw, "/api/x", 12, headers=as_("carol")) == [200] * 12


def test_a_consumer_without_plan_falls_back_to_the_entrys_own_limit(gateway, echo):
    gw = gateway(config({"svc": echo}, [route("api", "/api/", [
        KEY_AUTH, {"rate_limit": {"use_plan": True, "limit": 3, "window": "1m"}}])],
        consumers=consumers(), plans=PLANS), workers=1)
    carol = get_many(gw, "/api/x", 4, headers=as_("carol"))
    assert [r.status_code for r in carol] == [200, 200, 200, 429]
    assert rl_headers(carol[0])[:2] == (3, 2)
    # A consumer with a plan still gets the plan, not the entry's limit.
    assert codes(gw, "/api/x", 6, headers=as_("bob")) == [200] * 5 + [429]


def test_plan_counters_belong_to_their_route(gateway, echo):
    plan = {"rate_limit": {"use_plan": True}}
    gw = gateway(config({"svc": echo}, [route("a", "/a/", [KEY_AUTH, plan]),
                                        route("b", "/b/", [KEY_AUTH, plan])],
                        consumers=consumers(), plans=PLANS), workers=1)
    assert codes(gw, "/a/x", 3, headers=as_("alice")) == [200, 200, 429]
    assert codes(gw, "/b/x", 3, headers=as_("alice")) == [200, 200, 429]


# --------------------------------------------------------------------------
# trusted_proxies decide the ip key

def test_ip_key_believes_x_forwarded_for_from_a_trusted_peer(gateway, echo):
    gw = gateway(config({"svc": echo}, [route("api", "/api/", [rl(2, key="ip")])],
                        trusted_proxies=["127.0.0.1/32"]), workers=1)
    a = {"X-Forwarded-For": "192.0.2.10"}
    b = {"X-Forwarded-For": "192.0.2.11"}
    assert codes(gw, "/api/x", 3, headers=a) == [200, 200, 429]
    assert codes(gw, "/api/x", 3, headers=b) == [200, 200, 429]
    # Only the right-most untrusted hop counts: a spoofed left entry changes nothing.
    assert codes(gw, "/api/x", 1, headers={"X-Forwarded-For": "192.0.2.99, 192.0.2.10"}) == [429]


def test_ip_key_ignores_x_forwarded_for_from_an_untrusted_peer(gateway, echo):
    gw = gateway(config({"svc": echo}, [route("api", "/api/", [rl(2, key="ip")])],
                        trusted_proxies=["192.0.2.0/24"]), workers=1)
    got = [gw.get("/api/x", headers={"X-Forwarded-For": f"198.51.100.{i}"}).status_code
           for i in range(1, 4)]
    assert got == [200, 200, 429], "the peer 127.0.0.1 is not trusted: its XFF must not split budgets"


def test_ip_key_without_trusted_proxies_ignores_x_forwarded_for(gateway, echo):
    gw = gateway(config({"svc": echo}, [route("api", "/api/", [rl(2, key="ip")])]), workers=1)
    got = [gw.get("/api/x", headers={"X-Forwarded-For": f"198.51.100.{i}"}).status_code
           for i in range(1, 4)]
    assert got == [200, 200, 429], got


# --------------------------------------------------------------------------
# global_plugins

def test_global_limit_is_one_budget_across_routes_and_a_routes_own_entry_wins(gateway, echo):
    cfg = config({"svc": echo}, [
        route("a", "/a/"),
        route("b", "/b/"),
        route("c", "/c/", [rl(10, key="ip")]),
    ], global_plugins=[rl(3, "1m", key="ip")])
    gw = gateway(cfg, workers=1)
    # c has its own entry: the global one does not apply there, nor count.
    cs = get_many(gw, "/c/x", 5)
    assert [r.status_code for r in cs] == [200] * 5
    assert [rl_headers(r)[:2] for r in cs] == [(10, 9), (10, 8), (10, 7), (10, 6), (10, 5)]
    a1 = gw.get("/a/x")
    assert a1.status_code == 200 and rl_headers(a1)[:2] == (3, 2)
    b1 = gw.get("/b/x")
    assert b1.status_code == 200 and rl_headers(b1)[:2] == (3, 1), "a and b share the global budget"
    assert gw.get("/a/x").status_code == 200
    assert_rate_limited(gw.get("/b/x"))
    assert_rate_limited(gw.get("/a/x"))
    assert gw.get("/c/x").status_code == 200


def test_global_limit_applies_to_every_route_per_client_ip(gateway, echo):
    cfg = config({"svc": echo}, [route("a", "/a/"), route("b", "/b/")],
                 global_plugins=[rl(2, "1m", key="ip")], trusted_proxies=["127.0.0.1/32"])
    gw = gateway(cfg, workers=1)
    x = {"X-Forwarded-For": "192.0.2.50"}
    y = {"X-Forwarded-For": "192.0.2.51"}
    assert gw.get("/a/x", headers=x).status_code == 200
    assert gw.get("/b/x", headers=x).status_code == 200
    assert gw.get("/a/x", headers=x).status_code == 429
    assert gw.get("/b/x", headers=y).status_code == 200, "another client IP has its own budget"
