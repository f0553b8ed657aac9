"""WebSocket: the HTTP/1.1 Upgrade passes after auth and limits, then bytes
tunnel both ways until either side closes or limits.idle_timeout; one access
log line per session (status 101, its duration and bytes); a backend that
refuses the upgrade is answered through normally."""

import os
import time

import pytest

from conftest import RawConn, assert_problem, wait_for
from tls_support import (API_NAME, OP_BINARY, OP_CLOSE, OP_TEXT, TlsConn, WsClient,  # noqa: F401
                         WsEchoBackend, listener, pki, tls_block, with_listeners, ws_backend)

API_KEY = "k-acme-123456"


def _route(name, prefix, plugins=None):
    r = {"name": name, "match": {"path_prefix": prefix}, "upstream": "ws"}
    if plugins:
        r["plugins"] = plugins
    return r


def ws_config(ws, *, extra=None):
    cfg = {
        "upstreams": {"ws": {"targets": [ws.addr]}},
        "consumers": [{"name": "acme", "plan": "pro", "api_keys": [API_KEY]}],
        "routes": [
            _route("ws", "/ws/"),
            _route("keyed", "/keyed/", [{"key_auth": {}}]),
            _route("limited", "/limited/", [{"rate_limit": {"limit": 2, "window": "1m", "key": "ip"}}]),
        ],
    }
    if extra:
        cfg.update(extra)
    return cfg


@pytest.fixture
def wsb(ws_backend):
    return ws_backend()


@pytest.fixture
def gw(gateway, wsb):
    return gateway(ws_config(wsb))


def open_ws(gw, path, headers=None, timeout=5.0):
    conn = RawConn(gw.port, timeout=timeout)
    return WsClient(conn, path, headers=headers, timeout=timeout)


def test_upgrade_tunnels_text_and_binary_both_ways(gw, wsb):
    ws = open_ws(gw, "/ws/chat?room=1", headers={"X-Hello": "there"})
    try:
        assert ws.response.status == 101, ws.response
        assert ws.upgraded, f"bad Sec-WebSocket-Accept: {ws.response.headers}"
        assert ws.response.headers.get("upgrade", "").lower() == "websocket"
        assert "upgrade" in ws.response.headers.get("connection", "").lower()
        ws.send_text("hello")
        assert ws.recv_message() == (OP_TEXT, "hello")
        payload = bytes(range(256)) * 4
        ws.send_binary(payload)
        assert ws.recv_message() == (OP_BINARY, payload)
        ws.send_text("héllo wörld")
        assert ws.recv_message() == (OP_TEXT, "héllo wörld")
    finally:
        ws.close()
    path, headers = wsb.upgrades[0]
    assert path == "/ws/chat?room=1"
    assert headers.get("x-hello") == "there"
    assert headers.get("x-request-id"), headers
    assert wsb.messages[:3] == ["hello", payload, "héllo wörld"]


def test_large_and_pipelined_messages(gw):
    ws = open_ws(gw, "/ws/big", timeout=15)
    try:
        assert ws.upgraded, ws.response
        big = os.urandom(1 << 20)
        ws.send_binary(big)
        assert ws.recv_message(15) == (OP_BINARY, big)
        for i in range(50):
            ws.send_text(f"m{i}")
        got = [ws.recv_message(5) for _ in range(50)]
        assert got == [(OP_TEXT, f"m{i}") for i in range(50)]
    finally:
        ws.close()


def test_key_auth_refuses_the_upgrade_without_a_key(gw, wsb):
    ws = open_ws(gw, "/keyed/chat")
    try:
        assert not ws.upgraded
        assert_problem(ws.response.status, ws.response.headers, ws.response.body, 401)
    finally:
        ws.close()
    time.sleep(0.2)
    assert wsb.requests == [], "the refused upgrade reached the backend"


def test_key_auth_lets_the_upgrade_through_with_identity(gw, wsb):
    ws = open_ws(gw, "/keyed/chat", headers={"X-API-Key": API_KEY, "X-Consumer": "spoofed"})
    try:
        assert ws.upgraded, ws.response
        ws.send_text("ping")
        assert ws.recv_message() == (OP_TEXT, "ping")
    finally:
        ws.close()
    _, headers = wsb.upgrades[0]
    assert headers.get("x-consumer") == "acme"
    assert headers.get("x-auth-verified") == "true"
    assert "x-api-key" not in headers


def test_rate_limit_applies_to_upgrades(gw, wsb):
    statuses = []
    for _ in range(3):
        ws = open_ws(gw, "/limited/chat")
        statuses.append(ws.response.status)
        ws.close()
    assert statuses[:2] == [101, 101], statuses
    assert statuses[2] == 429, statuses
    # The backend records an upgrade in its handler task, which can run after
    # the 101 reached us: wait for the second, then make sure no third comes.
    assert wait_for(lambda: len(wsb.upgrades) == 2), wsb.upgrades
    time.sleep(0.2)
    assert len(wsb.upgrades) == 2


