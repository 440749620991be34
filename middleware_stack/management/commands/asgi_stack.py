"""``manage.py asgi_stack``: print the stack the server will run, outermost first.

The application is the one a server is given: ``--application module:attr`` (what is
passed to uvicorn or hypercorn), else ``ASGI_APPLICATION`` (what daphne's and Channels'
``runserver`` serve), else the project's ``asgi.py`` (beside ``WSGI_APPLICATION`` or the
settings module), so a ``build_stack`` around a Channels router is described as it is.
With none of them, a stack is built here around ``get_asgi_application()``. The first
line of the output says which one was used.
"""

from __future__ import annotations

import importlib
import json
from typing import Any

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.core.management.base import BaseCommand, CommandError, CommandParser

from middleware_stack.builder import Stack, build_stack
from middleware_stack.layer import dotted_path
from middleware_stack.routers import find_stack


class Command(BaseCommand):
    help = (
        "Print the ASGI middleware stack of the application the server runs (ASGI_APPLICATION "
        "or --application module:attr), outermost first."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--application",
            metavar="MODULE:ATTR",
            help="The ASGI application as given to the server, e.g. mysite.asgi:application "
            "(default: the ASGI_APPLICATION setting).",
        )
        parser.add_argument("--json", action="store_true", help="Print JSON for machines.")
        parser.add_argument(
            "--checks",
            action="store_true",
            help="Also print per-layer runtime check counts (for a stack built in this process).",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            stack, source = self._stack(options["application"])
        except ImproperlyConfigured as exc:  # StackConfigurationError included
            raise CommandError(str(exc)) from exc
        if options["json"]:
            data = {"source": source, **describe_json(stack)}
            if options["checks"]:
                data["runtime_checks"] = stack.check_report()
            self.stdout.write(json.dumps(data, indent=2, default=repr))
            return
        self.stdout.write(f"Application: {source}")
        self.stdout.write(stack.describe())
        if options["checks"]:
            from middleware_stack.guards import format_report

            blocking_ms = getattr(stack.guard, "blocking_ms", None)
            self.stdout.write(format_report(stack.check_report(), stack.checks, blocking_ms))

    def _stack(self, given: str | None) -> tuple[Stack, str]:
        setting = getattr(settings, "ASGI_APPLICATION", None)
        if given:
            module, sep, attr = given.partition(":")
            if not sep or not module or not attr:
                raise CommandError(
                    f"--application {given!r}: write module:attr, e.g. mysite.asgi:application."
                )
            app = _load(module, attr, f"--application {given}")
            source = f"{given} (from --application)"
        elif setting:
            module, _, attr = str(setting).rpartition(".")
            app = _load(module, attr, f"ASGI_APPLICATION = {setting!r}")
            source = f"{setting} (from ASGI_APPLICATION)"
        else:
            found = _project_asgi()
            if found is not None:
                app, source = found
                stack, where = find_stack(app)
                if stack is not None:
                    return stack, source + (f", the stack at {where}" if where else "")
            from django.core.asgi import get_asgi_application

            stack = build_stack(get_asgi_application())
            return stack, (
                "build_stack(get_asgi_application()), built here: set ASGI_APPLICATION or pass "
                "--application module:attr to describe the application your server runs"
            )
        stack, where = find_stack(app)
        if stack is None:
            raise CommandError(
                f"{source}: {dotted_path(app)} is not a stack built by build_stack(), and none "
                "was found inside it, so ASGI_MIDDLEWARE is not applied to it. Wrap the "
                "application in asgi.py: application = build_stack(get_asgi_application())."
            )
        if where:
            source += f", the stack at {where}"
        return stack, source


def _project_asgi() -> tuple[Any, str] | None:
    """The project's asgi.py (beside WSGI_APPLICATION or the settings), if it loads."""
    from middleware_stack.devserver import default_asgi_application

    dotted = default_asgi_application()
    if dotted is None:
        return None
    module, _, attr = dotted.rpartition(".")
    try:
        app = getattr(importlib.import_module(module), attr)
    except (ImportError, AttributeError):
        return None
    return app, f"{dotted} (the project's asgi.py; ASGI_APPLICATION is not set)"


def _load(module: str, attr: str, what: str) -> Any:
    if not module or not attr:
        raise CommandError(f"{what}: not a dotted path to an application.")
    try:
        return getattr(importlib.import_module(module), attr)
    except ImproperlyConfigured:
        raise
    except (ImportError, AttributeError) as exc:
        raise CommandError(f"{what}: cannot load it: {type(exc).__name__}: {exc}") from exc


def describe_json(stack: Stack) -> dict[str, Any]:
    return {
        "checks": stack.checks,
        "app": stack.boundary.summary(),
        "layers": [
            {
                "index": layer.index,
                "name": layer.name,
                "path": layer.path,
                "options": layer.options,
                "scopes": sorted(layer.scopes),
            }
            for layer in stack.layers
        ],
    }
