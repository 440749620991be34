"""Runtime checks between layers (``checks="warn"`` / ``"strict"``).

``build_stack`` calls :func:`wrapper` once and wraps every constructed layer, and the
innermost app, with the returned :class:`Guard`. With ``checks="off"`` this package is
not even imported, so the composed chain holds no wrapper at all.

Two checks run at every boundary:

- the ASGI protocol (:mod:`.protocol`): the scope coming in, the messages the layer
  sends out, the messages its ``receive`` returns, and what is unfinished when it
  returns. ``"strict"`` raises :class:`~middleware_stack.ASGIProtocolError` at the
  violation; ``"warn"`` logs on ``middleware_stack.checks`` and issues a
  :class:`~middleware_stack.StackWarning`.
- event-loop blocking (:mod:`.blocking`): the time each layer's own code holds the
  loop between awaits, logged past ``ASGI_MIDDLEWARE_BLOCKING_MS``.

``Guard.report()`` (``stack.check_report()``) counts both per layer since start.
"""

from __future__ import annotations

import logging
import math
import warnings
from typing import Any

from middleware_stack.exceptions import ASGIProtocolError, StackConfigurationError, StackWarning
from middleware_stack.guards import blocking, watchdog
from middleware_stack.guards.checkpoint import Checkpoint, Frame
from middleware_stack.guards.rules import Problem, quote
from middleware_stack.settings import blocking_ms as _blocking_ms
from middleware_stack.types import ASGIApp

__all__ = ["Checkpoint", "Guard", "LayerStats", "format_report", "wrapper"]

logger = logging.getLogger("middleware_stack.checks")

_WHERE = {
    "call": "in its own code",
    "send": "in the send wrapper it installed",
    "receive": "in the receive wrapper it installed",
    "task": "in a task it spawned",
}


class LayerStats:
    """Counts for one boundary; ``label`` names it as users see it in messages."""

    __slots__ = ("blocking", "index", "label", "max_blocking_ms", "path", "rules", "violations")

    def __init__(self, label: str, index: int | None, path: str) -> None:
        self.label = label
        self.index = index
        self.path = path
        self.violations = 0
        self.blocking = 0
        self.max_blocking_ms = 0.0
        self.rules: dict[str, int] = {}

    def as_dict(self) -> dict[str, Any]:
        return {
            "index": self.index,
            "path": self.path,
            "violations": self.violations,
            "blocking": self.blocking,
            "max_blocking_ms": round(self.max_blocking_ms, 1),
            "rules": dict(sorted(self.rules.items())),
        }


def _label(index: int | None, path: str) -> str:
    if index is not None:
        return f"ASGI_MIDDLEWARE[{index}] ({path!r})"
    if path.startswith("django."):
        return f"the Django app ({path!r})"
    return f"the app ({path!r})"


