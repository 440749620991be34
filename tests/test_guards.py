"""Runtime protocol checks: a zoo of broken layers, each named and its fault described.

Every broken layer sits at ``ASGI_MIDDLEWARE[1]`` behind a clean layer at ``[0]``, so a
test also proves the blame lands on the layer at fault and not on the ones around it.
"""

from __future__ import annotations

import asyncio
import io
import logging
import warnings
from typing import Any

import pytest
from django.core.management import call_command
from django.test import override_settings

from middleware_stack import ASGIProtocolError, StackWarning, build_stack
from middleware_stack.builder import ScopeFilter
from middleware_stack.guards import Checkpoint, format_report
from middleware_stack.types import ASGIApp, Message, Receive, Scope, Send
from tests.asgi import answer_lifespan, call, http_scope, lifespan

HERE = __name__


async def ok_app(scope: Scope, receive: Receive, send: Send) -> None:
    """A correct raw app: lifespan answered, 'ok' with a content-length, ws echo."""
    if scope["type"] == "lifespan":
        await answer_lifespan(receive, send)
        return
    if scope["type"] == "websocket":
        await receive()
        await send({"type": "websocket.accept"})
        while (message := await receive())["type"] == "websocket.receive":
            await send({"type": "websocket.send", "text": message.get("text")})
        return
    await send(
        {"type": "http.response.start", "status": 200, "headers": [(b"content-length", b"2")]}
    )
    await send({"type": "http.response.body", "body": b"ok"})


