"""A lower bound for ``checks="warn"``: the least any runtime checker with the checks
and the loop-blocking attribution of the runtime-checks issue does per request.

Not shipped, not a checker to use: benchmark case ``S/B-warn-floor`` wraps the same
layers as ``S/B-warn`` in :class:`FloorCheckpoint` to show how far below the real
guard (:mod:`middleware_stack.guards`) a checker can go at all. It is the leanest shape
we could write (two independent attempts; this is the faster), and a violation raises
:class:`FloorViolation` instead of being described:

- each inner boundary is one ``async def __call__`` holding the whole boundary, its
  state in closure cells;
- the "current layer" marker is one tuple per boundary, and the outer boundary's own
  checked ``send``/``receive`` passed through is recognised by identity;
- the HTTP send rules are written into each ``send`` closure (generated once from the
  templates below, so they are written once);
- pass-through merge: when a layer passes its outer boundary's checked ``send`` on
  unchanged, nothing runs between the two boundaries, so the inner one validates the
  message once and hands what it found (status and declared length, or body length and
  ``more_body``) to the outer one, which applies its own state rules (order, no-body,
  content-length, completion) without validating the same message object again.

Per boundary and request it does what the issue requires for HTTP:

- the scope: checked in full at the outermost boundary, a copy made by a layer checked
  again (:func:`~middleware_stack.guards.scope_check.check_scope`), and a snapshot
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
from time import perf_counter  # noqa: F401 (used by the generated code)
from typing import Any

from middleware_stack.guards.blocking import ThreadState, drive
from middleware_stack.guards.scope_check import check_scope  # noqa: F401 (used by the generated code)


class FloorViolation(Exception):
    """What the floor checker raises where the real guard would report."""


class _State(ThreadState):
    """One per thread: the layer whose code runs now, the driven step's log, and the
    owner :func:`drive` reports the request's outermost step to."""

    __slots__ = ("outer",)


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


class _Frame(tuple):  # type: ignore[type-arg]
    """A boundary's entry in the step log: (scope, snap, received, checked,
    server_receive, head). The core's blame pass keys the log's frames in a dict when a
    step runs long, so a frame hashes by identity (its scope is a dict) and, like
    :class:`_Outer`, has a threshold and reports nothing."""

    __slots__ = ()
    __hash__ = object.__hash__
    threshold = 0.020

    def blocked(self, kind: str, seconds: float, start: float, end: float) -> None:
        pass


_local = threading.local()


def _state() -> _State:
    state = _local.state = _State()
    state.outer = _Outer(state)
    return state


_NO_BODY = frozenset({204, 304})
_V = FloorViolation

# -- code templates ---------------------------------------------------------------------


def _ind(code: str, n: int) -> str:
    return "".join(" " * n + line + "\n" if line else "\n" for line in code.splitlines())


# What a body or a start message does to this boundary's state (x, y: body length and
# more_body, or status and declared length), once the message itself is known valid.
APPLY_BODY = """\
if phase != 1:
    raise _V("body outside the response")
if x:
    if nobody:
        raise _V("body for a no-body status")
    sent += x
if not y:
    phase = 2
    if declared >= 0 and sent != declared:
        raise _V("content-length")
elif declared >= 0 and sent > declared:
    raise _V("content-length")
"""

APPLY_START = """\
if phase:
    raise _V("second start")
phase = 1
nobody = x < 200 or x in _NO_BODY
if not nobody and not head:
    declared = y
"""

# Validate the message, then apply it.
VALIDATE_APPLY = (
    """\
t = m["type"]
if t == "http.response.body":
    body = m.get("body", b"")
    if type(body) is not bytes:
        raise _V("body type")
    x = len(body)
    y = m.get("more_body", False)
"""
    + _ind(APPLY_BODY, 4)
    + """\
elif t == "http.response.start":
    x = m.get("status")
    if type(x) is not int or not 100 <= x <= 599:
        raise _V("status")
    pairs = m.get("headers", ())
    if type(pairs) is not list and type(pairs) is not tuple:
        raise _V("headers")
    y = -1
    for pair in pairs:
        if type(pair) is not tuple:
            raise _V("header pair")
        try:
            name, value = pair
        except ValueError:
            raise _V("header pair") from None
        if type(name) is not bytes or type(value) is not bytes:
            raise _V("header type")
        if not name.islower() and name.lower() != name:
            raise _V("header name")
        if name == b"content-length":
            if y != -1 or not value.isdigit():
                raise _V("content-length")
            y = int(value)
"""
    + _ind(APPLY_START, 4)
    + """\
else:
    raise _V(f"message {t!r}")
"""
)

