"""AppConfig: ``"middleware_stack.contrib.auth"`` in ``INSTALLED_APPS`` enables its checks."""

from __future__ import annotations

from django.apps import AppConfig


class AuthPassthroughConfig(AppConfig):
    name = "middleware_stack.contrib.auth"
    label = "middleware_stack_auth"  # "auth" is django.contrib.auth's label
    verbose_name = "ASGI auth passthrough"

    def ready(self) -> None:
        from middleware_stack.contrib.auth import checks  # noqa: F401  (registers the check)