class Clean:
    """A well-behaved layer with its own send closure (the usual shape)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        async def passing(message: Message) -> None:
            await send(message)

        await self.app(scope, receive, passing)


class Clean2(Clean):
    """A second clean layer, so a stack can hold two without a duplicate warning."""


class Sends:
    """Ignores the app and sends ``messages`` itself (the broken responder)."""

    def __init__(self, app: ASGIApp, messages: list[Message]) -> None:
        self.app = app
        self.messages = messages

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await receive()
        for message in self.messages:
            await send(dict(message))


def guarded(*entries: Any, mode: str = "strict", app: ASGIApp = ok_app, **kw: Any) -> Any:
    return build_stack(app, [Clean, *entries], checks=mode, **kw)


async def ws_session(app: ASGIApp, texts: tuple[str, ...] = ("ping",)) -> list[Message]:
    """Connect, send ``texts`` once accepted, then disconnect; returns what the app sent."""
    inbox: asyncio.Queue[Message] = asyncio.Queue()
    await inbox.put({"type": "websocket.connect"})
    sent: list[Message] = []

    async def send(message: Message) -> None:
        sent.append(message)
        if message["type"] == "websocket.accept":
            for text in texts:
                await inbox.put({"type": "websocket.receive", "text": text})
            await inbox.put({"type": "websocket.disconnect", "code": 1000})
        elif message["type"] == "websocket.close":
            await inbox.put({"type": "websocket.disconnect", "code": 1000})

    scope = {
        "type": "websocket",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "scheme": "ws",
        "path": "/ws/",
        "raw_path": b"/ws/",
        "query_string": b"",
        "root_path": "",
        "headers": [(b"host", b"testserver")],
        "client": ("127.0.0.1", 50000),
        "server": ("127.0.0.1", 8000),
        "subprotocols": [],
    }
    await asyncio.wait_for(app(scope, inbox.get, send), timeout=10)
    return sent


START = {"type": "http.response.start", "status": 200, "headers": []}
BODY = {"type": "http.response.body", "body": b"ok"}
SENDS = f"{HERE}.Sends"


# -- HTTP messages a layer sends -------------------------------------------------------

HTTP_ZOO = [
    pytest.param(
        [START, START, BODY],
        "R010",
        "sent a second http.response.start",
        "exactly one http.response.start",
        id="start-twice",
    ),
    pytest.param(
        [BODY],
        "R010",
        "sent http.response.body before http.response.start",
        "before any http.response.body",
        id="body-before-start",
    ),
    pytest.param(
        [{**START, "status": "200"}, BODY],
        "R011",
        "sent status '200'",
        "an int between 100 and 599",
        id="status-str",
    ),
    pytest.param(
        [{**START, "status": 600}, BODY],
        "R011",
        "sent status 600",
        "an int between 100 and 599",
        id="status-600",
    ),
    pytest.param(
        [{**START, "headers": [(b"X-Trail", b"1")]}, BODY],
        "R012",
        "sent a response header name b'X-Trail' that is not lowercase",
        "names lowercase",
        id="uppercase-header",
    ),
    pytest.param(
        [{**START, "headers": [("x-trail", "1")]}, BODY],
        "R012",
        "sent a response header ('x-trail', '1') that is not a pair of bytes",
        "pairs of bytes",
        id="str-header",
    ),
    pytest.param(
        [{**START, "headers": {b"x": b"1"}}, BODY],
        "R012",
        "sent response headers as a dict, not a list",
        "a list of (name, value) pairs",
        id="headers-dict",
    ),
    pytest.param(
        [START, {"type": "http.response.body", "body": "ok"}],
        "R013",
        "sent a 'body' of type str",
        "'body' to be bytes",
        id="str-body",
    ),
    pytest.param(
        [START, BODY, BODY],
        "R014",
        "sent http.response.body after the final body",
        "nothing after the final http.response.body",
        id="body-after-final",
    ),
    pytest.param(
        [{**START, "status": 204}, BODY],
        "R015",
        "sent a 2-byte body with status 204",
        "1xx, 204 or 304 response has no body",
        id="body-with-204",
    ),
    pytest.param(
        [{**START, "status": 304}, BODY],
        "R015",
        "sent a 2-byte body with status 304",
        "has no body",
        id="body-with-304",
    ),
    pytest.param(
        [{**START, "headers": [(b"content-length", b"10")]}, BODY],
        "R016",
        "declared content-length: 10 but sent 2 bytes",
        "must match the declared content-length",
        id="content-length-short",
    ),
    pytest.param(
        [
            {**START, "headers": [(b"content-length", b"1")]},
            {**BODY, "more_body": True},
            BODY,
        ],
        "R016",
        "declared content-length: 1 but already sent 2 bytes",
        "must match the declared content-length",
        id="content-length-exceeded-mid-stream",
    ),
    pytest.param(
        [{**START, "headers": [(b"content-length", b"two")]}, BODY],
        "R016",
        "sent a content-length b'two' that is not a number",
        "content-length",
        id="content-length-not-a-number",
    ),
    pytest.param(
        [{**START, "headers": [(b"content-length", b"7" * 5000)]}, BODY],
        "R016",
        "sent a content-length of 5000 digits",
        "content-length",
        id="content-length-too-long-for-int",
    ),
    pytest.param(
        [{**START, "headers": [{b"x-a": b"1", b"x-b": b"2"}]}, BODY],
        "R012",
        "sent a response header {b'x-a': b'1', b'x-b': b'2'} that is not a (name, value) pair",
        "a list of (name, value) pairs",
        id="dict-as-a-header-pair",
    ),
    pytest.param(
        [START, {"type": "http.response.bogus"}],
        "R017",
        "sent an unknown message type 'http.response.bogus' in an http scope",
        "Send only message types the scope defines",
        id="unknown-type",
    ),
    pytest.param(
        [START, {**BODY, "more_body": True}],
        "R050",
        "returned before the final http.response.body (more_body=False)",
        "must not return before the response is complete",
        id="returned-mid-body",
    ),
]


@pytest.mark.parametrize(("messages", "rule", "what", "expected"), HTTP_ZOO)
async def test_strict_mode_raises_at_the_broken_http_message_naming_the_layer(
    messages: list[Message], rule: str, what: str, expected: str
) -> None:
    stack = guarded((Sends, {"messages": messages}))
    with pytest.raises(ASGIProtocolError) as info:
        await call(stack)
    text = str(info.value)
    assert text.startswith(f"ASGI_MIDDLEWARE[1] ({SENDS!r}): {what}")
    assert expected in text
    assert f"middleware_stack.{rule}" in text
    assert info.value.layer == SENDS
    report = stack.check_report()
    assert report[f"ASGI_MIDDLEWARE[1] ({SENDS!r})"]["violations"] == 1
    assert report[f"ASGI_MIDDLEWARE[0] ('{HERE}.Clean')"]["violations"] == 0


async def test_strict_error_quotes_the_offending_message() -> None:
    stack = guarded((Sends, {"messages": [{**START, "status": 99}, BODY]}))
    with pytest.raises(ASGIProtocolError) as info:
        await call(stack)
    assert "{'type': 'http.response.start', 'status': 99, 'headers': []}" in str(info.value)
    assert info.value.message == {**START, "status": 99}


async def test_warn_mode_logs_and_warns_the_same_text_and_the_response_still_flows(
    caplog: pytest.LogCaptureFixture,
) -> None:
    stack = guarded((Sends, {"messages": [START, BODY, BODY]}), mode="warn")
    with (
        caplog.at_level(logging.WARNING, logger="middleware_stack.checks"),
        pytest.warns(StackWarning) as record,
    ):
        response = await call(stack)
    assert response.status == 200
    [warning] = [w.message for w in record if isinstance(w.message, StackWarning)]
    assert isinstance(warning, StackWarning)
    assert warning.index == 1 and warning.path == SENDS
    assert warning.id == "middleware_stack.R014"
    [log] = [r for r in caplog.records if r.name == "middleware_stack.checks"]
    assert log.getMessage() == f"{warning} [middleware_stack.R014]"
    assert "sent http.response.body after the final body" in log.getMessage()


async def test_a_message_passed_on_unchanged_is_blamed_only_on_the_layer_that_made_it(
    caplog: pytest.LogCaptureFixture,
) -> None:
    # Clean layers at [0] and [2] forward the broken message; only [1] made it.
    stack = build_stack(
        ok_app, [Clean, (Sends, {"messages": [START, START, BODY]}), Clean2], checks="warn"
    )
    with pytest.warns(StackWarning):
        await call(stack)
    counts = {k: v["violations"] for k, v in stack.check_report().items()}
    assert counts == {
        f"ASGI_MIDDLEWARE[0] ('{HERE}.Clean')": 0,
        f"ASGI_MIDDLEWARE[1] ({SENDS!r})": 1,
        f"ASGI_MIDDLEWARE[2] ('{HERE}.Clean2')": 0,
        f"the app ('{HERE}.ok_app')": 0,
    }


class CopiesMessages:
    """Forwards a copy of every message (a correct layer that never edits in place)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        async def copying(message: Message) -> None:
            await send(dict(message))

        await self.app(scope, receive, copying)


