"""key_auth, basic_auth, anonymous consumers, several auth plugins on one
route, acl by consumer groups, hidden credentials, identity headers the
client may not forge, upstream signing, and logs that never hold a
credential (docs/auth.md)."""

import base64
import hashlib

import pytest

from conftest import raw_request
from auth_support import (  # noqa: F401 (echo, *_server: fixtures)
                          APIKEY_CHALLENGE, IDENTITY_HEADERS, assert_auth_error, basic_challenge,
                          challenges, check_signature, echo, password_hash, require_hash, route,
                          upstream_headers)

ACME_KEY = "k-acme-123"
ACME_HASHED_KEY = "k-acme-hashed-456"
BOB_KEY = "k-bob-789"
PASSWORDS = {"acme": "acme-pass-1", "bob": "bob:pass:2", "carol": "carol-pass-3"}
SIGNING_SECRET = "signing-secret-0123456789abcdef-XYZ"


def consumers():
    acme_hash = require_hash(PASSWORDS["acme"], "sha512")
    bob_hash = require_hash(PASSWORDS["bob"], "bcrypt")
    out = [
        {"name": "acme", "plan": "pro", "groups": ["partners", "editor"],
         "api_keys": [ACME_KEY, "sha256:" + hashlib.sha256(ACME_HASHED_KEY.encode()).hexdigest()],
         "basic_auth": {"username": "acme", "password_hash": acme_hash}},
        {"name": "bob", "groups": ["viewers"], "api_keys": [BOB_KEY],
         "basic_auth": {"username": "bob", "password_hash": bob_hash}},
        {"name": "guest", "plan": "free"},
    ]
    carol_hash = password_hash(PASSWORDS["carol"], "yescrypt")
    if carol_hash:
        out.append({"name": "carol", "plan": "basic", "groups": ["editor"],
                    "basic_auth": {"username": "carol", "password_hash": carol_hash}})
    return out


KEY = {"key_auth": {"header": "X-API-Key", "query": "api_key"}}


def routes():
    return [
        route("key", "/key/", [KEY]),
        route("partner", "/partner/", [{"key_auth": {"header": "X-Partner-Key", "query": "partner_key"}}]),
        route("basic", "/basic/", [{"basic_auth": {"realm": "partners"}}]),
        route("guarded", "/guarded/", [{"key_auth": {"header": "X-API-Key"}},
                                       {"basic_auth": {"realm": "gatehouse"}}], upstream="rec"),
        route("anon", "/anon/", [{"key_auth": {"header": "X-API-Key"}},
                                 {"basic_auth": {"realm": "gatehouse", "anonymous": "guest"}}]),
        route("allow", "/allow/", [KEY, {"acl": {"allow": ["partners"]}}]),
        route("deny", "/deny/", [KEY, {"acl": {"deny": ["viewers"]}}]),
        route("anon-acl", "/anon-acl/", [{"key_auth": {"header": "X-API-Key", "anonymous": "guest"}},
                                         {"acl": {"allow": ["partners"]}}]),
        route("keep", "/keep/", [{"key_auth": {"header": "X-API-Key", "hide_credentials": False}},
                                 {"basic_auth": {"realm": "gatehouse", "hide_credentials": False}}]),
        route("open", "/open/"),
    ]


def config(echo, rec, **extra):
    cfg = {"upstreams": {"svc": {"targets": [echo.addr]}, "rec": {"targets": [rec.addr]}},
           "consumers": consumers(), "routes": routes()}
    cfg.update(extra)
    return cfg


@pytest.fixture
def rec(recorder):
    return recorder()


@pytest.fixture
def keys_gw(gateway, echo, rec, monkeypatch):
    """keys_gw(signing=False) starts the gateway with every route above (in the
    test body, so that a refused config is a test failure, not a fixture error)."""
    def make(signing=False):
        if not signing:
            return gateway(config(echo, rec))
        monkeypatch.setenv("GATEHOUSE_SIGNING_SECRET", SIGNING_SECRET)
        return gateway(config(echo, rec, upstream_signing={"secret_env": "GATEHOUSE_SIGNING_SECRET"}))
    return make


