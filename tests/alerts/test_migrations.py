"""The move of the alert models from usage to alerts keeps every row: a database holding pipelines, destinations,
deliveries, rate windows, marks and an outbox row at the pre-move migrations is migrated to the latest ones."""

from datetime import UTC, date, datetime

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

from accounts.models import Account, Workspace
from alerts.models import AlertDelivery, AlertDestination, AlertPipeline, AlertRateWindow, AlertWindowMark
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
    old.get_model("usage", "AlertWindowMark").objects.create(
        workspace=workspace, pipeline=events, account=account, window_start=date(2026, 11, 9), created_at=AT
    )
    old.get_model("usage", "AlertEventsPending").objects.create(workspace=workspace, event_ids=[7, 8], created_at=AT)

    return {"workspace": workspace.pk, "pipeline": events.pk, "destination": destination.pk}


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
    ]
    assert list(AlertDestination.objects.values_list("pipeline__name", "type", "url")) == [
        ("Exports", "webhook", "http://127.0.0.1:9/hook")
    ]
    assert list(AlertDelivery.objects.values_list("destination_id", "status", "dedupe_key", "payload")) == [
        (ids["destination"], "sent", "event:1", {"title": "Export used"})
    ]
    assert list(AlertRateWindow.objects.values_list("destination_id", "window_start", "sent")) == [
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
