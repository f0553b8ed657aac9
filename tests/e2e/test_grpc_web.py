"""gRPC-Web (the grpc_web plugin): browser-style POSTs (binary and text)
through the gateway to a grpcio backend behind an h2c upstream, against
docs/tls.md's contract."""

import base64
import socket
import threading
import urllib.parse

import pytest
import requests

from conftest import HTTP_TIMEOUT, RawConn
from tls_support import (API_KEY, GRPC_PREFIX, TRAILER_TEXT, H2Client,  # noqa: F401
                         b64_segments_decode, gb, grpc_backend, grpc_config, grpc_frame,
                         grpc_frames, grpc_mods, grpc_web_trailers)

# --------------------------------------------------------------------------
# gRPC-Web

def grpc_web_post(gw, method, body, *, text=False, headers=None):
    ctype = "application/grpc-web-text" if text else "application/grpc-web+proto"
    hdrs = {"content-type": ctype, "accept": ctype, "x-grpc-web": "1", "x-user-agent": "grpc-web-test"}
    hdrs.update(headers or {})
    data = base64.b64encode(body) if text else body
    return requests.post(gw.url(GRPC_PREFIX + method), data=data, headers=hdrs, timeout=HTTP_TIMEOUT)


def web_frames(r, text=False):
    assert r.status_code == 200, f"{r.status_code}: {r.content[:300]!r}"
    want = "application/grpc-web-text" if text else "application/grpc-web"
    assert r.headers.get("content-type", "").startswith(want), r.headers
    body = b64_segments_decode(r.content) if text else r.content
    return grpc_frames(body)


def web_status(r, frames):
    """grpc-status/grpc-message from the trailer frame, else from the headers."""
    trailer = [p for f, p in frames if f & 0x80]
    fields = grpc_web_trailers(trailer[-1]) if trailer else {}
    status = fields.get("grpc-status", r.headers.get("grpc-status"))
    message = fields.get("grpc-message", r.headers.get("grpc-message", ""))
    return (int(status) if status is not None else None), urllib.parse.unquote(message), fields


def web_config(gb, plugins=()):
    return grpc_config(gb, [{"grpc_web": {}}, *plugins])


@pytest.mark.parametrize("text", [False, True], ids=["binary", "text"])
def test_grpc_web_unary_with_trailer_frame(gateway, gb, grpc_mods, text):
    gw = gateway(web_config(gb))
    req = grpc_mods.pb2.EchoRequest(message="from the browser")
    r = grpc_web_post(gw, "Echo", grpc_frame(req.SerializeToString()), text=text)
    frames = web_frames(r, text)
    assert len(frames) == 2, frames
    (f0, msg), (f1, trailer) = frames
    assert f0 == 0 and grpc_mods.pb2.EchoReply.FromString(msg).message == "from the browser"
    assert f1 == 0x80, "the last frame must be the trailer frame (flag 0x80)"
    fields = grpc_web_trailers(trailer)
    assert fields.get("grpc-status") == "0", fields
    # grpcio keeps content-type out of invocation_metadata: what the backend
    # received is checked with a recording upstream (test_grpc_web_upstream_gets_grpc).
    assert gb.call_count("Echo") == 1


def test_grpc_web_custom_trailers_in_the_trailer_frame(gateway, gb, grpc_mods):
    gw = gateway(web_config(gb))
    req = grpc_mods.pb2.EchoRequest(message="t")
    frames = web_frames(grpc_web_post(gw, "WithTrailers", grpc_frame(req.SerializeToString())))
    assert frames[-1][0] == 0x80
    fields = grpc_web_trailers(frames[-1][1])
    assert fields.get("grpc-status") == "0"
    assert fields.get(TRAILER_TEXT[0]) == TRAILER_TEXT[1], fields


def test_grpc_web_backend_error(gateway, gb, grpc_mods):
    gw = gateway(web_config(gb))
    req = grpc_mods.pb2.EchoRequest(code=5, detail="no such order")
    r = grpc_web_post(gw, "Fail", grpc_frame(req.SerializeToString()))
    frames = web_frames(r)
    status, message, _ = web_status(r, frames)
    assert (status, message) == (5, "no such order"), (r.headers, frames)


def test_grpc_web_gateway_error_is_unauthenticated(gateway, gb, grpc_mods):
    gw = gateway(web_config(gb, [{"key_auth": {}}]))
    req = grpc_mods.pb2.EchoRequest(message="x")
    r = grpc_web_post(gw, "Echo", grpc_frame(req.SerializeToString()))
    frames = web_frames(r)
    status, message, _ = web_status(r, frames)
    assert status == 16, (r.headers, frames)
    assert gb.call_count() == 0
    r = grpc_web_post(gw, "Echo", grpc_frame(req.SerializeToString()), headers={"x-api-key": API_KEY})
    frames = web_frames(r)
    assert grpc_mods.pb2.EchoReply.FromString(frames[0][1]).metadata.get("x-consumer") == "acme"


