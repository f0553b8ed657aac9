"""How each kind of scenario is measured, aggregated and tabulated.

A kind runs one measurement of one server (run()), says which per-run values
are medians and which are summed over rounds, which columns its table has and
which gatehouse ratios it reports. Every run() returns a dict with
  ok:      the server answered (else the run counts as failed),
  problem: None, or why the run is suspicious (errors, dropped connections);
           a failure for --smoke,
  warning: (optional) something worth a note that is not the server's fault,
plus the kind's metrics.
"""

import json
import os
import re
import selectors
import shutil
import statistics
import subprocess
import sys
import time

import proc_stats
import tls_setup
import wrk_runner

HERE = os.path.dirname(os.path.abspath(__file__))
PYTHON = sys.executable or "/usr/bin/python3"
ERROR_BUDGET = 0.01  # more than 1% non-2xx/errors marks a run as a problem


class Context:
    """Settings shared by every run: durations, CPU pinning, smoke mode."""

    def __init__(self, smoke, client_cpu, hold_seconds, fd_limit):
        self.smoke = smoke
        self.client_cpu = client_cpu
        self.hold_seconds = hold_seconds
        self.fd_limit = fd_limit  # RLIMIT_NOFILE of the harness and the servers
        self.max_connections = max(100, fd_limit - 1000)

    def connections(self, scenario):
        n = scenario.smoke_connections if self.smoke else scenario.connections
        return min(n, self.max_connections)

    def pinned(self, argv):
        return (["taskset", "-c", str(self.client_cpu)] if self.client_cpu is not None else []) + argv


def _cpu_per_request(ticks, requests):
    return proc_stats.ticks_to_us(ticks) / requests if requests else None


def _cpu_percent(ticks, seconds):
    """A server's CPU time over a run, in percent of one CPU (100: its CPU was never idle)."""
    return 100.0 * proc_stats.ticks_to_us(ticks) / (seconds * 1e6) if seconds else None


def _per_cpu_second(r):
    """Requests per second of the server's CPU time (1e6 / CPU µs/req): what it would serve with its CPU saturated."""
    us = r.get("cpu_us_per_req")
    return 1e6 / us if us else None


def _add_problem(result, text):
    result["problem"] = f"{result['problem']}; {text}" if result.get("problem") else text


def _judge(result, attempts, budget=ERROR_BUDGET):
    """Marks the run failed (no good response) or a problem (errors over the budget, a share of attempts)."""
    bad = result.get("non2xx", 0) + result.get("errors", 0)
    if attempts <= 0 or bad >= attempts:
        result["ok"] = False
        result["problem"] = result.get("problem") or (
            f"no successful responses ({result.get('non2xx', 0)} non-2xx, {result.get('errors', 0)} socket errors "
            f"out of {attempts} requests)")
    elif bad > budget * attempts:
        result["problem"] = (f"{bad} of {attempts} requests failed ({result.get('non2xx', 0)} non-2xx, "
                             f"{result.get('errors', 0)} socket errors)"
                             + ("; this scenario allows none" if budget == 0 else ""))
    return result


def _header_args(server):
    """--header arguments for the Python clients: the server's request_headers."""
    args = []
    for name, value in server.request_headers.items():
        args += ["--header", f"{name}: {value}"]
    return args


def _read_json_line(proc, timeout):
    sel = selectors.DefaultSelector()
    sel.register(proc.stdout, selectors.EVENT_READ)
    try:
        if not sel.select(timeout):
            raise RuntimeError(f"no answer from {proc.args[-1] if proc.args else 'client'} within {timeout:.0f} s")
        line = proc.stdout.readline()
    finally:
        sel.close()
    if not line:
        err = proc.stderr.read() if proc.stderr else ""
        raise RuntimeError(f"client exited without a result: {err.strip()[-300:]}")
    return json.loads(line)


# ---------------------------------------------------------------------------
# Formatting helpers for table cells.

def f_int(v):
    return "n/a" if v is None else f"{v:,.0f}"


def f_ms(us):
    return "n/a" if us is None else f"{us / 1000:.3f}"


