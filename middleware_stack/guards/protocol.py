"""The ASGI state machines, as small functions over one boundary's state.

Each ``check_*`` function looks at one message (or scope) crossing one layer
boundary, advances the state kept on :class:`BoundaryState`, and returns ``None``
when the message is valid or a :data:`Problem` saying what is wrong and what the
protocol expects. They never raise and never allocate on the valid path: the
checker runs at every boundary of every request, so the valid path is the hot one.

Lenient where the specification is: header pairs may be tuples or two-item lists,
and extension message types are accepted when the server declares them in
``scope["extensions"]``.
"""

from __future__ import annotations

from collections.abc import Mapping
from operator import is_
from typing import Any

__all__ = [
    "EXPECT",
    "REQUIRED",
    "BoundaryState",
    "Problem",
    "RequestState",
    "check_scope",
    "quote",
]

#: ``(rule id, what is wrong, what the protocol expects)``.
Problem = tuple[str, str, str]

R_SCOPE = "middleware_stack.R001"
R_SCOPE_HEADERS = "middleware_stack.R002"
R_SCOPE_MUTATED = "middleware_stack.R003"
R_ORDER = "middleware_stack.R010"
R_STATUS = "middleware_stack.R011"
R_HEADERS = "middleware_stack.R012"
R_BODY = "middleware_stack.R013"
R_AFTER_FINAL = "middleware_stack.R014"
R_NO_BODY = "middleware_stack.R015"
R_LENGTH = "middleware_stack.R016"
R_TYPE = "middleware_stack.R017"
R_WS_ORDER = "middleware_stack.R020"
R_WS_CODE = "middleware_stack.R021"
R_WS_PAYLOAD = "middleware_stack.R022"
R_LIFESPAN = "middleware_stack.R030"
R_REPLAY = "middleware_stack.R040"
R_RECEIVE = "middleware_stack.R041"
R_INCOMPLETE = "middleware_stack.R050"

#: Required scope keys per scope type (ASGI 3 connection scopes without defaults).
REQUIRED: dict[str, tuple[str, ...]] = {
    "http": ("type", "asgi", "http_version", "method", "path", "query_string", "headers"),
    "websocket": ("type", "asgi", "path", "query_string", "headers"),
    "lifespan": ("type", "asgi"),
}
_STR_KEYS = ("http_version", "method", "scheme", "path", "root_path")

EXPECT = {
    "start": "The protocol expects exactly one http.response.start, before any http.response.body.",
    "final": "The protocol expects nothing after the final http.response.body "
    "(more_body=False) except http.response.trailers announced with trailers=True.",
    "status": "The protocol expects 'status' to be an int between 100 and 599.",
    "headers": "The protocol expects 'headers' to be a list of (name, value) pairs of bytes, "
    "names lowercase.",
    "body": "The protocol expects 'body' to be bytes.",
    "nobody": "A 1xx, 204 or 304 response has no body: send b'' with more_body=False.",
    "length": "The bytes sent must match the declared content-length header (or drop the "
    "header when the body changes).",
    "ws": "The protocol expects websocket.accept (or websocket.close to refuse) first, "
    "websocket.send only between accept and close, and nothing after websocket.close.",
    "code": "The protocol expects a close code 1000-1003, 1007-1014 or 3000-4999 "
    "(1004-1006 and 1015 are reserved), and a str 'reason' of at most 123 UTF-8 bytes.",
    "payload": "The protocol expects websocket.send with exactly one of 'bytes' (bytes) "
    "or 'text' (str).",
    "lifespan": "The protocol expects lifespan.startup.complete/.failed once, after "
    "lifespan.startup is received, and lifespan.shutdown.complete/.failed once, after "
    "lifespan.shutdown.",
    "replay": "After the final http.request (more_body=False) receive() must wait for and "
    "return http.disconnect; Django's ASGIHandler raises AssertionError ('Invalid ASGI "
    "message after request body') on anything else. A layer that buffers the body must "
    "replay it once, then pass through to the original receive().",
    "receive": "The protocol expects http.request/http.disconnect in an http scope, "
    "websocket.connect first then websocket.receive/websocket.disconnect in a websocket "
    "scope, and lifespan.startup then lifespan.shutdown in a lifespan scope.",
    "complete": "A layer must not return before the response is complete "
    "(http.response.body with more_body=False) while the client is still connected: the "
    "server then sends a 500 or drops the connection.",
    "lifespan_done": "A lifespan app that received lifespan.startup (or .shutdown) must "
    "answer it with .complete or .failed before returning; the server waits for it.",
    "type": "Send only message types the scope defines, or extensions the server declares "
    "in scope['extensions'].",
    "scope": "The protocol expects a scope dict whose 'type' is 'http', 'websocket' or "
    "'lifespan', with the required keys of that type.",
    "scope_headers": "The protocol expects scope['headers'] to be a list of (name, value) "
    "pairs of bytes with lowercase names.",
    "mutated": "Copy the scope before changing it ({**scope, 'key': value}) and pass the "
    "copy inward: outer layers still hold the original and read it after the call.",
}

