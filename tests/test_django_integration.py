"""manage.py check (system checks) and manage.py asgi_stack."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from io import StringIO
from pathlib import Path

import pytest
from django.core.management import call_command
from django.core.management.base import SystemCheckError
from django.test import override_settings

from middleware_stack.checks import check_stack

ROOT = Path(__file__).resolve().parent.parent


@override_settings(
    ASGI_MIDDLEWARE=["tests.layers.Tag", "nopkg.Thing", ("tests.layers.NeedsOption", {})]
)
def test_system_checks_report_every_bad_entry_at_once() -> None:
    messages = check_stack()
    errors = {(m.obj, m.id) for m in messages if m.is_serious()}
    assert errors == {
        ("ASGI_MIDDLEWARE[1]", "middleware_stack.E002"),
        ("ASGI_MIDDLEWARE[2]", "middleware_stack.E004"),
    }
    assert all(m.hint for m in messages)


@override_settings(ASGI_MIDDLEWARE=["tests.layers.Tag", "tests.layers.Tag", "tests.layers.Outer"])
def test_system_checks_report_warnings_with_ids() -> None:
    ids = sorted(m.id for m in check_stack() if not m.is_serious())
    assert ids == ["middleware_stack.W003", "middleware_stack.W004"]


@override_settings(ASGI_MIDDLEWARE=["tests.layers.SyncCall"])
def test_manage_py_check_fails_on_a_non_async_layer() -> None:
    with pytest.raises(SystemCheckError, match=r"ASGI_MIDDLEWARE\[0\].*middleware_stack.E006"):
        call_command("check")


@override_settings(ASGI_MIDDLEWARE_CHECKS="verbose")
def test_manage_py_check_reports_a_bad_checks_mode() -> None:
    messages = check_stack()
    assert [(m.obj, m.id) for m in messages] == [("settings", "middleware_stack.E010")]


@override_settings(ASGI_MIDDLEWARE=["tests.layers.Tag"])
def test_clean_settings_pass_the_checks() -> None:
    assert check_stack() == []


@override_settings(
    ASGI_MIDDLEWARE=[
        "tests.layers.Outer",
        {"middleware": "tests.layers.Tag", "options": {"name": "t"}, "scopes": ["http"]},
    ]
)
def test_asgi_stack_prints_layers_outermost_first() -> None:
    out = StringIO()
    call_command("asgi_stack", stdout=out)
    text = out.getvalue()
    assert "checks=off" in text
    assert text.index("tests.layers.Outer") < text.index("tests.layers.Tag")
    assert "name='t'" in text and "http" in text
    assert "django.core.handlers.asgi.ASGIHandler" in text


@override_settings(ASGI_MIDDLEWARE=[("tests.layers.Tag", {"name": "t"})])
def test_asgi_stack_json_is_machine_readable() -> None:
    out = StringIO()
    call_command("asgi_stack", "--json", stdout=out)
    data = json.loads(out.getvalue())
    assert data["checks"] == "off"
    assert data["layers"] == [
        {
            "index": 0,
            "name": "Tag",
            "path": "tests.layers.Tag",
            "options": {"name": "t"},
            "scopes": ["http", "lifespan", "websocket"],
        }
    ]


def manage(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    full_env = {**os.environ, "PYTHONPATH": str(ROOT), **(env or {})}
    full_env.pop("DJANGO_SETTINGS_MODULE", None)
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=ROOT / "example",
        env=full_env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_example_project_passes_manage_py_check() -> None:
    result = manage("check")
    assert result.returncode == 0, result.stderr
    assert "no issues" in result.stdout


def test_example_projects_own_tests_pass_through_its_stack() -> None:
    # example/example_project/tests.py: CORS, identity and Server-Timing, tested with
    # middleware_stack.test.Client under Django's test runner.
    result = manage("test", "example_project", "-v", "2")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Ran 13 tests" in result.stderr and "OK" in result.stderr


def test_example_project_asgi_stack_command() -> None:
    result = manage("asgi_stack")
    assert result.returncode == 0, result.stderr
    first, _, rest = result.stdout.partition("\n")
    assert first == "Application: example_project.asgi.application (from ASGI_APPLICATION)"
    assert rest.startswith("ASGI middleware stack (checks=warn), outermost first:")
    assert "lifespan answered" in result.stdout


@pytest.mark.parametrize("value", ["x", -1, float("inf"), True])
def test_manage_py_check_reports_a_bad_blocking_threshold(value: object) -> None:
    # build_stack() would refuse it when checks are on: check says so beforehand.
    with override_settings(ASGI_MIDDLEWARE_BLOCKING_MS=value):
        messages = check_stack()
    assert [(m.obj, m.id) for m in messages] == [("settings", "middleware_stack.E010")]
    assert "ASGI_MIDDLEWARE_BLOCKING_MS" in messages[0].msg


@pytest.mark.parametrize("value", [0, "8", 2.5, False])
def test_manage_py_check_reports_a_bad_thread_pool_max(value: object) -> None:
    with override_settings(ASGI_THREAD_POOL_MAX=value):
        messages = check_stack()
    assert [(m.obj, m.id) for m in messages] == [("settings", "middleware_stack.E010")]
    assert "ASGI_THREAD_POOL_MAX" in messages[0].msg and messages[0].hint


@override_settings(ASGI_WEBSOCKET_APPLICATION=42)
def test_a_websocket_application_that_is_not_an_app_names_the_setting() -> None:
    messages = check_stack()
    assert [m.id for m in messages] == ["middleware_stack.E010"]
    assert messages[0].msg.startswith("ASGI_WEBSOCKET_APPLICATION = 42 is not an ASGI application")


@pytest.mark.parametrize(
    "value", ["middleware_stack.contrib.cors.CORSMiddleware", 42, [".x"], ["tests.broken_import.X"]]
)
def test_system_checks_never_crash_on_a_malformed_setting(value: object) -> None:
    # Every registered check (the contrib ones too) runs; middleware_stack's own reports it.
    from django.core import checks

    with override_settings(ASGI_MIDDLEWARE=value):
        messages = checks.run_checks()
    assert any(m.id in ("middleware_stack.E001", "middleware_stack.E002") for m in messages)


@override_settings(ASGI_MIDDLEWARE=["nopkg.Thing"])
def test_asgi_stack_command_turns_a_configuration_error_into_a_clean_message() -> None:
    from django.core.management.base import CommandError

    with pytest.raises(CommandError, match=r"ASGI_MIDDLEWARE\[0\] \('nopkg.Thing'\)"):
        call_command("asgi_stack", skip_checks=True, stdout=StringIO())
