"""The jwt plugin: every algorithm, time and identity claims, the attacks a
verifier must refuse, the JWKS lifecycle (background fetch, refresh, rotation,
failure), OpenID discovery, scopes, claims_to_headers, consumer_claim and acl
by roles (docs/auth.md)."""

import base64
import time

import pytest

from conftest import metric_sum
from auth_support import (  # noqa: F401 (echo, *_server: fixtures)
                          AUDIENCE, BEARER_CHALLENGE, DISCOVERY_PATH, HMAC_ALGS, INVALID_TOKEN_CHALLENGE,
                          ISSUER, ALG_KEY_KIND, assert_auth_error, auth_config, b64url, bearer, claims,
                          echo, hand_token, hmac_signer, insufficient_scope_challenge, jwks_server,
                          json_bytes, make_key, poll, resign, route, upstream_headers, wait_keys_loaded)

# 64 bytes: enough for HS512 even under RFC 7518 3.2 (key >= hash size); docs/auth.md asks >= 32.
HS_SECRET = "hs-secret-0123456789abcdef-0123456789abcdef-0123456789abcdef-0123"
FAILURES = "gatehouse_auth_jwks_fetch_failures_total"


def rsa1():
    return make_key("RSA", "rsa-1", 0)


def rsa2():
    return make_key("RSA", "rsa-2", 1)


def attacker():
    return make_key("RSA", "evil", 2)


def key_for(alg):
    kind = ALG_KEY_KIND[alg]
    return make_key(kind, {"RSA": "rsa-1", "EC-P256": "ec-256", "EC-P384": "ec-384",
                           "Ed25519": "ed-1"}[kind], 0)


def plugin(source, **overrides):
    p = dict(source)
    p.update({"issuer": ISSUER, "audience": AUDIENCE, "algorithms": ["RS256"], "clock_skew": "30s"})
    p.update(overrides)
    return {k: v for k, v in p.items() if v is not None}


def start(gateway, upstream, jwt_conf, *, extra_plugins=(), consumers=None, workers=2, routes=None):
    routes = routes or [route("api", "/api/", [{"jwt": jwt_conf}, *extra_plugins])]
    return gateway(auth_config(upstream, routes, consumers=consumers), workers=workers)


@pytest.fixture
def pem_gw(gateway, echo, tmp_path):
    """pem_gw(keys=[rsa1], **jwt overrides): jwt with static `keys: [{kid, pem_file}]`."""
    def make(keys=None, *, extra_plugins=(), consumers=None, workers=2, upstream=None, **overrides):
        entries = []
        for k in keys or [rsa1()]:
            path = tmp_path / f"{k.kid}.pem"
            path.write_text(k.public_pem())
            entries.append({"kid": k.kid, "pem_file": str(path)})
        return start(gateway, upstream or echo, plugin({"keys": entries}, **overrides),
                     extra_plugins=extra_plugins, consumers=consumers, workers=workers)
    return make


@pytest.fixture
def jwks_gw(gateway, echo):
    """jwks_gw(server, ready_key=rsa1, **jwt overrides): jwt with jwks_url;
    waits (bounded) until a token of ready_key passes (ready_key=None: no wait)."""
    def make(server, *, ready_key="default", ready_alg="RS256", extra_plugins=(), workers=2,
             **overrides):
        gw = start(gateway, echo, plugin({"jwks_url": server.jwks_url}, **overrides),
                   extra_plugins=extra_plugins, workers=workers)
        if ready_key == "default":
            ready_key = rsa1()
        if ready_key is not None:
            r = wait_keys_loaded(gw, "/api/ready", lambda: ready_key.token(claims(), ready_alg))
            assert r.status_code == 200, f"keys never loaded: {r.status_code} {r.text[:300]}"
        return gw
    return make


def assert_invalid_token(r):
    return assert_auth_error(r, 401, "invalid token", [INVALID_TOKEN_CHALLENGE])


# --------------------------------------------------------------------------
# algorithms and key sources

