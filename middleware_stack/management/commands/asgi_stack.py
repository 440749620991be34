"""``manage.py asgi_stack``: print the configured stack, outermost first."""

from __future__ import annotations

import json
from typing import Any

from django.core.management.base import BaseCommand, CommandParser

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

        stack = build_stack(get_asgi_application())
        if options["json"]:
            self.stdout.write(json.dumps(describe_json(stack), indent=2, default=repr))
        else:
            self.stdout.write(stack.describe())
        if options["checks"]:
            report = getattr(stack, "check_report", None)
            text = report() if callable(report) else "runtime checks: not available"
            self.stdout.write(str(text))


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
