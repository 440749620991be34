"""The ASGI state machines, as small functions over one boundary's state.

Each ``check_*`` function looks at one message (or scope) crossing one layer
boundary, advances the state kept on :class:`BoundaryState`, and returns ``None``
when the message is valid or a :data:`Problem` saying what is wrong and what the
protocol expects. They never raise and never allocate on the valid path: the
checker runs at every boundary of every request, so the valid path is the hot one.

Lenient where the specification is: header pairs may be tuples or two-item lists,
and extension message types are accepted when the server declares them in
``scope["extensions"]``.

This module holds the send checkers (what a layer sends) and the tables mapping a
scope type to its checkers. The vocabulary (rule ids, :data:`Problem`, :data:`EXPECT`)
lives in :mod:`.rules`, the phases and state classes in :mod:`.state`, the scope check
and header helpers in :mod:`.scope_check`, the receive checkers and the completion
check in :mod:`.receive_check`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from middleware_stack.guards.receive_check import (
    check_http_receive,
    check_lifespan_receive,
    check_websocket_receive,
)
from middleware_stack.guards.rules import (
    EXPECT,
    R_AFTER_FINAL,
    R_BODY,
    R_HEADERS,
    R_LENGTH,
    R_LIFESPAN,
    R_NO_BODY,
    R_ORDER,
    R_STATUS,
    R_TYPE,
    R_WS_CODE,
    R_WS_ORDER,
    R_WS_PAYLOAD,
    Problem,
)
from middleware_stack.guards.scope_check import (
    _content_length,
    _headers_problem,
    _scan,
)
from middleware_stack.guards.state import (
    H_BODY,
    H_DONE,
    H_START,
    H_TRAILERS,
    L_SHUTDOWN_IN,
    L_SHUTDOWN_OUT,
    L_STARTUP_IN,
    L_STARTUP_OUT,
    W_CLOSED,
    W_CONNECTING,
    W_DENIAL,
    W_DENIED,
    W_OPEN,
    BoundaryState,
)

__all__ = [
    "RECEIVE_CHECKERS",
    "SEND_CHECKERS",
    "check_http_send",
    "check_lifespan_send",
    "check_websocket_send",
    "ignore",
]

_VALID_CLOSE = frozenset(range(1000, 1004)) | frozenset(range(1007, 1015))
_NO_BODY_STATUS = frozenset({204, 304})


def _unknown(state: BoundaryState, kind: str, mtype: object) -> Problem | None:
    ext = state.extensions
    if isinstance(mtype, str) and isinstance(ext, Mapping) and mtype in ext:
        return None
    article = "an" if kind == "http" else "a"
    return (
        R_TYPE,
        f"sent an unknown message type {mtype!r} in {article} {kind} scope",
        EXPECT["type"],
    )


def _not_a_message(message: object) -> Problem:
    return (R_TYPE, "sent something that is not a message dict with a 'type'", EXPECT["type"])


# -- messages a layer sends ------------------------------------------------------------


def check_http_send(s: BoundaryState, m: Any) -> Problem | None:
    if type(m) is not dict and not isinstance(m, Mapping):
        return _not_a_message(m)
    t = m.get("type")
    if t == "http.response.body":
        phase = s.phase
        if phase != H_BODY:
            if phase == H_START:
                return (
                    R_ORDER,
                    "sent http.response.body before http.response.start",
                    EXPECT["start"],
                )
            return (R_AFTER_FINAL, "sent http.response.body after the final body", EXPECT["final"])
        body = m.get("body", b"")
        if type(body) is not bytes:
            return (R_BODY, f"sent a 'body' of type {type(body).__name__}", EXPECT["body"])
        n = len(body)
        if n and s.no_body:
            return (R_NO_BODY, f"sent a {n}-byte body with status {s.status}", EXPECT["nobody"])
        s.sent += n
        if not m.get("more_body", False):
            s.phase = H_TRAILERS if s.trailers else H_DONE
            if s.declared >= 0 and s.sent != s.declared and not s.length_flagged:
                s.length_flagged = True
                return (
                    R_LENGTH,
                    f"declared content-length: {s.declared} but sent {s.sent} bytes",
                    EXPECT["length"],
                )
        elif s.declared >= 0 and s.sent > s.declared and not s.length_flagged:
            s.length_flagged = True
            return (
                R_LENGTH,
                f"declared content-length: {s.declared} but already sent {s.sent} bytes",
                EXPECT["length"],
            )
        return None
    if t == "http.response.start":
        if s.phase != H_START:
            if s.phase == H_BODY:
                return (R_ORDER, "sent a second http.response.start", EXPECT["start"])
            return (
                R_AFTER_FINAL,
                "sent http.response.start after the response was finished",
                EXPECT["final"],
            )
        status = m.get("status")
        headers: Any = m.get("headers", ())
        s.phase = H_BODY
        s.sent = 0
        s.length_flagged = False
        s.trailers = bool(m.get("trailers", False))
        if type(status) is not int or not 100 <= status <= 599:
            s.status = 200
            s.no_body = False
            s.declared = -1
            return (R_STATUS, f"sent status {status!r}", EXPECT["status"])
        s.status = status
        no_body = s.no_body = status < 200 or status in _NO_BODY_STATUS
        # Every boundary walks the pairs: a layer may have replaced, appended or
        # changed any of them in place, and remembering which were checked (by
        # identity: an equal bytearray value is not bytes) costs as much as the walk.
        found = _scan(headers)
        if found == -2:
            s.declared = -1
            problem = _headers_problem(headers, R_HEADERS, "response")
            if problem is not None:
                return problem
            checked = _content_length(headers)
            if isinstance(checked, str):
                return (R_LENGTH, f"sent {checked}", EXPECT["length"])
            found = checked
        s.declared = found if found >= 0 and not s.head and not no_body else -1
        return None
    if t == "http.response.trailers":
        if s.phase != H_TRAILERS:
            return (
                R_AFTER_FINAL if s.phase == H_DONE else R_ORDER,
                "sent http.response.trailers without trailers=True in http.response.start, "
                "or before the final body",
                EXPECT["final"],
            )
        problem = _headers_problem(m.get("headers", ()), R_HEADERS, "trailer")
        if not m.get("more_trailers", False):
            s.phase = H_DONE
        return problem
    if t == "http.response.pathsend" or t == "http.response.zerocopysend":
        if s.phase != H_BODY:
            return (R_ORDER, f"sent {t} outside the response body", EXPECT["start"])
        if t == "http.response.pathsend" or not m.get("more_body", False):
            s.phase = H_TRAILERS if s.trailers else H_DONE
        return None
    if not isinstance(t, str):
        return _not_a_message(m)
    return _unknown(s, "http", t)


def _close_problem(m: Any) -> Problem | None:
    code = m.get("code", 1000)
    if type(code) is not int or not (code in _VALID_CLOSE or 3000 <= code <= 4999):
        return (R_WS_CODE, f"sent close code {code!r}", EXPECT["code"])
    reason = m.get("reason")
    if reason is not None and (type(reason) is not str or len(reason.encode()) > 123):
        return (R_WS_CODE, f"sent close reason {reason!r}", EXPECT["code"])
    return None


def check_websocket_send(s: BoundaryState, m: Any) -> Problem | None:
    if type(m) is not dict and not isinstance(m, Mapping):
        return _not_a_message(m)
    t = m.get("type")
    phase = s.phase
    if t == "websocket.send":
        if phase != W_OPEN:
            when = (
                "before websocket.accept"
                if phase in (W_CONNECTING, W_DENIAL)
                else "after the connection was closed"
            )
            return (R_WS_ORDER, f"sent websocket.send {when}", EXPECT["ws"])
        data, text = m.get("bytes"), m.get("text")
        if (
            (data is None) == (text is None)
            or (data is not None and type(data) is not bytes)
            or (text is not None and type(text) is not str)
        ):
            return (
                R_WS_PAYLOAD,
                "sent a websocket.send without exactly one of bytes/text",
                EXPECT["payload"],
            )
        return None
    if t == "websocket.accept":
        if phase != W_CONNECTING:
            what = (
                "a second websocket.accept"
                if phase == W_OPEN
                else "websocket.accept after close or a denial response"
            )
            return (R_WS_ORDER, f"sent {what}", EXPECT["ws"])
        s.phase = W_OPEN
        sub = m.get("subprotocol")
        if sub is not None and type(sub) is not str:
            return (
                R_WS_PAYLOAD,
                f"sent websocket.accept with subprotocol {sub!r}",
                "'subprotocol' is a str or None.",
            )
        return _headers_problem(m.get("headers", []), R_HEADERS, "accept")
    if t == "websocket.close":
        if phase != W_CONNECTING and phase != W_OPEN:
            return (
                R_WS_ORDER,
                "sent websocket.close after the connection was closed",
                EXPECT["ws"],
            )
        s.phase = W_CLOSED
        return _close_problem(m)
    if t == "websocket.http.response.start":
        if phase != W_CONNECTING:
            return (
                R_WS_ORDER,
                "sent a denial response (websocket.http.response.start) after accept or close",
                EXPECT["ws"],
            )
        s.phase = W_DENIAL
        status = m.get("status")
        if type(status) is not int or not 100 <= status <= 599:
            return (R_STATUS, f"sent status {status!r}", EXPECT["status"])
        return _headers_problem(m.get("headers", []), R_HEADERS, "response")
    if t == "websocket.http.response.body":
        if phase != W_DENIAL:
            return (
                R_WS_ORDER,
                "sent websocket.http.response.body outside a denial response",
                EXPECT["ws"],
            )
        body = m.get("body", b"")
        if type(body) is not bytes:
            return (R_BODY, f"sent a 'body' of type {type(body).__name__}", EXPECT["body"])
        if not m.get("more_body", False):
            s.phase = W_DENIED
        return None
    if not isinstance(t, str):
        return _not_a_message(m)
    return _unknown(s, "websocket", t)


def check_lifespan_send(s: BoundaryState, m: Any) -> Problem | None:
    if type(m) is not dict and not isinstance(m, Mapping):
        return _not_a_message(m)
    t = m.get("type")
    if t == "lifespan.startup.complete" or t == "lifespan.startup.failed":
        got, done = L_STARTUP_IN, L_STARTUP_OUT
    elif t == "lifespan.shutdown.complete" or t == "lifespan.shutdown.failed":
        got, done = L_SHUTDOWN_IN, L_SHUTDOWN_OUT
    elif not isinstance(t, str):
        return _not_a_message(m)
    else:
        return _unknown(s, "lifespan", t)
    if s.phase & done:
        return (R_LIFESPAN, f"answered {t.rsplit('.', 1)[0]} twice ({t})", EXPECT["lifespan"])
    s.phase |= done
    if not s.phase & got:
        return (R_LIFESPAN, f"sent {t} before receiving {t.rsplit('.', 1)[0]}", EXPECT["lifespan"])
    return None


def ignore(s: BoundaryState, m: Any) -> Problem | None:
    return None


SEND_CHECKERS = {
    "http": check_http_send,
    "websocket": check_websocket_send,
    "lifespan": check_lifespan_send,
}
RECEIVE_CHECKERS = {
    "http": check_http_receive,
    "websocket": check_websocket_receive,
    "lifespan": check_lifespan_receive,
}
