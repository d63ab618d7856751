"""The dashboard in headless Chromium (Playwright) against the live server over HTTP: log in through the admin
login form, open each page, change the date range, follow the overview to a feature and an account, and
download a CSV."""

import csv
import io
import os
from datetime import timedelta

import pytest
from django.contrib.auth import get_user_model

from accounts.services import membership_set, workspace_create
from tests.browser_support import CHROMIUM, chromium_page

from .data import build

pytestmark = [
    pytest.mark.browser,
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(not os.path.exists(CHROMIUM), reason=f"headless Chromium not installed at {CHROMIUM}"),
]


@pytest.fixture
def page(live_server):
    with chromium_page(accept_downloads=True) as page:
        yield page


def _login(page, base: str, next_path: str = "/") -> None:
    page.goto(f"{base}{next_path}")
    assert "/admin/login/" in page.url  # anonymous users are sent to the login form
    page.fill("#id_username", "carol")
    page.fill("#id_password", "pw-carol-123")
    page.click("input[type=submit]")
    page.wait_for_url(f"{base}{next_path}")


def test_dashboard_in_a_browser(live_server, page):
    # given the scenario data and carol, a member of acme
    built = build()
    base = live_server.url
    # when she logs in through the form
    _login(page, base)
    # then the overview shows totals, a drawn top-features chart and heatmap (plotly from our static files)
    assert page.locator('[data-total="events"]').inner_text() == str(56 + 90 + 3 + 4 + 1 + 1)
    page.wait_for_selector("#top-chart .main-svg")
    page.wait_for_selector("#heatmap .main-svg")
    assert page.evaluate("typeof window.Plotly") == "object"

    # when she narrows the date range to the last 7 days (htmx swaps the panel)
    today = built.now.date()
    page.fill("#id_from", (today - timedelta(days=6)).isoformat())
    page.fill("#id_to", today.isoformat())
    page.click("#filters button[type=submit]")
    page.wait_for_url(f"**/?from={(today - timedelta(days=6)).isoformat()}*")
    # then the totals are those of the shorter window: a1 7×2 + 90, a2 3 + 4, a4 1 = 112
    page.wait_for_function("document.querySelector('[data-total=events]').innerText === '112'")
    page.wait_for_selector("#top-chart .main-svg")

    # when she follows a top feature, then its page shows the same window
    page.click('#top-features a[href^="/features/reports.view/"]')
    page.wait_for_url("**/features/reports.view/**")
    assert page.locator('[data-total="uses"]').inner_text() == str(7 * 2 + 3 + 1)
    assert page.locator("#using").inner_text().count("\n") >= 3

    # when she goes back and follows a top account
    page.goto(f"{base}/")
    page.click('#top-accounts a[href^="/accounts/a1/"]')
    page.wait_for_url("**/accounts/a1/**")
    assert "Alpha" in page.title()
    assert "90.0 %" in page.locator("#entitlements").inner_text()

    # when she opens each list, then they show the scenario's accounts
    for kind, expected in [("near-limit", "a1"), ("free-unentitled", "a2"), ("dormant", "a3"), ("usage-drop", "a4")]:
        page.goto(f"{base}/lists/{kind}/")
        assert expected in page.locator("#list").inner_text(), kind
        assert "Globex" not in page.content()

    # when she downloads the usage-drop list as CSV, filtered by owner
    page.goto(f"{base}/lists/usage-drop/?owner=dave")
    with page.expect_download() as info:
        page.click("#csv-link")
    download = info.value
    rows = list(csv.reader(io.StringIO(open(download.path(), encoding="utf-8").read())))
    # then it holds exactly the filtered rows
    assert download.suggested_filename.startswith("acme-usage-drop-")
    assert rows == [
        ["Account", "Name", "Plan", "Owner", "Uses", "Prior uses", "Change %"],
        ["a3", "Gamma", "team", "dave", "1", "9", "-88.9"],
    ]

    # when carol, also a member of another workspace, switches to it with the selector (no inline handler)
    other = workspace_create(slug="initech", name="Initech")
    membership_set(workspace=other, user=get_user_model().objects.get(username="carol"), role="viewer")
    page.goto(f"{base}/")
    page.select_option("#ws-select", "initech")
    # then the page reloads in that workspace
    page.wait_for_function("document.querySelector('#ws-select').value === 'initech'")
    assert page.locator("#ws-select option:checked").inner_text() == "Initech"

    # and every page worked under the Content-Security-Policy (plotly, htmx) without a single violation
    assert page.csp_violations == []