_VALID_CLOSE = frozenset(range(1000, 1004)) | frozenset(range(1007, 1015))
_NO_BODY_STATUS = frozenset({204, 304})

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


def quote(message: object, limit: int = 300) -> str:
    """``repr`` of a message with long bodies cut, for a one-line log entry."""
    if isinstance(message, Mapping):
        parts = []
        for key, value in message.items():
            if isinstance(value, bytes | str) and len(value) > 40:
                shown = f"{value[:40]!r}...({len(value)} {'bytes' if isinstance(value, bytes) else 'chars'})"
            else:
                shown = repr(value)
            parts.append(f"{key!r}: {shown}")
        text = "{" + ", ".join(parts) + "}"
    else:
        text = repr(message)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _headers_problem(headers: object, rule: str, where: str) -> Problem | None:
    if type(headers) is not list and type(headers) is not tuple:
        return (
            rule,
            f"sent {where} headers as a {type(headers).__name__}, not a list",
            EXPECT["headers"],
        )
    for pair in headers:
        if not isinstance(pair, (tuple, list)) or len(pair) != 2:
            return (
                rule,
                f"sent a {where} header {pair!r} that is not a (name, value) pair",
                EXPECT["headers"],
            )
        name, value = pair
        if type(name) is not bytes or type(value) is not bytes:
            return (
                rule,
                f"sent a {where} header {pair!r} that is not a pair of bytes",
                EXPECT["headers"],
            )
        if name != name.lower():
            return (
                rule,
                f"sent a {where} header name {name!r} that is not lowercase",
                EXPECT["headers"],
            )
    return None


def _scan(headers: Any) -> int:
    """Fast path over valid response headers: the declared content-length (-1 if none).

    Returns -2 when anything looks wrong; :func:`_headers_problem` and
    :func:`_content_length` then say what.
    """
    if type(headers) is not list and type(headers) is not tuple:
        return -2
    found = -1
    try:
        for pair in headers:
            if type(pair) is not tuple and type(pair) is not list:
                return -2  # a set or a dict of two would unpack too, in no set order
            name, value = pair
            if type(name) is not bytes or type(value) is not bytes:
                return -2
            if not name.islower() and name.lower() != name:
                return -2
            if name == b"content-length":
                if found != -1 or not value.isdigit():
                    return -2
                found = int(value)
    except (TypeError, ValueError):
        return -2
    return found


def _content_length(headers: Any) -> int | str:
    """The declared content-length (-1 if none), or a description of a bad one."""
    found = -1
    for name, value in headers:
        if name == b"content-length":
            if not value.isdigit():
                return f"a content-length {value!r} that is not a number"
            try:
                n = int(value)
            except ValueError:  # more digits than int() converts (4300 by default)
                return f"a content-length of {len(value)} digits"
            if found >= 0 and n != found:
                return f"two content-length headers that disagree ({found} and {n})"
            found = n
    return found


_KEYSETS = {kind: frozenset(keys) for kind, keys in REQUIRED.items()}


