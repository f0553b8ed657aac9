"""Machine description and the Markdown report of a bench run."""

import datetime
import os
import platform
import subprocess

RATIO_BASES = ("nginx", "haproxy-http", "direct")


def _cmd(argv, cwd=None):
    try:
        p = subprocess.run(argv, capture_output=True, text=True, timeout=10, cwd=cwd)
    except (OSError, subprocess.TimeoutExpired):
        return ""
    return (p.stdout + p.stderr).strip()


def _first_line(text):
    return text.splitlines()[0].strip() if text else "unknown"


def machine(repo, gatehouse_binary):
    cpu_model = "unknown"
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu_model = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    mem = ""
    try:
        with open("/proc/meminfo") as f:
            kib = int(f.readline().split()[1])
            mem = f"{kib / 1024 / 1024:.1f} GiB"
    except (OSError, ValueError, IndexError):
        pass
    commit = _cmd(["git", "rev-parse", "--short=12", "HEAD"], cwd=repo) or "unknown"
    # --no-optional-locks: never take the index lock (others may be committing).
    if _cmd(["git", "--no-optional-locks", "status", "--porcelain", "--untracked-files=no"], cwd=repo):
        commit += " (with uncommitted changes)"
    gh = "not built"
    if os.access(gatehouse_binary, os.X_OK):
        gh = _first_line(_cmd([gatehouse_binary, "version"])) or "unknown version"
    wrk = _first_line(_cmd(["wrk", "-v"]))
    return {
        "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC"),
        "git commit": commit,
        "nproc": _first_line(_cmd(["nproc"])),
        "CPU": cpu_model,
        "memory": mem,
        "kernel": platform.release(),
        "OS": _os_name(),
        "nginx": _first_line(_cmd(["nginx", "-v"])).replace("nginx version: ", ""),
        "haproxy": _first_line(_cmd(["haproxy", "-v"])).replace("HAProxy version ", "HAProxy "),
        "wrk": wrk.split(" [")[0],
        "h2load": _first_line(_cmd(["h2load", "--version"])),
        "openssl": _first_line(_cmd(["openssl", "version"])),
        "python": platform.python_version(),
        "gatehouse": gh,
    }


def _os_name():
    try:
        with open("/etc/os-release") as f:
            for line in f:
                if line.startswith("PRETTY_NAME="):
                    return line.split("=", 1)[1].strip().strip('"')
    except OSError:
        pass
    return platform.system()


def _ratio(a, b):
    if a is None or b is None or b == 0:
        return "n/a"
    return f"{a / b:.2f}"


def ratio_pairs(scenario, servers):
    """(subject, base) pairs of the scenario's ratio table: gatehouse vs nginx,
    haproxy-http and direct, or with scenario.ratio_base every other server vs it."""
    if scenario.ratio_base:
        if scenario.ratio_base not in servers:
            return []
        return [(n, scenario.ratio_base) for n in servers if n != scenario.ratio_base]
    if "gatehouse" not in servers:
        return []
    return [("gatehouse", b) for b in RATIO_BASES if b in servers]


def _by_round_cell(key, mine, other):
    """The subject/base ratio of `key` in each round both ran well, in round
    order: the two runs of a round are seconds apart, so a machine that
    speeds up or slows down between rounds moves both."""
    a, b = mine.get("by_round") or {}, other.get("by_round") or {}
    cells = [_ratio(a[n].get(key), b[n].get(key)) for n in sorted(a) if n in b]
    return " · ".join(cells) if cells else "n/a"


def _target_cell(scenario, kind, subject, base, value, flagged, smoke):
    """The "target" cell of a ratio row: the scenario's minimum for it, met or not.
    A target names the subject (every row of it) or "subject/base" (that row only)."""
    cells = []
    labels = dict((key, label) for label, key in kind.ratios)
    for server, key, minimum in scenario.targets:
        if server not in (subject, f"{subject}/{base}"):
            continue
        text = f"{labels.get(key, key)} ≥ {minimum:g}"
        v = value.get(key)
        if smoke:
            text += " (smoke: not judged)"
        elif v is None:
            text += ": n/a"
        elif flagged:
            text += ": not judged (errors, see Notes)"
        else:
            text += ": met" if v >= minimum else ": **not met**"
        cells.append(text)
    return "; ".join(cells)


