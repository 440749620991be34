"""Move what the process holds at its first request out of the cyclic garbage collector.

Why: a full (generation 2) collection walks every container object the process holds,
and a Django process holds hundreds of thousands after start-up (modules, classes, URL
patterns, templates), so each one stops the process for tens of milliseconds. Under
WSGI that pause delays the one request its worker is serving; under ASGI it stops the
event loop, and so every request in flight on that worker at once. Measured end to end
(uvicorn, 2 workers, startproject's ``MIDDLEWARE``, ``wrk -c16``): p99 29-32 ms before,
10.7 ms with the start-up heap frozen, against gunicorn sync's 7.7 ms
(``docs/benchmarks.rst``).

``gc.freeze()`` (what app servers call before forking, see Python's ``gc`` docs) moves
every object tracked now into a permanent generation that collections skip. Reference
counting still frees those objects; only cycles among them that become garbage later
stay, which for start-up state is little. It is called once per process, at the first
request (or websocket) a stack serves, when start-up, lifespan included, is done; it
takes no time (no collection runs). ``ASGI_GC_FREEZE = False`` turns it off; the test
client never freezes.
"""

from __future__ import annotations

import gc

__all__ = ["freeze_startup_heap"]

_frozen = False


def freeze_startup_heap() -> bool:
    """``gc.freeze()``, once per process; True when this call did it."""
    global _frozen
    if _frozen:
        return False
    _frozen = True
    gc.freeze()
    return True
