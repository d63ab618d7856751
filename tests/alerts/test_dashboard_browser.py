"""The alert pipeline pages in headless Chromium (Playwright) against the live server: log in, create a
webhook pipeline through the form pointing at a real receiver, send a test message and see it in the
delivery log, then delete it after the confirmation page."""

import hashlib
import hmac
import os

import pytest

from accounts.services import membership_set
from alerts.models import AlertDelivery, AlertDestination, AlertPipeline
from tests.browser_support import CHROMIUM, chromium_page

SECRET = "whsec-browser-0123456789"

pytestmark = [
    pytest.mark.browser,
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(not os.path.exists(CHROMIUM), reason=f"headless Chromium not installed at {CHROMIUM}"),
]


@pytest.fixture
def page(live_server):
    with chromium_page() as page:
        yield page


def test_create_a_webhook_pipeline_and_send_a_test_message(live_server, page, workspace, staff_user, receiver, eager):
    # given carol, an admin of acme, and a webhook receiver on 127.0.0.1
    membership_set(workspace=workspace, user=staff_user, role="admin")
    base = live_server.url
    # when she opens the alerts page and logs in through the admin login form
    page.goto(f"{base}/alerts/")
    assert "/admin/login/" in page.url
    page.fill("#id_username", "carol")
    page.fill("#id_password", "pw-carol-123")
    page.click("input[type=submit]")
    page.wait_for_url(f"{base}/alerts/")
    assert page.locator(".empty-state").inner_text() == "No alert pipeline in this workspace yet."

    # when she creates a webhook pipeline through the form, first forgetting the secret
    page.click("#new-pipeline")
    page.wait_for_url(f"{base}/alerts/new/")
    page.fill("#id_name", "Browser hooks")
    page.select_option("#id_trigger_type", "event")
    page.fill("#id_features", "export")
    page.select_option("#id_dest-0-type", "webhook")
    page.fill("#id_dest-0-url", receiver.url("/browser"))
    page.click("#save-pipeline")
    # then the service's message is shown next to the secret input, and nothing is stored
    page.wait_for_selector(".destination-row .errorlist")
    assert (
        "destinations[0].secret is required for webhook destinations"
        in page.locator(".destination-row .errorlist").inner_text()
    )
    assert AlertPipeline.objects.count() == 0
    # when she adds the secret (the password input is not filled back) and saves
    page.fill("#id_dest-0-secret", SECRET)
    page.click("#save-pipeline")
    page.wait_for_url(f"{base}/alerts/*/")
    [pipeline] = AlertPipeline.objects.all()
    assert page.url == f"{base}/alerts/{pipeline.pk}/"
    assert page.locator("#pipeline-status").inner_text() == "enabled"
    assert page.locator("#no-deliveries").is_visible()

    # when she sends a test message
    page.click("#send-test")
    page.wait_for_url(f"{base}/alerts/{pipeline.pk}/")
    # then the receiver got one signed message and the delivery log shows it as sent
    [request] = receiver.requests
    assert request.path == "/browser"
    assert request.json["title"] == "Test message from 'Browser hooks'"
    timestamp = request.headers["X-Uptake-Timestamp"]
    expected = hmac.new(SECRET.encode(), timestamp.encode() + b"." + request.body, hashlib.sha256).hexdigest()
    assert request.headers["X-Uptake-Signature"] == f"sha256={expected}"
    rows = page.locator("#deliveries tbody tr")
    assert rows.count() == 1
    assert rows.first.get_attribute("data-status") == "sent"
    cells = rows.first.locator("td").all_inner_texts()
    assert cells[2:8] == [
        "test",
        "Test message from 'Browser hooks'",
        "Generic webhook (HMAC-signed)",
        "sent",
        "1",
        "200",
    ]

    # when she goes back to the list, then the pipeline is there with its trigger and destination
    page.click("text=← All pipelines")
    page.wait_for_url(f"{base}/alerts/")
    listing = page.locator("#pipelines tbody tr").first.inner_text()
    assert "Browser hooks" in listing and "enabled" in listing and receiver.url("/browser") in listing

    # when she opens it again and asks to delete it, then the confirmation page says what goes and deletes nothing
    page.click("#pipelines tbody tr a")
    page.wait_for_url(f"{base}/alerts/{pipeline.pk}/")
    page.click("#delete-pipeline")
    page.wait_for_url(f"{base}/alerts/{pipeline.pk}/delete/")
    assert (
        page.locator("#delete-summary")
        .inner_text()
        .startswith("This deletes the pipeline, its 1 destination and its delivery log (1 message).")
    )
    assert AlertPipeline.objects.count() == 1
    # when she confirms, then she is back on the empty list and the pipeline, its destination and log are gone
    page.click("#confirm-delete")
    page.wait_for_url(f"{base}/alerts/")
    assert page.locator(".empty-state").inner_text() == "No alert pipeline in this workspace yet."
    assert (AlertPipeline.objects.count(), AlertDestination.objects.count(), AlertDelivery.objects.count()) == (0, 0, 0)
    # when she opens the pipeline admin and the API docs (Swagger UI), then they render under the policy too
    page.goto(f"{base}/admin/alerts/alertpipeline/add/")
    page.wait_for_selector("#alertpipeline_form")
    page.click("#destinations-group .add-row a")  # the inline's "Add another" (admin JavaScript)
    page.wait_for_selector("#destinations-0")
    page.goto(f"{base}/api/docs/")
    page.wait_for_selector(".swagger-ui .info")

    # and every page worked under the Content-Security-Policy without a single violation
    assert page.csp_violations == []
