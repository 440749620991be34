"""The other end of each state machine: what a layer's ``receive`` returns, and what
is left unfinished when the layer returns.

Each ``check_*_receive`` function advances the receive phase kept on
:class:`~.state.BoundaryState` and returns ``None`` for a valid message or a
:data:`~.rules.Problem`; :func:`check_completion` reads the phases the send checkers
left, once per layer call. Apart from the send checkers (:mod:`.protocol`, which holds
the tables mapping a scope type to both and re-exports these names) because they share
only the state and the vocabulary. The same rule holds here: never raise, never
allocate on the valid path.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from middleware_stack.guards.rules import (
    EXPECT,
    R_BODY,
    R_INCOMPLETE,
    R_RECEIVE,
    R_REPLAY,
    Problem,
)
from middleware_stack.guards.state import (
    H_DONE,
    H_START,
    H_TRAILERS,
    L_SHUTDOWN_IN,
    L_SHUTDOWN_OUT,
    L_STARTUP_IN,
    L_STARTUP_OUT,
    R_COMPLETE,
    R_GONE,
    R_REQ,
    BoundaryState,
)

__all__ = [
    "check_completion",
    "check_http_receive",
    "check_lifespan_receive",
    "check_websocket_receive",
]


# -- messages a layer receives ---------------------------------------------------------

_NOT_A_MESSAGE: Problem = (
    R_RECEIVE,
    "returned something that is not a message dict",
    EXPECT["receive"],
)


def check_http_receive(s: BoundaryState, m: Any) -> Problem | None:
    if type(m) is not dict and not isinstance(m, Mapping):
        return _NOT_A_MESSAGE
    t = m.get("type")
    if t == "http.request":
        if s.rphase != R_REQ:
            if s.rphase == R_COMPLETE:
                return (
                    R_REPLAY,
                    "returned another http.request after the final request body",
                    EXPECT["replay"],
                )
            return (R_RECEIVE, "returned http.request after http.disconnect", EXPECT["receive"])
        if not m.get("more_body", False):
            s.rphase = R_COMPLETE
        if type(m.get("body", b"")) is not bytes:
            return (R_BODY, "returned an http.request whose 'body' is not bytes", EXPECT["body"])
        return None
    if t == "http.disconnect":
        s.rphase = R_GONE
        s.disconnected = s.req.disconnected = True
        return None
    return (R_RECEIVE, f"returned a {t!r} message in an http scope", EXPECT["receive"])


def check_websocket_receive(s: BoundaryState, m: Any) -> Problem | None:
    if type(m) is not dict and not isinstance(m, Mapping):
        return _NOT_A_MESSAGE
    t = m.get("type")
    if t == "websocket.receive":
        if s.rphase != R_COMPLETE:
            return (
                R_RECEIVE,
                "returned websocket.receive before websocket.connect or after disconnect",
                EXPECT["receive"],
            )
        return None
    if t == "websocket.connect":
        if s.rphase != R_REQ:
            return (R_RECEIVE, "returned websocket.connect twice", EXPECT["receive"])
        s.rphase = R_COMPLETE
        return None
    if t == "websocket.disconnect":
        s.rphase = R_GONE
        s.disconnected = s.req.disconnected = True
        return None
    return (R_RECEIVE, f"returned a {t!r} message in a websocket scope", EXPECT["receive"])


def check_lifespan_receive(s: BoundaryState, m: Any) -> Problem | None:
    if type(m) is not dict and not isinstance(m, Mapping):
        return _NOT_A_MESSAGE
    t = m.get("type")
    if t == "lifespan.startup":
        if s.phase & (L_STARTUP_IN | L_SHUTDOWN_IN):
            return (R_RECEIVE, "returned lifespan.startup twice", EXPECT["receive"])
        s.phase |= L_STARTUP_IN
        return None
    if t == "lifespan.shutdown":
        if s.phase & L_SHUTDOWN_IN:
            return (R_RECEIVE, "returned lifespan.shutdown twice", EXPECT["receive"])
        s.phase |= L_SHUTDOWN_IN
        return None
    return (R_RECEIVE, f"returned a {t!r} message in a lifespan scope", EXPECT["receive"])


def check_completion(s: BoundaryState, kind: object) -> Problem | None:
    """What is unfinished when a layer returned normally (None if nothing)."""
    if kind == "http":
        if s.phase == H_DONE or s.disconnected or s.req.disconnected:
            return None
        if s.phase == H_TRAILERS:
            return (
                R_INCOMPLETE,
                "returned before the final http.response.trailers (trailers=True was "
                "announced in http.response.start)",
                EXPECT["complete"],
            )
        if s.phase == H_START:
            return (
                R_INCOMPLETE,
                "returned without sending http.response.start",
                EXPECT["complete"],
            )
        return (
            R_INCOMPLETE,
            "returned before the final http.response.body (more_body=False)",
            EXPECT["complete"],
        )
    if kind == "lifespan":
        phase = s.phase
        if phase & L_STARTUP_IN and not phase & L_STARTUP_OUT:
            return (
                R_INCOMPLETE,
                "returned without answering lifespan.startup",
                EXPECT["lifespan_done"],
            )
        if phase & L_SHUTDOWN_IN and not phase & L_SHUTDOWN_OUT:
            return (
                R_INCOMPLETE,
                "returned without answering lifespan.shutdown",
                EXPECT["lifespan_done"],
            )
    return None
