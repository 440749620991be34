"""The end-to-end part: each configuration served by uvicorn, loaded by ``wrk``.

One uvicorn process per configuration (one worker; uvloop and httptools when
importable), all started up front on 127.0.0.1 and left idle while another is loaded.
Every endpoint is checked with one real HTTP request (status and key headers) before
any load. Then ``rounds`` rounds, each loading every endpoint once in an order rotated
by one per round, with ``wrk -t1 -c32 -d<N>s --latency``. Per run: req/s, p50 and p99
latency, server CPU per request (utime+stime from ``/proc/<pid>/stat``, summed over the
server's processes) and server RSS. A run with non-2xx responses or socket errors is a
failure.

With ``wsgi=True`` (the full mode), the same rounds also load the WSGI comparison of
issue 21, all with ``startproject``'s ``MIDDLEWARE`` and a sync view, two worker
processes each, ``wrk -c16``: gunicorn sync (``-w 2``) and gunicorn gthread
(``-w 2 --threads 4``) serving Django's ``WSGIHandler`` (:mod:`benchmarks.serve_wsgi`),
and uvicorn ``--workers 2`` serving ``build_stack(get_asgi_application(), [])``.
"""

from __future__ import annotations

import http.client
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from benchmarks import apps
from benchmarks.apps import ORIGIN
from benchmarks.cases import API, CORS_PRE, PREFLIGHT, STACKED
from benchmarks.driver import Request
from benchmarks.targets import (
    GUNICORN_GTHREAD,
    GUNICORN_SYNC,
    UVICORN_MW,
    UVICORN_MW_T1,
    UVICORN_SKETCH,
)

WRK = "/usr/bin/wrk"
ROOT = Path(__file__).resolve().parent.parent

#: (endpoint name, server, request)
ENDPOINTS: tuple[tuple[str, str, Request], ...] = (
    ("B", "B", Request(headers=API)),
    ("A", "A", Request(headers=API)),
    ("S0", "S0", Request(headers=API)),
    ("S", "S", Request(headers=API, expect=STACKED)),
    ("H", "H", Request(headers=API, expect=STACKED)),
    ("D", "D", Request(headers=API, expect={"access-control-allow-origin": ORIGIN})),
    ("E", "E", Request(headers=API)),
    ("S preflight", "S", Request("OPTIONS", "/async/", PREFLIGHT, status=204, expect=CORS_PRE)),
    ("D preflight", "D", Request("OPTIONS", "/async/", PREFLIGHT, status=200, expect=CORS_PRE)),
)

#: The WSGI comparison's servers: name -> (command after ``python -m``, BENCH_APP).
WSGI_SERVERS: dict[str, tuple[list[str], str]] = {
    "uvicorn -w2 S0-mw": (["uvicorn", "benchmarks.serve:application", "--workers", "2"], "S0-mw"),
    "uvicorn -w2 S0-mw-t1": (["uvicorn", "benchmarks.serve:application", "--workers", "2"],
                             "S0-mw-t1"),
    "uvicorn -w2 S0-mw-noq": (["uvicorn", "benchmarks.serve:application", "--workers", "2"],
                              "S0-mw-noq"),
    "uvicorn -w2 sketch-mw": (["uvicorn", "benchmarks.serve:application", "--workers", "2"],
                              "sketch-mw"),
    "gunicorn sync -w2": (["gunicorn", "benchmarks.serve_wsgi:application", "-w", "2",
                           "-k", "sync"], ""),
    "gunicorn gthread -w2 -t4": (["gunicorn", "benchmarks.serve_wsgi:application", "-w", "2",
                                  "-k", "gthread", "--threads", "4"], ""),
}  # fmt: skip

