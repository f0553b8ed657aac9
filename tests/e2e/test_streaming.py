"""1 GiB through the gateway in each direction, streamed: the gateway's
resident memory must not grow with the body size."""

import threading
import time

import pytest

from conftest import RawConn, proxy_config

GIB = 1 << 30
MAX_RSS_GROWTH_KIB = 64 * 1024
TRANSFER_LIMIT = 60  # seconds per transfer


class RssSampler(threading.Thread):
    def __init__(self, gw):
        super().__init__(daemon=True)
        self.gw = gw
        self.peak = 0
        self.done = threading.Event()

    def run(self):
        while not self.done.is_set():
            try:
                self.peak = max(self.peak, self.gw.rss_kib())
            except (OSError, AssertionError):
                return
            self.done.wait(0.05)

    def stop(self):
        self.done.set()
        self.join(2)
        return self.peak


def _count_body(conn, headers, deadline):
    """Counts body bytes without keeping them (Content-Length or chunked)."""
    sock = conn.sock
    pending = bytearray(conn.buf)
    conn.buf = b""

    def more():
        if time.monotonic() > deadline:
            raise AssertionError("download took too long")
        data = sock.recv(1 << 20)
        if not data:
            raise AssertionError("connection closed mid-body")
        return data

    if "content-length" in headers:
        want = int(headers["content-length"])
        got = len(pending)
        buf = bytearray(1 << 20)
        while got < want:
            if time.monotonic() > deadline:
                raise AssertionError("download took too long")
            n = sock.recv_into(buf)
            if n == 0:
                break
            got += n
        return got
    assert "chunked" in headers.get("transfer-encoding", ""), headers
    total = 0
    while True:
        while (idx := pending.find(b"\r\n")) < 0:
            pending += more()
        size = int(bytes(pending[:idx]).split(b";")[0], 16)
        del pending[:idx + 2]
        if size == 0:
            return total
        take = min(len(pending), size)
        del pending[:take]
        remaining = size - take
        while remaining:
            if time.monotonic() > deadline:
                raise AssertionError("download took too long")
            data = sock.recv(min(1 << 20, remaining))
            if not data:
                raise AssertionError("connection closed mid-chunk")
            remaining -= len(data)
        while len(pending) < 2:
            pending += more()
        del pending[:2]
        total += size


@pytest.fixture
def streaming_gateway(gateway, backend):
    gw = gateway(proxy_config([backend("bulk")]))
    assert gw.get("/warm-up").status_code == 200
    return gw


@pytest.mark.slow
def test_one_gib_upload_streams_through_with_bounded_memory(streaming_gateway):
    gw = streaming_gateway
    baseline = gw.rss_kib()
    sampler = RssSampler(gw)
    sampler.start()
    chunk = b"u" * (1 << 20)
    deadline = time.monotonic() + TRANSFER_LIMIT
    with RawConn(gw.port, timeout=30) as conn:
        conn.send(b"POST /upload HTTP/1.1\r\nHost: t\r\nContent-Length: %d\r\n\r\n" % GIB)
        for _ in range(GIB // len(chunk)):
            assert time.monotonic() < deadline, "upload took too long"
            conn.sock.sendall(chunk)
        resp = conn.read_response(timeout=30)
    peak = sampler.stop()
    assert resp.status == 200, resp
    assert resp.json()["body_bytes"] == GIB
    growth = peak - baseline
    assert growth < MAX_RSS_GROWTH_KIB, f"gateway RSS grew by {growth // 1024} MiB during the upload"


@pytest.mark.slow
def test_one_gib_download_streams_through_with_bounded_memory(streaming_gateway):
    gw = streaming_gateway
    baseline = gw.rss_kib()
    sampler = RssSampler(gw)
    sampler.start()
    deadline = time.monotonic() + TRANSFER_LIMIT
    with RawConn(gw.port, timeout=30) as conn:
        conn.send(b"GET /download?size=%d HTTP/1.1\r\nHost: t\r\n\r\n" % GIB)
        head = conn.read_head(timeout=10)
        assert head is not None, "no response head"
        status_line, header_list = head
        assert status_line.split()[1] == "200", status_line
        headers = dict(header_list)
        received = _count_body(conn, headers, deadline)
    peak = sampler.stop()
    assert received == GIB
    growth = peak - baseline
    assert growth < MAX_RSS_GROWTH_KIB, f"gateway RSS grew by {growth // 1024} MiB during the download"