async def test_a_broken_message_passed_on_as_a_copy_is_blamed_only_on_its_maker() -> None:
    stack = build_stack(
        ok_app, [CopiesMessages, (Sends, {"messages": [BODY, START, BODY]})], checks="warn"
    )
    with pytest.warns(StackWarning, match="sent http.response.body before"):
        await call(stack)
    counts = {k: v["violations"] for k, v in stack.check_report().items()}
    assert counts[f"ASGI_MIDDLEWARE[0] ('{HERE}.CopiesMessages')"] == 0
    assert counts[f"ASGI_MIDDLEWARE[1] ({SENDS!r})"] == 1


async def test_announcing_trailers_and_never_sending_them_is_an_incomplete_response() -> None:
    announced = {**START, "trailers": True}
    with pytest.raises(ASGIProtocolError) as info:
        await call(guarded((Sends, {"messages": [announced, BODY]})))
    assert "returned before the final http.response.trailers" in str(info.value)
    trailers = {"type": "http.response.trailers", "headers": [(b"x-t", b"1")]}
    stack = guarded((Sends, {"messages": [announced, BODY, trailers]}))
    assert (await call(stack)).status == 200


async def test_a_layer_sending_an_equal_broken_message_later_is_blamed_too() -> None:
    # Only a copy made while the inner boundary forwards its reported message is that
    # message; the same bytes sent afterwards by another layer are that layer's fault.
    def end() -> Message:
        return {"type": "http.response.body", "body": b"", "more_body": False}

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send(end())
        await send(end())  # the app's own extra final body

    class Finisher:
        def __init__(self, app: ASGIApp) -> None:
            self.app = app

        async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
            await self.app(scope, receive, send)
            await send(end())  # "finishes" every response again, on its own

    stack = build_stack(app, [Finisher], checks="warn")
    with pytest.warns(StackWarning):
        await call(stack)
    report = stack.check_report()
    assert report[f"the app ('{HERE}.{app.__qualname__}')"]["violations"] == 1
    assert report[f"ASGI_MIDDLEWARE[0] ('{HERE}.{Finisher.__qualname__}')"]["violations"] == 1


class CopiesHeadersWith:
    """Passes on a copy of the response or scope headers whose first value is ``value``."""

    def __init__(self, app: ASGIApp, value: Any, where: str) -> None:
        self.app = app
        self.value = value
        self.where = where

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        async def edit(message: Message) -> None:
            if message["type"] == "http.response.start" and self.where == "response":
                headers = [
                    (k, self.value if i == 0 else v) for i, (k, v) in enumerate(message["headers"])
                ]
                message = {**message, "headers": headers}
            await send(message)

        if self.where == "scope":
            name = scope["headers"][0][0]
            scope = {**scope, "headers": [(name, self.value), *scope["headers"][1:]]}
        await self.app(scope, receive, edit)


@pytest.mark.parametrize("where", ["response", "scope"])
async def test_an_equal_but_non_bytes_header_value_in_a_copy_is_caught(where: str) -> None:
    # bytearray(b"2") == b"2": the checked-pairs shortcut must go by identity.
    layer = (CopiesHeadersWith, {"value": bytearray(b"2"), "where": where})
    with pytest.raises(ASGIProtocolError, match="that is not a pair of bytes"):
        await call(guarded(layer), headers=[("content-length", "2")])


