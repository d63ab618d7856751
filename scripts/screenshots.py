"""`make screenshots`: every dashboard page and the main admin pages at 1400 px and 390 px, as PNGs.

A server with the demo data (seed_demo into a database of its own, `<database>_screenshots`, kept between runs;
SCREENSHOTS_FRESH=1 rebuilds it) runs on a free port of 127.0.0.1 while headless Chromium (/usr/bin/chromium
through Playwright) logs in as the demo superuser and saves full-page PNGs into .uptake/screenshots/
(`<page>-<width>.png`). Pages that scroll sideways at 390 px are listed at the end and make the command fail.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

sys.path.insert(0, str(Path(__file__).resolve().parent))
import uptake_dev  # noqa: E402

ROOT = uptake_dev.ROOT
sys.path.insert(0, str(ROOT))
from tests.browser_support import ARGS  # noqa: E402  (the browser tests' Chromium flags)

OUT = ROOT / ".uptake" / "screenshots"
CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
WIDTHS = (1400, 390)


def say(message: str) -> None:
    print(f"[screenshots] {message}", flush=True)


def _own_database(url: str) -> str:
    """The same server, a database of its own (created when missing, dropped first with SCREENSHOTS_FRESH=1)."""
    import psycopg

    parts = urlsplit(url)
    name = f"{parts.path.lstrip('/') or 'uptake'}_screenshots"
    admin = urlunsplit(parts._replace(path="/postgres"))
    with psycopg.connect(admin, autocommit=True) as conn:
        if os.environ.get("SCREENSHOTS_FRESH"):
            conn.execute(
                psycopg.sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(psycopg.sql.Identifier(name))
            )
        if conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone() is None:
            conn.execute(psycopg.sql.SQL("CREATE DATABASE {}").format(psycopg.sql.Identifier(name)))
    return urlunsplit(parts._replace(path=f"/{name}"))


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _wait_for(url: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            urllib.request.urlopen(url, timeout=2)  # noqa: S310 (127.0.0.1 only)
            return
        except Exception:  # noqa: BLE001 (not up yet)
            time.sleep(0.3)
    raise SystemExit(f"[screenshots] the server did not answer {url}")


def _pages(page, base: str) -> list[tuple[str, str]]:
    """(name, path) of every page to shoot; keys and ids are read from the demo data's own links."""

    def first_href(path: str, selector: str) -> str:
        page.goto(f"{base}{path}")
        return page.locator(selector).first.get_attribute("href")

    feature = first_href("/", "#top-features a[href^='/features/']").split("?")[0]
    account = first_href("/", "#top-accounts a[href^='/accounts/']").split("?")[0]
    pages = [
        ("overview", "/"),
        ("overview-all-products", "/?product=*"),
        ("feature", feature),
        ("account", account),
        ("search", "/search/?q=a"),
        ("list-near-limit", "/lists/near-limit/"),
        ("list-free-unentitled", "/lists/free-unentitled/"),
        ("list-dormant", "/lists/dormant/"),
        ("list-usage-drop", "/lists/usage-drop/"),
        ("alerts", "/alerts/"),
        ("alert-new", "/alerts/new/"),
        ("admin-index", "/admin/"),
        ("admin-accounts", "/admin/accounts/account/"),
        ("admin-features", "/admin/catalog/feature/"),
        ("admin-subscriptions", "/admin/entitlements/subscription/"),
    ]
    pipeline = first_href("/alerts/", "a[href^='/alerts/'][href$='/']:not([href='/alerts/new/'])")
    if pipeline and pipeline.rstrip("/").split("/")[-1].isdigit():
        pages.append(("alert-detail", pipeline))
    for name, changelist in (
        ("admin-account", "/admin/accounts/account/"),
        ("admin-feature", "/admin/catalog/feature/"),
    ):
        pages.append((name, first_href(changelist, "#result_list tbody th a")))
    return pages


def shoot(base: str) -> list[str]:
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    from playwright.sync_api import sync_playwright

    OUT.mkdir(parents=True, exist_ok=True)
    overflowing = []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        context = browser.new_context(viewport={"width": 1400, "height": 900})
        page = context.new_page()
        page.goto(f"{base}/admin/login/?next=/")
        page.fill("#id_username", "demo")
        page.fill("#id_password", "demo-password")
        page.click("input[type=submit]")
        page.wait_for_url(f"{base}/")
        for name, path in _pages(page, base):
            for width in WIDTHS:
                page.set_viewport_size({"width": width, "height": 900})
                page.goto(f"{base}{path}")
                page.wait_for_load_state("networkidle")
                if page.locator("[data-figure]").count():
                    page.wait_for_selector("[data-figure] .main-svg", timeout=15000)
                target = OUT / f"{name}-{width}.png"
                page.screenshot(path=str(target), full_page=True)
                wide = page.evaluate("document.documentElement.scrollWidth - document.documentElement.clientWidth")
                note = f" (scrolls sideways by {wide}px)" if wide > 0 else ""
                say(f"{target.relative_to(ROOT)}{note}")
                if wide > 0 and width < 1000:
                    overflowing.append(f"{name} ({path}) at {width}px: {wide}px")
        # The header's suggestions as the user types (htmx).
        for width in WIDTHS:
            page.set_viewport_size({"width": width, "height": 900})
            page.goto(f"{base}/")
            page.fill("#site-search-q", "nor")
            page.wait_for_selector("#search-suggestions a")
            target = OUT / f"search-suggestions-{width}.png"
            page.screenshot(path=str(target))
            say(f"{target.relative_to(ROOT)}")
        context.close()
        browser.close()
    return overflowing


def main() -> int:
    started = uptake_dev.ensure_database()
    server = None
    try:
        env = dict(os.environ, DATABASE_URL=_own_database(os.environ["DATABASE_URL"]), DEBUG="true")
        say("migrating and seeding the demo data (once)…")
        subprocess.run([uptake_dev.PY, "manage.py", "migrate", "--noinput", "-v", "0"], cwd=ROOT, env=env, check=True)
        subprocess.run([uptake_dev.PY, "manage.py", "seed_demo", "--if-empty"], cwd=ROOT, env=env, check=True)
        port = _free_port()
        OUT.mkdir(parents=True, exist_ok=True)
        log = open(OUT / "server.log", "w")  # noqa: SIM115 (closed with the server)
        server = subprocess.Popen(
            [uptake_dev.PY, "manage.py", "runserver", "--noreload", f"127.0.0.1:{port}"],
            cwd=ROOT,
            env=env,
            start_new_session=True,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        base = f"http://127.0.0.1:{port}"
        _wait_for(f"{base}/admin/login/")
        overflowing = shoot(base)
        if overflowing:
            say("pages that scroll sideways:\n  " + "\n  ".join(overflowing))
            return 1
        say(f"done: {OUT.relative_to(ROOT)}/")
        return 0
    finally:
        if server is not None and server.poll() is None:
            os.killpg(server.pid, signal.SIGTERM)
            server.wait(timeout=15)
        if started:
            uptake_dev.pg_stop()


if __name__ == "__main__":
    raise SystemExit(main())
