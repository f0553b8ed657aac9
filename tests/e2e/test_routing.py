"""Route choice: path templates, prefixes, regexes, hosts, header conditions,
priorities, 404/405 and direct responses."""

import pytest

from conftest import assert_problem, raw_request


def respond(name, *, path=None, prefix=None, regex=None, host=None, headers=None, methods=None):
    """A direct-response route whose body is its own name."""
    match = {}
    if methods:
        match["methods"] = methods
    if path:
        match["path"] = path
    if prefix:
        match["path_prefix"] = prefix
    if regex:
        match["path_regex"] = regex
    if host:
        match["host"] = host
    if headers:
        match["headers"] = headers
    return {"name": name, "match": match,
            "respond": {"status": 200, "body": name, "headers": {"content-type": "text/plain"}}}


def proxied(name, upstream="svc", rewrite=None, **match_kwargs):
    route = respond(name, **match_kwargs)
    del route["respond"]
    route["upstream"] = upstream
    if rewrite:
        route["rewrite"] = rewrite
    return route


def routes_only(*routes):
    return {"routes": list(routes)}


def chosen(gw, path, **kwargs):
    r = gw.get(path, **kwargs)
    return r.text if r.status_code == 200 else r.status_code


@pytest.fixture
def echo(backend):
    return backend("echo")


def with_upstream(echo, *routes):
    return {"upstreams": {"svc": {"targets": [echo.addr]}}, "routes": list(routes)}


def test_path_params_are_substituted_into_the_rewrite(gateway, echo):
    gw = gateway(with_upstream(echo, proxied("get-link", path="/links/{id}", methods=["GET", "HEAD"],
                                             rewrite="/internal/links/{id}")))
    r = gw.get("/links/42")
    assert r.status_code == 200
    assert r.json()["path"] == "/internal/links/42"
    assert r.json()["method"] == "GET"


def test_catch_all_param_captures_the_rest_of_the_path(gateway, echo):
    gw = gateway(with_upstream(echo, proxied("files", path="/files/{*rest}", rewrite="/static/{rest}")))
    r = gw.get("/files/a/b/c.txt")
    assert r.status_code == 200
    assert r.json()["path"] == "/static/a/b/c.txt"


def test_path_without_rewrite_is_forwarded_unchanged(gateway, echo):
    gw = gateway(with_upstream(echo, proxied("links", path="/links/{id}")))
    assert gw.get("/links/abc").json()["path"] == "/links/abc"


def test_query_string_is_passed_through_unchanged(gateway, echo):
    gw = gateway(with_upstream(echo, proxied("get-link", path="/links/{id}",
                                             rewrite="/internal/links/{id}")))
    r = gw.get("/links/7?a=1&b=x%20y&c=%2F&a=2")
    assert r.status_code == 200
    assert r.json()["path"] == "/internal/links/7"
    assert r.json()["query"] == "a=1&b=x%20y&c=%2F&a=2"


def test_path_prefix_route_matches_everything_under_the_prefix(gateway, echo):
    gw = gateway(with_upstream(echo, proxied("api", prefix="/api/")))
    assert gw.get("/api/x/y").json()["path"] == "/api/x/y"
    assert gw.get("/api/").status_code == 200
    assert gw.get("/apix").status_code == 404


def test_path_regex_route_matches_by_re2_pattern(gateway):
    gw = gateway(routes_only(respond("versioned", regex="^/v[0-9]+/items$")))
    assert chosen(gw, "/v2/items") == "versioned"
    assert chosen(gw, "/v10/items") == "versioned"
    assert chosen(gw, "/vx/items") == 404
    assert chosen(gw, "/v2/items/1") == 404


def test_exact_host_beats_wildcard_host_listed_earlier(gateway):
    gw = gateway(routes_only(
        respond("wildcard", prefix="/", host="*.example.com"),
        respond("exact", prefix="/", host="api.example.com"),
        respond("any-host", prefix="/"),
    ))
    assert chosen(gw, "/x", headers={"Host": "api.example.com"}) == "exact"
    assert chosen(gw, "/x", headers={"Host": "foo.example.com"}) == "wildcard"
    assert chosen(gw, "/x", headers={"Host": "other.org"}) == "any-host"


def test_wildcard_host_does_not_match_the_bare_domain(gateway):
    gw = gateway(routes_only(
        respond("wildcard", prefix="/", host="*.example.com"),
        respond("any-host", prefix="/"),
    ))
    assert chosen(gw, "/x", headers={"Host": "example.com"}) == "any-host"
    assert chosen(gw, "/x", headers={"Host": "a.example.com"}) == "wildcard"


def test_host_match_ignores_port_and_case(gateway):
    gw = gateway(routes_only(
        respond("exact", path="/x", host="api.example.com"),
        respond("any-host", path="/x"),
    ))
    assert chosen(gw, "/x", headers={"Host": "API.Example.COM:8080"}) == "exact"


