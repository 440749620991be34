"""django-cors-headers users, through the test client: every CORS_* setting and
documented behaviour of django-cors-headers 4.9, answered by django-cors-headers itself
(its ``CorsMiddleware`` in ``MIDDLEWARE``) and by our layer (``CORSMiddleware`` in
``ASGI_MIDDLEWARE``, reading the same settings), side by side in each test.

Each request goes through :class:`middleware_stack.test.Client` both times, as a
project's own CORS tests would after the switch. Where the answers are the same, the
test compares them; where ours differs on purpose, the test pins both answers, and
``docs/cors.rst`` ("Differences from django-cors-headers") gives the reason. No
difference may come from a setting read wrongly.
"""

from __future__ import annotations

import re
from typing import Any

import pytest
from django.test import override_settings

from middleware_stack import StackConfigurationError, StackWarning
from middleware_stack.test import Client

THEIRS = "corsheaders.middleware.CorsMiddleware"
OURS = "middleware_stack.contrib.cors.CORSMiddleware"
DJANGO_MIDDLEWARE = [
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
]
SITE = "tests.cors_compat_site.urls"
APP = "https://app.example.com"
EVIL = "https://evil.example.net"
ACRM = "Access-Control-Request-Method"
ACRH = "Access-Control-Request-Headers"
CORS_HEADERS = (
    "access-control-allow-origin",
    "access-control-allow-credentials",
    "access-control-expose-headers",
    "access-control-allow-methods",
    "access-control-allow-headers",
    "access-control-max-age",
    "access-control-allow-private-network",
)

pytestmark = pytest.mark.filterwarnings("ignore::middleware_stack.StackWarning")


class Answer:
    """The CORS part of a response, as a browser reads it (names case-insensitive)."""

    def __init__(self, response: Any) -> None:
        self.response = response
        self.status = response.status_code
        self.headers = {
            name: response.headers[name] for name in CORS_HEADERS if name in response.headers
        }
        vary = response.headers.get("Vary", "")
        self.vary = {v.strip().lower() for v in vary.split(",") if v.strip()}

    def get(self, name: str) -> str | None:
        return self.headers.get(name)

    def names(self, name: str) -> set[str]:
        """A comma-separated header as a set of lowercase names."""
        return {v.strip().lower() for v in (self.get(name) or "").split(",") if v.strip()}

    @property
    def allowed(self) -> bool:
        return "access-control-allow-origin" in self.headers

    def actual(self) -> dict[str, Any]:
        """What a browser checks on an actual (non-preflight) response."""
        return {
            "status": self.status,
            "allow-origin": self.get("access-control-allow-origin"),
            "allow-credentials": self.get("access-control-allow-credentials"),
            "expose-headers": self.names("access-control-expose-headers"),
            "vary-origin": "origin" in self.vary,
            "body": self.response.content,
        }

    def __repr__(self) -> str:
        return f"<Answer {self.status} {self.headers} vary={sorted(self.vary)}>"


def request(
    cors_settings: dict[str, Any],
    middleware: str,
    method: str = "GET",
    path: str = "/api/data",
    headers: dict[str, str] | None = None,
    client: Client | None = None,
) -> Answer:
    if middleware == THEIRS:
        stack = {"MIDDLEWARE": [THEIRS, *DJANGO_MIDDLEWARE], "ASGI_MIDDLEWARE": []}
    else:
        stack = {"MIDDLEWARE": DJANGO_MIDDLEWARE, "ASGI_MIDDLEWARE": [OURS]}
    with override_settings(ROOT_URLCONF=SITE, **stack, **cors_settings):
        response = (client or Client()).generic(method, path, headers=headers or {})
    return Answer(response)


def both(cors_settings: dict[str, Any], *args: Any, **kwargs: Any) -> tuple[Answer, Answer]:
    """(django-cors-headers' answer, ours) to the same request under the same settings."""
    return request(cors_settings, THEIRS, *args, **kwargs), request(
        cors_settings, OURS, *args, **kwargs
    )


def get(origin: str | None, **extra: str) -> dict[str, Any]:
    headers = {"Origin": origin} if origin is not None else {}
    headers.update(extra)
    return {"method": "GET", "headers": headers}