class ListPairs:
    """Passes the response headers on as two-item lists (allowed), plus ``x-a: 1``."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        async def lists(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = [list(p) for p in message["headers"]] + [[b"x-a", b"1"]]
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, lists)


class EditsListPair:
    def __init__(self, app: ASGIApp, edit: str) -> None:
        self.app = app
        self.edit = edit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        async def edit(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message["headers"])  # a copy sharing the list pairs
                for pair in headers:
                    if self.edit == "length" and pair[0] == b"content-length":
                        pair[1] = b"5"
                    if self.edit == "upper" and pair[0] == b"x-a":
                        pair[0] = b"X-A"
                message = {**message, "headers": headers}
            elif message["type"] == "http.response.body" and self.edit == "length":
                message = {**message, "body": b"hello"}
            await send(message)

        await self.app(scope, receive, edit)


async def test_a_list_pair_changed_in_place_in_a_copy_is_judged_by_its_new_value() -> None:
    fixes_length = build_stack(
        ok_app,
        [(EditsListPair, {"edit": "length"}), "tests.test_guards.ListPairs"],
        checks="strict",
    )
    assert (await call(fixes_length)).body == b"hello"  # correct, so nothing to blame
    uppercases = build_stack(
        ok_app, [(EditsListPair, {"edit": "upper"}), "tests.test_guards.ListPairs"], checks="strict"
    )
    with pytest.raises(ASGIProtocolError, match="name b'X-A' that is not lowercase"):
        await call(uppercases)


class GrowsBody:
    """Appends to the body but keeps the app's content-length: the classic bug."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        async def grow(message: Message) -> None:
            if message["type"] == "http.response.body":
                message = {**message, "body": message.get("body", b"") + b"!!"}
            await send(message)

        await self.app(scope, receive, grow)


async def test_content_length_mismatch_is_blamed_on_the_layer_that_changed_the_body() -> None:
    with pytest.raises(ASGIProtocolError) as info:
        await call(guarded(GrowsBody))
    assert str(info.value).startswith(
        f"ASGI_MIDDLEWARE[1] ('{HERE}.GrowsBody'): declared content-length: 2 but sent 4 bytes"
    )


# -- scope -----------------------------------------------------------------------------


class MutatesScope:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        scope["user"] = "alice"
        await self.app(scope, receive, send)


class AppendsScopeHeader:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        scope["headers"].append((b"x-injected", b"1"))
        await self.app(scope, receive, send)


class MutatesAfterTheCall:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await self.app(scope, receive, send)
        scope["path"] = "/rewritten"


class CopiesScope:
    def __init__(self, app: ASGIApp, changes: dict[str, Any]) -> None:
        self.app = app
        self.changes = changes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await self.app({**scope, **self.changes}, receive, send)


@pytest.mark.parametrize(
    ("layer", "what"),
    [
        (MutatesScope, "changed the scope it received instead of copying it (key(s) 'user')"),
        (
            AppendsScopeHeader,
            "changed the scope it received instead of copying it (key(s) 'headers')",
        ),
        (
            MutatesAfterTheCall,
            "changed the scope it received instead of copying it (key(s) 'path')",
        ),
    ],
)
async def test_a_layer_mutating_the_scope_it_received_is_named(layer: type, what: str) -> None:
    with pytest.raises(ASGIProtocolError) as info:
        await call(guarded(layer))
    text = str(info.value)
    assert text.startswith(f"ASGI_MIDDLEWARE[1] ('{HERE}.{layer.__name__}'): {what}")
    assert "Copy the scope before changing it" in text


async def test_a_layer_that_copies_the_scope_before_changing_it_is_fine() -> None:
    stack = guarded((CopiesScope, {"changes": {"user": "alice", "path": "/x"}}))
    assert (await call(stack)).body == b"ok"


@pytest.mark.parametrize(
    ("changes", "rule", "what"),
    [
        (
            {"headers": [(b"X-Up", b"1")]},
            "R002",
            "passed a scope with a header name b'X-Up' that is not lowercase",
        ),
        (
            {"headers": [("x-str", b"1")]},
            "R002",
            "passed a scope with a header ('x-str', b'1') that is not a pair of bytes",
        ),
        ({"type": "htttp"}, "R001", "passed a scope of unknown type 'htttp'"),
        ({"method": b"GET"}, "R001", "passed a scope whose 'method' is bytes b'GET', not str"),
        (
            {"query_string": "a=1"},
            "R001",
            "passed a scope whose 'query_string' is 'a=1', not bytes",
        ),
    ],
)
async def test_a_malformed_scope_is_blamed_on_the_layer_that_built_it(
    changes: dict[str, Any], rule: str, what: str
) -> None:
    with pytest.raises(ASGIProtocolError) as info:
        await call(guarded((CopiesScope, {"changes": changes})))
    assert str(info.value).startswith(f"ASGI_MIDDLEWARE[1] ('{HERE}.CopiesScope'): {what}")
    assert f"middleware_stack.{rule}" in str(info.value)