def f_us(v):
    return "n/a" if v is None else f"{v:.1f}"


def f_pct(v):
    return "n/a" if v is None else f"{v:.0f}"


def f_signed_ms(us):
    return "n/a" if us is None else f"{us / 1000:+.3f}"


def f_mib(kib):
    return "n/a" if kib is None else f"{kib / 1024:.1f}"


class Kind:
    median_keys = ()   # medians over the ok runs
    sum_keys = ()      # totals over all measured runs
    columns = ()       # (header, key, formatter); "server" and "runs ok" are added
    ratios = ()        # (label, key): gatehouse value / other server's value

    def describe(self, scenario, ctx, duration):
        return ""

    def run(self, server, scenario, ctx, duration):
        raise NotImplementedError

    def summary(self, result):
        """One short line for the progress log."""
        return ""

    def derive(self, aggregates):
        """Adds values computed across servers (e.g. added latency vs direct)."""


class WrkKind(Kind):
    median_keys = ("rps", "p50_us", "p99_us", "cpu_us_per_req", "server_cpu_pct", "load_cpu_pct")
    sum_keys = ("requests", "non2xx", "errors")
    columns = (
        ("req/s", "rps", f_int),
        ("p50 ms", "p50_us", f_ms),
        ("p99 ms", "p99_us", f_ms),
        ("CPU µs/req", "cpu_us_per_req", f_us),
        ("server CPU %", "server_cpu_pct", f_pct),
        ("load CPU %", "load_cpu_pct", f_pct),
        ("requests", "requests", f_int),
        ("non-2xx/3xx", "non2xx", f_int),
        ("socket errors", "errors", f_int),
    )
    ratios = (("req/s", "rps"), ("CPU µs/req", "cpu_us_per_req"))

    def describe(self, scenario, ctx, duration):
        method = "POST (" + scenario.script + ")" if scenario.script else "GET"
        return (f"`wrk -t1 -c{ctx.connections(scenario)} -d{duration}s --latency`, {method} `{scenario.path}`")

    def run(self, server, scenario, ctx, duration):
        r = self._run_wrk(server, scenario, ctx, duration, f"http://127.0.0.1:{server.port}{scenario.path}")
        self._error_detail(r)
        return r

    def _run_wrk(self, server, scenario, ctx, duration, url, env=None):
        script = os.path.join(HERE, scenario.script) if scenario.script else None
        headers = dict(server.request_headers)
        headers.update(dict(scenario.headers))
        pids = server.pids()
        before = proc_stats.cpu_ticks(pids)
        load_before = proc_stats.cpu_busy_ticks(ctx.client_cpu)
        try:
            r = wrk_runner.run(url, ctx.connections(scenario), duration, script=script, cpu=ctx.client_cpu,
                               headers=headers, env=env)
        except (RuntimeError, subprocess.TimeoutExpired) as e:
            return {"ok": False, "problem": str(e)}
        ticks = proc_stats.cpu_ticks(pids) - before
        # The busy share of the load CPU (wrk and the backend) over the run,
        # wrk's start-up and exit included: near 100 means that CPU, not the
        # server, set req/s.
        r["load_cpu_pct"] = proc_stats.busy_percent(load_before, proc_stats.cpu_busy_ticks(ctx.client_cpu))
        r["cpu_us_per_req"] = _cpu_per_request(ticks, r["requests"])
        r["server_cpu_pct"] = _cpu_percent(ticks, r["seconds"])
        # req/s counts answered requests only: wrk's Requests/sec includes the
        # non-2xx/3xx (status >= 400: a 401, 429 or 503 is an error, not throughput).
        r["rps_wrk"] = r["rps"]
        if r["non2xx"] and r["requests"]:
            r["rps"] = r["rps"] * max(0, r["requests"] - r["non2xx"]) / r["requests"]
        r["ok"] = True
        r["problem"] = None
        _judge(r, r["requests"], scenario.error_budget)
        return r

    @staticmethod
    def _error_detail(r):
        if r.get("problem") and r.get("error_detail"):
            r["problem"] += " (socket errors: " + ", ".join(f"{k} {v}" for k, v in r["error_detail"].items()) + ")"

    def summary(self, r):
        return (f"{f_int(r.get('rps'))} req/s, p50 {f_ms(r.get('p50_us'))} ms, p99 {f_ms(r.get('p99_us'))} ms, "
                f"CPU {f_us(r.get('cpu_us_per_req'))} µs/req, non-2xx {r.get('non2xx', 0)}, errors {r.get('errors', 0)}")


