"""Celery adapters for analytics: read the clock, call the service."""

from celery import shared_task
from django.utils import timezone

from .alerting import alerts_evaluate_rollup_triggers
from .services import rollup_pending


@shared_task(name="analytics.rollup_pending", acks_late=True)
def rollup_pending_task() -> dict:
    """Roll up every dirty (workspace, UTC day); idempotent, safe to run twice at once or retry."""
    report = rollup_pending(now=timezone.now())
    return {"rolled_up": report.days_rolled_up, "skipped_locked": report.days_skipped_locked}


@shared_task(name="analytics.alerts_evaluate_rollup_triggers", acks_late=True)
def alerts_evaluate_rollup_triggers_task() -> dict:
    """Beat: dormant and usage-drop alert pipelines from the rollups; idempotent (one alert per window)."""
    report = alerts_evaluate_rollup_triggers(now=timezone.now())
    return {
        "workspaces": report.workspaces,
        "dormant": report.dormant_deliveries,
        "usage_drop": report.usage_drop_deliveries,
    }
