"""The benchmark scenarios: one line each.

To add a scenario, add a Scenario(...) to SCENARIOS. `kind` picks how it is
measured and which columns its table has (see measurements.py: "wrk" for
closed-loop throughput/latency, "idle" for memory per held connection,
"fixed_rate" for latency at a fixed request rate). Scenarios that need the
servers configured differently (auth, TLS, HTTP/2) can use `options`, which
is handed to every server's configure() together with the scenario:
{"tls": True} makes every server listen with TLS (tls_setup.py), and
{"http2": True} adds HTTP/2 (ALPN h2) on that listener.

`servers` names the servers a scenario runs (default: the five standard
ones; the Gatehouse variants such as gatehouse-keyauth or gatehouse-rl-redis
are in servers.SERVER_CLASSES), `--servers` narrows that further. Ratios: by default
gatehouse / nginx, haproxy-http and direct; with `ratio_base` every other
server of the scenario / that one. `targets` are minimum ratios to show
(met or not) next to them, as (server, ratio key, minimum) for every row of
that server, or ("server/base", key, minimum) for one row (e.g.
"gatehouse/nginx"); they never fail a run. `error_budget` is the share
of non-2xx/socket errors a run may have before it counts as a problem (its
ratios flagged, targets not judged, --smoke failed); 0 allows none.
"""

from dataclasses import dataclass, field

STANDARD_SERVERS = ("direct", "haproxy-tcp", "nginx", "haproxy-http", "gatehouse")
# The TLS scenarios: each terminates TLS and proxies plain HTTP/1.1 to the backend
# (haproxy-http is HAProxy mode http with an ssl bind).
TLS_SERVERS = ("nginx", "haproxy-http", "gatehouse")


@dataclass(frozen=True)
class Scenario:
    id: int
    name: str
    title: str
    kind: str                      # "wrk" | "idle" | "fixed_rate" | "wrk_tls" | "h2load" (measurements.KINDS)
    path: str = "/"
    connections: int = 64          # client connections in a full run
    smoke_connections: int = 8     # ... and in --smoke
    script: str = ""               # wrk Lua script, relative to bench/
    rate: int = 0                  # fixed_rate: requests per second
    fresh_stack_per_round: bool = False  # restart every server before each round
    warmup: bool = True            # one unmeasured run per server before round 1
    options: dict = field(default_factory=dict)  # extra server configuration
    servers: tuple = STANDARD_SERVERS  # which servers run it (rounds go in servers.SERVER_NAMES order)
    ratio_base: str = ""           # "": gatehouse vs nginx, haproxy-http, direct; else every server vs this one
    targets: tuple = ()            # (server, ratio key, minimum), e.g. ("gatehouse-jwt", "rps", 0.9)
    error_budget: float = 0.01     # share of non-2xx/socket errors above which a run is a problem (0: any)
    headers: tuple = ()            # (name, value) pairs every client request carries, e.g. Connection: close
    streams: int = 1               # h2load: concurrent streams per connection (-m)


SCENARIOS = [
    Scenario(1, "get-small", "GET small JSON, 64 connections", "wrk"),
    Scenario(2, "post-1k", "POST with a 1 KiB body, 64 connections", "wrk", script="post_1k.lua"),
    Scenario(3, "get-1m", "GET a 1 MiB response, 64 connections", "wrk", path="/big"),
    Scenario(4, "get-small-256c", "GET small JSON, 256 connections", "wrk", connections=256, smoke_connections=16),
    Scenario(5, "idle-10k", "10,000 idle keep-alive connections: memory per connection", "idle",
             connections=10000, smoke_connections=200, fresh_stack_per_round=True, warmup=False),
    Scenario(6, "added-latency", "Added latency at a fixed 1,000 req/s over 4 connections", "fixed_rate",
             rate=1000, connections=4, smoke_connections=4),
    Scenario(7, "auth", "GET small JSON through key auth and JWT RS256 (repeated token), 64 connections", "wrk",
             servers=("gatehouse", "gatehouse-keyauth", "gatehouse-jwt"), ratio_base="gatehouse",
             targets=(("gatehouse-keyauth", "rps", 0.95), ("gatehouse-jwt", "rps", 0.9))),
    # The limit is never reached (servers.RATE_LIMIT), so a single 429 (or a 503
    # from Redis) means the run did not measure what it claims: no error budget.
    Scenario(8, "ratelimit", "GET small JSON through a local and a Redis rate limit that is never reached, "
             "64 connections", "wrk",
             servers=("gatehouse", "gatehouse-rl-local", "gatehouse-rl-redis"), ratio_base="gatehouse",
             targets=(("gatehouse-rl-local", "rps", 0.95), ("gatehouse-rl-redis", "rps", 0.6)), error_budget=0.0),
    # TLS (tls_setup.py): one ECDSA P-256 certificate made per run; every client
    # offers only TLS 1.3 / TLS_AES_128_GCM_SHA256 / X25519 and every run checks
    # that this is what was negotiated. wrk goes through tls_client_shim.c,
    # which also stops it from resuming sessions (wrk would: bench/NOTES.md).
    Scenario(9, "tls-handshake", "New TLS connections per second: a full TLS 1.3 handshake and one GET each, "
             "64 connections", "wrk_tls", headers=(("Connection", "close"),), options={"tls": True},
             servers=TLS_SERVERS,
             # wrk is the limit here (bench/README.md): also judge handshakes per second of server CPU.
             targets=(("gatehouse/nginx", "rps", 1.0), ("gatehouse/nginx", "rps_per_cpu", 1.0))),
    Scenario(10, "tls-keepalive", "GET small JSON over HTTP/1.1 + TLS 1.3, keep-alive, 64 connections", "wrk_tls",
             options={"tls": True}, servers=TLS_SERVERS, targets=(("gatehouse/nginx", "rps", 1.0),)),
    Scenario(11, "h2-100streams", "GET small JSON over HTTP/2 + TLS 1.3, 4 connections x 100 concurrent streams",
             "h2load", connections=4, smoke_connections=4, streams=100,
             options={"tls": True, "http2": True, "upstream_keepalive": 512},
             servers=TLS_SERVERS, targets=(("gatehouse/nginx", "rps", 1.0),)),
]


def select(spec):
    """Scenarios named by a comma-separated list of ids or names ("1,3", "get-1m")."""
    if not spec:
        return list(SCENARIOS)
    chosen = []
    for item in spec.split(","):
        item = item.strip()
        match = [s for s in SCENARIOS if str(s.id) == item or s.name == item]
        if not match:
            known = ", ".join(f"{s.id}={s.name}" for s in SCENARIOS)
            raise ValueError(f"unknown scenario {item!r} (known: {known})")
        if match[0] not in chosen:
            chosen.append(match[0])
    return sorted(chosen, key=lambda s: s.id)
