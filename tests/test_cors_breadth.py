"""Credentialed CORS never admits a site anyone can register (issue 15, items 9 and 10).

Patterns are judged by what they match on hostile origins at build time, so the same
refusal covers ``allow_origins`` wildcards, ``allow_origin_regex`` and
django-cors-headers' ``CORS_ALLOWED_ORIGIN_REGEXES``, whatever the regex's spelling.
"""

from __future__ import annotations

import re
import warnings
from typing import Any

import pytest
from django.test import override_settings
from hypothesis import given, settings
from hypothesis import strategies as st

from middleware_stack import StackConfigurationError, StackWarning, build_stack
from middleware_stack.contrib.cors.breadth import PROBE_LABEL, PROBE_LABELS, PUBLIC_SUFFIXES
from middleware_stack.types import Receive, Scope, Send
from tests.asgi import call

CORS = "middleware_stack.contrib.cors.CORSMiddleware"


async def raw(scope: Scope, receive: Receive, send: Send) -> None:
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": b"ok"})


def build(**options: Any) -> Any:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", StackWarning)  # W102/W103 on some patterns
        return build_stack(raw, [(CORS, options)], checks="off")


def refused(**options: Any) -> StackConfigurationError:
    with pytest.raises(StackConfigurationError) as info:
        build(**options)
    return info.value


BROAD_REGEXES = [
    ".*",
    "^https?://.*$",
    r"^https://.*$",
    "(?i)HTTPS://.*",
    r"^https://[^.]+\.com$",
    r"^https://[a-z0-9-]+\.github\.io$",
    r"^https?://(\w+\.)*\w+$",
    r"^https://.*\.co\.uk$",
    r"^https://[a-z-]+\.(com|net|org)(:\d+)?$",
]
BROAD_WILDCARDS = [
    "https://*.com",
    "http://*.com",
    "https://*.co.uk",
    "https://*.github.io",
    "https://*.vercel.app",
    "https://*.io:8443",
]


@pytest.mark.parametrize("pattern", BROAD_REGEXES)
def test_credentialed_regex_admitting_arbitrary_hosts_is_refused(pattern: str) -> None:
    error = refused(allow_origin_regex=pattern, allow_credentials=True)
    assert error.id == "middleware_stack.E101"
    assert repr(pattern) in str(error) and "allow_origin_regex" in str(error)
    assert any(label in str(error) for label in PROBE_LABELS)  # names the origin it let in
    assert "example.com" in str(error)  # and how to anchor it


@pytest.mark.parametrize("pattern", BROAD_WILDCARDS)
def test_credentialed_wildcard_over_a_public_suffix_is_refused(pattern: str) -> None:
    with pytest.raises(StackConfigurationError) as info:
        build(allow_origins=[pattern], allow_credentials=True)
    assert info.value.id == "middleware_stack.E101"
    assert repr(pattern) in str(info.value)


@override_settings(
    CORS_ALLOWED_ORIGIN_REGEXES=[r"^https://app\.example\.com$", r"^https?://.*$"],
    CORS_ALLOW_CREDENTIALS=True,
)
def test_credentialed_cors_allowed_origin_regexes_from_settings_are_judged_too() -> None:
    with pytest.raises(StackConfigurationError) as info:
        build_stack(raw, [CORS], checks="off")
    assert info.value.id == "middleware_stack.E101"
    assert "CORS_ALLOWED_ORIGIN_REGEXES" in str(info.value) and "'^https?://.*$'" in str(info.value)


@pytest.mark.parametrize(
    "options",
    [
        {"allow_origins": ["https://*.example.com", "https://*.alice.github.io"]},
        {"allow_origins": ["https://*.example.co.uk:8443"]},
        {"allow_origin_regex": r"^https://([a-z0-9-]+\.)?example\.com$"},
        {"allow_origin_regex": [r"^https://app-\d+\.example\.com$", r"^http://localhost:\d+$"]},
    ],
)
async def test_credentialed_patterns_under_a_domain_you_own_are_accepted(
    options: dict[str, Any],
) -> None:
    stack = build(allow_credentials=True, **options)
    r = await call(stack, "GET", "/", [("origin", f"https://{PROBE_LABEL}.com")])
    assert r.header("access-control-allow-origin") is None


@pytest.mark.parametrize("pattern", BROAD_REGEXES[:3])
async def test_broad_patterns_without_credentials_stay_allowed(pattern: str) -> None:
    stack = build(allow_origin_regex=pattern)
    r = await call(stack, "GET", "/", [("origin", "https://anyone.example")])
    assert r.header("access-control-allow-origin") == "https://anyone.example"
    assert r.header("access-control-allow-credentials") is None


label = st.from_regex(r"[a-z][a-z0-9]{0,10}", fullmatch=True).filter(lambda s: s not in PROBE_LABEL)


@settings(max_examples=40, deadline=None)
@given(label=label, suffix=st.sampled_from(PUBLIC_SUFFIXES))
def test_owned_domain_passes_and_its_public_suffix_fails(label: str, suffix: str) -> None:
    owned = f"{label}.{suffix}"
    build(allow_credentials=True, allow_origins=[f"https://*.{owned}"])
    build(
        allow_credentials=True,
        allow_origin_regex=rf"^https://([a-z0-9-]+\.)?{re.escape(owned)}$",
    )
    with pytest.raises(StackConfigurationError):
        build(allow_credentials=True, allow_origins=[f"https://*.{suffix}"])
    with pytest.raises(StackConfigurationError):
        build(
            allow_credentials=True, allow_origin_regex=rf"^https://[a-z0-9-]+\.{re.escape(suffix)}$"
        )


# -- item 10: the migration from django-cors-headers ---------------------------------------


@override_settings(CORS_ALLOW_ALL_ORIGINS=True, CORS_ALLOW_CREDENTIALS=True)
def test_allow_all_with_credentials_explains_the_migration() -> None:
    # django-cors-headers 4.9 reflects any origin here; this layer refuses, and says how
    # to move on.
    with pytest.raises(StackConfigurationError) as info:
        build_stack(raw, [CORS], checks="off")
    text = str(info.value)
    assert info.value.id == "middleware_stack.E101"
    assert "django-cors-headers" in text and "CORS_ALLOWED_ORIGINS" in text


@pytest.mark.parametrize("setting", ["CORS_MODEL", "CORS_REPLACE_HTTPS_REFERER"])
def test_removed_django_cors_headers_settings_are_reported(setting: str) -> None:
    removed = override_settings(CORS_ALLOWED_ORIGINS=["https://app.example.com"], **{setting: True})
    with removed, pytest.raises(StackConfigurationError) as info:
        build_stack(raw, [CORS], checks="off")
    assert info.value.id == "middleware_stack.E108"
    assert f"The {setting} setting has been removed" in str(info.value)
    assert "ASGI_MIDDLEWARE[0]" in str(info.value)
