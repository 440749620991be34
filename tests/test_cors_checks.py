"""CORS configuration: build-time errors and warnings, CORS_* settings, order, system checks."""

from __future__ import annotations

import re
import warnings
from typing import Any

import pytest
from django.test import override_settings

from middleware_stack import StackConfigurationError, StackWarning, build_stack
from middleware_stack.checks import check_stack, check_stack_deploy
from middleware_stack.contrib.cors import CORSMiddleware
from middleware_stack.types import Receive, Scope, Send
from tests.asgi import call

CORS = "middleware_stack.contrib.cors.CORSMiddleware"
APP = "https://app.example.com"


async def raw(scope: Scope, receive: Receive, send: Send) -> None:
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": b"ok"})


def build(options: dict[str, Any]) -> Any:
    return build_stack(raw, [(CORS, options)], checks="off")


def warnings_of(options: dict[str, Any]) -> list[StackWarning]:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        build(options)
    return [w.message for w in caught if isinstance(w.message, StackWarning)]


# -- refused at build time -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("options", "code", "text"),
    [
        ({"allow_origins": ["*"], "allow_credentials": True}, "E101", "allow_credentials = True"),
        ({"allow_origins": ["https://app.example.com/"]}, "E102", "did you mean 'https://app.example.com'"),
        ({"allow_origins": ["https://app.example.com/api"]}, "E102", "no path, query or fragment"),
        ({"allow_origins": ["https://app.example.com?x=1"]}, "E102", "no path, query or fragment"),
        ({"allow_origins": ["https://app.example.com#top"]}, "E102", "no path, query or fragment"),
        ({"allow_origins": ["app.example.com"]}, "E102", "did you mean 'https://app.example.com'"),
        ({"allow_origins": ["https://user@app.example.com"]}, "E102", "user information"),
        ({"allow_origins": ["https://app.example.com:99999"]}, "E102", "port number"),
        ({"allow_origins": ["https://a.*.example.com"]}, "E102", "first label"),
        ({"allow_origins": ["https://"]}, "E102", "host is empty"),
        ({"allow_origins": ["https://*.[::1]"]}, "E102", "needs a domain name"),
        ({"allow_origins": ["http://[::1"]}, "E102", "closing ']'"),
        ({"allow_origins": ["https://bad host"]}, "E102", "not a valid host"),
        ({"allow_origins": APP}, "E106", "must be a list"),
        ({"allow_origins": [APP, 3]}, "E106", "not a str"),
        ({"allow_origin_regex": "https://(unclosed"}, "E103", "not a valid regular expression"),
        ({"allow_origin_regex": [re.compile(rb"x")]}, "E103", "bytes pattern"),
        ({"allow_origins": [APP], "paths": "(["}, "E103", "paths"),
        ({"allow_origins": [APP], "allow_methods": ["GET POST"]}, "E104", "not an HTTP method"),
        ({"allow_origins": [APP], "allow_headers": ["X-A: 1"]}, "E105", "not an HTTP header"),
        ({"allow_origins": [APP], "expose_headers": ["a,b"]}, "E105", "expose_headers"),
        ({"allow_origins": [APP], "allow_credentials": True, "expose_headers": ["*"]}, "E107", "'*'"),
        ({"allow_origins": [APP], "allow_credentials": "yes"}, "E106", "not a bool"),
        ({"allow_origins": [APP], "max_age": -1}, "E106", "negative"),
        ({"allow_origins": [APP], "max_age": "600"}, "E106", "whole number"),
        ({"allow_origins": [APP], "debug": "on"}, "E106", "debug"),
    ],
)  # fmt: skip
def test_bad_configuration_is_refused_before_the_first_request(
    options: dict[str, Any], code: str, text: str
) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with pytest.raises(StackConfigurationError) as info:
            build(options)
    err = info.value
    assert err.id == f"middleware_stack.{code}"
    assert text.lower() in str(err).lower()
    assert str(err).startswith(f"ASGI_MIDDLEWARE[0] ({CORS!r}):")
    assert err.hint


def test_unknown_option_lists_the_accepted_names() -> None:
    with pytest.raises(StackConfigurationError) as info:
        build({"allow_origin": [APP]})
    text = str(info.value)
    assert "allow_origins" in text and "allow_origin_regex" in text and "max_age" in text
    assert "Did you mean 'allow_origins'" in text


