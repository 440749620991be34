"""The benchmark's lower-bound checker (``S/B-warn-floor``) really checks what it claims.

A lower bound that skipped its checks would prove nothing: each rule it lists is shown
to catch a violation, a clean stack to pass, and the hand-overs to be logged per layer.
"""

from __future__ import annotations

import math
from typing import Any

import pytest

from benchmarks.driver import Exchange
from benchmarks.floor_checks import FloorViolation, _local, floor_stack
from benchmarks.inprocess import CASES
from middleware_stack.types import ASGIApp, Message, Receive, Scope, Send
from tests.layers import Tag

SCOPE = next(c for c in CASES if c.name == "S/B").request.scope()


def _app(*messages: Message) -> ASGIApp:
    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        for message in messages:
            await send(dict(message))

    return app


START = {"type": "http.response.start", "status": 200, "headers": [(b"content-length", b"2")]}
BODY = {"type": "http.response.body", "body": b"ok"}


async def _run(
    app: ASGIApp, layers: list[Any] | None = None, scope: dict[str, Any] | None = None
) -> Exchange:
    ex = Exchange()
    stack = floor_stack([Tag] if layers is None else layers, app)
    await stack(dict(SCOPE if scope is None else scope), ex.receive, ex.send)
    return ex


async def test_floor_checker_passes_a_clean_stack_and_adds_the_layers_headers():
    ex = await _run(_app(START, BODY), [Tag, Tag])
    assert ex.status == 200 and ex.finished


@pytest.mark.parametrize(
    ("messages", "rule"),
    [
        ((BODY,), "body outside the response"),
        ((START, START), "second start"),
        (({**START, "status": 700}, BODY), "status"),
        (({**START, "headers": [(b"Content-Length", b"2")]}, BODY), "header name"),
        (({**START, "headers": [(b"x", bytearray(b"y"))]}, BODY), "header type"),
        (({**START, "headers": [(b"x", b"y", b"z")]}, BODY), "header pair"),
        ((START, {**BODY, "body": "ok"}), "body type"),
        ((START, {**BODY, "body": b"okay"}), "content-length"),
        (({**START, "status": 204, "headers": []}, BODY), "body for a no-body status"),
        ((START, BODY, BODY), "body outside the response"),
        ((START, {**BODY, "more_body": True}), "response not finished"),
    ],
)
async def test_floor_checker_raises_on_each_rule_it_claims(messages, rule):
    with pytest.raises(FloorViolation, match=rule):
        await _run(_app(*messages))


async def test_floor_checker_sees_a_layer_mutating_its_scope():
    class Mutates:
        def __init__(self, app: ASGIApp) -> None:
            self.app = app

        async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
            scope["headers"].append((b"x-added", b"1"))  # in place: the server's list
            await self.app(scope, receive, send)

    with pytest.raises(FloorViolation, match="scope mutated"):
        await _run(_app(START, BODY), [Mutates])


async def test_floor_checker_checks_a_scope_copy_made_by_a_layer():
    class BadCopy:
        def __init__(self, app: ASGIApp) -> None:
            self.app = app

        async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
            await self.app({**scope, "headers": [(b"X-Upper", b"1")]}, receive, send)

    with pytest.raises(FloorViolation, match="scope"):
        await _run(_app(START, BODY), [BadCopy])


