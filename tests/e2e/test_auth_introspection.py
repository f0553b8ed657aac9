"""The oauth2_introspection plugin (RFC 7662): the request it makes, active
and inactive tokens, caching, scopes, an endpoint that is down or answers
badly (503, never an allow), and how it shares a route with jwt
(docs/auth.md)."""

import base64
import time

import pytest

from conftest import closed_port
from auth_support import (  # noqa: F401 (echo, *_server: fixtures)
                          BEARER_CHALLENGE, INVALID_TOKEN_CHALLENGE, ISSUER, AUDIENCE, IntrospectionServer,
                          assert_auth_error, auth_config, bearer, claims, echo, insufficient_scope_challenge,
                          introspection_server, make_key, route, upstream_headers)

UNAVAILABLE = "token introspection unavailable"


@pytest.fixture
def rec(recorder):
    return recorder()


@pytest.fixture
def intro_gw(gateway, echo, monkeypatch):
    """intro_gw(server, **plugin overrides): one route /api/ with
    oauth2_introspection (client gw, secret in INTROSPECT_SECRET)."""
    def make(server, *, upstream=None, workers=2, before=(), after=(), consumers=None, url=None,
             **overrides):
        monkeypatch.setenv("INTROSPECT_SECRET", server.client_secret if server else "unused-secret")
        conf = {"url": url or server.introspect_url, "client_id": "gw",
                "client_secret_env": "INTROSPECT_SECRET", "cache": "60s", "timeout": "2s"}
        conf.update(overrides)
        plugins = [*before, {"oauth2_introspection": conf}, *after]
        return gateway(auth_config(upstream or echo, [route("api", "/api/", plugins)],
                                   consumers=consumers), workers=workers)
    return make


def active(server, token, **extra):
    answer = {"active": True, "sub": "user-9", "scope": "links:read", "client_id": "app",
              "exp": int(time.time()) + 300}
    answer.update(extra)
    server.set_token(token, **{k: v for k, v in answer.items() if v is not None})


def test_active_token_passes_with_its_subject(intro_gw, introspection_server):
    server = introspection_server()
    active(server, "opaque-token-1")
    gw = intro_gw(server)
    seen = upstream_headers(gw.get("/api/x", headers={**bearer("opaque-token-1"), "X-User-ID": "admin"}))
    assert seen.get("x-user-id") == "user-9"
    assert seen.get("x-auth-verified") == "true"
    assert seen.get("authorization") == "Bearer opaque-token-1"


def test_introspection_request_follows_rfc7662(intro_gw, introspection_server):
    server = introspection_server()
    active(server, "opaque-token-2")
    gw = intro_gw(server)
    assert gw.get("/api/x", headers=bearer("opaque-token-2")).status_code == 200
    reqs = server.requests_for(IntrospectionServer.PATH)
    assert len(reqs) == 1, [(r.method, r.path) for r in reqs]
    req = reqs[0]
    assert req.method == "POST"
    assert req.headers.get("content-type", "").split(";")[0].strip() == "application/x-www-form-urlencoded"
    assert req.form() == {"token": "opaque-token-2", "token_type_hint": "access_token"}
    assert req.headers.get("authorization") == "Basic " + base64.b64encode(
        f"gw:{server.client_secret}".encode()).decode()


def test_username_is_the_identity_when_there_is_no_sub(intro_gw, introspection_server):
    server = introspection_server()
    active(server, "opaque-token-3", sub=None, username="jdoe")
    seen = upstream_headers(intro_gw(server).get("/api/x", headers=bearer("opaque-token-3")))
    assert seen.get("x-user-id") == "jdoe"


@pytest.mark.parametrize("known", [True, False], ids=["active-false", "unknown-token"])
def test_inactive_token_is_401_invalid_token(intro_gw, introspection_server, rec, known):
    server = introspection_server()
    if known:
        server.set_token("revoked-token", active=False)
    gw = intro_gw(server, upstream=rec)
    r = gw.get("/api/x", headers=bearer("revoked-token"))
    assert_auth_error(r, 401, "invalid token", [INVALID_TOKEN_CHALLENGE])
    assert server.calls("revoked-token") == 1
    rec.settle()
    assert rec.bytes == 0


