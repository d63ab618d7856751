from datetime import UTC, date, datetime

from accounts.models import Account
from catalog.services import feature_create
from entitlements.models import AllowanceUsageDaily, AllowanceUsageEntry
from entitlements.services import UsageRow, allowance_usage_apply


def _account(workspace, external_id="acct-1"):
    return Account.objects.create(workspace=workspace, external_id=external_id)


def test_apply_aggregates_metered_rows_per_day_and_keeps_a_ledger(workspace, product):
    # given
    account = _account(workspace)
    metered = feature_create(
        workspace=workspace,
        key="api-calls",
        name="API calls",
        product=product,
        type="quantity",
        levels=[{"value": "100", "name": "100"}],
        metered=True,
        reset_period="month",
    )
    plain = feature_create(workspace=workspace, key="export", name="Export", product=product)
    rows = [
        UsageRow(account.pk, metered.pk, datetime(2026, 11, 18, 10, tzinfo=UTC), 3),
        UsageRow(account.pk, metered.pk, datetime(2026, 11, 18, 23, 59, tzinfo=UTC), 4),
        UsageRow(account.pk, metered.pk, datetime(2026, 11, 19, 0, 0, tzinfo=UTC), -2),
        UsageRow(account.pk, plain.pk, datetime(2026, 11, 18, 10, tzinfo=UTC), 9),
    ]
    # when
    allowance_usage_apply(workspace_id=workspace.pk, rows=rows)
    allowance_usage_apply(workspace_id=workspace.pk, rows=rows[:1])
    # then
    daily = sorted(AllowanceUsageDaily.objects.values_list("feature_id", "day", "quantity"))
    assert daily == [(metered.pk, date(2026, 11, 18), 10), (metered.pk, date(2026, 11, 19), -2)]
    assert AllowanceUsageEntry.objects.filter(feature=metered).count() == 4
    assert AllowanceUsageEntry.objects.filter(feature=plain).count() == 0


def test_apply_with_only_unmetered_rows_stores_nothing(workspace, product):
    # given
    account = _account(workspace)
    plain = feature_create(workspace=workspace, key="export", name="Export", product=product)
    # when
    allowance_usage_apply(
        workspace_id=workspace.pk,
        rows=[UsageRow(account.pk, plain.pk, datetime(2026, 11, 18, tzinfo=UTC), 1)],
    )
    # then
    assert AllowanceUsageDaily.objects.count() == 0
    assert AllowanceUsageEntry.objects.count() == 0
