"""``manage.py asgi_stack``: print the configured stack, outermost first."""

from __future__ import annotations

import json
from typing import Any

from django.core.exceptions import ImproperlyConfigured
from django.core.management.base import BaseCommand, CommandError, CommandParser

from middleware_stack.builder import Stack, build_stack


class Command(BaseCommand):
    help = "Print the ASGI middleware stack built from ASGI_MIDDLEWARE, outermost first."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--json", action="store_true", help="Print JSON for machines.")
        parser.add_argument(
            "--checks",
            action="store_true",
            help="Also print per-layer runtime check counts (for a stack built in this process).",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        from django.core.asgi import get_asgi_application

        try:
            stack = build_stack(get_asgi_application())
        except ImproperlyConfigured as exc:  # StackConfigurationError included
            raise CommandError(str(exc)) from exc
        if options["json"]:
            data = describe_json(stack)
            if options["checks"]:
                data["runtime_checks"] = stack.check_report()
            self.stdout.write(json.dumps(data, indent=2, default=repr))
            return
        self.stdout.write(stack.describe())
        if options["checks"]:
            from middleware_stack.guards import format_report

            blocking_ms = getattr(stack.guard, "blocking_ms", None)
            self.stdout.write(format_report(stack.check_report(), stack.checks, blocking_ms))


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
