"""One guarded boundary: the wrapper around a layer, and its per-request frame.

``Checkpoint(app)`` stands where the layer stood in the chain. Each call creates a
:class:`Frame`: it checks the scope coming in, hands the layer a checking ``send``
(and ``receive``), runs the layer with its hand-overs logged (the request's outermost
boundary also drives its steps; see :mod:`.blocking`) and checks what is unfinished
when it returns.

Frames of one request find each other without contextvars: a frame is created while
its caller's code runs, and the frame whose code runs now is kept per thread, so the
caller's frame is ``thread_state().cur`` at creation. That link tells who built a
new scope, whether a ``send`` is the outer boundary's own (passed through, nothing to
time) or a closure the outer layer installed (timed as that layer's), and lets a
violation be reported once, at the innermost boundary where it appears.

A frame holds no reference to itself (no stored bound methods, the shared request
state is a separate object): per-request garbage must not need the cycle collector.
"""

from __future__ import annotations

import asyncio
import types
from collections.abc import Awaitable
from typing import TYPE_CHECKING, Any

from middleware_stack.guards.blocking import charged, driven, install_task_factory, server_side
from middleware_stack.guards.protocol import (
    RECEIVE_CHECKERS,
    SEND_CHECKERS,
    check_http_send,
    ignore,
)
from middleware_stack.guards.receive_check import check_completion, check_http_receive
from middleware_stack.guards.rules import EXPECT, R_SCOPE_MUTATED
from middleware_stack.guards.scope_check import check_scope
from middleware_stack.guards.state import H_DONE, BoundaryState, RequestState
from middleware_stack.guards.watchdog import ThreadState, _local, thread_state
from middleware_stack.types import ASGIApp, Message, Receive, Scope, Send

if TYPE_CHECKING:
    from middleware_stack.guards import Guard, LayerStats

__all__ = ["Checkpoint", "Frame"]


class Checkpoint:
    """The guarded stand-in for one layer (or the app); ``.app`` is the layer itself."""

    __slots__ = ("app", "guard", "stats", "threshold", "watch")

    def __init__(self, app: ASGIApp, guard: Guard, stats: LayerStats) -> None:
        self.app = app
        self.guard = guard
        self.stats = stats
        self.threshold = guard.threshold
        self.watch = guard.watch

    def __call__(self, scope: Scope, receive: Receive, send: Send) -> Awaitable[None]:
        frame = _enter(self, scope, receive, send)
        if frame.receive_blame is not None or frame.kind == "lifespan":
            # Lifespan send checks need what this layer received; once per process.
            receive = frame._receive
        if frame.parent is None:
            # The request's outermost boundary: it drives the steps, and what it sends
            # or receives goes to the server, whose code no layer is charged for.
            return driven(self.app(scope, receive, frame._send_server), frame)
        # An inner boundary: its steps are driven by the request's outermost one.
        return charged(self.app(scope, receive, frame._send), frame, "call", _RETURNED)

    def __repr__(self) -> str:
        return f"<Checkpoint {self.stats.label} around {self.app!r}>"


