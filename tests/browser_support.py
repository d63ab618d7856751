"""Headless Chromium for the browser tests (Playwright with the system's /usr/bin/chromium, never a downloaded
one), recording every Content-Security-Policy violation the page reports on its console."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager

CHROMIUM = "/usr/bin/chromium"
ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


@contextmanager
def chromium_page(**context_options) -> Iterator:
    """A page in a fresh context; `page.csp_violations` lists the console's CSP errors (tests assert it empty)."""
    # Playwright's sync API runs an event loop; Django's async-safety check would refuse ORM calls from it.
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        context = browser.new_context(viewport={"width": 1400, "height": 1000}, **context_options)
        page = context.new_page()
        page.csp_violations = []

        def on_console(message) -> None:
            if message.type == "error" and "Content Security Policy" in message.text:
                page.csp_violations.append(message.text)

        page.on("console", on_console)
        try:
            yield page
        finally:
            context.close()
            browser.close()
