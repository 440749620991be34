"""A lower bound for ``checks="warn"``: the least any runtime checker with the checks
and the loop-blocking attribution of the runtime-checks issue does per request.

Not shipped, not a checker to use: benchmark case ``S/B-warn-floor`` wraps the same
layers as ``S/B-warn`` in :class:`FloorCheckpoint` to show how far below the real
guard (:mod:`middleware_stack.guards`) a checker can go at all. It is the leanest shape
I could write: closures instead of frame objects, state in one list per boundary, the
HTTP send rules in one flat function, and a violation raises :class:`FloorViolation`
instead of being described.

Per boundary and request it does what the issue requires for HTTP:

- the scope: checked in full at the outermost boundary, a copy made by a layer checked
  again (:func:`~middleware_stack.guards.protocol.check_scope`), and a snapshot
  (headers list included) compared when a layer calls in with the same scope object and
  when the layer returns, for mutation;
- every message the layer sends: ``http.response.start`` once and first, an int status
  in 100-599, headers a list of 2-tuples of bytes with lowercase names, bytes bodies,
  nothing after the final body, no body for 1xx/204/304, and a declared
  ``content-length`` equal to the bytes sent (not for ``HEAD``);
- what the layer receives from a ``receive`` the outer layer installed: no
  ``http.request`` after the final one (the replay pattern);
- completion: the response finished when the layer returns;
- attribution: the outermost boundary drives the steps
  (:func:`middleware_stack.guards.blocking.drive`), each boundary stamps the hand-over
  into its layer and back, a ``send`` or ``receive`` closure installed by the outer
  layer runs with that layer current (one coroutine per call), and the server's own
  ``send`` runs with no layer current; the state is kept per thread.

What it leaves out, each of which only adds cost: checking what the server's own
``receive`` returns (and keeping its time off the outermost layer), websocket and
lifespan, trailers and pathsend, reporting (naming the layer, quoting the message, counting, suppressing
duplicates), non-dict scopes and messages, tasks a layer spawns, a native coroutine
around the outermost step (``asyncio.create_task`` needs one on Python 3.12+), and the
watchdog's stack samples.
"""

from __future__ import annotations

import threading
import types
from time import perf_counter
from typing import Any

from middleware_stack.guards import protocol
from middleware_stack.guards.blocking import ThreadState, drive
from middleware_stack.types import ASGIApp, Message, Receive, Scope, Send

__all__ = ["FloorCheckpoint", "FloorViolation", "floor_stack"]


class _State(ThreadState):
    """One per thread: the layer whose code runs now, the driven step's log, and the
    owner :func:`drive` reports the request's outermost step to."""

    __slots__ = ("outer",)


_local = threading.local()


def _state() -> _State:
    state = _local.state = _State()
    state.outer = _Outer(state)
    return state


_NO_BODY = frozenset({204, 304})


class FloorViolation(Exception):
    """What the floor checker raises where the real guard would report."""


class _Outer:
    """The owner :func:`drive` needs for the request's outermost step."""

    __slots__ = ("tls",)
    threshold = 0.020

    def __init__(self, tls: ThreadState) -> None:
        self.tls = tls

    def returned(self) -> None:
        pass

    def blocked(self, kind: str, seconds: float, start: float, end: float) -> None:
        pass