def preflight(
    origin: str, method: str = "PUT", request_headers: str | None = None
) -> dict[str, Any]:
    headers = {"Origin": origin, ACRM: method}
    if request_headers is not None:
        headers[ACRH] = request_headers
    return {"method": "OPTIONS", "headers": headers}


def same_actual(cors_settings: dict[str, Any], **req: Any) -> Answer:
    theirs, ours = both(cors_settings, **req)
    assert ours.actual() == theirs.actual(), (theirs, ours)
    return ours


def same_preflight_allowance(theirs: Answer, ours: Answer) -> None:
    """Preflights that both allow: the same origin, credentials and max-age; the methods
    and headers ours lists are the configured ones (plus HEAD, always safe) in lowercase
    for header names. Status: 200 there, 204 here (no content: see docs/cors.rst)."""
    assert (theirs.status, ours.status) == (200, 204)
    for name in (
        "access-control-allow-origin",
        "access-control-allow-credentials",
        "access-control-max-age",
    ):
        assert ours.get(name) == theirs.get(name), name
    assert ours.names("access-control-allow-methods") == theirs.names(
        "access-control-allow-methods"
    ) | {"head"}
    assert ours.names("access-control-allow-headers") == theirs.names(
        "access-control-allow-headers"
    )
    assert ours.response.content == theirs.response.content == b""


# -- CORS_ALLOWED_ORIGINS (and CORS_ORIGIN_WHITELIST) -----------------------------------

ORIGINS = {
    "CORS_ALLOWED_ORIGINS": [APP, "https://sub.example.com", "http://localhost:8080", "null"]
}


@pytest.mark.parametrize(
    "origin",
    [APP, "https://sub.example.com", "http://localhost:8080", "null"],
)
def test_simple_request_from_a_listed_origin_is_allowed_the_same(origin: str) -> None:
    ours = same_actual(ORIGINS, **get(origin))
    assert ours.get("access-control-allow-origin") == origin


@pytest.mark.parametrize(
    "origin",
    [EVIL, "http://app.example.com", "http://localhost:8081", "https://example.com"],
)
def test_simple_request_from_an_unlisted_origin_is_refused_the_same(origin: str) -> None:
    ours = same_actual(ORIGINS, **get(origin))
    assert not ours.allowed


def test_request_without_origin_gets_vary_only_the_same() -> None:
    ours = same_actual(ORIGINS, **get(None))
    assert not ours.allowed and "origin" in ours.vary


def test_file_origin_is_allowed_only_when_listed_the_same() -> None:
    ours = same_actual({"CORS_ALLOWED_ORIGINS": ["file://"]}, **get("file://"))
    assert ours.get("access-control-allow-origin") == "file://"
    assert not same_actual({"CORS_ALLOWED_ORIGINS": [APP]}, **get("file://")).allowed


def test_old_name_cors_origin_whitelist_is_read_the_same() -> None:
    ours = same_actual({"CORS_ORIGIN_WHITELIST": [APP]}, **get(APP))
    assert ours.get("access-control-allow-origin") == APP


def test_new_name_takes_precedence_over_cors_origin_whitelist_the_same() -> None:
    conf = {"CORS_ALLOWED_ORIGINS": [APP], "CORS_ORIGIN_WHITELIST": [EVIL]}
    assert same_actual(conf, **get(APP)).allowed
    assert not same_actual(conf, **get(EVIL)).allowed


def test_configured_default_port_is_normalised_here_never_matched_there() -> None:
    # "Default ports (HTTPS = 443, HTTP = 80) are optional" in its docs, but a configured
    # ":443" compares netlocs as strings; ours normalises it (docs/cors.rst).
    theirs, ours = both({"CORS_ALLOWED_ORIGINS": ["https://app.example.com:443"]}, **get(APP))
    assert not theirs.allowed
    assert ours.get("access-control-allow-origin") == APP


def test_origin_with_a_path_is_not_a_browser_origin_here() -> None:
    # Browsers never send a path in Origin; django-cors-headers compares scheme and
    # netloc only and echoes the whole value back (docs/cors.rst, malformed Origin).
    theirs, ours = both(ORIGINS, **get(APP + "/path"))
    assert theirs.get("access-control-allow-origin") == APP + "/path"
    assert not ours.allowed


