"""ASGI_LIFESPAN under a server that sends no lifespan (daphne): run at the first request."""

from __future__ import annotations

import asyncio
import logging
import tempfile
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
from django.test import override_settings

from middleware_stack import StackConfigurationError, build_stack
from middleware_stack.checks import check_stack
from tests.asgi import call, lifespan
from tests.servers import serve


class Recorder:
    def __init__(self, gate: asyncio.Event | None = None, fail: bool = False) -> None:
        self.events: list[str] = []
        self.gate = gate
        self.fail = fail
        self.entered = asyncio.Event()

    @asynccontextmanager
    async def __call__(self, app: Any) -> AsyncIterator[dict[str, Any]]:
        self.events.append("startup")
        self.entered.set()
        if self.gate is not None:
            await self.gate.wait()
        if self.fail:
            raise OSError("no database")
        yield {"db": "connected"}
        self.events.append("shutdown")


def state_app(seen: list[Any]) -> Any:
    async def app(scope: Any, receive: Any, send: Any) -> None:
        seen.append(dict(scope.get("state") or {}))
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"ok"})

    return app


def serve_once(stack: Any) -> None:
    """One request on a loop that stops without finalising async generators, as daphne's."""
    loop = asyncio.new_event_loop()
    try:
        loop.run_until_complete(call(stack))
    finally:
        loop.close()


async def test_first_requests_wait_for_one_startup_and_all_see_its_state(
    caplog: pytest.LogCaptureFixture,
) -> None:
    gate = asyncio.Event()
    recorder = Recorder(gate)
    seen: list[Any] = []
    stack = build_stack(state_app(seen), ["tests.layers.Tag"], lifespan=recorder, checks="off")
    with caplog.at_level(logging.WARNING, logger="middleware_stack"):
        tasks = [asyncio.ensure_future(call(stack)) for _ in range(3)]
        await asyncio.wait_for(recorder.entered.wait(), 5)
        assert seen == []  # every first request waits on the start-up
        gate.set()
        responses = await asyncio.wait_for(asyncio.gather(*tasks), 5)
    assert [r.status for r in responses] == [200, 200, 200]
    assert recorder.events == ["startup"]
    assert seen == [{"db": "connected"}] * 3
    warnings = [r.getMessage() for r in caplog.records if "sent no lifespan" in r.getMessage()]
    assert len(warnings) == 1
    assert "the server (ASGI 3.0, on 127.0.0.1:8000)" in warnings[0]
    assert "ASGI_LIFESPAN_FALLBACK = False" in warnings[0]


def test_shutdown_runs_at_exit_on_a_fresh_loop() -> None:
    recorder = Recorder()
    stack = build_stack(state_app([]), [], lifespan=recorder, checks="off")
    fallback = stack.boundary.fallback
    assert fallback is not None
    serve_once(stack)  # the server's loop, then gone
    assert stack.boundary.fallback is None and recorder.events == ["startup"]
    fallback.shutdown()  # what atexit runs
    assert recorder.events == ["startup", "shutdown"]
    fallback.shutdown()  # once only
    assert recorder.events == ["startup", "shutdown"]


def test_shutdown_at_exit_is_bounded_in_time(caplog: pytest.LogCaptureFixture) -> None:
    @asynccontextmanager
    async def slow_exit(app: Any) -> AsyncIterator[None]:
        yield
        await asyncio.Event().wait()  # never returns

    stack = build_stack(state_app([]), [], lifespan=slow_exit, checks="off")
    fallback = stack.boundary.fallback
    assert fallback is not None
    serve_once(stack)
    with caplog.at_level(logging.ERROR, logger="middleware_stack"):
        fallback.shutdown(timeout=0.05)
    assert any("did not finish in 0.05s" in r.getMessage() for r in caplog.records)


async def test_a_server_that_sends_lifespan_gets_no_fallback(
    caplog: pytest.LogCaptureFixture,
) -> None:
    recorder = Recorder()
    seen: list[Any] = []
    stack = build_stack(state_app(seen), ["tests.layers.Tag"], lifespan=recorder, checks="off")
    task = asyncio.ensure_future(lifespan(stack))
    await asyncio.wait_for(recorder.entered.wait(), 5)
    with caplog.at_level(logging.WARNING, logger="middleware_stack"):
        await call(stack)
    await task
    assert recorder.events == ["startup", "shutdown"]
    assert not any("sent no lifespan" in r.getMessage() for r in caplog.records)


@override_settings(ASGI_LIFESPAN_FALLBACK=False)
async def test_the_setting_turns_the_fallback_off() -> None:
    recorder = Recorder()
    seen: list[Any] = []
    stack = build_stack(state_app(seen), [], lifespan=recorder, checks="off")
    await call(stack)
    assert recorder.events == [] and seen == [{}]


@pytest.mark.parametrize("value", ["yes", 1, None])
def test_a_bad_fallback_setting_is_a_typed_error_in_build_and_check(value: object) -> None:
    with override_settings(ASGI_LIFESPAN_FALLBACK=value):
        with pytest.raises(StackConfigurationError, match="ASGI_LIFESPAN_FALLBACK = ") as info:
            build_stack(state_app([]), [], lifespan=Recorder(), checks="off")
        assert info.value.id == "middleware_stack.E010"
        assert [m.id for m in check_stack()] == ["middleware_stack.E010"]


async def test_a_failed_startup_fails_the_requests_and_is_logged_once(
    caplog: pytest.LogCaptureFixture,
) -> None:
    stack = build_stack(state_app([]), [], lifespan=Recorder(fail=True), checks="off")
    with caplog.at_level(logging.ERROR, logger="middleware_stack"):
        for _ in range(2):
            with pytest.raises(RuntimeError, match=r"start-up failed .*OSError: no database"):
                await call(stack)
    assert len([r for r in caplog.records if "startup failed" in r.getMessage()]) == 1


@pytest.mark.server
def test_daphne_runs_startup_at_the_first_request_state_reaches_the_view_and_shutdown_at_exit() -> (
    None
):
    with tempfile.TemporaryDirectory() as tmp:
        log = Path(tmp) / "lifespan.log"
        env = {"DJANGO_SETTINGS_MODULE": "tests.channels_site.settings", "LIFESPAN_LOG": str(log)}
        with serve(
            "daphne", "tests.channels_site.asgi:application", env=env, ready_path="/who/"
        ) as srv:
            r = httpx.get(srv.url + "/state/", timeout=10)
            assert r.status_code == 200 and r.json() == {"started_by": "lifespan"}
            assert [line.split()[0] for line in log.read_text().splitlines()] == ["startup"]
        output = srv.log()
        events = [line.split()[0] for line in log.read_text().splitlines()]
    assert events == ["startup", "shutdown"], output
    assert "daphne (" in output and "sent no lifespan before the first request" in output
    assert "Traceback" not in output


RECORDED: list[str] = []


@asynccontextmanager
async def recording_lifespan(app: Any) -> AsyncIterator[dict[str, Any]]:
    RECORDED.append("startup")
    yield {"db": "connected"}


@override_settings(ASGI_LIFESPAN="tests.test_lifespan_fallback.recording_lifespan")
def test_the_test_client_runs_no_lifespan_fallback() -> None:
    from middleware_stack.test import Client

    RECORDED.clear()
    assert Client().get("/missing/").status_code == 404
    assert RECORDED == []  # as documented: the client runs no lifespan