@pytest.mark.parametrize("alg", list(ALG_KEY_KIND))
def test_every_asymmetric_algorithm_verifies_with_a_jwks_key(jwks_gw, jwks_server, alg):
    key = key_for(alg)
    server = jwks_server([rsa1(), key_for("ES256"), key_for("ES384"), key_for("EdDSA")])
    gw = jwks_gw(server, ready_key=key, ready_alg=alg, algorithms=[alg])
    seen = upstream_headers(gw.get("/api/x", headers=bearer(key.token(claims("alice"), alg))))
    assert seen.get("x-user-id") == "alice"
    assert seen.get("x-auth-verified") == "true"


@pytest.mark.parametrize("alg", HMAC_ALGS)
def test_hmac_algorithms_verify_with_secret_env(gateway, echo, monkeypatch, alg):
    monkeypatch.setenv("JWT_SECRET", HS_SECRET)
    gw = start(gateway, echo, plugin({"secret_env": "JWT_SECRET"}, algorithms=[alg]))
    token = hand_token({"alg": alg, "typ": "JWT"}, claims("hs-user"), sign=hmac_signer(HS_SECRET, alg))
    seen = upstream_headers(gw.get("/api/x", headers=bearer(token)))
    assert seen.get("x-user-id") == "hs-user"
    wrong = hand_token({"alg": alg, "typ": "JWT"}, claims("hs-user"),
                       sign=hmac_signer(HS_SECRET + "x", alg))
    assert_invalid_token(gw.get("/api/x", headers=bearer(wrong)))


@pytest.mark.parametrize("alg", ["RS256", "ES256"])
def test_pem_file_keys_verify(pem_gw, alg):
    key = key_for(alg)
    gw = pem_gw([key], algorithms=[alg])
    seen = upstream_headers(gw.get("/api/x", headers=bearer(key.token(claims("pem-user"), alg))))
    assert seen.get("x-user-id") == "pem-user"


def test_only_pinned_algorithms_are_accepted(pem_gw):
    gw = pem_gw(algorithms=["RS256"])
    assert gw.get("/api/x", headers=bearer(rsa1().token(claims(), "RS256"))).status_code == 200
    for alg in ("RS512", "PS256"):
        assert_invalid_token(gw.get("/api/x", headers=bearer(rsa1().token(claims(), alg))))


def test_a_jwk_alg_member_pins_that_key(jwks_gw, jwks_server):
    server = jwks_server([rsa1().jwk(alg="RS256")])
    gw = jwks_gw(server, algorithms=["RS256", "PS256"])
    assert_invalid_token(gw.get("/api/x", headers=bearer(rsa1().token(claims(), "PS256"))))


def test_a_jwk_for_encryption_never_verifies(jwks_gw, jwks_server):
    server = jwks_server([rsa1().jwk(use="enc"), rsa2()])
    gw = jwks_gw(server, ready_key=rsa2())
    assert_invalid_token(gw.get("/api/x", headers=bearer(rsa1().token(claims(), "RS256"))))


def test_es256_token_signed_with_a_p384_key_is_refused(pem_gw):
    p384 = key_for("ES384")
    gw = pem_gw([p384], algorithms=["ES256", "ES384"])
    token = hand_token({"alg": "ES256", "kid": p384.kid}, claims(), sign=p384.signer("ES256"))
    assert_invalid_token(gw.get("/api/x", headers=bearer(token)))
    assert gw.get("/api/x", headers=bearer(p384.token(claims(), "ES384"))).status_code == 200


# --------------------------------------------------------------------------
# claims

def test_valid_token_passes_identity_and_authorization_on(pem_gw):
    gw = pem_gw()
    token = rsa1().token(claims("user-42"), "RS256")
    seen = upstream_headers(gw.get("/api/x", headers=bearer(token)))
    assert seen.get("x-user-id") == "user-42"
    assert seen.get("x-auth-verified") == "true"
    assert seen.get("authorization") == f"Bearer {token}"


