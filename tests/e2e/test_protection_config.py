"""Traffic-protection config errors: `gatehouse validate` reports each as
FILE:LINE:COL: message at the offending node (docs/protection.md, "Config"):
bad CIDR blocks in ip_restriction and trusted_proxies, and cors origins "*"
together with credentials."""

import pytest

from ratelimit_support import error_lines, locate, validate

BASE = """\
listen: 127.0.0.1:18080
workers: 1
access_log: off
trusted_proxies:
  - 127.0.0.1/32
  - "::1/128"
  - 10.0.0.0/8
limits:
  max_connections_per_ip: 256
upstreams:
  svc:
    targets:
      - 127.0.0.1:9001
routes:
  - name: guarded
    match:
      path_prefix: /guarded
    upstream: svc
    plugins:
      - ip_restriction:
          allow:
            - 10.0.0.0/8
            - 192.168.1.7
            - "2001:db8::/32"
          deny:
            - 10.1.2.3/32
            - "::1"
      - cors:
          origins:
            - https://app.example.com
          methods:
            - GET
            - POST
          headers:
            - Authorization
          expose_headers:
            - X-Request-Id
          credentials: true
          max_age: 600
      - security_headers:
          hsts: max-age=600
          frame_options: SAMEORIGIN
          referrer_policy: same-origin
          content_type_options: nosniff
      - concurrency_limit:
          max: 100
  - name: public
    match:
      path_prefix: /public
    upstream: svc
    plugins:
      - cors:
          origins:
            - "*"
      - security_headers: {}
"""

CASES = {
    "allow_prefix_too_long": (
        BASE.replace("            - 10.0.0.0/8\n", "            - 10.0.0.0/33\n"),
        [("10.0.0.0/33", 1, 0)], ["cidr", "prefix", "10.0.0.0/33", "address"]),
    "allow_not_an_address": (
        BASE.replace("            - 192.168.1.7\n", "            - not-an-ip\n"),
        [("not-an-ip", 1, 0)], ["cidr", "address", "not-an-ip"]),
    "deny_octet_out_of_range": (
        BASE.replace("            - 10.1.2.3/32\n", "            - 10.1.2.300/32\n"),
        [("10.1.2.300/32", 1, 0)], ["cidr", "address", "10.1.2.300"]),
    "deny_ipv6_prefix_too_long": (
        BASE.replace('            - "::1"\n', '            - "::1/129"\n'),
        [('"::1/129"', 1, 0), ("::1/129", 1, 0)], ["cidr", "prefix", "::1/129", "address"]),
    "trusted_proxy_bad_cidr": (
        BASE.replace("  - 10.0.0.0/8\nlimits", "  - 300.1.2.3/32\nlimits"),
        [("300.1.2.3/32", 1, 0)], ["cidr", "address", "300.1.2.3", "trusted"]),
    "trusted_proxy_garbage": (
        BASE.replace("  - 127.0.0.1/32\n", "  - localhost\n"),
        [("localhost", 1, 0)], ["cidr", "address", "localhost", "trusted"]),
    "cors_star_with_credentials": (
        BASE.replace("            - \"*\"\n", "            - \"*\"\n          credentials: true\n"),
        [("credentials: true", 2, 0), ("credentials: true", 2, 13), ('"*"', 1, 0), ("- cors:", 2, 2),
         ("origins:\n            - \"*\"", 1, 0)],
        ["credentials", "*"]),
}


def test_base_protection_config_is_valid(tmp_path):
    path = tmp_path / "base.yaml"
    path.write_text(BASE)
    r = validate(path)
    assert r.returncode == 0, r.stderr
    assert f"{path}: ok" in r.stdout + r.stderr


@pytest.mark.parametrize("case", list(CASES))
def test_protection_config_error_points_at_the_offending_node(tmp_path, case):
    text, anchors, words = CASES[case]
    assert text != BASE, "the case changes nothing"
    path = tmp_path / f"{case}.yaml"
    path.write_text(text)
    r = validate(path)
    assert r.returncode == 1, (r.returncode, r.stdout, r.stderr)
    errors = error_lines(r.stderr, path)
    assert errors, f"no FILE:LINE:COL error:\n{r.stderr}"
    expected = [locate(text, needle, n, off) for needle, n, off in anchors]
    hits = [(l, c, m) for l, c, m in errors if (l, c) in expected]
    assert hits, f"no error at any of {expected}:\n{r.stderr}\n{text}"
    message = hits[0][2]
    assert any(w in message.lower() for w in words), f"message should mention one of {words}: {message}"
