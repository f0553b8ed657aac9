"""Malformed and ambiguous requests: each gets a 4xx (501/505 where the
contract says so), the connection is closed, and not one byte reaches the
upstream (a recording TCP server that counts what it receives)."""

import time

import pytest

from conftest import RawConn, raw_request

MAX_HEADER_BYTES = 4096

POST = b"POST /x HTTP/1.1\r\nHost: t\r\n"
GET = b"GET /x HTTP/1.1\r\nHost: t\r\n"
CHUNKED_BODY = b"5\r\nhello\r\n0\r\n\r\n"
CHUNKED = POST + b"Transfer-Encoding: chunked\r\n\r\n"


def cl(value):
    return POST + b"Content-Length: " + value + b"\r\n\r\nhello"


def te(value, version=b"HTTP/1.1"):
    return (b"POST /x " + version + b"\r\nHost: t\r\nTransfer-Encoding: " + value
            + b"\r\n\r\n" + CHUNKED_BODY)


def header(line):
    return GET + line + b"\r\n\r\n"


BAD_REQUESTS = {
    # request smuggling: conflicting or ambiguous framing
    "content_length_with_transfer_encoding": (
        POST + b"Content-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n" + CHUNKED_BODY, {400}),
    "transfer_encoding_with_content_length": (
        POST + b"Transfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n" + CHUNKED_BODY, {400}),
    "repeated_content_length_same_value": (
        POST + b"Content-Length: 5\r\nContent-Length: 5\r\n\r\nhello", {400}),
    "repeated_content_length_different_values": (
        POST + b"Content-Length: 5\r\nContent-Length: 6\r\n\r\nhello!", {400}),
    "content_length_list": (cl(b"5, 5"), {400}),
    "content_length_plus_sign": (cl(b"+5"), {400}),
    "content_length_hex": (cl(b"0x5"), {400}),
    "content_length_negative": (cl(b"-5"), {400}),
    "content_length_inner_space": (cl(b"5 5"), {400}),
    "content_length_decimal_point": (cl(b"5.0"), {400}),
    "content_length_trailing_letter": (cl(b"5a"), {400}),
    "content_length_empty": (cl(b""), {400}),
    "content_length_overflow": (cl(b"99999999999999999999999"), {400, 413}),
    "transfer_encoding_gzip": (te(b"gzip"), {400, 501}),
    "transfer_encoding_chunked_then_gzip": (te(b"chunked, gzip"), {400, 501}),
    "transfer_encoding_gzip_then_chunked": (te(b"gzip, chunked"), {400, 501}),
    "transfer_encoding_chunked_twice_in_list": (te(b"chunked, chunked"), {400, 501}),
    "transfer_encoding_chunked_twice_as_headers": (
        POST + b"Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n" + CHUNKED_BODY,
        {400, 501}),
    "transfer_encoding_unknown_coding": (te(b"foo"), {501}),
    "transfer_encoding_on_http_1_0": (te(b"chunked", b"HTTP/1.0"), {400}),
    # header syntax
    "obs_fold_space": (GET + b"X-A: b\r\n c\r\n\r\n", {400}),
    "obs_fold_tab": (GET + b"X-A: b\r\n\tc\r\n\r\n", {400}),
    "space_before_colon": (header(b"X-A : b"), {400}),
    "tab_before_colon": (header(b"X-A\t: b"), {400}),
    "space_before_colon_on_content_length": (
        POST + b"Content-Length : 5\r\n\r\nhello", {400}),
    "cr_in_field_value": (header(b"X-A: b\rc"), {400}),
    "lf_in_field_value": (header(b"X-A: b\nc"), {400}),
    "nul_in_field_value": (header(b"X-A: b\x00c"), {400}),
    "parenthesis_in_field_name": (header(b"X(A): b"), {400}),
    "quote_in_field_name": (header(b'X"A: b'), {400}),
    "slash_in_field_name": (header(b"X/A: b"), {400}),
    "non_ascii_field_name": (header("Xé: b".encode()), {400}),
    "empty_field_name": (header(b": b"), {400}),
    "line_without_colon": (header(b"NoColonHere"), {400}),
    # chunked framing
    "chunk_size_not_hex": (CHUNKED + b"zz\r\nhello\r\n0\r\n\r\n", {400}),
    "chunk_size_overflow": (CHUNKED + b"ffffffffffffffffff\r\nhello\r\n0\r\n\r\n", {400, 413}),
    "chunk_size_negative": (CHUNKED + b"-5\r\nhello\r\n0\r\n\r\n", {400}),
    "chunk_size_missing": (CHUNKED + b"\r\nhello\r\n0\r\n\r\n", {400}),
    "chunk_data_not_followed_by_crlf": (CHUNKED + b"5\r\nhelloXX\r\n0\r\n\r\n", {400}),
    # Host
    "missing_host_on_http_1_1": (b"GET /x HTTP/1.1\r\nX-A: b\r\n\r\n", {400}),
    "repeated_host": (b"GET /x HTTP/1.1\r\nHost: t\r\nHost: u\r\n\r\n", {400}),
    "repeated_identical_host": (b"GET /x HTTP/1.1\r\nHost: t\r\nHost: t\r\n\r\n", {400}),
    # request line
    "http_0_9_request": (b"GET /\r\n", {400, 505}),
    "unknown_protocol_name": (b"GET /x FOO/1.1\r\nHost: t\r\n\r\n", {400}),
    "lower_case_protocol_name": (b"GET /x http/1.1\r\nHost: t\r\n\r\n", {400}),
    "http_2_0_version": (b"GET /x HTTP/2.0\r\nHost: t\r\n\r\n", {505}),
    "http_1_2_version": (b"GET /x HTTP/1.2\r\nHost: t\r\n\r\n", {505}),
    "http_3_0_version": (b"GET /x HTTP/3.0\r\nHost: t\r\n\r\n", {505}),
    "target_not_origin_or_absolute_form": (b"GET foo HTTP/1.1\r\nHost: t\r\n\r\n", {400}),
    "asterisk_target_for_get": (b"GET * HTTP/1.1\r\nHost: t\r\n\r\n", {400}),
    # limits
    "one_header_over_max_header_bytes": (
        header(b"X-Big: " + b"a" * (MAX_HEADER_BYTES + 100)), {431}),
    "many_headers_over_max_header_bytes": (
        GET + b"".join(b"X-H%d: %s\r\n" % (i, b"v" * 40) for i in range(200)) + b"\r\n", {431}),
}