WSGI_ENDPOINTS: tuple[tuple[str, str, Request], ...] = (
    (UVICORN_MW, "uvicorn -w2 S0-mw", Request(path="/sync/")),
    (UVICORN_MW_T1, "uvicorn -w2 S0-mw-t1", Request(path="/sync/")),
    (UVICORN_SKETCH, "uvicorn -w2 sketch-mw", Request(path="/sync/")),
    (GUNICORN_SYNC, "gunicorn sync -w2", Request(path="/sync/")),
    (GUNICORN_GTHREAD, "gunicorn gthread -w2 -t4", Request(path="/sync/")),
)

#: wrk connections for the WSGI comparison (issue 21's anchors were taken with -c16).
WSGI_CONNECTIONS = 16

PREFLIGHT_LUA = """-- a CORS preflight, as a browser sends it
wrk.method = "OPTIONS"
{headers}
"""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _server_flags() -> tuple[list[str], str]:
    flags, names = [], []
    for module, flag in (("uvloop", ["--loop", "uvloop"]), ("httptools", ["--http", "httptools"])):
        try:
            __import__(module)
        except ImportError:
            continue
        flags += flag
        names.append(module)
    return flags, "+".join(names) or "asyncio+h11"


class Server:
    """One uvicorn process serving ``BENCH_APP=name``."""

    def __init__(self, name: str, log_dir: Path) -> None:
        self.name = name
        self.port = _free_port()
        flags, _ = _server_flags()
        app = WSGI_SERVERS[name][1] if name in WSGI_SERVERS else name
        env = {
            **os.environ,
            "BENCH_APP": app,
            "DJANGO_SETTINGS_MODULE": "benchmarks.django_settings",
            "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]),
        }
        self.log = open(log_dir / f"uvicorn-{name.replace('/', '_')}.log", "w+b")  # noqa: SIM115
        if name not in WSGI_SERVERS:
            argv = ["uvicorn", "benchmarks.serve:application", "--workers", "1"]
        else:
            argv = WSGI_SERVERS[name][0]
        if argv[0] == "uvicorn":
            argv = [*argv, "--host", "127.0.0.1", "--port", str(self.port), "--lifespan", "off",
                    "--no-access-log", "--log-level", "warning", *flags]  # fmt: skip
        else:
            argv = [*argv, "-b", f"127.0.0.1:{self.port}", "--log-level", "warning"]
        self.proc = subprocess.Popen(
            [sys.executable, "-m", *argv],
            env=env, cwd=ROOT, stdout=self.log, stderr=subprocess.STDOUT,
        )  # fmt: skip

    def wait_ready(self, timeout: float = 60.0) -> str | None:
        """None when it accepts connections; otherwise why not."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                return f"uvicorn exited with {self.proc.returncode}: {self.output()[-800:]}"
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.5).close()
                return None
            except OSError:
                time.sleep(0.1)
        return f"not listening after {timeout:.0f} s"

    def output(self) -> str:
        self.log.flush()
        self.log.seek(0)
        return self.log.read().decode(errors="replace")

    def pids(self) -> list[int]:
        """The server process and its descendants (workers of a multi-process server)."""
        children: dict[int, list[int]] = {}
        for stat in Path("/proc").glob("[0-9]*/stat"):
            try:
                fields = stat.read_text().rpartition(")")[2].split()
            except OSError:
                continue
            children.setdefault(int(fields[1]), []).append(int(stat.parent.name))
        out, todo = [], [self.proc.pid]
        while todo:
            pid = todo.pop()
            out.append(pid)
            todo += children.get(pid, [])
        return out

    def cpu_seconds(self) -> float:
        """utime+stime of the server's processes (including reaped children's)."""
        total = 0
        for pid in self.pids():
            try:
                fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
            except OSError:
                continue
            total += sum(int(f) for f in fields[11:15])
        return total / os.sysconf("SC_CLK_TCK")

    def cpu_by_process(self) -> dict[int, float]:
        """utime+stime of each of the server's processes (not reaped children's)."""
        out: dict[int, float] = {}
        for pid in self.pids():
            try:
                fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
            except OSError:
                continue
            out[pid] = (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
        return out

    def rss_mb(self) -> float:
        """Resident memory of the server's processes, summed."""
        kib = 0
        for pid in self.pids():
            try:
                lines = Path(f"/proc/{pid}/status").read_text().splitlines()
            except OSError:
                continue
            kib += sum(int(x.split()[1]) for x in lines if x.startswith("VmRSS:"))
        return kib / 1024 if kib else float("nan")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()


