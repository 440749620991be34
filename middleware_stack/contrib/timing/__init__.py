"""Server-Timing and one timing record per request, seen from the outermost layer.

Why a layer of its own: from outside every other layer it sees the whole request
(other layers, Django, the view, streaming) and nothing else, so concurrent requests
never pollute each other's numbers (unlike process-wide CPU timers), and background
work after the final body message is not counted (unlike timers that stop when the
app returns).

Per request it creates one :class:`TimingRecord`, publishes it in a context variable
(so views, in their task or in Django's worker threads, can add metrics with
:func:`timer` / :func:`record`, and :class:`RouteMiddleware` can carry Django's route
back), hands the app the record's own ``send`` and ``receive`` methods, and passes the
finished record to each ``on_record`` callable. Everything that can be decided once
(header bytes, exclusion regex, which callbacks are async) is decided in ``__init__``.
"""

from __future__ import annotations

from middleware_stack.contrib.timing.header import MAX_HEADER_METRICS, format_metrics
from middleware_stack.contrib.timing.middleware import (
    ROUTE_MIDDLEWARE,
    RouteMiddleware,
    TimingMiddleware,
)
from middleware_stack.contrib.timing.options import OnRecord
from middleware_stack.contrib.timing.record import (
    TimingRecord,
    current_record,
    record,
    set_route,
    timer,
)

__all__ = [
    "RouteMiddleware",
    "TimingMiddleware",
    "TimingRecord",
    "current_record",
    "record",
    "set_route",
    "timer",
]

# One public home: error messages, order constraints and docs name these paths.
for _obj in (
    RouteMiddleware,
    TimingMiddleware,
    TimingRecord,
    timer,
    current_record,
    record,
    set_route,
):
    _obj.__module__ = __name__
del _obj

__all__ += ["MAX_HEADER_METRICS", "ROUTE_MIDDLEWARE", "OnRecord", "format_metrics"]
