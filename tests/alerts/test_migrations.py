"""The move of the alert models from usage to alerts, and destinations becoming channels, keep every row: a
database holding pipelines, destinations, deliveries, rate windows, marks and an outbox row at the pre-move
migrations is migrated to the latest ones."""

from datetime import UTC, date, datetime

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

from accounts.models import Account, Workspace
from alerts.models import (
    AlertChannel,
    AlertDelivery,
    AlertPipeline,
    AlertPipelineChannel,
    AlertRateWindow,
    AlertWindowMark,
)
from usage.models import EventOutbox, EventSubscription

BEFORE_MOVE = [("usage", "0005_alert_events_pending"), ("alerts", None)]
AT = datetime(2026, 11, 18, 12, 0, tzinfo=UTC)


def _migrate(targets) -> MigrationExecutor:
    executor = MigrationExecutor(connection)
    executor.loader.build_graph()
    executor.migrate(targets)
    return executor


def _latest() -> list[tuple[str, str]]:
    return MigrationExecutor(connection).loader.graph.leaf_nodes()


def _old_rows(old) -> dict[str, int]:
    """Alert rows written through the models as they were before the move."""
    workspace = old.get_model("accounts", "Workspace").objects.create(slug="acme", name="Acme")
    quiet = old.get_model("accounts", "Workspace").objects.create(slug="quiet", name="Quiet")
    account = old.get_model("accounts", "Account").objects.create(workspace=workspace, external_id="acc-1")
    pipeline_model = old.get_model("usage", "AlertPipeline")
    events = pipeline_model.objects.create(
        workspace=workspace, name="Exports", trigger_type="event", trigger_config={"features": ["export"]}
    )
    pipeline_model.objects.create(workspace=quiet, name="Dormant", trigger_type="dormant", trigger_config={"days": 14})
    destination = old.get_model("usage", "AlertDestination").objects.create(
        workspace=workspace, pipeline=events, type="webhook", url="http://127.0.0.1:9/hook", secret="s" * 16
    )
    old.get_model("usage", "AlertDelivery").objects.create(
        workspace=workspace,
        pipeline=events,
        destination=destination,
        status="sent",
        dedupe_key="event:1",
        attempts=1,
        response_code=200,
        payload={"title": "Export used"},
        created_at=AT,
        sent_at=AT,
    )
    old.get_model("usage", "AlertRateWindow").objects.create(destination=destination, window_start=AT, sent=1)
    # a second pipeline posting to the same webhook (its own destination row then) and to a Discord webhook
    twin = pipeline_model.objects.create(workspace=workspace, name="Imports", trigger_type="event")
    discord = old.get_model("usage", "AlertDestination").objects.create(
        workspace=workspace, pipeline=twin, type="discord", url="https://discord.com/api/webhooks/1/abcd"
    )
    same_hook = old.get_model("usage", "AlertDestination").objects.create(
        workspace=workspace, pipeline=twin, type="webhook", url="http://127.0.0.1:9/hook", secret="s" * 16
    )
    old.get_model("usage", "AlertDelivery").objects.create(
        workspace=workspace,
        pipeline=twin,
        destination=same_hook,
        status="failed",
        dedupe_key="event:1",
        attempts=6,
        payload={"title": "Import used"},
        created_at=AT,
    )
    old.get_model("usage", "AlertRateWindow").objects.create(destination=same_hook, window_start=AT, sent=1)
    old.get_model("usage", "AlertWindowMark").objects.create(
        workspace=workspace, pipeline=events, account=account, window_start=date(2026, 11, 9), created_at=AT
    )
    old.get_model("usage", "AlertEventsPending").objects.create(workspace=workspace, event_ids=[7, 8], created_at=AT)

    return {
        "workspace": workspace.pk,
        "pipeline": events.pk,
        "twin": twin.pk,
        "destination": destination.pk,
        "discord": discord.pk,
    }


@pytest.mark.django_db(transaction=True)
def test_moving_the_alert_models_keeps_every_row():
    # given a database at the migrations before the move, holding alert rows
    executor = _migrate(BEFORE_MOVE)
    try:
        ids = _old_rows(executor.loader.project_state(BEFORE_MOVE[:1]).apps)
    finally:
        # when the database is migrated to the latest migrations (also when the given failed, so the test
        # database is left at the latest migrations for the next tests)
        _migrate(_latest())

    # then every row is there, read through the new models
    assert list(AlertPipeline.objects.order_by("pk").values_list("workspace__slug", "name", "trigger_type")) == [
        ("acme", "Exports", "event"),
        ("quiet", "Dormant", "dormant"),
        ("acme", "Imports", "event"),
    ]
    # each destination became the channel of the same id; the two on one webhook merged into the oldest
    assert list(AlertChannel.objects.order_by("pk").values_list("pk", "workspace__slug", "name", "type", "url")) == [
        (ids["destination"], "acme", "Webhook 127.0.0.1:9", "webhook", "http://127.0.0.1:9/hook"),
        (ids["discord"], "acme", "Discord discord.com", "discord", "https://discord.com/api/webhooks/1/abcd"),
    ]
    assert list(
        AlertPipelineChannel.objects.order_by("pipeline_id", "position").values_list(
            "pipeline__name", "channel_id", "position"
        )
    ) == [("Exports", ids["destination"], 0), ("Imports", ids["discord"], 0), ("Imports", ids["destination"], 1)]
    # and the delivery history of both pipelines is kept, on the merged channel
    assert list(
        AlertDelivery.objects.order_by("pk").values_list("pipeline_id", "channel_id", "status", "dedupe_key", "payload")
    ) == [
        (ids["pipeline"], ids["destination"], "sent", "event:1", {"title": "Export used"}),
        (ids["twin"], ids["destination"], "failed", "event:1", {"title": "Import used"}),
    ]
    assert list(AlertRateWindow.objects.values_list("channel_id", "window_start", "sent")) == [
        (ids["destination"], AT, 1)
    ]
    assert list(AlertWindowMark.objects.values_list("account__external_id", "window_start")) == [
        ("acc-1", date(2026, 11, 9))
    ]
    assert list(EventOutbox.objects.values_list("workspace__slug", "event_ids")) == [("acme", [7, 8])]
    # and ingestion's flag says which workspace has an enabled event-driven pipeline
    assert list(EventSubscription.objects.values_list("workspace_id", flat=True)) == [ids["workspace"]]
    # and new rows take ids after the old ones (the moved tables kept their sequences)
    new = AlertPipeline.objects.create(workspace=Workspace.objects.get(slug="acme"), name="New", trigger_type="event")
    assert new.pk > ids["pipeline"]
    assert Account.objects.get().external_id == "acc-1"