class IdleKind(Kind):
    median_keys = ("held", "rss_per_conn_bytes", "rss_before_kib", "rss_after_kib", "open_seconds")
    sum_keys = ("failed", "closed_by_peer", "non2xx")
    columns = (
        ("held", "held", f_int),
        ("RSS before MiB", "rss_before_kib", f_mib),
        ("RSS held MiB", "rss_after_kib", f_mib),
        ("RSS growth bytes/conn", "rss_per_conn_bytes", f_int),
        ("open s", "open_seconds", f_us),
        ("failed to open", "failed", f_int),
        ("closed by server", "closed_by_peer", f_int),
        ("non-2xx", "non2xx", f_int),
    )
    ratios = (("RSS growth bytes/conn", "rss_per_conn_bytes"),)

    def describe(self, scenario, ctx, duration):
        return (f"{ctx.connections(scenario):,} connections opened (256 at a time), one GET each, then held "
                f"{ctx.hold_seconds:g} s; VmRSS of the server's processes before opening and while holding. "
                f"Servers restarted before each round."
                + (f" RLIMIT_NOFILE is {ctx.fd_limit} here: a tcp-mode proxy needs two descriptors per connection, "
                   f"so haproxy-tcp cannot hold all of them." if 2 * ctx.connections(scenario) + 100 > ctx.fd_limit
                   else ""))

    def run(self, server, scenario, ctx, duration):
        count = ctx.connections(scenario)
        pids = server.pids()
        rss_before = proc_stats.rss_kib(pids)
        argv = ctx.pinned([PYTHON, "-B", os.path.join(HERE, "hold_connections.py"), "--port", str(server.port),
                           "--count", str(count), "--path", scenario.path] + _header_args(server))
        proc = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                text=True)
        try:
            ready = _read_json_line(proc, timeout=180)
            time.sleep(ctx.hold_seconds)
            rss_after = proc_stats.rss_kib(server.pids())
            alive = server.alive()
            proc.stdin.write("close\n")
            proc.stdin.flush()
            done = _read_json_line(proc, timeout=60)
            proc.wait(timeout=30)
        except (RuntimeError, OSError, ValueError, subprocess.TimeoutExpired) as e:
            return {"ok": False, "problem": f"idle-connection client: {e}"}
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        held = ready["held"]
        r = {
            "held": held, "failed": ready["failed"], "non2xx": ready["non2xx"],
            "closed_by_peer": done["closed_by_peer"], "open_seconds": ready["open_seconds"],
            "rss_before_kib": rss_before, "rss_after_kib": rss_after,
            "rss_per_conn_bytes": (rss_after - rss_before) * 1024 / held if held else None,
            "ok": held > 0 and alive, "problem": None,
        }
        issues = []
        if not alive:
            issues.append("server died while holding connections")
        if ready["failed"]:
            issues.append(f"{ready['failed']} connections failed to open ({ready['errors']})")
        if ready["non2xx"]:
            issues.append(f"{ready['non2xx']} non-2xx answers")
        if done["closed_by_peer"]:
            issues.append(f"server closed {done['closed_by_peer']} idle connections while they were held")
        if issues:
            r["problem"] = "; ".join(issues)
        return r

    def summary(self, r):
        return (f"held {f_int(r.get('held'))}, RSS {f_mib(r.get('rss_before_kib'))} -> {f_mib(r.get('rss_after_kib'))} "
                f"MiB, {f_int(r.get('rss_per_conn_bytes'))} bytes/conn, open {f_us(r.get('open_seconds'))} s")


