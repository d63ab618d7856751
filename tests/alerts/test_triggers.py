from datetime import date, timedelta

import pytest
from django.utils import timezone

from alerts.models import AlertDelivery, AlertThresholdMark
from alerts.services import pipeline_create
from alerts.triggers import AccountUsageWindow, alerts_evaluate_dormant, alerts_evaluate_usage_drop
from catalog.services import feature_activate, feature_create, item_activate, item_create
from entitlements.models import ItemEntitlement, Subscription
from tests.conftest import FROZEN_NOW
from usage.models import UsageEvent

SECRET = "whsec-trigger-0123456789"


def _subscribe(workspace, customer, grants: dict) -> None:
    item = item_activate(
        item=item_create(workspace=workspace, key=f"plan-{customer.plan}", name=f"Plan {customer.plan}")
    )
    for feature, value in grants.items():
        ItemEntitlement.objects.create(workspace=workspace, item=item, feature=feature, value=value)
    subscription = Subscription.objects.create(workspace=workspace, account=customer, external_id=f"sub-{customer.pk}")
    subscription.items.add(item)


def test_event_trigger_filters_by_feature_and_min_quantity_and_enriches(ingest, workspace, customer, receiver, eager):
    # given
    pipeline_create(
        workspace=workspace,
        name="Big exports",
        trigger={"type": "event", "features": ["export"], "min_quantity": 5, "expected_later": True},
        destinations=[{"type": "webhook", "url": receiver.url(), "secret": SECRET}],
    )
    # when
    ingest(
        {"account_id": "acc-1", "feature_id": "export", "quantity": 10, "event_id": "e1"},
        {"account_id": "acc-1", "feature_id": "export", "quantity": 2},
        {"account_id": "acc-1", "feature_id": "import", "quantity": 10},
    )
    # then
    [request] = receiver.requests
    body = request.json
    assert body["event"] == "export"
    assert body["account"] == {
        "id": "acc-1",
        "name": "Initech",
        "plan": "free",
        "owner": "carol@example.com",
        "domain": "initech.com",
    }
    assert body["feature"]["id"] == "export"
    assert (body["details"]["quantity"], body["details"]["event_id"]) == (10, "e1")
    assert list(AlertDelivery.objects.values_list("status", flat=True)) == ["sent"]


def test_disabled_pipeline_sends_nothing(ingest, workspace, customer, receiver, eager):
    # given
    pipeline_create(
        workspace=workspace,
        name="Off",
        enabled=False,
        trigger={"type": "event"},
        destinations=[{"type": "slack", "url": receiver.url()}],
    )
    # when
    ingest({"account_id": "acc-1", "feature_id": "export"})
    # then
    assert receiver.requests == [] and AlertDelivery.objects.count() == 0


def test_free_plan_account_using_an_ungranted_feature_alerts_once_a_day(
    ingest, workspace, product, customer, receiver, eager
):
    # given: the free plan grants reports, not sso
    reports = feature_activate(
        feature=feature_create(workspace=workspace, key="reports", name="Reports", product=product)
    )
    sso = feature_activate(feature=feature_create(workspace=workspace, key="sso", name="SSO", product=product))
    _subscribe(workspace, customer, {reports: "true", sso: "false"})
    pipeline_create(
        workspace=workspace,
        name="Upsell",
        trigger={"type": "paid_feature_on_free_plan"},
        destinations=[{"type": "discord", "url": receiver.url()}],
    )
    # when
    ingest({"account_id": "acc-1", "feature_id": "sso"}, {"account_id": "acc-1", "feature_id": "reports"})
    ingest({"account_id": "acc-1", "feature_id": "sso"})
    # then
    [request] = receiver.requests
    embed = request.json["embeds"][0]
    assert (embed["title"], embed["description"]) == (
        "paid_feature_on_free_plan",
        "Initech (free) used SSO, which its plan does not grant: an upsell opportunity.",
    )
    assert request.json["allowed_mentions"] == {"parse": []}
    assert AlertDelivery.objects.count() == 1


def test_paid_plan_account_does_not_trigger_the_free_plan_alert(ingest, workspace, customer, receiver, eager):
    # given
    customer.plan = "pro"
    customer.save()
    pipeline_create(
        workspace=workspace,
        name="Upsell",
        trigger={"type": "paid_feature_on_free_plan"},
        destinations=[{"type": "discord", "url": receiver.url()}],
    )
    # when
    ingest({"account_id": "acc-1", "feature_id": "sso"})
    # then
    assert receiver.requests == [] and AlertDelivery.objects.count() == 0


@pytest.fixture
def limits(workspace, product, customer, receiver):
    """`limits(calls)`: a metered "api.calls" allowance of `calls` a calendar month for the customer (a level of
    0 or 100), and a threshold pipeline at 80 % and 100 % posting to the receiver."""

    def make(allowance: str) -> None:
        calls = feature_activate(
            feature=feature_create(
                workspace=workspace,
                key="api.calls",
                name="API calls",
                product=product,
                type="quantity",
                unit="call",
                levels=[{"value": "0", "name": "No calls"}, {"value": "100", "name": "100 calls"}],
                metered=True,
                reset_period="month",
                reset_anchor="calendar",
            )
        )
        _subscribe(workspace, customer, {calls: allowance})
        pipeline_create(
            workspace=workspace,
            name="Limits",
            trigger={"type": "threshold", "percent": [80, 100]},
            destinations=[{"type": "webhook", "url": receiver.url(), "secret": SECRET}],
        )

    return make


