"""gRPC-Web (the grpc_web plugin): tests written against docs/tls.md's
contract, kept out of collection (no test_ prefix) until the plugin exists.
Rename to test_grpc_web.py when it lands."""
from test_grpc import *  # noqa: F401,F403  fixtures and helpers

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
    assert gb.calls and gb.calls[-1][1].get("content-type", "").startswith("application/grpc"), \
        "the backend did not receive application/grpc"


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