class Frame(BoundaryState):
    """One request crossing one boundary (created by :func:`_enter`)."""

    __slots__ = (
        "check_receive",
        "check_send",
        "cp",
        "headers_len",
        "kind",
        "parent",
        "receive_blame",
        "receive_in",
        "receive_owner",
        "scope",
        "send_in",
        "send_owner",
        "snapshot",
        "tls",
    )

    check_receive: Any
    check_send: Any
    cp: Checkpoint
    headers_len: int
    kind: object
    parent: Frame | None
    receive_blame: LayerStats | None
    receive_in: Receive
    receive_owner: Frame | None
    scope: Scope
    send_in: Send
    send_owner: Frame | None
    snapshot: dict[str, Any]
    tls: ThreadState

    @property
    def guard(self) -> Guard:
        return self.cp.guard

    @property
    def stats(self) -> LayerStats:
        return self.cp.stats

    @property
    def threshold(self) -> float:
        return self.cp.threshold

    def returned(self) -> None:
        """The layer returned normally: scope mutations and an unfinished response."""
        scope = self.scope
        if scope != self.snapshot:
            self.check_mutation()
        else:
            headers = scope.get("headers")
            if (len(headers) if type(headers) is list else -1) != self.headers_len:
                self.check_mutation()
        if self.phase == H_DONE and self.kind == "http":
            return
        req = self.req
        if req.incomplete_flagged:
            return
        problem = check_completion(self, self.kind)
        if problem is not None:
            req.incomplete_flagged = True
            self.guard.violation(self.stats, self, problem, None)

    def check_mutation(self) -> None:
        scope = self.scope
        snapshot = self.snapshot
        if type(scope) is not dict:
            return
        headers = scope.get("headers")
        if (
            scope == snapshot
            and (len(headers) if type(headers) is list else -1) == self.headers_len
        ):
            return
        changed = sorted(
            {
                k
                for k in scope
                if k not in snapshot or (snapshot[k] is not scope[k] and snapshot[k] != scope[k])
            }
            | {k for k in snapshot if k not in scope}
        )
        if not changed:
            changed = ["headers"]  # changed in place
        # Every frame sharing this scope object now accepts its new contents.
        frame: Frame | None = self
        while frame is not None and frame.scope is scope:
            frame.snapshot = _snapshot(scope)
            frame.headers_len = len(headers) if type(headers) is list else -1
            frame = frame.parent
        if self.stats.index is None:
            return  # the app itself may use its scope as it likes
        problem = (
            R_SCOPE_MUTATED,
            "changed the scope it received instead of copying it (key(s) "
            f"{', '.join(map(repr, changed))})",
            EXPECT["mutated"],
        )
        self.guard.violation(self.stats, self, problem, {k: scope.get(k) for k in changed})

    # -- what the layer is given -------------------------------------------------------

    def _send(self, message: Message) -> Any:
        problem = self.check_send(self, message)
        if problem is not None:
            self.cp.guard.violation(self.cp.stats, self, problem, message)
            return _forward_reported(self, message, self._forward)
        # _forward(), inlined: this runs for every message at every boundary.
        owner = self.send_owner
        if owner is None:
            return self.send_in(message)
        return charged(self.send_in(message), owner, "send")

    def _forward(self, message: Message) -> Any:
        owner = self.send_owner
        if owner is None:
            return self.send_in(message)
        return charged(self.send_in(message), owner, "send")

    def _send_server(self, message: Message) -> Any:
        """The outermost boundary's ``send``: checked, then the server's own."""
        problem = self.check_send(self, message)
        if problem is not None:
            self.cp.guard.violation(self.cp.stats, self, problem, message)
        return server_side(self.tls, self.send_in, message)  # the server checks no further

    async def _receive(self) -> Message:
        message: Message
        owner = self.receive_owner
        if owner is None:
            if self.parent is None:
                message = await server_side(self.tls, self.receive_in)
            else:
                message = await self.receive_in()
        else:
            message = await charged(self.receive_in(), owner, "receive")
        problem = self.check_receive(self, message)
        if problem is not None and self.receive_blame is not None:
            self.guard.violation(self.receive_blame, self, problem, message)
        return message

    # -- blocking ----------------------------------------------------------------------

    def blocked(self, kind: str, seconds: float, start: float, end: float) -> None:
        self.guard.blocked(self.stats, self, kind, seconds, start, end)


async def _forward_reported(frame: Frame, message: Message, forward: Any) -> Any:
    """Forward a message just reported, marked as such while outer layers pass it on: an
    equal copy they make is the same fault, not theirs (see ``Guard.violation``)."""
    req = frame.req
    previous = req.in_flight
    req.in_flight = message
    try:
        return await forward(message)
    finally:
        req.in_flight = previous