def test_host_route_wins_over_hostless_route_listed_earlier(gateway):
    gw = gateway(routes_only(
        respond("hostless", path="/x"),
        respond("with-host", path="/x", host="api.example.com"),
    ))
    assert chosen(gw, "/x", headers={"Host": "api.example.com"}) == "with-host"
    assert chosen(gw, "/x", headers={"Host": "other.example.com"}) == "hostless"


def test_host_is_considered_before_path_specificity(gateway):
    gw = gateway(routes_only(
        respond("hostless-literal", path="/x/y"),
        respond("host-prefix", prefix="/", host="api.example.com"),
    ))
    assert chosen(gw, "/x/y", headers={"Host": "api.example.com"}) == "host-prefix"


def test_header_condition_selects_the_canary_route(gateway):
    gw = gateway(routes_only(
        respond("canary", path="/x", headers={"x-canary": "1"}),
        respond("stable", path="/x"),
    ))
    assert chosen(gw, "/x", headers={"X-Canary": "1"}) == "canary"
    assert chosen(gw, "/x", headers={"X-Canary": "2"}) == "stable"
    assert chosen(gw, "/x") == "stable"


def test_literal_segment_beats_param_listed_earlier(gateway):
    gw = gateway(routes_only(
        respond("param", path="/links/{id}"),
        respond("literal", path="/links/special"),
    ))
    assert chosen(gw, "/links/special") == "literal"
    assert chosen(gw, "/links/other") == "param"


def test_param_beats_prefix_listed_earlier(gateway):
    gw = gateway(routes_only(
        respond("prefix", prefix="/links/"),
        respond("param", path="/links/{id}"),
    ))
    assert chosen(gw, "/links/5") == "param"
    assert chosen(gw, "/links/5/x") == "prefix"


def test_param_beats_catch_all_listed_earlier(gateway):
    gw = gateway(routes_only(
        respond("rest", path="/links/{*rest}"),
        respond("param", path="/links/{id}"),
    ))
    assert chosen(gw, "/links/5") == "param"
    assert chosen(gw, "/links/5/x") == "rest"


def test_longer_prefix_beats_shorter_prefix_listed_earlier(gateway):
    gw = gateway(routes_only(
        respond("short", prefix="/api/"),
        respond("long", prefix="/api/v2/"),
    ))
    assert chosen(gw, "/api/v2/things") == "long"
    assert chosen(gw, "/api/v1/things") == "short"


def test_equally_specific_routes_tie_by_file_order(gateway):
    gw = gateway(routes_only(
        respond("first", path="/t/{a}", methods=["GET"]),
        respond("second", path="/t/{b}", headers={"x-v": "1"}),
    ))
    assert chosen(gw, "/t/1", headers={"X-V": "1"}) == "first"
    assert gw.post("/t/1", data=b"", headers={"X-V": "1"}).text == "second"


def test_method_condition_picks_route_by_method(gateway):
    gw = gateway(routes_only(
        respond("read", path="/x", methods=["GET"]),
        respond("write", path="/x", methods=["POST"]),
    ))
    assert gw.get("/x").text == "read"
    assert gw.post("/x", data=b"").text == "write"


def test_unmatched_path_gets_404_problem_json(gateway):
    gw = gateway(routes_only(respond("ping", path="/ping")))
    r = gw.get("/nothing/here")
    problem = assert_problem(r.status_code, r.headers, r.content, 404)
    assert problem["title"] == "Not Found"
    assert "/nothing/here" in problem["detail"]


def test_wrong_method_gets_405_with_allow_listing_every_method_of_the_path(gateway):
    gw = gateway(routes_only(
        respond("get-x", path="/x", methods=["GET", "HEAD"]),
        respond("put-x", path="/x", methods=["PUT"]),
    ))
    r = gw.request("DELETE", "/x")
    assert_problem(r.status_code, r.headers, r.content, 405)
    allow = {m.strip() for m in r.headers.get("Allow", "").split(",") if m.strip()}
    assert allow == {"GET", "HEAD", "PUT"}, r.headers.get("Allow")


def test_direct_respond_route_returns_configured_status_body_and_headers(gateway):
    gw = gateway(routes_only(
        {"name": "ping", "match": {"path": "/ping"},
         "respond": {"status": 200, "body": "pong", "headers": {"content-type": "text/plain"}}},
        {"name": "teapot", "match": {"path": "/teapot"},
         "respond": {"status": 418, "body": "short and stout", "headers": {"x-kind": "teapot"}}},
    ))
    r = gw.get("/ping")
    assert (r.status_code, r.text, r.headers["Content-Type"]) == (200, "pong", "text/plain")
    assert r.headers.get("X-Request-Id")
    r = gw.get("/teapot")
    assert (r.status_code, r.text, r.headers.get("X-Kind")) == (418, "short and stout", "teapot")


def test_absolute_form_request_target_is_routed_by_its_path(gateway):
    gw = gateway(routes_only(respond("ping", path="/ping")))
    resp = raw_request(gw.port, b"GET http://example.test/ping HTTP/1.1\r\nHost: example.test\r\n\r\n",
                       close_wait=0.2)
    assert resp.status == 200, resp
    assert resp.body == b"ping"
