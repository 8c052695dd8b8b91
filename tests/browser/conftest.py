"""Browser tests: Playwright driving Debian's chromium (`apt-get install chromium`) against the live server.

Never `playwright install`: the tests use the system's /usr/bin/chromium and are
skipped where it is missing. One browser for all of them, a fresh context per test.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from django.conf import settings

CHROMIUM = Path(os.environ.get("CHROMIUM", "/usr/bin/chromium"))
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
DESKTOP = {"width": 1280, "height": 800}
PHONE = {"width": 390, "height": 844}
SCREENSHOTS = Path(settings.BASE_DIR) / "test-artifacts" / "screenshots"


@pytest.fixture(scope="session")
def live_server(request: pytest.FixtureRequest):
    """pytest-django's live server, on 127.0.0.1 rather than whatever `localhost` resolves to."""
    from pytest_django.live_server_helper import LiveServer

    server = LiveServer(request.config.getvalue("liveserver") or "127.0.0.1")
    yield server
    server.stop()


@pytest.fixture(scope="package")
def browser(django_db_setup) -> Iterator:
    """One chromium for the browser tests (started after the test database exists).

    Package scope, not session: Playwright's sync API keeps an event loop marked as
    running on this thread for as long as it is open, which breaks every later test
    that calls asyncio.run(). pytest closes it before any test outside tests/browser.
    """
    if not CHROMIUM.exists():
        pytest.skip(f"browser tests need chromium at {CHROMIUM} (apt-get install chromium)")
    sync_api = pytest.importorskip("playwright.sync_api", reason="browser tests need playwright (requirements-dev)")
    # That running loop also makes Django refuse ORM calls "from async code". The
    # tests' ORM calls are plain synchronous code, so the guard is lifted meanwhile.
    unsafe = os.environ.get("DJANGO_ALLOW_ASYNC_UNSAFE")
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    try:
        with sync_api.sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
            yield browser
            browser.close()
    finally:
        if unsafe is None:
            os.environ.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)
        else:
            os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = unsafe


def fake_avatar(route) -> None:
    """Discord's CDN is not reachable here: answer avatar and icon requests with a coloured disc."""
    hue = int(hashlib.sha256(route.request.url.encode()).hexdigest()[:4], 16) % 360
    svg = (
        '<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 64 64">'
        f'<circle cx="32" cy="32" r="32" fill="hsl({hue} 55% 60%)"/>'
        '<circle cx="32" cy="26" r="11" fill="#fff" fill-opacity=".85"/>'
        '<ellipse cx="32" cy="54" rx="19" ry="14" fill="#fff" fill-opacity=".85"/></svg>'
    )
    route.fulfill(status=200, content_type="image/svg+xml", body=svg)


@pytest.fixture
def new_page(browser, live_server):
    """Open pages in fresh contexts (desktop by default); every context blocks the internet."""
    contexts = []

    def open_page(viewport: dict = DESKTOP, session_cookie: str | None = None):
        context = browser.new_context(viewport=viewport, base_url=live_server.url)
        context.route("https://cdn.discordapp.com/**", fake_avatar)
        context.route(lambda url: not url.startswith(live_server.url) and "cdn.discordapp.com" not in url, _abort)
        if session_cookie:
            context.add_cookies(
                [{"name": settings.SESSION_COOKIE_NAME, "value": session_cookie, "url": live_server.url}]
            )
        contexts.append(context)
        return context.new_page()

    yield open_page
    for context in contexts:
        context.close()


def _abort(route) -> None:
    route.abort()


def session_cookie_for(user) -> str:
    """A logged-in session for `user`, without going through the login form."""
    from django.test import Client

    client = Client()
    client.force_login(user)
    return client.cookies[settings.SESSION_COOKIE_NAME].value


def screenshot(page, name: str) -> Path:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path
