"""rate_limit config errors: `gatehouse validate` reports each as
FILE:LINE:COL: message pointing at the offending key or value
(docs/protection.md, "Config")."""

import pytest

from ratelimit_support import error_lines, locate, validate

BASE = """\
listen: 127.0.0.1:18080
workers: 1
access_log: off
redis:
  url: redis://127.0.0.1:6390/0
  timeout: 50ms
trusted_proxies:
  - 127.0.0.1/32
  - "::1/128"
plans:
  free:
    rate_limit:
      limit: 100
      window: 1m
  pro:
    rate_limit:
      limit: 1000
      window: 1m
consumers:
  - name: acme
    plan: pro
    api_keys:
      - k-acme-123
limits:
  max_connections_per_ip: 256
global_plugins:
  - rate_limit:
      limit: 600
      window: 1m
      key: ip
upstreams:
  svc:
    targets:
      - 127.0.0.1:9001
routes:
  - name: create-link
    match:
      path_prefix: /links
    upstream: svc
    plugins:
      - key_auth:
          header: X-API-Key
      - rate_limit:
          limit: 20
          window: 1m
          key: consumer
          algorithm: sliding_window
          store: local
          on_store_error: allow
      - rate_limit:
          use_plan: true
          store: redis
      - concurrency_limit:
          max: 100
  - name: bucket
    match:
      path_prefix: /bucket
    upstream: svc
    plugins:
      - rate_limit:
          limit: 5
          window: 1s
          algorithm: token_bucket
          burst: 20
          key:
            - ip
            - header:X-Tenant
"""

ROUTE_RL = """\
      - rate_limit:
          limit: 20
          window: 1m
          key: consumer
"""


def with_entry(text, entry):
    """BASE with the route's first rate_limit entry replaced by `entry`."""
    assert ROUTE_RL in text
    return text.replace(ROUTE_RL, entry, 1)


def rl_entry(**fields):
    lines = ["      - rate_limit:\n"]
    for k, v in fields.items():
        lines.append(f"          {k}: {v}\n")
    return "".join(lines)