class Guard:
    """Wraps layers in :class:`Checkpoint` objects and collects what they find."""

    def __init__(self, mode: str, blocking_ms: float) -> None:
        if mode not in ("warn", "strict"):
            raise StackConfigurationError(
                f"Runtime checks mode {mode!r} is not 'warn' or 'strict'.",
                hint="Use ASGI_MIDDLEWARE_CHECKS = 'warn' (or 'strict', or 'off').",
                id="middleware_stack.E010",
            )
        self.mode = mode
        self.strict = mode == "strict"
        self.blocking_ms = _blocking_ms(blocking_ms)
        self.threshold = self.blocking_ms / 1000 if blocking_ms > 0 else math.inf
        self.watch = blocking_ms > 0
        self.layers: dict[str, LayerStats] = {}
        self.server = LayerStats("the ASGI server", None, "server")
        if self.watch:
            blocking.start_watchdog(self.threshold)

    def __call__(self, app: ASGIApp, index: int | None, path: str) -> ASGIApp:
        label = _label(index, path)
        stats = self.layers.get(label)
        if stats is None:
            stats = self.layers[label] = LayerStats(label, index, path)
        return Checkpoint(app, self, stats)

    # -- findings ----------------------------------------------------------------------

    def violation(self, stats: LayerStats, frame: Frame, problem: Problem, message: object) -> None:
        """Report ``problem`` against ``stats`` once per request and message."""
        req = frame.req
        if message is not None:
            flagged = req.flagged
            if flagged is None:
                flagged = req.flagged = []
            elif any(m is message for m in flagged) or (
                req.in_flight is not None and req.in_flight == message
            ):
                # Passed on from an inner boundary, as it was or as an equal copy made
                # while the inner boundary forwards it: reported there, against the
                # layer that produced it. (An equal message sent later is a new one.)
                return
            flagged.append(message)
        rule, what, expected = problem
        stats.violations += 1
        stats.rules[rule] = stats.rules.get(rule, 0) + 1
        quoted = f": {quote(message)}" if message is not None else ""
        where = stats.path if stats.index is not None else stats.label
        warning = StackWarning(
            f"{what}{quoted}.", index=stats.index, path=where, hint=expected, id=rule
        )
        text = f"{warning} [{rule}]"
        if self.strict:
            raise ASGIProtocolError(text, layer=stats.path, message=message)
        logger.warning(text)
        warnings.warn(warning, stacklevel=3)

    def blocked(
        self,
        stats: LayerStats,
        frame: Frame,
        kind: str,
        seconds: float,
        start: float,
        end: float,
    ) -> None:
        ms = seconds * 1000
        stats.blocking += 1
        stats.max_blocking_ms = max(stats.max_blocking_ms, ms)
        stack = watchdog.format_stack(watchdog.sampled_stack(frame, start, end))
        logger.warning(
            "%s held the event loop for %.0f ms %s without awaiting "
            "(ASGI_MIDDLEWARE_BLOCKING_MS = %g). Sampled while it ran:\n%s",
            stats.label,
            ms,
            _WHERE.get(kind, kind),
            self.blocking_ms,
            stack,
        )

    def report(self) -> dict[str, dict[str, Any]]:
        """``{label: {"index", "path", "violations", "blocking", "max_blocking_ms",
        "rules"}}``, outermost layer first, the app last, then the server if it erred."""
        ordered = sorted(self.layers.values(), key=lambda s: (s.index is None, s.index or 0))
        out = {s.label: s.as_dict() for s in ordered}
        if self.server.violations:
            out[self.server.label] = self.server.as_dict()
        return out


def wrapper(mode: str, blocking_ms: float) -> Guard:
    """The guard ``build_stack`` wraps every layer with when checks are on."""
    return Guard(mode, blocking_ms)


def format_report(
    report: dict[str, dict[str, Any]], mode: str = "", blocking_ms: Any = None
) -> str:
    """A readable table of :meth:`Guard.report` for ``manage.py asgi_stack --checks``."""
    if not report:
        return "Runtime checks are off (ASGI_MIDDLEWARE_CHECKS = 'off'): nothing is counted."
    head = "Runtime checks"
    if mode:
        head += f" (checks={mode}"
        head += f", blocking over {blocking_ms:g} ms)" if blocking_ms else ")"
    rows = [("layer", "violations", "blocking", "worst ms", "rules")]
    for label, counts in report.items():
        rules = ", ".join(f"{k.rsplit('.', 1)[-1]}x{v}" for k, v in counts["rules"].items())
        rows.append(
            (
                label,
                str(counts["violations"]),
                str(counts["blocking"]),
                f"{counts['max_blocking_ms']:.0f}" if counts["blocking"] else "-",
                rules or "-",
            )
        )
    widths = [max(len(r[c]) for r in rows) for c in range(4)]
    lines = [f"{head}, counts since start, outermost first:"]
    for r in rows:
        lines.append(
            "  ".join([r[0].ljust(widths[0])] + [r[c].rjust(widths[c]) for c in (1, 2, 3)] + [r[4]])
        )
    return "\n".join(lines)
