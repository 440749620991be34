"""What the pooled thread's release check costs per request, in-process.

.. code-block:: bash

   .venv/bin/python -m benchmarks.release_check                 # sqlite, about a minute
   .venv/bin/python -m benchmarks.release_check --pg-port 5432  # a local PostgreSQL

When a request releases its worker thread, the boundary queues
:func:`middleware_stack.dbstate.reset_dirty_connections` on it (Django's transaction
flags, the driver's transaction status and, on PostgreSQL, the reported session
parameters of each connection the thread has open). This compares two stacks around
the same Django in one run: ``check`` as shipped, and ``nocheck`` with that hook
removed. Paths: ``/async/`` (no query), ``/sync/`` (no query), ``/db/`` (one query on a
persistent connection, ``CONN_MAX_AGE = None``, so the check has a connection to look
at). Batches of sequential requests, interleaved (the order rotates every repeat); a
sample is the mean µs per request of a batch; the ratio is check/nocheck within each
repeat, and the medians are printed.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
from typing import Any

PATHS = ("/async/", "/sync/", "/db/")


def _configure(pg_port: int | None) -> None:
    os.environ["DJANGO_SETTINGS_MODULE"] = "benchmarks.django_settings"
    from benchmarks import django_settings

    db: dict[str, Any] = {"ENGINE": "django.db.backends.sqlite3", "NAME": ":memory:"}
    if pg_port is not None:
        db = {
            "ENGINE": "django.db.backends.postgresql",
            "HOST": "127.0.0.1",
            "PORT": str(pg_port),
            "USER": "postgres",
            "NAME": "postgres",
        }
    django_settings.DATABASES = {"default": {**db, "CONN_MAX_AGE": None}}  # type: ignore[dict-item]
    import django

    django.setup(set_prefix=False)


def _stacks() -> dict[str, Any]:
    from django.core.asgi import get_asgi_application

    from middleware_stack import build_stack

    check = build_stack(get_asgi_application(), [], checks="off")
    nocheck = build_stack(get_asgi_application(), [], checks="off")
    for stack in (check, nocheck):
        if stack.boundary.pool is None:
            sys.exit("thread reuse is off (asgiref < 3.13?): nothing to measure")
    pool = nocheck.boundary.pool
    assert pool is not None
    pool.on_release = None
    return {"check": check, "nocheck": nocheck}


async def _run(repeats: int, n: int) -> dict[str, dict[str, list[float]]]:
    from benchmarks.driver import Request, timed_batch

    stacks = _stacks()
    samples: dict[str, dict[str, list[float]]] = {p: {k: [] for k in stacks} for p in PATHS}
    cases = [(p, k) for p in PATHS for k in stacks]  # warm-up order
    for path, name in cases:  # warm-up; every response must be a 200
        _, bad = await timed_batch(stacks[name], Request(path=path).scope(), n // 4, 200)
        if bad:
            sys.exit(f"{name} {path}: {bad} wrong responses")
    for r in range(repeats):
        # Each path's two stacks run back to back (so drift hits both alike), in an
        # order that alternates every repeat.
        order = [
            (path, name)
            for path in PATHS[r % len(PATHS) :] + PATHS[: r % len(PATHS)]
            for name in (("check", "nocheck") if r % 2 else ("nocheck", "check"))
        ]
        for path, name in order:
            seconds, bad = await timed_batch(stacks[name], Request(path=path).scope(), n, 200)
            if bad:
                sys.exit(f"{name} {path}: {bad} wrong responses")
            samples[path][name].append(seconds / n * 1e6)
    for stack in stacks.values():
        if stack.boundary.pool is not None:
            stack.boundary.pool.close()
    return samples


def _direct_cost(repeats: int, n: int) -> list[float]:
    """µs per call of the check itself, on a thread with an open, clean connection."""
    import threading
    from time import perf_counter

    from django.db import connection

    from middleware_stack.dbstate import reset_dirty_connections

    samples: list[float] = []

    def run() -> None:
        connection.ensure_connection()
        for _ in range(repeats):
            t0 = perf_counter()
            for _ in range(n):
                reset_dirty_connections()
            samples.append((perf_counter() - t0) / n * 1e6)
        connection.close()

    worker = threading.Thread(target=run)
    worker.start()
    worker.join()
    return samples


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.release_check")
    parser.add_argument("--repeats", type=int, default=31)
    parser.add_argument("--n", type=int, default=500, help="requests per batch")
    parser.add_argument("--pg-port", type=int, help="use PostgreSQL on 127.0.0.1:PORT")
    args = parser.parse_args(argv)
    _configure(args.pg_port)
    from benchmarks.inprocess import new_loop

    loop, loop_name = new_loop()
    try:
        samples = loop.run_until_complete(_run(args.repeats, args.n))
    finally:
        loop.close()
    direct = _direct_cost(args.repeats, 2000)
    db = "postgresql" if args.pg_port else "sqlite"
    print(f"release check, {db}, {loop_name}, {args.repeats} repeats x {args.n} requests")
    print("| path | check µs/req (median) | nocheck µs/req (median) | check/nocheck (median) |")
    print("|---|---|---|---|")
    for path, by in samples.items():
        ratios = [a / b for a, b in zip(by["check"], by["nocheck"], strict=True)]
        print(
            f"| {path} | {statistics.median(by['check']):.1f} | "
            f"{statistics.median(by['nocheck']):.1f} | {statistics.median(ratios):.3f} "
            f"({min(ratios):.3f}-{max(ratios):.3f}) |"
        )
    print(
        f"the check alone, one open connection: {statistics.median(direct):.2f} µs/call "
        f"(median of {args.repeats} x 2000; min {min(direct):.2f})"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
