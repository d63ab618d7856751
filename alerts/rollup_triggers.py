"""Dormant and usage-drop alert triggers, evaluated on a beat schedule from the rollups.

The accounts come from the same selectors as the dashboard's dormant and usage-drop lists
(analytics.selectors.dormant_accounts / accounts_usage_dropped); alerts/triggers.py builds the messages and
records one mark per account per window, so a rerun (or two at once, or one after a crash) sends each alert
once. Usage drop compares fixed, back-to-back windows of the pipeline's `days` counted from Monday 1970-01-05
(7 days: Monday–Sunday weeks): the last complete window against the one before, so a lasting drop alerts once
per window.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

from accounts.models import Workspace
from analytics import selectors

from .models import AlertPipeline
from .selectors import pipeline_workspaces_with, pipelines_enabled
from .triggers import AccountUsageWindow, alerts_evaluate_dormant, alerts_evaluate_usage_drop

TriggerType = AlertPipeline.TriggerType
ROLLUP_TRIGGERS = [TriggerType.DORMANT, TriggerType.USAGE_DROP]
WINDOW_EPOCH = date(1970, 1, 5)  # a Monday: 7-day windows are calendar weeks


@dataclass
class RollupTriggerReport:
    workspaces: int = 0
    dormant_deliveries: int = 0
    usage_drop_deliveries: int = 0


def usage_drop_window(*, today: date, days: int) -> selectors.Window:
    """The last complete `days`-long window before `today` (windows laid end to end from WINDOW_EPOCH)."""
    current_index = (today - WINDOW_EPOCH).days // days
    start = WINDOW_EPOCH + timedelta(days=(current_index - 1) * days)
    return selectors.Window(start, start + timedelta(days=days - 1))


def _dormant(*, workspace: Workspace, pipelines: list[AlertPipeline], today: date, now: datetime) -> int:
    by_days: dict[int, list[int]] = defaultdict(list)
    for pipeline in pipelines:
        by_days[pipeline.trigger_config.get("days", selectors.DORMANT_DAYS)].append(pipeline.pk)
    created = 0
    for days, pipeline_ids in sorted(by_days.items()):
        rows = selectors.dormant_accounts(workspace=workspace, today=today, days=days)
        dormant = {row["id"]: row["last_used_on"] for row in rows}
        created += len(
            alerts_evaluate_dormant(workspace_id=workspace.pk, dormant=dormant, now=now, pipeline_ids=pipeline_ids)
        )
    return created


def _usage_drop(*, workspace: Workspace, pipelines: list[AlertPipeline], today: date, now: datetime) -> int:
    # Pipelines with the same days, features and percent share one list (and every list one read of the rollups).
    groups: dict[tuple[int, tuple[str, ...], int], list[int]] = defaultdict(list)
    for pipeline in pipelines:
        config = pipeline.trigger_config
        key = (config.get("days", 7), tuple(sorted(config.get("features") or ())), config["percent"])
        groups[key].append(pipeline.pk)
    created = 0
    for (days, features, percent), pipeline_ids in sorted(groups.items()):
        window = usage_drop_window(today=today, days=days)
        rows = selectors.accounts_usage_dropped(
            workspace=workspace, window=window, percent=percent, feature_keys=features or None
        )
        usage = {row["id"]: AccountUsageWindow(row["uses"], row["prior_uses"]) for row in rows}
        created += len(
            alerts_evaluate_usage_drop(
                workspace_id=workspace.pk,
                usage=usage,
                window_start=window.start,
                now=now,
                pipeline_ids=pipeline_ids,
            )
        )
    return created


def alerts_evaluate_rollup_triggers(*, now: datetime) -> RollupTriggerReport:
    """Evaluate every workspace's enabled dormant and usage-drop pipelines against the rollups."""
    report = RollupTriggerReport()
    today = now.astimezone(UTC).date()
    for workspace in Workspace.objects.filter(pk__in=pipeline_workspaces_with(trigger_types=ROLLUP_TRIGGERS)).order_by(
        "pk"
    ):
        pipelines = list(pipelines_enabled(workspace_id=workspace.pk, trigger_types=ROLLUP_TRIGGERS))
        report.workspaces += 1
        report.dormant_deliveries += _dormant(
            workspace=workspace,
            pipelines=[p for p in pipelines if p.trigger_type == TriggerType.DORMANT],
            today=today,
            now=now,
        )
        report.usage_drop_deliveries += _usage_drop(
            workspace=workspace,
            pipelines=[p for p in pipelines if p.trigger_type == TriggerType.USAGE_DROP],
            today=today,
            now=now,
        )
    return report
