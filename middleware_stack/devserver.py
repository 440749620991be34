"""The development loop: which ASGI application to serve, and saying when the stack is bypassed.

Django's own ``runserver`` serves the WSGI handler: ``ASGI_MIDDLEWARE`` is not applied
at all (no CORS, no auth passthrough, and views reading ``request.scope`` fail), and
nothing says so. ``manage.py asgi_runserver`` serves the project's ASGI application with
uvicorn and autoreload instead; daphne's ``runserver`` (``"daphne"`` first in
``INSTALLED_APPS``) serves ``ASGI_APPLICATION``, which the app config fills in from
``WSGI_APPLICATION``'s sibling ``asgi`` module when it is unset.
"""

from __future__ import annotations

import importlib.util
import logging
import sys
from collections.abc import Sequence
from typing import Any

from django.conf import settings
from django.core import checks

__all__ = ["check_wsgi_runserver", "default_asgi_application", "fill_asgi_application"]

logger = logging.getLogger("middleware_stack")


def default_asgi_application() -> str | None:
    """``ASGI_APPLICATION``, else ``application`` in the ``asgi`` module of the project.

    The project package is ``WSGI_APPLICATION``'s, else the settings module's: the
    layout ``django-admin startproject`` writes (``mysite/settings.py``, ``mysite/asgi.py``).
    """
    value = getattr(settings, "ASGI_APPLICATION", None)
    if isinstance(value, str) and value:
        return value
    candidates = []
    wsgi = getattr(settings, "WSGI_APPLICATION", None)
    if isinstance(wsgi, str) and wsgi.endswith(".application"):
        candidates.append(wsgi.rpartition(".")[0].rpartition(".")[0])
    settings_module = getattr(settings, "SETTINGS_MODULE", None)
    if isinstance(settings_module, str):
        candidates.append(settings_module.rpartition(".")[0])
    for package in candidates:
        module = f"{package}.asgi" if package else "asgi"
        try:
            found = importlib.util.find_spec(module) is not None
        except (ImportError, ValueError):
            found = False
        if found:
            return f"{module}.application"
    return None


def fill_asgi_application() -> None:
    """With daphne installed and ``ASGI_APPLICATION`` unset, point it at the project's asgi.py.

    daphne's ``runserver`` refuses to start without the setting ("You have not set
    ASGI_APPLICATION"), although startproject's ``asgi.py`` is right there.
    """
    if "daphne" not in settings.INSTALLED_APPS or getattr(settings, "ASGI_APPLICATION", None):
        return
    found = default_asgi_application()
    if found is not None:
        settings.ASGI_APPLICATION = found
        logger.debug("ASGI_APPLICATION unset with daphne installed: using %r", found)


def _runserver_is_wsgi() -> bool:
    if sys.argv[1:2] != ["runserver"]:
        return False
    from django.core.management import get_commands

    return get_commands().get("runserver") in ("django.core", "django.contrib.staticfiles")


@checks.register("middleware_stack")
def check_wsgi_runserver(
    app_configs: Sequence[Any] | None = None, **kwargs: Any
) -> list[checks.CheckMessage]:
    """Under Django's WSGI ``runserver``, say that ASGI_MIDDLEWARE is not applied, and how to run it."""
    if not getattr(settings, "ASGI_MIDDLEWARE", None) or not _runserver_is_wsgi():
        return []
    return [
        checks.Warning(
            "manage.py runserver serves Django's WSGI handler, so ASGI_MIDDLEWARE is not "
            "applied: no layer runs (no CORS, no auth passthrough), and views that read "
            "request.scope fail.",
            hint="Run 'python manage.py asgi_runserver' (your asgi.py under uvicorn, with "
            "autoreload), or put 'daphne' first in INSTALLED_APPS so that runserver serves "
            "ASGI.",
            obj="settings",
            id="middleware_stack.W007",
        )
    ]