def test_hide_credentials_removes_authorization(pem_gw):
    gw = pem_gw(hide_credentials=True)
    seen = upstream_headers(gw.get("/api/x", headers=bearer(rsa1().token(claims(), "RS256"))))
    assert "authorization" not in seen
    assert seen.get("x-auth-verified") == "true"


def test_missing_token_is_401_with_bearer_challenge(pem_gw):
    assert_auth_error(pem_gw().get("/api/x"), 401, "missing credentials", [BEARER_CHALLENGE])


@pytest.mark.parametrize("scheme", ["bearer", "BEARER", "bEaReR"])
def test_bearer_scheme_is_case_insensitive(pem_gw, scheme):
    r = pem_gw().get("/api/x", headers={"Authorization": f"{scheme} {rsa1().token(claims(), 'RS256')}"})
    assert r.status_code == 200, r.text


def _shift(**c):
    now = int(time.time())
    return {k: now + v for k, v in c.items()}


@pytest.mark.parametrize("shift", [{"exp": -120}, {"nbf": 120}, {"iat": 120}],
                         ids=["expired", "not-yet-valid", "issued-in-future"])
def test_time_claims_beyond_clock_skew_are_401(pem_gw, shift):
    gw = pem_gw(clock_skew="30s")
    token = rsa1().token(claims(**_shift(**shift)), "RS256")
    assert_invalid_token(gw.get("/api/x", headers=bearer(token)))


@pytest.mark.parametrize("shift", [{"exp": -10}, {"nbf": 10}, {"iat": 10}],
                         ids=["expired-within-skew", "nbf-within-skew", "iat-within-skew"])
def test_time_claims_within_clock_skew_pass(pem_gw, shift):
    gw = pem_gw(clock_skew="30s")
    token = rsa1().token(claims(**_shift(**shift)), "RS256")
    assert gw.get("/api/x", headers=bearer(token)).status_code == 200


@pytest.mark.parametrize("override", [{"iss": "https://evil.example.com"}, {"aud": "other-api"},
                                      {"iss": None}, {"aud": None}],
                         ids=["wrong-iss", "wrong-aud", "no-iss", "no-aud"])
def test_issuer_and_audience_must_match(pem_gw, override):
    gw = pem_gw()
    token = rsa1().token(claims(**override), "RS256")
    assert_invalid_token(gw.get("/api/x", headers=bearer(token)))


def test_audience_list_containing_ours_passes(pem_gw):
    token = rsa1().token(claims(aud=["other-api", AUDIENCE]), "RS256")
    assert pem_gw().get("/api/x", headers=bearer(token)).status_code == 200


def test_tampered_payload_is_401(pem_gw):
    honest = rsa1().token(claims("alice"), "RS256").split(".")
    forged = f"{honest[0]}.{b64url(json_bytes(claims('admin')))}.{honest[2]}"
    assert_invalid_token(pem_gw().get("/api/x", headers=bearer(forged)))


def test_verified_token_cache_never_outlives_exp(pem_gw):
    gw = pem_gw(clock_skew="0s", workers=1)
    exp = int(time.time()) + 2
    token = rsa1().token(claims(exp=exp), "RS256")
    assert gw.get("/api/x", headers=bearer(token)).status_code == 200
    time.sleep(max(0.0, exp + 1.2 - time.time()))
    assert_invalid_token(gw.get("/api/x", headers=bearer(token)))


# --------------------------------------------------------------------------
# attacks

@pytest.mark.parametrize("name,with_sig", [("none", False), ("None", False), ("NONE", False),
                                           ("none", True)])
def test_alg_none_is_401(pem_gw, name, with_sig):
    gw = pem_gw()
    sig = base64.urlsafe_b64decode(rsa1().token(claims(), "RS256").split(".")[2] + "==") if with_sig else b""
    token = hand_token({"alg": name, "typ": "JWT", "kid": "rsa-1"}, claims(), signature=sig)
    assert_invalid_token(gw.get("/api/x", headers=bearer(token)))


