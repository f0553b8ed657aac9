"""cors (docs/protection.md, "cors"): preflights answered at the gateway
(never proxied), refused preflights without any CORS header, CORS headers on
actual requests from allowed origins only, and origins: ["*"]."""

import pytest

from conftest import assert_problem
from ratelimit_support import CORS_REFUSED_DETAIL, config, route

ORIGIN = "https://app.example.com"
OTHER = "https://evil.example.net"

CORS = {"cors": {"origins": [ORIGIN, "https://admin.example.com"], "methods": ["GET", "POST"],
                 "headers": ["Authorization", "X-Trace"], "expose_headers": ["X-Request-Id"],
                 "credentials": True, "max_age": 600}}


@pytest.fixture
def echo(backend):
    return backend("echo")


@pytest.fixture
def cors_gw(gateway, echo, recorder):
    rec = recorder()
    gw = gateway(config({"svc": echo, "rec": rec}, [
        route("pre", "/pre/", [CORS], upstream="rec"),
        route("api", "/api/", [CORS]),
        route("star", "/star/", [{"cors": {"origins": ["*"], "methods": ["GET"]}}]),
        route("star-pre", "/star-pre/", [{"cors": {"origins": ["*"], "methods": ["GET", "PUT"],
                                                   "headers": ["Content-Type"]}}], upstream="rec"),
    ]), workers=1)
    gw.rec = rec
    return gw


def preflight(gw, path, origin=ORIGIN, method="POST", headers=None):
    h = {"Origin": origin, "Access-Control-Request-Method": method}
    if headers is not None:
        h["Access-Control-Request-Headers"] = headers
    return gw.request("OPTIONS", path, headers=h)


def tokens(value):
    return {t.strip().lower() for t in (value or "").split(",") if t.strip()}


def cors_headers(r):
    return {k: v for k, v in r.headers.items() if k.lower().startswith("access-control-")}


def assert_nothing_proxied(gw):
    gw.rec.settle(0.3)
    assert gw.rec.bytes == 0, f"the upstream received {gw.rec.data[:200]!r}"


# --------------------------------------------------------------------------
# preflight

def test_preflight_is_answered_at_the_gateway(cors_gw):
    r = preflight(cors_gw, "/pre/links", headers="Authorization")
    assert r.status_code == 204, r.text
    assert r.content == b""
    assert r.headers.get("Access-Control-Allow-Origin") == ORIGIN
    assert "post" in tokens(r.headers.get("Access-Control-Allow-Methods"))
    assert tokens(r.headers.get("Access-Control-Allow-Headers")) == {"authorization"}
    assert r.headers.get("Access-Control-Max-Age") == "600"
    assert r.headers.get("Access-Control-Allow-Credentials") == "true"
    assert "origin" in tokens(r.headers.get("Vary"))
    assert_nothing_proxied(cors_gw)


def test_preflight_allows_only_the_requested_headers_that_are_allowed(cors_gw):
    r = preflight(cors_gw, "/pre/links", method="GET", headers="x-trace, authorization")
    assert r.status_code == 204, r.text
    assert tokens(r.headers.get("Access-Control-Allow-Headers")) == {"authorization", "x-trace"}
    assert r.headers.get("Access-Control-Allow-Origin") == ORIGIN
    assert_nothing_proxied(cors_gw)


def test_preflight_echoes_whichever_allowed_origin_asked(cors_gw):
    r = preflight(cors_gw, "/pre/links", origin="https://admin.example.com")
    assert r.status_code == 204
    assert r.headers.get("Access-Control-Allow-Origin") == "https://admin.example.com"


@pytest.mark.parametrize("origin,method,headers", [
    (OTHER, "POST", None),
    ("https://app.example.com.evil.net", "POST", None),
    ("http://app.example.com", "POST", None),
    (ORIGIN, "DELETE", None),
    (ORIGIN, "POST", "X-Secret"),
    (ORIGIN, "POST", "Authorization, X-Secret"),
], ids=["origin", "origin-suffix", "origin-scheme", "method", "header", "one-bad-header"])
def test_refused_preflight_is_403_without_any_cors_header(cors_gw, origin, method, headers):
    r = preflight(cors_gw, "/pre/links", origin=origin, method=method, headers=headers)
    problem = assert_problem(r.status_code, r.headers, r.content, 403)
    assert problem["detail"] == CORS_REFUSED_DETAIL, problem
    assert not cors_headers(r), f"CORS headers on a refused preflight: {cors_headers(r)}"
    assert_nothing_proxied(cors_gw)