def check_endpoint(port: int, request: Request) -> list[str]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        conn.request(request.method, request.path, headers=dict(request.headers))
        resp = conn.getresponse()
        resp.read()
        headers = [(k.encode("latin-1"), v.encode("latin-1")) for k, v in resp.getheaders()]
        return request.problems(resp.status, headers)
    except OSError as exc:
        return [f"request failed: {exc}"]
    finally:
        conn.close()


_UNITS = {"us": 1e-3, "ms": 1.0, "s": 1e3, "m": 60e3}


def parse_wrk(text: str) -> dict[str, Any]:
    """req/s, p50/p99 (ms), request and error counts from ``wrk --latency`` output."""
    out: dict[str, Any] = {}
    if m := re.search(r"Requests/sec:\s+([\d.]+)", text):
        out["rps"] = float(m.group(1))
    if m := re.search(r"(\d+) requests in ([\d.]+)(\w+)", text):
        out["requests"] = int(m.group(1))
    for pct, key in (("50", "p50_ms"), ("99", "p99_ms")):
        if m := re.search(rf"^\s*{pct}(?:\.0+)?%\s+([\d.]+)(us|ms|s|m)\s*$", text, re.M):
            out[key] = float(m.group(1)) * _UNITS[m.group(2)]
    m = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", text)
    out["socket_errors"] = sum(int(g) for g in m.groups()) if m else 0
    m = re.search(r"Non-2xx or 3xx responses: (\d+)", text)
    out["non_2xx"] = int(m.group(1)) if m else 0
    return out


def _wrk_args(
    port: int, request: Request, script: Path | None, seconds: float, connections: int = 32
) -> list[str]:
    args = [WRK, "-t1", f"-c{connections}", f"-d{seconds:g}s", "--latency"]
    if script is not None:
        args += ["-s", str(script)]
    else:
        for k, v in request.headers:
            args += ["-H", f"{k}: {v}"]
    return [*args, f"http://127.0.0.1:{port}{request.path}"]


def _lua(request: Request, directory: Path) -> Path:
    lines = "\n".join(f'wrk.headers["{k}"] = "{v}"' for k, v in request.headers)
    path = directory / "preflight.lua"
    path.write_text(PREFLIGHT_LUA.format(headers=lines))
    return path