class FixedRateKind(Kind):
    median_keys = ("p50_us", "p90_us", "p99_us", "cpu_us_per_req")
    sum_keys = ("completed", "non2xx", "errors", "late")
    columns = (
        ("p50 ms", "p50_us", f_ms),
        ("p99 ms", "p99_us", f_ms),
        ("added p50 ms", "added_p50_us", f_signed_ms),
        ("added p99 ms", "added_p99_us", f_signed_ms),
        ("CPU µs/req", "cpu_us_per_req", f_us),
        ("requests", "completed", f_int),
        ("non-2xx", "non2xx", f_int),
        ("errors", "errors", f_int),
        ("sent late", "late", f_int),
    )
    ratios = (("p50 ms", "p50_us"), ("p99 ms", "p99_us"), ("CPU µs/req", "cpu_us_per_req"))

    def describe(self, scenario, ctx, duration):
        return (f"Python open-loop client ({scenario.rate:,} req/s for {duration} s over "
                f"{ctx.connections(scenario)} keep-alive connections), GET `{scenario.path}`; latency from write to "
                f"complete response; added = this server's median minus direct's. \"sent late\" counts requests "
                f"the client sent over 1 ms after they were due (client lag).")

    def run(self, server, scenario, ctx, duration):
        argv = ctx.pinned([PYTHON, "-B", os.path.join(HERE, "fixed_rate_client.py"), "--port", str(server.port),
                           "--path", scenario.path, "--rate", str(scenario.rate), "--duration", str(duration),
                           "--connections", str(ctx.connections(scenario))] + _header_args(server))
        pids = server.pids()
        before = proc_stats.cpu_ticks(pids)
        try:
            proc = subprocess.run(argv, capture_output=True, text=True, timeout=duration + 60)
        except subprocess.TimeoutExpired as e:
            return {"ok": False, "problem": f"fixed-rate client hung: {e}"}
        try:
            r = json.loads(proc.stdout.strip().splitlines()[-1])
        except (ValueError, IndexError):
            return {"ok": False, "problem": f"fixed-rate client failed (exit {proc.returncode}): "
                                           f"{proc.stderr.strip()[-300:]}"}
        if "fatal" in r:
            return {"ok": False, "problem": r["fatal"]}
        r["cpu_us_per_req"] = _cpu_per_request(proc_stats.cpu_ticks(pids) - before, r["completed"])
        r["ok"] = True
        r["problem"] = None
        _judge(r, r["sent"], scenario.error_budget)
        if r["late"] > 0.05 * max(r["sent"], 1):
            r["warning"] = (f"client lag: {r['late']} of {r['sent']} requests sent over 1 ms late "
                            f"(the arrival rate was not even; latencies are still per request)")
        return r

    def summary(self, r):
        return (f"p50 {f_ms(r.get('p50_us'))} ms, p99 {f_ms(r.get('p99_us'))} ms, CPU {f_us(r.get('cpu_us_per_req'))} "
                f"µs/req, {r.get('completed', 0)} done, non-2xx {r.get('non2xx', 0)}, errors {r.get('errors', 0)}")

    def derive(self, aggregates):
        direct = aggregates.get("direct", {})
        for agg in aggregates.values():
            for p in ("p50", "p99"):
                mine, base = agg.get(f"{p}_us"), direct.get(f"{p}_us")
                agg[f"added_{p}_us"] = mine - base if mine is not None and base is not None else None


