"""The Django boundary: lifespan, websocket routing/refusal, header case."""

from __future__ import annotations

import asyncio
import json
import logging
import warnings
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import pytest
from django.core.asgi import get_asgi_application

from middleware_stack import StackWarning, build_stack
from middleware_stack.types import Message, Receive, Scope, Send
from tests.asgi import call, http_scope, lifespan

STARTED: list[Any] = []


@asynccontextmanager
async def good_lifespan(app: Any) -> AsyncIterator[dict[str, Any]]:
    STARTED.append(("start", app))
    yield {"pool": "db-pool-1"}
    STARTED.append(("stop", app))


@asynccontextmanager
async def failing_lifespan(app: Any) -> AsyncIterator[None]:
    raise ConnectionError("cache server unreachable")
    yield  # pragma: no cover


@asynccontextmanager
async def failing_shutdown(app: Any) -> AsyncIterator[None]:
    yield
    raise OSError("flush failed")


def django_stack(**kwargs: Any) -> Any:
    kwargs.setdefault("checks", "off")
    return build_stack(get_asgi_application(), kwargs.pop("middleware", []), **kwargs)


async def test_lifespan_is_answered_for_django_without_user_lifespan() -> None:
    sent = await lifespan(django_stack())
    assert [m["type"] for m in sent] == ["lifespan.startup.complete", "lifespan.shutdown.complete"]


async def test_user_lifespan_runs_and_receives_the_stack() -> None:
    STARTED.clear()
    stack = django_stack(lifespan="tests.test_boundary.good_lifespan")
    sent = await lifespan(stack, state={})
    assert [m["type"] for m in sent] == ["lifespan.startup.complete", "lifespan.shutdown.complete"]
    assert [("start", stack), ("stop", stack)] == STARTED


async def test_lifespan_state_reaches_the_request_through_server_state() -> None:
    stack = django_stack(lifespan=good_lifespan)
    server_state: dict[str, Any] = {}
    await lifespan(stack, state=server_state)
    assert server_state == {"pool": "db-pool-1"}
    # A server that supports state copies it into each request scope.
    response = await call(stack, path="/state/", state=dict(server_state))
    assert json.loads(response.body)["state"] == {"pool": "db-pool-1"}


async def test_lifespan_state_reaches_the_request_when_server_lacks_state_support() -> None:
    stack = django_stack(lifespan=good_lifespan)
    await lifespan(stack)  # no "state" in the lifespan scope
    response = await call(stack, path="/state/")
    assert json.loads(response.body)["state"] == {"pool": "db-pool-1"}


async def test_failing_startup_sends_startup_failed_with_the_message(
    caplog: pytest.LogCaptureFixture,
) -> None:
    stack = django_stack(lifespan=failing_lifespan)
    sent: list[Message] = []
    inbox: asyncio.Queue[Message] = asyncio.Queue()
    await inbox.put({"type": "lifespan.startup"})

    async def send(message: Message) -> None:
        sent.append(message)

    with caplog.at_level(logging.ERROR, "middleware_stack"):
        await asyncio.wait_for(stack({"type": "lifespan"}, inbox.get, send), 5)
    assert sent == [
        {
            "type": "lifespan.startup.failed",
            "message": "ConnectionError: cache server unreachable",
        }
    ]
    assert "lifespan startup failed" in caplog.text


class LifespanFailure(Exception):
    """What hypercorn raises from ``send`` when the app reports a failed startup."""


async def test_a_server_raising_on_startup_failed_gets_no_chained_error_of_ours() -> None:
    stack = django_stack(lifespan=failing_lifespan)
    inbox: asyncio.Queue[Message] = asyncio.Queue()
    await inbox.put({"type": "lifespan.startup"})

    async def send(message: Message) -> None:
        if message["type"].endswith(".failed"):
            raise LifespanFailure(message["message"])

    with pytest.raises(LifespanFailure) as info:
        await asyncio.wait_for(stack({"type": "lifespan"}, inbox.get, send), 5)
    # The server's log shows its own error, not "During handling of ... ConnectionError".
    assert info.value.__context__ is None


async def test_failing_shutdown_sends_shutdown_failed() -> None:
    sent = await lifespan(django_stack(lifespan=failing_shutdown))
    assert sent[-1] == {"type": "lifespan.shutdown.failed", "message": "OSError: flush failed"}


async def test_layers_see_lifespan_messages_pass_through() -> None:
    from tests import layers

    layers.SeesScopes.seen = []
    stack = django_stack(middleware=["tests.layers.SeesScopes"])
    await lifespan(stack)
    assert layers.SeesScopes.seen == ["lifespan"]