def run_e2e(
    *,
    seconds: float,
    rounds: int,
    wsgi: bool = False,
    progress: Callable[[str], None] = lambda s: None,
) -> dict[str, Any]:
    """Run the end-to-end benchmark (with the WSGI comparison when ``wsgi``); the result."""
    _, server_kind = _server_flags()
    result: dict[str, Any] = {
        "settings": {"seconds": seconds, "rounds": rounds, "connections": 32, "threads": 1,
                     "wsgi_connections": WSGI_CONNECTIONS},
        "server": f"uvicorn 1 worker ({server_kind})",
        "endpoints": {},
        "failures": {},
    }  # fmt: skip
    all_endpoints = ENDPOINTS + (WSGI_ENDPOINTS if wsgi else ())
    if not (os.path.exists(WRK) or shutil.which("wrk")):
        result["unavailable"] = f"wrk not found at {WRK} (Debian package 'wrk')"
        return result
    wrk = WRK if os.path.exists(WRK) else str(shutil.which("wrk"))
    endpoints: dict[str, dict[str, Any]] = {
        name: {"server": srv, "runs": []} for name, srv, _ in all_endpoints
    }
    if not wsgi:
        for name, srv, _ in WSGI_ENDPOINTS:
            endpoints[name] = {"server": srv, "runs": [], "unavailable": "full mode only"}
    result["endpoints"] = endpoints
    servers: dict[str, Server] = {}
    with tempfile.TemporaryDirectory(prefix="bench-e2e-") as tmp:
        tmpdir = Path(tmp)
        try:
            for srv in dict.fromkeys(s for _, s, _ in all_endpoints):
                try:
                    # importable here means importable in the server
                    app = (WSGI_SERVERS[srv][1] or "W-mw") if srv in WSGI_SERVERS else srv
                    apps.build_app(app)
                except apps.Unavailable as exc:
                    for name, s, _ in all_endpoints:
                        if s == srv:
                            endpoints[name]["unavailable"] = str(exc)
                    continue
                servers[srv] = Server(srv, tmpdir)
            live: list[tuple[str, Server, Request, Path | None]] = []
            for name, srv, request in all_endpoints:
                server = servers.get(srv)
                if server is None:
                    continue
                why = server.wait_ready()
                problems = [why] if why else check_endpoint(server.port, request)
                for _ in range(5):  # a multi-process server's workers may still be booting
                    if not problems or not problems[0].startswith("request failed"):
                        break
                    time.sleep(2)
                    problems = check_endpoint(server.port, request)
                if problems:
                    result["failures"][name] = problems
                    continue
                script = _lua(request, tmpdir) if request.method == "OPTIONS" else None
                live.append((name, server, request, script))
            progress(f"e2e: warming up {len(live)} endpoints")
            for name, server, request, script in live:
                args = _wrk_args(server.port, request, script, 1, _connections(name))
                subprocess.run([wrk, *args[1:]], capture_output=True, timeout=60)
            for r in range(rounds):
                progress(f"e2e: round {r + 1}/{rounds}")
                k = r % len(live) if live else 0
                for name, server, request, script in live[k:] + live[:k]:
                    args = _wrk_args(server.port, request, script, seconds, _connections(name))
                    cpu0, split0 = server.cpu_seconds(), server.cpu_by_process()
                    done = subprocess.run(
                        [wrk, *args[1:]], capture_output=True, text=True, timeout=seconds + 60
                    )
                    cpu = server.cpu_seconds() - cpu0
                    run = parse_wrk(done.stdout)
                    if cpu > 0 and len(split0) > 1:
                        # How the load spread over the workers: the busiest one's share of
                        # the server's CPU (uvicorn's workers share one listening socket,
                        # and one may accept all of wrk's keep-alive connections).
                        split = server.cpu_by_process()
                        busiest = max(split[p] - split0.get(p, 0.0) for p in split)
                        run["busiest_worker_cpu_share"] = round(busiest / cpu, 2)
                    run["round"] = r
                    run["server_rss_mb"] = round(server.rss_mb(), 1)
                    if run.get("requests"):
                        run["cpu_us_per_request"] = round(cpu / run["requests"] * 1e6, 1)
                    endpoints[name]["runs"].append(run)
                    if done.returncode or "rps" not in run:
                        result["failures"].setdefault(name, []).append(
                            f"wrk exited {done.returncode}: {done.stderr.strip()[:300]}"
                        )
                    elif run["non_2xx"] or run["socket_errors"]:
                        result["failures"].setdefault(name, []).append(
                            f"round {r}: {run['non_2xx']} non-2xx responses, "
                            f"{run['socket_errors']} socket errors"
                        )
            for name, server, _, _ in live:
                if server.proc.poll() is not None:
                    result["failures"].setdefault(name, []).append(
                        f"server died: {server.output()[-500:]}"
                    )
        finally:
            for server in servers.values():
                server.stop()
    return result


def _connections(endpoint: str) -> int:
    return WSGI_CONNECTIONS if endpoint in {e[0] for e in WSGI_ENDPOINTS} else 32