class TlsWrkKind(WrkKind):
    """wrk over https through tls_client_shim.c (LD_PRELOAD): no session is
    ever offered, so every connection is a full handshake; the shim pins the
    TLS 1.3 suite and group and counts handshakes, resumptions and what was
    negotiated. A run is a problem if a handshake was resumed, negotiated
    anything else, or (with Connection: close) a connection carried more than
    one request."""

    median_keys = WrkKind.median_keys + ("rps_per_cpu",)
    sum_keys = WrkKind.sum_keys + ("handshakes", "resumed")
    columns = (
        ("req/s", "rps", f_int),
        ("p50 ms", "p50_us", f_ms),
        ("p99 ms", "p99_us", f_ms),
        ("CPU µs/req", "cpu_us_per_req", f_us),
        ("server CPU %", "server_cpu_pct", f_pct),
        ("req/s per CPU", "rps_per_cpu", f_int),
        ("requests", "requests", f_int),
        ("TLS handshakes", "handshakes", f_int),
        ("resumed", "resumed", f_int),
        ("non-2xx/3xx", "non2xx", f_int),
        ("socket errors", "errors", f_int),
    )
    ratios = (("req/s", "rps"), ("req/s per CPU", "rps_per_cpu"), ("CPU µs/req", "cpu_us_per_req"))

    def describe(self, scenario, ctx, duration):
        headers = "".join(f" -H '{k}: {v}'" for k, v in scenario.headers)
        text = (f"`wrk -t1 -c{ctx.connections(scenario)} -d{duration}s --latency{headers}`, GET "
                f"`https://127.0.0.1:PORT{scenario.path}`, with `bench/tls_client_shim.c` preloaded (full handshakes "
                f"only, counted). TLS: {tls_setup.SUMMARY}.")
        if _closes(scenario):
            text += (" The server closes every connection after its one response (the request says `Connection: "
                     "close`), so req/s is new TLS connections per second, each a full handshake; **TLS "
                     "handshakes** counts them (the client's completed handshakes) and **resumed** must be 0. "
                     "The client spends more CPU per handshake than a server (it verifies the signature and "
                     "parses the certificate) and has one CPU: where **server CPU %** is well below 100 the client "
                     "was the limit, and **req/s per CPU** (connections per second of the server's CPU time) "
                     "is the server's handshake capacity.")
        return text

    def run(self, server, scenario, ctx, duration):
        try:
            material = tls_setup.tls_material(server.options)
            stats_path = os.path.join(server.dir, "wrk-tls-stats.json")
            if os.path.exists(stats_path):
                os.unlink(stats_path)
            env = material.wrk_env(stats_path)
        except (tls_setup.TlsSetupError, OSError) as e:
            return {"ok": False, "problem": str(e)}
        r = self._run_wrk(server, scenario, ctx, duration,
                          f"https://127.0.0.1:{server.port}{scenario.path}", env=env)
        r["rps_per_cpu"] = _per_cpu_second(r)
        try:
            with open(stats_path) as f:
                stats = json.load(f)
        except (OSError, ValueError) as e:
            if r.get("ok"):
                r["ok"] = False
                r["problem"] = (f"the TLS shim wrote no counts ({e}): it was not preloaded into wrk, or wrk "
                                f"started no TLS handshake")
            return r
        r["handshakes"] = stats["handshakes"]
        r["resumed"] = stats["resumed"]
        r["negotiated"] = stats["negotiated"]
        if not r.get("ok"):
            return r
        if r["resumed"]:
            _add_problem(r, f"{r['resumed']} of {r['handshakes']} handshakes were resumptions, not full handshakes")
        other = {k: v for k, v in r["negotiated"].items() if k != tls_setup.EXPECTED_NEGOTIATION}
        if other or stats.get("other"):
            _add_problem(r, "negotiated " + ", ".join(f"{k} ({v} handshakes)" for k, v in other.items())
                         + f" instead of {tls_setup.EXPECTED_NEGOTIATION}")
        if _closes(scenario) and r["handshakes"] < r["requests"]:
            _add_problem(r, f"{r['requests']} requests over only {r['handshakes']} TLS connections: the server "
                            f"kept connections open despite `Connection: close`, so this is not a handshake rate")
        self._error_detail(r)
        return r

    def summary(self, r):
        return (super().summary(r) + f", server CPU {f_pct(r.get('server_cpu_pct'))}%, "
                f"{r.get('handshakes', 0)} handshakes ({r.get('resumed', 0)} resumed)")


def _closes(scenario):
    return any(k.lower() == "connection" and v.lower() == "close" for k, v in scenario.headers)