async def test_non_django_app_gets_lifespan_forwarded() -> None:
    seen: list[str] = []

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        seen.append(scope["type"])
        await receive()
        await send({"type": "lifespan.startup.complete"})
        await receive()
        await send({"type": "lifespan.shutdown.complete"})

    await lifespan(build_stack(app, [], checks="off"))
    assert seen == ["lifespan"]


async def websocket_exchange(app: Any, scope_extra: dict[str, Any] | None = None) -> list[Message]:
    inbox: asyncio.Queue[Message] = asyncio.Queue()
    await inbox.put({"type": "websocket.connect"})
    sent: list[Message] = []

    async def send(message: Message) -> None:
        sent.append(message)
        if message["type"] == "websocket.accept":
            await inbox.put({"type": "websocket.receive", "text": "ping"})
        if message["type"] == "websocket.send":
            await inbox.put({"type": "websocket.disconnect", "code": 1000})

    scope = {
        "type": "websocket",
        "path": "/ws/",
        "headers": [],
        "query_string": b"",
        **(scope_extra or {}),
    }
    await asyncio.wait_for(app(scope, inbox.get, send), 5)
    return sent


async def test_websocket_is_refused_cleanly_without_an_application(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with caplog.at_level(logging.WARNING):
        sent = await websocket_exchange(django_stack())
    assert sent == [{"type": "websocket.close", "code": 1000}]
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]


async def echo_ws(scope: Scope, receive: Receive, send: Send) -> None:
    await receive()
    await send({"type": "websocket.accept"})
    message = await receive()
    await send({"type": "websocket.send", "text": f"echo {message['text']} {scope['path']}"})
    await receive()


async def test_websocket_is_routed_to_the_configured_application_through_layers() -> None:
    from tests import layers

    layers.SeesScopes.seen = []
    stack = django_stack(
        middleware=["tests.layers.SeesScopes"], websocket="tests.test_boundary.echo_ws"
    )
    sent = await websocket_exchange(stack)
    assert [m["type"] for m in sent] == ["websocket.accept", "websocket.send"]
    assert sent[1]["text"] == "echo ping /ws/"
    assert layers.SeesScopes.seen == ["websocket"]


async def test_response_header_names_are_lowercased() -> None:
    response = await call(django_stack(), path="/cookie/")
    names = [k for k, _ in response.headers]
    assert b"content-type" in names and b"set-cookie" in names and b"x-custom-header" in names
    assert all(k == k.lower() for k in names)
    assert response.header("x-custom-header") == "Yes"  # values untouched


async def test_layers_can_match_django_headers_in_lowercase() -> None:
    seen: list[bytes] = []

    class Peek:
        def __init__(self, app: Any) -> None:
            self.app = app

        async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
            async def peek(message: Message) -> None:
                if message["type"] == "http.response.start":
                    seen.extend(v for k, v in message["headers"] if k == b"content-type")
                await send(message)

            await self.app(scope, receive, peek)

    await call(django_stack(middleware=[Peek]), path="/")
    assert seen == [b"text/plain"]


async def test_django_404_and_500_pass_through_the_boundary() -> None:
    stack = django_stack()
    assert (await call(stack, path="/missing/")).status == 404
    assert (await call(stack, path="/boom/")).status == 500


async def test_request_scope_is_what_django_sees() -> None:
    stack = django_stack()
    scope = http_scope("POST", "/echo/", [("x-thing", "1")])
    response = await call(stack, scope=scope, body=b"payload")
    data = json.loads(response.body)
    assert data == {"meta": {"HTTP_X_THING": "1"}, "body": "payload"}


@pytest.mark.parametrize("checks", ["off", "warn"])
async def test_a_layer_answering_lifespan_itself_is_warned_about_the_lifespan_that_did_not_run(
    checks: str,
) -> None:
    STARTED.clear()
    stack = django_stack(
        middleware=["tests.layers.AnswersLifespan"], lifespan=good_lifespan, checks=checks
    )
    with pytest.warns(StackWarning) as warned:
        sent = await lifespan(stack)
    assert [m["type"] for m in sent] == ["lifespan.startup.complete", "lifespan.shutdown.complete"]
    assert STARTED == []  # the user's lifespan really did not run
    (w,) = [w.message for w in warned if getattr(w.message, "id", "") == "middleware_stack.W005"]
    assert "sent lifespan.startup.complete itself" in str(w)
    assert "ASGI_LIFESPAN (good_lifespan) did not run" in str(w)
    assert "'scopes': ['http', 'websocket']" in str(w)


