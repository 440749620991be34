"""Views for the auth passthrough tests: each reports who Django thinks the user is."""

from __future__ import annotations

import json
import os
from typing import Any

from django.http import HttpRequest, JsonResponse


def _report(request: HttpRequest, user: Any) -> JsonResponse:
    auth = request.scope.get("auth") if hasattr(request, "scope") else None
    return JsonResponse(
        {
            "username": user.get_username() if user.is_authenticated else None,
            "authenticated": bool(user.is_authenticated),
            "identity": auth.identity if auth is not None else None,
            "backend": auth.backend if auth is not None else None,
            "claims": auth.claims if auth is not None else None,
            "forwarded_user_meta": request.META.get("HTTP_X_FORWARDED_USER"),
            "meta_keys": sorted(k for k in request.META if k.startswith("HTTP_")),
        }
    )


def whoami_sync(request: HttpRequest) -> JsonResponse:
    return _report(request, request.user)


async def whoami_async(request: HttpRequest) -> JsonResponse:
    user = await request.auser()
    return _report(request, user)


# -- an ASGI app for the real-server tests -------------------------------------------

_served: Any = None


async def _echo(scope: Any, receive: Any, send: Any) -> None:
    if scope["type"] == "lifespan":
        while (await receive())["type"] != "lifespan.shutdown":
            await send({"type": "lifespan.startup.complete"})
        await send({"type": "lifespan.shutdown.complete"})
        return
    auth = scope.get("auth")
    body = {
        "identity": auth.identity if auth is not None else None,
        "client": scope["client"][0] if scope.get("client") else None,
        "headers": sorted(k.decode("latin-1") for k, _ in scope["headers"]),
    }
    if scope["type"] == "websocket":
        await receive()  # websocket.connect
        offered = scope.get("subprotocols") or []
        await send({"type": "websocket.accept", "subprotocol": offered[0] if offered else None})
        body["subprotocols"] = list(offered)
        body["sec_websocket_protocol"] = [
            v.decode("latin-1") for k, v in scope["headers"] if k == b"sec-websocket-protocol"
        ]
        body["scope_text"] = repr({k: v for k, v in scope.items() if k not in ("auth", "user")})
        await send({"type": "websocket.send", "text": json.dumps(body)})
        await send({"type": "websocket.close", "code": 1000})
        return
    await send(
        {
            "type": "http.response.start",
            "status": 200,
            "headers": [(b"content-type", b"application/json")],
        }
    )
    await send({"type": "http.response.body", "body": json.dumps(body).encode()})


def token_verify(token: str) -> str | None:
    return "ws-alice" if token == "secret-token" else None


async def served_app(scope: Any, receive: Any, send: Any) -> None:
    """The auth layer around a raw echo app; ``AUTH_TEST_TRUSTED`` lists the proxies."""
    global _served
    if _served is None:
        import django

        from middleware_stack import build_stack

        django.setup()
        proxies = os.environ.get("AUTH_TEST_TRUSTED", "127.0.0.1").split(",")
        backends: list[Any] = [
            ("middleware_stack.contrib.auth.TrustedHeaderBackend", {"trusted_proxies": proxies})
        ]
        if os.environ.get("AUTH_TEST_BEARER") == "1":  # websocket tokens as subprotocols
            backends.append(
                (
                    "middleware_stack.contrib.auth.BearerTokenBackend",
                    {"verify": "tests.auth_views.token_verify", "subprotocol_prefix": "bearer."},
                )
            )
        _served = build_stack(
            _echo,
            [("middleware_stack.contrib.auth.AuthPassthroughMiddleware", {"backends": backends})],
            checks="off",
            websocket=_echo,
        )
    await _served(scope, receive, send)


_pg_served: Any = None


async def pg_application(scope: Any, receive: Any, send: Any) -> None:
    """Django with the stack from its ASGI_MIDDLEWARE (tests.auth_pg_settings: PostgreSQL;
    tests.script_name_settings: FORCE_SCRIPT_NAME)."""
    global _pg_served
    if _pg_served is None:
        from django.core.asgi import get_asgi_application

        from middleware_stack import build_stack

        _pg_served = build_stack(get_asgi_application())
    await _pg_served(scope, receive, send)