# --------------------------------------------------------------------------
# What the upstream receives, and framing details, with a recording h2c
# upstream (grpcio hides content-type and te from its handlers).

class H2Recorder:
    """h2c server on a free port: records each request (headers dict, body)
    and answers like a gRPC server: its own DATA is the request body echoed
    `repeat` times, then trailers (grpc-status 0 and x-seen-content-type)."""

    def __init__(self, repeat=1):
        self.repeat = repeat
        self.requests = []
        self.lock = threading.Lock()
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.port = self.sock.getsockname()[1]
        self.stopped = False
        threading.Thread(target=self._accept, daemon=True).start()

    @property
    def addr(self):
        return f"127.0.0.1:{self.port}"

    def _accept(self):
        while not self.stopped:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn):
        import h2.config
        import h2.connection
        import h2.events
        h2c = h2.connection.H2Connection(h2.config.H2Configuration(client_side=False,
                                                                   header_encoding="utf-8"))
        h2c.initiate_connection()
        conn.sendall(h2c.data_to_send())
        streams = {}
        pending = {}  # stream id -> [answer bytes left, request content-type]
        try:
            while True:
                data = conn.recv(65536)
                if not data:
                    return
                for ev in h2c.receive_data(data):
                    if isinstance(ev, h2.events.RequestReceived):
                        streams[ev.stream_id] = [dict(ev.headers), bytearray()]
                    elif isinstance(ev, h2.events.DataReceived):
                        streams[ev.stream_id][1] += ev.data
                        h2c.acknowledge_received_data(ev.flow_controlled_length, ev.stream_id)
                    elif isinstance(ev, h2.events.StreamEnded):
                        headers, body = streams.pop(ev.stream_id)
                        with self.lock:
                            self.requests.append((headers, bytes(body)))
                        h2c.send_headers(ev.stream_id, [(":status", "200"),
                                                        ("content-type", "application/grpc")])
                        pending[ev.stream_id] = [bytes(body) * self.repeat,
                                                 headers.get("content-type", "")]
                for sid in list(pending):  # as much as flow control allows
                    out, ctype = pending[sid]
                    while out:
                        n = min(len(out), h2c.local_flow_control_window(sid),
                                h2c.max_outbound_frame_size)
                        if n <= 0:
                            break
                        h2c.send_data(sid, out[:n])
                        out = out[n:]
                    pending[sid][0] = out
                    if not out:
                        del pending[sid]
                        h2c.send_headers(sid, [("grpc-status", "0"),
                                               ("x-seen-content-type", ctype)], end_stream=True)
                conn.sendall(h2c.data_to_send())
        except OSError:
            pass
        finally:
            conn.close()

    def stop(self):
        self.stopped = True
        self.sock.close()


@pytest.fixture
def recorder_h2():
    made = []

    def start(repeat=1):
        r = H2Recorder(repeat)
        made.append(r)
        return r

    yield start
    for r in made:
        r.stop()


@pytest.mark.parametrize("ctype,upstream_ctype", [
    ("application/grpc-web", "application/grpc"),
    ("application/grpc-web+proto", "application/grpc+proto"),
    ("application/grpc-web-text", "application/grpc"),
    ("application/grpc-web-text+proto", "application/grpc+proto"),
])
def test_grpc_web_upstream_gets_grpc(gateway, recorder_h2, ctype, upstream_ctype):
    up = recorder_h2()
    gw = gateway(web_config(up.addr))
    message = grpc_frame(b"\x0a\x03abc")
    text = "-text" in ctype
    body = base64.b64encode(message) if text else message
    r = requests.post(gw.url(GRPC_PREFIX + "Echo"), data=body, timeout=HTTP_TIMEOUT,
                      headers={"content-type": ctype, "x-grpc-web": "1", "x-user-agent": "t/1"})
    assert r.status_code == 200
    assert r.headers["content-type"] == ctype, "the answer mirrors the request's content type"
    assert "grpc-status" not in r.headers and "trailer" not in r.headers
    frames = grpc_frames(b64_segments_decode(r.content) if text else r.content)
    assert frames[0] == (0, b"\x0a\x03abc")
    assert frames[-1][0] == 0x80
    assert grpc_web_trailers(frames[-1][1]) == {"grpc-status": "0",
                                                 "x-seen-content-type": upstream_ctype}
    headers, received = up.requests[-1]
    assert headers["content-type"] == upstream_ctype
    assert headers.get("te") == "trailers"
    assert headers.get("x-grpc-web") == "1" and headers.get("x-user-agent") == "t/1"
    assert received == message, "the upstream must get the binary framing"


