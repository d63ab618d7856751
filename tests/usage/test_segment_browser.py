"""The ingestion problems page in headless Chromium: reached from the dashboard header's count, readable at
1400 px and 390 px."""

import base64
import json
import os

import pytest
from django.db import connections
from rest_framework.test import APIClient

from tests.analytics.browser.test_dashboard_browser import _login
from tests.browser_support import ARGS, CHROMIUM

pytestmark = [
    pytest.mark.browser,
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(not os.path.exists(CHROMIUM), reason=f"headless Chromium not installed at {CHROMIUM}"),
]


@pytest.fixture
def browser(live_server):
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    from playwright.sync_api import sync_playwright

    # Each live-server request runs in a thread of its own: no persistent connections left open after the test.
    settings_dict = connections["default"].settings_dict
    max_age, settings_dict["CONN_MAX_AGE"] = settings_dict["CONN_MAX_AGE"], 0
    with sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        yield chromium
        chromium.close()
    settings_dict["CONN_MAX_AGE"] = max_age


def test_the_header_count_leads_to_the_problems_page(live_server, browser, workspace, staff_of, make_key, tmp_path):
    # given: carol administers acme, whose Segment client sent two tracks without an account
    staff_of(workspace, "admin")
    client = APIClient()
    client.credentials(
        HTTP_AUTHORIZATION="Basic " + base64.b64encode(f"{make_key(workspace, 'ingest')[1]}:".encode()).decode()
    )
    batch = [{"type": "track", "messageId": f"m-{n}", "userId": "ghost", "event": "Project Created"} for n in range(2)]
    client.generic("POST", "/api/segment/v1/batch", json.dumps({"batch": batch}), content_type="application/json")
    page = browser.new_context(viewport={"width": 1400, "height": 900}).new_page()
    # when: she logs in and follows the header's count
    _login(page, live_server.url)
    assert page.inner_text("#ingestion-problems-count") == "2"
    page.click("#ingestion-problems-link")
    page.wait_for_url(f"{live_server.url}/ingestion/problems/")
    # then
    assert "no_account" in page.inner_text("#reason-counts")
    assert page.locator("#problems tbody tr").count() == 2
    page.screenshot(path=str(tmp_path / "problems-1400.png"), full_page=True)
    narrow = browser.new_context(viewport={"width": 390, "height": 900}, storage_state=page.context.storage_state())
    narrow_page = narrow.new_page()
    narrow_page.goto(f"{live_server.url}/ingestion/problems/")
    assert narrow_page.locator("#problems tbody tr").count() == 2
    narrow_page.screenshot(path=str(tmp_path / "problems-390.png"), full_page=True)
