"""The checker accepts exactly the valid message sequences.

Hypothesis generates sequences of messages a layer sends; an independent reference
model, written from the ASGI specification in this file, says where the first invalid
message is (or that the response is left unfinished). The real checker runs in
``"strict"`` mode around a layer that sends the sequence: it must raise at exactly that
message, and only there.
"""

from __future__ import annotations

import asyncio
from typing import Any

from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from middleware_stack import ASGIProtocolError, build_stack
from middleware_stack.types import ASGIApp, Message, Receive, Scope, Send
from tests.asgi import http_scope
from tests.test_guards import ws_session

NO_BODY = {204, 304}
VALID_CLOSE = set(range(1000, 1004)) | set(range(1007, 1015)) | set(range(3000, 5000))


# -- reference models (deliberately written independently of the checker) --------------


def _is_status(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and 100 <= value <= 599


def _headers_ok(headers: Any) -> bool:
    if not isinstance(headers, list | tuple):
        return False
    for pair in headers:
        if not isinstance(pair, list | tuple) or len(pair) != 2:
            return False
        if not all(isinstance(x, bytes) for x in pair):
            return False
        if pair[0].lower() != pair[0]:
            return False
    return True


def http_model(messages: list[Message]) -> tuple[int | None, bool]:
    """(index of the first invalid message or None, whether the response finished)."""
    started = finished = False
    status = 0
    length: int | None = None
    sent = 0
    for i, m in enumerate(messages):
        kind = m.get("type")
        if kind == "http.response.start":
            if started:
                return i, finished
            started = True
            status = m.get("status")
            if not _is_status(status) or not _headers_ok(m.get("headers", [])):
                return i, finished
            values = {v for k, v in m.get("headers", []) if k == b"content-length"}
            if any(not v.isdigit() for v in values) or len({int(v) for v in values}) > 1:
                return i, finished
            if values and status >= 200 and status not in NO_BODY:
                length = int(next(iter(values)))
        elif kind == "http.response.body":
            if not started or finished:
                return i, finished
            body = m.get("body", b"")
            if not isinstance(body, bytes):
                return i, finished
            if body and (status < 200 or status in NO_BODY):
                return i, finished
            sent += len(body)
            if not m.get("more_body", False):
                finished = True
                if length is not None and sent != length:
                    return i, finished
            elif length is not None and sent > length:
                return i, finished
        else:
            return i, finished
    return None, finished


def websocket_model(messages: list[Message]) -> int | None:
    state = "connecting"
    for i, m in enumerate(messages):
        kind = m.get("type")
        if kind == "websocket.accept" and state == "connecting":
            state = "open"
        elif kind == "websocket.send" and state == "open":
            data, text = m.get("bytes"), m.get("text")
            if (data is None) == (text is None):
                return i
            if not isinstance(
                data if data is not None else text, bytes if data is not None else str
            ):
                return i
        elif kind == "websocket.close" and state in ("connecting", "open"):
            state = "closed"
            code = m.get("code", 1000)
            if isinstance(code, bool) or code not in VALID_CLOSE:
                return i
        else:
            return i
    return None


# -- generators ------------------------------------------------------------------------

header = st.sampled_from(
    [
        (b"content-type", b"text/plain"),
        (b"content-length", b"0"),
        (b"content-length", b"3"),
        (b"content-length", b"5"),
        (b"content-length", b"x"),
        (b"X-Upper", b"1"),
        ("str-name", b"1"),
        (b"str-value", "1"),
    ]
)
start = st.builds(
    lambda status, headers: {"type": "http.response.start", "status": status, "headers": headers},
    st.sampled_from([100, 103, 200, 204, 304, 404, 599, 99, 600, "200", True]),
    st.lists(header, max_size=3),
)
body = st.builds(
    lambda data, more: {"type": "http.response.body", "body": data, **more},
    st.sampled_from([b"", b"abc", b"ab", "abc"]),
    st.sampled_from([{}, {"more_body": False}, {"more_body": True}]),
)
other = st.just({"type": "http.response.nonsense"})
http_messages = st.one_of(
    st.lists(st.one_of(start, body, body, other), max_size=6),
    # Mostly well-started responses, so the body rules get exercised often.
    st.builds(
        lambda s, rest: [s, *rest],
        start,
        st.lists(st.one_of(body, body, body, start, other), max_size=4),
    ),
)

ws_message = st.one_of(
    st.just({"type": "websocket.accept"}),
    st.sampled_from(
        [
            {"type": "websocket.send", "text": "hi"},
            {"type": "websocket.send", "bytes": b"hi"},
            {"type": "websocket.send", "text": "a", "bytes": b"b"},
            {"type": "websocket.send"},
            {"type": "websocket.send", "text": b"bytes-as-text"},
        ]
    ),
    st.builds(
        lambda code: {"type": "websocket.close", **code},
        st.sampled_from(
            [
                {},
                {"code": 1000},
                {"code": 1005},
                {"code": 1006},
                {"code": 4000},
                {"code": 2999},
                {"code": "1000"},
            ]
        ),
    ),
)
ws_messages = st.lists(ws_message, max_size=5)


class Replays:
    """Ignores the app and sends exactly the generated messages."""

    def __init__(self, app: ASGIApp, messages: list[Message]) -> None:
        self.messages = messages

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "websocket":
            await receive()
        for message in self.messages:
            await send(dict(message))


async def _ignore(scope: Scope, receive: Receive, send: Send) -> None:
    return None


def _run_http(messages: list[Message]) -> tuple[int, ASGIProtocolError | None]:
    delivered: list[Message] = []
    stack = build_stack(_ignore, [(Replays, {"messages": messages})], checks="strict")

    async def receive() -> Message:
        await asyncio.Event().wait()  # the client stays connected
        raise AssertionError("unreachable")

    async def send(message: Message) -> None:
        delivered.append(message)

    try:
        asyncio.run(stack(http_scope(), receive, send))
    except ASGIProtocolError as exc:
        return len(delivered), exc
    return len(delivered), None


@settings(max_examples=500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(http_messages)
@example(
    [
        {"type": "http.response.start", "status": 304, "headers": []},
        {"type": "http.response.body", "body": b"abc"},
    ]
)
@example(
    [
        {"type": "http.response.start", "status": 200, "headers": [(b"content-length", b"3")]},
        {"type": "http.response.body", "body": b"ab"},
    ]
)
def test_the_checker_accepts_exactly_the_valid_http_sequences(messages: list[Message]) -> None:
    first_bad, finished = http_model(messages)
    delivered, error = _run_http(messages)
    if first_bad is not None:
        assert error is not None, f"accepted invalid message {first_bad}: {messages!r}"
        assert delivered == first_bad, (str(error), messages)
        assert "middleware_stack.R050" not in str(error)
    elif not finished:
        assert error is not None and "middleware_stack.R050" in str(error), messages
        assert delivered == len(messages)
    else:
        assert error is None, (str(error), messages)
        assert delivered == len(messages)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(ws_messages)
def test_the_checker_accepts_exactly_the_valid_websocket_sequences(messages: list[Message]) -> None:
    first_bad = websocket_model(messages)
    stack = build_stack(_ignore, [(Replays, {"messages": messages})], checks="strict")
    try:
        sent = asyncio.run(ws_session(stack, ()))
        error = None
    except ASGIProtocolError as exc:
        error = exc
        sent = None
    if first_bad is None:
        assert error is None, (str(error), messages)
        assert sent is not None and len(sent) == len(messages)
    else:
        assert error is not None, f"accepted invalid message {first_bad}: {messages!r}"
        assert repr(messages[first_bad]["type"]) in repr(error.message), (str(error), messages)


def receive_model(messages: list[Message]) -> int | None:
    """Index of the first message an http receive() must not return, or None."""
    state = "body"
    for i, m in enumerate(messages):
        kind = m.get("type")
        if kind == "http.request":
            if state != "body" or not isinstance(m.get("body", b""), bytes):
                return i
            if not m.get("more_body", False):
                state = "complete"
        elif kind == "http.disconnect":
            state = "gone"
        else:
            return i
    return None


received = st.lists(
    st.one_of(
        st.builds(
            lambda body, more: {"type": "http.request", "body": body, **more},
            st.sampled_from([b"", b"x", "str"]),
            st.sampled_from([{}, {"more_body": True}, {"more_body": False}]),
        ),
        st.just({"type": "http.disconnect"}),
        st.just({"type": "websocket.receive", "text": "?"}),
    ),
    max_size=6,
)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(received)
def test_the_checker_accepts_exactly_the_valid_receive_sequences(messages: list[Message]) -> None:
    got: list[Message] = []

    class Feeds:
        """Hands the app a receive that returns the generated messages in order."""

        def __init__(self, app: ASGIApp) -> None:
            self.app = app

        async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
            queue = list(messages)

            async def feed() -> Message:
                return queue.pop(0)

            await self.app(scope, feed, send)

    async def reads_all(scope: Scope, receive: Receive, send: Send) -> None:
        for _ in messages:
            got.append(await receive())
        await send({"type": "http.response.start", "status": 204, "headers": []})
        await send({"type": "http.response.body", "body": b""})

    async def server_receive() -> Message:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def server_send(message: Message) -> None:
        return None

    stack = build_stack(reads_all, [Feeds], checks="strict")
    first_bad = receive_model(messages)
    try:
        asyncio.run(stack(http_scope(), server_receive, server_send))
        error = None
    except ASGIProtocolError as exc:
        error = exc
    if first_bad is None:
        assert error is None, (str(error), messages)
    else:
        assert error is not None, f"accepted invalid message {first_bad}: {messages!r}"
        assert len(got) == first_bad, (str(error), messages)
        assert str(error).startswith("ASGI_MIDDLEWARE[0] ("), str(error)