def test_origin_with_an_uppercase_scheme_is_not_a_browser_origin_here() -> None:
    # urlsplit lowercases the scheme there, so the request's spelling is echoed back.
    theirs, ours = both(ORIGINS, **get("HTTPS://app.example.com"))
    assert theirs.get("access-control-allow-origin") == "HTTPS://app.example.com"
    assert not ours.allowed


@pytest.mark.parametrize("origin", ["https://APP.example.com", "https://app.example.com:443"])
def test_origin_with_uppercase_host_or_default_port_is_refused_the_same(origin: str) -> None:
    assert not same_actual(ORIGINS, **get(origin)).allowed


def test_configured_uppercase_scheme_matches_the_same() -> None:
    ours = same_actual({"CORS_ALLOWED_ORIGINS": ["HTTPS://app.example.com"]}, **get(APP))
    assert ours.get("access-control-allow-origin") == APP


def test_configured_uppercase_host_is_normalised_here_never_matched_there() -> None:
    theirs, ours = both({"CORS_ALLOWED_ORIGINS": ["https://App.Example.com"]}, **get(APP))
    assert not theirs.allowed
    assert ours.get("access-control-allow-origin") == APP


# -- CORS_ALLOWED_ORIGIN_REGEXES (and CORS_ORIGIN_REGEX_WHITELIST) -------------------------

REGEXES = {"CORS_ALLOWED_ORIGIN_REGEXES": [r"^https://\w+\.example\.com$"]}


@pytest.mark.parametrize("origin", ["https://a.example.com", "https://b2.example.com"])
def test_regex_match_is_allowed_the_same(origin: str) -> None:
    assert same_actual(REGEXES, **get(origin)).get("access-control-allow-origin") == origin


@pytest.mark.parametrize(
    "origin", ["https://example.com", "http://a.example.com", "https://a.b.example.com"]
)
def test_regex_mismatch_is_refused_the_same(origin: str) -> None:
    assert not same_actual(REGEXES, **get(origin)).allowed


def test_compiled_regex_is_accepted_the_same() -> None:
    conf = {"CORS_ALLOWED_ORIGIN_REGEXES": [re.compile(r"^https://\w+\.example\.com$")]}
    assert same_actual(conf, **get("https://a.example.com")).allowed


def test_old_name_cors_origin_regex_whitelist_is_read_the_same() -> None:
    conf = {"CORS_ORIGIN_REGEX_WHITELIST": [r"^https://\w+\.example\.com$"]}
    assert same_actual(conf, **get("https://a.example.com")).allowed
    assert not same_actual(conf, **get(EVIL)).allowed


def test_unanchored_regex_is_a_prefix_match_there_a_full_match_here() -> None:
    # re.match there: r"^https://\w+\.example\.com" also allows a host that merely starts
    # with it. Ours matches the whole origin, and warns at build time (W102).
    conf = {"CORS_ALLOWED_ORIGIN_REGEXES": [r"^https://\w+\.example\.com"]}
    theirs, ours = both(conf, **get("https://a.example.com.evil.net"))
    assert theirs.allowed
    assert not ours.allowed
    assert same_actual(conf, **get("https://a.example.com")).allowed


def test_unanchored_regex_is_reported_at_build_time() -> None:
    # (A max-age no other test uses: a configuration seen before is not built again.)
    conf = {
        "CORS_ALLOWED_ORIGIN_REGEXES": [r"^https://\w+\.example\.com"],
        "CORS_PREFLIGHT_MAX_AGE": 7,
    }
    with pytest.warns(StackWarning, match="not end-anchored"):
        request(conf, OURS, **get(APP))


# -- CORS_ALLOW_ALL_ORIGINS (and CORS_ORIGIN_ALLOW_ALL) -------------------------------------


@pytest.mark.parametrize("name", ["CORS_ALLOW_ALL_ORIGINS", "CORS_ORIGIN_ALLOW_ALL"])
def test_allow_all_answers_star_the_same(name: str) -> None:
    ours = same_actual({name: True}, **get(EVIL))
    assert ours.get("access-control-allow-origin") == "*"


