"""Where a one-hop request's CPU goes, against issue 21's sketch, under concurrency.

``python -m benchmarks.onehop_costs [--clients 16] [--seconds 1] [--rounds 7]`` runs, in
one process on one uvloop loop, ``--clients`` concurrent request loops (each sends the
next request when its response is complete, as wrk's keep-alive connections do) against
each variant below, interleaved in rotated order. Per run: the process's CPU time per
request (all threads) and its context switches per request (voluntary and involuntary,
summed over its threads from ``/proc/self/task``); medians, ranges and the per-round
ratio to the sketch at the end. No network and no server: what is left is the app's
own cost, which is what separates the stack from the sketch end to end.

Variants, all ``startproject``'s ``MIDDLEWARE`` and the sync view:

- ``sketch``: :mod:`benchmarks.sketch`, one ``run_in_executor`` on a one-thread pool;
- ``onehop``: the stack's one-hop path (:class:`middleware_stack.onehop.OneHop`) called
  without the boundary: with no lease its hop is asgiref's thread-sensitive
  ``SyncToAsync`` with no request context, so every request's hop queues on asgiref's
  one shared thread;
- ``stack``: ``build_stack(django, [])``, what uvicorn serves in the e2e comparison;
  a request waits for a busy hop's worker (the hop queue);
- ``stack-shared``: the same, but every request enters ``ThreadSensitiveContext`` with
  ONE shared worker (the hops queue on a thread that stays busy, as in the sketch).
  An experiment, not a mode: requests whose sync calls interleave on one thread
  (streaming responses) would share its database connections;
- ``stack-nolistener``: ``stack`` without the disconnect listener task (no disconnect
  handling; an experiment);
- ``stack-pool1``, ``stack-pool4``: ``stack`` at ``ASGI_THREAD_POOL_MAX`` 1 and 4;
- ``stack-noq``: ``stack`` without the hop queue (:mod:`middleware_stack.hopqueue`):
  each request in flight wakes a pooled thread of its own.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import time
import types
from typing import Any

SCOPE: dict[str, Any] = {
    "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "GET",
    "scheme": "http", "path": "/sync/", "raw_path": b"/sync/", "query_string": b"",
    "root_path": "", "headers": [(b"host", b"127.0.0.1:8000"), (b"user-agent", b"wrk")],
    "client": ("127.0.0.1", 5000), "server": ("127.0.0.1", 8000),
}  # fmt: skip

VARIANTS = (
    "sketch", "onehop", "stack", "stack-shared", "stack-nolistener", "stack-pool1", "stack-pool4",
    "stack-noq",
)  # fmt: skip


def _switches() -> int:
    total = 0
    for tid in os.listdir("/proc/self/task"):
        try:
            with open(f"/proc/self/task/{tid}/status") as status:
                total += sum(int(line.split()[1]) for line in status if "ctxt_switches" in line)
        except OSError:
            continue  # a thread that ended meanwhile
    return total


async def _serve_without_listener(
    self: Any, scope: Any, receive: Any, send: Any, lease: Any = None
) -> None:
    """OneHop.serve without the disconnect listener task (and what only it needs)."""
    from middleware_stack import hopcall
    from middleware_stack.onehop import _Request
    from middleware_stack.response import lowercase_headers

    handler = self.handler
    body_file = await handler.read_body(receive)
    state = _Request()
    lean = lease if lease is not None and hopcall.usable() else None
    try:
        if lean is not None:
            response = await hopcall.call(lean, self._run, state, scope, body_file)
        else:
            response = await self._hop(state, scope, body_file)
        if state.start is None:
            await handler.send_response(response, lowercase_headers(send))
        else:
            await send(state.start)
            await self._send_content(response.content, send)
    finally:
        state.working = False
        await self._finish(state, lean)
        body_file.close()


def build(name: str) -> Any:
    from asgiref.sync import ThreadSensitiveContext

    from benchmarks.apps import build_app
    from middleware_stack.threads import WorkerExecutor

    if name == "sketch":
        return build_app("sketch-mw")
    if name == "stack-noq":
        return build_app("S0-mw-noq")
    stack = build_app("S0-mw")
    boundary = stack.boundary  # type: ignore[attr-defined]
    if name == "onehop":
        return boundary.onehop
    if name == "stack-shared":
        shared = WorkerExecutor()

        async def pooled(app: Any, scope: Any, receive: Any, send: Any, per_call: bool) -> None:
            async with ThreadSensitiveContext(executor=shared):  # type: ignore[call-arg,unused-ignore]
                await app.serve(scope, receive, send, shared)  # its push takes the hop

        boundary._pooled = pooled
    elif name.startswith("stack-pool"):
        boundary.pool.max_threads = int(name.removeprefix("stack-pool"))
    elif name == "stack-nolistener":
        boundary.onehop.serve = types.MethodType(_serve_without_listener, boundary.onehop)
    return stack


async def _one(app: Any) -> bool:
    """One request, a client that disconnects only once the response is complete."""
    finished = asyncio.Event()
    given = False
    status: list[int] = []

    async def receive() -> dict[str, Any]:
        nonlocal given
        if not given:
            given = True
            return {"type": "http.request", "body": b"", "more_body": False}
        await finished.wait()
        return {"type": "http.disconnect"}

    async def send(message: dict[str, Any]) -> None:
        if message["type"] == "http.response.start":
            status.append(message["status"])
        elif not message.get("more_body"):
            finished.set()

    await app(dict(SCOPE), receive, send)
    finished.set()
    return status == [200]


async def _client(app: Any, stop: list[bool], done: list[int], bad: list[int]) -> None:
    while not stop[0]:
        ok = await _one(app)
        done[0] += 1
        bad[0] += not ok


async def _measure(app: Any, clients: int, seconds: float) -> tuple[float, float, float, int]:
    stop, done, bad = [False], [0], [0]
    tasks = [asyncio.ensure_future(_client(app, stop, done, bad)) for _ in range(clients)]
    cpu0, wall0, sw0 = time.process_time(), time.perf_counter(), _switches()
    await asyncio.sleep(seconds)
    stop[0] = True
    await asyncio.gather(*tasks)
    n = max(done[0], 1)
    cpu, wall, sw = time.process_time() - cpu0, time.perf_counter() - wall0, _switches() - sw0
    return cpu / n * 1e6, n / wall, sw / n, bad[0]


async def run(names: list[str], clients: int, seconds: float, rounds: int) -> None:
    apps = {name: build(name) for name in names}
    for name in names:  # warm-up: first-request imports, threads started
        await _measure(apps[name], clients, seconds / 2)
    runs: dict[str, list[tuple[float, float, float, int]]] = {name: [] for name in names}
    for r in range(rounds):
        k = r % len(names)
        for name in names[k:] + names[:k]:
            runs[name].append(await _measure(apps[name], clients, seconds))
    base = runs.get("sketch")
    for name in names:
        cpu = [x[0] for x in runs[name]]
        line = (
            f"{name:17s} cpu/request {statistics.median(cpu):5.0f} µs [{min(cpu):.0f}-"
            f"{max(cpu):.0f}]  req/s {statistics.median(x[1] for x in runs[name]):6.0f}  "
            f"switches/request {statistics.median(x[2] for x in runs[name]):5.2f}"
        )
        if base is not None and name != "sketch":
            ratios = [a[0] / b[0] for a, b in zip(runs[name], base, strict=True)]
            line += (
                f"  cpu / sketch {statistics.median(ratios):.2f}x "
                f"[{min(ratios):.2f}-{max(ratios):.2f}]"
            )
        if any(x[3] for x in runs[name]):
            line += f"  WRONG RESPONSES: {sum(x[3] for x in runs[name])}"
        print(line, flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--seconds", type=float, default=1.0)
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--only", default=",".join(VARIANTS))
    ns = parser.parse_args()
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "benchmarks.django_settings")
    import django
    import uvloop

    django.setup(set_prefix=False)
    names = [n for n in ns.only.split(",") if n]
    unknown = set(names) - set(VARIANTS)
    if unknown:
        raise SystemExit(f"unknown variants {sorted(unknown)}; choose from {VARIANTS}")
    uvloop.run(run(names, ns.clients, ns.seconds, ns.rounds))


if __name__ == "__main__":
    main()
