"""Run as ``python -m tests.starved_loop``: a checked stack whose loop thread is starved.

The parent test (``test_guards_blocking``) pins this process to one CPU, 10 nice levels
below a busy process pinned there too, so the kernel leaves the loop thread (and the
watchdog thread) waiting for that CPU for tens of milliseconds in the middle of a
layer's code, as a host busier than its cores does. Each layer here burns a
fixed amount of the thread's *CPU time* (not wall time, which the starvation stretches),
so what a layer really holds is known. Prints one JSON object.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import threading
import time

from middleware_stack import build_stack
from middleware_stack.types import ASGIApp, Receive, Scope, Send
from tests.asgi import call
from tests.test_guards import ok_app

LIGHT = 0.004  # far below the 20 ms threshold
HEAVY = 0.080  # four times the threshold


def burn_cpu_time(seconds: float) -> None:
    end = time.thread_time() + seconds
    while time.thread_time() < end:
        pass


class BurnsLittle:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        burn_cpu_time(LIGHT)
        await self.app(scope, receive, send)


class BurnsMuch:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        burn_cpu_time(HEAVY)
        await self.app(scope, receive, send)


def cpu_wait_ms() -> float:
    with open(f"/proc/self/task/{threading.get_native_id()}/schedstat") as f:
        return int(f.read().split()[1]) / 1e6


async def main() -> dict[str, object]:
    light = build_stack(ok_app, [BurnsLittle], checks="warn")
    heavy = build_stack(ok_app, [BurnsMuch], checks="warn")
    walls = []
    waited = cpu_wait_ms()
    for _ in range(12):
        t = time.perf_counter()
        assert (await call(light)).body == b"ok"
        walls.append((time.perf_counter() - t) * 1000)
    waited = cpu_wait_ms() - waited
    for _ in range(2):
        assert (await call(heavy)).body == b"ok"
    return {
        "light_walls_ms": walls,
        "light_cpu_wait_ms": waited,
        "light": light.check_report(),
        "heavy": heavy.check_report(),
        "affinity": sorted(os.sched_getaffinity(0)),
        "nice": os.nice(0),
    }


if __name__ == "__main__":
    logging.basicConfig(level=logging.WARNING)
    print(json.dumps(asyncio.run(main())))