def test_allow_all_ignores_the_origin_lists_the_same() -> None:
    conf = {"CORS_ALLOW_ALL_ORIGINS": True, "CORS_ALLOWED_ORIGINS": [APP]}
    assert same_actual(conf, **get(EVIL)).get("access-control-allow-origin") == "*"


def test_new_name_takes_precedence_over_cors_origin_allow_all_the_same() -> None:
    conf = {"CORS_ALLOW_ALL_ORIGINS": False, "CORS_ORIGIN_ALLOW_ALL": True, **ORIGINS}
    assert not same_actual(conf, **get(EVIL)).allowed


def test_allow_all_with_null_origin_is_star_there_refused_here() -> None:
    # Any sandboxed iframe sends "Origin: null"; ours allows it only when listed.
    theirs, ours = both({"CORS_ALLOW_ALL_ORIGINS": True}, **get("null"))
    assert theirs.get("access-control-allow-origin") == "*"
    assert not ours.allowed


def test_allow_all_with_credentials_reflects_any_origin_there_is_refused_here() -> None:
    # There: every website may act as the signed-in user. Here: a build error (E101).
    conf = {"CORS_ALLOW_ALL_ORIGINS": True, "CORS_ALLOW_CREDENTIALS": True}
    theirs = request(conf, THEIRS, **get(EVIL))
    assert theirs.get("access-control-allow-origin") == EVIL
    assert theirs.get("access-control-allow-credentials") == "true"
    with pytest.raises(StackConfigurationError, match=r"E101|credentials"):
        request(conf, OURS, **get(EVIL))


# -- CORS_URLS_REGEX --------------------------------------------------------------------------

URLS = {**ORIGINS, "CORS_URLS_REGEX": r"^/api/.*$"}


def test_urls_regex_inside_gets_cors_the_same() -> None:
    assert same_actual(URLS, **get(APP)).allowed


def test_urls_regex_outside_gets_nothing_the_same() -> None:
    ours = same_actual(URLS, path="/other/data", **get(APP))
    assert not ours.allowed and "origin" not in ours.vary


def test_urls_regex_outside_leaves_the_preflight_to_the_view_the_same() -> None:
    theirs, ours = both(URLS, path="/other/data", **preflight(APP))
    assert ours.status == theirs.status == 200
    assert not theirs.allowed and not ours.allowed
    assert ours.response.json() == theirs.response.json() == {"method": "OPTIONS"}


def test_urls_regex_as_compiled_pattern_the_same() -> None:
    conf = {**ORIGINS, "CORS_URLS_REGEX": re.compile(r"^/api/")}
    assert same_actual(conf, **get(APP)).allowed
    assert not same_actual(conf, path="/other/data", **get(APP)).allowed


def test_urls_regex_matches_the_path_below_the_mount_point_the_same() -> None:
    theirs, ours = both(URLS, **get(APP))
    with override_settings(ROOT_URLCONF=SITE):
        client = Client(SCRIPT_NAME="/mount")
        mounted = request(URLS, OURS, client=client, **get(APP))
        mounted_theirs = request(URLS, THEIRS, client=Client(SCRIPT_NAME="/mount"), **get(APP))
    assert mounted.allowed and mounted_theirs.allowed and ours.allowed and theirs.allowed


# -- preflights: CORS_ALLOW_METHODS, CORS_ALLOW_HEADERS, CORS_PREFLIGHT_MAX_AGE ---------------


def test_preflight_allowed_with_the_default_lists() -> None:
    theirs, ours = both(ORIGINS, **preflight(APP, "DELETE", "content-type, x-csrftoken"))
    same_preflight_allowance(theirs, ours)
    assert ours.get("access-control-max-age") == "86400"  # the default, both


def test_preflight_never_reaches_the_view_the_same() -> None:
    theirs, ours = both(ORIGINS, **preflight(APP))
    assert theirs.response.wsgi_request is not None  # Django middleware: inside Django
    assert ours.response.wsgi_request is None  # answered before Django
    assert b"OPTIONS" not in theirs.response.content + ours.response.content


def test_custom_allow_methods_extend_the_defaults_the_same() -> None:
    from corsheaders.defaults import default_methods

    conf = {**ORIGINS, "CORS_ALLOW_METHODS": (*default_methods, "POKE")}
    theirs, ours = both(conf, **preflight(APP, "POKE"))
    same_preflight_allowance(theirs, ours)
    assert "POKE" in ours.get("access-control-allow-methods")  # type: ignore[operator]


