"""Django system checks: every build-time finding, without starting a server.

``manage.py check`` reports the same findings ``build_stack`` would raise or warn,
under stable ids (``middleware_stack.E0xx`` / ``W0xx``), with the entry named in
``obj`` so the output reads ``ASGI_MIDDLEWARE[2]: ...``.

A layer may add its own checks by giving its instances a ``stack_checks(deploy)``
method returning ``django.core.checks.CheckMessage`` objects; the deploy flag is true
under ``check --deploy``.
"""

from __future__ import annotations

import difflib
from collections.abc import Sequence
from typing import Any

from django.conf import settings
from django.core import checks

from middleware_stack.builder import inspect_stack
from middleware_stack.exceptions import StackConfigurationError, StackWarning
from middleware_stack.settings import KNOWN_SETTINGS, OTHER_ASGI_SETTINGS

__all__ = ["check_setting_names", "check_stack", "check_stack_deploy"]


def _obj(finding: StackConfigurationError | StackWarning) -> str:
    return f"ASGI_MIDDLEWARE[{finding.index}]" if finding.index is not None else "settings"


def _message(finding: StackConfigurationError | StackWarning) -> str:
    path = f"{finding.path!r}: " if finding.path and finding.index is not None else ""
    return path + finding.msg


def _run(deploy: bool) -> list[checks.CheckMessage]:
    result = inspect_stack()
    messages: list[checks.CheckMessage] = []
    if not deploy:
        for err in result.errors:
            messages.append(checks.Error(_message(err), hint=err.hint, obj=_obj(err), id=err.id))
        for w in result.warnings:
            messages.append(checks.Warning(_message(w), hint=w.hint, obj=_obj(w), id=w.id))
    for instance in result.instances:
        hook = getattr(instance, "stack_checks", None)
        if callable(hook):
            messages.extend(hook(deploy))
    return messages


@checks.register("middleware_stack")
def check_stack(
    app_configs: Sequence[Any] | None = None, **kwargs: Any
) -> list[checks.CheckMessage]:
    return _run(deploy=False)


@checks.register("middleware_stack", deploy=True)
def check_stack_deploy(
    app_configs: Sequence[Any] | None = None, **kwargs: Any
) -> list[checks.CheckMessage]:
    return _run(deploy=True)


@checks.register("middleware_stack")
def check_setting_names(
    app_configs: Sequence[Any] | None = None, **kwargs: Any
) -> list[checks.CheckMessage]:
    """Warn on ``ASGI_*`` settings close to ours: a misspelt setting is silently ignored.

    Only near-misses are reported (difflib's ratio of at least 0.8), so other projects'
    ``ASGI_*`` settings (``ASGI_APPLICATION``) pass.
    """
    messages: list[checks.CheckMessage] = []
    for name in sorted(n for n in dir(settings) if n.startswith("ASGI_")):
        if name in KNOWN_SETTINGS or name in OTHER_ASGI_SETTINGS:
            continue
        close = difflib.get_close_matches(name, KNOWN_SETTINGS, n=1, cutoff=0.8)
        if close:
            messages.append(
                checks.Warning(
                    f"{name} is not a setting middleware_stack reads, so it is ignored; "
                    f"did you mean {close[0]}?",
                    hint=f"Rename {name} to {close[0]} in settings.py.",
                    obj="settings",
                    id="middleware_stack.W006",
                )
            )
    return messages
