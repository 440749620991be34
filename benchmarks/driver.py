"""Drive an ASGI app in-process the way a server would, and time it.

Each request gets a shallow copy of a prebuilt scope, a ``receive`` that returns the
body and then (like a server) waits until the response is finished before returning
``http.disconnect``, and a ``send`` that discards messages but keeps the status, so the
timed batches themselves count every response that is not the expected one.
"""

from __future__ import annotations

import asyncio
import statistics
import threading
from collections.abc import Iterable, Iterator
from concurrent.futures import Executor
from contextlib import contextmanager
from dataclasses import dataclass, field
from time import perf_counter
from typing import Any

from middleware_stack.lease import Lease
from middleware_stack.types import ASGIApp, Message

__all__ = [
    "Exchange",
    "Recording",
    "Request",
    "count_handovers",
    "count_thread_starts",
    "summarize",
    "timed_batch",
]


@dataclass(frozen=True)
class Request:
    """One request shape and what a correct response to it looks like."""

    method: str = "GET"
    path: str = "/async/"
    headers: tuple[tuple[str, str], ...] = ()
    client: tuple[str, int] = ("127.0.0.1", 50000)
    status: int = 200
    #: header name -> exact value, or None for "present with any value"
    expect: dict[str, str | None] = field(default_factory=dict)
    #: headers that must be absent
    forbid: tuple[str, ...] = ()

    @property
    def label(self) -> str:
        if self.method == "OPTIONS":
            return f"preflight {self.path}"
        names = {"origin": "Origin", "x-forwarded-user": "user"}
        extra = ", ".join(names.get(k.lower(), k) for k, _ in self.headers)
        return f"{self.method} {self.path}" + (f" ({extra})" if extra else "")

    def scope(self) -> dict[str, Any]:
        return {
            "type": "http",
            "asgi": {"version": "3.0", "spec_version": "2.3"},
            "http_version": "1.1",
            "method": self.method,
            "scheme": "http",
            "path": self.path,
            "raw_path": self.path.encode(),
            "query_string": b"",
            "root_path": "",
            "headers": [
                (b"host", b"127.0.0.1:8000"),
                *((k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in self.headers),
            ],
            "client": self.client,
            "server": ("127.0.0.1", 8000),
        }

    def problems(self, status: int | None, headers: Iterable[tuple[bytes, bytes]]) -> list[str]:
        """What is wrong with a response (empty when it is correct)."""
        found: dict[str, list[str]] = {}
        for k, v in headers:
            found.setdefault(k.decode("latin-1").lower(), []).append(v.decode("latin-1"))
        out = []
        if status != self.status:
            out.append(f"status {status}, expected {self.status}")
        for name, value in self.expect.items():
            got = found.get(name.lower())
            if not got:
                out.append(f"missing header {name}")
            elif value is not None and value not in got:
                out.append(f"header {name}: {got!r}, expected {value!r}")
        for name in self.forbid:
            if name.lower() in found:
                out.append(f"unexpected header {name}: {found[name.lower()]!r}")
        return out


class Exchange:
    """One request's server side: ``receive`` and a discarding ``send``."""

    __slots__ = ("finished", "given", "status", "waiter")

    def __init__(self) -> None:
        self.given = False
        self.finished = False
        self.status: int | None = None
        self.waiter: asyncio.Future[None] | None = None

    async def receive(self) -> Message:
        if not self.given:
            self.given = True
            return {"type": "http.request", "body": b"", "more_body": False}
        if not self.finished:
            waiter = self.waiter = asyncio.get_running_loop().create_future()
            await waiter
        return {"type": "http.disconnect"}

    async def send(self, message: Message) -> None:
        kind = message["type"]
        if kind == "http.response.start":
            self.status = message["status"]
        elif kind == "http.response.body" and not message.get("more_body", False):
            self.finished = True
            waiter = self.waiter
            if waiter is not None and not waiter.done():
                waiter.set_result(None)


class Recording(Exchange):
    """An :class:`Exchange` that keeps the response, for checking before timing."""

    __slots__ = ("body", "headers")

    def __init__(self) -> None:
        super().__init__()
        self.headers: list[tuple[bytes, bytes]] = []
        self.body = b""

    async def send(self, message: Message) -> None:
        if message["type"] == "http.response.start":
            self.headers = [(bytes(k), bytes(v)) for k, v in message.get("headers", ())]
        elif message["type"] == "http.response.body":
            self.body += message.get("body", b"")
        await super().send(message)


async def timed_batch(
    app: ASGIApp, scope: dict[str, Any], n: int, status: int
) -> tuple[float, int]:
    """Run ``n`` sequential requests; (seconds, responses that were wrong or unfinished)."""
    bad = 0
    t0 = perf_counter()
    for _ in range(n):
        ex = Exchange()
        await app(scope.copy(), ex.receive, ex.send)
        if ex.status != status or not ex.finished:
            bad += 1
    return perf_counter() - t0, bad


async def check(app: ASGIApp, request: Request, times: int = 3) -> list[str]:
    """Problems seen in ``times`` recorded requests (empty when every response is right)."""
    scope = request.scope()
    for _ in range(times):
        rec = Recording()
        try:
            await app(scope.copy(), rec.receive, rec.send)
        except Exception as exc:
            return [f"raised {type(exc).__name__}: {exc}"]
        problems = request.problems(rec.status, rec.headers)
        if not rec.finished:
            problems.append("response not finished")
        if problems:
            return problems
    return []


@contextmanager
def count_thread_starts() -> Iterator[list[int]]:
    """Count ``threading.Thread.start`` calls (any thread, any library) while inside."""
    counter = [0]
    original = threading.Thread.start

    def start(self: threading.Thread) -> None:
        counter[0] += 1
        original(self)

    threading.Thread.start = start  # type: ignore[method-assign]
    try:
        yield counter
    finally:
        threading.Thread.start = original  # type: ignore[method-assign]


def _executor_classes() -> list[type[Executor]]:
    """Every loaded ``Executor`` subclass that defines its own ``submit``."""
    seen: list[type[Executor]] = []
    todo: list[type[Executor]] = [Executor]
    while todo:
        cls = todo.pop()
        todo += cls.__subclasses__()
        if cls is not Executor and "submit" in vars(cls) and cls not in seen:
            seen.append(cls)
    return seen


@contextmanager
def count_handovers() -> Iterator[dict[str, int]]:
    """Count work handed to another thread while inside: every ``submit`` on any
    ``concurrent.futures.Executor`` subclass (``ThreadPoolExecutor``, which
    ``run_in_executor`` and asgiref use; the stack's ``WorkerExecutor``; asgiref's
    ``CurrentThreadExecutor``, a hop back into a waiting sync thread), keyed by class
    name; and the stack's ``Lease.push``, which its one-hop path calls directly. A
    call that delegates to another (the stack's ``Lease`` hands its calls to a
    ``WorkerExecutor``) is one hand-over, counted under the outermost class.
    """
    counts: dict[str, int] = {}
    originals: list[tuple[type[Executor], str, Any]] = []
    inside = threading.local()

    def wrap(cls: type[Executor], submit: Any) -> Any:
        name = cls.__name__

        def counted(self: Executor, fn: Any, /, *args: Any, **kwargs: Any) -> Any:
            if getattr(inside, "depth", 0):
                return submit(self, fn, *args, **kwargs)
            counts[name] = counts.get(name, 0) + 1
            inside.depth = 1
            try:
                return submit(self, fn, *args, **kwargs)
            finally:
                inside.depth = 0

        return counted

    entries = [(cls, "submit") for cls in _executor_classes()]
    entries.append((Lease, "push"))  # the one-hop path's lean hand-over (hopcall)
    for cls, method in entries:
        original = vars(cls)[method]
        originals.append((cls, method, original))
        setattr(cls, method, wrap(cls, original))
    try:
        yield counts
    finally:
        for cls, method, original in originals:
            setattr(cls, method, original)


def summarize(samples: list[float]) -> dict[str, float]:
    """Median, quartiles, min and max of per-batch µs per request."""
    if not samples:
        return {}
    s = sorted(samples)
    if len(s) >= 2:
        q1, _, q3 = statistics.quantiles(s, n=4, method="inclusive")
    else:
        q1 = q3 = s[0]
    return {
        "median": statistics.median(s),
        "q1": q1,
        "q3": q3,
        "min": s[0],
        "max": s[-1],
    }
