"""What a real browser lets through: headless Debian Chromium against the stack under uvicorn.

The page is served from ``http://127.0.0.1:PORT1``; the API from ``http://localhost:PORT2``
(a different origin to the browser), with three CORS policies by path prefix (see
``tests/cors_site/settings.py``): ``/allowed/`` (credentials, ``X-Custom``, ``PUT``,
``X-Api-Version`` exposed), ``/nocreds/`` (no credentials) and ``/denied/`` (another origin).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from tests.conftest import need_tool
from tests.servers import serve

pytestmark = [pytest.mark.browser, pytest.mark.server]

CHROMIUM = "/usr/bin/chromium"
ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-quic",
    "--disable-component-update",
    "--disable-sync",
]

FETCH = """
async ([url, init]) => {
  try {
    const r = await fetch(url, init);
    return {ok: true, status: r.status, body: await r.text(),
            exposed: r.headers.get('x-api-version')};
  } catch (e) {
    return {ok: false, error: String(e)};
  }
}
"""


@pytest.fixture(scope="module")
def browser_page() -> Iterator[tuple[Any, str, Any]]:
    need_tool(CHROMIUM, "the real-browser CORS test drives Debian's chromium")
    sync_api = pytest.importorskip("playwright.sync_api")
    with serve("uvicorn", "tests.cors_site.page:app") as page_server:
        env = {
            "DJANGO_SETTINGS_MODULE": "tests.cors_site.settings",
            "CORS_TEST_PAGE_ORIGIN": page_server.url,
        }
        with (
            serve("uvicorn", "tests.cors_site.asgi:application", env=env, ready_path="/x") as api,
            sync_api.sync_playwright() as p,
        ):
            browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
            try:
                page = browser.new_page()
                page.goto(page_server.url + "/")
                yield page, f"http://localhost:{api.port}", api
            finally:
                browser.close()


def fetch(browser_page: tuple[Any, str, Any], path: str, **init: Any) -> dict[str, Any]:
    page, api_base, _ = browser_page
    result: dict[str, Any] = page.evaluate(FETCH, [api_base + path, init])
    return result


def test_page_and_api_are_cross_origin(browser_page: tuple[Any, str, Any]) -> None:
    page, api_base, _ = browser_page
    assert page.evaluate("location.origin").startswith("http://127.0.0.1:")
    assert api_base.startswith("http://localhost:")


def test_allowed_origin_plain_fetch_is_let_through_with_exposed_header(browser_page: Any) -> None:
    r = fetch(browser_page, "/allowed/data")
    assert r["ok"], r
    assert '"policy": "allowed"' in r["body"]
    assert r["exposed"] == "7"


def test_allowed_origin_credentialed_fetch_is_let_through(browser_page: Any) -> None:
    r = fetch(browser_page, "/allowed/data", credentials="include")
    assert r["ok"], r
    assert r["status"] == 200


def test_allowed_custom_header_passes_the_preflight(browser_page: Any) -> None:
    r = fetch(browser_page, "/allowed/data", headers={"X-Custom": "hello"}, credentials="include")
    assert r["ok"], r
    assert '"custom": "hello"' in r["body"]


def test_allowed_put_passes_the_preflight(browser_page: Any) -> None:
    r = fetch(browser_page, "/allowed/data", method="PUT")
    assert r["ok"], r
    assert '"method": "PUT"' in r["body"]


def test_unlisted_custom_header_is_blocked_by_the_browser(browser_page: Any) -> None:
    r = fetch(browser_page, "/allowed/data", headers={"X-Other": "1"})
    assert not r["ok"], r
    assert "Failed to fetch" in r["error"]


def test_unlisted_method_is_blocked_by_the_browser(browser_page: Any) -> None:
    r = fetch(browser_page, "/allowed/data", method="DELETE")
    assert not r["ok"], r


def test_without_allow_credentials_only_the_credentialed_fetch_is_blocked(
    browser_page: Any,
) -> None:
    plain = fetch(browser_page, "/nocreds/data")
    custom = fetch(browser_page, "/nocreds/data", headers={"X-Custom": "x"})
    credentialed = fetch(browser_page, "/nocreds/data", credentials="include")
    assert plain["ok"] and custom["ok"], (plain, custom)
    assert plain["exposed"] is None  # nothing exposed under this policy
    assert not credentialed["ok"], credentialed


@pytest.mark.parametrize(
    "init",
    [{}, {"credentials": "include"}, {"headers": {"X-Custom": "x"}}],
    ids=["plain", "credentials", "custom-header"],
)
def test_disallowed_origin_is_blocked_for_every_kind_of_fetch(
    browser_page: Any, init: dict[str, Any]
) -> None:
    r = fetch(browser_page, "/denied/data", **init)
    assert not r["ok"], r
    assert "Failed to fetch" in r["error"]


def test_preflights_are_answered_by_the_layer_and_logged_by_the_server(browser_page: Any) -> None:
    _, _, api = browser_page
    assert fetch(browser_page, "/allowed/data", headers={"X-Custom": "1"})["ok"]
    assert not fetch(browser_page, "/allowed/data", headers={"X-Nope": "1"})["ok"]
    log = api.log()
    assert '"OPTIONS /allowed/data HTTP/1.1" 204' in log
    assert '"OPTIONS /allowed/data HTTP/1.1" 403' in log
    assert "Traceback" not in log