def test_backend_refusing_the_upgrade_is_answered_through(gw, wsb):
    ws = open_ws(gw, "/ws/reject")
    try:
        assert ws.response.status == 403, ws.response
        assert ws.response.body == WsEchoBackend.REJECT_BODY
        assert ws.response.headers.get("x-backend") == "ws"
        assert not ws.upgraded
    finally:
        ws.close()


def test_backend_close_reaches_the_client_and_ends_the_tunnel(gw, wsb):
    ws = open_ws(gw, "/ws/closing")
    try:
        assert ws.upgraded, ws.response
        ws.send_text("close:4001")
        msg = ws.recv_message()
        assert msg is not None and msg[0] == OP_CLOSE, msg
        assert msg[1][0] == 4001
        ws.send_close(4001)
        assert ws.conn.is_closed(5), "the gateway kept the client connection after the backend closed"
    finally:
        ws.close()


def test_client_close_reaches_the_backend(gw, wsb):
    ws = open_ws(gw, "/ws/bye")
    try:
        assert ws.upgraded, ws.response
        ws.send_text("x")
        assert ws.recv_message() == (OP_TEXT, "x")
        ws.send_close(1000, "done")
        msg = ws.recv_message()
        assert msg is not None and msg[0] == OP_CLOSE and msg[1][0] == 1000, msg
        assert ws.conn.is_closed(5)
    finally:
        ws.close()
    assert wait_for(lambda: 1000 in wsb.close_codes, 5), wsb.close_codes


def test_client_vanishing_closes_the_backend_side(gw, wsb):
    ws = open_ws(gw, "/ws/vanish")
    assert ws.upgraded, ws.response
    ws.send_text("x")
    assert ws.recv_message() == (OP_TEXT, "x")
    ws.close()  # TCP close without a close frame
    assert wait_for(lambda: wsb.close_codes and wsb.open == 0, 5), \
        "the backend connection stayed open after the client went away"


def test_idle_timeout_closes_the_tunnel(gateway, wsb):
    gw = gateway(ws_config(wsb, extra={"limits": {"idle_timeout": "1s"}}))
    ws = open_ws(gw, "/ws/idle")
    try:
        assert ws.upgraded, ws.response
        ws.send_text("x")
        assert ws.recv_message() == (OP_TEXT, "x")
        t0 = time.monotonic()
        assert ws.conn.is_closed(6), "an idle tunnel outlived limits.idle_timeout"
        took = time.monotonic() - t0
        assert took >= 0.7, f"closed after {took:.2f}s, before the 1s idle timeout"
    finally:
        ws.close()
    assert wait_for(lambda: wsb.open == 0, 5)


def test_traffic_keeps_the_tunnel_open_past_the_idle_timeout(gateway, wsb):
    gw = gateway(ws_config(wsb, extra={"limits": {"idle_timeout": "1s"}}))
    ws = open_ws(gw, "/ws/busy")
    try:
        assert ws.upgraded, ws.response
        end = time.monotonic() + 2.5
        while time.monotonic() < end:
            ws.send_text("tick")
            assert ws.recv_message() == (OP_TEXT, "tick"), "the tunnel closed while in use"
            time.sleep(0.3)
    finally:
        ws.close()


def test_access_log_line_has_status_101_duration_and_bytes(gw, wsb):
    ws = open_ws(gw, "/ws/logged")
    sent = received = 0
    try:
        assert ws.upgraded, ws.response
        for msg in ("a" * 1000, "b" * 3000):
            ws.send_text(msg)
            sent += len(msg)
            op, data = ws.recv_message()
            received += len(data)
            time.sleep(0.3)
        ws.send_close(1000)
        ws.recv_message()
        ws.conn.is_closed(5)
    finally:
        ws.close()
    entries = wait_for(lambda: [e for e in gw.access_log(1) if e["path"] == "/ws/logged"], 5)
    assert len(entries) == 1, gw.access_log(0)
    e = entries[0]
    assert e["status"] == 101
    assert e["route"] == "ws"
    assert e["latency_ms"] >= 500, f"latency {e['latency_ms']} ms does not cover the session"
    assert e["bytes_in"] >= sent, e
    assert e["bytes_out"] >= received, e


def test_websocket_over_tls(gateway, wsb, pki):
    gw = gateway(with_listeners(ws_config(wsb), listener(tls=tls_block([pki.api]))))
    conn = TlsConn(gw.tls_port, server_name=API_NAME, ca=pki.ca, alpn=["http/1.1"])
    ws = WsClient(conn, "/ws/secure")
    try:
        assert ws.upgraded, ws.response
        ws.send_text("secret")
        assert ws.recv_message() == (OP_TEXT, "secret")
    finally:
        ws.close()
    _, headers = wsb.upgrades[0]
    assert headers.get("x-forwarded-proto") == "https"