def basic(user, password):
    return {"Authorization": "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()}


# --------------------------------------------------------------------------
# key_auth

def test_api_key_header_authenticates_and_upstream_gets_identity(keys_gw):
    gw = keys_gw()
    seen = upstream_headers(gw.get("/key/x", headers={"X-API-Key": ACME_KEY}))
    assert seen.get("x-consumer") == "acme"
    assert seen.get("x-consumer-tier") == "pro"
    assert seen.get("x-user-id") == "acme"
    assert seen.get("x-user-role") == "partners,editor"
    assert seen.get("x-auth-verified") == "true"
    assert "x-anonymous-consumer" not in seen


def test_api_key_in_query_is_accepted_and_removed_from_the_upstream_target(keys_gw):
    gw = keys_gw()
    r = gw.get(f"/key/x?other=1&api_key={ACME_KEY}")
    seen = upstream_headers(r)
    assert seen.get("x-consumer") == "acme"
    assert r.json()["path"] == "/key/x"
    assert r.json()["query"] == "other=1"


def test_sha256_listed_key_matches_the_plain_key(keys_gw):
    gw = keys_gw()
    seen = upstream_headers(gw.get("/key/x", headers={"X-API-Key": ACME_HASHED_KEY}))
    assert seen.get("x-consumer") == "acme"
    assert seen.get("x-auth-verified") == "true"


@pytest.mark.parametrize("form", ["prefixed", "bare"])
def test_the_hash_of_a_key_is_not_itself_a_key(keys_gw, form):
    gw = keys_gw()
    digest = hashlib.sha256(ACME_HASHED_KEY.encode()).hexdigest()
    presented = "sha256:" + digest if form == "prefixed" else digest
    r = gw.get("/key/x", headers={"X-API-Key": presented})
    assert_auth_error(r, 401, "invalid credentials", [APIKEY_CHALLENGE])


def test_consumer_without_plan_gets_no_tier_header(keys_gw):
    gw = keys_gw()
    seen = upstream_headers(gw.get("/key/x", headers={"X-API-Key": BOB_KEY}))
    assert seen.get("x-consumer") == "bob"
    assert "x-consumer-tier" not in seen
    assert seen.get("x-user-role") == "viewers"


def test_missing_api_key_is_401_with_apikey_challenge(keys_gw):
    gw = keys_gw()
    r = gw.get("/key/x")
    assert_auth_error(r, 401, "missing credentials", [APIKEY_CHALLENGE])


@pytest.mark.parametrize("key", ["k-nobody-000", ACME_KEY.upper(), ACME_KEY + "x", ACME_KEY[:-1]],
                         ids=["unknown", "other-case", "longer", "shorter"])
def test_wrong_api_key_is_401_and_reaches_no_upstream(keys_gw, rec, key):
    gw = keys_gw()
    r = gw.get("/guarded/x", headers={"X-API-Key": key})
    problem = assert_auth_error(r, 401, "invalid credentials", [APIKEY_CHALLENGE])
    assert key not in r.text, problem
    rec.settle()
    assert rec.bytes == 0


def test_only_the_configured_header_and_query_carry_a_key(keys_gw):
    gw = keys_gw()
    r = gw.get("/partner/x", headers={"X-API-Key": ACME_KEY})
    assert_auth_error(r, 401, "missing credentials", [APIKEY_CHALLENGE])
    r = gw.get(f"/partner/x?api_key={ACME_KEY}")
    assert_auth_error(r, 401, "missing credentials", [APIKEY_CHALLENGE])
    seen = upstream_headers(gw.get("/partner/x", headers={"X-Partner-Key": ACME_KEY}))
    assert seen.get("x-consumer") == "acme"
    r = gw.get(f"/partner/x?partner_key={ACME_KEY}&z=1")
    assert upstream_headers(r).get("x-consumer") == "acme"
    assert r.json()["query"] == "z=1"


# --------------------------------------------------------------------------
# basic_auth

@pytest.mark.parametrize("user,scheme", [("acme", "sha512"), ("bob", "bcrypt"), ("carol", "yescrypt")])
def test_basic_auth_accepts_each_crypt_scheme(keys_gw, user, scheme):
    gw = keys_gw()
    require_hash(PASSWORDS[user], scheme)
    seen = upstream_headers(gw.get("/basic/x", headers=basic(user, PASSWORDS[user])))
    assert seen.get("x-consumer") == user
    assert seen.get("x-auth-verified") == "true"
    assert "authorization" not in seen


def test_basic_auth_wrong_password_is_401(keys_gw):
    gw = keys_gw()
    r = gw.get("/basic/x", headers=basic("acme", PASSWORDS["acme"] + "!"))
    assert_auth_error(r, 401, "invalid credentials", [basic_challenge("partners")])


def test_basic_auth_unknown_user_is_401_with_the_same_detail(keys_gw):
    gw = keys_gw()
    r = gw.get("/basic/x", headers=basic("mallory", PASSWORDS["acme"]))
    assert_auth_error(r, 401, "invalid credentials", [basic_challenge("partners")])


def test_basic_auth_missing_is_401_with_basic_challenge(keys_gw):
    gw = keys_gw()
    r = gw.get("/basic/x")
    assert_auth_error(r, 401, "missing credentials", [basic_challenge("partners")])


def test_password_is_split_at_the_first_colon_only(keys_gw):
    # "bob:bob:pass:2": user "bob", password "bob:pass:2"
    gw = keys_gw()
    seen = upstream_headers(gw.get("/basic/x", headers=basic("bob", PASSWORDS["bob"])))
    assert seen.get("x-consumer") == "bob"
    r = gw.get("/basic/x", headers=basic("bob", "bob"))
    assert_auth_error(r, 401, "invalid credentials", [basic_challenge("partners")])


@pytest.mark.parametrize("scheme", ["basic", "BASIC", "bAsIc"])
def test_auth_scheme_is_case_insensitive(keys_gw, scheme):
    gw = keys_gw()
    token = base64.b64encode(f"acme:{PASSWORDS['acme']}".encode()).decode()
    seen = upstream_headers(gw.get("/basic/x", headers={"Authorization": f"{scheme} {token}"}))
    assert seen.get("x-consumer") == "acme"


@pytest.mark.parametrize("credential", ["!!!not-base64!!!", base64.b64encode(b"acme").decode()],
                         ids=["not-base64", "no-colon"])
def test_malformed_basic_credentials_are_401(keys_gw, credential):
    gw = keys_gw()
    r = gw.get("/basic/x", headers={"Authorization": f"Basic {credential}"})
    assert_auth_error(r, 401, "invalid credentials", [basic_challenge("partners")])


# --------------------------------------------------------------------------
# hide_credentials

def test_credentials_are_hidden_from_the_upstream_by_default(keys_gw):
    gw = keys_gw()
    r = gw.get("/key/x", headers={"X-API-Key": ACME_KEY})
    seen = upstream_headers(r)
    assert "x-api-key" not in seen
    assert ACME_KEY not in r.text
    r = gw.get("/basic/x", headers=basic("acme", PASSWORDS["acme"]))
    seen = upstream_headers(r)
    assert "authorization" not in seen
    r = gw.get(f"/key/x?api_key={ACME_KEY}")
    assert upstream_headers(r).get("x-consumer") == "acme"
    assert ACME_KEY not in r.text


def test_hide_credentials_false_passes_the_credential_on(keys_gw):
    gw = keys_gw()
    seen = upstream_headers(gw.get("/keep/x", headers={"X-API-Key": ACME_KEY}))
    assert seen.get("x-api-key") == ACME_KEY
    assert seen.get("x-consumer") == "acme"
    auth = basic("bob", PASSWORDS["bob"])
    seen = upstream_headers(gw.get("/keep/x", headers=auth))
    assert seen.get("authorization") == auth["Authorization"]
    assert seen.get("x-consumer") == "bob"


# --------------------------------------------------------------------------
# several auth plugins on one route, anonymous consumers

def test_the_presented_credential_picks_the_plugin(keys_gw, rec):
    gw = keys_gw()
    r = gw.get("/guarded/x", headers={"X-API-Key": ACME_KEY})
    assert r.status_code == 200, r.text
    r = gw.get("/guarded/y", headers=basic("bob", PASSWORDS["bob"]))
    assert r.status_code == 200, r.text
    data = rec.data.decode("latin-1").lower()
    assert "x-consumer: acme" in data and "x-consumer: bob" in data, data


def test_no_credential_on_several_plugins_is_401_with_one_challenge_each(keys_gw, rec):
    gw = keys_gw()
    r = gw.get("/guarded/x")
    assert_auth_error(r, 401, "missing credentials", [APIKEY_CHALLENGE, basic_challenge("gatehouse")])
    rec.settle()
    assert rec.bytes == 0


def test_wrong_key_on_several_plugins_is_401_with_its_challenge(keys_gw, rec):
    gw = keys_gw()
    r = gw.get("/guarded/x", headers={"X-API-Key": "k-nobody-000"})
    assert r.status_code == 401
    assert r.json()["detail"] == "invalid credentials"
    assert APIKEY_CHALLENGE in challenges(r), challenges(r)
    rec.settle()
    assert rec.bytes == 0


def test_anonymous_consumer_when_no_credential_is_presented(keys_gw):
    gw = keys_gw()
    seen = upstream_headers(gw.get("/anon/x"))
    assert seen.get("x-consumer") == "guest"
    assert seen.get("x-consumer-tier") == "free"
    assert seen.get("x-anonymous-consumer") == "true"
    assert "x-auth-verified" not in seen


def test_anonymous_does_not_cover_a_bad_credential(keys_gw):
    gw = keys_gw()
    r = gw.get("/anon/x", headers={"X-API-Key": "k-nobody-000"})
    assert r.status_code == 401, r.text
    r = gw.get("/anon/x", headers=basic("acme", "wrong-password"))
    assert r.status_code == 401, r.text


def test_authenticated_caller_on_an_anonymous_route_is_not_anonymous(keys_gw):
    gw = keys_gw()
    seen = upstream_headers(gw.get("/anon/x", headers={"X-API-Key": ACME_KEY}))
    assert seen.get("x-consumer") == "acme"
    assert seen.get("x-auth-verified") == "true"
    assert "x-anonymous-consumer" not in seen


def test_anonymous_caller_cannot_claim_to_be_verified(keys_gw):
    gw = keys_gw()
    seen = upstream_headers(gw.get("/anon/x", headers={
        "X-Auth-Verified": "true", "X-Anonymous-Consumer": "false", "X-Consumer": "acme",
        "X-Consumer-Tier": "pro", "X-User-ID": "admin"}))
    assert seen.get("x-consumer") == "guest"
    assert seen.get("x-consumer-tier") == "free"
    assert seen.get("x-anonymous-consumer") == "true"
    assert "x-auth-verified" not in seen
    assert seen.get("x-user-id") != "admin"


# --------------------------------------------------------------------------
# identity headers the client cannot forge

def spoofed_head(path, extra=b""):
    return (f"GET {path} HTTP/1.1\r\nHost: t\r\n".encode() + extra
            + b"X-Consumer: admin\r\nx-consumer: root\r\nX-CONSUMER-TIER: platinum\r\n"
              b"X-User-ID: 0\r\nx-user-id: 1\r\nX-User-Role: superuser\r\n"
              b"X-Auth-Verified: true\r\nX-Gateway-Signature: t=1,v1=00\r\n"
              b"X-Anonymous-Consumer: false\r\nConnection: close\r\n\r\n")


def test_forged_identity_headers_are_replaced_on_an_authenticated_route(keys_gw):
    gw = keys_gw()
    resp = raw_request(gw.port, spoofed_head("/key/x", f"X-API-Key: {BOB_KEY}\r\n".encode()))
    assert resp.status == 200, resp
    seen = resp.json()["headers"]
    assert seen.get("x-consumer") == "bob"
    assert seen.get("x-user-id") == "bob"
    assert seen.get("x-user-role") == "viewers"
    assert seen.get("x-auth-verified") == "true"
    for name in ("x-consumer-tier", "x-gateway-signature", "x-anonymous-consumer"):
        assert name not in seen, (name, seen)


def test_forged_identity_headers_are_stripped_on_a_route_without_auth(keys_gw):
    gw = keys_gw()
    resp = raw_request(gw.port, spoofed_head("/open/x"))
    assert resp.status == 200, resp
    seen = resp.json()["headers"]
    leaked = [h for h in IDENTITY_HEADERS if h.lower() in seen]
    assert not leaked, f"client-sent {leaked} reached the upstream: {seen}"


# --------------------------------------------------------------------------
# acl by consumer groups

def test_acl_allow_admits_members_and_refuses_others_with_403(keys_gw):
    gw = keys_gw()
    assert upstream_headers(gw.get("/allow/x", headers={"X-API-Key": ACME_KEY}))["x-consumer"] == "acme"
    r = gw.get("/allow/x", headers={"X-API-Key": BOB_KEY})
    assert_auth_error(r, 403, "access denied", [])


def test_acl_deny_refuses_members(keys_gw):
    gw = keys_gw()
    r = gw.get("/deny/x", headers={"X-API-Key": BOB_KEY})
    assert_auth_error(r, 403, "access denied", [])
    assert upstream_headers(gw.get("/deny/x", headers={"X-API-Key": ACME_KEY}))["x-consumer"] == "acme"


def test_acl_route_without_credentials_is_401_not_403(keys_gw):
    gw = keys_gw()
    r = gw.get("/allow/x")
    assert_auth_error(r, 401, "missing credentials", [APIKEY_CHALLENGE])


def test_acl_applies_to_the_anonymous_consumer(keys_gw):
    gw = keys_gw()
    r = gw.get("/anon-acl/x")
    assert_auth_error(r, 403, "access denied", [])
    assert upstream_headers(gw.get("/anon-acl/x", headers={"X-API-Key": ACME_KEY}))["x-consumer"] == "acme"


# --------------------------------------------------------------------------
# upstream signing

def test_signature_recomputes_over_the_documented_string(keys_gw):
    signed_gw = keys_gw(signing=True)
    r = signed_gw.get("/key/items/7?b=2&a=1", headers={"X-API-Key": ACME_KEY})
    upstream_headers(r)
    seen = r.json()
    assert seen["query"] == "b=2&a=1"
    assert seen["headers"].get("x-user-id") == "acme"
    check_signature(seen, SIGNING_SECRET, "GET")


def test_signature_on_an_unauthenticated_route_has_an_empty_user_line(keys_gw):
    signed_gw = keys_gw(signing=True)
    r = signed_gw.post("/open/submit", data=b"payload", headers={"X-Request-Id": "req-sign-1"})
    upstream_headers(r)
    seen = r.json()
    assert seen["headers"].get("x-request-id") == "req-sign-1"
    assert "x-user-id" not in seen["headers"]
    check_signature(seen, SIGNING_SECRET, "POST")


def test_signature_replaces_a_forged_one_and_covers_the_target_sent_upstream(keys_gw):
    signed_gw = keys_gw(signing=True)
    r = signed_gw.get(f"/key/x?a=1&api_key={ACME_KEY}&b=2",
                      headers={"X-Gateway-Signature": "t=1,v1=" + "0" * 64})
    upstream_headers(r)
    seen = r.json()
    assert seen["query"] == "a=1&b=2"
    assert "," not in seen["headers"]["x-gateway-signature"].split(",v1=")[1]
    check_signature(seen, SIGNING_SECRET, "GET")


def test_no_signature_without_upstream_signing(keys_gw):
    gw = keys_gw()
    seen = upstream_headers(gw.get("/key/x", headers={"X-API-Key": ACME_KEY}))
    assert "x-gateway-signature" not in seen


# --------------------------------------------------------------------------
# logs

def test_access_log_names_user_and_tier_of_an_authenticated_request(keys_gw):
    gw = keys_gw()
    r = gw.get("/key/x", headers={"X-API-Key": ACME_KEY})
    assert r.status_code == 200
    entries = gw.access_log(1)
    entry = next(e for e in entries if e["request_id"] == r.headers["X-Request-Id"])
    assert entry["user_id"] == "acme"
    assert entry["consumer_tier"] == "pro"


def test_no_credential_ever_appears_in_logs_or_problem_bodies(keys_gw):
    gw = keys_gw()
    secrets = [ACME_KEY, "k-secret-guess-1", PASSWORDS["acme"], "wrong-pass-word-7",
               base64.b64encode("acme:wrong-pass-word-7".encode()).decode()]
    answers = [
        gw.get("/key/x", headers={"X-API-Key": ACME_KEY}),
        gw.get("/key/x", headers={"X-API-Key": "k-secret-guess-1"}),
        gw.get("/key/x?api_key=k-secret-guess-1"),
        gw.get("/basic/x", headers=basic("acme", PASSWORDS["acme"])),
        gw.get("/basic/x", headers=basic("acme", "wrong-pass-word-7")),
        gw.get("/allow/x", headers={"X-API-Key": BOB_KEY}),
    ]
    assert [a.status_code for a in answers] == [200, 401, 401, 200, 401, 403]
    for a in answers:
        if a.status_code != 200:
            for s in secrets + [BOB_KEY]:
                assert s not in a.text, (s, a.text)
    entries = gw.access_log(len(answers))
    assert len(entries) >= len(answers)
    logged = open(gw.access_log_path).read() + gw.stderr() + gw.stdout()
    for s in secrets + [BOB_KEY]:
        assert s not in logged, f"{s!r} appears in the gateway's logs"
