"""Dormant and usage-drop alert triggers, evaluated on a beat schedule from the rollups.

This module reads the per-account numbers from the analytics selectors and hands them to the evaluators in
alerts/triggers.py (`alerts_evaluate_dormant`, `alerts_evaluate_usage_drop`), which decide what to send.
Both evaluators record one mark per account per window, so running this every few minutes (or twice at once,
or after a crash) sends each alert once.

Windows: dormancy counts whole UTC days since the last use. Usage drop compares fixed, back-to-back windows of
the pipeline's `days`, counted from Monday 1970-01-05 (for 7 days: Monday–Sunday weeks): the last complete
window against the one before it, so a lasting drop alerts once per window rather than once a day.
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
        by_days[pipeline.trigger_config.get("days", 14)].append(pipeline.pk)
    created = 0
    for days, pipeline_ids in sorted(by_days.items()):
        known_by = today - timedelta(days=days)
        last_used = selectors.alert_accounts_last_used(workspace=workspace, known_by=known_by)
        created += len(
            alerts_evaluate_dormant(workspace_id=workspace.pk, last_used=last_used, now=now, pipeline_ids=pipeline_ids)
        )
    return created


def _usage_drop(*, workspace: Workspace, pipelines: list[AlertPipeline], today: date, now: datetime) -> int:
    # Pipelines that count the same days and features share one read of the rollups.
    groups: dict[tuple[int, tuple[str, ...]], list[int]] = defaultdict(list)
    for pipeline in pipelines:
        config = pipeline.trigger_config
        groups[(config.get("days", 7), tuple(sorted(config.get("features") or ())))].append(pipeline.pk)
    created = 0
    for (days, features), pipeline_ids in sorted(groups.items()):
        window = usage_drop_window(today=today, days=days)
        numbers = selectors.alert_accounts_usage_windows(
            workspace=workspace, window=window, feature_keys=list(features) or None
        )
        usage = {account: AccountUsageWindow(current, prior) for account, (current, prior) in numbers.items()}
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
