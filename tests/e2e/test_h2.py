"""HTTP/2 downstream: ALPN h2 over TLS and h2c with prior knowledge on plain
listeners (no h2c Upgrade); every stream goes through routing, plugins and
the access log; limits (100 concurrent streams, 16 KiB header lists, rapid
reset, CONTINUATION flood) and flow control end to end."""

import json
import signal
import time

import pytest

from conftest import assert_problem, proxy_config
from tls_support import (API_NAME, CANCEL, CONTINUATION, END_STREAM, ENHANCE_YOUR_CALM,  # noqa: F401
                         HEADERS, NO_ERROR, PROTOCOL_ERROR, REFUSED_STREAM, SETTINGS_MAX_CONCURRENT_STREAMS,
                         H2Client, RawH2, RssSampler, client_context, curl, frame, h2load, listener,
                         pki, tls_block, with_listeners)

API_KEY = "k-acme-123456"


@pytest.fixture
def echo(backend):
    return backend("echo")


def h2_config(echo, upstream=None):
    return {
        "upstreams": {"svc": {"targets": [echo.addr]},
                      "rec": {"targets": [(upstream or echo).addr]}},
        "consumers": [{"name": "acme", "api_keys": [API_KEY]}],
        "routes": [
            {"name": "svc", "match": {"path_prefix": "/svc/"}, "upstream": "svc"},
            {"name": "keyed", "match": {"path_prefix": "/keyed/"}, "upstream": "svc",
             "plugins": [{"key_auth": {}}]},
            {"name": "limited", "match": {"path_prefix": "/limited/"}, "upstream": "svc",
             "plugins": [{"rate_limit": {"limit": 3, "window": "1m", "key": "ip"}}]},
            {"name": "rec", "match": {"path_prefix": "/rec/"}, "upstream": "rec"},
            {"name": "ping", "match": {"path": "/ping"},
             "respond": {"status": 200, "body": "pong", "headers": {"content-type": "text/plain"}}},
        ],
    }


@pytest.fixture
def h2gw(gateway, echo, pki):
    """h2gw() starts (in the test body) a gateway with the plain `listen:`
    (gw.port), a second plain listener and a TLS listener."""
    return lambda: gateway(with_listeners(h2_config(echo), listener(tls=tls_block([pki.api])),
                                          listener()))


def tls_client(gw, pki, **kwargs):
    return H2Client(gw.tls_port, context=client_context(ca=pki.ca, alpn=["h2", "http/1.1"]),
                    server_name=API_NAME, **kwargs)


# --------------------------------------------------------------------------
# negotiation

def test_curl_h2c_prior_knowledge_on_the_plain_listener(h2gw):
    gw = h2gw()
    r = curl(gw.url("/svc/c"), "--http2-prior-knowledge")
    assert r.returncode == 0, r.stderr
    assert (r.http_version, r.status) == ("2", 200), r
    seen = json.loads(r.body)
    assert seen["path"] == "/svc/c"
    assert seen["headers"]["x-forwarded-proto"] == "http"


def test_curl_h2_via_alpn_over_tls(h2gw, pki):
    gw = h2gw()
    r = curl(f"https://127.0.0.1:{gw.tls_port}/svc/c", "--http2", "--cacert", pki.ca.cert)
    assert r.returncode == 0, r.stderr
    assert (r.http_version, r.status) == ("2", 200), r
    assert json.loads(r.body)["headers"]["x-forwarded-proto"] == "https"


def test_curl_http11_over_tls_still_works(h2gw, pki):
    gw = h2gw()
    r = curl(f"https://127.0.0.1:{gw.tls_port}/svc/c", "--http1.1", "--cacert", pki.ca.cert)
    assert (r.http_version, r.status) == ("1.1", 200), r


def test_h2c_upgrade_is_not_performed(h2gw):
    gw = h2gw()
    r = curl(gw.url("/svc/up"), "--http2")  # sends Upgrade: h2c
    assert r.returncode == 0, r.stderr
    assert (r.http_version, r.status) == ("1.1", 200), r


def test_h2c_prior_knowledge_on_a_plain_listeners_entry(h2gw):
    gw = h2gw()
    second_plain = [p for p in gw.plain_ports if p != gw.port][0]
    with H2Client(second_plain) as c:
        st = c.get("/svc/second")
        assert st.status == 200 and st.json()["path"] == "/svc/second"


