"""What Django 6.0 and 6.1 (and the 5.2 security releases) change for users of the stack,
pinned against the installed Django so that docs/boundary.rst and docs/auth.rst stay true
on every version CI runs: headers with ``_`` (CVE-2026-3902), ``RemoteUserMiddleware``'s
header lookup under ASGI (6.1), and Django 6.0's ``ContentSecurityPolicyMiddleware``."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import django
import pytest
from django.contrib.auth.middleware import RemoteUserMiddleware
from django.core.asgi import get_asgi_application
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.test import override_settings
from django.urls import path

from middleware_stack import Stack, build_stack, threads
from middleware_stack.types import ASGIApp, Receive, Scope, Send
from tests.asgi import call

VERSION = django.VERSION[:3]
# CVE-2026-3902 was fixed in 5.2.13 and 6.0.4; every 6.1 release has the fix.
DROPS_UNDERSCORE_HEADERS = VERSION >= (6, 0, 4) or (5, 2, 13) <= VERSION < (6,)
HAS_CSP = VERSION >= (6, 0)

SEEN: list[list[tuple[bytes, bytes]]] = []


def headers_seen(app: ASGIApp) -> ASGIApp:
    """A pure-ASGI layer that records the request headers it is given."""

    async def layer(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            SEEN.append(list(scope["headers"]))
        await app(scope, receive, send)

    return layer


async def meta_view(request: HttpRequest) -> JsonResponse:
    return JsonResponse({"meta": sorted(k for k in request.META if k.startswith("HTTP_"))})


async def nonce_view(request: HttpRequest) -> HttpResponse:
    from django.middleware.csp import get_nonce

    return HttpResponse(str(get_nonce(request)))


def user_view(request: HttpRequest) -> HttpResponse:
    user = request.user  # set by RemoteUserMiddleware (5.2's auser() keeps an earlier answer)
    return HttpResponse(user.get_username() if user.is_authenticated else "")


class AuthUserMiddleware(RemoteUserMiddleware):
    """A custom header, spelt as Django's docs spell it from 6.1 on: the META key."""

    header = "HTTP_AUTHUSER"


urlpatterns = [
    path("meta/", meta_view),
    path("nonce/", nonce_view),
    path("user/", user_view),
]


@pytest.fixture(autouse=True)
def urls() -> Iterator[None]:
    with override_settings(ROOT_URLCONF="tests.test_django6"):
        yield


def stack(middleware: list[Any] | None = None) -> Stack:
    """Build under the current settings (tests wrap build and requests in one override:
    SECURE_CSP and AUTHENTICATION_BACKENDS are read per request)."""
    return build_stack(get_asgi_application(), middleware or [], checks="off")


@pytest.mark.skipif(
    not DROPS_UNDERSCORE_HEADERS,
    reason=f"Django {django.get_version()} predates the CVE-2026-3902 fix (5.2.13, 6.0.4)",
)
async def test_underscore_headers_reach_asgi_layers_but_not_request_meta() -> None:
    SEEN.clear()
    with override_settings(MIDDLEWARE=[]):
        app = stack([headers_seen])
        response = await call(app, path="/meta/", headers=[("x_custom", "a"), ("x-other", "b")])
    assert response.status == 200
    meta = json.loads(response.body)["meta"]
    assert "HTTP_X_OTHER" in meta
    assert "HTTP_X_CUSTOM" not in meta  # Django ignores names with "_" under ASGI
    assert (b"x_custom", b"a") in SEEN[0]  # the scope, and so every ASGI layer, keeps it


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("one_hop", [True, False])
@pytest.mark.parametrize("header", ["AuthUser", "HTTP-AuthUser"])
async def test_remote_user_middleware_custom_header_lookup_follows_the_django_release(
    header: str, one_hop: bool
) -> None:
    """6.1 reads a custom ``header`` from META as given (``HTTP_AUTHUSER`` for an
    ``AuthUser`` request header); 5.2 and 6.0 prefix ``HTTP_`` in their async code.
    The one-hop path runs the middleware's sync code, which reads it as given on every
    release (as WSGI does)."""
    with override_settings(
        MIDDLEWARE=[
            "django.contrib.sessions.middleware.SessionMiddleware",
            "django.contrib.auth.middleware.AuthenticationMiddleware",
            "tests.test_django6.AuthUserMiddleware",
        ],
        AUTHENTICATION_BACKENDS=["django.contrib.auth.backends.RemoteUserBackend"],
        ASGI_ONE_HOP=one_hop,
    ):
        response = await call(stack(), path="/user/", headers=[(header, "alice")])
    assert response.status == 200
    read_by = "AuthUser" if VERSION >= (6, 1) or one_hop else "HTTP-AuthUser"
    assert response.text == ("alice" if header == read_by else "")


@pytest.mark.skipif(not HAS_CSP, reason="ContentSecurityPolicyMiddleware is new in Django 6.0")
async def test_csp_header_and_nonce_pass_through_the_stack() -> None:
    from django.utils.csp import CSP

    with override_settings(
        MIDDLEWARE=["django.middleware.csp.ContentSecurityPolicyMiddleware"],
        SECURE_CSP={"default-src": [CSP.SELF], "script-src": [CSP.SELF, CSP.NONCE]},
    ):
        response = await call(stack(), path="/nonce/")
    assert response.status == 200
    names = [k for k, _ in response.headers]
    assert b"content-security-policy" in names  # lowercased by the boundary
    assert f"'nonce-{response.text}'" in (response.header("content-security-policy") or "")


@pytest.mark.skipif(not HAS_CSP, reason="ContentSecurityPolicyMiddleware is new in Django 6.0")
@pytest.mark.skipif(
    not threads.EXECUTOR_SUPPORTED,
    reason="counts hand-overs to pooled threads, which need asgiref>=3.13",
)
@pytest.mark.parametrize(("one_hop", "extra"), [(False, 2), (True, 0)])
async def test_csp_middleware_hand_overs_to_the_request_thread(
    monkeypatch: pytest.MonkeyPatch, one_hop: bool, extra: int
) -> None:
    """A ``MiddlewareMixin``: on Django's path its two hooks each run through
    ``sync_to_async``, on the request's pooled thread (no thread start), even around an
    async view; on the one-hop path they run in the request's one hand-over."""
    from django.utils.csp import CSP

    submitted = 0
    original = threads.WorkerExecutor.push  # every call handed to a pooled thread

    def counting(self: threads.WorkerExecutor, item: Any) -> None:
        nonlocal submitted
        submitted += 1
        original(self, item)

    monkeypatch.setattr(threads.WorkerExecutor, "push", counting)

    async def hand_overs(app: Stack) -> int:
        nonlocal submitted
        await call(app, path="/nonce/")  # warm: the pool's thread exists
        submitted = 0
        assert (await call(app, path="/nonce/")).status == 200
        return submitted

    with override_settings(MIDDLEWARE=[], ASGI_ONE_HOP=one_hop):
        bare = await hand_overs(stack())
    with override_settings(
        MIDDLEWARE=["django.middleware.csp.ContentSecurityPolicyMiddleware"],
        SECURE_CSP={"default-src": [CSP.SELF]},
        ASGI_ONE_HOP=one_hop,
    ):
        csp = await hand_overs(stack())
    assert csp - bare == extra
