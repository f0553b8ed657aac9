"""The command line: validate, run, version, and shutdown on signals."""

import http.client
import re
import signal
import subprocess
import time

import pytest

from conftest import (GATEHOUSE_BIN, free_port, port_accepts, proxy_config, require_binary,
                      send_in_flight, wait_for)

VALID = """\
listen: 127.0.0.1:18080
workers: 1
access_log: off
shutdown_timeout: 5s
upstreams:
  svc:
    targets:
      - 127.0.0.1:9001
routes:
  - name: first-route
    match:
      path: /a
    upstream: svc
"""


def run_cli(*args, timeout=10):
    require_binary(GATEHOUSE_BIN)
    return subprocess.run([GATEHOUSE_BIN, *args], capture_output=True, text=True,
                          timeout=timeout, stdin=subprocess.DEVNULL)


def locate(text, needle, occurrence=1):
    """1-based (line, col) of the n-th occurrence of needle in text."""
    index = -1
    for _ in range(occurrence):
        index = text.index(needle, index + 1)
    line = text.count("\n", 0, index) + 1
    col = index - (text.rfind("\n", 0, index) + 1) + 1
    return line, col


def error_lines(stderr, path):
    """Parsed `FILE:LINE:COL: message` lines for this file."""
    found = []
    for line in stderr.splitlines():
        m = re.match(re.escape(path) + r":(\d+):(\d+): (.+)$", line)
        if m:
            found.append((int(m.group(1)), int(m.group(2)), m.group(3)))
    return found


def test_validate_accepts_a_valid_config_and_prints_ok(tmp_path):
    path = tmp_path / "ok.yaml"
    path.write_text(VALID)
    r = run_cli("validate", "-c", str(path))
    assert r.returncode == 0, r.stderr
    assert f"{path}: ok" in r.stdout + r.stderr


# Each case: the config text, the text whose position the error must point
# at (with its occurrence), other acceptable anchors on the same node, and
# words of which the message must contain at least one.
INVALID_CASES = {
    "unknown_key": (
        VALID.replace("      - 127.0.0.1:9001\n", "      - 127.0.0.1:9001\n    bogus_key: 3\n"),
        [("bogus_key", 1)], ["bogus_key"]),
    "wrong_type": (
        VALID.replace("workers: 1", "workers: many"),
        [("many", 1)], ["workers", "integer", "number"]),
    "bad_duration": (
        VALID.replace("shutdown_timeout: 5s", "shutdown_timeout: 10parsecs"),
        [("10parsecs", 1)], ["duration", "shutdown_timeout", "10parsecs"]),
    "bad_listen_address": (
        VALID.replace("listen: 127.0.0.1:18080", "listen: 127.0.0.1:99999"),
        [("127.0.0.1:99999", 1)], ["address", "port", "99999"]),
    "bad_target_address": (
        VALID.replace("- 127.0.0.1:9001", "- 127.0.0.1:notaport"),
        [("127.0.0.1:notaport", 1)], ["address", "port", "notaport"]),
    "missing_upstream": (
        VALID.replace("upstream: svc", "upstream: nope"),
        [("nope", 1), ("upstream: nope", 1)], ["nope"]),
    "duplicate_route_names": (
        VALID.replace("first-route", "dup-route")
        + "  - name: dup-route\n    match:\n      path: /b\n    upstream: svc\n",
        [("dup-route", 2), ("name: dup-route", 2)], ["dup-route"]),
    "shadowed_route": (
        VALID + "  - name: second-route\n    match:\n      path: /a\n    upstream: svc\n",
        [("second-route", 1), ("name: second-route", 1), ("/a", 2)], ["shadow", "never", "unreachable"]),
}


@pytest.mark.parametrize("case", list(INVALID_CASES))
def test_validate_rejects_invalid_config_with_file_line_col(tmp_path, case):
    text, anchors, words = INVALID_CASES[case]
    path = tmp_path / f"{case}.yaml"
    path.write_text(text)
    r = run_cli("validate", "-c", str(path))
    assert r.returncode == 1, (r.returncode, r.stdout, r.stderr)
    errors = error_lines(r.stderr, str(path))
    assert len(errors) == 1, f"expected exactly one FILE:LINE:COL error, got:\n{r.stderr}"
    line, col, message = errors[0]
    expected = [locate(text, needle, n) for needle, n in anchors]
    assert (line, col) in expected, f"error at {line}:{col}, expected one of {expected}: {message}"
    assert any(w in message.lower() for w in words), f"message should mention {words}: {message}"


def test_validate_reports_every_problem_at_once(tmp_path):
    text = (VALID.replace("workers: 1", "workers: many")
            .replace("shutdown_timeout: 5s", "shutdown_timeout: 10parsecs"))
    path = tmp_path / "two.yaml"
    path.write_text(text)
    r = run_cli("validate", "-c", str(path))
    assert r.returncode == 1
    positions = {(l, c) for l, c, _ in error_lines(r.stderr, str(path))}
    assert locate(text, "many") in positions, r.stderr
    assert locate(text, "10parsecs") in positions, r.stderr