# case: (text, anchors [(needle, occurrence, offset)], message words)
CASES = {
    "window_below_1s": (
        with_entry(BASE, rl_entry(limit=20, window="500ms")),
        [("500ms", 1, 0), ("window: 500ms", 1, 0)], ["window", "1s"]),
    "window_zero": (
        with_entry(BASE, rl_entry(limit=20, window="0s")),
        [("window: 0s", 1, 8), ("window: 0s", 1, 0)], ["window", "1s", "zero", "duration"]),
    "window_above_30d": (
        with_entry(BASE, rl_entry(limit=20, window="31d")),
        [("31d", 1, 0), ("window: 31d", 1, 0)], ["window", "30d"]),
    "limit_zero": (
        with_entry(BASE, rl_entry(limit=0, window="1m")),
        [("limit: 0", 1, 7), ("limit: 0", 1, 0)], ["limit"]),
    "limit_too_large": (
        with_entry(BASE, rl_entry(limit=16777216, window="1m")),
        [("16777216", 1, 0), ("limit: 16777216", 1, 0)], ["limit", "16777215"]),
    "unknown_algorithm": (
        with_entry(BASE, rl_entry(limit=20, window="1m", algorithm="leaky_bucket")),
        [("leaky_bucket", 1, 0), ("algorithm: leaky_bucket", 1, 0)], ["algorithm", "leaky_bucket"]),
    "unknown_store": (
        with_entry(BASE, rl_entry(limit=20, window="1m", store="memcached")),
        [("memcached", 1, 0), ("store: memcached", 1, 0)], ["store", "memcached"]),
    "unknown_on_store_error": (
        with_entry(BASE, rl_entry(limit=20, window="1m", store="redis", on_store_error="retry")),
        [("retry", 1, 0), ("on_store_error: retry", 1, 0)], ["on_store_error", "retry", "allow"]),
    "redis_store_without_top_level_redis": (
        BASE.replace("redis:\n  url: redis://127.0.0.1:6390/0\n  timeout: 50ms\n", ""),
        [("store: redis", 1, 7), ("store: redis", 1, 0), ("- rate_limit:\n          use_plan", 1, 2),
         ("- rate_limit:\n          use_plan", 1, 0)], ["redis"]),
    "unknown_key_kind": (
        with_entry(BASE, rl_entry(limit=20, window="1m", key="session")),
        [("session", 1, 0), ("key: session", 1, 0)], ["key", "session"]),
    "unknown_key_kind_in_a_list": (
        BASE.replace("            - header:X-Tenant\n", "            - cookie:sid\n"),
        [("cookie:sid", 1, 0), ("- cookie:sid", 1, 0)], ["key", "cookie"]),
    "header_key_without_a_name": (
        with_entry(BASE, rl_entry(limit=20, window="1m", key='"header:"')),
        [('"header:"', 1, 0), ('key: "header:"', 1, 0)], ["header", "name", "key"]),
    "limit_and_window_missing_without_use_plan": (
        with_entry(BASE, rl_entry(key="ip")),
        [("- rate_limit:\n          key: ip", 1, 2), ("- rate_limit:\n          key: ip", 1, 0),
         ("key: ip\n", 2, 0)], ["limit", "window"]),
    "bad_window_in_global_plugins": (
        BASE.replace("      limit: 600\n      window: 1m\n", "      limit: 600\n      window: 45d\n"),
        [("45d", 1, 0), ("window: 45d", 1, 0)], ["window", "30d"]),
    "bad_window_in_a_plan": (
        BASE.replace("      limit: 100\n      window: 1m\n", "      limit: 100\n      window: 100ms\n"),
        [("100ms", 1, 0), ("window: 100ms", 1, 0)], ["window", "1s"]),
    "unknown_rate_limit_field": (
        with_entry(BASE, rl_entry(limit=20, window="1m", per="minute")),
        [("per: minute", 1, 0), ("minute", 1, 0)], ["per"]),
    "bad_redis_url": (
        BASE.replace("redis://127.0.0.1:6390/0", "http://127.0.0.1:6390/0"),
        [("http://127.0.0.1:6390/0", 1, 0), ("url: http", 1, 0)], ["url", "redis"]),
}


def test_base_config_with_every_rate_limit_feature_is_valid(tmp_path):
    path = tmp_path / "base.yaml"
    path.write_text(BASE)
    r = validate(path)
    assert r.returncode == 0, r.stderr
    assert f"{path}: ok" in r.stdout + r.stderr


@pytest.mark.parametrize("window", ["1s", "30d", "1d", "90s"])
def test_windows_at_and_inside_the_bounds_are_valid(tmp_path, window):
    path = tmp_path / "ok.yaml"
    path.write_text(with_entry(BASE, rl_entry(limit=16777215, window=window)))
    r = validate(path)
    assert r.returncode == 0, r.stderr


@pytest.mark.parametrize("case", list(CASES))
def test_rate_limit_config_error_points_at_the_offending_node(tmp_path, case):
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


def test_run_refuses_an_invalid_rate_limit_without_listening(tmp_path):
    import subprocess
    from conftest import GATEHOUSE_BIN, require_binary
    require_binary(GATEHOUSE_BIN)
    from conftest import free_port
    text = with_entry(BASE, rl_entry(limit=0, window="1m")).replace(
        "127.0.0.1:18080", f"127.0.0.1:{free_port()}")
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    r = subprocess.run([GATEHOUSE_BIN, "run", "-c", str(path)], capture_output=True, text=True,
                       timeout=10, stdin=subprocess.DEVNULL)
    assert r.returncode == 1, (r.returncode, r.stderr)
    assert error_lines(r.stderr, path), r.stderr
