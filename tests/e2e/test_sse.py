"""Server-sent events and other streamed responses: each chunk is forwarded
as it arrives, not when the backend finishes. The SSE backend sends one
event, then holds the stream open until the test releases it."""

import pytest

from conftest import RawConn, wait_for
from tls_support import (API_NAME, H2Client, SseBackend, StreamReader, TlsConn,  # noqa: F401
                         client_context, listener, pki, sse_backend, tls_block, with_listeners)

FIRST_WAIT = 5.0  # seconds the first event may take to arrive


def sse_config(sse):
    return {"upstreams": {"sse": {"targets": [sse.addr]}},
            "routes": [{"name": "events", "match": {"path_prefix": "/"}, "upstream": "sse"}]}


def read_first_event_then_rest(conn, sse, path):
    """GET path on conn; asserts the first event arrives while the backend
    still holds the stream; then releases it and returns the whole body."""
    conn.send(f"GET {path} HTTP/1.1\r\nHost: t\r\nAccept: text/event-stream\r\n\r\n".encode())
    head = conn.read_head(timeout=FIRST_WAIT)
    assert head is not None, "no response head while the backend holds the stream"
    status_line, header_list = head
    assert status_line.split()[1] == "200", status_line
    headers = dict(header_list)
    assert headers.get("content-type", "").startswith("text/event-stream"), headers
    reader = StreamReader(conn, header_list)
    body, complete = reader.read_until(lambda b: b"data: first\n\n" in b, FIRST_WAIT)
    assert b"data: first\n\n" in body, \
        f"the first event did not arrive while the backend held the stream (got {body!r})"
    assert not complete
    assert not sse.finished.is_set() and not sse.release.is_set()
    sse.release.set()
    body, complete = reader.read_until(lambda b: False, 10)
    assert complete, f"the stream did not end after the backend finished (got {body!r})"
    return headers, body


@pytest.mark.parametrize("mode", ["chunked", "close"])
def test_first_event_arrives_before_the_backend_finishes(gateway, sse_backend, mode):
    sse = sse_backend()
    gw = gateway(sse_config(sse))
    with RawConn(gw.port, timeout=10) as conn:
        headers, body = read_first_event_then_rest(conn, sse, f"/events?mode={mode}")
    assert body == SseBackend.ALL
    assert headers.get("cache-control") == "no-cache"
    assert "content-length" not in headers


def test_connection_stays_usable_after_a_chunked_stream(gateway, sse_backend):
    sse = sse_backend()
    gw = gateway(sse_config(sse))
    with RawConn(gw.port, timeout=10) as conn:
        read_first_event_then_rest(conn, sse, "/events?mode=chunked")
        conn.send(b"GET /after HTTP/1.1\r\nHost: t\r\n\r\n")
        resp = conn.read_response(timeout=5)
        assert resp.status == 200 and resp.json() == {"ok": True}


def test_first_event_arrives_early_over_tls(gateway, sse_backend, pki):
    sse = sse_backend()
    gw = gateway(with_listeners(sse_config(sse), listener(tls=tls_block([pki.api]))))
    with TlsConn(gw.tls_port, server_name=API_NAME, ca=pki.ca, timeout=10) as conn:
        _, body = read_first_event_then_rest(conn, sse, "/events")
    assert body == SseBackend.ALL


def test_first_event_arrives_early_over_http2(gateway, sse_backend):
    sse = sse_backend()
    gw = gateway(sse_config(sse))
    with H2Client(gw.port) as c:
        sid = c.request("GET", "/events", [("accept", "text/event-stream")])
        st = c.streams[sid]
        c.wait(lambda: b"data: first\n\n" in st.data or st.done, FIRST_WAIT)
        assert st.status == 200, st.headers
        assert st.header("content-type", "").startswith("text/event-stream")
        assert b"data: first\n\n" in st.data, f"got {bytes(st.data)!r} before the backend finished"
        assert not st.done and not sse.finished.is_set()
        sse.release.set()
        st = c.response(sid, 10)
        assert st.ended and bytes(st.data) == SseBackend.ALL


def test_first_event_arrives_early_over_tls_http2(gateway, sse_backend, pki):
    sse = sse_backend()
    gw = gateway(with_listeners(sse_config(sse), listener(tls=tls_block([pki.api]))))
    ctx = client_context(ca=pki.ca, alpn=["h2"])
    with H2Client(gw.tls_port, context=ctx, server_name=API_NAME) as c:
        sid = c.request("GET", "/events?mode=close")
        st = c.streams[sid]
        c.wait(lambda: b"data: first\n\n" in st.data or st.done, FIRST_WAIT)
        assert b"data: first\n\n" in st.data and not st.done, (st.headers, bytes(st.data))
        sse.release.set()
        st = c.response(sid, 10)
        assert st.ended and bytes(st.data) == SseBackend.ALL


def test_access_log_line_is_written_when_the_stream_ends(gateway, sse_backend):
    sse = sse_backend()
    gw = gateway(sse_config(sse))
    with RawConn(gw.port, timeout=10) as conn:
        read_first_event_then_rest(conn, sse, "/events")
    entries = wait_for(lambda: [e for e in gw.access_log(1) if e["path"] == "/events"], 5)
    assert len(entries) == 1
    assert entries[0]["status"] == 200
    assert entries[0]["bytes_out"] == len(SseBackend.ALL)