def scenario_section(scenario, kind, description, aggregates, servers, notes, smoke=False):
    """Markdown for one scenario: table of medians, ratios (and targets), notes.

    A server none of whose runs succeeded gets n/a medians but its totals
    (requests, non-2xx, errors), so a flood of 401s shows as such."""
    lines = [f"## {scenario.id}. {scenario.title} (`{scenario.name}`)", "", description, ""]
    headers = ["server"] + [c[0] for c in kind.columns] + ["runs ok"]
    lines.append("| " + " | ".join(headers) + " |")
    lines.append("| --- | " + " | ".join("---:" for _ in headers[1:]) + " |")
    for name in servers:
        agg = aggregates.get(name)
        if not agg or not agg.get("runs_ok"):
            cells = [fmt(agg.get(key)) if agg and agg.get("runs") and key in kind.sum_keys else "n/a"
                     for _, key, fmt in kind.columns]
            ran = f"0/{agg['runs'] if agg else 0}"
        else:
            cells = [fmt(agg.get(key)) for _, key, fmt in kind.columns]
            ran = f"{agg['runs_ok']}/{agg['runs']}"
        lines.append(f"| {name} | " + " | ".join(cells) + f" | {ran} |")
    lines.append("")
    pairs = ratio_pairs(scenario, servers) if kind.ratios else []
    if pairs:
        with_targets = bool(scenario.targets)
        first_label, first_key = kind.ratios[0]
        labels = [label for label, _ in kind.ratios] + [f"{first_label} by round"]
        lines.append("| ratio | " + " | ".join(labels) + (" | target |" if with_targets else " |"))
        lines.append("| --- | " + " | ".join("---:" for _ in labels) + (" | --- |" if with_targets else " |"))
        any_flagged = False
        for subject, base in pairs:
            mine = aggregates.get(subject) or {}
            other = aggregates.get(base) or {}
            flagged = bool(mine.get("problem_runs") or other.get("problem_runs"))
            values = {}
            for _, key in kind.ratios:
                a = mine.get(key) if mine.get("runs_ok") else None
                b = other.get(key) if other.get("runs_ok") else None
                values[key] = a / b if a is not None and b else None
            any_flagged = any_flagged or (flagged and any(v is not None for v in values.values()))
            cells = [_ratio(values[key], 1) + (" (!)" if flagged and values[key] is not None else "")
                     for _, key in kind.ratios]
            cells.append(_by_round_cell(first_key, mine, other))
            row = f"| {subject}/{base} | " + " | ".join(cells) + " |"
            if with_targets:
                row += f" {_target_cell(scenario, kind, subject, base, values, flagged, smoke)} |"
            lines.append(row)
        lines.append("")
        if any_flagged:
            errors = ("any non-2xx or socket error" if scenario.error_budget == 0
                      else f"non-2xx or socket errors over {scenario.error_budget * 100:g}%")
            lines.append(f"(!) one of the two servers had a run with errors ({errors}, or a failed run; see "
                         "Notes): that ratio does not compare like with like.")
            lines.append("")
    if any(notes.values()):
        lines.append("Notes:")
        for name in servers:
            for note in notes.get(name, []):
                lines.append(f"- **{name}**: {note}")
        lines.append("")
    return "\n".join(lines)


def document(title, info, settings, sections, failures):
    lines = [f"# {title}", ""]
    lines += [f"- **{k}**: {v}" for k, v in info.items()]
    lines += [f"- **{k}**: {v}" for k, v in settings.items()]
    lines.append("")
    if failures:
        lines.append("**Failures and problems** (details in the scenario notes):")
        lines += [f"- {f}" for f in failures]
        lines.append("")
    lines.append("Medians over the measured rounds; counts are totals over them. Columns: see bench/README.md.")
    lines.append("")
    return "\n".join(lines) + "\n" + "\n".join(sections)


def write_atomically(path, text):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        f.write(text)
    os.replace(tmp, path)
