"""The dashboard in headless Chromium at a phone's width (390 px) and with the header's search: no page scrolls
sideways, the navigation collapses behind its Menu button, the search finds an account by part of its name as
the user types, and a feature page draws its own heatmap."""

import os

import pytest

from tests.browser_support import CHROMIUM, chromium_page

from .data import build
from .test_dashboard_browser import _login

pytestmark = [
    pytest.mark.browser,
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(not os.path.exists(CHROMIUM), reason=f"headless Chromium not installed at {CHROMIUM}"),
]

PAGES = [
    "/",
    "/features/reports.view/",
    "/features/api.calls/",
    "/accounts/a1/",
    "/search/?q=a",
    "/lists/near-limit/",
    "/lists/free-unentitled/",
    "/lists/dormant/",
    "/lists/usage-drop/",
    "/alerts/",
    "/alerts/new/",
]


@pytest.fixture
def page(live_server):
    with chromium_page() as page:
        yield page


def _sideways(page) -> int:
    return page.evaluate("document.documentElement.scrollWidth - document.documentElement.clientWidth")


def test_no_page_scrolls_sideways_at_390_px_and_the_navigation_collapses(live_server, page):
    # given the scenario data and carol on a phone-sized screen
    build()
    page.set_viewport_size({"width": 390, "height": 844})
    _login(page, live_server.url)
    # when she opens every dashboard page
    overflowing = {}
    for path in PAGES:
        page.goto(f"{live_server.url}{path}")
        page.wait_for_load_state("networkidle")
        if page.locator("[data-figure]").count():
            page.wait_for_selector("[data-figure] .main-svg")
        overflowing[path] = _sideways(page)
    # then none scrolls sideways (wide tables scroll inside their box)
    assert overflowing == dict.fromkeys(PAGES, 0)
    # and the navigation is collapsed behind the Menu button, which opens it
    page.goto(f"{live_server.url}/")
    assert not page.locator("#dashboard-nav").is_visible()
    page.click(".nav-toggle")
    assert page.locator("#dashboard-nav a", has_text="Dormant").is_visible()
    assert page.get_attribute(".nav-toggle", "aria-expanded") == "true"
    # and nothing broke the Content-Security-Policy
    assert page.csp_violations == []


def test_search_finds_an_account_by_part_of_its_name_as_you_type(live_server, page):
    # given the scenario data (a1 "Alpha", a4 "Delta") and carol on the overview
    build()
    _login(page, live_server.url)
    # when she types part of a name into the header's box
    page.fill("#site-search-q", "elt")
    # then the suggestions show Delta, and following it opens its page
    suggestion = page.locator("#search-suggestions a[data-kind=account]")
    suggestion.first.wait_for()
    assert suggestion.all_inner_texts() == ["Delta a4 · delta.net · team"]
    suggestion.first.click()
    page.wait_for_url(f"{live_server.url}/accounts/a4/")
    assert "Delta" in page.title()
    # and pressing Enter in the box opens the full results page (no JavaScript needed for it)
    page.fill("#site-search-q", "alp")
    page.press("#site-search-q", "Enter")
    page.wait_for_url(f"{live_server.url}/search/?q=alp")
    assert page.locator("#search-accounts tbody tr").count() == 1
    assert "Globex" not in page.content()
    assert page.csp_violations == []


def test_a_feature_page_draws_its_heatmap(live_server, page):
    # given the scenario data and carol
    build()
    _login(page, live_server.url)
    # when she opens a feature page
    page.goto(f"{live_server.url}/features/reports.view/")
    # then plotly draws its heatmap with the workspace's timezone on the hour axis and a titled colour bar
    page.wait_for_selector("#heatmap .main-svg")
    assert page.locator("#heatmap .heatmaplayer").count() == 1
    assert "Hour (UTC)" in page.locator("#heatmap").inner_text()
    assert "Net uses" in page.locator("#heatmap .colorbar").text_content()
    assert page.csp_violations == []