def parse_h2load(text):
    """Parses h2load's report (nghttp2 1.5x) into a dict; raises ValueError if it is not one."""
    m = re.search(r"^finished in ([\d.]+)(us|ms|s|m|h), ([\d.]+) req/s", text, re.M)
    if not m:
        raise ValueError("no 'finished in T, N req/s' line in h2load output")
    out = {"seconds": wrk_runner._to_us(m.group(1), m.group(2)) / 1e6, "rps_h2load": float(m.group(3))}
    m = re.search(r"^requests: (\d+) total, (\d+) started, (\d+) done, (\d+) succeeded, (\d+) failed, "
                  r"(\d+) errored, (\d+) timeout", text, re.M)
    if not m:
        raise ValueError("no 'requests: ...' line in h2load output")
    for key, value in zip(("total", "started", "done", "succeeded", "failed", "errored", "timeout"), m.groups()):
        out[key] = int(value)
    m = re.search(r"^status codes: (\d+) 2xx, (\d+) 3xx, (\d+) 4xx, (\d+) 5xx", text, re.M)
    if not m:
        raise ValueError("no 'status codes: ...' line in h2load output")
    for key, value in zip(("s2xx", "s3xx", "s4xx", "s5xx"), m.groups()):
        out[key] = int(value)
    unit = r"([\d.]+)(us|ms|s)"
    m = re.search(rf"^time for request:\s+{unit}\s+{unit}\s+{unit}\s+{unit}", text, re.M)
    if m:
        out["min_us"], out["max_us"], out["mean_us"], out["sd_us"] = (
            wrk_runner._to_us(m.group(i), m.group(i + 1)) for i in (1, 3, 5, 7))
    for key, pattern in (("tls_protocol", r"^TLS Protocol: (\S+)"), ("cipher", r"^Cipher: (\S+)"),
                         ("temp_key", r"^Server Temp Key: (\S+)"), ("alpn", r"^Application protocol: (\S+)")):
        m = re.search(pattern, text, re.M)
        out[key] = m.group(1) if m else None
    return out


