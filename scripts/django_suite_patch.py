"""Django's runtests.py with the stack patched in: what the tests get, and what they did.

Part of ``scripts/django_suite.py``, which says what is patched and why.
"""

from __future__ import annotations

import os
import runpy
import sys
import time
import unittest
from contextlib import nullcontext
from pathlib import Path
from typing import Any

__all__ = ["RUN", "DjangoHeaderCase", "Run", "id_of", "patch_django", "run_runtests"]


class Run:
    """What the patched run saw."""

    def __init__(self) -> None:
        self.stacks: list[Any] = []  # the stacks built for the tests
        self.client_stacks: dict[int, Any] = {}  # the test clients' stacks (--clients)
        # (test before, seconds waited, still busy) for each wait for a test's work to end
        self.settled: list[tuple[str, float, bool]] = []
        self.current = ""  # the test running now
        self.ran: list[str] = []  # every test started, in order
        self.through: set[str] = set()  # tests that sent a request into a stack
        self.results: list[unittest.TestResult] = []
        self.patched: Any = None
        self.stuck: set[int] = set()  # stacks that did not settle in time (see settle)


RUN = Run()


#: Seconds a test waits at most for the requests of the tests before it to finish.
SETTLE_TIMEOUT = 10.0


def _busy(stack: Any) -> bool:
    boundary = stack.boundary
    pool = boundary.pool
    return bool(boundary.inflight or (pool is not None and pool.lent))


def settle() -> None:
    """Wait (bounded) until no stack built so far has a request or a worker thread out.

    A request can end before its sync work does (an invalid ASGI message after the body
    ends the app while its work finishes on the worker thread, and fires
    ``request_finished`` there); the next test must not count that signal as its own.
    Each test of Django's suite starts as if alone, as it does on Django's own path.
    """
    busy = [stack for stack in RUN.stacks if _busy(stack) and id(stack) not in RUN.stuck]
    if not busy:
        return
    started = time.monotonic()
    deadline = started + SETTLE_TIMEOUT
    while busy and time.monotonic() < deadline:
        time.sleep(0.005)  # polled: the pool has no event to wait on from this thread
        busy = [stack for stack in busy if _busy(stack)]
    # A stack still busy now will not settle (a test's event loop closed under its
    # request): waited for once, never again, so later tests don't each wait it out.
    RUN.stuck.update(id(stack) for stack in busy)
    RUN.settled.append((RUN.current, time.monotonic() - started, bool(busy)))


def _title_case(name: bytes) -> bytes:
    return b"-".join(part.capitalize() for part in name.split(b"-"))


class DjangoHeaderCase:
    """Outside the stack: response header names back in Django's case (``Content-Type``).

    Only for the re-run of the tests listed with ``header_case``: it shows that the case
    is all that differs in them.
    """

    def __init__(self, stack: Any) -> None:
        self.stack = stack

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        async def cased(message: Any) -> None:
            if message["type"] == "http.response.start":
                headers = [(_title_case(bytes(k)), v) for k, v in message["headers"]]
                message = {**message, "headers": headers}
            await send(message)

        await self.stack(scope, receive, send if scope["type"] != "http" else cased)


def _stacked(app: Any) -> bool:
    """Is there a stack in ``app`` (itself, or the app a wrapper such as Django's static
    files handler calls)?"""
    from middleware_stack.builder import Stack

    for _ in range(8):
        if isinstance(app, Stack):
            return True
        app = getattr(app, "stack", None) or getattr(app, "application", None)
    return False