def test_h2_over_tls_response_is_well_formed(h2gw, pki):
    gw = h2gw()
    with tls_client(gw, pki) as c:
        st = c.get("/svc/x?y=1", [("x-custom", "v")], authority="api.example.test")
        assert st.ended and st.status == 200, (st.headers, c.error)
        assert c.error is None, c.error  # python-h2 refuses connection-specific headers
        seen = st.json()
        assert seen["query"] == "y=1"
        assert seen["headers"]["x-custom"] == "v"
        assert seen["headers"]["host"] == "api.example.test"
        assert seen["headers"]["x-forwarded-proto"] == "https"
        assert st.header("x-request-id") == seen["headers"]["x-request-id"]
        head = c.response(c.request("HEAD", "/svc/head"))
        assert head.status == 200 and head.ended and head.data_len == 0


# --------------------------------------------------------------------------
# the pipeline per stream

def test_streams_are_multiplexed_concurrently(h2gw):
    gw = h2gw()
    with H2Client(gw.port) as c:
        t0 = time.monotonic()
        sids = [c.request("GET", f"/svc/m{i}?delay_ms=700") for i in range(10)]
        streams = [c.response(s, 10) for s in sids]
        took = time.monotonic() - t0
    assert [s.status for s in streams] == [200] * 10
    assert [s.json()["path"] for s in streams] == [f"/svc/m{i}" for i in range(10)]
    assert took < 3.5, f"10 streams of 0.7s each took {took:.1f}s: they were not concurrent"


def test_routing_and_local_answers_per_stream(h2gw):
    gw = h2gw()
    with H2Client(gw.port) as c:
        ping, missing, proxied = (c.request("GET", p) for p in ("/ping", "/nope", "/svc/p"))
        ping, missing, proxied = (c.response(s) for s in (ping, missing, proxied))
    assert ping.status == 200 and bytes(ping.data) == b"pong"
    assert missing.status == 404
    assert_problem(404, missing.header_dict(), bytes(missing.data), 404)
    assert proxied.status == 200


def test_access_log_has_one_line_per_stream(h2gw):
    gw = h2gw()
    with H2Client(gw.port) as c:
        sids = [c.request("GET", f"/svc/log{i}") for i in range(5)]
        ids = {c.response(s).header("x-request-id") for s in sids}
    entries = [e for e in gw.access_log(5) if e["path"].startswith("/svc/log")]
    assert len(entries) == 5, gw.access_log(0)
    assert {e["request_id"] for e in entries} == ids
    assert all(e["status"] == 200 and e["route"] == "svc" for e in entries)


def test_key_auth_per_stream(h2gw):
    gw = h2gw()
    with H2Client(gw.port) as c:
        no_key = c.request("GET", "/keyed/x")
        with_key = c.request("GET", "/keyed/x", [("x-api-key", API_KEY), ("x-consumer", "spoof")])
        no_key, with_key = c.response(no_key), c.response(with_key)
    assert no_key.status == 401
    assert_problem(401, no_key.header_dict(), bytes(no_key.data), 401)
    assert with_key.status == 200
    seen = with_key.json()["headers"]
    assert seen["x-consumer"] == "acme" and "x-api-key" not in seen


def test_rate_limit_counts_streams(h2gw):
    gw = h2gw()
    with H2Client(gw.port) as c:
        statuses = [c.get(f"/limited/{i}").status for i in range(5)]
    assert statuses == [200, 200, 200, 429, 429], statuses


def test_request_body_upload_with_flow_control(h2gw, pki):
    gw = h2gw()
    size = 5 << 20  # far beyond the initial 64 KiB windows
    with tls_client(gw, pki, timeout=30) as c:
        sid = c.request("POST", "/svc/upload", [("content-type", "application/octet-stream")],
                        body=b"u" * size)
        st = c.response(sid, 30)
    assert st.status == 200, (st.headers, st.reset)
    assert st.json()["body_bytes"] == size


def test_large_download_over_h2(h2gw, pki):
    gw = h2gw()
    size = 16 << 20
    with tls_client(gw, pki, timeout=30) as c:
        st = c.response(c.request("GET", f"/svc/dl?size={size}", keep_data=False), 30)
    assert st.ended and st.status == 200
    assert st.data_len == size


# --------------------------------------------------------------------------
# limits

