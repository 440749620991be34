"""manage.py check warns on ASGI_* settings that are near-misses of ours (W006)."""

from __future__ import annotations

import pytest
from django.core.management import call_command
from django.test import override_settings

from middleware_stack.checks import check_setting_names
from middleware_stack.settings import KNOWN_SETTINGS


@pytest.mark.parametrize(
    ("name", "meant"),
    [
        ("ASGI_MIDDLEWARES", "ASGI_MIDDLEWARE"),
        ("ASGI_MIDDLEWARE_CHECK", "ASGI_MIDDLEWARE_CHECKS"),
        ("ASGI_LIFESPANS", "ASGI_LIFESPAN"),
        ("ASGI_WEBSOCKET_APP", "ASGI_WEBSOCKET_APPLICATION"),
        ("ASGI_MIDDLEWARE_BLOCKING", "ASGI_MIDDLEWARE_BLOCKING_MS"),
    ],
)
def test_a_near_miss_setting_is_a_warning_with_did_you_mean(name: str, meant: str) -> None:
    with override_settings(**{name: ["x"]}):
        messages = check_setting_names()
    assert [(m.id, m.obj) for m in messages] == [("middleware_stack.W006", "settings")]
    assert messages[0].msg.startswith(f"{name} is not a setting middleware_stack reads")
    assert f"did you mean {meant}?" in messages[0].msg


@pytest.mark.parametrize("name", ["ASGI_APPLICATION", "ASGI_SERVER_NAME", *KNOWN_SETTINGS])
def test_our_settings_and_other_projects_asgi_settings_pass(name: str) -> None:
    with override_settings(**{name: "x"}):
        assert check_setting_names() == []


@override_settings(ASGI_MIDDLEWARES=["tests.layers.Tag"])
def test_manage_py_check_prints_the_near_miss() -> None:
    from io import StringIO

    err = StringIO()
    call_command("check", stdout=StringIO(), stderr=err)
    assert (
        "middleware_stack.W006" in err.getvalue()
        and "did you mean ASGI_MIDDLEWARE?" in err.getvalue()
    )
