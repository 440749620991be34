"""Every path-matching option matches the path Django resolves (issue 15, item 2).

``middleware_stack.scope.path_info`` is the one helper: auth ``required_paths``, CORS
``paths`` and timing ``exclude_paths`` all use it, so ``FORCE_SCRIPT_NAME`` or a mount
prefix can never make a protected URL reach its view unprotected.
"""

from __future__ import annotations

import io
from typing import Any

import httpx
import pytest
from django.core.asgi import get_asgi_application
from django.core.handlers.asgi import ASGIRequest
from django.test import override_settings
from hypothesis import given, settings
from hypothesis import strategies as st

from middleware_stack import build_stack
from middleware_stack.scope import path_info, script_name
from tests import script_name_settings
from tests.asgi import call, http_scope
from tests.servers import serve

ORIGIN = ("origin", "https://app.example.com")

segments = st.lists(st.sampled_from(["app", "api", "ap", "", "x", "é", "%2F", "app2"]), max_size=4)
paths = segments.map(lambda parts: "/" + "/".join(parts))


@pytest.mark.parametrize("force", [None, "", "/app", "/app/", "/ap"])
@settings(max_examples=60, deadline=None)
@given(path=paths, root=st.sampled_from(["", "/app", "/ap", "/app/api"]))
def test_path_info_is_what_django_resolves(force: str | None, path: str, root: str) -> None:
    scope = http_scope("GET", path, root_path=root)
    with override_settings(FORCE_SCRIPT_NAME=force):
        request = ASGIRequest(scope, io.BytesIO())
        assert path_info(scope) == request.path_info
        assert script_name(scope) == request.META["SCRIPT_NAME"]


def stack() -> Any:
    return build_stack(get_asgi_application(), script_name_settings.ASGI_MIDDLEWARE, checks="off")


@pytest.mark.django_db
async def test_force_script_name_protects_in_process() -> None:
    with override_settings(FORCE_SCRIPT_NAME="/app", ROOT_URLCONF="tests.auth_urls"):
        app = stack()
        guarded = await call(app, "GET", "/app/api/sync/", [ORIGIN], client=("203.0.113.9", 1))
        assert guarded.status == 401  # required_paths matched r"^/api/"
        assert guarded.header("access-control-allow-origin") == "https://app.example.com"
        assert guarded.header("server-timing") is None  # exclude_paths matched
        public = await call(app, "GET", "/app/sync/", [ORIGIN], client=("203.0.113.9", 1))
        assert public.status == 200
        assert public.header("access-control-allow-origin") is None  # outside CORS paths
        assert public.header("server-timing") is not None


@pytest.mark.server
def test_force_script_name_protects_under_uvicorn() -> None:
    env = {"DJANGO_SETTINGS_MODULE": "tests.script_name_settings"}
    with serve("uvicorn", "tests.auth_views:pg_application", env=env, ready_path="/app/") as srv:
        guarded = httpx.get(srv.url + "/app/api/sync/", headers=[ORIGIN], timeout=10)
        assert guarded.status_code == 401
        assert guarded.headers.get("access-control-allow-origin") == "https://app.example.com"
        assert "server-timing" not in guarded.headers
        public = httpx.get(srv.url + "/app/sync/", headers=[ORIGIN], timeout=10)
        assert public.status_code == 200 and public.json()["username"] is None
        assert "access-control-allow-origin" not in public.headers
        assert "server-timing" in public.headers
        assert "Traceback" not in srv.log()