async def test_a_layer_raising_on_lifespan_is_warned_and_its_error_still_reaches_the_server(
    caplog: pytest.LogCaptureFixture,
) -> None:
    stack = django_stack(middleware=["tests.layers.HTTPOnly"])
    with (
        caplog.at_level(logging.WARNING, "middleware_stack"),
        pytest.warns(StackWarning, match="raised AssertionError: HTTPOnly got a lifespan"),
        pytest.raises(AssertionError),
    ):
        await lifespan(stack)
    # With an asgiref too old for pooled threads there are none to speak of.
    pooled = stack.boundary.pool is not None
    assert ("pooled threads will not close their database connections" in caplog.text) is pooled


async def test_lifespan_routed_around_an_http_only_layer_runs_without_a_warning(
    recwarn: pytest.WarningsRecorder,
) -> None:
    STARTED.clear()
    stack = django_stack(
        middleware=[{"middleware": "tests.layers.HTTPOnly", "scopes": ["http", "websocket"]}],
        lifespan=good_lifespan,
    )
    sent = await lifespan(stack)
    assert [m["type"] for m in sent] == ["lifespan.startup.complete", "lifespan.shutdown.complete"]
    assert [step for step, _ in STARTED] == ["start", "stop"]
    assert not [w for w in recwarn if issubclass(w.category, StackWarning)]
    # and the next lifespan is watched afresh: a pass that reached the app sets nothing off
    await lifespan(stack)
    assert not [w for w in recwarn if issubclass(w.category, StackWarning)]


async def test_a_layer_answering_startup_first_and_passing_lifespan_on_is_not_warned(
    recwarn: pytest.WarningsRecorder,
) -> None:
    STARTED.clear()
    stack = django_stack(middleware=["tests.layers.AnswersThenForwards"], lifespan=good_lifespan)
    sent = await lifespan(stack)
    assert [m["type"] for m in sent] == ["lifespan.startup.complete", "lifespan.shutdown.complete"]
    assert [step for step, _ in STARTED] == ["start", "stop"]
    assert not [w for w in recwarn if issubclass(w.category, StackWarning)]


async def test_a_lifespan_cancelled_by_the_server_is_not_blamed_on_a_layer() -> None:
    stack = django_stack(middleware=["tests.layers.SlowToStart"], lifespan=good_lifespan)
    inbox: asyncio.Queue[Message] = asyncio.Queue()
    await inbox.put({"type": "lifespan.startup"})

    async def send(message: Message) -> None:
        pass

    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a warning would replace the CancelledError
        task = asyncio.create_task(stack({"type": "lifespan"}, inbox.get, send))
        await asyncio.sleep(0.05)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task


async def test_the_lifespan_watch_passes_odd_messages_on_untouched() -> None:
    stack = django_stack(middleware=["tests.layers.SendsOddMessage"])
    sent = await lifespan(stack)
    assert [m["type"] for m in sent] == [
        ["not", "a", "type"],
        "lifespan.startup.complete",
        "lifespan.shutdown.complete",
    ]


async def test_the_warning_about_a_raw_app_does_not_mention_database_connections() -> None:
    async def raw(scope: Scope, receive: Receive, send: Send) -> None:
        pass

    stack = build_stack(raw, ["tests.layers.HTTPOnly"], lifespan=good_lifespan, checks="off")
    with (
        pytest.warns(StackWarning, match="did not run") as warned,
        pytest.raises(AssertionError),
    ):
        await lifespan(stack)
    assert "database" not in str(warned[0].message)


async def test_a_layer_answering_startup_itself_is_warned_during_startup_not_at_shutdown(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from middleware_stack import lifespan_watch

    monkeypatch.setattr(lifespan_watch, "ANSWER_GRACE", 0.05)
    stack = django_stack(middleware=["tests.layers.AnswersLifespan"], lifespan=good_lifespan)
    inbox: asyncio.Queue[Message] = asyncio.Queue()
    sent: list[Message] = []
    await inbox.put({"type": "lifespan.startup"})

    async def send(message: Message) -> None:
        sent.append(message)

    with pytest.warns(StackWarning, match="sent lifespan.startup.complete itself") as warned:
        task = asyncio.create_task(stack({"type": "lifespan"}, inbox.get, send))
        for _ in range(100):
            if warned.list:
                break
            await asyncio.sleep(0.01)
        assert warned.list, "no warning while the server is still running"
        assert [m["type"] for m in sent] == ["lifespan.startup.complete"]  # not shut down
        await inbox.put({"type": "lifespan.shutdown"})
        await asyncio.wait_for(task, 5)
    assert len([w for w in warned if issubclass(w.category, StackWarning)]) == 1
