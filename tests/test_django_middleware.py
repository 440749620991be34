"""Django MIDDLEWARE classes put in ASGI_MIDDLEWARE are refused, in build_stack and check alike.

Real ASGI 2 double-callables and real ASGI 3 middleware classes are still accepted.
"""

from __future__ import annotations

import warnings
from typing import Any

import pytest
from django.core.management import call_command
from django.core.management.base import SystemCheckError
from django.test import override_settings

from middleware_stack import StackConfigurationError, build_stack
from middleware_stack.checks import check_stack
from tests.asgi import call

DJANGO_MIDDLEWARE = [
    ("django.middleware.security.SecurityMiddleware", "a MiddlewareMixin subclass"),
    ("django.middleware.common.CommonMiddleware", "a MiddlewareMixin subclass"),
    ("tests.django_mw.MixinMiddleware", "a MiddlewareMixin subclass"),
    ("tests.django_mw.PlainGetResponse", "first parameter is named 'get_response'"),
    ("tests.django_mw.function_middleware", "first parameter is named 'get_response'"),
    ("tests.django_mw.marked_middleware", "sync_capable and async_capable marker"),
]


async def hello(scope: Any, receive: Any, send: Any) -> None:
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": b"hi"})


@pytest.mark.parametrize(("path", "reason"), DJANGO_MIDDLEWARE)
def test_build_stack_refuses_django_middleware_and_says_where_it_belongs(
    path: str, reason: str
) -> None:
    with pytest.raises(StackConfigurationError) as info:
        build_stack(hello, ["tests.layers.Tag", path], checks="off")
    err = info.value
    assert err.id == "middleware_stack.E012" and err.index == 1
    assert "This is Django middleware (" in err.msg and "put it in MIDDLEWARE" in str(err)
    assert reason in err.msg and f"Move {path!r} from ASGI_MIDDLEWARE to MIDDLEWARE" in str(err)


@pytest.mark.parametrize(("path", "reason"), DJANGO_MIDDLEWARE)
def test_manage_py_check_fails_on_django_middleware_not_w001(path: str, reason: str) -> None:
    with override_settings(ASGI_MIDDLEWARE=[path]):
        messages = check_stack()
        assert [(m.obj, m.id) for m in messages] == [
            ("ASGI_MIDDLEWARE[0]", "middleware_stack.E012")
        ]
        with pytest.raises(SystemCheckError, match="put it in MIDDLEWARE"):
            call_command("check")


class TextbookASGI2:
    """An ASGI 2 middleware as written before ASGI 3: inner(scope) -> coroutine callable."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner

    def __call__(self, scope: Any) -> Any:
        async def instance(receive: Any, send: Any) -> None:
            await self.inner(scope, receive, send)

        return instance


async def test_a_real_asgi2_double_callable_is_still_adapted_not_refused() -> None:
    with pytest.warns(Warning, match="ASGI 2 double-callable") as record:
        stack = build_stack(hello, [TextbookASGI2], checks="off")
    assert [w.message.id for w in record] == ["middleware_stack.W001"]  # type: ignore[union-attr]
    assert (await call(stack)).body == b"hi"


@pytest.mark.parametrize(
    ("factory", "options"),
    [
        ("starlette.middleware.gzip.GZipMiddleware", {"minimum_size": 10}),
        ("starlette.middleware.cors.CORSMiddleware", {"allow_origins": ["https://a.example"]}),
        ("starlette.middleware.trustedhost.TrustedHostMiddleware", {"allowed_hosts": ["*"]}),
        ("asgi_correlation_id.CorrelationIdMiddleware", {}),
    ],
)
async def test_real_asgi3_middleware_classes_are_accepted_unchanged(
    factory: str, options: dict[str, Any]
) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        stack = build_stack(hello, [(factory, options)], checks="off")
    assert (await call(stack)).body == b"hi"
    with override_settings(ASGI_MIDDLEWARE=[(factory, options)]):
        assert check_stack() == []