def test_max_concurrent_streams_is_100_and_a_101st_is_refused(h2gw):
    """SETTINGS_MAX_CONCURRENT_STREAMS is 100 and the 101st concurrent stream
    never reaches the pipeline. RFC 9113 5.1.2 asks for a stream error;
    nghttp2 1.52 (Debian 12) makes it a connection error instead: a GOAWAY
    (PROTOCOL_ERROR) whose last stream id excludes the 101st, after which
    the connection closes (docs/tls.md). Either answer passes; serving it,
    or a GOAWAY that admits it, fails."""
    gw = h2gw()
    with RawH2(gw.port, timeout=10) as c:
        c.start()
        assert c.settings.get(SETTINGS_MAX_CONCURRENT_STREAMS) == 100, c.settings
        sids = list(range(1, 203, 2))  # 101 streams, all open at once
        c.send(b"".join(c.headers_frame(s, c.request_headers(f"/svc/s{s}?delay_ms=1500"))
                        for s in sids))
        extra = sids[100]

        def settled():
            if c.goaway is not None:
                return True
            firsts = all(s in c.ended or s in c.resets for s in sids[:100])
            return firsts and (extra in c.resets or extra in c.ended)

        c.read_until(settled, 20)
    assert c.status(extra) is None, "the stream over the limit was served"
    if c.goaway is not None:
        assert c.goaway[1] < extra and c.goaway[0] in (PROTOCOL_ERROR, REFUSED_STREAM), c.goaway
    else:
        served = [s for s in sids[:100] if c.status(s) == 200 and s in c.ended]
        assert len(served) == 100, f"only {len(served)} of the first 100 streams were served"
        assert c.resets.get(extra) in (PROTOCOL_ERROR, REFUSED_STREAM), c.resets.get(extra)
    # The gateway still serves new connections.
    with RawH2(gw.port, timeout=10) as c2:
        c2.start()
        c2.send(c2.headers_frame(1, c2.request_headers("/svc/after")))
        c2.read_until(lambda: 1 in c2.ended, 10)
        assert c2.status(1) == 200


def test_sigterm_lets_in_flight_streams_finish_behind_a_goaway(gateway, echo):
    """Graceful shutdown over HTTP/2: SIGTERM sends GOAWAY (NO_ERROR) whose
    last stream id admits the streams in flight, those streams still get
    their whole response, then the connection closes and the process exits 0."""
    gw = gateway(h2_config(echo))
    with RawH2(gw.port, timeout=10) as c:
        c.start()
        c.send(c.headers_frame(1, c.request_headers("/svc/slow1?delay_ms=1500")) +
               c.headers_frame(3, c.request_headers("/svc/slow3?delay_ms=1500")))
        time.sleep(0.4)  # both streams are at the backend
        gw.send_signal(signal.SIGTERM)
        assert c.read_until(lambda: c.goaway is not None, 3), "no GOAWAY after SIGTERM"
        assert c.goaway[0] == NO_ERROR and c.goaway[1] >= 3, c.goaway
        assert c.read_until(lambda: {1, 3} <= c.ended, 10), (c.ended, c.resets, c.goaway)
        assert (c.status(1), c.status(3)) == (200, 200)
        assert c.data_bytes.get(1, 0) > 0 and c.data_bytes.get(3, 0) > 0, c.data_bytes
        assert c.read_until(lambda: c.closed, 5), "connection still open after its streams ended"
    assert gw.wait_exit(10) == 0, gw.stderr()


def test_header_list_over_16k_is_431_or_stream_reset(gateway, echo, recorder):
    rec = recorder()
    gw = gateway(h2_config(echo, rec))
    with H2Client(gw.port) as c:
        fine = c.get("/rec/fine", [(f"x-mid-{i}", "v" * 1000) for i in range(8)])
        assert fine.status == 200, (fine.headers, fine.reset)
        big = c.get("/rec/big", [(f"x-big-{i}", "v" * 1000) for i in range(20)])
        assert big.status == 431 or big.reset is not None, \
            f"a 20 KiB header list got {big.status} (reset {big.reset})"
        # a stream error, not a connection error: the connection goes on
        after = c.get("/svc/after")
        assert after.status == 200, (after.headers, c.goaway, c.error)
    rec.settle()
    assert b"x-big-" not in rec.data
    assert b"x-mid-0" in rec.data


