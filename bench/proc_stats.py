"""Reads CPU time and memory of server processes from /proc (Linux only)."""

import os
import time

CLK_TCK = os.sysconf("SC_CLK_TCK")


def _children(pid):
    kids = []
    try:
        tasks = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return kids
    for tid in tasks:
        try:
            with open(f"/proc/{pid}/task/{tid}/children") as f:
                kids.extend(int(x) for x in f.read().split())
        except OSError:
            pass
    return kids


def process_tree(pid):
    """pid and all its descendants (an nginx master and its workers)."""
    seen, todo = [], [pid]
    while todo:
        p = todo.pop()
        if p in seen or not os.path.exists(f"/proc/{p}"):
            continue
        seen.append(p)
        todo.extend(_children(p))
    return seen


def _stat_fields(pid):
    """/proc/PID/stat fields after "(comm)" (state first), or None if the process is gone.
    utime is rest[11], stime rest[12], start time rest[19]."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            data = f.read()
    except OSError:
        return None
    return data[data.rindex(")") + 2:].split()


def cpu_ticks(pids):
    """utime + stime of every thread of the given processes, in clock ticks."""
    total = 0
    for pid in pids:
        rest = _stat_fields(pid)
        if rest is not None:
            total += int(rest[11]) + int(rest[12])
    return total


def ticks_to_us(ticks):
    return ticks * 1_000_000 / CLK_TCK


def cpu_busy_ticks(cpu):
    """(busy, total) clock ticks of one CPU since boot, from /proc/stat: busy is
    user + nice + system + irq + softirq + steal (all but idle and iowait), or
    None when there is no such CPU."""
    if cpu is None:
        return None
    prefix = f"cpu{cpu} "
    with open("/proc/stat") as f:
        for line in f:
            if line.startswith(prefix):
                v = [int(x) for x in line.split()[1:9]]
                user, nice, system, idle, iowait, irq, softirq, steal = v
                busy = user + nice + system + irq + softirq + steal
                return busy, busy + idle + iowait
    return None


def busy_percent(before, after):
    """Percent of the time the CPU was busy between two cpu_busy_ticks() readings."""
    if before is None or after is None or after[1] <= before[1]:
        return None
    return 100.0 * (after[0] - before[0]) / (after[1] - before[1])


def rss_kib(pids):
    """Sum of VmRSS (KiB) of the given processes."""
    total = 0
    for pid in pids:
        try:
            with open(f"/proc/{pid}/status") as f:
                for line in f:
                    if line.startswith("VmRSS:"):
                        total += int(line.split()[1])
                        break
        except OSError:
            continue
    return total


def _all_ticks():
    """{pid: (start time, utime + stime)} for every process on the machine."""
    out = {}
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        rest = _stat_fields(name)
        if rest is not None:
            out[int(name)] = (int(rest[19]), int(rest[11]) + int(rest[12]))
    return out


def _uptime_ticks():
    with open("/proc/uptime") as f:
        return float(f.read().split()[0]) * CLK_TCK


class OtherCpu:
    """CPU used by processes that are not the harness or its descendants
    (other people's builds and benchmarks on a shared machine) between
    start() and stop(), in percent of one CPU. Processes that both start and
    exit in between are missed, so this is a lower bound."""

    def start(self):
        self.t0 = time.monotonic()
        self.boot_ticks0 = _uptime_ticks()
        self.before = _all_ticks()

    def stop(self):
        after = _all_ticks()
        ours = set(process_tree(os.getpid()))
        ticks = 0
        for pid, (start, t) in after.items():
            if pid in ours:
                continue
            prev = self.before.get(pid)
            if prev and prev[0] == start:
                ticks += t - prev[1]
            elif start >= self.boot_ticks0 - 1:  # started during the window
                ticks += t
        wall = max(time.monotonic() - self.t0, 1e-3)
        return 100.0 * ticks / CLK_TCK / wall
