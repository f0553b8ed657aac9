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
import selectors
import statistics
import subprocess
import sys
import time

import proc_stats
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
    median_keys = ("rps", "p50_us", "p99_us", "cpu_us_per_req")
    sum_keys = ("requests", "non2xx", "errors")
    columns = (
        ("req/s", "rps", f_int),
        ("p50 ms", "p50_us", f_ms),
        ("p99 ms", "p99_us", f_ms),
        ("CPU µs/req", "cpu_us_per_req", f_us),
        ("requests", "requests", f_int),
        ("non-2xx/3xx", "non2xx", f_int),
        ("socket errors", "errors", f_int),
    )
    ratios = (("req/s", "rps"), ("CPU µs/req", "cpu_us_per_req"))

    def describe(self, scenario, ctx, duration):
        method = "POST (" + scenario.script + ")" if scenario.script else "GET"
        return (f"`wrk -t1 -c{ctx.connections(scenario)} -d{duration}s --latency`, {method} `{scenario.path}`")

    def run(self, server, scenario, ctx, duration):
        url = f"http://127.0.0.1:{server.port}{scenario.path}"
        script = os.path.join(HERE, scenario.script) if scenario.script else None
        pids = server.pids()
        before = proc_stats.cpu_ticks(pids)
        try:
            r = wrk_runner.run(url, ctx.connections(scenario), duration, script=script, cpu=ctx.client_cpu,
                               headers=server.request_headers)
        except (RuntimeError, subprocess.TimeoutExpired) as e:
            return {"ok": False, "problem": str(e)}
        r["cpu_us_per_req"] = _cpu_per_request(proc_stats.cpu_ticks(pids) - before, r["requests"])
        # req/s counts answered requests only: wrk's Requests/sec includes the
        # non-2xx/3xx (status >= 400: a 401, 429 or 503 is an error, not throughput).
        r["rps_wrk"] = r["rps"]
        if r["non2xx"] and r["requests"]:
            r["rps"] = r["rps"] * max(0, r["requests"] - r["non2xx"]) / r["requests"]
        r["ok"] = True
        r["problem"] = None
        _judge(r, r["requests"], scenario.error_budget)
        if r["problem"] and r["error_detail"]:
            r["problem"] += " (socket errors: " + ", ".join(f"{k} {v}" for k, v in r["error_detail"].items()) + ")"
        return r

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


KINDS = {"wrk": WrkKind(), "idle": IdleKind(), "fixed_rate": FixedRateKind()}


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
    return agg
