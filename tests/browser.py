"""Debian's chromium, headless, driven by Playwright: pages are judged as people see them.

:func:`open_page` loads a URL, collects console errors and failed or off-LAN requests,
and :func:`screenshot_is_blank` says whether a screenshot shows nothing but one colour.
In CI (``CI=true``) a missing chromium fails the test instead of skipping it.
"""

from __future__ import annotations

import io
import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from urllib.parse import urlsplit

import pytest
from PIL import Image
from playwright.sync_api import ConsoleMessage, Page, Request, sync_playwright

# Without the background-networking flags, chromium tries Google's hosts at every start
# and this machine's closed network refuses them, noisily.
CHROMIUM_ARGS = (
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
)
LOCAL_HOSTS = frozenset({"127.0.0.1", "localhost", "::1", "[::1]"})


def chromium_path() -> str:
    """The chromium binary, or a skip (a failure under CI=true) naming the package."""
    path = shutil.which("chromium") or shutil.which("chromium-browser")
    if path is None:
        message = "chromium is not installed (Debian package: chromium; `make test` installs it)"
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)
    return path


@dataclass
class PageLog:
    """What a page did while loaded: console errors, failed and non-local requests."""

    console_errors: list[str] = field(default_factory=list)
    failed_requests: list[str] = field(default_factory=list)
    outside_requests: list[str] = field(default_factory=list)


@contextmanager
def open_page(url: str, width: int = 1920, height: int = 1080) -> Iterator[tuple[Page, PageLog]]:
    """``(page, log)`` for ``url`` in a fresh headless chromium; closed on exit.

    Pages should declare an icon (``<link rel="icon" href="data:,">``): chromium's own
    favicon request would otherwise count as a failed request.
    """
    log = PageLog()
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=chromium_path(), args=list(CHROMIUM_ARGS))
        try:
            page = browser.new_page(viewport={"width": width, "height": height})

            def _console(msg: ConsoleMessage) -> None:
                if msg.type == "error":
                    log.console_errors.append(msg.text)

            page.on("console", _console)
            page.on("pageerror", lambda exc: log.console_errors.append(str(exc)))
            page.on("requestfailed", lambda req: log.failed_requests.append(req.url))

            def _request(req: Request) -> None:
                target = urlsplit(req.url)
                if target.scheme in ("http", "https", "ws", "wss") and (
                    target.hostname not in LOCAL_HOSTS
                ):
                    log.outside_requests.append(req.url)

            page.on("request", _request)
            page.goto(url, wait_until="load")
            yield page, log
        finally:
            browser.close()


def screenshot_is_blank(png: bytes) -> bool:
    """True when every pixel of the PNG has the same colour (nothing rendered)."""
    with Image.open(io.BytesIO(png)) as image:
        lowest, highest = zip(*image.convert("RGB").getextrema(), strict=True)
    return bool(lowest == highest)
