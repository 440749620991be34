"""ASGI_GC_FREEZE: the process's start-up heap leaves the cyclic collector at the first
request a stack serves, once per process; never under the test client (each case runs
in a fresh interpreter, since the freeze is once per process)."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from typing import Any

import pytest

from middleware_stack import StackConfigurationError, build_stack

PRELUDE = """
import asyncio, gc, os
os.environ["DJANGO_SETTINGS_MODULE"] = "tests.settings"
import django
django.setup()
from django.core.asgi import get_asgi_application
from django.test import override_settings
from middleware_stack import build_stack
from tests.asgi import call
"""


def run(code: str) -> list[str]:
    """Run ``code`` after PRELUDE in a fresh interpreter; the lines it prints."""
    done = subprocess.run(
        [sys.executable, "-c", PRELUDE + textwrap.dedent(code)],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
    )
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout.split()


def test_the_first_request_freezes_the_start_up_heap_once_per_process() -> None:
    before, after_build, after_first, after_other_stack = run(
        """
        print(gc.get_freeze_count())
        app = build_stack(get_asgi_application(), [], checks="off")
        print(gc.get_freeze_count())
        asyncio.run(call(app, path="/sync/"))
        frozen = gc.get_freeze_count()
        print(frozen)
        other = build_stack(get_asgi_application(), [], checks="off")
        asyncio.run(call(other, path="/sync/"))
        print(gc.get_freeze_count())
        """
    )
    assert before == after_build == "0"  # building the stack freezes nothing
    assert int(after_first) > 10_000  # Django's start-up state, with the stack's
    # Not again: a second freeze would add the second stack and Django's new handler
    # (thousands of objects); the count only falls as frozen objects are freed.
    assert int(after_other_stack) <= int(after_first)


def test_asgi_gc_freeze_false_leaves_the_collector_alone() -> None:
    (count,) = run(
        """
        with override_settings(ASGI_GC_FREEZE=False):
            app = build_stack(get_asgi_application(), [], checks="off")
        asyncio.run(call(app, path="/sync/"))
        print(gc.get_freeze_count())
        """
    )
    assert count == "0"


def test_the_test_client_never_freezes() -> None:
    (count,) = run(
        """
        from middleware_stack.test import Client
        assert Client().get("/sync/").status_code == 200
        print(gc.get_freeze_count())
        """
    )
    assert count == "0"


@pytest.mark.parametrize("value", ["yes", 1, None])
def test_a_non_bool_asgi_gc_freeze_is_a_configuration_error(value: Any, settings: Any) -> None:
    settings.ASGI_GC_FREEZE = value
    with pytest.raises(StackConfigurationError, match=r"ASGI_GC_FREEZE = .* must be True or False"):
        build_stack(lambda *a: None, [], checks="off")