class H2loadKind(Kind):
    """h2load over TLS with ALPN h2 only: connections x streams concurrent requests, for the run's duration."""

    median_keys = ("rps", "mean_us", "max_us", "cpu_us_per_req", "server_cpu_pct", "rps_per_cpu")
    sum_keys = ("requests", "non2xx", "errors")
    columns = (
        ("req/s", "rps", f_int),
        ("mean ms", "mean_us", f_ms),
        ("max ms", "max_us", f_ms),
        ("CPU µs/req", "cpu_us_per_req", f_us),
        ("server CPU %", "server_cpu_pct", f_pct),
        ("req/s per CPU", "rps_per_cpu", f_int),
        ("requests", "requests", f_int),
        ("non-2xx/3xx", "non2xx", f_int),
        ("stream errors", "errors", f_int),
    )
    ratios = (("req/s", "rps"), ("req/s per CPU", "rps_per_cpu"), ("CPU µs/req", "cpu_us_per_req"))

    @staticmethod
    def command(scenario, connections, duration, url, headers):
        argv = ["h2load", f"-c{connections}", f"-m{scenario.streams}", "-t1", f"-D{duration}",
                "--tls13-ciphers", tls_setup.TLS_SUITE, "--groups", tls_setup.TLS_GROUP, "--npn-list", "h2"]
        for name, value in headers.items():
            argv += ["-H", f"{name}: {value}"]
        return argv + [url]

    def describe(self, scenario, ctx, duration):
        n = ctx.connections(scenario)
        cmd = " ".join(self.command(scenario, n, duration, f"https://127.0.0.1:PORT{scenario.path}",
                                    dict(scenario.headers)))
        return (f"`{cmd}`: {n} HTTP/2 connections (ALPN h2 only), {scenario.streams} concurrent streams each "
                f"({n * scenario.streams} requests in flight), GET; the servers proxy each stream as an HTTP/1.1 "
                f"request to the backend. TLS: {tls_setup.SUMMARY}. req/s counts 2xx/3xx responses; **mean / max "
                f"ms**: h2load's time for request; **stream errors**: streams that ended without a response "
                f"(reset, or the connection closed under them).")

    def run(self, server, scenario, ctx, duration):
        if not shutil.which("h2load"):
            return {"ok": False, "problem": "h2load not found (package nghttp2-client; scripts/install-deps)"}
        headers = dict(server.request_headers)
        headers.update(dict(scenario.headers))
        argv = ctx.pinned(self.command(scenario, ctx.connections(scenario), duration,
                                       f"https://127.0.0.1:{server.port}{scenario.path}", headers))
        pids = server.pids()
        before = proc_stats.cpu_ticks(pids)
        try:
            proc = subprocess.run(argv, capture_output=True, text=True, timeout=duration + 30)
        except subprocess.TimeoutExpired:
            return {"ok": False, "problem": f"h2load did not finish within {duration + 30} s (killed)"}
        ticks = proc_stats.cpu_ticks(pids) - before
        try:
            r = parse_h2load(proc.stdout)
        except ValueError as e:
            return {"ok": False, "problem": f"h2load exited {proc.returncode}: {e}; "
                                           f"{(proc.stderr or proc.stdout).strip()[-300:]}"}
        answered = r["s2xx"] + r["s3xx"] + r["s4xx"] + r["s5xx"]
        r["requests"] = r["done"]
        r["non2xx"] = r["s4xx"] + r["s5xx"]
        r["errors"] = max(0, r["failed"] - r["non2xx"])
        # h2load's req/s counts every finished stream; count 2xx/3xx only, as for wrk.
        r["rps"] = r["rps_h2load"] * (r["s2xx"] + r["s3xx"]) / answered if answered else 0.0
        r["cpu_us_per_req"] = _cpu_per_request(ticks, r["done"])
        r["server_cpu_pct"] = _cpu_percent(ticks, duration)
        r["rps_per_cpu"] = _per_cpu_second(r)
        r["ok"] = True
        r["problem"] = None
        if r["alpn"] != "h2":
            r["ok"] = False
            r["problem"] = f"ALPN negotiated {r['alpn']!r}, not h2: {(proc.stderr or proc.stdout).strip()[-300:]}"
            return r
        _judge(r, r["done"], scenario.error_budget)
        negotiated = f"{r['tls_protocol']} {r['cipher']} {r['temp_key']}"
        if r["ok"] and negotiated != tls_setup.EXPECTED_NEGOTIATION:
            _add_problem(r, f"negotiated {negotiated} instead of {tls_setup.EXPECTED_NEGOTIATION}")
        return r

    def summary(self, r):
        return (f"{f_int(r.get('rps'))} req/s, mean {f_ms(r.get('mean_us'))} ms, max {f_ms(r.get('max_us'))} ms, "
                f"CPU {f_us(r.get('cpu_us_per_req'))} µs/req, server CPU {f_pct(r.get('server_cpu_pct'))}%, "
                f"non-2xx {r.get('non2xx', 0)}, stream errors {r.get('errors', 0)}")


KINDS = {"wrk": WrkKind(), "idle": IdleKind(), "fixed_rate": FixedRateKind(), "wrk_tls": TlsWrkKind(),
         "h2load": H2loadKind()}


def aggregate(kind, runs):
    """Medians of the ok runs and totals of all runs for one server."""
    ok = [r for r in runs if r.get("ok")]
    # problem_runs: runs with errors over the budget, failed or not (the report flags their ratios)
    agg = {"runs_ok": len(ok), "runs": len(runs), "problem_runs": sum(1 for r in runs if r.get("problem"))}
    for key in kind.median_keys:
        values = [r[key] for r in ok if r.get(key) is not None]
        agg[key] = statistics.median(values) if values else None
    for key in kind.sum_keys:
        agg[key] = sum(r.get(key, 0) or 0 for r in runs) if runs else None
    # Each ok run's values by round, for the report's paired per-round ratios.
    agg["by_round"] = {r["round"]: r for r in ok if "round" in r}
    return agg