def test_options_without_request_method_is_not_a_preflight(cors_gw):
    r = cors_gw.request("OPTIONS", "/api/x", headers={"Origin": ORIGIN})
    assert r.status_code == 200, r.text
    assert r.json()["method"] == "OPTIONS", "a plain OPTIONS is proxied like any request"


def test_wildcard_origin_preflight_answers_star(cors_gw):
    r = preflight(cors_gw, "/star-pre/x", origin="https://anything.example.org", method="PUT",
                  headers="Content-Type")
    assert r.status_code == 204, r.text
    assert r.headers.get("Access-Control-Allow-Origin") == "*"
    assert "Access-Control-Allow-Credentials" not in r.headers
    assert tokens(r.headers.get("Access-Control-Allow-Headers")) == {"content-type"}
    assert_nothing_proxied(cors_gw)


# --------------------------------------------------------------------------
# actual requests

def test_actual_request_from_an_allowed_origin_gets_cors_headers(cors_gw):
    r = cors_gw.get("/api/x", headers={"Origin": ORIGIN})
    assert r.status_code == 200
    assert r.json()["backend"] == "echo"
    assert r.headers.get("Access-Control-Allow-Origin") == ORIGIN
    assert r.headers.get("Access-Control-Allow-Credentials") == "true"
    assert tokens(r.headers.get("Access-Control-Expose-Headers")) == {"x-request-id"}
    assert "origin" in tokens(r.headers.get("Vary"))


def test_actual_post_from_an_allowed_origin_is_proxied_with_cors_headers(cors_gw):
    r = cors_gw.post("/api/x", data=b"hello", headers={"Origin": ORIGIN})
    assert r.status_code == 200
    assert r.json()["body_bytes"] == 5
    assert r.headers.get("Access-Control-Allow-Origin") == ORIGIN


def test_actual_request_from_another_origin_is_proxied_without_cors_headers(cors_gw):
    r = cors_gw.get("/api/x", headers={"Origin": OTHER})
    assert r.status_code == 200
    assert r.json()["backend"] == "echo"
    assert not cors_headers(r), cors_headers(r)


def test_request_without_origin_gets_no_cors_headers(cors_gw):
    r = cors_gw.get("/api/x")
    assert r.status_code == 200
    assert not cors_headers(r), cors_headers(r)


def test_vary_origin_joins_the_upstreams_vary(cors_gw):
    # The plugin's Vary must not replace the upstream's: a cache keys on both.
    r = cors_gw.get("/api/x?header=Vary:Accept-Encoding", headers={"Origin": ORIGIN})
    assert r.status_code == 200
    assert r.headers.get("Access-Control-Allow-Origin") == ORIGIN
    assert tokens(r.headers.get("Vary")) == {"accept-encoding", "origin"}, r.headers.get("Vary")


def test_vary_star_from_the_upstream_is_kept_alone(cors_gw):
    r = cors_gw.get("/api/x?header=Vary:*", headers={"Origin": ORIGIN})
    assert r.status_code == 200
    assert r.headers.get("Vary") == "*"


@pytest.mark.parametrize("origin", [None, OTHER])
def test_answer_without_cors_headers_still_varies_on_origin(cors_gw, origin):
    # With a list of origins, the answer depends on Origin: a shared cache
    # must not hand this CORS-less response to an allowed origin.
    headers = {"Origin": origin} if origin else {}
    r = cors_gw.get("/api/x?header=Vary:Accept-Encoding", headers=headers)
    assert r.status_code == 200
    assert not cors_headers(r), cors_headers(r)
    assert tokens(r.headers.get("Vary")) == {"accept-encoding", "origin"}, r.headers.get("Vary")


def test_wildcard_origin_answers_do_not_vary_on_origin(cors_gw):
    r = cors_gw.get("/star/x")
    assert r.status_code == 200
    assert "origin" not in tokens(r.headers.get("Vary"))


def test_wildcard_origin_actual_request_gets_star(cors_gw):
    r = cors_gw.get("/star/x", headers={"Origin": "https://anything.example.org"})
    assert r.status_code == 200
    assert r.headers.get("Access-Control-Allow-Origin") == "*"
    assert "Access-Control-Allow-Credentials" not in r.headers
