"""Make ``docs/_static/timing-server-timing.png``: Chromium showing a page's Server-Timing.

Serves ``tests.timing_site`` (Django behind ``TimingMiddleware``) with uvicorn on
loopback, opens ``/demo/`` in Debian's headless Chromium through Playwright, and
screenshots the table the page builds from
``performance.getEntriesByType('navigation')[0].serverTiming``: the browser's own
parse of the header the stack sent. Run from the repository root::

    .venv/bin/python docs/make_timing_screenshot.py
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
from PIL import Image
from playwright.sync_api import sync_playwright

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "docs" / "_static" / "timing-server-timing.png"
CHROMIUM = "/usr/bin/chromium"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def main() -> None:
    port = free_port()
    env = {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "DJANGO_SETTINGS_MODULE": "tests.timing_site.settings",
    }
    server = subprocess.Popen(
        [sys.executable, "-m", "uvicorn", "tests.timing_site.asgi:application",
         "--host", "127.0.0.1", "--port", str(port), "--log-level", "warning"],
        cwd=ROOT,
        env=env,
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(100):
            try:
                httpx.get(url + "/healthz", timeout=1)
                break
            except httpx.TransportError:
                time.sleep(0.1)
        with sync_playwright() as p:
            browser = p.chromium.launch(
                executable_path=CHROMIUM,
                args=["--headless", "--no-sandbox", "--disable-gpu",
                      "--disable-background-networking"],
            )  # fmt: skip
            page = browser.new_page(viewport={"width": 640, "height": 190})
            page.goto(url + "/demo/")
            page.wait_for_selector("body[data-ready]")
            page.screenshot(path=str(OUT), full_page=False)
            browser.close()
    finally:
        server.terminate()
        server.wait(10)
    # A palette PNG: the picture has a handful of colours, so it stays a few KB.
    Image.open(OUT).convert("RGB").quantize(colors=32).save(OUT, optimize=True)
    print(f"wrote {OUT.relative_to(ROOT)} ({OUT.stat().st_size} bytes)")


if __name__ == "__main__":
    main()