# Apply a message the inner boundary validated just now (it passed through unchanged).
APPLY = (
    'if m["type"] == "http.response.body":\n'
    + _ind(APPLY_BODY, 4)
    + "else:\n"
    + _ind(APPLY_START, 4)
)


BODY = (
    """\
if parent is not None and scope is parent[0]:
    snap = parent[1]
    if scope != snap:
        raise _V("scope mutated")
    head = parent[5]
else:
    if check_scope(scope, None if parent is None else parent[1]["headers"]) is not None:
        raise _V("scope")
    snap = scope.copy()
    snap["headers"] = scope["headers"][:]
    head = scope["method"] == "HEAD"
phase = 0
sent = 0
declared = -1
nobody = False

if parent is None:
    server_receive = received = receive
else:
    server_receive = parent[4]
    if receive is parent[2] or receive is server_receive:
        received = receive
    else:
        done = False

        async def received():
            nonlocal done
            prev = now.cur
            now.cur = parent
            now.log.append((perf_counter(), parent, None))
            try:
                m = await receive()
            finally:
                now.cur = prev
                now.log.append((perf_counter(), prev, None))
            t = m["type"]
            if t == "http.request":
                if done:
                    raise _V("request body after the final one")
                if not m.get("more_body", False):
                    done = True
            elif t != "http.disconnect":
                raise _V(f"received {t!r}")
            return m

if parent is None or send is not parent[3]:
    # the server's send (nobody current) or a closure the outer layer installed

    async def checked(m, x=None, y=None):
        nonlocal phase, sent, declared, nobody
        if x is None:
"""
    + _ind(VALIDATE_APPLY, 12)
    + """\
        else:  # validated by the inner boundary it passed through, just now
"""
    + _ind(APPLY, 12)
    + """\
        prev = now.cur
        now.cur = parent
        now.log.append((perf_counter(), parent, None))
        try:
            await send(m)
        finally:
            now.cur = prev
            now.log.append((perf_counter(), prev, None))

else:  # the outer boundary's own checked send, passed through

    def checked(m, x=None, y=None):
        nonlocal phase, sent, declared, nobody
        if x is None:
"""
    + _ind(VALIDATE_APPLY, 12)
    + """\
        else:  # validated by the inner boundary it passed through, just now
"""
    + _ind(APPLY, 12)
    + """\
        return send(m, x, y)

me = _Frame((scope, snap, received, checked, server_receive, head))
now.cur = me
now.log.append((perf_counter(), me, None))
try:
    await app(scope, received, checked)
finally:
    now.cur = prev
    now.log.append((perf_counter(), prev, None))
if scope != snap:
    raise _V("scope mutated")
if phase != 2:
    raise _V("response not finished")
"""
)

SRC = (
    """\
async def _outer_body(app, scope, receive, send, now, prev):
    parent = None
"""
    + _ind(BODY, 4)
    + """

class FloorCheckpoint:
    # An inner boundary: the whole boundary in one coroutine.

    __slots__ = ("app",)

    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        try:
            now = _local.state
        except AttributeError:
            now = _state()
        app = self.app
        prev = parent = now.cur
"""
    + _ind(BODY, 8)
)

exec(compile(SRC, __file__ + ":generated", "exec"), globals())


class FloorOutermost:
    """The request's outermost boundary: it drives the steps."""

    __slots__ = ("app",)

    def __init__(self, app):
        self.app = app

    def __call__(self, scope, receive, send):
        try:
            now = _local.state
        except AttributeError:
            now = _state()
        outer = now.outer
        body = _outer_body(self.app, scope, receive, send, now, outer)  # noqa: F821
        return drive(body, outer, "call")


def floor_stack(layers: list[Any], app: Any) -> Any:
    """``layers`` (outermost first, each a callable taking the inner app) around ``app``,
    every boundary and the app itself checked."""
    inner = FloorCheckpoint(app)  # noqa: F821 (generated above)
    for i, layer in enumerate(reversed(layers)):
        inner = (FloorOutermost if i == len(layers) - 1 else FloorCheckpoint)(layer(inner))  # noqa: F821
    return inner