def test_threshold_alerts_once_per_threshold_per_period(ingest, limits, receiver, eager):
    # given: 100 API calls a calendar month
    limits("100")
    # when: 50, 85, 95, 105, 110 used
    for quantity in (50, 35, 10, 10, 5):
        ingest({"account_id": "acc-1", "feature_id": "api.calls", "quantity": quantity})
    # then
    assert [(r.json["event"], r.json["details"]["used"], r.json["details"]["limit"]) for r in receiver.requests] == [
        ("threshold.80", 85, 100),
        ("threshold.100", 105, 100),
    ]
    assert sorted(AlertThresholdMark.objects.values_list("threshold", flat=True)) == [80, 100]


def test_threshold_never_alerts_on_a_limit_of_zero(ingest, limits, receiver, eager):
    # given: a metered allowance of 0 calls, which means "not entitled" (never near a limit)
    limits("0")
    # when
    ingest({"account_id": "acc-1", "feature_id": "api.calls", "quantity": 5})
    # then: the use is stored, and nothing alerts
    assert UsageEvent.objects.count() == 1
    assert receiver.requests == [] and AlertDelivery.objects.count() == 0
    assert AlertThresholdMark.objects.count() == 0


def test_a_down_destination_does_not_slow_or_fail_ingestion(ingest, workspace, customer, receiver, alert_settings):
    # given: a destination that takes 3 s to answer, and the real (non-eager) task queue
    receiver.delay = 3.0
    pipeline_create(
        workspace=workspace,
        name="Slow",
        trigger={"type": "event"},
        destinations=[{"type": "slack", "url": receiver.url()}],
    )
    from config.celery import app

    # when
    started = timezone.now()
    result = ingest({"account_id": "acc-1", "feature_id": "export"})
    elapsed = (timezone.now() - started).total_seconds()
    app.control.purge()  # the evaluation task went to the broker; this test does not run a worker
    # then: stored and answered without waiting for the destination
    assert result["accepted"] == 1 and UsageEvent.objects.count() == 1
    assert receiver.requests == [] and AlertDelivery.objects.count() == 0
    assert elapsed < 3.0


def test_dormant_alerts_once_per_dormant_spell(workspace, customer, receiver, alert_settings):
    # given (which accounts are dormant is analytics' dormant_accounts, the dashboard list's selector: see
    # tests/analytics/test_account_lists.py)
    pipeline = pipeline_create(
        workspace=workspace,
        name="Dormant",
        trigger={"type": "dormant", "days": 14},
        destinations=[{"type": "slack", "url": receiver.url()}],
    )
    today = FROZEN_NOW.date()
    # when: evaluated twice for the same dormant spell, then for a later one (the account was used again)
    first = alerts_evaluate_dormant(
        workspace_id=workspace.pk,
        dormant={customer.pk: today - timedelta(days=20)},
        now=FROZEN_NOW,
        pipeline_ids=[pipeline.pk],
    )
    again = alerts_evaluate_dormant(
        workspace_id=workspace.pk,
        dormant={customer.pk: today - timedelta(days=20)},
        now=FROZEN_NOW + timedelta(days=1),
        pipeline_ids=[pipeline.pk],
    )
    later = alerts_evaluate_dormant(
        workspace_id=workspace.pk,
        dormant={customer.pk: today},
        now=FROZEN_NOW + timedelta(days=14),
        pipeline_ids=[pipeline.pk],
    )
    # then
    assert len(first) == 1 and again == [] and len(later) == 1
    assert first[0].payload["title"] == "account.dormant"
    assert first[0].payload["text"] == "Initech has gone dormant: no usage for 20 days (threshold: 14 days)."
    assert first[0].payload["details"] == {
        "days": 14,
        "last_used_on": (today - timedelta(days=20)).isoformat(),
    }
    assert AlertDelivery.objects.count() == 2


def test_usage_drop_alerts_once_per_window(workspace, customer, alert_settings, receiver):
    # given (which accounts dropped is analytics' accounts_usage_dropped, the dashboard list's selector: see
    # tests/analytics/test_account_lists.py)
    pipeline = pipeline_create(
        workspace=workspace,
        name="Drop",
        trigger={"type": "usage_drop", "percent": 50, "days": 7},
        destinations=[{"type": "slack", "url": receiver.url()}],
    )
    window = date(2026, 11, 11)
    # when: the account dropped, and is found again later in the same window
    big = alerts_evaluate_usage_drop(
        workspace_id=workspace.pk,
        usage={customer.pk: AccountUsageWindow(30, 100)},
        window_start=window,
        now=FROZEN_NOW,
        pipeline_ids=[pipeline.pk],
    )
    repeat = alerts_evaluate_usage_drop(
        workspace_id=workspace.pk,
        usage={customer.pk: AccountUsageWindow(10, 100)},
        window_start=window,
        now=FROZEN_NOW,
        pipeline_ids=[pipeline.pk],
    )
    # then
    assert repeat == []
    [delivery] = big
    assert delivery.payload["title"] == "usage.drop"
    assert delivery.payload["text"] == (
        "Initech: usage down 70%, 30 uses in the last 7 days against 100 in the 7 days before "
        "(threshold: at least 50%)."
    )
    assert delivery.payload["details"] == {"current": 30, "prior": 100, "drop_percent": 70.0, "days": 7}
    assert AlertDelivery.objects.count() == 1