def test_grpc_web_text_body_of_several_padded_segments(gateway, recorder_h2):
    up = recorder_h2()
    gw = gateway(web_config(up.addr))
    m1, m2 = grpc_frame(b"\x0a\x01x"), grpc_frame(b"\x0a\x02yz")
    body = base64.b64encode(m1) + base64.b64encode(m2)  # each segment padded
    assert b"=" in base64.b64encode(m1)
    r = requests.post(gw.url(GRPC_PREFIX + "Chat"), data=body, timeout=HTTP_TIMEOUT,
                      headers={"content-type": "application/grpc-web-text"})
    assert r.status_code == 200
    assert up.requests[-1][1] == m1 + m2
    frames = grpc_frames(b64_segments_decode(r.content))
    assert [f for f, _ in frames] == [0, 0, 0x80]


def test_grpc_web_text_chunked_request_and_large_streamed_answer(gateway, recorder_h2):
    """A chunked text body (as HTTP/2 clients without content-length send it),
    and an answer far larger than the gateway's buffers, streamed back."""
    up = recorder_h2(repeat=40)
    gw = gateway(web_config(up.addr))
    message = grpc_frame(bytes(range(256)) * 40)  # 10 KiB message, answered 40 times

    def chunks():
        text = base64.b64encode(message)
        for i in range(0, len(text), 1000):
            yield text[i:i + 1000]

    r = requests.post(gw.url(GRPC_PREFIX + "Chat"), data=chunks(), timeout=HTTP_TIMEOUT,
                      headers={"content-type": "application/grpc-web-text+proto"})
    assert r.status_code == 200
    assert up.requests[-1][1] == message
    frames = grpc_frames(b64_segments_decode(r.content))
    assert len(frames) == 41 and all(p == message[5:] for _, p in frames[:40])
    assert frames[-1][0] == 0x80


def test_grpc_web_http10_client_gets_a_close_delimited_answer(gateway, recorder_h2):
    up = recorder_h2()
    gw = gateway(web_config(up.addr))
    message = grpc_frame(b"\x0a\x01q")
    with RawConn(gw.port) as c:
        c.send(b"POST " + GRPC_PREFIX.encode() + b"Echo HTTP/1.0\r\nHost: t\r\n"
               b"Content-Type: application/grpc-web\r\nContent-Length: %d\r\n\r\n" % len(message)
               + message)
        resp = c.read_response()
    assert resp.status == 200
    assert "transfer-encoding" not in resp.headers and "content-length" not in resp.headers
    assert resp.headers["content-type"] == "application/grpc-web"
    frames = grpc_frames(resp.body)
    assert frames[0] == (0, b"\x0a\x01q") and frames[-1][0] == 0x80


def test_non_grpc_web_request_on_the_route_is_untouched(gateway, recorder_h2):
    up = recorder_h2()
    gw = gateway(web_config(up.addr))
    message = grpc_frame(b"\x0a\x01q")
    r = requests.post(gw.url(GRPC_PREFIX + "Echo"), data=message, timeout=HTTP_TIMEOUT,
                      headers={"content-type": "application/octet-stream"})
    assert r.status_code == 200
    assert up.requests[-1][0]["content-type"] == "application/octet-stream"
    assert r.headers["content-type"] == "application/grpc"
    assert r.content == message, "no trailer frame for requests that are not gRPC-Web"


def test_grpc_web_text_over_http2_has_no_http_trailers(gateway, gb, grpc_mods):
    """A browser on HTTP/2: the request body has no content-length (the
    gateway sees it chunked), the answer ends with the trailer frame and no
    trailing HEADERS frame."""
    gw = gateway(web_config(gb))
    req = grpc_mods.pb2.EchoRequest(message="over h2")
    with H2Client(gw.port) as c:
        sid = c.request("POST", GRPC_PREFIX + "WithTrailers",
                        [("content-type", "application/grpc-web-text"), ("x-grpc-web", "1")],
                        base64.b64encode(grpc_frame(req.SerializeToString())))
        st = c.response(sid, 15)
    assert st.done and st.status == 200, st
    assert st.header("content-type") == "application/grpc-web-text"
    assert st.trailers is None, st.trailers
    frames = grpc_frames(b64_segments_decode(bytes(st.data)))
    assert grpc_mods.pb2.EchoReply.FromString(frames[0][1]).message == "over h2"
    fields = grpc_web_trailers(frames[-1][1])
    assert frames[-1][0] == 0x80 and fields.get("grpc-status") == "0"
    assert fields.get(TRAILER_TEXT[0]) == TRAILER_TEXT[1]
    blob = fields.get("x-blob-bin", "")
    assert base64.b64decode(blob + "=" * (-len(blob) % 4)) == b"\x00\x01\xfe\xff", fields


def test_grpc_web_text_gateway_error_mirrors_the_content_type(gateway, gb, grpc_mods):
    gw = gateway(web_config(gb, [{"key_auth": {}}]))
    req = grpc_mods.pb2.EchoRequest(message="x")
    r = grpc_web_post(gw, "Echo", grpc_frame(req.SerializeToString()), text=True)
    assert r.status_code == 200
    assert r.headers["content-type"] == "application/grpc-web-text"
    assert r.headers["grpc-status"] == "16" and r.content == b""
