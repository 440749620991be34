"""Interleaved rounds of the end-to-end WSGI comparison alone, with what explains them.

``python -m benchmarks.e2e_ab [--rounds N] [--seconds S] [--only NAME,...]`` starts the
WSGI comparison's servers (:data:`benchmarks.e2e.WSGI_SERVERS`) once, then loads each
in turn, order rotated per round, with ``wrk -t1 -c16``. Beside req/s and p99 it
reports, per run: the server's CPU per request, ``wrk``'s own CPU per request (it
shares the cores), and how the load spread over the server's worker processes (CPU
seconds per process and the established connections each held), since a two-worker
server whose keep-alive connections all land on one worker runs on one core. Medians
and ranges over the rounds at the end; ``--json PATH`` keeps every run.

A diagnosis tool for issue 21's targets; ``python -m benchmarks`` is what publishes.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

from benchmarks.driver import Request
from benchmarks.e2e import (
    WRK,
    WSGI_CONNECTIONS,
    WSGI_ENDPOINTS,
    Server,
    _wrk_args,
    check_endpoint,
    parse_wrk,
)
from benchmarks.targets import UVICORN_MW


def _proc_cpu(pid: int) -> float:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _connections(pids: list[int], port: int) -> dict[int, int]:
    """Established TCP connections on ``port`` held by each of ``pids`` (from ``ss``)."""
    out = subprocess.run(
        ["ss", "-Htnp", "state", "established", f"( sport = :{port} )"],
        capture_output=True, text=True, check=False,
    ).stdout  # fmt: skip
    counts = dict.fromkeys(pids, 0)
    for pid in pids:
        counts[pid] = out.count(f"pid={pid},")
    return counts


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


#: Rows only this tool runs: what the hop queue (middleware_stack.hopqueue) gains.
AB_ENDPOINTS = ((f"{UVICORN_MW}, no hop queue", "uvicorn -w2 S0-mw-noq", Request(path="/sync/")),)


def run(rounds: int, seconds: float, only: list[str] | None) -> dict[str, Any]:
    endpoints = [
        e for e in (*WSGI_ENDPOINTS, *AB_ENDPOINTS) if not only or any(o in e[0] for o in only)
    ]
    runs: dict[str, list[dict[str, Any]]] = {name: [] for name, _, _ in endpoints}
    with tempfile.TemporaryDirectory(prefix="bench-ab-") as tmp:
        servers = {srv: Server(srv, Path(tmp)) for _, srv, _ in endpoints}
        try:
            for name, srv, request in endpoints:
                server = servers[srv]
                why = server.wait_ready()
                problems = [why] if why else check_endpoint(server.port, request)
                for _ in range(10):
                    if not problems:
                        break
                    time.sleep(1)
                    problems = check_endpoint(server.port, request)
                if problems:
                    raise SystemExit(f"{name}: {problems}\n{server.output()[-2000:]}")
            for _name, srv, request in endpoints:  # warm-up
                args = _wrk_args(servers[srv].port, request, None, 2, WSGI_CONNECTIONS)
                subprocess.run(args, capture_output=True, check=False)
            for r in range(rounds):
                k = r % len(endpoints)
                for name, srv, request in endpoints[k:] + endpoints[:k]:
                    server = servers[srv]
                    pids = server.pids()
                    before = {pid: _proc_cpu(pid) for pid in pids}
                    cpu0, wrk0 = server.cpu_seconds(), _children_cpu()
                    args = _wrk_args(server.port, request, None, seconds, WSGI_CONNECTIONS)
                    proc = subprocess.Popen(args, stdout=subprocess.PIPE, text=True)
                    time.sleep(min(1.0, seconds / 2))
                    conns = _connections(pids, server.port)
                    out, _ = proc.communicate()
                    wrk_cpu = _children_cpu() - wrk0
                    cpu = server.cpu_seconds() - cpu0
                    got = parse_wrk(out)
                    n = got.get("requests") or 1
                    got["cpu_us"] = cpu / n * 1e6
                    got["wrk_cpu_us"] = wrk_cpu / n * 1e6
                    got["per_process_cpu_s"] = {
                        str(pid): round(_proc_cpu(pid) - before.get(pid, 0.0), 2) for pid in pids
                    }
                    got["per_process_conns"] = {str(p): c for p, c in conns.items() if c}
                    runs[name].append(got)
                    print(
                        f"round {r + 1} {name:45s} {got.get('rps', 0):8.0f} req/s "
                        f"p99 {got.get('p99_ms', 0):6.1f} ms  cpu {got['cpu_us']:5.0f} µs  "
                        f"wrk {got['wrk_cpu_us']:4.0f} µs  procs {got['per_process_cpu_s']} "
                        f"conns {got['per_process_conns']}  errors "
                        f"{got.get('non_2xx', 0) + got.get('socket_errors', 0)}",
                        flush=True,
                    )
        finally:
            for server in servers.values():
                server.stop()
    return runs


def summary(runs: dict[str, list[dict[str, Any]]]) -> None:
    def med(name: str, key: str) -> tuple[float, float, float]:
        values = [r[key] for r in runs[name] if key in r]
        return statistics.median(values), min(values), max(values)

    base = next((n for n in runs if n.startswith("gunicorn sync")), None)
    for name in runs:
        rps, lo, hi = med(name, "rps")
        p99 = med(name, "p99_ms")[0]
        line = (
            f"{name:45s} req/s {rps:7.0f} [{lo:.0f}-{hi:.0f}]  p99 {p99:5.1f} ms  "
            f"cpu/req {med(name, 'cpu_us')[0]:5.0f} µs  wrk/req {med(name, 'wrk_cpu_us')[0]:4.0f} µs"
        )
        if base and name != base:
            ratios = [a["rps"] / b["rps"] for a, b in zip(runs[name], runs[base], strict=False)]
            line += (
                f"  /sync {statistics.median(ratios):.2f}x [{min(ratios):.2f}-{max(ratios):.2f}]"
            )
        print(line)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--seconds", type=float, default=5)
    parser.add_argument("--only", default="", help="comma-separated parts of endpoint names")
    parser.add_argument("--json", default="")
    ns = parser.parse_args()
    if not os.path.exists(WRK):
        raise SystemExit(f"wrk not found at {WRK}")
    runs = run(ns.rounds, ns.seconds, [o for o in ns.only.split(",") if o] or None)
    summary(runs)
    if ns.json:
        Path(ns.json).write_text(json.dumps(runs, indent=1))


if __name__ == "__main__":
    main()