@pytest.mark.parametrize("source", ["pem_file", "jwks"])
def test_hmac_token_signed_with_the_public_key_is_401(pem_gw, jwks_gw, jwks_server, source):
    gw = pem_gw() if source == "pem_file" else jwks_gw(jwks_server([rsa1()]))
    pem = rsa1().public_pem()
    for secret in (pem, pem.strip()):
        token = hand_token({"alg": "HS256", "typ": "JWT", "kid": "rsa-1"}, claims(),
                           sign=hmac_signer(secret))
        assert_invalid_token(gw.get("/api/x", headers=bearer(token)))


def test_unknown_kid_is_401(pem_gw):
    gw = pem_gw()
    token = rsa1().with_kid("nope").token(claims(), "RS256")
    assert_invalid_token(gw.get("/api/x", headers=bearer(token)))


def test_crit_header_is_401(pem_gw):
    token = rsa1().token(claims(), "RS256", headers={"crit": ["x-policy"], "x-policy": 1})
    assert_invalid_token(pem_gw().get("/api/x", headers=bearer(token)))


def _key_header(kind, server, key):
    if kind == "jku":
        return {"jku": server.url("/attacker/jwks.json")}
    if kind == "x5u":
        return {"x5u": server.url("/attacker/cert.pem")}
    if kind == "jwk":
        return {"jwk": key.jwk()}
    return {"x5c": [base64.b64encode(key.self_signed_cert_der()).decode()]}


@pytest.mark.parametrize("kind", ["jku", "x5u", "jwk", "x5c"])
def test_keys_offered_by_the_token_are_never_trusted(jwks_gw, jwks_server, kind):
    server = jwks_server([rsa1()])
    evil = attacker()
    server.serve("/attacker/jwks.json", {"keys": [evil.jwk(), evil.with_kid("rsa-1").jwk()]})
    gw = jwks_gw(server)
    for kid in ("rsa-1", "evil"):
        token = evil.with_kid(kid).token(claims("admin"), "RS256", headers=_key_header(kind, server, evil))
        assert_invalid_token(gw.get("/api/x", headers=bearer(token)))
    time.sleep(0.5)
    assert server.hits("/attacker/jwks.json") == 0 and server.hits("/attacker/cert.pem") == 0


@pytest.mark.parametrize("kind", ["jku", "x5u"])
def test_key_urls_on_an_honest_token_are_ignored(jwks_gw, jwks_server, kind):
    server = jwks_server([rsa1()])
    gw = jwks_gw(server)
    token = rsa1().token(claims("alice"), "RS256", headers=_key_header(kind, server, None))
    assert upstream_headers(gw.get("/api/x", headers=bearer(token))).get("x-user-id") == "alice"
    time.sleep(0.5)
    assert server.hits("/attacker/jwks.json") == 0 and server.hits("/attacker/cert.pem") == 0