class FloorCheckpoint:
    """The stand-in for one layer; ``outermost`` for the first (it drives the steps)."""

    __slots__ = ("app", "outermost")

    def __init__(self, app: ASGIApp, outermost: bool = False) -> None:
        self.app = app
        self.outermost = outermost

    def __call__(self, scope: Scope, receive: Receive, send: Send) -> Any:
        try:
            now = _local.state
        except AttributeError:
            now = _state()
        if self.outermost:
            return drive(self._run(scope, receive, send, now, None), now.outer, "call")
        return self._run(scope, receive, send, now, now.cur)

    async def _run(
        self, scope: Scope, receive: Receive, send: Send, now: _State, parent: Any
    ) -> None:
        if parent is not None and scope is parent[4]:
            snapshot = parent[6]  # the same scope object: the same snapshot
            if scope != snapshot:  # changed by the outer layer before it called in
                raise FloorViolation("scope mutated")
        else:
            if protocol.check_scope(scope, None if parent is None else parent[5]) is not None:
                raise FloorViolation("scope")
            snapshot = scope.copy()
            snapshot["headers"] = scope["headers"][:]
        # phase (0 start, 1 body, 2 done), bytes sent, declared length, no body, scope,
        # its checked headers, its snapshot, HEAD, the server's receive: one list, the
        # "current layer" while this layer runs.
        server_receive = receive if parent is None else parent[8]
        st: list[Any] = [
            0, 0, -1, False, scope, snapshot["headers"], snapshot,
            scope["method"] == "HEAD", server_receive,
        ]  # fmt: skip
        received: Any
        if receive is server_receive or getattr(receive, "__code__", None) in _RECEIVED:
            # The server's own receive is the server's business (the real guard checks
            # it too, and keeps its time off the outermost layer), and the outer
            # boundary's checked receive passed through was checked there.
            received = receive
        else:  # a receive the outer layer installed: checked, and timed as that layer's
            done = [False]

            async def received() -> Message:
                prev = now.cur
                now.cur = parent
                now.log.append((perf_counter(), parent, None))
                try:
                    m = await receive()
                finally:
                    now.cur = prev
                    now.log.append((perf_counter(), prev, None))
                _check_received(done, m)
                return m

        checked: Any
        if parent is None:  # the server's send: nobody's time

            async def checked(m: Message) -> None:
                _check(st, m)
                prev = now.cur
                now.cur = None
                now.log.append((perf_counter(), None, None))
                try:
                    await send(m)
                finally:
                    now.cur = prev
                    now.log.append((perf_counter(), prev, None))

        elif getattr(send, "__code__", None) not in _CHECKED:  # the outer layer's closure

            async def checked(m: Message) -> None:
                _check(st, m)
                prev = now.cur
                now.cur = parent
                now.log.append((perf_counter(), parent, None))
                try:
                    await send(m)
                finally:
                    now.cur = prev
                    now.log.append((perf_counter(), prev, None))

        else:  # the outer boundary's own checked send, passed through

            def checked(m: Message) -> Any:
                _check(st, m)
                return send(m)

        prev = now.cur
        now.cur = st
        now.log.append((perf_counter(), st, None))
        try:
            await self.app(scope, received, checked)
        finally:
            now.cur = prev
            now.log.append((perf_counter(), prev, None))
        if scope != snapshot:
            raise FloorViolation("scope mutated")
        if st[0] != 2:
            raise FloorViolation("response not finished")


def _check(st: list[Any], m: Message) -> None:
    """The HTTP send rules, against one boundary's state ``st``."""
    t = m["type"]
    if t == "http.response.body":
        if st[0] != 1:
            raise FloorViolation("body outside the response")
        body = m.get("body", b"")
        if type(body) is not bytes:
            raise FloorViolation("body type")
        if body:
            if st[3]:
                raise FloorViolation("body for a no-body status")
            st[1] += len(body)
        if not m.get("more_body", False):
            st[0] = 2
            if st[2] >= 0 and st[1] != st[2]:
                raise FloorViolation("content-length")
        elif st[2] >= 0 and st[1] > st[2]:
            raise FloorViolation("content-length")
    elif t == "http.response.start":
        if st[0]:
            raise FloorViolation("second start")
        st[0] = 1
        status = m.get("status")
        if type(status) is not int or not 100 <= status <= 599:
            raise FloorViolation("status")
        st[3] = status < 200 or status in _NO_BODY
        pairs = m.get("headers", ())
        if type(pairs) is not list and type(pairs) is not tuple:
            raise FloorViolation("headers")
        declared = -1
        for pair in pairs:
            if type(pair) is not tuple or len(pair) != 2:
                raise FloorViolation("header pair")
            name, value = pair
            if type(name) is not bytes or type(value) is not bytes:
                raise FloorViolation("header type")
            if not name.islower() and name.lower() != name:
                raise FloorViolation("header name")
            if name == b"content-length":
                if declared != -1 or not value.isdigit():
                    raise FloorViolation("content-length")
                declared = int(value)
        if not st[3] and not st[7]:  # HEAD: the length of the GET response
            st[2] = declared
    else:
        raise FloorViolation(f"message {t!r}")


def _check_received(done: list[bool], m: Message) -> None:
    """The replay pattern: an ``http.request`` after the final one."""
    t = m["type"]
    if t == "http.request":
        if done[0]:
            raise FloorViolation("request body after the final one")
        if not m.get("more_body", False):
            done[0] = True
    elif t != "http.disconnect":
        raise FloorViolation(f"received {t!r}")


def _nested(name: str) -> frozenset[types.CodeType]:
    return frozenset(
        code
        for code in FloorCheckpoint._run.__code__.co_consts
        if isinstance(code, types.CodeType) and code.co_name == name
    )


_CHECKED = _nested("checked")
_RECEIVED = _nested("received")


def floor_stack(layers: list[Any], app: ASGIApp) -> ASGIApp:
    """``layers`` (outermost first, each a callable taking the inner app) around ``app``,
    every boundary and the app itself behind a :class:`FloorCheckpoint`."""
    inner: ASGIApp = FloorCheckpoint(app)
    for i, layer in enumerate(reversed(layers)):
        inner = FloorCheckpoint(layer(inner), outermost=i == len(layers) - 1)
    return inner
