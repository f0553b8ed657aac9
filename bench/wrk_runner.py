"""Runs wrk (one thread, --latency) and parses its report."""

import re
import subprocess

_UNITS_US = {"us": 1.0, "ms": 1000.0, "s": 1_000_000.0, "m": 60_000_000.0, "h": 3_600_000_000.0}


def _to_us(value, unit):
    return float(value) * _UNITS_US[unit]


def parse(text):
    """Parses wrk 4.x output into a dict; raises ValueError if it is not one."""
    m = re.search(r"^\s*(\d+) requests in ([\d.]+)(us|ms|s|m|h),", text, re.M)
    if not m:
        raise ValueError("no 'N requests in T' line in wrk output")
    out = {
        "requests": int(m.group(1)),
        "seconds": _to_us(m.group(2), m.group(3)) / 1e6,
        "non2xx": 0,
        "errors": 0,
        "error_detail": {},
    }
    m = re.search(r"^Requests/sec:\s+([\d.]+)", text, re.M)
    out["rps"] = float(m.group(1)) if m else out["requests"] / max(out["seconds"], 1e-9)
    for pct, value, unit in re.findall(r"^\s+(50|75|90|99)%\s+([\d.]+)(us|ms|s|m|h)\s*$", text, re.M):
        out[f"p{pct}_us"] = _to_us(value, unit)
    m = re.search(r"Non-2xx or 3xx responses: (\d+)", text)
    if m:
        out["non2xx"] = int(m.group(1))
    m = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", text)
    if m:
        detail = dict(zip(("connect", "read", "write", "timeout"), map(int, m.groups())))
        out["error_detail"] = {k: v for k, v in detail.items() if v}
        out["errors"] = sum(detail.values())
    return out


def run(url, connections, duration, script=None, cpu=None, timeout_s="5s", headers=None, env=None):
    """Runs wrk -t1 and returns parse() of its output plus the command line.

    headers: {name: value} added to every request (wrk -H; a script's
    wrk.headers starts from them). env: wrk's environment (default: ours).

    Raises RuntimeError (with wrk's stderr) if wrk fails or prints no report.
    """
    cmd = []
    if cpu is not None:
        cmd += ["taskset", "-c", str(cpu)]
    cmd += ["wrk", "-t1", f"-c{connections}", f"-d{duration}s", "--latency", "--timeout", timeout_s]
    for name, value in (headers or {}).items():
        cmd += ["-H", f"{name}: {value}"]
    if script:
        cmd += ["-s", script]
    cmd.append(url)
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=duration + 60, env=env)
    try:
        result = parse(proc.stdout)
    except ValueError as e:
        raise RuntimeError(f"wrk exited {proc.returncode}: {e}; stderr: {proc.stderr.strip()[-300:]}")
    result["command"] = " ".join(cmd)
    return result
