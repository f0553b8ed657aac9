"""gRPC through the gateway: client -> gateway (h2c with prior knowledge, or
h2 over TLS) -> grpcio backend (upstream `protocol: h2c`). Unary and
bidirectional streaming calls, trailers passed through, gateway-made errors
in gRPC form (HTTP 200 + grpc-status). gRPC-Web: test_grpc_web.py."""

import queue
import urllib.parse

import grpc
import pytest
import requests

from conftest import HTTP_TIMEOUT, assert_problem, closed_port
from tls_support import (API_KEY, API_NAME, BLOCKED_KEY, FAIL_TRAILER, GRPC_PREFIX,  # noqa: F401
                         TRAILER_BIN, TRAILER_TEXT, H2Client, client_context, gb, grpc_backend,
                         grpc_channel, grpc_config, grpc_frame, grpc_frames, grpc_mods,
                         grpc_request_headers, grpc_stub, listener, pki, tls_block, with_listeners)


def stub_for(grpc_mods, grpc_channel, port, tls=None):
    return grpc_stub(grpc_mods, grpc_channel(port, tls))


def raw_call(port, method, message, metadata=(), **client_kwargs):
    """One unary call with python-h2 (no gRPC library in between): the H2Stream."""
    with H2Client(port, **client_kwargs) as c:
        sid = c.request("POST", GRPC_PREFIX + method, grpc_request_headers(metadata),
                        grpc_frame(message.SerializeToString()))
        st = c.response(sid, 15)
        assert st.done, f"no complete answer (goaway={c.goaway}, error={c.error})"
        return st


def grpc_status(st):
    """(grpc-status, grpc-message) from the trailers, or from the headers of
    a Trailers-Only answer."""
    status = st.trailer("grpc-status") or st.header("grpc-status")
    message = st.trailer("grpc-message") or st.header("grpc-message") or ""
    return (int(status) if status is not None else None), urllib.parse.unquote(message)


def assert_grpc_error(st, code):
    assert st.status == 200, f"HTTP {st.status}: gateway errors on gRPC requests must be 200"
    assert st.header("content-type", "").startswith("application/grpc"), st.headers
    status, message = grpc_status(st)
    assert status == code, f"grpc-status {status} ({message!r}), expected {code}"
    assert message, "no grpc-message"
    return message


# --------------------------------------------------------------------------
# calls

def test_unary_over_h2c(gateway, gb, grpc_mods, grpc_channel):
    gw = gateway(grpc_config(gb))
    stub = stub_for(grpc_mods, grpc_channel, gw.port)
    reply = stub.Echo(grpc_mods.pb2.EchoRequest(message="hello"), timeout=10,
                      metadata=[("x-custom", "v1")])
    assert reply.message == "hello"
    assert reply.metadata["x-custom"] == "v1"
    assert reply.metadata.get("x-request-id"), dict(reply.metadata)
    assert reply.metadata.get("x-forwarded-proto") == "http"
    assert gb.call_count("Echo") == 1


def test_unary_over_tls_h2(gateway, gb, grpc_mods, grpc_channel, pki):
    gw = gateway(with_listeners(grpc_config(gb), listener(tls=tls_block([pki.api]))))
    stub = stub_for(grpc_mods, grpc_channel, gw.tls_port, (pki.ca, API_NAME, None))
    reply = stub.Echo(grpc_mods.pb2.EchoRequest(message="secure"), timeout=10)
    assert reply.message == "secure"
    assert reply.metadata.get("x-forwarded-proto") == "https"


def test_bidirectional_streaming_is_interleaved(gateway, gb, grpc_mods, grpc_channel):
    gw = gateway(grpc_config(gb))
    stub = stub_for(grpc_mods, grpc_channel, gw.port)
    outbox = queue.Queue()

    def requests_iter():
        while True:
            item = outbox.get(timeout=15)
            if item is None:
                return
            yield item

    call = stub.Chat(requests_iter(), timeout=20)
    try:
        # each reply must arrive before the next message is even sent
        for i in range(5):
            outbox.put(grpc_mods.pb2.EchoRequest(message=f"m{i}"))
            reply = next(call)
            assert (reply.message, reply.seq) == (f"m{i}", i + 1)
        outbox.put(None)
        assert list(call) == []
        assert call.code() == grpc.StatusCode.OK
    finally:
        outbox.put(None)
        call.cancel()


def test_trailing_metadata_passes_through(gateway, gb, grpc_mods, grpc_channel):
    gw = gateway(grpc_config(gb))
    stub = stub_for(grpc_mods, grpc_channel, gw.port)
    reply, call = stub.WithTrailers.with_call(grpc_mods.pb2.EchoRequest(message="t"), timeout=10)
    assert reply.message == "t"
    trailers = dict(call.trailing_metadata())
    assert trailers.get(TRAILER_TEXT[0]) == TRAILER_TEXT[1], trailers
    assert trailers.get(TRAILER_BIN[0]) == TRAILER_BIN[1], trailers
    assert call.code() == grpc.StatusCode.OK


def test_trailers_arrive_as_http2_trailers(gateway, gb, grpc_mods):
    gw = gateway(grpc_config(gb))
    st = raw_call(gw.port, "WithTrailers", grpc_mods.pb2.EchoRequest(message="raw"))
    assert st.status == 200
    assert st.trailers is not None, f"no trailers HEADERS frame (headers: {st.headers})"
    assert st.trailer("grpc-status") == "0"
    assert st.trailer(TRAILER_TEXT[0]) == TRAILER_TEXT[1]
    frames = grpc_frames(bytes(st.data))
    assert len(frames) == 1 and frames[0][0] == 0
    assert grpc_mods.pb2.EchoReply.FromString(frames[0][1]).message == "raw"