def test_run_refuses_an_invalid_config_and_never_listens(tmp_path):
    port = free_port()
    text = (VALID.replace("127.0.0.1:18080", f"127.0.0.1:{port}")
            .replace("upstream: svc", "upstream: nope"))
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    r = run_cli("run", "-c", str(path))
    assert r.returncode == 1, r.stderr
    assert error_lines(r.stderr, str(path)), r.stderr
    assert not port_accepts(port)


def test_version_prints_name_and_semver():
    r = run_cli("version")
    assert r.returncode == 0
    assert re.fullmatch(r"gatehouse \d+\.\d+\.\d+\s*", r.stdout), r.stdout


def test_run_announces_listening_address_on_stderr(gateway):
    gw = gateway({"routes": [{"name": "ping", "match": {"path": "/ping"},
                              "respond": {"status": 200, "body": "pong"}}]})
    line = f"gatehouse: listening on 127.0.0.1:{gw.port}"
    assert wait_for(lambda: line in gw.stderr()), gw.stderr()


def test_run_refuses_an_address_another_gatehouse_listens_on(gateway, tmp_path):
    # Listeners bind with SO_REUSEPORT: without the check, a second gatehouse
    # on the same address would start and quietly take part of the traffic.
    gw = gateway({"workers": 1, "routes": [{"name": "ping", "match": {"path": "/ping"},
                                            "respond": {"status": 200, "body": "first"}}]})
    second = tmp_path / "second.yaml"
    second.write_text(gw.config_text.replace('body: "first"', 'body: "second"'))
    assert "second" in second.read_text()
    r = run_cli("run", "-c", str(second))
    assert r.returncode == 1, r.stderr
    assert f"listen 127.0.0.1:{gw.port}: address already in use" in r.stderr, r.stderr
    for _ in range(20):  # the first still serves every request
        resp = gw.get("/ping")
        assert (resp.status_code, resp.text) == (200, "first")


def test_run_listens_on_ipv6_loopback(gateway):
    try:
        port = free_port("::1")
    except OSError:
        pytest.skip("no ::1 here")
    gw = gateway({"listen": f"[::1]:{port}",
                  "routes": [{"name": "ping", "match": {"path": "/ping"},
                              "respond": {"status": 200, "body": "pong"}}]})
    r = gw.get("/ping")
    assert (r.status_code, r.text) == (200, "pong")


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_signal_lets_in_flight_request_finish_then_exits_0(gateway, backend, sig):
    b = backend("a")
    gw = gateway(proxy_config([b]))
    with send_in_flight(gw, "/slow?delay_ms=1500") as conn:
        gw.send_signal(sig)
        resp = conn.read_response(timeout=10)
    assert resp.status == 200, resp
    assert resp.json()["path"] == "/slow"
    assert gw.wait_exit(10) == 0, gw.stderr()


def test_sigterm_stops_accepting_new_connections(gateway, backend):
    b = backend("a")
    gw = gateway(proxy_config([b]))
    with send_in_flight(gw, "/slow?delay_ms=2000") as conn:
        gw.send_signal(signal.SIGTERM)
        assert wait_for(lambda: not port_accepts(gw.port), timeout=1.0), "still accepting after SIGTERM"
        assert conn.read_response(timeout=10).status == 200
    assert gw.wait_exit(10) == 0


def test_sigterm_closes_idle_keepalive_connections_without_waiting(gateway):
    gw = gateway({"shutdown_timeout": "10s",
                  "routes": [{"name": "ping", "match": {"path": "/ping"},
                              "respond": {"status": 200, "body": "pong"}}]})
    conn = http.client.HTTPConnection("127.0.0.1", gw.port, timeout=5)
    conn.request("GET", "/ping")
    assert conn.getresponse().read() == b"pong"
    started = time.monotonic()
    gw.send_signal(signal.SIGTERM)
    rc = gw.wait_exit(8)
    elapsed = time.monotonic() - started
    conn.close()
    assert rc == 0
    assert elapsed < 3, f"took {elapsed:.1f}s to exit with only an idle connection open"


def test_shutdown_timeout_bounds_waiting_for_slow_requests(gateway, backend):
    b = backend("a")
    gw = gateway(dict(proxy_config([b]), shutdown_timeout="1s"))
    with send_in_flight(gw, "/slow?delay_ms=8000"):
        started = time.monotonic()
        gw.send_signal(signal.SIGTERM)
        rc = gw.wait_exit(8)
        elapsed = time.monotonic() - started
    assert rc == 0
    assert elapsed < 4, f"exit took {elapsed:.1f}s with shutdown_timeout: 1s"