class CopiesScopeAppendsHeader:
    """Copies the scope (fine) but appends a bad header to the very list it shares."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        inner = {**scope, "extra": 1}
        inner["headers"].append((b"X-Bad", b"1"))
        await self.app(inner, receive, send)


async def test_a_scope_copy_whose_shared_header_list_grew_a_bad_header_is_caught() -> None:
    # The copy's header list is the checked outer one, but longer now: walked again.
    stack = guarded(CopiesScopeAppendsHeader, mode="warn")
    with pytest.warns(StackWarning) as record:
        await call(stack)
    texts = [str(w.message) for w in record if isinstance(w.message, StackWarning)]
    assert any(
        t.startswith(f"ASGI_MIDDLEWARE[1] ('{HERE}.CopiesScopeAppendsHeader'): passed a scope")
        and "b'X-Bad' that is not lowercase" in t
        for t in texts
    ), texts


class AppendsResponseHeader:
    """Appends ``pair`` to the response headers list in place (as CORS/timing layers do)."""

    def __init__(self, app: ASGIApp, pair: tuple[Any, Any], grow: bool = False) -> None:
        self.app = app
        self.pair = pair
        self.grow = grow

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        async def add(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"].append(self.pair)
            elif self.grow:
                message = {**message, "body": message.get("body", b"") + b"!!"}
            await send(message)

        await self.app(scope, receive, add)


@pytest.mark.parametrize(
    ("pair", "what"),
    [
        ((b"X-Up", b"1"), "sent a response header name b'X-Up' that is not lowercase"),
        ((b"x-str", "1"), "sent a response header (b'x-str', '1') that is not a pair of bytes"),
        (
            (b"content-length", b"9"),
            "sent two content-length headers that disagree (2 and 9)",
        ),
    ],
)
async def test_a_bad_header_appended_to_the_checked_response_headers_is_blamed_on_its_layer(
    pair: tuple[Any, Any], what: str
) -> None:
    # The inner app's header list passed the inner boundary; the layer grew it in place.
    stack = build_stack(ok_app, [Clean, (AppendsResponseHeader, {"pair": pair})], checks="strict")
    with pytest.raises(ASGIProtocolError) as info:
        await call(stack)
    assert str(info.value).startswith(
        f"ASGI_MIDDLEWARE[1] ('{HERE}.AppendsResponseHeader'): {what}"
    )


async def test_clean_headers_appended_in_place_pass_and_keep_the_declared_length() -> None:
    ok = (AppendsResponseHeader, {"pair": (b"x-ok", b"1")})
    stack = build_stack(ok_app, [Clean, ok], checks="strict")
    assert (await call(stack)).status == 200
    assert all(c["violations"] == 0 for c in stack.check_report().values())
    # Only the appended pair is scanned at that boundary; the app's content-length: 2
    # still holds there, so the same layer growing the body is caught.
    grows = (AppendsResponseHeader, {"pair": (b"x-ok", b"1"), "grow": True})
    with pytest.raises(ASGIProtocolError) as info:
        await call(build_stack(ok_app, [Clean, grows], checks="strict"))
    assert str(info.value).startswith(
        f"ASGI_MIDDLEWARE[1] ('{HERE}.AppendsResponseHeader'): declared content-length: 2 "
        "but sent 4 bytes"
    )


class EditsResponseHeaders:
    """Edits the response headers the inner boundary checked: ``how`` says in which way."""

    def __init__(self, app: ASGIApp, how: str, pair: tuple[Any, Any]) -> None:
        self.app = app
        self.how = how
        self.pair = pair

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        async def edit(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = message["headers"]
                if self.how == "replace in place":
                    headers[0] = self.pair  # same list, same length
                elif self.how == "copy and append":
                    message = {**message, "headers": [*headers, self.pair]}
                else:  # "copy, replace and append"
                    message = {**message, "headers": [self.pair, *headers[1:], (b"x-ok", b"1")]}
            await send(message)

        await self.app(scope, receive, edit)


@pytest.mark.parametrize("how", ["replace in place", "copy and append", "copy, replace and append"])
async def test_a_bad_header_put_into_checked_response_headers_any_way_is_blamed_on_its_layer(
    how: str,
) -> None:
    # Unchanged pairs are not walked twice, but no edit of them slips through that.
    edit = (EditsResponseHeaders, {"how": how, "pair": (b"X-Up", b"1")})
    stack = build_stack(ok_app, [Clean, edit], checks="strict")
    with pytest.raises(ASGIProtocolError) as info:
        await call(stack)
    assert str(info.value).startswith(
        f"ASGI_MIDDLEWARE[1] ('{HERE}.EditsResponseHeaders'): sent a response header name "
        "b'X-Up' that is not lowercase"
    )


@pytest.mark.parametrize("how", ["copy and append", "copy, replace and append"])
async def test_a_second_content_length_in_a_copy_of_checked_headers_is_caught(how: str) -> None:
    edit = (EditsResponseHeaders, {"how": how, "pair": (b"content-length", b"9")})
    with pytest.raises(ASGIProtocolError, match="content-length"):
        await call(build_stack(ok_app, [Clean, edit], checks="strict"))


class DropsPath:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await self.app({k: v for k, v in scope.items() if k != "path"}, receive, send)


async def test_a_scope_missing_required_keys_names_them() -> None:
    with pytest.raises(
        ASGIProtocolError, match=r"passed an http scope without the required key\(s\) path"
    ):
        await call(guarded(DropsPath))


async def test_a_malformed_scope_from_the_server_is_blamed_on_the_server() -> None:
    stack = guarded(mode="warn")
    scope = http_scope(headers=[("host", "x")])
    scope["headers"] = [(b"Host", b"x")]
    with pytest.warns(
        StackWarning, match="the ASGI server: passed a scope with a header name b'Host'"
    ):
        await call(stack, scope=scope)
    assert stack.check_report()["the ASGI server"]["violations"] == 1


class RewritesHostInPlace:
    """Replaces a pair of the request headers in place: same list, same length."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        scope["headers"][0] = (b"host", b"internal.example")
        await self.app(scope, receive, send)