def _enter(checkpoint: Checkpoint, scope: Scope, receive: Receive, send: Send) -> Frame:
    """Create the frame for one call: the scope check and who owns send/receive.

    A function rather than ``Frame.__init__``, and inlined state resets, because it
    runs at every boundary of every request.
    """
    frame = _new(Frame)
    try:
        tls = _local.state
    except AttributeError:
        tls = thread_state()
    parent = tls.cur
    frame.tls = tls
    frame.cp = checkpoint
    frame.scope = scope
    frame.receive_in = receive
    frame.send_in = send
    if type(scope) is not dict:
        scope = scope if isinstance(scope, dict) else {}
    kind = frame.kind = scope.get("type")
    if type(parent) is not Frame:
        guard = checkpoint.guard
        frame.parent = frame.send_owner = frame.receive_owner = None
        frame.req = RequestState()
        frame.receive_blame = guard.server
        loop = tls.loop
        if loop is None or not loop.is_running():  # a new loop on this thread
            loop = _running_loop()
            if loop is not None:
                install_task_factory(loop)
                tls.loop = loop
        problem = check_scope(frame.scope)  # the object as received, dict or not
        if problem is not None:
            guard.violation(guard.server, frame, problem, frame.scope)
        frame.snapshot = _snapshot(scope)
        headers = scope.get("headers")
        frame.headers_len = len(headers) if type(headers) is list else -1
    else:
        frame.parent = parent
        frame.req = parent.req
        if frame.scope is parent.scope:
            # Unchanged? Then share the outer frame's snapshot.
            headers = scope.get("headers")
            n = len(headers) if type(headers) is list else -1
            if n != parent.headers_len or scope != parent.snapshot:
                parent.check_mutation()
            frame.snapshot = parent.snapshot
            frame.headers_len = n
        else:
            # A copy: only what differs from the checked outer scope needs a look.
            problem = check_scope(frame.scope, parent.snapshot.get("headers"))
            if problem is not None:
                checkpoint.guard.violation(parent.stats, frame, problem, frame.scope)
            frame.snapshot = _snapshot(scope)
            headers = scope.get("headers")
            frame.headers_len = len(headers) if type(headers) is list else -1
        # The outer boundary's own checked send, passed through, needs no timing:
        # whatever it calls is timed there. Anything else is the outer layer's.
        watch = checkpoint.watch
        frame.send_owner = (
            parent
            if watch
            and (
                type(send) is not _Method
                or (send.__func__ is not _SEND and send.__func__ is not _SEND_SERVER)
            )
            else None
        )
        if type(receive) is _Method and receive.__func__ is _RECEIVE:
            # A checked receive passed through: its boundary checks these messages
            # already (and blames whoever produced them), so nothing is timed or
            # blamed here; outside lifespan the layer even gets it as it is.
            frame.receive_owner = frame.receive_blame = None
        else:
            frame.receive_owner = parent if watch else None
            frame.receive_blame = parent.cp.stats
    # BoundaryState.reset, inlined: this runs per boundary per request.
    # (status, sent, declared, no_body, trailers are set by http.response.start.)
    frame.phase = frame.rphase = 0
    frame.disconnected = False
    if kind == "http":
        frame.head = scope.get("method") == "HEAD"
        frame.check_send = check_http_send
        frame.check_receive = check_http_receive
    else:
        frame.head = False
        frame.check_send, frame.check_receive = (
            _CHECKERS.get(kind, _IGNORE) if type(kind) is str else _IGNORE
        )
    frame.extensions = scope.get("extensions")
    return frame


_new = object.__new__


def _snapshot(scope: Any) -> dict[str, Any]:
    """A copy to compare the scope with later; the headers list is copied too, so a
    pair replaced in place shows (the scope's other values are compared by identity)."""
    snapshot: dict[str, Any] = scope.copy()
    headers = snapshot.get("headers")
    if type(headers) is list:
        snapshot["headers"] = headers[:]
    return snapshot


_running_loop = asyncio._get_running_loop
_SEND = Frame._send
_SEND_SERVER = Frame._send_server
_RECEIVE = Frame._receive
_RETURNED = Frame.returned
_Method = types.MethodType
_IGNORE = (ignore, ignore)
_CHECKERS = {kind: (check, RECEIVE_CHECKERS[kind]) for kind, check in SEND_CHECKERS.items()}