async def test_floor_checker_logs_hand_overs_into_each_layer_and_its_send_wrapper(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    steps: list[list[Any]] = []

    class Spy:
        def __init__(self, app: ASGIApp) -> None:
            self.app = app

        async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
            steps.append(_local.state.log)  # the driven step's log, as the layer sees it
            await self.app(scope, receive, send)

    # A step that outlasts the lowest blocking threshold (another test's guard set it;
    # a loaded host makes any step that long) gets an end marker for the blame pass:
    # not a hand-over, so keep it out of the count.
    from middleware_stack.guards import blocking

    monkeypatch.setattr(blocking, "_min_threshold", math.inf)
    await _run(_app(START, BODY), [Spy, Tag])
    (log,) = {id(s): s for s in steps}.values()
    owners = [owner for _, owner, _ in log]
    # Into Spy, into Tag, into the app; Tag's send wrapper runs with Tag current and the
    # server's send with nobody current, once per message; then back out.
    assert owners.count(None) == 2  # the server's send, entered once per message
    # the step's start, 3 boundaries in and out, 2 messages into Tag's wrapper and back
    # and into the server's send and back
    assert len(owners) == 1 + 3 * 2 + 2 * 4


async def test_floor_checker_matches_content_length_except_for_head():
    short = (START, {**BODY, "body": b""})
    await _run(_app(*short), scope={**SCOPE, "method": "HEAD"})
    with pytest.raises(FloorViolation, match="content-length"):
        await _run(_app(*short))


async def test_floor_checker_sees_the_request_body_replayed():
    async def reads_once(scope: Scope, receive: Receive, send: Send) -> None:
        await receive()  # the final http.request
        await send(dict(START))
        await send(dict(BODY))

    await _run(reads_once, [Tag, Tag])

    async def reads(scope: Scope, receive: Receive, send: Send) -> None:
        await receive()
        await receive()

    class Replaying:
        def __init__(self, app: ASGIApp) -> None:
            self.app = app

        async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
            first = await receive()

            async def replay() -> Message:
                return first

            await self.app(scope, replay, send)

    with pytest.raises(FloorViolation, match="after the final one"):
        await _run(reads, [Replaying])


async def test_floor_checker_sees_a_scope_changed_before_the_inner_call():
    class ChangesPath:
        def __init__(self, app: ASGIApp) -> None:
            self.app = app

        async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
            scope["path"] = "/elsewhere"
            await self.app(scope, receive, send)

    with pytest.raises(FloorViolation, match="scope mutated"):
        await _run(_app(START, BODY), [ChangesPath, Tag])


class PassesThrough:
    """Passes its send on unchanged (as the auth layer does): the merged path."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await self.app(scope, receive, send)


class StartsItself:
    """Sends the start itself, then lets the inner app send the body."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await send(dict(START))
        await self.app(scope, receive, send)


@pytest.mark.parametrize(
    ("messages", "rule"),
    [
        ((), None),
        ((BODY,), "body outside the response"),
        ((START, START), "second start"),
        (({**START, "headers": [(b"X", b"1")]}, BODY), "header name"),
        ((START, {**BODY, "body": b"okay"}), "content-length"),
        (({**START, "status": 204, "headers": []}, BODY), "body for a no-body status"),
        ((START, {**BODY, "more_body": True}), "response not finished"),
    ],
)
async def test_floor_checker_rules_hold_through_layers_that_pass_send_through(messages, rule):
    if rule is None:  # a clean response, checked once and applied at every boundary
        ex = await _run(_app(START, BODY), [PassesThrough, PassesThrough])
        assert ex.status == 200 and ex.finished
        return
    with pytest.raises(FloorViolation, match=rule):
        await _run(_app(*messages), [PassesThrough, PassesThrough])


async def test_floor_checker_checks_an_inner_stream_that_differs_from_the_outer_one():
    # the outer stream is fine (start from the layer, body from the app); the app's own
    # stream is a body without a start
    with pytest.raises(FloorViolation, match="body outside the response"):
        await _run(_app(BODY), [StartsItself])


async def test_floor_checker_survives_the_blame_pass_of_a_long_step(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """On a loaded machine a step outlasts the blocking threshold, and the core's blame
    pass keys every frame of the step's log in a dict: the floor's frames must hash (by
    identity, their scope is a dict), as the real guard's do. The benchmark's quick run
    failed with "unhashable type: 'dict'" whenever that happened."""
    from middleware_stack.guards import blocking

    monkeypatch.setattr(blocking, "_min_threshold", math.inf)  # every step is a long one
    ex = await _run(_app(START, BODY), [Tag, Tag])
    assert ex.status == 200 and ex.finished
