"""Chromium parses the Server-Timing header the stack sends, view metrics included."""

from __future__ import annotations

import pytest

from tests.conftest import need_tool
from tests.servers import serve

pytestmark = [pytest.mark.server, pytest.mark.browser]


def test_chromium_exposes_total_and_view_metrics_from_a_served_stack() -> None:
    chromium = need_tool("/usr/bin/chromium", "Debian's chromium, driven by Playwright")
    from playwright.sync_api import sync_playwright

    env = {"DJANGO_SETTINGS_MODULE": "tests.timing_site.settings"}
    with (
        serve("uvicorn", "tests.timing_site.asgi:application", env=env, ready_path="/healthz")
        as server,
        sync_playwright() as p,
    ):  # fmt: skip
        browser = p.chromium.launch(
            executable_path=chromium,
            args=["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"],
        )
        try:
            page = browser.new_page()
            page.goto(server.url + "/demo/")
            page.wait_for_selector("body[data-ready]")
            entries = page.evaluate(
                "performance.getEntriesByType('navigation')[0].serverTiming"
                ".map(e => [e.name, e.duration, e.description])"
            )
        finally:
            browser.close()
    names = [e[0] for e in entries]
    assert names == ["total", "db", "cache", "render"]
    by_name = {e[0]: e for e in entries}
    assert by_name["db"][2] == "orders query" and by_name["db"][1] >= 12.0
    assert by_name["render"][2] == "template" and by_name["render"][1] >= 6.0
    assert by_name["total"][1] >= by_name["db"][1] + by_name["render"][1]
