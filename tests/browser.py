"""A real Chromium for page tests, driven by Playwright.

Fixtures (registered in ``tests/conftest.py``):

* ``chromium``: one headless Debian Chromium (``/usr/bin/chromium``) per test module, closed at the module's
  end (Playwright stops the browser process and its own driver). Playwright's downloaded browsers are never
  used: ``.ci/run`` installs the ``chromium`` apt package, and without it these tests skip naming the apt
  command (under ``CI`` they fail, see ``tests/prerequisites.py``).

  Why per module, not per session: while Playwright's sync API is started, its event loop counts as running
  in the main thread (it parks it between calls), so every pytest-asyncio test collected after it would fail
  with "Cannot run the event loop while another loop is running". Closing it with the module that used it
  hands the thread back; a launch costs about a second.

``watched_page(browser, origin)`` opens a fresh context and page that record console errors and uncaught page
errors, and refuse (and record) every request that leaves the test server's origin, so a page that reaches for
a CDN or a web font fails its test even when that host would be unreachable anyway.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal
from urllib.parse import urlsplit

import pytest
from playwright.sync_api import Browser, ConsoleMessage, Error, HttpCredentials, Page, Route, sync_playwright

from tests import prerequisites

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@pytest.fixture(scope="module")
def chromium() -> Iterator[Browser]:
    """One headless Chromium for the module; every test opens its own context in it."""
    if not CHROMIUM.exists():
        prerequisites.missing(f"Chromium ({CHROMIUM})", "apt-get install -y chromium")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()


@dataclass
class WatchedPage:
    """A page and what went wrong on it: console errors, uncaught errors, requests refused for leaving the origin."""

    page: Page
    console_errors: list[str] = field(default_factory=list)
    page_errors: list[str] = field(default_factory=list)
    foreign_requests: list[str] = field(default_factory=list)

    def assert_clean(self) -> None:
        assert self.foreign_requests == [], f"requests left the test server: {self.foreign_requests}"
        assert self.page_errors == [], f"uncaught errors: {self.page_errors}"
        assert self.console_errors == [], f"console errors: {self.console_errors}"


@contextmanager
def watched_page(
    browser: Browser,
    origin: str,
    *,
    username: str | None = None,
    password: str | None = None,
    color_scheme: Literal["light", "dark"] = "light",
    viewport: tuple[int, int] = (1280, 900),
) -> Iterator[WatchedPage]:
    """A fresh context (en-US, UTC, the given colour scheme and credentials) whose page may only reach ``origin``."""
    allowed = urlsplit(origin)
    # Answered only when challenged (a 401), and only for the test server: like a browser's Basic login.
    credentials = (
        None
        if password is None
        else HttpCredentials(username=username or "admin", password=password, origin=origin, send="unauthorized")
    )
    context = browser.new_context(
        http_credentials=credentials,
        locale="en-US",
        timezone_id="UTC",
        color_scheme=color_scheme,
        viewport={"width": viewport[0], "height": viewport[1]},
        service_workers="block",
    )
    try:
        page = context.new_page()
        watched = WatchedPage(page)

        def guard(route: Route) -> None:
            target = urlsplit(route.request.url)
            if (target.scheme, target.netloc) == (allowed.scheme, allowed.netloc):
                route.continue_()
            else:
                watched.foreign_requests.append(route.request.url)
                route.abort("blockedbyclient")

        def on_console(message: ConsoleMessage) -> None:
            if message.type == "error":
                watched.console_errors.append(f"{message.text} ({message.location.get('url', '')})")

        def on_page_error(error: Error) -> None:
            watched.page_errors.append(f"{error.name}: {error.message}")

        context.route("**/*", guard)
        page.on("console", on_console)
        page.on("pageerror", on_page_error)
        yield watched
    finally:
        context.close()