async def test_a_request_header_replaced_in_place_is_a_scope_mutation() -> None:
    with pytest.raises(ASGIProtocolError) as info:
        await call(guarded(RewritesHostInPlace), headers=[("host", "example.com")])
    assert str(info.value).startswith(
        f"ASGI_MIDDLEWARE[1] ('{HERE}.RewritesHostInPlace'): changed the scope it received "
        "instead of copying it (key(s) 'headers')"
    )


@pytest.mark.parametrize("scope", [None, [("type", "http")], "http"])
async def test_a_scope_that_is_not_a_dict_is_named_as_such_and_blamed_on_the_server_only(
    scope: Any,
) -> None:
    stack = build_stack(ok_app, [Clean, Clean2], checks="warn")
    # Clean and Clean2 pass it on unchanged; the Django boundary then cannot read it.
    what = f"the ASGI server: passed a scope that is a {type(scope).__name__}"
    with pytest.warns(StackWarning, match=what), pytest.raises(TypeError):
        await stack(scope, None, None)
    report = stack.check_report()
    assert report["the ASGI server"]["violations"] == 1
    assert all(c["violations"] == 0 for label, c in report.items() if label != "the ASGI server")


# -- receive ---------------------------------------------------------------------------


class ReplaysBody:
    """Reads the body, then hands the app a receive that replays it forever (the bug)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        message = await receive()

        async def replay() -> Message:
            return message

        await self.app(scope, replay, send)


class ReplaysBodyOnce:
    """The correct version: replay once, then the real receive."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        first: list[Message] = [await receive()]

        async def replay() -> Message:
            return first.pop() if first else await receive()

        await self.app(scope, replay, send)


def django_stack(*entries: Any, mode: str = "warn", **kw: Any) -> Any:
    from django.core.asgi import get_asgi_application

    return build_stack(get_asgi_application(), list(entries), checks=mode, **kw)


async def test_replaying_the_request_body_is_caught_before_django_asserts() -> None:
    stack = django_stack(Clean, ReplaysBody, mode="strict")
    with pytest.raises(ASGIProtocolError) as info:
        await call(stack, "POST", "/json/", body=b"{}")
    text = str(info.value)
    assert text.startswith(
        f"ASGI_MIDDLEWARE[1] ('{HERE}.ReplaysBody'): returned another http.request after the final request body"
    )
    assert "Django's ASGIHandler raises AssertionError" in text


async def test_replaying_the_body_in_warn_mode_warns_then_django_asserts_as_it_would() -> None:
    stack = django_stack(Clean, ReplaysBody)
    with (
        pytest.warns(StackWarning, match=r"ReplaysBody'\): returned another http\.request"),
        pytest.raises(AssertionError, match="Invalid ASGI message after request body"),
    ):
        await call(stack, "POST", "/json/", body=b"{}")


async def test_replaying_the_body_once_then_passing_through_is_fine() -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error", StackWarning)
        response = await call(
            django_stack(Clean, ReplaysBodyOnce), "POST", "/json/", body=b'{"a": 1}'
        )
    assert response.status == 200


# -- completion ------------------------------------------------------------------------