def test_backend_error_status_and_details_pass_through(gateway, gb, grpc_mods, grpc_channel):
    gw = gateway(grpc_config(gb))
    stub = stub_for(grpc_mods, grpc_channel, gw.port)
    with pytest.raises(grpc.RpcError) as info:
        stub.Fail(grpc_mods.pb2.EchoRequest(code=5, detail="no such order"), timeout=10)
    err = info.value
    assert err.code() == grpc.StatusCode.NOT_FOUND
    assert err.details() == "no such order"
    assert dict(err.trailing_metadata()).get(FAIL_TRAILER[0]) == FAIL_TRAILER[1]


def test_access_log_line_for_a_grpc_call(gateway, gb, grpc_mods, grpc_channel):
    gw = gateway(grpc_config(gb))
    stub = stub_for(grpc_mods, grpc_channel, gw.port)
    stub.Echo(grpc_mods.pb2.EchoRequest(message="logged"), timeout=10)
    entries = [e for e in gw.access_log(1) if e["path"] == GRPC_PREFIX + "Echo"]
    assert len(entries) == 1, gw.access_log(0)
    assert entries[0]["status"] == 200 and entries[0]["route"] == "orders"
    assert entries[0]["method"] == "POST"


# --------------------------------------------------------------------------
# gateway-made errors in gRPC form

def test_missing_key_is_unauthenticated(gateway, gb, grpc_mods, grpc_channel):
    gw = gateway(grpc_config(gb, [{"key_auth": {}}]))
    msg = grpc_mods.pb2.EchoRequest(message="x")
    assert_grpc_error(raw_call(gw.port, "Echo", msg), 16)
    stub = stub_for(grpc_mods, grpc_channel, gw.port)
    with pytest.raises(grpc.RpcError) as info:
        stub.Echo(msg, timeout=10)
    assert info.value.code() == grpc.StatusCode.UNAUTHENTICATED
    reply = stub.Echo(msg, timeout=10, metadata=[("x-api-key", API_KEY)])
    assert reply.metadata.get("x-consumer") == "acme"
    assert "x-api-key" not in reply.metadata
    assert gb.call_count() == 1


def test_non_grpc_request_on_the_same_route_gets_problem_json(gateway, gb):
    gw = gateway(grpc_config(gb, [{"key_auth": {}}]))
    r = requests.post(gw.url(GRPC_PREFIX + "Echo"), data=b"{}", timeout=HTTP_TIMEOUT,
                      headers={"content-type": "application/json"})
    assert_problem(r.status_code, r.headers, r.content, 401)


def test_acl_refusal_is_permission_denied(gateway, gb, grpc_mods):
    gw = gateway(grpc_config(gb, [{"key_auth": {}}, {"acl": {"deny": ["banned"]}}]))
    msg = grpc_mods.pb2.EchoRequest(message="x")
    assert_grpc_error(raw_call(gw.port, "Echo", msg, [("x-api-key", BLOCKED_KEY)]), 7)
    ok = raw_call(gw.port, "Echo", msg, [("x-api-key", API_KEY)])
    assert ok.status == 200 and grpc_status(ok)[0] == 0
    assert gb.call_count() == 1


def test_rate_limit_is_resource_exhausted(gateway, gb, grpc_mods):
    gw = gateway(grpc_config(gb, [{"rate_limit": {"limit": 2, "window": "1m", "key": "ip"}}]))
    msg = grpc_mods.pb2.EchoRequest(message="x")
    for _ in range(2):
        assert grpc_status(raw_call(gw.port, "Echo", msg))[0] == 0
    assert_grpc_error(raw_call(gw.port, "Echo", msg), 8)
    assert gb.call_count() == 2


def test_upstream_down_is_unavailable(gateway, grpc_mods):
    gw = gateway(grpc_config(f"127.0.0.1:{closed_port()}"))
    assert_grpc_error(raw_call(gw.port, "Echo", grpc_mods.pb2.EchoRequest(message="x")), 14)


def test_upstream_timeout_is_deadline_exceeded(gateway, gb, grpc_mods):
    gw = gateway(grpc_config(gb, upstream_extra={"timeouts": {"connect": "1s", "read": "500ms"}}))
    st = raw_call(gw.port, "Slow", grpc_mods.pb2.EchoRequest(message="x", delay_ms=3000))
    assert_grpc_error(st, 4)


def test_mtls_auth_over_grpc_tls(gateway, gb, grpc_mods, grpc_channel, pki):
    cfg = grpc_config(gb, [{"mtls_auth": {"consumer_from": "subject_cn"}}],
                      extra={"consumers": [{"name": "alice"}]})
    gw = gateway(with_listeners(cfg, listener(tls=tls_block([pki.api], client_ca=pki.clients_ca,
                                                            client_auth="optional"))))
    msg = grpc_mods.pb2.EchoRequest(message="m")
    anonymous = stub_for(grpc_mods, grpc_channel, gw.tls_port, (pki.ca, API_NAME, None))
    with pytest.raises(grpc.RpcError) as info:
        anonymous.Echo(msg, timeout=10)
    assert info.value.code() == grpc.StatusCode.UNAUTHENTICATED
    alice = stub_for(grpc_mods, grpc_channel, gw.tls_port, (pki.ca, API_NAME, pki.alice))
    reply = alice.Echo(msg, timeout=10)
    assert reply.metadata.get("x-consumer") == "alice"
    assert reply.metadata.get("x-auth-verified") == "true"