# -- warned at build time ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("options", "code"),
    [
        ({"allow_origins": [APP], "allow_methods": ["delete"]}, "W101"),
        ({"allow_origins": [APP], "allow_methods": ["patch"]}, "W101"),
        ({"allow_origin_regex": r"^https://app\.example\.com"}, "W102"),
        ({"allow_origin_regex": r"^https://app.example.com$"}, "W103"),
        ({"allow_origins": ["null"], "allow_credentials": True}, "W104"),
        ({"allow_origins": [APP], "max_age": 86401}, "W105"),
        ({"allow_origins": ["*", APP]}, "W106"),
        ({"allow_origins": []}, "W108"),
    ],
)
def test_suspicious_configuration_is_warned(options: dict[str, Any], code: str) -> None:
    found = warnings_of(options)
    assert f"middleware_stack.{code}" in [w.id for w in found], [str(w) for w in found]
    assert all(w.index == 0 and w.path == CORS for w in found)


@override_settings(MIDDLEWARE=["corsheaders.middleware.CorsMiddleware"])
def test_leftover_corsheaders_middleware_is_warned() -> None:
    assert "middleware_stack.W109" in [w.id for w in warnings_of({"allow_origins": [APP]})]


@pytest.mark.parametrize(
    "options",
    [
        {"allow_origins": [APP], "allow_methods": ["PUT", "PATCH"], "max_age": 86400},
        {"allow_origin_regex": r"^https://[a-z]+\.example\.com$"},
        {"allow_origin_regex": r"https://.*\.example\.com\Z"},
        {"allow_origins": ["https://*.example.com", "null"]},
    ],
)
def test_sound_configuration_builds_without_warnings(options: dict[str, Any]) -> None:
    assert warnings_of(options) == []


def test_end_anchored_regex_still_matches_in_full() -> None:
    layer = CORSMiddleware(raw, allow_origin_regex=r"https://[a-z]+\.example\.com$")
    assert layer._match_slow(b"https://a.example.com") == b"https://a.example.com"
    assert layer._match_slow(b"https://a.example.com.evil.net") is None


# -- CORS_* settings -------------------------------------------------------------------------


@override_settings(
    CORS_ALLOWED_ORIGINS=["https://App.example.com:443"],
    CORS_ALLOWED_ORIGIN_REGEXES=[r"^https://\w+\.example\.org$"],
    CORS_ALLOW_METHODS=["GET", "PUT"],
    CORS_ALLOW_HEADERS=["x-custom"],
    CORS_EXPOSE_HEADERS=["x-total"],
    CORS_PREFLIGHT_MAX_AGE=300,
    CORS_ALLOW_CREDENTIALS=True,
    CORS_ALLOW_PRIVATE_NETWORK=True,
    CORS_URLS_REGEX=r"^/api/",
)
async def test_no_options_reads_every_cors_setting() -> None:
    stack = build_stack(raw, [CORS], checks="off")
    assert stack.instances[0].from_settings
    r = await call(
        stack,
        "OPTIONS",
        "/api/x",
        [
            ("origin", "https://b.example.org"),
            ("access-control-request-method", "PUT"),
            ("access-control-request-headers", "x-custom"),
            ("access-control-request-private-network", "true"),
        ],
    )
    assert r.status == 204
    assert r.header("access-control-allow-origin") == "https://b.example.org"
    assert r.header("access-control-allow-credentials") == "true"
    assert r.header("access-control-allow-methods") == "GET, HEAD, POST, PUT"
    assert r.header("access-control-allow-headers") == "x-custom"
    assert r.header("access-control-max-age") == "300"
    assert r.header("access-control-allow-private-network") == "true"
    r = await call(stack, "GET", "/api/x", [("origin", APP)])
    assert r.header("access-control-allow-origin") == APP
    assert r.header("access-control-expose-headers") == "x-total"
    r = await call(stack, "GET", "/other", [("origin", APP)])
    assert r.header("access-control-allow-origin") is None


@override_settings(CORS_ALLOWED_ORIGINS=[APP])
async def test_cors_headers_defaults_apply_to_unset_settings() -> None:
    layer = CORSMiddleware(raw)
    assert layer.max_age == 86400 and not layer.allow_credentials
    r = await call(
        layer,
        "OPTIONS",
        "/",
        [
            ("origin", APP),
            ("access-control-request-method", "DELETE"),
            ("access-control-request-headers", "authorization,x-csrftoken"),
        ],
    )
    assert r.status == 204
    assert (
        r.header("access-control-allow-methods") == "GET, HEAD, POST, DELETE, OPTIONS, PATCH, PUT"
    )


@override_settings(CORS_ALLOWED_ORIGINS=["https://settings.example.com"])
async def test_any_option_given_ignores_the_cors_settings() -> None:
    layer = CORSMiddleware(raw, allow_origins=[APP])
    assert not layer.from_settings
    r = await call(layer, "GET", "/", [("origin", "https://settings.example.com")])
    assert r.header("access-control-allow-origin") is None


@override_settings(CORS_ALLOWED_ORIGINS=[APP])
def test_debug_alone_still_reads_the_settings() -> None:
    assert CORSMiddleware(raw, debug=True).from_settings


