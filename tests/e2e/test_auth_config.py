"""Auth config errors: `gatehouse validate` reports each as FILE:LINE:COL:
message pointing at the offending key or value (docs/auth.md, "Config")."""

import os
import re
import subprocess

import pytest

from conftest import GATEHOUSE_BIN, require_binary
from auth_support import require_hash

JWT_SECRET = "j" * 32          # exactly the 32-byte minimum
SIGNING_SECRET = "s" * 32
ENV_NAMES = ("TEST_JWT_SECRET", "GH_TEST_SIGNING", "TEST_INTROSPECT_SECRET")


def base_config():
    pw_hash = require_hash("acme-pass-1", "sha512")
    return f"""\
listen: 127.0.0.1:18080
workers: 1
access_log: off
consumers:
  - name: acme
    plan: pro
    groups:
      - partners
    api_keys:
      - k-acme-123
    basic_auth:
      username: acme
      password_hash: "{pw_hash}"
  - name: guest
upstreams:
  svc:
    targets:
      - 127.0.0.1:9001
routes:
  - name: keys
    match:
      path_prefix: /keys/
    upstream: svc
    plugins:
      - key_auth:
          header: X-API-Key
          anonymous: guest
      - acl:
          allow:
            - partners
  - name: tokens
    match:
      path_prefix: /tokens/
    upstream: svc
    plugins:
      - jwt:
          secret_env: TEST_JWT_SECRET
          algorithms:
            - HS256
          issuer: https://auth.example.com
          audience: links-api
"""


def run_validate(path, env_extra):
    require_binary(GATEHOUSE_BIN)
    env = {k: v for k, v in os.environ.items() if k not in ENV_NAMES}
    env.update(env_extra)
    return subprocess.run([GATEHOUSE_BIN, "validate", "-c", str(path)], capture_output=True,
                          text=True, timeout=10, env=env, stdin=subprocess.DEVNULL)


def locate(text, needle, occurrence=1, offset=0):
    """1-based (line, col) of the n-th occurrence of needle (plus offset chars)."""
    index = -1
    for _ in range(occurrence):
        index = text.index(needle, index + 1)
    index += offset
    return text.count("\n", 0, index) + 1, index - (text.rfind("\n", 0, index) + 1) + 1


def error_lines(stderr, path):
    found = []
    for line in stderr.splitlines():
        m = re.match(re.escape(str(path)) + r":(\d+):(\d+): (.+)$", line)
        if m:
            found.append((int(m.group(1)), int(m.group(2)), m.group(3)))
    return found


def append_route(text, name, plugins_yaml):
    return text + (f"  - name: {name}\n    match:\n      path_prefix: /{name}/\n"
                   f"    upstream: svc\n    plugins:\n{plugins_yaml}")


def add_consumer(text, consumer_yaml):
    return text.replace("  - name: guest\n", consumer_yaml + "  - name: guest\n")


OK_ENV = {"TEST_JWT_SECRET": JWT_SECRET}

# case: (edit(text) -> text, env, anchors [(needle, occurrence, offset)], message words,
#        exactly one error?)
CASES = {
    "anonymous_names_no_consumer": (
        lambda t: t.replace("anonymous: guest", "anonymous: nobody"), OK_ENV,
        [("nobody", 1, 0), ("anonymous: nobody", 1, 0)], ["nobody", "consumer"], True),
    "acl_without_auth_plugin": (
        lambda t: append_route(t, "open", "      - acl:\n          allow:\n            - partners\n"),
        OK_ENV, [("acl:", 2, 0), ("- acl:", 2, 0), ("allow:", 2, 0)], ["acl", "auth"], True),
    "hs_secret_shorter_than_32_bytes": (
        lambda t: t, {"TEST_JWT_SECRET": "j" * 31},
        [("TEST_JWT_SECRET", 1, 0), ("secret_env", 1, 0)], ["32", "short", "bytes"], True),
    "hs_secret_unset": (
        lambda t: t, {},
        [("TEST_JWT_SECRET", 1, 0), ("secret_env", 1, 0)], ["test_jwt_secret", "not set", "unset"], True),
    "jwt_without_key_source": (
        lambda t: t.replace("          secret_env: TEST_JWT_SECRET\n", ""), OK_ENV,
        [("jwt:", 1, 0), ("- jwt:", 1, 0), ("algorithms:", 1, 0)],
        ["key", "jwks_url", "secret_env", "source"], False),
    "jwt_with_two_key_sources": (
        lambda t: t.replace("          secret_env: TEST_JWT_SECRET\n",
                            "          secret_env: TEST_JWT_SECRET\n"
                            "          jwks_url: http://127.0.0.1:9/jwks.json\n"), OK_ENV,
        [("jwks_url", 1, 0), ("secret_env", 1, 0), ("jwt:", 1, 0), ("- jwt:", 1, 0)],
        ["jwks_url", "secret_env", "source", "one"], False),
    "hs_algorithm_with_jwks_url": (
        lambda t: append_route(t, "mixed", "      - jwt:\n          jwks_url: http://127.0.0.1:9/jwks.json\n"
                                           "          algorithms:\n            - RS256\n            - HS384\n"),
        OK_ENV, [("HS384", 1, 0)], ["hs384"], True),
    "duplicate_consumer_name": (
        lambda t: add_consumer(t, "  - name: acme\n"), OK_ENV,
        [("- name: acme", 2, 8), ("- name: acme", 2, 2)], ["duplicate", "acme"], True),
    "duplicate_api_key": (
        lambda t: add_consumer(t, "  - name: bob\n    api_keys:\n      - k-acme-123\n"), OK_ENV,
        [("k-acme-123", 2, 0)], ["duplicate"], True),
    "duplicate_basic_username": (
        lambda t: add_consumer(t, "  - name: bob\n    basic_auth:\n      username: acme\n"
                                  f"      password_hash: \"{require_hash('bob-pass-2', 'sha512')}\"\n"), OK_ENV,
        [("username: acme", 2, 10), ("username: acme", 2, 0)], ["duplicate", "acme"], True),
    "unrecognised_password_hash": (
        lambda t: add_consumer(t, "  - name: bob\n    basic_auth:\n      username: bob\n"
                                  "      password_hash: not-a-crypt-hash\n"), OK_ENV,
        [("not-a-crypt-hash", 1, 0), ("password_hash: not-a-crypt-hash", 1, 0)],
        ["password_hash", "crypt", "hash"], True),
    "signing_secret_unset": (
        lambda t: t.replace("upstreams:\n", "upstream_signing:\n  secret_env: GH_TEST_SIGNING\nupstreams:\n"),
        OK_ENV, [("GH_TEST_SIGNING", 1, 0), ("secret_env: GH_TEST_SIGNING", 1, 0)],
        ["gh_test_signing", "not set", "unset"], True),
    "signing_secret_shorter_than_32_bytes": (
        lambda t: t.replace("upstreams:\n", "upstream_signing:\n  secret_env: GH_TEST_SIGNING\nupstreams:\n"),
        {**OK_ENV, "GH_TEST_SIGNING": "s" * 16}, [("GH_TEST_SIGNING", 1, 0), ("secret_env: GH_TEST_SIGNING", 1, 0)],
        ["32", "short", "bytes"], True),
}


