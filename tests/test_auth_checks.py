"""System checks for the auth passthrough (``middleware_stack.W30x``)."""

from __future__ import annotations

from typing import Any

import pytest
from django.core import checks
from django.test import override_settings

from middleware_stack import Layer
from middleware_stack.contrib.auth.checks import check_scope_user_middleware

SESSION = "django.contrib.sessions.middleware.SessionMiddleware"
AUTH = "django.contrib.auth.middleware.AuthenticationMiddleware"
SCOPE_USER = "middleware_stack.contrib.auth.ScopeUserMiddleware"
LAYER = "middleware_stack.contrib.auth.AuthPassthroughMiddleware"


def ids(**overrides: Any) -> list[str]:
    with override_settings(**overrides):
        found = checks.run_checks(tags=["middleware_stack"])
    return sorted(m.id for m in found if m.id and m.id.startswith("middleware_stack.W30"))


def test_correct_setup_has_no_findings() -> None:
    assert ids(MIDDLEWARE=[SESSION, AUTH, SCOPE_USER], ASGI_MIDDLEWARE=[LAYER]) == []


def test_scope_user_middleware_without_authentication_middleware_warns() -> None:
    assert ids(MIDDLEWARE=[SESSION, SCOPE_USER], ASGI_MIDDLEWARE=[LAYER]) == [
        "middleware_stack.W302"
    ]


def test_scope_user_middleware_before_authentication_middleware_warns() -> None:
    assert ids(MIDDLEWARE=[SESSION, SCOPE_USER, AUTH], ASGI_MIDDLEWARE=[LAYER]) == [
        "middleware_stack.W303"
    ]


@pytest.mark.parametrize(
    "asgi_middleware",
    [
        [],
        ["middleware_stack.contrib.timing.TimingMiddleware"],
        [{"middleware": LAYER, "enabled": False}],
    ],
)
def test_scope_user_middleware_without_the_asgi_layer_warns(asgi_middleware: Any) -> None:
    # The layer's own stack_checks cannot see this case; the module-level check does.
    with override_settings(MIDDLEWARE=[SESSION, AUTH, SCOPE_USER], ASGI_MIDDLEWARE=asgi_middleware):
        found = check_scope_user_middleware()
    assert [m.id for m in found] == ["middleware_stack.W304"]
    assert "ASGI_MIDDLEWARE" in found[0].msg


@pytest.mark.parametrize(
    "entry",
    [
        LAYER,
        (LAYER, {"backends": ["middleware_stack.contrib.auth.TrustedHeaderBackend"]}),
        {"middleware": LAYER, "scopes": ["http"]},
        Layer(LAYER),
        "middleware_stack.contrib.auth.middleware.AuthPassthroughMiddleware",
    ],
)
def test_every_entry_form_counts_as_the_layer(entry: Any) -> None:
    with override_settings(MIDDLEWARE=[SESSION, AUTH, SCOPE_USER], ASGI_MIDDLEWARE=[entry]):
        assert check_scope_user_middleware() == []


def test_asgi_layer_without_scope_user_middleware_warns_through_stack_checks() -> None:
    assert ids(MIDDLEWARE=[SESSION, AUTH], ASGI_MIDDLEWARE=[LAYER]) == ["middleware_stack.W305"]


def test_projects_not_using_the_bridge_get_no_findings() -> None:
    assert ids(MIDDLEWARE=[SESSION, AUTH], ASGI_MIDDLEWARE=[]) == []


def test_app_config_has_a_label_distinct_from_django_auth() -> None:
    from middleware_stack.contrib.auth.apps import AuthPassthroughConfig

    assert AuthPassthroughConfig.label != "auth"
    assert AuthPassthroughConfig.name == "middleware_stack.contrib.auth"