def patch_django(
    checks: str | None, clients: bool, header_case: bool, stack_settings: dict[str, Any]
) -> None:
    """Put the stack in place, before runtests.py imports any test module."""
    import asgiref.testing
    import django.core.asgi
    import django.test.runner
    from django.test.utils import override_settings

    original = django.core.asgi.get_asgi_application

    def stacked(app: Any) -> Any:
        from middleware_stack import build_stack
        from middleware_stack.builder import Stack

        # The stack reads its settings once, here: the tests' own settings stay as they are.
        with override_settings(**stack_settings) if stack_settings else nullcontext():
            stack = build_stack(app, checks=checks)
        if not RUN.stacks:  # once: the patch is live, and what the tests get is a Stack
            assert isinstance(stack, Stack) and stack.app is app, stack
        RUN.stacks.append(stack)
        return DjangoHeaderCase(stack) if header_case else stack

    def get_asgi_application() -> Any:
        """Django's ASGI application inside ``build_stack``, as a project's asgi.py has it."""
        return stacked(original())

    django.core.asgi.get_asgi_application = get_asgi_application
    RUN.patched = get_asgi_application

    class StackCommunicator(asgiref.testing.ApplicationCommunicator):
        """asgiref's communicator; a bare ``ASGIHandler`` (a test's subclass) gets a stack."""

        def __init__(self, application: Any, scope: Any) -> None:
            from django.contrib.staticfiles.handlers import StaticFilesHandlerMixin
            from django.core.handlers.asgi import ASGIHandler

            # Django's static files handler calls the application it was given: a stack.
            static = isinstance(application, StaticFilesHandlerMixin)
            wrap = isinstance(application, ASGIHandler) and not static
            if wrap:
                application = stacked(application)
            if _stacked(application):
                RUN.through.add(RUN.current)
            super().__init__(application, scope)  # type: ignore[no-untyped-call]

    asgiref.testing.ApplicationCommunicator = StackCommunicator  # type: ignore[misc]

    run_suite = django.test.runner.DiscoverRunner.run_suite

    def recording_run_suite(self: Any, suite: Any, **kwargs: Any) -> Any:
        result = run_suite(self, suite, **kwargs)
        RUN.results.append(result)
        return result

    django.test.runner.DiscoverRunner.run_suite = recording_run_suite  # type: ignore[method-assign]
    start_test = unittest.TestResult.startTest

    def startTest(self: Any, test: Any) -> None:  # unittest's name
        settle()
        RUN.current = id_of(test)
        RUN.ran.append(RUN.current)
        start_test(self, test)

    unittest.TestResult.startTest = startTest  # type: ignore[method-assign]
    if clients:
        _patch_clients()


def _patch_clients() -> None:
    """Django's test clients -> middleware_stack.test's, by every name tests reach them by."""
    import django.test
    import django.test.client
    import django.test.testcases

    from middleware_stack.test import client as stack_client

    run = stack_client.run  # type: ignore[attr-defined]

    async def recording_run(app: Any, scope: Any, body: bytes) -> Any:
        RUN.through.add(RUN.current)
        RUN.client_stacks.setdefault(id(app), app)
        return await run(app, scope, body)

    stack_client.run = recording_run  # type: ignore[attr-defined]
    sync_client, async_client = stack_client.Client, stack_client.AsyncClient
    django.test.testcases.SimpleTestCase.client_class = sync_client
    django.test.testcases.SimpleTestCase.async_client_class = async_client
    for module in (django.test, django.test.client):
        module.Client = sync_client  # type: ignore[attr-defined]
        module.AsyncClient = async_client  # type: ignore[attr-defined]


def run_runtests(tests: Path, labels: list[str], verbosity: int) -> None:
    runtests = tests / "runtests.py"
    sys.path.insert(0, str(tests))
    os.chdir(tests)
    argv, sys.argv = sys.argv, [str(runtests), *labels, "--parallel", "1", "-v", str(verbosity)]
    try:
        runpy.run_path(str(runtests), run_name="__main__")
    except SystemExit as exc:  # runtests exits with its own verdict; ours is below
        if exc.code not in (0, 1, False, True, None):
            raise
    finally:
        sys.argv = argv


def id_of(test: Any) -> str:
    inner = getattr(test, "test_case", None)  # a subTest: the test it belongs to
    return str((inner if inner is not None else test).id())