def test_custom_allow_headers_extend_the_defaults_the_same() -> None:
    from corsheaders.defaults import default_headers

    conf = {**ORIGINS, "CORS_ALLOW_HEADERS": (*default_headers, "my-custom-header")}
    theirs, ours = both(conf, **preflight(APP, "PUT", "My-Custom-Header"))
    same_preflight_allowance(theirs, ours)


def test_max_age_setting_the_same() -> None:
    theirs, ours = both({**ORIGINS, "CORS_PREFLIGHT_MAX_AGE": 600}, **preflight(APP))
    same_preflight_allowance(theirs, ours)
    assert ours.get("access-control-max-age") == "600"


def test_max_age_zero_sends_none_the_same() -> None:
    theirs, ours = both({**ORIGINS, "CORS_PREFLIGHT_MAX_AGE": 0}, **preflight(APP))
    same_preflight_allowance(theirs, ours)
    assert ours.get("access-control-max-age") is None


def test_preflight_from_unlisted_origin_is_200_without_cors_there_403_here() -> None:
    # Both refuse (no Access-Control-Allow-Origin, so the browser blocks); ours says so
    # with a 403 and never calls the app.
    theirs, ours = both(ORIGINS, **preflight(EVIL))
    assert (theirs.status, ours.status) == (200, 403)
    assert not theirs.allowed and not ours.allowed
    assert ours.headers == {}


def test_preflight_for_an_unlisted_method_is_allowed_there_refused_here() -> None:
    # There the lists are sent and the browser refuses; here the preflight is checked.
    conf = {**ORIGINS, "CORS_ALLOW_METHODS": ["GET", "POST"]}
    theirs, ours = both(conf, **preflight(APP, "DELETE"))
    assert theirs.status == 200 and theirs.allowed
    assert "DELETE" not in theirs.names("access-control-allow-methods")
    assert ours.status == 403 and not ours.allowed


def test_preflight_for_an_unlisted_header_is_allowed_there_refused_here() -> None:
    theirs, ours = both(ORIGINS, **preflight(APP, "PUT", "x-not-listed"))
    assert theirs.status == 200 and theirs.allowed
    assert "x-not-listed" not in theirs.names("access-control-allow-headers")
    assert ours.status == 403 and not ours.allowed


# -- CORS_EXPOSE_HEADERS and CORS_ALLOW_CREDENTIALS -------------------------------------------


def test_expose_headers_the_same() -> None:
    conf = {**ORIGINS, "CORS_EXPOSE_HEADERS": ["X-Total-Count", "X-Other"]}
    ours = same_actual(conf, **get(APP))
    assert ours.names("access-control-expose-headers") == {"x-total-count", "x-other"}
    assert not same_actual(conf, **get(EVIL)).get("access-control-expose-headers")


def test_credentials_on_allowed_origin_the_same() -> None:
    conf = {**ORIGINS, "CORS_ALLOW_CREDENTIALS": True}
    ours = same_actual(conf, **get(APP))
    assert ours.get("access-control-allow-credentials") == "true"
    theirs_pf, ours_pf = both(conf, **preflight(APP))
    same_preflight_allowance(theirs_pf, ours_pf)
    assert ours_pf.get("access-control-allow-credentials") == "true"


def test_credentials_never_to_a_refused_origin_the_same() -> None:
    conf = {**ORIGINS, "CORS_ALLOW_CREDENTIALS": True}
    assert same_actual(conf, **get(EVIL)).get("access-control-allow-credentials") is None


def test_credentials_with_a_regex_the_same() -> None:
    conf = {**REGEXES, "CORS_ALLOW_CREDENTIALS": True}
    ours = same_actual(conf, **get("https://a.example.com"))
    assert ours.get("access-control-allow-credentials") == "true"


# -- CORS_ALLOW_PRIVATE_NETWORK ---------------------------------------------------------------

PNA = "Access-Control-Request-Private-Network"


