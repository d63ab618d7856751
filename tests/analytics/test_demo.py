"""The demo usage generator sends its history through the real ingestion path and rolls it up."""

import random
from datetime import timedelta
from zoneinfo import ZoneInfo

import time_machine

from accounts.models import Account
from analytics.demo import seed_usage, usage_history
from analytics.selectors import rollup_differences
from catalog.models import Feature
from catalog.services import feature_activate
from tests.conftest import FROZEN_NOW
from usage.models import UsageDayDirty, UsageEvent


@time_machine.travel(FROZEN_NOW, tick=False)
def test_seed_usage_ingests_history_and_rolls_it_up(workspace, catalog):
    # given active features and a Berlin workspace
    for feature in Feature.objects.filter(workspace=workspace):
        feature_activate(feature=feature)
    workspace.timezone = "Europe/Berlin"
    workspace.save(update_fields=["timezone"])
    expected = usage_history(workspace=workspace, rng=random.Random(1), now=FROZEN_NOW, days=90)
    # when
    summary = seed_usage(workspace=workspace, rng=random.Random(1), now=FROZEN_NOW, days=90, progress=False)
    # then every generated event was accepted and rolled up
    assert summary["events"] == len(expected) == summary["accepted"] == UsageEvent.objects.count()
    assert summary["rejected"] == 0
    assert UsageDayDirty.objects.count() == 0
    assert rollup_differences(workspace_id=workspace.pk) == ([], 0)
    workspace.refresh_from_db()
    assert workspace.late_event_window_days == 120
    # the history spans 90 days, has a weekday rhythm and corrections, and nothing from churned accounts lately
    times = [e.occurred_at for e in UsageEvent.objects.all()]
    assert min(times) >= FROZEN_NOW - timedelta(days=90) and max(times) <= FROZEN_NOW
    local = [t.astimezone(ZoneInfo("Europe/Berlin")) for t in times]
    weekdays = sum(1 for t in local if t.weekday() < 5)
    assert weekdays > 4 * (len(local) - weekdays)
    assert UsageEvent.objects.filter(quantity__lt=0).exists()
    churned = Account.objects.get(external_id="a5")
    assert not UsageEvent.objects.filter(account=churned, occurred_at__gte=FROZEN_NOW - timedelta(days=34)).exists()
