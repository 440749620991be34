"""The checker's vocabulary: rule ids, :data:`Problem`, what the protocol expects.

Every finding the runtime checker reports is a :data:`Problem` ``(rule id, what is
wrong, what the protocol expects)``; the ids (``middleware_stack.R0xx``) and the
:data:`EXPECT` hints are kept here, apart from the checks that use them, with the
required scope keys (:data:`REQUIRED`) and :func:`quote`, which cuts a message down for
the report. Plain data and one formatting helper: it imports nothing of the package.
"""

from __future__ import annotations

from collections.abc import Mapping

__all__ = ["EXPECT", "REQUIRED", "Problem", "quote"]

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