def test_base_config_is_valid(tmp_path):
    path = tmp_path / "base.yaml"
    path.write_text(base_config())
    r = run_validate(path, OK_ENV)
    assert r.returncode == 0, r.stderr
    assert f"{path}: ok" in r.stdout + r.stderr


def test_a_config_using_every_auth_feature_is_valid(tmp_path):
    from auth_support import make_key
    pem = tmp_path / "k1.pem"
    pem.write_text(make_key("RSA", "k1", 0).public_pem())
    text = base_config().replace("upstreams:\n", "upstream_signing:\n  secret_env: GH_TEST_SIGNING\nupstreams:\n")
    text = append_route(text, "partner", """\
      - key_auth:
          header: X-API-Key
          query: api_key
          anonymous: guest
          hide_credentials: true
      - basic_auth:
          realm: gatehouse
          hide_credentials: true
      - jwt:
          jwks_url: http://127.0.0.1:9/.well-known/jwks.json
          issuer: https://auth.example.com
          audience: links-api
          algorithms:
            - RS256
            - ES256
          clock_skew: 30s
          required_scopes:
            - links:read
          claims_to_headers:
            X-User-ID: sub
            X-User-Role: role
          consumer_claim: sub
          roles_claim: roles
          refresh_interval: 5m
      - oauth2_introspection:
          url: http://127.0.0.1:9/introspect
          client_id: gw
          client_secret_env: TEST_INTROSPECT_SECRET
          cache: 60s
          timeout: 2s
          required_scopes:
            - links:read
      - acl:
          deny:
            - blocked
""")
    text = append_route(text, "static", f"""\
      - jwt:
          keys:
            - kid: k1
              pem_file: {pem}
          algorithms:
            - RS256
""")
    text = append_route(text, "oidc", """\
      - jwt:
          discovery: true
          issuer: http://127.0.0.1:9
          algorithms:
            - RS256
""")
    path = tmp_path / "full.yaml"
    path.write_text(text)
    r = run_validate(path, {**OK_ENV, "GH_TEST_SIGNING": SIGNING_SECRET,
                            "TEST_INTROSPECT_SECRET": "introspection-client-secret"})
    assert r.returncode == 0, f"{r.stderr}\n{text}"


@pytest.mark.parametrize("case", list(CASES))
def test_auth_config_error_points_at_the_offending_node(tmp_path, case):
    edit, env, anchors, words, exactly_one = CASES[case]
    text = edit(base_config())
    assert text != base_config() or env != OK_ENV, "the case changes nothing"
    path = tmp_path / f"{case}.yaml"
    path.write_text(text)
    r = run_validate(path, env)
    assert r.returncode == 1, (r.returncode, r.stdout, r.stderr)
    errors = error_lines(r.stderr, path)
    if exactly_one:
        assert len(errors) == 1, f"expected exactly one FILE:LINE:COL error, got:\n{r.stderr}"
    expected = [locate(text, needle, n, off) for needle, n, off in anchors]
    hits = [(l, c, m) for l, c, m in errors if (l, c) in expected]
    assert hits, f"no error at any of {expected}:\n{r.stderr}\n{text}"
    message = hits[0][2]
    assert any(w in message.lower() for w in words), f"message should mention one of {words}: {message}"