class Swallows:
    """Calls the app with a send that drops everything, then returns."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        async def drop(message: Message) -> None:
            return None

        await self.app(scope, receive, drop)


async def test_a_layer_that_swallows_the_response_is_named_and_only_it(
    caplog: pytest.LogCaptureFixture,
) -> None:
    stack = build_stack(ok_app, [Clean, Swallows, Clean2], checks="warn")
    with (
        caplog.at_level(logging.WARNING, logger="middleware_stack.checks"),
        pytest.warns(StackWarning),
        pytest.raises(AssertionError, match=r"no http\.response\.start"),
    ):
        await call(stack)
    messages = [r.getMessage() for r in caplog.records]
    assert len(messages) == 1
    assert messages[0].startswith(
        f"ASGI_MIDDLEWARE[1] ('{HERE}.Swallows'): returned without sending http.response.start."
    )
    assert "the server then sends a 500" in messages[0]


async def test_returning_early_after_the_client_disconnected_is_not_a_violation() -> None:
    async def disconnected() -> Message:
        return {"type": "http.disconnect"}

    async def gives_up(scope: Scope, receive: Receive, send: Send) -> None:
        assert (await receive())["type"] == "http.disconnect"

    sent: list[Message] = []

    async def send(message: Message) -> None:
        sent.append(message)

    stack = build_stack(gives_up, [Clean], checks="strict")
    await stack(http_scope(), disconnected, send)
    assert sent == []


# -- websocket -------------------------------------------------------------------------

ACCEPT = {"type": "websocket.accept"}
WS_ZOO = [
    pytest.param(
        [{"type": "websocket.send", "text": "hi"}],
        "R020",
        "sent websocket.send before websocket.accept",
        id="send-before-accept",
    ),
    pytest.param([ACCEPT, ACCEPT], "R020", "sent a second websocket.accept", id="accept-twice"),
    pytest.param(
        [ACCEPT, {"type": "websocket.close"}, {"type": "websocket.send", "text": "x"}],
        "R020",
        "sent websocket.send after the connection was closed",
        id="send-after-close",
    ),
    pytest.param(
        [ACCEPT, {"type": "websocket.close", "code": 1005}],
        "R021",
        "sent close code 1005",
        id="reserved-close-code",
    ),
    pytest.param(
        [ACCEPT, {"type": "websocket.close", "code": "1000"}],
        "R021",
        "sent close code '1000'",
        id="str-close-code",
    ),
    pytest.param(
        [ACCEPT, {"type": "websocket.send", "text": "a", "bytes": b"b"}],
        "R022",
        "sent a websocket.send without exactly one of bytes/text",
        id="both-payloads",
    ),
]


@pytest.mark.parametrize(("messages", "rule", "what"), WS_ZOO)
async def test_websocket_order_and_close_codes_are_checked(
    messages: list[Message], rule: str, what: str
) -> None:

    class WsSends(Sends):
        async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
            await receive()
            for message in self.messages:
                await send(dict(message))

    stack = guarded((WsSends, {"messages": messages}))
    with pytest.raises(ASGIProtocolError) as info:
        await ws_session(stack)
    assert f"ASGI_MIDDLEWARE[1] ('{HERE}.{WsSends.__qualname__}'): {what}" in str(info.value)
    assert f"middleware_stack.{rule}" in str(info.value)
    assert "websocket.accept (or websocket.close to refuse) first" in str(info.value) or rule in (
        "R021",
        "R022",
    )


# -- lifespan --------------------------------------------------------------------------


class StartupTwice:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "lifespan":
            await self.app(scope, receive, send)
            return
        await receive()
        await send({"type": "lifespan.startup.complete"})
        await send({"type": "lifespan.startup.complete"})


class ShutdownEarly:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "lifespan":
            await self.app(scope, receive, send)
            return
        await receive()
        await send({"type": "lifespan.shutdown.complete"})


class NeverAnswers:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "lifespan":
            await self.app(scope, receive, send)
            return
        await receive()


@pytest.mark.parametrize(
    ("layer", "what"),
    [
        (StartupTwice, "answered lifespan.startup twice (lifespan.startup.complete)"),
        (ShutdownEarly, "sent lifespan.shutdown.complete before receiving lifespan.shutdown"),
        (NeverAnswers, "returned without answering lifespan.startup"),
    ],
)
async def test_lifespan_answers_are_checked(layer: type, what: str) -> None:
    with pytest.raises(ASGIProtocolError) as info:
        await lifespan(guarded(layer))
    assert str(info.value).startswith(f"ASGI_MIDDLEWARE[1] ('{HERE}.{layer.__name__}'): {what}")


# -- structure, report, command --------------------------------------------------------


def _walk(app: Any) -> list[Any]:
    """Every object reachable through the chain's .app / .inner links."""
    seen: list[Any] = []
    todo = [app]
    while todo:
        node = todo.pop()
        if node is None or any(node is s for s in seen):
            continue
        seen.append(node)
        todo.extend(getattr(node, attr, None) for attr in ("app", "inner"))
    return seen


