"""security_headers (docs/protection.md, "security_headers"): the four
defaults on every response of the route (proxied and local), each one
overridable or dropped with false."""

import pytest

from ratelimit_support import config, get_many, respond_route, rl, route

DEFAULTS = {
    "Strict-Transport-Security": "max-age=31536000; includeSubDomains",
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
}


@pytest.fixture
def echo(backend):
    return backend("echo")


def assert_headers(r, expected):
    for name, value in expected.items():
        assert r.headers.get(name) == value, f"{name}: {r.headers.get(name)!r}, expected {value!r}"


def test_defaults_on_a_proxied_response(gateway, echo):
    gw = gateway(config({"svc": echo}, [route("api", "/api/", [{"security_headers": {}}])]), workers=1)
    r = gw.get("/api/x")
    assert r.status_code == 200 and r.json()["backend"] == "echo"
    assert_headers(r, DEFAULTS)
    assert "x-frame-options" not in r.json()["headers"], "response headers, not request headers"


def test_defaults_on_local_answers(gateway, echo):
    gw = gateway(config({"svc": echo}, [
        respond_route("ping", "/ping", [{"security_headers": {}}], body="pong"),
        route("auth", "/auth/", [{"key_auth": {"header": "X-API-Key"}}, {"security_headers": {}}]),
        route("limited", "/limited/", [rl(1, key="ip"), {"security_headers": {}}]),
    ]), workers=1)
    r = gw.get("/ping")
    assert r.status_code == 200 and r.text == "pong"
    assert_headers(r, DEFAULTS)
    r = gw.get("/auth/x")
    assert r.status_code == 401
    assert_headers(r, DEFAULTS)
    rs = get_many(gw, "/limited/x", 2)
    assert [x.status_code for x in rs] == [200, 429]
    assert_headers(rs[1], DEFAULTS)


def test_each_header_can_be_overridden(gateway, echo):
    gw = gateway(config({"svc": echo}, [route("api", "/api/", [{"security_headers": {
        "hsts": "max-age=600", "frame_options": "SAMEORIGIN", "referrer_policy": "same-origin",
        "content_type_options": "nosniff"}}])]), workers=1)
    r = gw.get("/api/x")
    assert r.status_code == 200
    assert_headers(r, {"Strict-Transport-Security": "max-age=600", "X-Frame-Options": "SAMEORIGIN",
                       "Referrer-Policy": "same-origin", "X-Content-Type-Options": "nosniff"})


@pytest.mark.parametrize("field,header", [
    ("hsts", "Strict-Transport-Security"),
    ("frame_options", "X-Frame-Options"),
    ("referrer_policy", "Referrer-Policy"),
    ("content_type_options", "X-Content-Type-Options"),
])
def test_each_header_can_be_dropped_with_false(gateway, echo, field, header):
    gw = gateway(config({"svc": echo}, [route("api", "/api/", [{"security_headers": {field: False}}])]),
                 workers=1)
    r = gw.get("/api/x")
    assert r.status_code == 200
    assert header not in r.headers, f"{header} should be dropped"
    assert_headers(r, {k: v for k, v in DEFAULTS.items() if k != header})


def test_each_header_appears_once_even_if_the_upstream_sent_it(gateway, echo):
    gw = gateway(config({"svc": echo}, [route("api", "/api/", [{"security_headers": {}}])]), workers=1)
    r = gw.get("/api/x?header=X-Frame-Options:SAMEORIGIN")
    assert r.status_code == 200
    values = r.raw.headers.getlist("X-Frame-Options")
    assert len(values) == 1, f"X-Frame-Options sent {len(values)} times: {values}"


def test_routes_without_the_plugin_get_none_of_the_headers(gateway, echo):
    gw = gateway(config({"svc": echo}, [route("api", "/api/", [{"security_headers": {}}]),
                                        route("plain", "/plain/")]), workers=1)
    r = gw.get("/plain/x")
    assert r.status_code == 200
    for name in DEFAULTS:
        assert name not in r.headers, f"{name} on a route without security_headers"


def test_security_headers_in_global_plugins_apply_to_every_route(gateway, echo):
    gw = gateway(config({"svc": echo}, [route("a", "/a/"), respond_route("b", "/b")],
                        global_plugins=[{"security_headers": {"frame_options": "SAMEORIGIN"}}]), workers=1)
    for path in ("/a/x", "/b"):
        r = gw.get(path)
        assert r.status_code == 200
        assert_headers(r, {**DEFAULTS, "X-Frame-Options": "SAMEORIGIN"})
