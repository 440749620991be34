"""``manage.py asgi_runserver``: serve the project's ASGI application with uvicorn, autoreloading.

The development loop through the stack: Django's own ``runserver`` serves WSGI and skips
``ASGI_MIDDLEWARE`` entirely. Needs uvicorn (``pip install "uvicorn[standard]"``, or the
``run`` extra).
"""

from __future__ import annotations

import os
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser

from middleware_stack.devserver import default_asgi_application


class Command(BaseCommand):
    help = (
        "Serve the ASGI application (ASGI_APPLICATION, else the asgi.py next to "
        "WSGI_APPLICATION) through the stack with uvicorn, reloading on code changes."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("addrport", nargs="?", default="127.0.0.1:8000", help="[host:]port")
        parser.add_argument(
            "--application", metavar="MODULE:ATTR", help="default: ASGI_APPLICATION"
        )
        parser.add_argument(
            "--noreload", action="store_false", dest="reload", help="No autoreload."
        )

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            import uvicorn
        except ImportError as exc:
            raise CommandError(
                "asgi_runserver needs uvicorn: pip install 'uvicorn[standard]'."
            ) from exc
        host, _, port = str(options["addrport"]).rpartition(":")
        if not port.isdigit():
            raise CommandError(f"{options['addrport']!r} is not [host:]port.")
        app = options["application"]
        if not app:
            dotted = default_asgi_application()
            if dotted is None:
                raise CommandError(
                    "No ASGI application found: set ASGI_APPLICATION = 'mysite.asgi.application' "
                    "or pass --application mysite.asgi:application."
                )
            module, _, attr = dotted.rpartition(".")
            app = f"{module}:{attr}"
        self.stdout.write(
            f"Serving {app} through ASGI_MIDDLEWARE with uvicorn on http://{host or '127.0.0.1'}:"
            f"{port}/{' (autoreload)' if options['reload'] else ''}. Quit with CONTROL-C."
        )
        os.environ.setdefault("DJANGO_SETTINGS_MODULE", str(settings.SETTINGS_MODULE))
        uvicorn.run(
            app,
            host=host or "127.0.0.1",
            port=int(port),
            reload=options["reload"],
            reload_dirs=[os.getcwd()] if options["reload"] else None,
            lifespan="on",
        )