@pytest.mark.parametrize("mode", ["off", "warn", "strict"])
def test_off_mode_composes_no_wrapper_at_all_and_on_modes_wrap_every_boundary(mode: str) -> None:
    entries: list[Any] = [
        Clean,
        {"middleware": Clean, "scopes": ["http"], "name": "narrow"},
        Clean2,
    ]
    stack = build_stack(ok_app, entries, checks=mode)
    nodes = _walk(stack._chain)
    checkpoints = [n for n in nodes if isinstance(n, Checkpoint)]
    if mode == "off":
        assert checkpoints == []
        assert stack.guard is None and stack.check_report() == {}
        assert isinstance(stack._chain, Clean)  # the outermost layer itself, unwrapped
    else:
        assert len(checkpoints) == 4  # three layers and the app
        assert isinstance(stack._chain, Checkpoint)  # the outermost layer is wrapped too
        assert any(isinstance(n, ScopeFilter) for n in nodes)
        assert stack.guard is not None


def test_off_mode_does_not_even_import_the_guards_for_a_fresh_stack() -> None:
    import sys

    saved = {k: v for k, v in sys.modules.items() if k.startswith("middleware_stack.guards")}
    for key in saved:
        del sys.modules[key]
    try:
        build_stack(ok_app, [Clean], checks="off")
        assert "middleware_stack.guards" not in sys.modules
    finally:
        sys.modules.update(saved)


async def test_report_counts_per_layer_and_names_the_django_app() -> None:
    stack = django_stack(Clean, (Sends, {"messages": [START, BODY, BODY]}))
    with pytest.warns(StackWarning):
        await call(stack)
        await call(stack)
    report = stack.check_report()
    assert list(report) == [
        f"ASGI_MIDDLEWARE[0] ('{HERE}.Clean')",
        f"ASGI_MIDDLEWARE[1] ({SENDS!r})",
        "the Django app ('django.core.handlers.asgi.ASGIHandler')",
    ]
    assert report[f"ASGI_MIDDLEWARE[1] ({SENDS!r})"] == {
        "index": 1,
        "path": SENDS,
        "violations": 2,
        "blocking": 0,
        "max_blocking_ms": 0.0,
        "rules": {"middleware_stack.R014": 2},
    }
    table = format_report(report, "warn", 20)
    assert "Runtime checks (checks=warn, blocking over 20 ms)" in table
    row = next(line for line in table.splitlines() if line.startswith("ASGI_MIDDLEWARE[1]"))
    assert row.split()[-4:] == ["2", "0", "-", "R014x2"]


def test_format_report_says_when_checks_are_off() -> None:
    assert "Runtime checks are off" in format_report({})


@pytest.mark.parametrize("value", ["20", -1, float("nan"), float("inf"), 10**400, True])
def test_bad_blocking_threshold_is_a_configuration_error(value: Any) -> None:
    from middleware_stack import StackConfigurationError

    with (
        override_settings(ASGI_MIDDLEWARE_BLOCKING_MS=value),
        pytest.raises(StackConfigurationError, match="ASGI_MIDDLEWARE_BLOCKING_MS = "),
    ):
        build_stack(ok_app, [Clean], checks="warn")


@override_settings(ASGI_MIDDLEWARE=[f"{HERE}.Clean"], ASGI_MIDDLEWARE_CHECKS="warn")
def test_asgi_stack_command_prints_the_check_table() -> None:
    out = io.StringIO()
    call_command("asgi_stack", "--checks", stdout=out)
    text = out.getvalue()
    assert "Runtime checks (checks=warn, blocking over 20 ms), counts since start" in text
    assert f"ASGI_MIDDLEWARE[0] ('{HERE}.Clean')" in text
    assert "the Django app ('django.core.handlers.asgi.ASGIHandler')" in text


@override_settings(ASGI_MIDDLEWARE=[f"{HERE}.Clean"], ASGI_MIDDLEWARE_CHECKS="warn")
def test_asgi_stack_command_json_carries_the_counts() -> None:
    import json

    out = io.StringIO()
    call_command("asgi_stack", "--json", "--checks", stdout=out)
    data = json.loads(out.getvalue())
    assert data["runtime_checks"][f"ASGI_MIDDLEWARE[0] ('{HERE}.Clean')"]["violations"] == 0


@override_settings(ASGI_MIDDLEWARE=[f"{HERE}.Clean"], ASGI_MIDDLEWARE_CHECKS="off")
def test_asgi_stack_command_says_checks_are_off() -> None:
    out = io.StringIO()
    call_command("asgi_stack", "--checks", stdout=out)
    assert "Runtime checks are off" in out.getvalue()
