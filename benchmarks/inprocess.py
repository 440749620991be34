"""The in-process part: every configuration in one run, rotated, checked, then timed.

Method, in this order, on one event loop (uvloop when installed):

1. build every application; a layer that is not importable makes its configurations
   "unavailable", any other build error is a failure;
2. check three responses of every case (status and key headers, and for the auth
   layers the identity the app behind them saw); a wrong response is a failure;
3. warm every case up with one untimed batch;
4. ``repeats`` rounds; each round runs one timed batch of every case, in the same
   cyclic order but from a start point that moves by ``cases / repeats`` per round,
   so drift on a shared machine spreads evenly over the cases.
   A sample is the mean µs per request of one batch; every response of every batch is
   counted, and a wrong one is a failure;
5. threads started and thread hand-overs (executor submissions) per request on the
   Django cases, counted over one more batch;
6. memory per in-flight request: ``concurrency`` requests held open in the view at
   once, traced with ``tracemalloc``.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import tracemalloc
import warnings
from collections.abc import Callable
from typing import Any

from benchmarks import apps
from benchmarks.apps import Unavailable
from benchmarks.cases import (  # re-exported: the end-to-end part sends the same requests
    API,
    CASES,
    CORS_GET,
    CORS_PRE,
    MEMORY,
    PREFLIGHT,
    STACKED,
    TIMED_APPS,
    Case,
)
from benchmarks.driver import (
    Exchange,
    Request,
    check,
    count_handovers,
    count_thread_starts,
    summarize,
    timed_batch,
)
from middleware_stack.types import Receive, Scope, Send

__all__ = ["API", "CASES", "CORS_GET", "CORS_PRE", "MEMORY", "PREFLIGHT", "STACKED",
           "TIMED_APPS", "Case", "Run", "new_loop", "run_inprocess"]  # fmt: skip


def new_loop() -> tuple[asyncio.AbstractEventLoop, str]:
    try:
        import uvloop
    except ImportError:
        return asyncio.new_event_loop(), "asyncio"
    from importlib.metadata import version

    return uvloop.new_event_loop(), f"uvloop {version('uvloop')}"


class _Probe:
    """The raw hello app, keeping the last scope it saw."""

    def __init__(self) -> None:
        self.scope: Scope | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        self.scope = scope
        await apps.hello_app(scope, receive, send)


async def _hold_app(scope: Scope, receive: Receive, send: Send) -> None:
    from benchmarks.django_app import Hold

    Hold.arrived += 1
    assert Hold.gate is not None
    await Hold.gate.wait()
    await apps.hello_app(scope, receive, send)


class Run:
    """State of one in-process run; :meth:`result` is what goes into the JSON."""

    def __init__(
        self,
        *,
        n_django: int,
        n_raw: int,
        repeats: int,
        concurrency: int,
        only: tuple[str, ...] | None = None,
        progress: Callable[[str], None] = lambda s: None,
    ) -> None:
        self.n_django = n_django
        self.n_raw = n_raw
        self.repeats = repeats
        self.concurrency = concurrency
        self.progress = progress
        self.cases = [c for c in CASES if only is None or c.name in only]
        self.apps: dict[str, Any] = {}
        self.unavailable: dict[str, str] = {}
        self.failures: dict[str, list[str]] = {}
        self.samples: dict[str, list[float]] = {c.name: [] for c in self.cases}
        self.threads: dict[str, float] = {}
        self.handovers: dict[str, dict[str, float]] = {}
        self.memory: dict[str, dict[str, Any]] = {}
        self.slow: dict[str, bool] = {}
        #: "x,y,base" -> {case: [µs per request, one per round]} (see :meth:`interleave`)
        self.interleaved: dict[str, dict[str, list[float]]] = {}

    def n(self, case: Case) -> int:
        """Requests per batch: Django's count, unless the case is as fast as a raw one
        (a preflight answered before Django), so every batch runs a similar time."""
        return self.n_django if self.slow.get(case.name, case.django) else self.n_raw

    def fail(self, name: str, problem: str) -> None:
        self.failures.setdefault(name, []).append(problem)

    def live(self) -> list[Case]:
        return [c for c in self.cases if c.app in self.apps and c.name not in self.failures]

    def build(self) -> None:
        for name in dict.fromkeys(c.app for c in self.cases):
            try:
                self.apps[name] = apps.build_app(name)
            except Unavailable as exc:
                self.unavailable[name] = str(exc)
            except Exception as exc:
                self.fail(name, f"build raised {type(exc).__name__}: {exc}")

    async def check_all(self) -> None:
        for case in self.cases:
            app = self.apps.get(case.app)
            if app is None:
                continue
            before = apps.RECORDS[0]
            problems = await check(app, case.request)
            if not problems and case.records and apps.RECORDS[0] - before != 3:
                problems.append(f"on_record called {apps.RECORDS[0] - before} times for 3 requests")
            if not problems and case.probe is not None:
                probe = _Probe()
                twin = apps.build_app(case.app, probe)
                problems = await check(twin, case.request, times=1)
                seen = case.probe(probe.scope or {})
                if seen:
                    problems.append(seen)
            for p in problems:
                self.fail(case.name, f"check: {p}")

    async def timed(self, case: Case, n: int) -> float | None:
        app = self.apps[case.app]
        scope = case.request.scope()
        try:
            seconds, bad = await timed_batch(app, scope, n, case.request.status)
        except Exception as exc:
            self.fail(case.name, f"raised {type(exc).__name__}: {exc}")
            return None
        if bad:
            self.fail(case.name, f"{bad} of {n} responses were wrong or unfinished")
            return None
        return seconds / n * 1e6

    async def main(self) -> None:
        try:
            await self._main()
        finally:
            apps.close_pools()

    async def _main(self) -> None:
        self.build()
        await self.check_all()
        live = self.live()
        self.progress(f"warming up {len(live)} cases")
        for case in live:
            us = await self.timed(case, max(10, self.n_django // 2))
            if us is not None:
                self.slow[case.name] = us > 50.0
                await self.timed(case, max(10, self.n(case) // 2))
        for r in range(self.repeats):
            live = self.live()
            if not live:
                break
            self.progress(f"repeat {r + 1}/{self.repeats}")
            k = (r * len(live) // self.repeats) % len(live)  # start points spread evenly
            for case in live[k:] + live[:k]:
                gc.collect()
                us = await self.timed(case, self.n(case))
                if us is not None:
                    self.samples[case.name].append(us)
        await self.interleave()
        await self.count_threads()
        await self.measure_memory()

    async def interleave(self) -> None:
        """The cases each added-time target compares, once more in short batches run
        within milliseconds of each other (``5 x repeats`` rounds of ``n_raw / 10``).

        Why: on a shared VM a case's batch time can switch between two speeds for
        seconds at a time. A per-case median can then land in one mode for ``B`` and the
        other for the cases above it, and a ratio of two microsecond differences moves
        by 0.3; noise in the base also biases such a ratio upward. Taken within each
        round, the modes cancel. Targets of added time use these rounds.
        """
        from benchmarks.interleaved import rounds_of
        from benchmarks.targets import interleaved_groups

        by_name = {c.name: c for c in self.live()}
        for group in interleaved_groups():
            if any(n not in by_name or by_name[n].django for n in group):
                continue
            cases = [by_name[n] for n in group]
            self.progress(f"interleaved: {', '.join(group)}")
            try:
                self.interleaved[",".join(group)] = await rounds_of(
                    {c.name: self.apps[c.app] for c in cases},
                    {c.name: c.request.scope() for c in cases},
                    {c.name: c.request.status for c in cases},
                    max(1, self.n_raw // 10),
                    5 * self.repeats,
                )
            except RuntimeError as exc:
                self.fail(group[0], f"interleaved rounds: {exc}")

    async def count_threads(self) -> None:
        for case in self.live():
            if not case.django:
                continue
            n = min(self.n_django, 100)
            scope = case.request.scope()
            with count_thread_starts() as started, count_handovers() as handed:
                _, bad = await timed_batch(self.apps[case.app], scope, n, case.request.status)
            if bad:
                self.fail(case.name, f"thread count batch: {bad} wrong responses")
            self.threads[case.name] = started[0] / n
            self.handovers[case.name] = {k: v / n for k, v in handed.items()}

    async def measure_memory(self) -> None:
        from benchmarks.django_app import Hold

        for name, app_name in MEMORY:
            if app_name not in self.apps or self.concurrency <= 0:
                continue
            app = _hold_app if app_name == "B" else self.apps[app_name]
            self.progress(f"memory: {self.concurrency} requests in flight through {name}")
            scope = Request(path="/hold/", headers=API).scope()
            Hold.gate, Hold.arrived = asyncio.Event(), 0
            exchanges = [Exchange() for _ in range(self.concurrency)]
            gc.collect()
            tracemalloc.start()
            try:
                base = tracemalloc.get_traced_memory()[0]
                tasks = [
                    asyncio.ensure_future(app(scope.copy(), ex.receive, ex.send))
                    for ex in exchanges
                ]
                for _ in range(6000):  # up to 60 s for every request to reach the view
                    if Hold.arrived >= self.concurrency or any(t.done() for t in tasks):
                        break
                    await asyncio.sleep(0.01)
                held = tracemalloc.get_traced_memory()[0]
                arrived = Hold.arrived
                Hold.gate.set()
                results = await asyncio.gather(*tasks, return_exceptions=True)
            finally:
                tracemalloc.stop()
            errors = [r for r in results if isinstance(r, BaseException)]
            bad = sum(1 for ex in exchanges if ex.status != 200 or not ex.finished)
            if errors or bad or arrived < self.concurrency:
                first = f"; first error {errors[0]!r}" if errors else ""
                self.fail(
                    f"memory {name}",
                    f"{arrived}/{self.concurrency} in flight, {bad} wrong responses{first}",
                )
                continue
            self.memory[name] = {
                "app": app_name,
                "concurrency": self.concurrency,
                "bytes_total": held - base,
                "bytes_per_request": (held - base) / self.concurrency,
            }

    def result(self) -> dict[str, Any]:
        cases = {}
        for c in self.cases:
            entry: dict[str, Any] = {
                "app": c.app,
                "description": apps.describe(c.app),
                "request": c.request.label,
                "headers": [f"{k}: {v}" for k, v in c.request.headers],
                "django": c.django,
                "n_per_batch": self.n(c),
                "samples_us": [round(s, 4) for s in self.samples[c.name]],
                "stats_us": {k: round(v, 4) for k, v in summarize(self.samples[c.name]).items()},
            }
            if c.app in self.unavailable:
                entry["unavailable"] = self.unavailable[c.app]
            problems = self.failures.get(c.name, []) + self.failures.get(c.app, [])
            if problems:
                entry["failures"] = problems
            if c.name in self.threads:
                entry["threads_per_request"] = round(self.threads[c.name], 3)
            if c.name in self.handovers:
                by_class = self.handovers[c.name]
                entry["handovers_per_request"] = round(sum(by_class.values()), 3)
                entry["handovers_by_executor"] = {k: round(v, 3) for k, v in by_class.items()}
            cases[c.name] = entry
        return {
            "settings": {
                "n_django": self.n_django,
                "n_raw": self.n_raw,
                "repeats": self.repeats,
                "concurrency": self.concurrency,
            },
            "cases": cases,
            "interleaved": {
                key: {n: [round(v, 4) for v in vs] for n, vs in group.items()}
                for key, group in self.interleaved.items()
            },
            "memory": self.memory,
            "failures": self.failures,
        }


def run_inprocess(
    *,
    n_django: int,
    n_raw: int,
    repeats: int,
    concurrency: int,
    only: tuple[str, ...] | None = None,
    progress: Callable[[str], None] = lambda s: None,
) -> dict[str, Any]:
    """Run the in-process benchmarks on a fresh event loop; the result for the JSON."""
    run = Run(
        n_django=n_django,
        n_raw=n_raw,
        repeats=repeats,
        concurrency=concurrency,
        only=only,
        progress=progress,
    )
    loop, loop_name = new_loop()
    counter = _CountingHandler()
    stack_logger = logging.getLogger("middleware_stack")
    stack_logger.addHandler(counter)
    try:
        with apps.django_environment(), warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("default")
            loop.run_until_complete(run.main())
    finally:
        stack_logger.removeHandler(counter)
        loop.run_until_complete(loop.shutdown_asyncgens())
        loop.close()
    result = run.result()
    result["loop"] = loop_name
    # A clean stack should make no noise: list what it logged or warned, for a human.
    result["log_records"] = counter.seen
    result["warnings"] = sorted({f"{w.category.__name__}: {w.message}"[:300] for w in caught})
    return result


class _CountingHandler(logging.Handler):
    """Collects WARNING+ records of the ``middleware_stack`` loggers during a run."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.seen: dict[str, int] = {}

    def emit(self, record: logging.LogRecord) -> None:
        key = f"{record.name}: {record.getMessage()}"[:300]
        self.seen[key] = self.seen.get(key, 0) + 1
