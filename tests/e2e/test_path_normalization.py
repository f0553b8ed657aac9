"""Paths are normalized before matching, and neither dot segments nor their
percent-encoded forms let a request escape its route or a rewrite."""

import re

import pytest

from conftest import raw_request


def get(gw, target):
    """GET with the request-target sent byte for byte (requests would normalize it)."""
    resp = raw_request(gw.port, b"GET " + target.encode() + b" HTTP/1.1\r\nHost: t\r\n\r\n",
                       close_wait=0.1)
    assert resp.status is not None, f"no response to {target}"
    return resp


def dot_segments(path):
    """Segments that a backend would resolve as '.' or '..' (after %2e decoding)."""
    decoded = re.sub(r"%2[eE]", ".", path)
    return [s for s in decoded.split("/") if s in (".", "..")]


def respond(name, path=None, prefix=None):
    match = {"path": path} if path else {"path_prefix": prefix}
    return {"name": name, "match": match, "respond": {"status": 200, "body": name}}


@pytest.fixture
def echo(backend):
    return backend("echo")


@pytest.mark.parametrize("target", ["/a/./b/../c", "/a/b/../c", "/a/./c", "/x/../a/c"])
def test_dot_segments_are_resolved_before_matching(gateway, target):
    gw = gateway({"routes": [respond("ac", path="/a/c"), respond("other", prefix="/")]})
    resp = get(gw, target)
    assert (resp.status, resp.body) == (200, b"ac"), (target, resp)


@pytest.mark.parametrize("target", ["/%7Euser", "/%7euser", "/~user"])
def test_percent_encoded_unreserved_characters_are_decoded_before_matching(gateway, target):
    gw = gateway({"routes": [respond("tilde", path="/~user")]})
    resp = get(gw, target)
    assert (resp.status, resp.body) == (200, b"tilde"), (target, resp)


@pytest.mark.parametrize("target", [
    "/public/../secret",
    "/public/%2e%2e/secret",
    "/public/%2E%2E/secret",
    "/public/.%2e/secret",
    "/public/%2e./secret",
    "/public/a/%2e%2e/%2e%2e/secret",
])
def test_dot_segments_cannot_escape_a_prefix_route(gateway, echo, target):
    gw = gateway({"upstreams": {"svc": {"targets": [echo.addr]}},
                  "routes": [{"name": "public", "match": {"path_prefix": "/public/"}, "upstream": "svc"}]})
    resp = get(gw, target)
    if resp.status == 200:
        seen = resp.json()["path"]
        assert seen.startswith("/public/"), f"{target} reached the backend as {seen}"
        assert not dot_segments(seen), f"{target} reached the backend as {seen}"
    else:
        assert resp.status in (400, 404), resp


@pytest.mark.parametrize("link_id", ["%2e%2e", "%2E%2E", ".%2e", "%2e", "..%2f..%2fsecret", "..%2F..%2Fsecret"])
def test_rewrite_never_produces_dot_segments(gateway, echo, link_id):
    gw = gateway({"upstreams": {"svc": {"targets": [echo.addr]}},
                  "routes": [{"name": "get-link", "match": {"path": "/links/{id}"}, "upstream": "svc",
                              "rewrite": "/internal/links/{id}"}]})
    resp = get(gw, f"/links/{link_id}")
    if resp.status == 200:
        seen = resp.json()["path"]
        assert seen.startswith("/internal/links/"), seen
        assert not dot_segments(seen), f"/links/{link_id} was rewritten to {seen}"
    else:
        assert resp.status in (400, 404), resp


def test_catch_all_rewrite_never_produces_dot_segments(gateway, echo):
    gw = gateway({"upstreams": {"svc": {"targets": [echo.addr]}},
                  "routes": [{"name": "files", "match": {"path": "/files/{*rest}"}, "upstream": "svc",
                              "rewrite": "/static/{rest}"}]})
    resp = get(gw, "/files/a/%2e%2e/%2e%2e/%2e%2e/etc/passwd")
    if resp.status == 200:
        seen = resp.json()["path"]
        assert seen.startswith("/static/") and not dot_segments(seen), seen
    else:
        assert resp.status in (400, 404), resp