def test_rapid_reset_gets_goaway_and_close(h2gw):
    gw = h2gw()
    with RawH2(gw.port, timeout=5) as c:
        c.start()
        sid, pairs, t0 = 1, 0, time.monotonic()
        while pairs < 5000 and c.goaway is None and not c.closed and time.monotonic() - t0 < 20:
            batch = b"".join(c.headers_frame(s, c.request_headers(f"/svc/rr{s}")) + c.rst_frame(s, CANCEL)
                             for s in range(sid, sid + 200, 2))
            sid += 200
            pairs += 100
            if not c.send(batch):
                break
            c.poll()
        closed = c.wait_closed(5)
        took = time.monotonic() - t0
    assert c.goaway is not None, f"no GOAWAY after {pairs} open+RST_STREAM pairs (closed={closed})"
    assert c.goaway[0] in (ENHANCE_YOUR_CALM, PROTOCOL_ERROR), f"GOAWAY code {c.goaway[0]:#x}"
    assert closed, "the gateway sent GOAWAY but kept the connection open"
    assert took < 25
    assert gw.get("/svc/after-rapid-reset").status_code == 200


@pytest.mark.parametrize("fragment", ["1k-headers", "empty"])
def test_continuation_flood_gets_goaway_or_close(h2gw, fragment):
    gw = h2gw()
    with RawH2(gw.port, timeout=5) as c:
        c.start()
        c.send(frame(HEADERS, END_STREAM, 1, c.header_block(c.request_headers("/svc/cf"))))  # no END_HEADERS
        if fragment == "empty":
            payload, total, batch = b"", 100_000, 2000
        else:
            payload, total, batch = c.header_block([("x-flood", "a" * 1000)], never_index=True), 10_000, 50
        sent, t0 = 0, time.monotonic()
        while sent < total and c.goaway is None and not c.closed and time.monotonic() - t0 < 20:
            if not c.send(frame(CONTINUATION, 0, 1, payload) * batch):
                break
            sent += batch
            c.poll()
        closed = c.wait_closed(5)
    assert closed, (f"connection still open after {sent} CONTINUATION frames "
                    f"(goaway={c.goaway}, response={c.responses.get(1)})")
    assert c.status(1) is None, "the flooded stream got a response"
    assert gw.get("/svc/after-flood").status_code == 200


# --------------------------------------------------------------------------
# flow control end to end

@pytest.mark.slow
def test_slow_reader_flow_control_keeps_gateway_memory_bounded(gateway, echo):
    gw = gateway(proxy_config([echo]))
    size = 64 << 20
    with H2Client(gw.port) as c:
        assert c.get("/warm-up").status == 200
    baseline = gw.rss_kib()
    sampler = RssSampler(gw.pid)
    sampler.start()
    try:
        with H2Client(gw.port, auto_ack=False, timeout=60) as c:
            sid = c.request("GET", f"/big?size={size}", keep_data=False)
            st = c.streams[sid]
            assert c.wait(lambda: st.headers is not None, 10), "no response head"
            assert st.status == 200
            # stall: acknowledge nothing for 2 s while the backend could send it all
            stall_end = time.monotonic() + 2
            while time.monotonic() < stall_end:
                c.pump(0.2)
            stalled = st.data_len
            assert stalled <= 65535, f"{stalled} bytes arrived beyond the 65535-byte stream window"
            assert gw.rss_kib() - baseline < 32 * 1024, "RSS grew while the client was stalled"
            # then read slowly: about 50 MiB/s at most
            deadline = time.monotonic() + 60
            paced = 0
            while not st.done and time.monotonic() < deadline and not c.closed:
                c.pump(0.2)
                c.ack(sid)
                if st.data_len - paced >= 1 << 20:
                    paced = st.data_len
                    time.sleep(0.02)
            assert st.ended, f"download incomplete: {st.data_len} of {size} (reset {st.reset})"
            assert st.data_len == size
    finally:
        peak = sampler.stop()
    growth = peak - baseline
    assert growth < 32 * 1024, f"gateway RSS grew by {growth // 1024} MiB for a 64 MiB slow download"


# --------------------------------------------------------------------------
# load

@pytest.mark.slow
@pytest.mark.parametrize("transport", ["h2c", "h2-tls"])
def test_h2load_small_run_all_2xx(h2gw, transport):
    gw = h2gw()
    url = (gw.url("/svc/load") if transport == "h2c"
           else f"https://127.0.0.1:{gw.tls_port}/svc/load")
    r = h2load(url, n=2000, c=2, m=50)
    assert r.total == 2000, r.output[-2000:]
    assert r.succeeded == 2000 and r.failed == 0 and r.errored == 0, r.output[-2000:]
    assert r.status_2xx == 2000 and r.status_other == 0, r.output[-2000:]