@override_settings(DEBUG=True, CORS_ALLOWED_ORIGINS=[APP])
def test_debug_defaults_to_settings_debug() -> None:
    assert CORSMiddleware(raw).debug is True
    assert CORSMiddleware(raw, debug=False).debug is False


@override_settings(CORS_ORIGIN_WHITELIST=[APP], CORS_ORIGIN_ALLOW_ALL=False)
async def test_legacy_cors_headers_setting_names_are_read() -> None:
    r = await call(CORSMiddleware(raw), "GET", "/", [("origin", APP)])
    assert r.header("access-control-allow-origin") == APP


@override_settings(CORS_ALLOW_ALL_ORIGINS=True)
async def test_cors_allow_all_origins_sends_star() -> None:
    r = await call(CORSMiddleware(raw), "GET", "/", [("origin", APP)])
    assert r.header("access-control-allow-origin") == "*"


@override_settings(CORS_ALLOW_ALL_ORIGINS=True, CORS_ALLOW_CREDENTIALS=True)
def test_allow_all_with_credentials_from_settings_is_refused_naming_the_settings() -> None:
    with pytest.raises(StackConfigurationError) as info:
        build_stack(raw, [CORS], checks="off")
    assert info.value.id == "middleware_stack.E101"
    assert "CORS_ALLOW_ALL_ORIGINS = True" in str(info.value)
    assert "CORS_ALLOW_CREDENTIALS = True" in str(info.value)


@override_settings(CORS_ALLOWED_ORIGINS=["https://app.example.com/"])
def test_settings_errors_name_the_setting() -> None:
    with pytest.raises(StackConfigurationError, match="CORS_ALLOWED_ORIGINS contains"):
        build_stack(raw, [CORS], checks="off")


# -- order -----------------------------------------------------------------------------------


class AuthPassthroughMiddleware:
    """Stands in for the auth layer: only its dotted path matters to the constraint."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await self.app(scope, receive, send)


AuthPassthroughMiddleware.__module__ = "middleware_stack.contrib.auth"


def test_cors_inside_auth_is_refused() -> None:
    with pytest.raises(StackConfigurationError) as info:
        build_stack(
            raw, [AuthPassthroughMiddleware, (CORS, {"allow_origins": [APP]})], checks="off"
        )
    assert info.value.id == "middleware_stack.E008"
    assert "must sit outside" in str(info.value)


def test_cors_outside_auth_builds() -> None:
    stack = build_stack(
        raw, [(CORS, {"allow_origins": [APP]}), AuthPassthroughMiddleware], checks="off"
    )
    assert [layer.path for layer in stack.layers] == [
        CORS,
        "middleware_stack.contrib.auth.AuthPassthroughMiddleware",
    ]


# -- manage.py check ----------------------------------------------------------------------------


def test_manage_py_check_reports_cors_errors_and_warnings() -> None:
    with override_settings(
        ASGI_MIDDLEWARE=[(CORS, {"allow_origins": [APP], "allow_methods": ["delete"]})]
    ):
        messages = check_stack()
    assert [(m.id, m.obj) for m in messages] == [("middleware_stack.W101", "ASGI_MIDDLEWARE[0]")]
    with override_settings(
        ASGI_MIDDLEWARE=[(CORS, {"allow_origins": ["*"], "allow_credentials": True})]
    ):
        messages = check_stack()
    assert [m.id for m in messages] == ["middleware_stack.E101"]


CREDENTIALED = [
    (
        CORS,
        {
            "allow_origins": [APP, "https://b.example.com", "https://*.example.org", "null"],
            "allow_credentials": True,
        },
    )
]


@override_settings(ASGI_MIDDLEWARE=CREDENTIALED, CSRF_TRUSTED_ORIGINS=["https://*.example.com"])
def test_deploy_check_lists_credentialed_origins_missing_from_csrf_trusted_origins() -> None:
    assert "middleware_stack.W107" not in [m.id for m in check_stack()]
    (message,) = check_stack_deploy()
    assert message.id == "middleware_stack.W107"
    assert "'https://*.example.org'" in message.msg
    assert APP not in message.msg  # covered by the wildcard
    assert "'null'" not in message.msg


@override_settings(
    ASGI_MIDDLEWARE=CREDENTIALED,
    CSRF_TRUSTED_ORIGINS=[APP, "https://b.example.com", "https://*.example.org"],
)
def test_deploy_check_is_quiet_when_every_origin_is_trusted() -> None:
    assert check_stack_deploy() == []


@override_settings(ASGI_MIDDLEWARE=[(CORS, {"allow_origins": [APP]})], CSRF_TRUSTED_ORIGINS=[])
def test_deploy_check_ignores_origins_without_credentials() -> None:
    assert check_stack_deploy() == []