def test_missing_token_is_401_with_bearer_challenge(intro_gw, introspection_server):
    server = introspection_server()
    r = intro_gw(server).get("/api/x")
    assert_auth_error(r, 401, "missing credentials", [BEARER_CHALLENGE])
    assert server.calls() == 0


def test_answers_are_cached(intro_gw, introspection_server):
    server = introspection_server()
    active(server, "cached-token")
    active(server, "other-token", sub="user-10")
    gw = intro_gw(server, workers=1, cache="60s")
    for _ in range(3):
        assert gw.get("/api/x", headers=bearer("cached-token")).status_code == 200
    assert server.calls("cached-token") == 1
    assert upstream_headers(gw.get("/api/x", headers=bearer("other-token")))["x-user-id"] == "user-10"
    assert server.calls("other-token") == 1


def test_cached_answers_expire_after_the_cache_period(intro_gw, introspection_server):
    server = introspection_server()
    active(server, "short-cache-token")
    gw = intro_gw(server, workers=1, cache="1s")
    assert gw.get("/api/x", headers=bearer("short-cache-token")).status_code == 200
    server.set_token("short-cache-token", active=False)
    time.sleep(1.6)
    r = gw.get("/api/x", headers=bearer("short-cache-token"))
    assert_auth_error(r, 401, "invalid token", [INVALID_TOKEN_CHALLENGE])
    assert server.calls("short-cache-token") == 2


def test_cached_answers_never_outlive_the_tokens_exp(intro_gw, introspection_server):
    server = introspection_server()
    exp = int(time.time()) + 2
    active(server, "expiring-token", exp=exp)
    gw = intro_gw(server, workers=1, cache="60s")
    assert gw.get("/api/x", headers=bearer("expiring-token")).status_code == 200
    server.set_token("expiring-token", active=False)
    time.sleep(max(0.0, exp + 1.2 - time.time()))
    r = gw.get("/api/x", headers=bearer("expiring-token"))
    assert_auth_error(r, 401, "invalid token", [INVALID_TOKEN_CHALLENGE])
    assert server.calls("expiring-token") == 2


@pytest.mark.parametrize("how", ["stopped", "nothing-listening"])
def test_endpoint_down_is_503_never_an_allow(intro_gw, introspection_server, rec, how):
    server = introspection_server()
    active(server, "good-token")
    if how == "stopped":
        gw = intro_gw(server, upstream=rec)
        server.stop()
    else:
        gw = intro_gw(server, upstream=rec, url=f"http://127.0.0.1:{closed_port()}/introspect")
    r = gw.get("/api/x", headers=bearer("good-token"))
    assert_auth_error(r, 503, UNAVAILABLE, [])
    rec.settle()
    assert rec.bytes == 0
    assert "introspect" in gw.stderr().lower(), gw.stderr()[-2000:]


@pytest.mark.parametrize("how", ["http-500", "client-auth-refused", "not-json", "json-array"])
def test_bad_answers_are_503(intro_gw, introspection_server, rec, how):
    server = introspection_server()
    active(server, "good-token")
    gw = intro_gw(server, upstream=rec)
    if how == "http-500":
        server.status = 500
    elif how == "client-auth-refused":
        server.client_secret = "a-different-secret-0123456789"  # the gateway still sends the old one
    elif how == "not-json":
        server.raw_body = b"<html>oops</html>"
    else:
        server.raw_body = b'[{"active": true, "sub": "user-9"}]'
    r = gw.get("/api/x", headers=bearer("good-token"))
    assert_auth_error(r, 503, UNAVAILABLE, [])
    assert server.calls() >= 1
    rec.settle()
    assert rec.bytes == 0


def test_timeout_is_503(intro_gw, introspection_server):
    server = introspection_server()
    active(server, "slow-token")
    server.delay = 3.0
    gw = intro_gw(server, timeout="500ms")
    started = time.monotonic()
    r = gw.get("/api/x", headers=bearer("slow-token"))
    elapsed = time.monotonic() - started
    assert_auth_error(r, 503, UNAVAILABLE, [])
    assert 0.4 <= elapsed < 2.0, f"503 after {elapsed:.2f}s with timeout: 500ms"