def test_private_network_preflight_allowed_the_same() -> None:
    conf = {**ORIGINS, "CORS_ALLOW_PRIVATE_NETWORK": True}
    theirs, ours = both(conf, method="OPTIONS", headers={"Origin": APP, ACRM: "GET", PNA: "true"})
    same_preflight_allowance(theirs, ours)
    assert ours.get("access-control-allow-private-network") == "true"
    assert theirs.get("access-control-allow-private-network") == "true"


def test_private_network_off_by_default_the_same() -> None:
    theirs, ours = both(
        ORIGINS, method="OPTIONS", headers={"Origin": APP, ACRM: "GET", PNA: "true"}
    )
    same_preflight_allowance(theirs, ours)
    assert ours.get("access-control-allow-private-network") is None


def test_private_network_on_an_actual_request_is_answered_there_not_here() -> None:
    # The header belongs to preflights (Private Network Access); ours answers only there.
    conf = {**ORIGINS, "CORS_ALLOW_PRIVATE_NETWORK": True}
    theirs, ours = both(conf, **get(APP, **{PNA: "true"}))
    assert theirs.get("access-control-allow-private-network") == "true"
    assert ours.get("access-control-allow-private-network") is None
    assert ours.allowed and theirs.allowed


# -- responses, Vary, CSRF, signals --------------------------------------------------------------


def test_django_404_carries_cors_headers_the_same() -> None:
    ours = same_actual(ORIGINS, path="/api/missing", **get(APP))
    assert ours.status == 404 and ours.allowed


def test_response_made_by_commonmiddleware_carries_cors_headers_the_same() -> None:
    # Its docs: place CorsMiddleware above CommonMiddleware so that its responses (an
    # APPEND_SLASH redirect) get CORS headers; the layer is above all of MIDDLEWARE.
    ours = same_actual(ORIGINS, path="/api/slash", **get(APP))
    assert ours.status == 301 and ours.allowed


def test_vary_origin_on_refused_and_allowed_the_same() -> None:
    assert "origin" in same_actual(ORIGINS, **get(APP)).vary
    assert "origin" in same_actual(ORIGINS, **get(EVIL)).vary


def test_cors_header_set_by_the_view_is_overwritten_when_allowed_the_same() -> None:
    ours = same_actual(ORIGINS, path="/api/own-cors", **get(APP))
    assert ours.get("access-control-allow-origin") == APP


def test_cors_header_set_by_the_view_for_a_refused_origin_is_kept_there_removed_here() -> None:
    theirs, ours = both(ORIGINS, path="/api/own-cors", **get(EVIL))
    assert theirs.get("access-control-allow-origin") == "https://view.example.org"
    assert not ours.allowed


def test_csrf_is_separate_from_cors_the_same() -> None:
    # Its docs: CORS does not exempt from CSRF; CSRF_TRUSTED_ORIGINS does.
    conf = {**ORIGINS, "CORS_ALLOW_CREDENTIALS": True}
    for trusted, status in (([], 403), ([APP], 200)):
        answers = []
        for middleware in (THEIRS, OURS):
            with override_settings(CSRF_TRUSTED_ORIGINS=trusted):
                client = Client(enforce_csrf_checks=True)
                request(conf, middleware, path="/api/token", client=client, **get(APP))
                token = client.cookies["csrftoken"].value
                answers.append(
                    request(
                        conf,
                        middleware,
                        method="POST",
                        path="/api/write",
                        headers={"Origin": APP, "X-CSRFToken": token},
                        client=client,
                    )
                )
        assert [a.status for a in answers] == [status, status]
        assert answers[0].actual() == answers[1].actual()


def test_check_request_enabled_signal_has_no_equivalent_here() -> None:
    # Its signal allows more origins per request; ours has none (use paths, or several
    # CORS entries with different paths: docs/cors.rst).
    from corsheaders.signals import check_request_enabled

    def everyone_on_api(sender: Any, request: Any, **kwargs: Any) -> bool:
        return bool(request.path.startswith("/api/"))

    check_request_enabled.connect(everyone_on_api)
    try:
        theirs, ours = both(ORIGINS, **get(EVIL))
    finally:
        check_request_enabled.disconnect(everyone_on_api)
    assert theirs.get("access-control-allow-origin") == EVIL
    assert not ours.allowed