def _token_of_length(target):
    pad = 0
    for _ in range(6):
        token = rsa1().token(claims(pad="p" * pad), "RS256")
        if abs(len(token) - target) <= 8:
            break
        pad = max(0, pad + (target - len(token)) * 3 // 4)
    return token


def test_tokens_over_8_kib_are_401_and_just_under_pass(pem_gw):
    gw = pem_gw()
    small = _token_of_length(8192 - 150)
    assert len(small) <= 8192
    assert gw.get("/api/x", headers=bearer(small)).status_code == 200
    big = _token_of_length(8192 + 150)
    assert len(big) > 8192
    assert_invalid_token(gw.get("/api/x", headers=bearer(big)))


def _payload_segment(predicate):
    for n in range(64):
        seg = b64url(json_bytes(claims(nonce="?>" * n)))
        if predicate(seg):
            return seg
    raise AssertionError("no payload segment found")


def _bad_base64_token(kind):
    header = b64url(json_bytes({"alg": "RS256", "typ": "JWT", "kid": "rsa-1"}))
    if kind == "std-alphabet":
        seg = _payload_segment(lambda s: "-" in s or "_" in s)
        return resign(f"{header}.{seg.replace('-', '+').replace('_', '/')}", rsa1(), "RS256")
    if kind == "padded-payload":
        seg = _payload_segment(lambda s: len(s) % 4 != 0)
        return resign(f"{header}.{seg}{'=' * (-len(seg) % 4)}", rsa1(), "RS256")
    if kind == "invalid-char":
        seg = b64url(json_bytes(claims()))
        return resign(f"{header}.{seg[:10]}*{seg[10:]}", rsa1(), "RS256")
    if kind == "padded-signature":
        token = rsa1().token(claims(), "RS256")
        assert len(token.split(".")[2]) % 4 != 0
        return token + "=" * (-len(token.split(".")[2]) % 4)
    raise ValueError(kind)


@pytest.mark.parametrize("kind", ["std-alphabet", "padded-payload", "invalid-char", "padded-signature"])
def test_bad_base64url_is_401(pem_gw, kind):
    assert_invalid_token(pem_gw().get("/api/x", headers=bearer(_bad_base64_token(kind))))


def _trailing_token(kind):
    key = rsa1()
    honest = key.token(claims(), "RS256")
    header = {"alg": "RS256", "typ": "JWT", "kid": "rsa-1"}
    if kind == "fourth-segment":
        return honest + ".e30"
    if kind == "trailing-dot":
        return honest + "."
    if kind == "two-segments":
        return honest.rsplit(".", 1)[0]
    if kind == "header-json-trailing-bytes":
        return hand_token(json_bytes(header) + b"x", claims(), sign=key.signer("RS256"))
    if kind == "payload-json-trailing-bytes":
        return hand_token(header, json_bytes(claims()) + b" {}", sign=key.signer("RS256"))
    if kind == "payload-not-an-object":
        return hand_token(header, b'["sub","admin"]', sign=key.signer("RS256"))
    if kind == "space-and-more":
        return honest + " extra"
    raise ValueError(kind)


@pytest.mark.parametrize("kind", ["fourth-segment", "trailing-dot", "two-segments",
                                  "header-json-trailing-bytes", "payload-json-trailing-bytes",
                                  "payload-not-an-object", "space-and-more"])
def test_malformed_or_trailing_token_bytes_are_401(pem_gw, kind):
    r = pem_gw().get("/api/x", headers=bearer(_trailing_token(kind)))
    assert_invalid_token(r)


# --------------------------------------------------------------------------
# JWKS lifecycle

def _failures(gw):
    return metric_sum(gw.metrics(), FAILURES)


@pytest.mark.parametrize("how", ["http-500", "nothing-listening"])
def test_no_key_set_ever_fetched_is_503_and_counted(jwks_gw, jwks_server, how):
    server = jwks_server([rsa1()])
    if how == "http-500":
        server.fail(500)
    else:
        server.stop()  # connections to its port are now refused
    gw = jwks_gw(server, ready_key=None, refresh_interval="1s")
    first = poll(lambda: _failures(gw), lambda v: v >= 1, timeout=5, interval=0.1)
    assert first >= 1, f"{FAILURES} is {first}"
    r = gw.get("/api/x", headers=bearer(rsa1().token(claims(), "RS256")))
    assert_auth_error(r, 503, "authentication keys unavailable", [])
    later = poll(lambda: _failures(gw), lambda v: v > first, timeout=6, interval=0.2)
    assert later > first, f"{FAILURES} stayed at {later}"
    stderr = gw.stderr()
    assert server.jwks_url in stderr or "jwks" in stderr.lower(), stderr[-2000:]


def test_keys_arrive_once_the_jwks_endpoint_recovers(jwks_gw, jwks_server):
    server = jwks_server([rsa1()])
    server.fail(500)
    gw = jwks_gw(server, ready_key=None, refresh_interval="1s")
    assert server.wait_hits(server.jwks_path, 1) >= 1
    assert gw.get("/api/x", headers=bearer(rsa1().token(claims(), "RS256"))).status_code == 503
    server.recover()
    r = poll(lambda: gw.get("/api/x", headers=bearer(rsa1().token(claims(), "RS256"))),
             lambda r: r.status_code == 200, timeout=15)
    assert r.status_code == 200, r.text


def test_last_good_keys_are_kept_when_the_jwks_fetch_fails(jwks_gw, jwks_server):
    server = jwks_server([rsa1()])
    gw = jwks_gw(server, refresh_interval="1s")
    before = server.jwks_hits()
    server.fail(500)
    assert server.wait_hits(server.jwks_path, before + 2, timeout=8) >= before + 2, \
        "the gateway did not refresh every 1s"
    r = gw.get("/api/x", headers=bearer(rsa1().token(claims("still-ok"), "RS256")))
    assert upstream_headers(r).get("x-user-id") == "still-ok"
    assert poll(lambda: _failures(gw), lambda v: v >= 1, timeout=3, interval=0.1) >= 1


@pytest.mark.slow
def test_a_rotated_in_kid_is_picked_up_without_waiting_for_the_refresh_interval(jwks_gw, jwks_server):
    server = jwks_server([rsa1()])
    gw = jwks_gw(server, refresh_interval="5m")
    before = server.jwks_hits()
    server.set_keys([rsa1(), rsa2()])
    r = poll(lambda: gw.get("/api/x", headers=bearer(rsa2().token(claims("rotated"), "RS256"))),
             lambda r: r.status_code == 200, timeout=15, interval=0.5)
    assert r.status_code == 200, f"new kid still refused after 15s: {r.status_code} {r.text[:200]}"
    assert r.json()["headers"].get("x-user-id") == "rotated"
    assert server.jwks_hits() > before


def test_unknown_kids_refresh_at_most_once_every_10s(jwks_gw, jwks_server):
    server = jwks_server([rsa1()])
    gw = jwks_gw(server, refresh_interval="5m")
    before = server.jwks_hits()
    for i in range(15):
        token = rsa1().with_kid(f"unknown-{i}").token(claims(), "RS256")
        assert gw.get("/api/x", headers=bearer(token)).status_code == 401
        time.sleep(0.1)
    time.sleep(1.0)
    assert server.jwks_hits() - before <= 1, f"{server.jwks_hits() - before} JWKS fetches for 15 unknown kids"


def test_jwks_is_never_fetched_on_the_request_path(jwks_gw, jwks_server):
    server = jwks_server([rsa1()])
    gw = jwks_gw(server, refresh_interval="5m")
    server.delay = 3.0
    unknown_kid = rsa2().token(claims(), "RS256")
    known_kid = rsa1().token(claims("fast"), "RS256")
    for token, status in ((unknown_kid, 401), (known_kid, 200), (unknown_kid, 401)):
        started = time.monotonic()
        r = gw.get("/api/x", headers=bearer(token))
        elapsed = time.monotonic() - started
        assert elapsed < 1.5, f"answer took {elapsed:.2f}s while the JWKS endpoint was slow"
        assert r.status_code == status, r.text


def test_a_key_removed_from_the_jwks_stops_verifying_after_refresh(jwks_gw, jwks_server):
    server = jwks_server([rsa1(), rsa2()])
    gw = jwks_gw(server, refresh_interval="1s")
    server.set_keys([rsa2()])
    r = poll(lambda: gw.get("/api/x", headers=bearer(rsa1().token(claims(), "RS256"))),
             lambda r: r.status_code == 401, timeout=10)
    assert_invalid_token(r)
    assert gw.get("/api/x", headers=bearer(rsa2().token(claims(), "RS256"))).status_code == 200


def test_routes_naming_one_jwks_url_share_one_key_cache(gateway, echo, jwks_server):
    server = jwks_server([rsa1()])
    conf = plugin({"jwks_url": server.jwks_url}, refresh_interval="5m")
    gw = gateway(auth_config(echo, [route("a", "/a/", [{"jwt": conf}]),
                                    route("b", "/b/", [{"jwt": dict(conf)}])]), workers=4)
    for path in ("/a/x", "/b/x"):
        r = wait_keys_loaded(gw, path, lambda: rsa1().token(claims(), "RS256"))
        assert r.status_code == 200, r.text
    time.sleep(0.5)
    assert server.jwks_hits() == 1, f"{server.jwks_hits()} fetches of one JWKS URL"


def test_discovery_follows_the_issuers_jwks_uri(gateway, echo, jwks_server):
    server = jwks_server([rsa1()], jwks_path="/discovered/keys.json")
    gw = start(gateway, echo, plugin({"discovery": True}, issuer=server.base))
    r = wait_keys_loaded(gw, "/api/x", lambda: rsa1().token(claims("disc", iss=server.base), "RS256"))
    assert upstream_headers(r).get("x-user-id") == "disc"
    assert server.hits(DISCOVERY_PATH) >= 1
    assert server.hits("/discovered/keys.json") >= 1
    assert_invalid_token(gw.get("/api/x", headers=bearer(rsa1().token(claims(), "RS256"))))


# --------------------------------------------------------------------------
# scopes, claims_to_headers, consumer_claim, acl by roles, anonymous

def test_token_with_the_required_scope_passes(pem_gw):
    gw = pem_gw(required_scopes=["links:read"])
    token = rsa1().token(claims(scope="links:write links:read"), "RS256")
    assert gw.get("/api/x", headers=bearer(token)).status_code == 200


@pytest.mark.parametrize("scope", ["links:write", None, "links:readx"], ids=["other", "none", "prefix"])
def test_missing_scope_is_403_insufficient_scope(pem_gw, scope):
    gw = pem_gw(required_scopes=["links:read"])
    r = gw.get("/api/x", headers=bearer(rsa1().token(claims(scope=scope), "RS256")))
    assert_auth_error(r, 403, "insufficient scope", [insufficient_scope_challenge(["links:read"])])


def test_insufficient_scope_challenge_lists_every_required_scope(pem_gw):
    gw = pem_gw(required_scopes=["links:read", "links:write"])
    r = gw.get("/api/x", headers=bearer(rsa1().token(claims(scope="links:read"), "RS256")))
    assert_auth_error(r, 403, "insufficient scope",
                      [insufficient_scope_challenge(["links:read", "links:write"])])


MAPPING = {"X-User-ID": "uid", "X-User-Role": "role", "X-Tenant": "tenant", "X-Level": "level",
           "X-Admin": "admin", "X-Groups": "groups"}


def test_claims_to_headers_maps_claims_to_upstream_headers(pem_gw):
    gw = pem_gw(claims_to_headers=MAPPING)
    token = rsa1().token(claims("sub-1", uid="u-77", role="editor", tenant="t1", level=3,
                                admin=True, groups=["a", "b"]), "RS256")
    seen = upstream_headers(gw.get("/api/x", headers=bearer(token)))
    assert (seen.get("x-user-id"), seen.get("x-user-role"), seen.get("x-tenant")) == ("u-77", "editor", "t1")
    assert (seen.get("x-level"), seen.get("x-admin"), seen.get("x-groups")) == ("3", "true", "a,b")


def test_claims_to_headers_names_are_stripped_from_the_client(pem_gw):
    gw = pem_gw(claims_to_headers=MAPPING)
    token = rsa1().token(claims("sub-1", tenant="t1"), "RS256")
    seen = upstream_headers(gw.get("/api/x", headers={**bearer(token), "X-Tenant": "evil",
                                                       "X-Level": "99", "X-Groups": "admins"}))
    assert seen.get("x-tenant") == "t1"
    assert "x-level" not in seen and "x-groups" not in seen


CONSUMERS = [{"name": "acme", "plan": "pro", "groups": ["partners"]},
             {"name": "bob", "groups": ["viewers"]},
             {"name": "guest", "plan": "free"}]


def test_consumer_claim_maps_the_token_to_a_consumer(pem_gw):
    gw = pem_gw(consumer_claim="sub", consumers=CONSUMERS)
    seen = upstream_headers(gw.get("/api/x", headers=bearer(rsa1().token(claims("acme"), "RS256"))))
    assert seen.get("x-consumer") == "acme"
    assert seen.get("x-consumer-tier") == "pro"
    assert seen.get("x-user-id") == "acme"


def test_acl_uses_the_groups_of_the_consumer_the_token_names(pem_gw):
    gw = pem_gw(consumer_claim="sub", consumers=CONSUMERS,
                extra_plugins=[{"acl": {"allow": ["partners"]}}])
    assert gw.get("/api/x", headers=bearer(rsa1().token(claims("acme"), "RS256"))).status_code == 200
    r = gw.get("/api/x", headers=bearer(rsa1().token(claims("bob"), "RS256")))
    assert_auth_error(r, 403, "access denied", [])


@pytest.mark.parametrize("roles,status", [(["editor"], 200), (["viewer"], 403),
                                          ("viewer editor", 200), (None, 403)],
                         ids=["array-member", "array-other", "space-separated", "no-claim"])
def test_acl_allow_by_roles_claim(pem_gw, roles, status):
    gw = pem_gw(roles_claim="roles", extra_plugins=[{"acl": {"allow": ["editor"]}}])
    r = gw.get("/api/x", headers=bearer(rsa1().token(claims(roles=roles), "RS256")))
    if status == 200:
        assert r.status_code == 200, r.text
    else:
        assert_auth_error(r, 403, "access denied", [])


def test_acl_deny_by_roles_claim(pem_gw):
    gw = pem_gw(roles_claim="roles", extra_plugins=[{"acl": {"deny": ["banned"]}}])
    r = gw.get("/api/x", headers=bearer(rsa1().token(claims(roles=["editor", "banned"]), "RS256")))
    assert_auth_error(r, 403, "access denied", [])
    r = gw.get("/api/x", headers=bearer(rsa1().token(claims(roles=["editor"]), "RS256")))
    assert r.status_code == 200, r.text


def test_jwt_anonymous_covers_only_the_absent_token(pem_gw):
    gw = pem_gw(anonymous="guest", consumers=CONSUMERS)
    seen = upstream_headers(gw.get("/api/x"))
    assert (seen.get("x-consumer"), seen.get("x-anonymous-consumer")) == ("guest", "true")
    assert "x-auth-verified" not in seen
    expired = rsa1().token(claims(**_shift(exp=-3600)), "RS256")
    assert_invalid_token(gw.get("/api/x", headers=bearer(expired)))


# --------------------------------------------------------------------------
# logs

def test_access_log_has_the_token_subject_as_user_id(pem_gw):
    gw = pem_gw()
    r = gw.get("/api/x", headers=bearer(rsa1().token(claims("log-user"), "RS256")))
    assert r.status_code == 200
    entry = next(e for e in gw.access_log(1) if e["request_id"] == r.headers["X-Request-Id"])
    assert entry["user_id"] == "log-user"


def test_tokens_never_appear_in_logs_or_problem_bodies(pem_gw):
    gw = pem_gw()
    good = rsa1().token(claims(), "RS256")
    expired = rsa1().token(claims(**_shift(exp=-3600)), "RS256")
    forged = attacker().with_kid("rsa-1").token(claims(), "RS256")
    tokens = [good, expired, forged]
    answers = [gw.get("/api/x", headers=bearer(t)) for t in tokens]
    assert [a.status_code for a in answers] == [200, 401, 401]
    for a in answers[1:]:
        for t in tokens:
            for part in [t] + t.split(".")[1:]:
                assert part not in a.text, a.text
    gw.access_log(len(answers))
    logged = open(gw.access_log_path).read() + gw.stderr() + gw.stdout()
    for t in tokens:
        for part in [t] + t.split(".")[1:]:
            assert part not in logged, "a token (or its payload/signature) is in the logs"