def _pairs_ok(headers: Any) -> bool:
    """Every item a pair of bytes with a lowercase name (the quick yes; no reason why)."""
    try:
        for name, value in headers:
            if type(name) is not bytes or type(value) is not bytes:
                return False
            if not name.islower() and name.lower() != name:
                return False
    except (TypeError, ValueError):
        return False
    return True


def check_scope(scope: object, known: Any = None) -> Problem | None:
    """Shape, required keys and header types of a connection scope.

    ``known`` is a copy of a headers list found valid (in the scope this one was copied
    from): when the scope's headers are the very same pair objects, they are not walked
    again (identity, not equality: an equal bytearray value is not bytes).
    """
    if type(scope) is dict:
        # The fast path: a well-formed http scope, looked up without defaults.
        try:
            if (
                scope["type"] == "http"
                and type(scope["asgi"]) is dict
                and type(scope["path"]) is str
                and type(scope["method"]) is str
                and type(scope["http_version"]) is str
                and type(scope["query_string"]) is bytes
                and type(scope.get("scheme", "")) is str
                and type(scope.get("root_path", "")) is str
            ):
                headers: Any = scope["headers"]
                if (
                    known is not None
                    and len(headers) == len(known)
                    and all(map(is_, headers, known))
                ):
                    return None
                if type(headers) is list and _pairs_ok(headers):
                    return None
        except (KeyError, TypeError, ValueError):
            pass
    return _check_scope(scope)


def _check_scope(scope: object) -> Problem | None:
    """:func:`check_scope` in full, saying what is wrong."""
    if type(scope) is not dict and not isinstance(scope, dict):
        return (R_SCOPE, f"passed a scope that is a {type(scope).__name__}", EXPECT["scope"])
    kind = scope.get("type")
    keys = _KEYSETS.get(kind) if type(kind) is str else None
    if keys is None:
        return (R_SCOPE, f"passed a scope of unknown type {kind!r}", EXPECT["scope"])
    if not keys <= scope.keys():
        missing = [key for key in REQUIRED[str(kind)] if key not in scope]
        return (
            R_SCOPE,
            f"passed {'an' if kind == 'http' else 'a'} {kind} scope without the required "
            f"key(s) {', '.join(missing)}",
            EXPECT["scope"],
        )
    if type(scope["asgi"]) is not dict:
        return (R_SCOPE, f"passed a scope whose 'asgi' is {scope['asgi']!r}", EXPECT["scope"])
    if kind == "lifespan":
        return None
    get = scope.get
    if (
        type(get("path")) is not str
        or type(get("method", "")) is not str
        or type(get("http_version", "")) is not str
        or type(get("scheme", "")) is not str
        or type(get("root_path", "")) is not str
    ):
        for key in _STR_KEYS:
            value = get(key, "")
            if type(value) is not str:
                return (
                    R_SCOPE,
                    f"passed a scope whose {key!r} is {type(value).__name__} {value!r}, not str",
                    EXPECT["scope"],
                )
    if type(scope["query_string"]) is not bytes:
        return (
            R_SCOPE,
            f"passed a scope whose 'query_string' is {scope['query_string']!r}, not bytes",
            EXPECT["scope"],
        )
    headers = scope["headers"]
    if (type(headers) is list or type(headers) is tuple) and _pairs_ok(headers):
        return None
    problem = _headers_problem(headers, R_SCOPE_HEADERS, "scope")
    if problem is None:
        return None
    what = problem[1].replace("sent a scope header", "passed a scope with a header", 1)
    what = what.replace("sent scope headers as", "passed a scope with headers as", 1)
    return (problem[0], what, EXPECT["scope_headers"])


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


# -- messages a layer receives ---------------------------------------------------------


def check_http_receive(s: BoundaryState, m: Any) -> Problem | None:
    if type(m) is not dict and not isinstance(m, Mapping):
        return (R_RECEIVE, "returned something that is not a message dict", EXPECT["receive"])
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
        return (R_RECEIVE, "returned something that is not a message dict", EXPECT["receive"])
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
        return (R_RECEIVE, "returned something that is not a message dict", EXPECT["receive"])
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