def test_failure_is_never_an_allow_even_with_anonymous(intro_gw, introspection_server):
    server = introspection_server()
    active(server, "good-token")
    gw = intro_gw(server, anonymous="guest", consumers=[{"name": "guest", "plan": "free"}])
    server.stop()
    assert_auth_error(gw.get("/api/x", headers=bearer("good-token")), 503, UNAVAILABLE, [])
    seen = upstream_headers(gw.get("/api/x"))
    assert (seen.get("x-consumer"), seen.get("x-anonymous-consumer")) == ("guest", "true")


def test_required_scopes_are_checked(intro_gw, introspection_server):
    server = introspection_server()
    active(server, "reader-token", scope="profile links:read")
    active(server, "writer-token", scope="links:write")
    gw = intro_gw(server, required_scopes=["links:read"])
    assert gw.get("/api/x", headers=bearer("reader-token")).status_code == 200
    r = gw.get("/api/x", headers=bearer("writer-token"))
    assert_auth_error(r, 403, "insufficient scope", [insufficient_scope_challenge(["links:read"])])


def test_a_jws_shaped_token_is_introspected_when_the_route_has_no_jwt(intro_gw, introspection_server):
    server = introspection_server()
    active(server, "aaaa.bbbb.cccc", sub="dotted")
    seen = upstream_headers(intro_gw(server).get("/api/x", headers=bearer("aaaa.bbbb.cccc")))
    assert seen.get("x-user-id") == "dotted"
    assert server.calls("aaaa.bbbb.cccc") == 1


def test_jwt_and_introspection_on_one_route_split_by_token_shape(intro_gw, introspection_server, tmp_path):
    key = make_key("RSA", "rsa-1", 0)
    pem = tmp_path / "rsa-1.pem"
    pem.write_text(key.public_pem())
    jwt_conf = {"keys": [{"kid": "rsa-1", "pem_file": str(pem)}], "issuer": ISSUER,
                "audience": AUDIENCE, "algorithms": ["RS256"]}
    server = introspection_server()
    active(server, "opaque-token-9", sub="opaque-user")
    gw = intro_gw(server, before=[{"jwt": jwt_conf}])
    jws = key.token(claims("jwt-user"), "RS256")
    assert upstream_headers(gw.get("/api/x", headers=bearer(jws)))["x-user-id"] == "jwt-user"
    forged = make_key("RSA", "evil", 2).with_kid("rsa-1").token(claims("jwt-user"), "RS256")
    assert_auth_error(gw.get("/api/x", headers=bearer(forged)), 401, "invalid token", [INVALID_TOKEN_CHALLENGE])
    assert server.calls() == 0, "a JWS token went to introspection although the route has jwt"
    assert upstream_headers(gw.get("/api/x", headers=bearer("opaque-token-9")))["x-user-id"] == "opaque-user"
    assert server.calls("opaque-token-9") == 1


def test_access_log_user_id_and_no_token_in_logs_or_bodies(intro_gw, introspection_server):
    server = introspection_server()
    active(server, "secret-opaque-token-A", sub="logged-user")
    server.set_token("secret-opaque-token-B", active=False)
    gw = intro_gw(server)
    ok = gw.get("/api/x", headers=bearer("secret-opaque-token-A"))
    bad = gw.get("/api/x", headers=bearer("secret-opaque-token-B"))
    server.stop()
    down = gw.get("/api/x", headers=bearer("secret-opaque-token-C"))
    assert [ok.status_code, bad.status_code, down.status_code] == [200, 401, 503]
    for a in (bad, down):
        assert "secret-opaque-token" not in a.text, a.text
    entries = gw.access_log(3)
    entry = next(e for e in entries if e["request_id"] == ok.headers["X-Request-Id"])
    assert entry["user_id"] == "logged-user"
    logged = open(gw.access_log_path).read() + gw.stderr() + gw.stdout()
    assert "secret-opaque-token" not in logged
