"""Per-request protocol state: the phases of the state machines, what one boundary
keeps, and what a request's boundaries share.

The message checkers (:mod:`.protocol`, :mod:`.receive_check`) advance a
:class:`BoundaryState` at every message; the checkpoint's frame subclasses it and resets
its slots inline. Data only, apart from the checks, so each of them (and the frame)
builds on it without importing the others.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

__all__ = ["BoundaryState", "RequestState"]

# Phases. HTTP send: before start, streaming body, body done, done (after trailers).
H_START, H_BODY, H_TRAILERS, H_DONE = 0, 1, 2, 3
# Websocket send: connecting, accepted, closed, denial started, denial finished.
W_CONNECTING, W_OPEN, W_CLOSED, W_DENIAL, W_DENIED = 0, 1, 2, 3, 4
# HTTP receive: expecting request, request complete, disconnected.
R_REQ, R_COMPLETE, R_GONE = 0, 1, 2
# Lifespan bits.
L_STARTUP_IN, L_STARTUP_OUT, L_SHUTDOWN_IN, L_SHUTDOWN_OUT = 1, 2, 4, 8


class RequestState:
    """What the boundaries of one request share (no reference back to them: no cycles)."""

    __slots__ = (
        "disconnected",
        "flagged",
        "in_flight",
        "incomplete_flagged",
    )

    def __init__(self) -> None:
        self.flagged: list[object] | None = None  # messages already reported
        self.in_flight: object = None  # a reported message an inner boundary forwards now
        self.incomplete_flagged = False
        self.disconnected = False  # some boundary saw http/websocket.disconnect


class BoundaryState:
    """Per-request protocol state at one boundary (slots; reset by the frame)."""

    __slots__ = (
        "declared",
        "disconnected",
        "extensions",
        "head",
        "length_flagged",
        "no_body",
        "phase",
        "req",
        "rphase",
        "sent",
        "status",
        "trailers",
    )

    phase: int
    rphase: int
    status: int
    declared: int
    sent: int
    head: bool
    no_body: bool
    trailers: bool
    length_flagged: bool
    disconnected: bool
    extensions: Any
    req: RequestState

    def reset(self, scope: Mapping[str, Any]) -> None:
        self.req = RequestState()
        self.phase = 0
        self.rphase = 0
        self.status = 0
        self.declared = -1
        self.sent = 0
        self.head = scope.get("method") == "HEAD"
        self.no_body = False
        self.trailers = False
        self.length_flagged = False
        self.disconnected = False
        self.extensions = scope.get("extensions")
