"""The development loop runs through the stack, or says it does not (subprocesses)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest
from django.test import override_settings

from middleware_stack.devserver import default_asgi_application
from tests.servers import ROOT, free_port

pytestmark = pytest.mark.server


@contextmanager
def manage(*args: str, settings: str = "example_project.settings") -> Iterator[tuple[str, Path]]:
    """Run example/manage.py with ``args`` + a free port until it answers; yields (url, log)."""
    port = free_port()
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(ROOT), str(ROOT / "example")]),
        "DJANGO_SETTINGS_MODULE": settings,
    }
    with tempfile.NamedTemporaryFile(suffix=".log", delete=False) as log:
        path = Path(log.name)
    with path.open("wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "manage.py", *args, f"127.0.0.1:{port}"],
            cwd=ROOT / "example", env=env, stdout=out, stderr=subprocess.STDOUT,
            start_new_session=True,
        )  # fmt: skip
        url = f"http://127.0.0.1:{port}"
        try:
            deadline = time.monotonic() + 60
            while True:
                assert proc.poll() is None, path.read_text()
                try:
                    httpx.get(url + "/healthz", timeout=1)
                    break
                except httpx.TransportError:
                    assert time.monotonic() < deadline, path.read_text()
                    time.sleep(0.1)
            yield url, path
        finally:
            os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(15)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()


def test_wsgi_runserver_says_the_stack_is_not_applied_and_how_to_run_it() -> None:
    with manage("runserver", "--noreload") as (url, log):
        response = httpx.get(url + "/api/hello/", timeout=10)
        output = log.read_text()
    assert "server-timing" not in response.headers  # the stack is bypassed: so it says
    assert "middleware_stack.W007" in output
    assert "ASGI_MIDDLEWARE is not applied" in output
    assert "python manage.py asgi_runserver" in output and "'daphne' first" in output


def test_asgi_runserver_serves_asgi_py_through_the_stack_with_autoreload() -> None:
    with manage("asgi_runserver") as (url, log):
        response = httpx.get(url + "/api/hello/", timeout=10)
        output = log.read_text()
    assert response.status_code == 200 and "server-timing" in response.headers
    assert "Serving example_project.asgi:application through ASGI_MIDDLEWARE" in output
    assert "Will watch for changes" in output  # uvicorn's reloader is on
    assert "W007" not in output


def test_daphne_runserver_works_without_asgi_application_and_applies_the_stack() -> None:
    with manage("runserver", "--noreload", settings="tests.daphne_dev_settings") as (url, log):
        response = httpx.get(url + "/api/hello/", timeout=10)
        output = log.read_text()
    assert response.status_code == 200 and "server-timing" in response.headers
    assert "You have not set ASGI_APPLICATION" not in output
    assert "W007" not in output and "Starting ASGI/Daphne" in output


@override_settings(WSGI_APPLICATION="example_project.wsgi.application")
def test_the_default_asgi_application_is_the_projects_asgi_py() -> None:
    with override_settings(ASGI_APPLICATION="x.y.app"):
        assert default_asgi_application() == "x.y.app"
    # example_project has no wsgi.py, but an asgi.py beside the package: found either way.
    assert default_asgi_application() == "example_project.asgi.application"


@override_settings(WSGI_APPLICATION="nowhere.wsgi.application")
def test_no_default_asgi_application_when_there_is_no_asgi_module() -> None:
    assert default_asgi_application() is None  # tests.settings' package has no asgi module