@pytest.fixture
def guarded(gateway, recorder):
    """A gateway whose catch-all route points at a recorder."""
    rec = recorder()
    gw = gateway({
        "limits": {"max_header_bytes": MAX_HEADER_BYTES, "header_timeout": "2s"},
        "upstreams": {"rec": {"targets": [rec.addr], "timeouts": {"read": "2s"}}},
        "routes": [{"name": "all", "match": {"path_prefix": "/"}, "upstream": "rec"}],
    })
    return gw, rec


def test_recorder_sees_a_well_formed_request(guarded):
    """Control: the recorder does notice a request that is forwarded."""
    gw, rec = guarded
    resp = raw_request(gw.port, CHUNKED + CHUNKED_BODY, close_wait=0.2)
    assert resp.status == 200, resp
    assert b"hello" in rec.data


@pytest.mark.parametrize("case", list(BAD_REQUESTS))
def test_bad_request_is_rejected_closed_and_never_forwarded(guarded, case):
    gw, rec = guarded
    data, allowed = BAD_REQUESTS[case]
    resp = raw_request(gw.port, data, timeout=5)
    assert resp.status in allowed, f"expected {sorted(allowed)}, got {resp.status_line!r}"
    assert resp.closed, "connection left open after a bad request"
    rec.settle()
    assert rec.bytes == 0, f"upstream received {rec.bytes} bytes: {rec.data[:200]!r}"


def test_trickled_request_head_still_times_out(guarded):
    """Sending a byte now and then does not extend header_timeout (2s)."""
    gw, rec = guarded
    with RawConn(gw.port, timeout=8) as conn:
        started = time.monotonic()
        conn.send(b"GET /x HTTP/1.1\r\nHost: t\r\n")
        for _ in range(20):
            time.sleep(0.25)
            try:
                conn.send(b"X")
            except (BrokenPipeError, ConnectionResetError):
                break
        resp = conn.read_response(timeout=3)
        elapsed = time.monotonic() - started
        closed = conn.is_closed(2)
    assert resp.status == 408, resp
    assert elapsed < 4.5, f"408 only after {elapsed:.1f}s"
    assert closed
    assert rec.bytes == 0


def test_silent_connection_is_closed_after_header_timeout_without_response(guarded):
    gw, _ = guarded
    with RawConn(gw.port, timeout=6) as conn:
        started = time.monotonic()
        closed = conn.is_closed(5)
        elapsed = time.monotonic() - started
        assert closed, "idle connection not closed within 5s (header_timeout: 2s)"
        assert conn.buf == b"", f"expected silence, got {conn.buf[:100]!r}"
    assert 1.5 <= elapsed <= 4.5, elapsed
